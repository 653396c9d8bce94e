/* SPDX-License-Identifier: MIT */
/* ingest.c - records to processes, events, VMAs and stacks (see ingest.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "hmap.h"
#include "ingest.h"
#include "model.h"
#include "procfs.h"
#include "stacks.h"
#include "strtab.h"

#define PAGE_UP(x) (((x) + 4095) & ~(__u64)4095)

/* A BPF syscall waiting for its shim twin (which carries the stack), or the reverse. */
struct pending {
	__u32 kind;             /* the syscall kind (shim sbrk -> brk) */
	__u64 key;              /* what must agree: see match_key() */
	__u64 time_ns;
	__s64 event_id;         /* BPF side: the event row */
	__s64 stack_id;         /* shim side: its stack */
	struct fl_call call;    /* shim side: the call, stored as 'shim' if never matched */
	const char *path;
};

#define PENDING_MAX 32
struct tidq {
	struct pending bpf[PENDING_MAX], shim[PENDING_MAX];
	unsigned nbpf, nshim;
};

struct proc {
	__u32 pid, ppid;
	__s64 id;
	const char *exe;        /* interned */
	struct fl_model model;
	__u64 brk;              /* current program break, 0 = not known yet */
	bool ended, watched, shim;
	struct fl_vma *snap;    /* the HELLO snapshot being received */
	size_t nsnap, snap_want;
	__u32 snap_flags;
	__u64 snap_time;
	struct fl_hmap tids;    /* tid -> struct tidq * (BPF mode) */
};

struct fl_ingest {
	struct fl_store *store;
	bool bpf_mode;
	struct fl_hmap by_pid;  /* pid -> struct proc * (the latest of that pid) */
	struct proc **all;
	size_t nall, capall;
	unsigned alive;
	struct fl_stacks *stacks;
	pid_t watch[64];        /* new processes whose exit the loop must watch */
	unsigned nwatch;
};

struct fl_ingest *fl_ingest_new(struct fl_store *store)
{
	struct fl_ingest *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->store = store;
	g->stacks = fl_stacks_new(store);
	if (!g->stacks) {
		free(g);
		return NULL;
	}
	return g;
}

void fl_ingest_use_bpf(struct fl_ingest *g)
{
	g->bpf_mode = true;
}

static void free_proc(struct proc *p)
{
	fl_model_free(&p->model);
	free(p->snap);
	for (size_t i = 0; i < p->tids.cap; i++)
		free((void *)p->tids.vals[i]);
	fl_hmap_free(&p->tids);
	free(p);
}

void fl_ingest_free(struct fl_ingest *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nall; i++)
		free_proc(g->all[i]);
	free(g->all);
	fl_hmap_free(&g->by_pid);
	fl_stacks_free(g->stacks);
	free(g);
}

static struct proc *find(struct fl_ingest *g, __u32 pid)
{
	return (struct proc *)fl_hmap_get(&g->by_pid, pid);
}

/* A new process row; the previous process of that pid (if any) is forgotten. */
static struct proc *add_proc(struct fl_ingest *g, __u32 pid, __u32 ppid, const char *exe, __u64 t)
{
	struct proc *p = calloc(1, sizeof(*p)), *parent = find(g, ppid);
	if (!p)
		return NULL;
	if (g->nall == g->capall) {
		size_t cap = g->capall ? g->capall * 2 : 64;
		struct proc **a = realloc(g->all, cap * sizeof(*a));
		if (!a) {
			free(p);
			return NULL;
		}
		g->all = a;
		g->capall = cap;
	}
	g->all[g->nall++] = p;
	p->pid = pid;
	p->ppid = ppid;
	p->exe = exe;
	p->id = fl_store_process(g->store, pid, ppid, parent ? parent->id : 0, exe, t);
	fl_hmap_put(&g->by_pid, pid, (uintptr_t)p);
	g->alive++;
	if (g->nwatch < sizeof(g->watch) / sizeof(g->watch[0]))
		g->watch[g->nwatch++] = (pid_t)pid;
	return p;
}

/* The live process of pid, created (parent ppid) if the records had not shown it yet. */
static struct proc *live_proc(struct fl_ingest *g, __u32 pid, __u32 ppid, __u64 t)
{
	struct proc *p = find(g, pid);
	return p && !p->ended ? p : add_proc(g, pid, ppid, fl_procfs_exe((pid_t)pid), t);
}

