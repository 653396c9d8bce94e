/* SPDX-License-Identifier: MIT */
/* model.c - per-process VMA set (see model.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "model.h"
#include "strtab.h"
#include "vec.h"

void fl_model_free(struct fl_model *m)
{
	fl_vmatree_clear(&m->vmas);
	free(m->dead);
	memset(m, 0, sizeof(*m));
}

const struct fl_vma *fl_model_find(const struct fl_model *m, __u64 addr)
{
	const struct fl_vma *v = fl_vmatree_above(&m->vmas, addr);
	return v && v->start <= addr ? v : NULL;
}

/* Write v's row, complete: it ended at destroyed_ns (0: it outlived the run) by event destroyed_by. */
static void write_row(const struct fl_change *c, const struct fl_vma *v, __u64 destroyed_ns, __s64 destroyed_by)
{
	struct fl_vma_row r = {
		.proc_id = c->proc_id, .pid = c->pid, .start = v->start, .end = v->end,
		.offset = v->offset, .inode = v->inode, .dev = v->dev, .prot = v->prot, .flags = v->flags,
		.kind = v->kind, .path = v->path, .created_ns = v->created_ns,
		.created_by = v->created_by, .parent_id = v->parent_id, .origin_id = v->origin_id,
		.how = (enum fl_how)v->how, .destroyed_ns = destroyed_ns, .destroyed_by = destroyed_by,
	};
	fl_store_vma(c->store, v->id, &r);
}

/* End v's row (written now), remembering it for late fault counts. */
static void end_row(struct fl_model *m, const struct fl_change *c, const struct fl_vma *v)
{
	write_row(c, v, c->time_ns, c->event_id);
	if (m->dead0 && m->dead0 * 2 >= m->ndead) { /* reclaim the pruned front, amortized O(1) */
		memmove(m->dead, m->dead + m->dead0, (m->ndead - m->dead0) * sizeof(*m->dead));
		m->ndead -= m->dead0;
		m->dead0 = 0;
	}
	if (fl_vec_reserve((void **)&m->dead, &m->capdead, m->ndead + 1, sizeof(*m->dead)))
		return;
	m->dead[m->ndead++] = (struct fl_dead_vma){ v->start, v->end, v->created_ns, c->time_ns, v->id,
						    v->path, v->offset, v->prot };
}

static bool dead_held(const struct fl_dead_vma *d, __u64 start, __u64 t)
{
	return d->start <= start && start < d->end && d->created_ns <= t && t <= d->destroyed_ns;
}

/*
 * The ended row that held start at t.  Rows end in time order (nearly:
 * resyncs are stamped when read), so the one sought is most often among
 * the few that ended right after t: found by bisection, in O(log n), where
 * scanning every row that ended since the last drain made a burst of short
 * mappings (malloc's 256 KiB blocks) cost O(n) per fault count.
 */
#define DEAD_NEAR 64
static const struct fl_dead_vma *dead_at(const struct fl_model *m, __u64 start, __u64 t)
{
	size_t lo = m->dead0, hi = m->ndead;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->dead[mid].destroyed_ns < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct fl_dead_vma *found = NULL;
	for (size_t k = lo; k < m->ndead && k < lo + DEAD_NEAR; k++)
		if (dead_held(&m->dead[k], start, t))
			found = &m->dead[k]; /* the latest to end, as below */
	for (size_t k = m->ndead; !found && k-- > m->dead0;)
		if (dead_held(&m->dead[k], start, t))
			found = &m->dead[k];
	return found;
}

const struct fl_vma *fl_model_find_at(const struct fl_model *m, __u64 addr, __u64 t, struct fl_vma *ended)
{
	const struct fl_vma *v = fl_model_find(m, addr);
	if (v && v->created_ns <= t)
		return v;
	const struct fl_dead_vma *d = t == FL_MODEL_NOW ? NULL : dead_at(m, addr, t);
	if (!d)
		return NULL;
	*ended = (struct fl_vma){ .start = d->start, .end = d->end, .offset = d->offset, .prot = d->prot,
				  .path = d->path, .id = d->id, .created_ns = d->created_ns };
	return ended;
}

