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
#include "vec.h"

#define PAGE_UP(x) (((x) + 4095) & ~(__u64)4095)

/*
 * BPF mode: a syscall waiting for its shim twin (which carries the stack),
 * or a shim call waiting for its syscall.  A shim call's frames stay raw
 * until it is matched or settled, so they are resolved against the address
 * space as it was at that call (after an exec the shim's first calls can be
 * read before the kernel's exec record).
 */
struct pending {
	__u32 kind;             /* the syscall kind (shim sbrk -> brk); shim-only kinds never match */
	__u64 key;              /* what must agree: see match_key() */
	__u64 time_ns;
	__s64 event_id;         /* BPF side: the event row's id, reserved */
	struct fl_call call;    /* the call, written when matched or known never to be */
	const char *path;
	__u64 *frames;          /* shim side: return addresses (malloc'd) */
	unsigned nframes;
};

/*
 * A thread's waiting calls, oldest first.  The BPF side can run far ahead
 * of the shim's (the collector may read a burst of kernel records before
 * the channel), so the queues grow, up to PENDING_MAX.
 */
#define PENDING_MAX 65536
struct queue {
	struct pending *a;
	unsigned n, cap;
};
struct tidq {
	struct queue bpf, shim;
};

struct proc {
	__u32 pid, ppid;
	__s64 id;
	const char *exe;        /* interned */
	__u64 exec_ns;          /* its first exec, 0 if none */
	bool exec_unseen;       /* BPF mode: its maps after exec could not be read (it was gone) */
	__u64 image_ns;         /* its latest exec */
	__u64 prexec[2];        /* minor, major faults before that exec (faultline's launcher) */
	struct fl_model model;
	__u64 brk;              /* current program break, 0 = not known yet */
	bool ended, shim;
	struct fl_vma *exec_vmas; /* BPF: the VMAs of an image whose exec record comes next */
	size_t nexec_vmas, capexec_vmas;
	struct fl_vma *last_snap; /* the latest complete HELLO snapshot, and when it was taken */
	size_t nlast_snap;
	__u64 last_snap_time;
	struct fl_vma *snap;    /* the HELLO snapshot being received */
	size_t nsnap, snap_want;
	__u32 snap_flags;
	__u64 snap_time;
	struct fl_hmap tids;    /* tid -> struct tidq * (BPF mode) */
};

/*
 * Fault counts are held until fl_ingest_attribute_faults(): the VMA a count
 * belongs to may have been made by a syscall whose record was still in the
 * ring buffer when the counts were read.
 */
struct held_fault {
	struct fl_fault_key k;
	struct fl_fault_counts c;
};

struct held_site {
	struct fl_site_key k;
	__u64 count;
};

struct fl_ingest {
	struct fl_store *store;
	bool bpf_mode;
	struct fl_hmap by_pid;  /* pid -> struct proc * (the latest of that pid) */
	struct proc **all;
	size_t nall, capall;
	unsigned alive;
	struct fl_stacks *stacks;
	__u64 unattributed;     /* faults counted in a range no VMA of the model held */
	__u64 last_attribution; /* when the counts last attributed were read, less a margin */
	struct held_fault *faults;  /* read from BPF, not yet attributed */
	size_t nfaults, capfaults;
	struct held_site *sites;
	size_t nsites, capsites;
	pid_t *watch;           /* new processes whose exit the loop must watch */
	size_t nwatch, capwatch;
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
	free(p->last_snap);
	free(p->exec_vmas);
	for (size_t i = 0; i < p->tids.cap; i++) {
		struct tidq *q = (struct tidq *)p->tids.vals[i];
		if (!q)
			continue;
		free(q->bpf.a);
		free(q->shim.a);
		free(q);
	}
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
	free(g->faults);
	free(g->sites);
	free(g->watch);
	free(g);
}

static struct proc *find(struct fl_ingest *g, __u32 pid)
{
	return (struct proc *)fl_hmap_get(&g->by_pid, pid);
}