pid_t fl_ingest_next_watch(struct fl_ingest *g)
{
	return g->nwatch ? g->watch[--g->nwatch] : 0;
}

unsigned fl_ingest_alive(const struct fl_ingest *g)
{
	return g->alive;
}

void fl_ingest_root(struct fl_ingest *g, pid_t pid, const char *exe, char *const *argv, __u64 time_ns)
{
	struct proc *p = add_proc(g, (__u32)pid, (__u32)getpid(), exe, time_ns);
	if (!p)
		return;
	g->nwatch--; /* the loop watches the root itself (waitpid) */
	fl_store_process_exe(g->store, p->id, exe, argv);
}

static struct fl_change change(struct fl_ingest *g, struct proc *p, __u64 t, __s64 event_id, const char *how)
{
	return (struct fl_change){ .store = g->store, .proc_id = p->id, .pid = p->pid, .time_ns = t,
				   .event_id = event_id, .how = how };
}

/* ---- applying calls to the model ------------------------------------------------ */

/* Move the program break to brk, mapping or unmapping heap pages. */
static void set_break(struct proc *p, const struct fl_change *ch, __u64 brk)
{
	if (!p->brk) {
		const struct fl_vma *heap = NULL;
		for (size_t i = 0; i < p->model.n && !heap; i++)
			if (!strcmp(p->model.v[i].kind, "heap"))
				heap = &p->model.v[i];
		p->brk = heap ? heap->end : brk;
	}
	__u64 old = PAGE_UP(p->brk), now = PAGE_UP(brk);
	if (now > old) {
		struct fl_vma v = { .start = old, .end = now, .prot = PROT_READ | PROT_WRITE,
				    .flags = MAP_PRIVATE | MAP_ANONYMOUS, .kind = "heap",
				    .path = fl_strtab_intern("[heap]") };
		fl_model_map(&p->model, ch, &v);
	} else if (now < old) {
		fl_model_unmap(&p->model, ch, now, old);
	}
	p->brk = brk;
}

/* shmdt: the segment is every VMA from addr on that came from the same shmat. */
static void detach_shm(struct proc *p, const struct fl_change *ch, __u64 addr)
{
	const struct fl_vma *v = fl_model_find(&p->model, addr);
	if (!v)
		return;
	__s64 origin = v->origin_id;
	__u64 end = v->end;
	for (const struct fl_vma *w; (w = fl_model_find(&p->model, end)) && w->origin_id == origin;)
		end = w->end;
	fl_model_unmap(&p->model, ch, addr, end);
}

static __u64 shm_size(int shmid)
{
	struct shmid_ds ds;
	return shmctl(shmid, IPC_STAT, &ds) == 0 ? ds.shm_segsz : 0;
}

/*
 * Apply a successful address-space call to the process's model.  from_kernel:
 * the call is the syscall as BPF saw it (brk returns the new break), not
 * libc's wrapper (brk returns 0 and the break is its argument).
 */
static void apply_call(struct proc *p, const struct fl_change *ch, const struct fl_call *c, const char *path,
		       bool from_kernel)
{
	const __u64 *a = c->args;
	__u64 res = (__u64)c->result;
	if (c->err)
		return;
	switch (c->kind) {
	case FL_K_MMAP: {
		struct fl_vma v = { .start = res, .end = res + PAGE_UP(a[1]), .prot = (__u32)a[2],
				    .flags = (__u32)a[3], .path = path };
		if (!(v.flags & MAP_ANONYMOUS)) {
			v.offset = a[5];
			if (!v.path)
				v.path = fl_procfs_mapped_path((pid_t)p->pid, v.start, v.end, (int)a[4]);
		}
		v.kind = fl_model_kind(v.path, v.flags);
		fl_model_map(&p->model, ch, &v);
		break;
	}
	case FL_K_MUNMAP:
		fl_model_unmap(&p->model, ch, a[0], a[0] + PAGE_UP(a[1]));
		break;
	case FL_K_MPROTECT:
	case FL_K_PKEY_MPROTECT:
		fl_model_protect(&p->model, ch, a[0], a[0] + PAGE_UP(a[1]), (__u32)a[2] & 7);
		break;
	case FL_K_MREMAP:
		fl_model_remap(&p->model, ch, a[0], PAGE_UP(a[1]), res, PAGE_UP(a[2]), (__u32)a[3]);
		break;
	case FL_K_BRK:
		/* the syscall returns the new break; libc's brk() returns 0 and the break is its argument */
		set_break(p, ch, from_kernel ? res : a[0]);
		break;
	case FL_K_SBRK:
		if (!p->brk)
			p->brk = res; /* sbrk returns the old break: the first one tells where the heap ends */
		set_break(p, ch, res + a[0]);
		break;
	case FL_K_SHMAT: {
		__u64 size = shm_size((int)a[0]);
		struct fl_vma v = { .start = res, .end = res + PAGE_UP(size), .flags = MAP_SHARED,
				    .prot = PROT_READ | ((a[2] & SHM_RDONLY) ? 0 : PROT_WRITE) |
					    ((a[2] & SHM_EXEC) ? PROT_EXEC : 0),
				    .kind = "shm", .path = path };
		if (size)
			fl_model_map(&p->model, ch, &v);
		break;
	}
	case FL_K_SHMDT:
		detach_shm(p, ch, a[0]);
		break;
	}
}

