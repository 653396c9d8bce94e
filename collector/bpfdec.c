/* SPDX-License-Identifier: MIT */
/*
 * bpfdec.c - records from BPF but fault counts (see bpfdec.h): the kernel's syscalls drive the model, its task records the
 * process table, its exec-time VMA lists the initial address space.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bpfdec.h"
#include "procfs.h"
#include "procs.h"
#include "strtab.h"
#include "vec.h"

void fl_bpfdec_call(void *ctx, const struct fl_call *call)
{
	struct fl_ingest *g = ctx;
	struct fl_call norm = *call, *c = &norm;
	/* mmap's fd is an int: the register's upper half is not part of it (libc passes -1, the kernel sees 0xffffffff) */
	if (c->kind == FL_K_MMAP)
		c->args[4] = (__u64)(__s64)(int)c->args[4];
	struct proc *p = fl_procs_live(g, c->pid, 0, c->time_ns);
	if (!p)
		return;
	/* the row is written once its stack is known (matched) or known not to come */
	struct fl_pending k = fl_pending_of(c);
	k.event_id = fl_store_event_reserve(g->store);
	struct fl_change ch = fl_proc_change(p, c->time_ns, k.event_id, FL_HOW_CALL);
	fl_model_apply(&p->model, &ch, c, fl_procfs_call_path((pid_t)p->pid, c), true);
	fl_matcher_kernel(&p->matcher, &k);
}

/* The kind of a VMA as the kernel flagged it. */
static const char *vma_kind(__u32 flags, __u64 inode)
{
	return flags & FL_VMA_STACK ? "stack" : flags & FL_VMA_HEAP ? "heap" :
	       flags & FL_VMA_SPECIAL ? (flags & FL_VMA_EXEC ? "vdso" : "vvar") :
	       inode ? "file" : "anon";
}

void fl_bpfdec_vma(void *ctx, const struct fl_vma_rec *r)
{
	struct fl_ingest *g = ctx;
	struct proc *p = fl_procs_find(g, r->pid);
	if (!p)
		return;
	/* the kernel sends them in address order: a lower start begins another image's list */
	if (p->nexec_vmas && r->start < p->exec_vmas[p->nexec_vmas - 1].start)
		p->nexec_vmas = 0;
	if (fl_vec_reserve((void **)&p->exec_vmas, &p->capexec_vmas, p->nexec_vmas + 1, sizeof(struct fl_vma)))
		return;
	p->exec_vmas[p->nexec_vmas++] = (struct fl_vma){
		.start = r->start,
		.end = r->end,
		.prot = (r->flags & FL_VMA_READ ? PROT_READ : 0) | (r->flags & FL_VMA_WRITE ? PROT_WRITE : 0) |
			(r->flags & FL_VMA_EXEC ? PROT_EXEC : 0),
		.flags = (r->flags & FL_VMA_SHARED ? MAP_SHARED : MAP_PRIVATE) | (r->inode ? 0 : MAP_ANONYMOUS),
		.inode = r->inode,
		.offset = r->inode ? r->pgoff << 12 : 0,
		.dev = r->dev,
		.kind = vma_kind(r->flags, r->inode),
	};
}

/* The path of an exec-time VMA: its file's, or the pseudo-path of a kernel-made one. */
static const char *exec_vma_path(pid_t pid, const struct fl_vma *v, const char *exec_path)
{
	static const char *const pseudo[][2] = { { "stack", "[stack]" }, { "heap", "[heap]" },
						 { "vdso", "[vdso]" }, { "vvar", "[vvar]" } };
	if (v->inode)
		return fl_procfs_file_path(pid, v->dev, v->inode, exec_path);
	for (size_t k = 0; k < sizeof(pseudo) / sizeof(pseudo[0]); k++)
		if (!strcmp(v->kind, pseudo[k][0]))
			return fl_strtab_intern(pseudo[k][1]);
	return NULL;
}

/*
 * The image exec'd as the kernel described it: name its files (by their
 * identity, or the exec's filename) and make it the model.  Returns 0, or
 * -1 when BPF sent no VMAs for it.
 */
