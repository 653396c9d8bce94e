/* SPDX-License-Identifier: MIT */
/* model.c - per-process VMA set (see model.h). */
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
	free(m->v);
	free(m->dead);
	memset(m, 0, sizeof(*m));
}

/* Index of the first VMA whose end is above addr (n if none). */
static size_t first_above(const struct fl_model *m, __u64 addr)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->v[mid].end > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

const struct fl_vma *fl_model_find(const struct fl_model *m, __u64 addr)
{
	size_t i = first_above(m, addr);
	return i < m->n && m->v[i].start <= addr ? &m->v[i] : NULL;
}

/* Replace nremove VMAs at index i by nins new ones. Returns 0 or -1 (out of memory). */
static int splice(struct fl_model *m, size_t i, size_t nremove, const struct fl_vma *ins, size_t nins)
{
	size_t n = m->n - nremove + nins;
	if (fl_vec_reserve((void **)&m->v, &m->cap, n, sizeof(*m->v)))
		return -1;
	memmove(&m->v[i + nins], &m->v[i + nremove], (m->n - i - nremove) * sizeof(*m->v));
	memcpy(&m->v[i], ins, nins * sizeof(*ins));
	m->n = n;
	return 0;
}

/* End v's row, remembering it for late fault counts. */
static void end_row(struct fl_model *m, const struct fl_change *c, const struct fl_vma *v)
{
	fl_store_vma_end(c->store, v->id, c->time_ns, c->event_id);
	if (fl_vec_reserve((void **)&m->dead, &m->capdead, m->ndead + 1, sizeof(*m->dead)))
		return;
	m->dead[m->ndead++] = (struct fl_dead_vma){ v->start, v->end, v->created_ns, c->time_ns, v->id };
}

__s64 fl_model_attribute(const struct fl_model *m, __u64 start, __u64 end, __u64 t)
{
	size_t i = first_above(m, start);
	if (i < m->n && m->v[i].start <= start && m->v[i].created_ns <= t)
		return m->v[i].id;
	for (size_t k = m->ndead; k-- > 0;) {
		const struct fl_dead_vma *d = &m->dead[k];
		if (d->start <= start && start < d->end && d->created_ns <= t && t <= d->destroyed_ns)
			return d->id;
	}
	return i < m->n && m->v[i].start < end ? m->v[i].id : 0;
}

void fl_model_prune_dead(struct fl_model *m, __u64 t)
{
	size_t k = 0;
	while (k < m->ndead && m->dead[k].destroyed_ns < t)
		k++;
	memmove(m->dead, m->dead + k, (m->ndead - k) * sizeof(*m->dead));
	m->ndead -= k;
}

/* Write a new row for v (whose fields are final) and store its id in v. */
static void write_row(const struct fl_change *c, struct fl_vma *v, __s64 parent_id, enum fl_how how)
{
	struct fl_vma_row r = {
		.proc_id = c->proc_id, .pid = c->pid, .start = v->start, .end = v->end,
		.offset = v->offset, .inode = v->inode, .prot = v->prot, .flags = v->flags,
		.kind = v->kind, .path = v->path, .created_ns = c->time_ns,
		.created_by = v->created_by, .parent_id = parent_id, .origin_id = v->origin_id,
		.how = how,
	};
	v->id = fl_store_vma(c->store, &r);
	v->created_ns = c->time_ns;
	if (!v->origin_id)
		v->origin_id = v->id;
}

/* The part [start, end) of v as a new row split from it, with protection prot. */
static struct fl_vma piece(const struct fl_change *c, const struct fl_vma *v, __u64 start, __u64 end,
			   __u32 prot)
{
	struct fl_vma p = *v;
	p.start = start;
	p.end = end;
	p.prot = prot;
	if (v->path)
		p.offset = v->offset + (start - v->start);
	write_row(c, &p, v->id, FL_HOW_SPLIT);
	return p;
}

/*
 * Cut [start, end) out of the model: the VMAs overlapping it end, their
 * parts outside it survive as split rows.  Returns the index where the
 * range now begins (for an insert).
 */
static size_t cut(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end)
{
	size_t i = first_above(m, start), j = i;
	struct fl_vma keep[2];
	size_t nkeep = 0;
	while (j < m->n && m->v[j].start < end)
		j++;
	if (i == j)
		return i;
	struct fl_vma first = m->v[i], last = m->v[j - 1];
	for (size_t k = i; k < j; k++)
		end_row(m, c, &m->v[k]);
	if (first.start < start)
		keep[nkeep++] = piece(c, &first, first.start, start, first.prot);
	if (last.end > end)
		keep[nkeep++] = piece(c, &last, end, last.end, last.prot);
	splice(m, i, j - i, keep, nkeep);
	return first.start < start ? i + 1 : i;
}

void fl_model_map(struct fl_model *m, const struct fl_change *c, const struct fl_vma *tmpl)
{
	if (tmpl->end <= tmpl->start)
		return;
	struct fl_vma v = *tmpl;
	v.created_by = c->event_id;
	v.origin_id = 0;
	size_t i = cut(m, c, v.start, v.end);
	write_row(c, &v, 0, c->how);
	splice(m, i, 0, &v, 1);
}