/* ---- shim records ---------------------------------------------------------------- */

static void begin_exec(struct fl_ingest *g, struct proc *p, __u64 t, const char *exe, const char *source)
{
	struct fl_call c = { .kind = FL_K_EXEC, .pid = p->pid, .tid = p->pid, .time_ns = t };
	__s64 ev = fl_store_event(g->store, p->id, &c, source, exe, 0);
	struct fl_change ch = change(g, p, t, ev, "exec");
	fl_model_clear(&p->model, &ch);
	p->brk = 0;
	p->exe = exe;
	char **argv = fl_procfs_argv((pid_t)p->pid);
	fl_store_process_exe(g->store, p->id, exe, argv);
	free(argv);
}

static void on_hello(struct fl_ingest *g, const struct fl_hello *h)
{
	struct proc *p = find(g, h->pid);
	const char *exe = fl_strtab_intern(h->exe);
	if (h->abi != FL_ABI_VERSION) {
		char msg[160];
		snprintf(msg, sizeof(msg), "shim ABI %u differs from the collector's %u: pid %u not recorded by the shim",
			 h->abi, FL_ABI_VERSION, h->pid);
		fl_store_message(g->store, h->time_ns, h->pid, msg);
		return;
	}
	if (p && !p->ended && (h->flags & FL_HELLO_EXECED) && !g->bpf_mode)
		begin_exec(g, p, h->time_ns, exe, "shim");
	else if (!p || p->ended)
		p = add_proc(g, h->pid, h->ppid, exe, h->time_ns);
	if (!p)
		return;
	if (!(h->flags & FL_HELLO_FORKED)) {
		char **argv = fl_procfs_argv((pid_t)p->pid);
		if (argv)
			fl_store_process_exe(g->store, p->id, exe, argv);
		free(argv);
	}
	if (!p->shim)
		fl_store_process_shim(g->store, p->id);
	p->shim = true;
	free(p->snap);
	p->snap = calloc(h->nmappings ? h->nmappings : 1, sizeof(*p->snap));
	p->nsnap = 0;
	p->snap_want = h->nmappings;
	p->snap_flags = h->flags;
	p->snap_time = h->time_ns;
}

/* The whole HELLO snapshot arrived: it is the shim-mode ground truth for the process's start. */
static void apply_snapshot(struct fl_ingest *g, struct proc *p)
{
	struct proc *parent = find(g, p->ppid);
	if (!g->bpf_mode || !p->model.n) {
		const char *how = p->model.n ? "resync" : "snapshot";
		if ((p->snap_flags & FL_HELLO_FORKED) && parent && !p->model.n) {
			struct fl_change fc = change(g, p, p->snap_time, 0, "fork");
			fl_model_fork(&p->model, &parent->model, &fc);
			how = "resync";
		}
		struct fl_change ch = change(g, p, p->snap_time, 0, how);
		fl_model_resync(&p->model, &ch, p->snap, p->nsnap);
	}
	free(p->snap);
	p->snap = NULL;
	p->snap_want = p->nsnap = 0;
}