/* A new process row; a previous process of that pid is over (its pid was reused). */
static struct proc *add_proc(struct fl_ingest *g, __u32 pid, __u32 ppid, const char *exe, __u64 t)
{
	struct proc *p = calloc(1, sizeof(*p)), *parent = find(g, ppid), *old = find(g, pid);
	if (!p)
		return NULL;
	if (old && !old->ended)
		fl_ingest_exit(g, (pid_t)pid, t, -1, -1);
	if (fl_vec_reserve((void **)&g->all, &g->capall, g->nall + 1, sizeof(*g->all))) {
		free(p);
		return NULL;
	}
	g->all[g->nall++] = p;
	p->pid = pid;
	p->ppid = ppid;
	p->exe = exe;
	p->id = fl_store_process(g->store, pid, ppid, parent ? parent->id : 0, exe, t);
	fl_hmap_put(&g->by_pid, pid, (uintptr_t)p);
	g->alive++;
	/* without a watch its exit would still end it via BPF; only a shim-mode child could go unseen */
	if (!fl_vec_reserve((void **)&g->watch, &g->capwatch, g->nwatch + 1, sizeof(*g->watch)))
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

static struct fl_change change(struct fl_ingest *g, struct proc *p, __u64 t, __s64 event_id, const char *how)
{
	return (struct fl_change){ .store = g->store, .proc_id = p->id, .pid = p->pid, .time_ns = t,
				   .event_id = event_id, .how = how };
}

/*
 * Reconcile p's model with /proc/PID/maps, rows stamped with the time they
 * were seen.  In shim mode this is how mappings the shim cannot see (glibc
 * malloc's internal mmap and brk, ld.so loading a library, raw syscalls)
 * get in, only when the channel is drained so the calls the shim did see
 * are in the model first.
 */
static void resync_from_proc(struct fl_ingest *g, struct proc *p, __u64 now_ns, const char *how)
{
	struct fl_vma *snap;
	size_t n;
	if (fl_procfs_maps((pid_t)p->pid, &snap, &n))
		return;
	struct fl_change ch = change(g, p, now_ns, 0, how);
	fl_model_resync(&p->model, &ch, snap, n);
	free(snap);
}

void fl_ingest_root(struct fl_ingest *g, pid_t pid, const char *exe, char *const *argv, __u64 time_ns)
{
	struct proc *p = add_proc(g, (__u32)pid, (__u32)getpid(), exe, time_ns);
	if (!p)
		return;
	g->nwatch--; /* the loop watches the root itself (waitpid) */
	fl_store_process_exe(g->store, p->id, exe, argv);
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
			v.inode = c->inode;
			if (!v.path)
				v.path = fl_procfs_mapped_path((pid_t)p->pid, v.start, v.end, (int)a[4], c->dev,
							       c->inode);
		}
		v.kind = v.path || (v.flags & MAP_ANONYMOUS) ? fl_model_kind(v.path, v.flags) : "file";
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
	if (!p->exec_ns)
		p->exec_ns = t;
	p->image_ns = t;
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
	/* a hello read after the kernel's record of a later exec speaks of an image already gone */
	if (!(h->flags & FL_HELLO_FORKED) && h->time_ns >= p->image_ns) {
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
	if (p->snap_time < p->image_ns) {
		/* of an image a later exec replaced (read late, in BPF mode): nothing to learn */
	} else if (g->bpf_mode && !p->exec_unseen) {
		/*
		 * The kernel's records are the truth; the snapshot can only name
		 * files.  An empty model is a process whose fork or exec record
		 * is still unread: that record builds it (with last_snap's help).
		 */
		struct fl_change ch = change(g, p, p->snap_time, 0, "resync");
		if (!(p->snap_flags & FL_HELLO_EXECED)) /* else the model may still be the old image's */
			fl_model_fill_paths(&p->model, &ch, p->snap, p->nsnap);
	} else {
		p->exec_unseen = false;
		const char *how = p->model.n ? "resync" : "snapshot";
		if ((p->snap_flags & FL_HELLO_FORKED) && parent && !p->model.n) {
			struct fl_change fc = change(g, p, p->snap_time, 0, "fork");
			fl_model_fork(&p->model, &parent->model, &fc);
			how = "resync";
		}
		struct fl_change ch = change(g, p, p->snap_time, 0, how);
		fl_model_resync(&p->model, &ch, p->snap, p->nsnap);
	}
	/* kept: the kernel's exec record may still be unread, and the process gone when it is */
	free(p->last_snap);
	p->last_snap = p->snap;
	p->nlast_snap = p->nsnap;
	p->last_snap_time = p->snap_time;
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

/*
 * What a BPF syscall and its shim twin agree on: the arguments libc passes
 * through unchanged, and the outcome.  (Not mremap's new_address: glibc
 * reads it only with MREMAP_FIXED, so the register may hold anything.)
 */
static __u64 match_key(const struct fl_call *c)
{
	static const unsigned nargs[FL_K_COUNT] = {
		[FL_K_MMAP] = 6, [FL_K_MUNMAP] = 2, [FL_K_MPROTECT] = 3, [FL_K_PKEY_MPROTECT] = 4,
		[FL_K_MREMAP] = 4, [FL_K_BRK] = 1, [FL_K_MADVISE] = 3, [FL_K_SHMAT] = 3, [FL_K_SHMDT] = 1,
	};
	__u64 a[6], outcome = c->err ? (__u64)-c->err : (__u64)c->result;
	unsigned kind = syscall_kind(c->kind), n = kind < FL_K_COUNT ? nargs[kind] : 0;
	memcpy(a, c->args, sizeof(a));
	if (c->kind == FL_K_SBRK) {
		/* sbrk(incr) is brk(old + incr); both report the break asked for */
		a[0] = (__u64)c->result + c->args[0];
		outcome = a[0];
	} else if (kind == FL_K_BRK) {
		outcome = a[0]; /* libc's brk returns 0, the syscall the new break */
	}
	__u64 h = fl_hash64(kind ^ (outcome << 8));
	for (unsigned i = 0; i < n; i++)
		h = fl_hash64(h ^ a[i]);
	return h;
}

static struct tidq *tid_queue(struct proc *p, __u32 tid)
{
	struct tidq *q = (struct tidq *)fl_hmap_get(&p->tids, tid);
	if (!q && (q = calloc(1, sizeof(*q))))
		fl_hmap_put(&p->tids, tid, (uintptr_t)q);
	return q;
}

/* Remove the first k entries of q. */
static void drop_front(struct queue *q, unsigned k)
{
	memmove(q->a, q->a + k, (q->n - k) * sizeof(*q->a));
	q->n -= k;
}

/* Append e; at PENDING_MAX the oldest entry gives way (returned in *old, else old->kind = 0). */
static void push(struct queue *q, const struct pending *e, struct pending *old)
{
	old->kind = FL_K_NONE;
	if (q->n == q->cap && q->cap < PENDING_MAX) {
		unsigned cap = q->cap ? q->cap * 2 : 16;
		struct pending *a = realloc(q->a, cap * sizeof(*a));
		if (a) {
			q->a = a;
			q->cap = cap;
		}
	}
	if (q->n == q->cap) {
		if (!q->n)
			return;
		*old = q->a[0];
		drop_front(q, 1);
	}
	q->a[q->n++] = *e;
}

/* The stack of a waiting shim call, resolved in p's address space as it is now; frees the frames. */
static __s64 settle_stack(struct fl_ingest *g, struct proc *p, struct pending *s)
{
	__s64 stack = fl_stacks_intern(g->stacks, &p->model, s->frames, s->nframes);
	free(s->frames);
	s->frames = NULL;
	return stack;
}

/* Write a kernel call with its stack (0: the shim saw no such call). */
static void store_kernel_call(struct fl_ingest *g, struct proc *p, const struct pending *b, __s64 stack)
{
	fl_store_event_at(g->store, b->event_id, p->id, &b->call, stack ? "both" : "bpf", NULL, stack);
}

/* Store a shim call no syscall matched: a libc-only call (fork, dlopen), or one that failed in libc. */
static void store_shim_only(struct fl_ingest *g, struct proc *p, struct pending *s)
{
	__s64 stack = settle_stack(g, p, s);
	fl_store_event(g->store, p->id, &s->call, "shim", s->path, stack);
}

/*
 * Pair a call with its twin: the oldest waiting entry of the other side with
 * the same kind and key.  One thread's calls are in order on both sides, so
 * the entries before the twin can have no twin any more: the shim does not
 * see glibc's internal syscalls, nor the kernel libc calls that fail early.
 * Those before it are returned to the caller by count in *skipped.
 */
static int take_match(struct queue *q, __u32 kind, __u64 key, struct pending *out, unsigned *skipped)
{
	for (unsigned i = 0; i < q->n; i++) {
		if (q->a[i].kind == kind && q->a[i].key == key) {
			*out = q->a[i];
			*skipped = i;
			memmove(&q->a[i], &q->a[i + 1], (q->n - i - 1) * sizeof(*q->a));
			q->n--;
			return 1;
		}
	}
	return 0;
}

/*
 * A syscall of this thread returned at time t: shim calls older than t that
 * are still waiting will get no twin (the kernel's exit time precedes the
 * shim's timestamp, and one thread's calls are ordered), so store them.
 */
static void settle_older(struct fl_ingest *g, struct proc *p, struct queue *shim, __u64 t)
{
	unsigned k = 0;
	while (k < shim->n && shim->a[k].time_ns < t)
		store_shim_only(g, p, &shim->a[k++]);
	drop_front(shim, k);
}

/* BPF mode: a shim call meets its syscall, or waits for it. */
static void match_shim_call(struct fl_ingest *g, struct proc *p, const struct fl_call_rec *r, const char *path)
{
	const struct fl_call *c = &r->call;
	struct tidq *q = tid_queue(p, c->tid);
	if (!q)
		return;
	struct pending s = { .kind = syscall_kind(c->kind), .key = match_key(c), .time_ns = c->time_ns,
			     .call = *c, .path = path, .nframes = r->h.nframes }, b;
	unsigned skipped;
	if (take_match(&q->bpf, s.kind, s.key, &b, &skipped)) {
		for (unsigned i = 0; i < skipped; i++) /* syscalls the shim never saw: no stack */
			store_kernel_call(g, p, &q->bpf.a[i], 0);
		drop_front(&q->bpf, skipped);
		store_kernel_call(g, p, &b, fl_stacks_intern(g->stacks, &p->model, r->frames, r->h.nframes));
		return;
	}
	if (s.nframes && !(s.frames = malloc(s.nframes * sizeof(__u64))))
		s.nframes = 0;
	if (s.frames)
		memcpy(s.frames, r->frames, s.nframes * sizeof(__u64));
	push(&q->shim, &s, &b);
	if (b.kind)
		store_shim_only(g, p, &b);
}

static void on_shim_call(struct fl_ingest *g, const struct fl_call_rec *r)
{
	const struct fl_call *c = &r->call;
	struct proc *p = find(g, c->pid);
	if (!p)
		return;
	const char *path = NULL;
	size_t fixed = sizeof(*r) + r->h.nframes * sizeof(__u64);
	if (c->kind == FL_K_DLOPEN && r->h.size > fixed)
		path = fl_strtab_intern((const char *)r + fixed);
	if (g->bpf_mode) {
		match_shim_call(g, p, r, path);
		return;
	}
	__s64 stack = fl_stacks_intern(g->stacks, &p->model, r->frames, r->h.nframes);
	__s64 ev = fl_store_event(g->store, p->id, c, "shim", path, stack);
	struct fl_change ch = change(g, p, c->time_ns, ev, "call");
	apply_call(p, &ch, c, path, false);
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

void fl_ingest_bpf_call(void *ctx, const struct fl_call *call)
{
	struct fl_ingest *g = ctx;
	struct fl_call norm = *call, *c = &norm;
	/* mmap's fd is an int: the register's upper half is not part of it (libc passes -1, the kernel sees 0xffffffff) */
	if (c->kind == FL_K_MMAP)
		c->args[4] = (__u64)(__s64)(int)c->args[4];
	struct proc *p = live_proc(g, c->pid, 0, c->time_ns);
	if (!p)
		return;
	/* the row is written once its stack is known (matched) or known not to come */
	__s64 ev = fl_store_event_reserve(g->store);
	struct fl_change ch = change(g, p, c->time_ns, ev, "call");
	apply_call(p, &ch, c, NULL, true);
	struct tidq *q = tid_queue(p, c->tid);
	struct pending b = { .kind = c->kind, .key = match_key(c), .time_ns = c->time_ns, .event_id = ev,
			     .call = *c }, s;
	unsigned skipped;
	if (!q) {
		store_kernel_call(g, p, &b, 0);
		return;
	}
	if (take_match(&q->shim, b.kind, b.key, &s, &skipped)) {
		store_kernel_call(g, p, &b, settle_stack(g, p, &s));
	} else {
		push(&q->bpf, &b, &s);
		if (s.kind) /* the oldest waiting syscall gave way: it keeps no stack */
			store_kernel_call(g, p, &s, 0);
	}
	settle_older(g, p, &q->shim, c->time_ns);
}

/* Append size bytes at item to a growable array. Returns 0 or -1. */
static int hold(void **a, size_t *n, size_t *cap, const void *item, size_t size)
{
	if (fl_vec_reserve(a, cap, *n + 1, size))
		return -1;
	memcpy((char *)*a + (*n)++ * size, item, size);
	return 0;
}

void fl_ingest_bpf_vma(void *ctx, const struct fl_vma_rec *r)
{
	struct fl_ingest *g = ctx;
	struct proc *p = find(g, r->pid);
	if (!p)
		return;
	/* the kernel sends them in address order: a lower start begins another image's list */
	if (p->nexec_vmas && r->start < p->exec_vmas[p->nexec_vmas - 1].start)
		p->nexec_vmas = 0;
	if (hold((void **)&p->exec_vmas, &p->nexec_vmas, &p->capexec_vmas, &(struct fl_vma){ 0 },
		 sizeof(struct fl_vma)))
		return;
	struct fl_vma *v = &p->exec_vmas[p->nexec_vmas - 1];
	v->start = r->start;
	v->end = r->end;
	v->prot = (r->flags & FL_VMA_READ ? PROT_READ : 0) | (r->flags & FL_VMA_WRITE ? PROT_WRITE : 0) |
		  (r->flags & FL_VMA_EXEC ? PROT_EXEC : 0);
	v->flags = (r->flags & FL_VMA_SHARED ? MAP_SHARED : MAP_PRIVATE) | (r->inode ? 0 : MAP_ANONYMOUS);
	v->inode = r->inode;
	v->offset = r->inode ? r->pgoff << 12 : 0;
	v->dev = r->dev;
	v->kind = r->flags & FL_VMA_STACK ? "stack" : r->flags & FL_VMA_HEAP ? "heap" :
		  r->flags & FL_VMA_SPECIAL ? (r->flags & FL_VMA_EXEC ? "vdso" : "vvar") :
		  r->inode ? "file" : "anon";
}

/*
 * The image exec'd as the kernel described it: name its files (by their
 * identity, or the exec's filename) and make it the model.  Returns 0, or
 * -1 when BPF sent no VMAs for it.
 */
static int exec_from_kernel(struct fl_ingest *g, struct proc *p, const struct fl_task *t)
{
	struct fl_vma *v = p->exec_vmas;
	size_t n = p->nexec_vmas;
	if (!n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].inode) {
			static const char *const pseudo[][2] = { { "stack", "[stack]" }, { "heap", "[heap]" },
								 { "vdso", "[vdso]" }, { "vvar", "[vvar]" } };
			v[i].path = NULL;
			for (size_t k = 0; k < sizeof(pseudo) / sizeof(pseudo[0]); k++)
				if (!strcmp(v[i].kind, pseudo[k][0]))
					v[i].path = fl_strtab_intern(pseudo[k][1]);
			continue;
		}
		v[i].path = fl_procfs_file_path((pid_t)p->pid, v[i].dev, v[i].inode, t->path);
	}
	struct fl_change ch = change(g, p, t->time_ns, 0, "exec");
	fl_model_resync(&p->model, &ch, v, n);
	p->nexec_vmas = 0;
	return 0;
}

void fl_ingest_bpf_task(void *ctx, const struct fl_task *t)
{
	struct fl_ingest *g = ctx;
	switch (t->kind) {
	case FL_T_FORK: {
		if (t->is_thread)
			break;
		struct proc *parent = find(g, t->ppid), *p = find(g, t->pid);
		/* the child's shim may have said hello before this record was read */
		if (!p || p->ended || p->ppid != t->ppid)
			p = add_proc(g, t->pid, t->ppid, parent ? parent->exe : NULL, t->time_ns);
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
		if (exec_from_kernel(g, p, t) == 0)
			break;
		/* what exec mapped (binary, ld.so, stack, vdso) is no syscall: read it, if still there */
		struct fl_vma *snap;
		size_t n = 0;
		if (fl_procfs_maps((pid_t)t->pid, &snap, &n) == 0) {
			struct fl_change ch = change(g, p, t->time_ns, 0, "exec");
			if (n)
				fl_model_resync(&p->model, &ch, snap, n);
			free(snap);
		}
		if (!n && p->last_snap && p->last_snap_time >= t->time_ns) {
			/* gone already: the shim's snapshot of the new image, read before this record */
			struct fl_change ch = change(g, p, p->last_snap_time, 0, "exec");
			fl_model_resync(&p->model, &ch, p->last_snap, p->nlast_snap);
			n = p->nlast_snap;
		}
		p->exec_unseen = n == 0; /* then the shim's snapshot stands in, when it comes */
		break;
	}
	case FL_T_EXIT: {
		struct proc *p = find(g, t->pid);
		if (p && !p->ended) {
			const __u64 before[2] = { t->base_min_flt, t->base_maj_flt };
			const __u64 gup[2] = { t->gup_min_flt, t->gup_maj_flt };
			fl_store_process_faults(g->store, p->id, t->min_flt, t->maj_flt, before, gup);
		}
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
	struct held_fault f = { *k, *c };
	if (hold((void **)&g->faults, &g->nfaults, &g->capfaults, &f, sizeof(f)))
		for (int i = 0; i < FL_F_NCLASS; i++)
			g->unattributed += c->cls[i];
}

void fl_ingest_bpf_site(void *ctx, const struct fl_site_key *k, __u64 count)
{
	struct fl_ingest *g = ctx;
	struct held_site h = { *k, count };
	hold((void **)&g->sites, &g->nsites, &g->capsites, &h, sizeof(h));
}

static void attribute_fault(struct fl_ingest *g, const struct fl_fault_key *k, const struct fl_fault_counts *c)
{
	struct proc *p = find(g, k->tgid);
	/* vm_end 0: BPF could not look the VMA up; vm_start is then the faulting page */
	__s64 vma = p ? fl_model_attribute(&p->model, k->vm_start, k->vm_end ? k->vm_end : k->vm_start + 1,
					   c->last_ns) : 0;
	if (vma) {
		fl_store_fault(g->store, vma, p->id, c->last_ns, c);
		return;
	}
	if (p && c->last_ns < p->exec_ns) {
		/* the launched child before it became the target: faultline's own image, no VMA of the run */
		for (int i = 0; i < FL_F_NCLASS; i++)
			p->prexec[i <= FL_F_MAJOR_SWAP] += c->cls[i];
		return;
	}
	for (int i = 0; i < FL_F_NCLASS; i++)
		g->unattributed += c->cls[i];
	if (getenv("FAULTLINE_DEBUG"))
		fprintf(stderr, "faultline: faults of pid %u in %llx-%llx (latest at %llu) fit no VMA\n", k->tgid,
			(unsigned long long)k->vm_start, (unsigned long long)k->vm_end, (unsigned long long)c->last_ns);
}

void fl_ingest_attribute_faults(struct fl_ingest *g, __u64 read_ns)
{
	for (size_t i = 0; i < g->nfaults; i++)
		attribute_fault(g, &g->faults[i].k, &g->faults[i].c);
	for (size_t i = 0; i < g->nsites; i++) {
		const struct fl_site_key *k = &g->sites[i].k;
		struct proc *p = find(g, k->tgid);
		__s64 vma = p ? fl_model_attribute(&p->model, k->vm_start, k->vm_start + 1, (__u64)-1) : 0;
		__s64 frame = vma ? fl_stacks_frame(g->stacks, &p->model, k->ip) : 0;
		if (frame)
			fl_stacks_add_site(g->stacks, vma, p->id, fl_fault_class_name(k->cls), frame,
					   g->sites[i].count);
	}
	g->nfaults = g->nsites = 0;
	/*
	 * The next counts are for faults after this read: rows that ended
	 * before it cannot get them (a millisecond of margin for the clocks
	 * of the record and of this read).
	 */
	for (size_t i = 0; i < g->nall; i++)
		fl_model_prune_dead(&g->all[i]->model, g->last_attribution);
	g->last_attribution = read_ns > 1000000 ? read_ns - 1000000 : 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

/* Store what waits for a twin: shim calls no syscall claimed, syscalls without a stack. */
static void flush_pending(struct fl_ingest *g, struct proc *p)
{
	for (size_t i = 0; i < p->tids.cap; i++) {
		struct tidq *q = (struct tidq *)p->tids.vals[i];
		if (!q)
			continue;
		for (unsigned k = 0; k < q->shim.n; k++)
			store_shim_only(g, p, &q->shim.a[k]);
		for (unsigned k = 0; k < q->bpf.n; k++)
			store_kernel_call(g, p, &q->bpf.a[k], 0);
		q->shim.n = q->bpf.n = 0;
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

void fl_ingest_final_faults(struct fl_ingest *g, pid_t pid)
{
	struct proc *p = find(g, (__u32)pid);
	__u64 mn, mj;
	if (p && !g->bpf_mode && fl_procfs_faults(pid, &mn, &mj) == 0)
		fl_store_process_faults(g->store, p->id, mn, mj, NULL, NULL);
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
			fl_store_process_faults(g->store, p->id, mn, mj, NULL, NULL);
		if (quiet && p->shim && !p->snap)
			resync_from_proc(g, p, now_ns, "resync");
	}
}

void fl_ingest_finish(struct fl_ingest *g, __u64 end_ns)
{
	fl_ingest_attribute_faults(g, end_ns);
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		if (!p->ended) {
			fl_ingest_exit(g, (pid_t)p->pid, end_ns, -1, -1);
		}
	}
	for (size_t i = 0; i < g->nall; i++)
		if (g->all[i]->prexec[0] || g->all[i]->prexec[1])
			fl_store_process_prexec(g->store, g->all[i]->id, g->all[i]->prexec);
	fl_stacks_finish(g->stacks);
	if (g->bpf_mode)
		fl_store_loss(g->store, "fault_unattributed", g->unattributed,
			      "faults in an address range no recorded VMA covered");
}