__s64 fl_model_attribute(const struct fl_model *m, __u64 start, __u64 end, __u64 t)
{
	const struct fl_vma *v = fl_vmatree_above(&m->vmas, start);
	if (v && v->start <= start && v->created_ns <= t)
		return v->id;
	const struct fl_dead_vma *d = dead_at(m, start, t);
	if (d)
		return d->id;
	return v && v->start < end ? v->id : 0;
}

void fl_model_grow_stack(struct fl_model *m, __u64 vm_start, __u64 vm_end)
{
	struct fl_vma *v = vm_end > vm_start ? fl_vmatree_above(&m->vmas, vm_end - 1) : NULL;
	/* the row itself is the first one ending above vm_start: nothing recorded lies below it in the VMA */
	if (v && v->end == vm_end && v->start > vm_start && !strcmp(v->kind, "stack") &&
	    fl_vmatree_above(&m->vmas, vm_start) == v)
		v->start = vm_start;  /* the order of the rows is unchanged: it still starts below its successor */
}

void fl_model_prune_dead(struct fl_model *m, __u64 t)
{
	while (m->dead0 < m->ndead && m->dead[m->dead0].destroyed_ns < t)
		m->dead0++;
}

/* Start a new row for v (its id now; written when it ends). */
static void open_row(const struct fl_change *c, struct fl_vma *v, __s64 parent_id, enum fl_how how)
{
	v->id = fl_store_vma_id(c->store);
	v->created_ns = c->time_ns;
	v->parent_id = parent_id;
	v->how = how;
	if (!v->origin_id)
		v->origin_id = v->id;
}

/* The part [start, end) of v as a new row split from it, with protection prot, added to the set. */
static void add_piece(struct fl_model *m, const struct fl_change *c, const struct fl_vma *v, __u64 start,
		      __u64 end, __u32 prot)
{
	struct fl_vma p = *v;
	p.start = start;
	p.end = end;
	p.prot = prot;
	if (v->path)
		p.offset = v->offset + (start - v->start);
	open_row(c, &p, v->id, FL_HOW_SPLIT);
	fl_vmatree_insert(&m->vmas, &p);
}

/* A new row for v (how), added to the set. */
static void add_row(struct fl_model *m, const struct fl_change *c, struct fl_vma *v, __s64 parent_id,
		    enum fl_how how)
{
	open_row(c, v, parent_id, how);
	fl_vmatree_insert(&m->vmas, v);
}

/* v's row ends and v leaves the set (v is invalid afterwards). */
static void remove_row(struct fl_model *m, const struct fl_change *c, const struct fl_vma *v)
{
	end_row(m, c, v);
	fl_vmatree_erase(&m->vmas, v);
}

/*
 * Cut [start, end) out of the model: the VMAs overlapping it end, their
 * parts outside it survive as split rows.
 */
static void cut(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end)
{
	struct fl_vma first, last;
	bool any = false;
	for (const struct fl_vma *v; (v = fl_vmatree_above(&m->vmas, start)) && v->start < end;) {
		if (!any)
			first = *v;
		last = *v;
		any = true;
		remove_row(m, c, v);
	}
	if (!any)
		return;
	if (first.start < start)
		add_piece(m, c, &first, first.start, start, first.prot);
	if (last.end > end)
		add_piece(m, c, &last, end, last.end, last.prot);
}

void fl_model_map(struct fl_model *m, const struct fl_change *c, const struct fl_vma *tmpl)
{
	if (tmpl->end <= tmpl->start)
		return;
	struct fl_vma v = *tmpl;
	v.created_by = c->event_id;
	v.origin_id = 0;
	cut(m, c, v.start, v.end);
	add_row(m, c, &v, 0, c->how);
}