static void on_mapping(struct fl_ingest *g, const struct fl_mapping *m)
{
	struct proc *p = find(g, m->pid);
	if (!p || !p->snap || p->nsnap >= p->snap_want)
		return;
	struct fl_vma *v = &p->snap[p->nsnap++];
	memset(v, 0, sizeof(*v));
	v->start = m->start;
	v->end = m->end;
	v->offset = m->offset;
	v->inode = m->inode;
	v->prot = m->prot;
	v->flags = (m->flags & FL_MAP_SHARED) ? MAP_SHARED : MAP_PRIVATE;
	if (!m->inode && !m->path[0])
		v->flags |= MAP_ANONYMOUS;
	v->kind = fl_model_kind(m->path, v->flags);
	v->path = m->path[0] ? fl_strtab_intern(m->path) : NULL;
	if (!m->inode && m->path[0] != '/')
		v->offset = 0;
	if (p->nsnap == p->snap_want)
		apply_snapshot(g, p);
}

/* Which syscall a shim call is, for matching (libc sbrk is the brk syscall). */
static __u32 syscall_kind(__u32 kind)
{
	return kind == FL_K_SBRK ? FL_K_BRK : kind;
}

/* What a BPF syscall and its shim twin agree on. */
static __u64 match_key(const struct fl_call *c)
{
	switch (c->kind) {
	case FL_K_MMAP:
	case FL_K_MREMAP:
	case FL_K_SHMAT:
		return c->err ? (__u64)-c->err : (__u64)c->result;
	case FL_K_SBRK:
		return (__u64)c->result + c->args[0];    /* the break asked for, brk's argument */
	default:
		return c->args[0];
	}
}

static struct tidq *tid_queue(struct proc *p, __u32 tid)
{
	struct tidq *q = (struct tidq *)fl_hmap_get(&p->tids, tid);
	if (!q && (q = calloc(1, sizeof(*q))))
		fl_hmap_put(&p->tids, tid, (uintptr_t)q);
	return q;
}

static void drop_front(struct pending *a, unsigned *n)
{
	memmove(a, a + 1, (--*n) * sizeof(*a));
}

/* Store a shim call that no syscall matched (it never reached the kernel, or BPF missed it). */
static void store_unmatched_shim(struct fl_ingest *g, struct proc *p, const struct pending *s)
{
	fl_store_event(g->store, p->id, &s->call, "shim", s->path, s->stack_id);
}

/*
 * Pair a syscall with its stack: the oldest waiting entry of the other side
 * with the same kind and key.  Older entries of the other side that were
 * skipped stay (calls of one thread are in order on both sides, but the
 * shim does not see every syscall and the kernel does not see every libc call).
 */
static int take_match(struct pending *a, unsigned *n, __u32 kind, __u64 key, struct pending *out)
{
	for (unsigned i = 0; i < *n; i++) {
		if (a[i].kind == kind && a[i].key == key) {
			*out = a[i];
			memmove(&a[i], &a[i + 1], (*n - i - 1) * sizeof(*a));
			(*n)--;
			return 1;
		}
	}
	return 0;
}

static void on_shim_call(struct fl_ingest *g, const struct fl_call_rec *r)
{
	const struct fl_call *c = &r->call;
	struct proc *p = find(g, c->pid);
	if (!p)
		return;
	__s64 stack = fl_stacks_intern(g->stacks, &p->model, r->frames, r->h.nframes);
	const char *path = NULL;
	size_t fixed = sizeof(*r) + r->h.nframes * sizeof(__u64);
	if (c->kind == FL_K_DLOPEN && r->h.size > fixed)
		path = fl_strtab_intern((const char *)r + fixed);
	bool has_syscall = c->kind <= FL_K_MADVISE || c->kind == FL_K_SHMAT || c->kind == FL_K_SHMDT;
	if (!g->bpf_mode || !has_syscall) {
		__s64 ev = fl_store_event(g->store, p->id, c, "shim", path, stack);
		struct fl_change ch = change(g, p, c->time_ns, ev, "call");
		if (!g->bpf_mode)
			apply_call(p, &ch, c, path, false);
		return;
	}
	struct tidq *q = tid_queue(p, c->tid);
	if (!q)
		return;
	struct pending s = { .kind = syscall_kind(c->kind), .key = match_key(c), .time_ns = c->time_ns,
			     .stack_id = stack, .call = *c, .path = path }, b;
	if (take_match(q->bpf, &q->nbpf, s.kind, s.key, &b)) {
		fl_store_event_stack(g->store, b.event_id, stack);
		return;
	}
	if (q->nshim == PENDING_MAX) {
		store_unmatched_shim(g, p, &q->shim[0]);
		drop_front(q->shim, &q->nshim);
	}
	q->shim[q->nshim++] = s;
}