static int exec_from_kernel(struct proc *p, const struct fl_task *t)
{
	if (!p->nexec_vmas)
		return -1;
	for (size_t i = 0; i < p->nexec_vmas; i++)
		p->exec_vmas[i].path = exec_vma_path((pid_t)p->pid, &p->exec_vmas[i], t->path);
	struct fl_change ch = fl_proc_change(p, t->time_ns, 0, FL_HOW_EXEC);
	fl_model_resync(&p->model, &ch, p->exec_vmas, p->nexec_vmas);
	p->nexec_vmas = 0;
	return 0;
}

/* Without the kernel's VMA list: what exec mapped (binary, ld.so, stack, vdso) from /proc, if still there. */
static void exec_from_proc(struct proc *p, const struct fl_task *t)
{
	struct fl_vma *snap;
	size_t n = 0;
	if (fl_procfs_maps((pid_t)t->pid, &snap, &n) == 0) {
		struct fl_change ch = fl_proc_change(p, t->time_ns, 0, FL_HOW_EXEC);
		if (n)
			fl_model_resync(&p->model, &ch, snap, n);
		free(snap);
	}
	if (!n && p->snap.last && p->snap.last_ns >= t->time_ns) {
		/* gone already: the shim's snapshot of the new image, read before this record */
		struct fl_change ch = fl_proc_change(p, p->snap.last_ns, 0, FL_HOW_EXEC);
		fl_model_resync(&p->model, &ch, p->snap.last, p->snap.nlast);
		n = p->snap.nlast;
	}
	p->exec_unseen = n == 0; /* then the shim's snapshot stands in, when it comes */
}

static void on_fork(struct fl_ingest *g, const struct fl_task *t)
{
	if (t->is_thread)
		return;
	struct proc *parent = fl_procs_find(g, t->ppid), *p = fl_procs_find(g, t->pid);
	/* the child's shim may have said hello before this record was read */
	if (!p || p->ended || p->ppid != t->ppid)
		p = fl_procs_add(g, t->pid, t->ppid, parent ? parent->exe : NULL, t->time_ns);
	if (p && parent) {
		struct fl_change ch = fl_proc_change(p, t->time_ns, 0, FL_HOW_FORK);
		fl_model_fork(&p->model, &parent->model, &ch);
	}
}

static void on_exec(struct fl_ingest *g, const struct fl_task *t)
{
	struct proc *p = fl_procs_live(g, t->pid, t->ppid, t->time_ns);
	if (!p)
		return;
	const char *exe = fl_procfs_exe((pid_t)t->pid);
	if (!exe)
		exe = fl_strtab_intern(t->path);
	fl_procs_exec(g, p, t->time_ns, exe, "bpf");
	if (exec_from_kernel(p, t) != 0)
		exec_from_proc(p, t);
}

static void on_task_exit(struct fl_ingest *g, const struct fl_task *t)
{
	struct proc *p = fl_procs_find(g, t->pid);
	if (!p || p->ended)
		return;
	const __u64 before[2] = { t->base_min_flt, t->base_maj_flt };
	const __u64 gup[2] = { t->gup_min_flt, t->gup_maj_flt };
	fl_store_process_faults(g->store, p->id, t->min_flt, t->maj_flt, before, gup);
	int sig = t->exit_code & 0x7f;
	fl_procs_end(g, p, t->time_ns, sig ? -1 : (t->exit_code >> 8) & 0xff, sig ? sig : -1);
}

void fl_bpfdec_task(void *ctx, const struct fl_task *t)
{
	struct fl_ingest *g = ctx;
	switch (t->kind) {
	case FL_T_FORK:
		on_fork(g, t);
		break;
	case FL_T_EXEC:
		on_exec(g, t);
		break;
	case FL_T_EXIT:
		on_task_exit(g, t);
		break;
	}
}

void fl_bpfdec_rss(void *ctx, const struct fl_rss *r)
{
	struct fl_ingest *g = ctx;
	struct proc *p = fl_procs_find(g, r->pid);
	if (p) {
		fl_store_rss(g->store, p->id, r->time_ns, r->anon, r->file, r->shmem, r->swap, "bpf");
		fl_smaps_on_rss(g, p, r->anon + r->file + r->shmem, 0);
	}
}
