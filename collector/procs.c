/* SPDX-License-Identifier: MIT */
/* procs.c - the process table (see procs.h). */
#include <stdlib.h>
#include <unistd.h>

#include "calls.h"
#include "procfs.h"
#include "procs.h"
#include "vec.h"

struct proc *fl_procs_find(struct fl_ingest *g, __u32 pid)
{
	return (struct proc *)fl_hmap_get(&g->by_pid, pid);
}

struct proc *fl_procs_add(struct fl_ingest *g, __u32 pid, __u32 ppid, const char *exe, __u64 t)
{
	struct proc *p = calloc(1, sizeof(*p)), *parent = fl_procs_find(g, ppid), *old = fl_procs_find(g, pid);
	if (!p)
		return NULL;
	if (old && !old->ended)
		fl_procs_end(g, old, t, -1, -1);
	if (fl_vec_reserve((void **)&g->all, &g->capall, g->nall + 1, sizeof(*g->all))) {
		free(p);
		return NULL;
	}
	g->all[g->nall++] = p;
	p->ingest = g;
	p->pid = pid;
	p->ppid = ppid;
	p->parent = parent;
	p->exe = exe;
	p->id = fl_store_process(g->store, pid, ppid, parent ? parent->id : 0, exe, t);
	fl_matcher_init(&p->matcher, fl_calls_settle, p);
	fl_hmap_put(&g->by_pid, pid, (uintptr_t)p);
	g->alive++;
	/* without a watch its exit would still end it via BPF; only a shim-mode child could go unseen */
	if (!fl_vec_reserve((void **)&g->watch, &g->capwatch, g->nwatch + 1, sizeof(*g->watch)))
		g->watch[g->nwatch++] = (pid_t)pid;
	return p;
}

struct proc *fl_procs_live(struct fl_ingest *g, __u32 pid, __u32 ppid, __u64 t)
{
	struct proc *p = fl_procs_find(g, pid);
	return p && !p->ended ? p : fl_procs_add(g, pid, ppid, fl_procfs_exe((pid_t)pid), t);
}

/* p's image became exe at t: the old image's rows end, argv (NULL: unknown) is the new one's. */
static void new_image(struct fl_ingest *g, struct proc *p, __u64 t, const char *exe, const char *source,
		      char **argv)
{
	struct fl_call c = { .kind = FL_K_EXEC, .pid = p->pid, .tid = p->pid, .time_ns = t };
	__s64 ev = fl_store_event(g->store, p->id, &c, source, exe, 0);
	struct fl_change ch = fl_proc_change(p, t, ev, FL_HOW_EXEC);
	fl_heap_exec(g->heap, p->id, &p->model, t);
	fl_model_clear(&p->model, &ch);
	if (!fl_vec_reserve((void **)&p->images, &p->capimages, p->nimages + 1, sizeof(*p->images)))
		p->images[p->nimages++] = (struct fl_image){ fl_store_vma_last(g->store) + 1, t };
	p->exe = exe;
	if (!p->exec_ns)
		p->exec_ns = t;
	p->image_ns = t;
	fl_store_process_exe(g->store, p->id, exe, argv);
}

__u64 fl_procs_exec_after(const struct proc *p, __u64 t)
{
	for (size_t i = 0; i < p->nimages; i++)
		if (p->images[i].exec_ns > t)
			return p->images[i].exec_ns;
	return p->image_ns > t ? p->image_ns : 0; /* the list could not grow */
}

__u64 fl_procs_row_time(const struct proc *p, __s64 row)
{
	/* the first exec whose rows all came after it ended the row's image */
	for (size_t i = 0; i < p->nimages; i++)
		if (row < p->images[i].row0)
			return p->images[i].exec_ns - 1;
	return FL_MODEL_NOW;
}

void fl_procs_exec(struct fl_ingest *g, struct proc *p, __u64 t, const char *exe, const char *source)
{
	char **argv = fl_procfs_argv((pid_t)p->pid);
	new_image(g, p, t, exe, source, argv);
	free(argv);
}

void fl_procs_snapshot(struct fl_ingest *g, struct proc *p)
{
	struct fl_shimmaps *s = &p->snap;
	const struct proc *parent = fl_procs_find(g, p->ppid);
	if (s->time_ns < p->image_ns) {
		/* of an image a later exec replaced (read late, in BPF mode): nothing to learn */
	} else if (g->bpf_mode && !p->exec_unseen) {
		/*
		 * The kernel's records are the truth; the snapshot can only name
		 * files.  An empty model is a process whose fork or exec record
		 * is still unread: that record builds it (with the kept snapshot's help).
		 */
		if (!(s->flags & FL_HELLO_EXECED)) /* else the model may still be the old image's */
			fl_model_fill_paths(&p->model, s->v, s->n);
	} else {
		p->exec_unseen = false;
		enum fl_how how = p->model.vmas.n ? FL_HOW_RESYNC : FL_HOW_SNAPSHOT;
		if ((s->flags & FL_HELLO_FORKED) && parent && !p->model.vmas.n) {
			struct fl_change fc = fl_proc_change(p, s->time_ns, 0, FL_HOW_FORK);
			fl_model_fork(&p->model, &parent->model, &fc);
			how = FL_HOW_RESYNC;
		}
		struct fl_change ch = fl_proc_change(p, s->time_ns, 0, how);
		fl_model_resync(&p->model, &ch, s->v, s->n);
	}
	/* kept: the kernel's exec record may still be unread, and the process gone when it is */
	fl_shimmaps_keep(s);
}

void fl_procs_end(struct fl_ingest *g, struct proc *p, __u64 t, int exit_code, int exit_signal)
{
	if (p->ended)
		return;
	if (p->snap.v)
		fl_procs_snapshot(g, p);
	/* shim mode: it exec'd an image whose shim never said hello (a static
	 * binary, no channel): that image is known by name only, and it is
	 * gone, so nothing of it is read from /proc (fl_ingest_finish counts it
	 * shim_absent: hello_ns < image_ns) */
	if (p->exec_try_ns && !g->bpf_mode)
		new_image(g, p, p->exec_try_ns, p->exec_try_path, "shim", NULL);
	fl_matcher_flush(&p->matcher);
	p->ended = true;
	p->end_ns = t;
	p->status_known = exit_code >= 0 || exit_signal >= 0;
	g->alive--;
	g->last_end_ns = t > g->last_end_ns ? t : g->last_end_ns;
	fl_store_process_end(g->store, p->id, t, exit_code, exit_signal);
}

void fl_procs_free(struct fl_ingest *g)
{
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		fl_model_free(&p->model);
		fl_shimmaps_free(&p->snap);
		fl_matcher_free(&p->matcher);
		free(p->exec_vmas);
		free(p->images);
		free(p);
	}
	free(g->all);
	free(g->reaps);
	fl_hmap_free(&g->by_pid);
	free(g->watch);
}