static void on_note(struct fl_ingest *g, const struct fl_note *n)
{
	char text[sizeof(n->text) + 1];
	memcpy(text, n->text, sizeof(n->text));
	text[sizeof(n->text)] = 0;
	fl_store_message(g->store, 0, n->pid, text);
}

void fl_ingest_shim(void *ctx, const struct fl_rec *rec)
{
	struct fl_ingest *g = ctx;
	switch (rec->type) {
	case FL_R_HELLO:
		if (rec->size >= sizeof(struct fl_hello))
			on_hello(g, (const struct fl_hello *)rec);
		break;
	case FL_R_MAPPING:
		if (rec->size >= sizeof(struct fl_mapping))
			on_mapping(g, (const struct fl_mapping *)rec);
		break;
	case FL_R_CALL:
		if (rec->size >= sizeof(struct fl_call_rec) + rec->nframes * sizeof(__u64))
			on_shim_call(g, (const struct fl_call_rec *)rec);
		break;
	case FL_R_NOTE:
		if (rec->size >= sizeof(struct fl_note))
			on_note(g, (const struct fl_note *)rec);
		break;
	}
}

/* ---- BPF records ------------------------------------------------------------------- */

void fl_ingest_bpf_call(void *ctx, const struct fl_call *c)
{
	struct fl_ingest *g = ctx;
	struct proc *p = live_proc(g, c->pid, 0, c->time_ns);
	if (!p)
		return;
	__s64 ev = fl_store_event(g->store, p->id, c, "bpf", NULL, 0);
	struct fl_change ch = change(g, p, c->time_ns, ev, "call");
	apply_call(p, &ch, c, NULL, true);
	struct tidq *q = tid_queue(p, c->tid);
	if (!q)
		return;
	struct pending b = { .kind = c->kind, .key = match_key(c), .time_ns = c->time_ns, .event_id = ev }, s;
	if (take_match(q->shim, &q->nshim, b.kind, b.key, &s)) {
		fl_store_event_stack(g->store, ev, s.stack_id);
		return;
	}
	if (q->nbpf == PENDING_MAX)
		drop_front(q->bpf, &q->nbpf);
	q->bpf[q->nbpf++] = b;
}

void fl_ingest_bpf_task(void *ctx, const struct fl_task *t)
{
	struct fl_ingest *g = ctx;
	switch (t->kind) {
	case FL_T_FORK: {
		if (t->is_thread)
			break;
		struct proc *parent = find(g, t->ppid);
		struct proc *p = add_proc(g, t->pid, t->ppid, parent ? parent->exe : NULL, t->time_ns);
		if (!p)
			break;
		if (parent) {
			struct fl_change ch = change(g, p, t->time_ns, 0, "fork");
			fl_model_fork(&p->model, &parent->model, &ch);
			p->brk = parent->brk;
		}
		break;
	}
	case FL_T_EXEC: {
		struct proc *p = live_proc(g, t->pid, t->ppid, t->time_ns);
		if (!p)
			break;
		const char *exe = fl_procfs_exe((pid_t)t->pid);
		if (!exe)
			exe = fl_strtab_intern(t->path);
		begin_exec(g, p, t->time_ns, exe, "bpf");
		struct fl_vma *snap;
		size_t n;
		if (fl_procfs_maps((pid_t)t->pid, &snap, &n) == 0) {
			struct fl_change ch = change(g, p, t->time_ns, 0, "exec");
			fl_model_resync(&p->model, &ch, snap, n);
			free(snap);
		}
		break;
	}
	case FL_T_EXIT: {
		struct proc *p = find(g, t->pid);
		if (p && !p->ended)
			fl_store_process_faults(g->store, p->id, t->min_flt, t->maj_flt);
		int sig = t->exit_code & 0x7f;
		fl_ingest_exit(g, (pid_t)t->pid, t->time_ns, sig ? -1 : (t->exit_code >> 8) & 0xff, sig ? sig : -1);
		break;
	}
	}
}