void fl_model_unmap(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end)
{
	if (end > start)
		cut(m, c, start, end);
}

void fl_model_protect(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end, __u32 prot)
{
	__u64 at = start;
	for (const struct fl_vma *w; (w = fl_vmatree_above(&m->vmas, at)) && w->start < end;) {
		struct fl_vma v = *w;
		at = v.end;
		if (v.prot == prot)
			continue;
		__u64 lo = v.start > start ? v.start : start, hi = v.end < end ? v.end : end;
		remove_row(m, c, w);
		if (v.start < lo)
			add_piece(m, c, &v, v.start, lo, v.prot);
		add_piece(m, c, &v, lo, hi, prot);
		if (hi < v.end)
			add_piece(m, c, &v, hi, v.end, v.prot);
	}
}

void fl_model_remap(struct fl_model *m, const struct fl_change *c, __u64 old, __u64 old_len,
		    __u64 new_addr, __u64 new_len, __u32 flags)
{
	const struct fl_vma *src = fl_model_find(m, old);
	if (!src) {
		struct fl_vma v = { .start = new_addr, .end = new_addr + new_len, .kind = "anon",
				    .prot = PROT_READ | PROT_WRITE, .flags = MAP_PRIVATE | MAP_ANONYMOUS };
		fl_model_unmap(m, c, old, old + old_len);
		fl_model_map(m, c, &v);
		return;
	}
	/* the moved memory keeps its identity: same origin, parent = where it came from */
	struct fl_vma v = *src;
	__s64 parent = src->id; /* src is a node of the set, which the unmap below changes */
	v.start = new_addr;
	v.end = new_addr + new_len;
	if (src->path)
		v.offset = src->offset + (old - src->start);
	v.created_by = c->event_id;
	if (new_addr == old && new_len <= old_len) {
		fl_model_unmap(m, c, old + new_len, old + old_len);
		return;
	}
	if (!(flags & MREMAP_DONTUNMAP))
		fl_model_unmap(m, c, old, old + old_len);
	cut(m, c, v.start, v.end);
	add_row(m, c, &v, parent, FL_HOW_REMAP);
}

void fl_model_fork(struct fl_model *child, const struct fl_model *parent, const struct fl_change *c)
{
	fl_model_clear(child, c);
	for (const struct fl_vma *p = fl_vmatree_first(&parent->vmas); p; p = fl_vmatree_next(&parent->vmas, p)) {
		struct fl_vma v = *p;
		add_row(child, c, &v, p->id, FL_HOW_FORK);
	}
	child->brk = parent->brk;
}

void fl_model_close(struct fl_model *m, const struct fl_change *c)
{
	for (const struct fl_vma *v = fl_vmatree_first(&m->vmas); v; v = fl_vmatree_next(&m->vmas, v))
		write_row(c, v, 0, 0);
}

void fl_model_clear(struct fl_model *m, const struct fl_change *c)
{
	for (const struct fl_vma *v = fl_vmatree_first(&m->vmas); v; v = fl_vmatree_next(&m->vmas, v))
		end_row(m, c, v);
	fl_vmatree_clear(&m->vmas);
	m->brk = 0;
}

/*
 * The snapshot line covering all of v with v's protection (and file, if
 * both name one), or NULL.  *cursor: where the search starts, moved
 * forward, so that VMAs asked in address order cost one pass over snap.
 */
static const struct fl_vma *snapshot_cover(const struct fl_vma *snap, size_t n, size_t *cursor,
					   const struct fl_vma *v)
{
	while (*cursor < n && snap[*cursor].end <= v->start)
		++*cursor;
	const struct fl_vma *s = *cursor < n ? &snap[*cursor] : NULL;
	if (!s || s->start > v->start || v->end > s->end)
		return NULL;
	return s->prot == v->prot && (!s->path || !v->path || !strcmp(s->path, v->path)) ? s : NULL;
}