void fl_model_unmap(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end)
{
	if (end > start)
		cut(m, c, start, end);
}

void fl_model_protect(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end, __u32 prot)
{
	for (size_t i = first_above(m, start); i < m->n && m->v[i].start < end; i++) {
		struct fl_vma v = m->v[i], parts[3];
		size_t n = 0;
		if (v.prot == prot)
			continue;
		__u64 lo = v.start > start ? v.start : start, hi = v.end < end ? v.end : end;
		end_row(m, c, &v);
		if (v.start < lo)
			parts[n++] = piece(c, &v, v.start, lo, v.prot);
		parts[n++] = piece(c, &v, lo, hi, prot);
		if (hi < v.end)
			parts[n++] = piece(c, &v, hi, v.end, v.prot);
		splice(m, i, 1, parts, n);
		i += n - 1;
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
	__s64 parent = src->id; /* src points into m->v, which the unmap below changes */
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
	size_t i = cut(m, c, v.start, v.end);
	write_row(c, &v, parent, FL_HOW_REMAP);
	splice(m, i, 0, &v, 1);
}

void fl_model_fork(struct fl_model *child, const struct fl_model *parent, const struct fl_change *c)
{
	fl_model_clear(child, c);
	if (splice(child, 0, 0, parent->v, parent->n))
		return;
	for (size_t i = 0; i < child->n; i++)
		write_row(c, &child->v[i], parent->v[i].id, FL_HOW_FORK);
	child->brk = parent->brk;
}

void fl_model_clear(struct fl_model *m, const struct fl_change *c)
{
	for (size_t i = 0; i < m->n; i++)
		end_row(m, c, &m->v[i]);
	m->n = 0;
	m->brk = 0;
}

/* The snapshot line covering all of v with v's protection (and file, if both name one), or NULL. */
static const struct fl_vma *snapshot_cover(const struct fl_vma *snap, size_t n, const struct fl_vma *v)
{
	for (size_t i = 0; i < n && snap[i].start < v->end; i++)
		if (snap[i].start <= v->start && v->end <= snap[i].end)
			return snap[i].prot == v->prot &&
			       (!snap[i].path || !v->path || !strcmp(snap[i].path, v->path)) ? &snap[i] : NULL;
	return NULL;
}

void fl_model_fill_paths(struct fl_model *m, const struct fl_change *c, const struct fl_vma *snap, size_t n)
{
	for (size_t i = 0; i < m->n; i++) {
		struct fl_vma *v = &m->v[i];
		const struct fl_vma *s = v->path || strcmp(v->kind, "file") ? NULL : snapshot_cover(snap, n, v);
		if (s && s->path) {
			v->path = s->path;
			v->kind = s->kind;
			fl_store_vma_path(c->store, v->id, v->path, v->kind);
		}
	}
}

void fl_model_resync(struct fl_model *m, const struct fl_change *c, const struct fl_vma *snap, size_t n)
{
	for (size_t i = 0; i < m->n;) {
		if (snapshot_cover(snap, n, &m->v[i])) {
			i++;
			continue;
		}
		end_row(m, c, &m->v[i]);
		splice(m, i, 1, NULL, 0);
	}
	for (size_t s = 0; s < n; s++) {
		/* add the holes of snap[s] that the model lacks */
		__u64 at = snap[s].start;
		size_t i = first_above(m, at);
		while (at < snap[s].end) {
			__u64 hole_end = i < m->n && m->v[i].start < snap[s].end ? m->v[i].start : snap[s].end;
			if (hole_end > at) {
				struct fl_vma v = snap[s];
				v.start = at;
				v.end = hole_end;
				if (v.path)
					v.offset = snap[s].offset + (at - snap[s].start);
				v.created_by = 0;
				v.origin_id = 0;
				write_row(c, &v, 0, c->how);
				splice(m, i, 0, &v, 1);
				i++;
			}
			if (i >= m->n || m->v[i].start >= snap[s].end)
				break;
			at = m->v[i].end;
			i++;
		}
	}
}

/* ---- applying calls ------------------------------------------------------------- */

#define PAGE_UP(x) (((x) + 4095) & ~(__u64)4095)

/* Move the program break to brk, mapping or unmapping heap pages. */
static void set_break(struct fl_model *m, const struct fl_change *c, __u64 brk)
{
	if (!m->brk) {
		const struct fl_vma *heap = NULL;
		for (size_t i = 0; i < m->n && !heap; i++)
			if (!strcmp(m->v[i].kind, "heap"))
				heap = &m->v[i];
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
	}
	v.kind = v.path || (v.flags & MAP_ANONYMOUS) ? fl_model_kind(v.path, v.flags) : "file";
	fl_model_map(m, c, &v);
}

static void apply_shmat(struct fl_model *m, const struct fl_change *c, const struct fl_call *call, const char *path)
{
	const __u64 *a = call->args;
	__u64 res = (__u64)call->result, size = shm_size((int)a[0]);
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