void fl_ingest_bpf_rss(void *ctx, const struct fl_rss *r)
{
	struct fl_ingest *g = ctx;
	struct proc *p = find(g, r->pid);
	if (p)
		fl_store_rss(g->store, p->id, r->time_ns, r->anon, r->file, r->shmem, r->swap, "bpf");
}

void fl_ingest_bpf_faults(void *ctx, const struct fl_fault_key *k, const struct fl_fault_counts *c)
{
	struct fl_ingest *g = ctx;
	struct proc *p = find(g, k->tgid);
	if (!p)
		return;
	/* vm_end 0: BPF could not look the VMA up; vm_start is then the faulting page */
	__s64 vma = fl_model_attribute(&p->model, k->vm_start, k->vm_end ? k->vm_end : k->vm_start + 1);
	if (vma)
		fl_store_fault(g->store, vma, p->id, c->last_ns, c);
}

void fl_ingest_bpf_site(void *ctx, const struct fl_site_key *k, __u64 count)
{
	struct fl_ingest *g = ctx;
	struct proc *p = find(g, k->tgid);
	if (!p)
		return;
	__s64 vma = fl_model_attribute(&p->model, k->vm_start, k->vm_start + 1);
	__s64 frame = fl_stacks_frame(g->stacks, &p->model, k->ip);
	if (vma && frame)
		fl_stacks_add_site(g->stacks, vma, p->id, fl_fault_class_name(k->cls), frame, count);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

/* Store the shim calls of p no syscall claimed; forget the waiting syscalls (they have no stack). */
static void flush_pending(struct fl_ingest *g, struct proc *p)
{
	for (size_t i = 0; i < p->tids.cap; i++) {
		struct tidq *q = (struct tidq *)p->tids.vals[i];
		if (!q)
			continue;
		for (unsigned k = 0; k < q->nshim; k++)
			store_unmatched_shim(g, p, &q->shim[k]);
		q->nshim = q->nbpf = 0;
	}
}

void fl_ingest_exit(struct fl_ingest *g, pid_t pid, __u64 time_ns, int exit_code, int exit_signal)
{
	struct proc *p = find(g, (__u32)pid);
	if (!p || p->ended)
		return;
	if (p->snap)
		apply_snapshot(g, p);
	flush_pending(g, p);
	p->ended = true;
	g->alive--;
	fl_store_process_end(g->store, p->id, time_ns, exit_code, exit_signal);
}

/*
 * Shim mode only: mappings the shim cannot see (glibc malloc's internal
 * mmap and brk, ld.so loading a library, raw syscalls) are learned from
 * /proc/PID/maps, stamped with the time they were seen.  Only done when the
 * channel is drained, so the calls the shim did see are in the model first.
 */
static void resync_from_proc(struct fl_ingest *g, struct proc *p, __u64 now_ns)
{
	struct fl_vma *snap;
	size_t n;
	if (fl_procfs_maps((pid_t)p->pid, &snap, &n))
		return;
	struct fl_change ch = change(g, p, now_ns, 0, "resync");
	fl_model_resync(&p->model, &ch, snap, n);
	free(snap);
}

void fl_ingest_sample(struct fl_ingest *g, __u64 now_ns, bool quiet)
{
	if (g->bpf_mode)
		return;
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		__u64 anon, file, shmem, swap, mn, mj;
		if (p->ended)
			continue;
		if (fl_procfs_rss((pid_t)p->pid, &anon, &file, &shmem, &swap) == 0)
			fl_store_rss(g->store, p->id, now_ns, anon, file, shmem, swap, "proc");
		if (fl_procfs_faults((pid_t)p->pid, &mn, &mj) == 0)
			fl_store_process_faults(g->store, p->id, mn, mj);
		if (quiet && p->shim && !p->snap)
			resync_from_proc(g, p, now_ns);
	}
}

void fl_ingest_finish(struct fl_ingest *g, __u64 end_ns)
{
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		if (!p->ended) {
			fl_ingest_exit(g, (pid_t)p->pid, end_ns, -1, -1);
		}
	}
	fl_stacks_finish(g->stacks);
}