void fl_model_fill_paths(struct fl_model *m, const struct fl_vma *snap, size_t n)
{
	size_t cursor = 0;
	for (struct fl_vma *v = fl_vmatree_first(&m->vmas); v; v = fl_vmatree_next(&m->vmas, v)) {
		const struct fl_vma *s = v->path || strcmp(v->kind, "file") ? NULL : snapshot_cover(snap, n, &cursor, v);
		if (s && s->path) {
			v->path = s->path; /* the row is written when it ends, path and all */
			v->kind = s->kind;
		}
	}
}

/* Add the parts of the snapshot line s that no VMA of m covers. */
static void add_holes(struct fl_model *m, const struct fl_change *c, const struct fl_vma *s)
{
	for (__u64 at = s->start; at < s->end;) {
		const struct fl_vma *v = fl_vmatree_above(&m->vmas, at);
		__u64 hole_end = v && v->start < s->end ? v->start : s->end, next = v ? v->end : s->end;
		if (hole_end > at) {
			struct fl_vma h = *s;
			h.start = at;
			h.end = hole_end;
			if (h.path)
				h.offset = s->offset + (at - s->start);
			h.created_by = 0;
			h.origin_id = 0;
			add_row(m, c, &h, 0, c->how);
		}
		if (!v || v->start >= s->end)
			break;
		at = next;
	}
}

void fl_model_resync(struct fl_model *m, const struct fl_change *c, const struct fl_vma *snap, size_t n)
{
	size_t cursor = 0;
	for (const struct fl_vma *v = fl_vmatree_first(&m->vmas), *next; v; v = next) {
		next = fl_vmatree_next(&m->vmas, v);
		if (!snapshot_cover(snap, n, &cursor, v))
			remove_row(m, c, v);
	}
	for (size_t s = 0; s < n; s++)
		add_holes(m, c, &snap[s]);
}

/* ---- applying calls ------------------------------------------------------------- */

#define PAGE_UP(x) (((x) + 4095) & ~(__u64)4095)

/* Move the program break to brk, mapping or unmapping heap pages. */
static void set_break(struct fl_model *m, const struct fl_change *c, __u64 brk)
{
	if (!m->brk) {
		const struct fl_vma *heap = fl_vmatree_first(&m->vmas);
		while (heap && strcmp(heap->kind, "heap"))
			heap = fl_vmatree_next(&m->vmas, heap);
		m->brk = heap ? heap->end : brk;
	}
	__u64 old = PAGE_UP(m->brk), now = PAGE_UP(brk);
	if (now > old) {
		struct fl_vma v = { .start = old, .end = now, .prot = PROT_READ | PROT_WRITE,
				    .flags = MAP_PRIVATE | MAP_ANONYMOUS, .kind = "heap",
				    .path = fl_strtab_intern("[heap]") };
		fl_model_map(m, c, &v);
	} else if (now < old) {
		fl_model_unmap(m, c, now, old);
	}
	m->brk = brk;
}

/* shmdt: the segment is every VMA from addr on that came from the same shmat. */
static void detach_shm(struct fl_model *m, const struct fl_change *c, __u64 addr)
{
	const struct fl_vma *v = fl_model_find(m, addr);
	if (!v)
		return;
	__s64 origin = v->origin_id;
	__u64 end = v->end;
	for (const struct fl_vma *w; (w = fl_model_find(m, end)) && w->origin_id == origin;)
		end = w->end;
	fl_model_unmap(m, c, addr, end);
}

/*
 * The segment's size, asked now: only for a shmat whose record carries no
 * size (a[3] 0).  It fails once the segment is gone (IPC_RMID right after
 * shmat, the usual idiom, or the process exited): then the VMA is unknown.
 */
static __u64 shm_size(int shmid)
{
	struct shmid_ds ds;
	return shmctl(shmid, IPC_STAT, &ds) == 0 ? ds.shm_segsz : 0;
}

static void apply_mmap(struct fl_model *m, const struct fl_change *c, const struct fl_call *call, const char *path)
{
	const __u64 *a = call->args;
	__u64 res = (__u64)call->result;
	struct fl_vma v = { .start = res, .end = res + PAGE_UP(a[1]), .prot = (__u32)a[2], .flags = (__u32)a[3],
			    .path = path };
	if (!(v.flags & MAP_ANONYMOUS)) {
		v.offset = a[5];
		v.inode = call->inode;
		v.dev = call->dev;
	}
	v.kind = v.path || (v.flags & MAP_ANONYMOUS) ? fl_model_kind(v.path, v.flags) : "file";
	fl_model_map(m, c, &v);
}

static void apply_shmat(struct fl_model *m, const struct fl_change *c, const struct fl_call *call, const char *path)
{
	const __u64 *a = call->args;
	/* a[3]: the size of the VMA the kernel attached, read by BPF when shmat returned */
	__u64 res = (__u64)call->result, size = a[3] ? a[3] : shm_size((int)a[0]);
	struct fl_vma v = { .start = res, .end = res + PAGE_UP(size), .flags = MAP_SHARED,
			    .prot = PROT_READ | ((a[2] & SHM_RDONLY) ? 0 : PROT_WRITE) |
				    ((a[2] & SHM_EXEC) ? PROT_EXEC : 0),
			    .kind = "shm", .path = path };
	if (size)
		fl_model_map(m, c, &v);
}

void fl_model_apply(struct fl_model *m, const struct fl_change *c, const struct fl_call *call, const char *path,
		    bool from_kernel)
{
	const __u64 *a = call->args;
	__u64 res = (__u64)call->result;
	if (call->err)
		return;
	switch (call->kind) {
	case FL_K_MMAP:
		apply_mmap(m, c, call, path);
		break;
	case FL_K_MUNMAP:
		fl_model_unmap(m, c, a[0], a[0] + PAGE_UP(a[1]));
		break;
	case FL_K_MPROTECT:
	case FL_K_PKEY_MPROTECT:
		fl_model_protect(m, c, a[0], a[0] + PAGE_UP(a[1]), (__u32)a[2] & 7);
		break;
	case FL_K_MREMAP:
		fl_model_remap(m, c, a[0], PAGE_UP(a[1]), res, PAGE_UP(a[2]), (__u32)a[3]);
		break;
	case FL_K_BRK:
		/* the syscall returns the new break; libc's brk() returns 0 and the break is its argument */
		set_break(m, c, from_kernel ? res : a[0]);
		break;
	case FL_K_SBRK:
		if (!m->brk)
			m->brk = res; /* sbrk returns the old break: the first one tells where the heap ends */
		set_break(m, c, res + a[0]);
		break;
	case FL_K_SHMAT:
		apply_shmat(m, c, call, path);
		break;
	case FL_K_SHMDT:
		detach_shm(m, c, a[0]);
		break;
	}
}

const char *fl_model_kind(const char *path, __u32 flags)
{
	if (!path || !*path)
		return (flags & MAP_SHARED) ? "shm" : "anon";
	if (path[0] == '[') {
		static const char *const pseudo[] = { "heap", "stack", "vdso", "vvar", "vsyscall" };
		for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++) {
			size_t l = strlen(pseudo[i]);
			if (!strncmp(path + 1, pseudo[i], l) && (path[1 + l] == ']' || path[1 + l] == ':'))
				return pseudo[i];
		}
		return "other";
	}
	if (!strncmp(path, "/memfd:faultline-channel", 24))
		return "faultline";
	if (!strncmp(path, "/SYSV", 5) || !strncmp(path, "/dev/shm/", 9) || !strncmp(path, "/dev/zero", 9) ||
	    !strncmp(path, "/memfd:", 7))
		return "shm";
	return "file";
}
