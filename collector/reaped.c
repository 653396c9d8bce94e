/* SPDX-License-Identifier: MIT */
/* reaped.c - exit statuses and fault totals in shim-only mode (see reaped.h). */
#include <sys/wait.h>

#include "procs.h"
#include "reaped.h"
#include "vec.h"

void fl_reaped_record(struct fl_ingest *g, const struct fl_reaped *r)
{
	if (g->bpf_mode || !(r->flags & FL_REAPED_RUSAGE) ||
	    fl_vec_reserve((void **)&g->reaps, &g->capreaps, g->nreaps + 1, sizeof(*g->reaps)))
		return;
	g->reaps[g->nreaps].r = *r;
	g->reaps[g->nreaps++].reaper = fl_procs_find(g, r->pid); /* the ring's owner, now */
}

void fl_reaped_zombie(struct fl_ingest *g, struct proc *p, const __u64 faults[2])
{
	fl_store_process_faults(g->store, p->id, faults[0], faults[1], NULL, NULL);
	p->faults_final = true;
}

/*
 * The child system() reaped: the one child of the caller that said hello
 * within the call (its shell; what the shell ran is the shell's child, or
 * the shell itself after an exec).  None or several (threads calling it at
 * once): NULL, and each stays as faultline saw it.
 */
static struct proc *system_child(struct fl_ingest *g, const struct fl_reaped *r)
{
	struct proc *found = NULL;
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		if (p->ppid != r->pid || !p->ended || p->reaper || !p->hello_ns ||
		    p->first_hello_ns < r->since_ns || p->first_hello_ns > r->time_ns)
			continue;
		if (found)
			return NULL;
		found = p;
	}
	return found;
}

/*
 * What system()'s children's rusage growth says of its child: less the reaps
 * other threads said within the call.  -1 when another system() of the same
 * process overlapped it (the growth is theirs together).
 */
static int system_growth(struct fl_ingest *g, const struct fl_reap *k, __u64 ru[2])
{
	const struct fl_reaped *r = &k->r;
	ru[0] = r->min_flt;
	ru[1] = r->maj_flt;
	for (size_t i = 0; i < g->nreaps; i++) {
		const struct fl_reap *o = &g->reaps[i];
		if (o == k || o->reaper != k->reaper || o->r.time_ns < r->since_ns || o->r.time_ns > r->time_ns)
			continue;
		if ((o->r.flags & FL_REAPED_SYSTEM) || o->r.min_flt > ru[0] || o->r.maj_flt > ru[1])
			return -1;
		ru[0] -= o->r.min_flt;
		ru[1] -= o->r.maj_flt;
	}
	return 0;
}

/*
 * The process r reaped: of that pid, the latest that ended, was alive when
 * its reaper's wait returned (its hello came first) and was not reaped
 * already.  NULL for a child that never said hello (no shim: a static
 * binary) or whose pid the record could not carry (a PID namespace).
 */
static struct proc *reaped_proc(struct fl_ingest *g, const struct fl_reaped *r)
{
	if (r->flags & FL_REAPED_SYSTEM)
		return system_child(g, r);
	for (size_t i = g->nall; r->child && i-- > 0;) {
		struct proc *p = g->all[i];
		if (p->pid == r->child && p->ended && !p->reaper && p->hello_ns <= r->time_ns)
			return p;
	}
	return NULL;
}

/*
 * Are all of p's children accounted for in its rusage?  The kernel adds a
 * child's rusage to its parent's when the parent reaps it by a wait; not
 * when faultline reaps it (an orphan: the parent died first), nor when the
 * kernel does (SIGCHLD ignored).  A child that ended with no reap said and
 * that faultline did not reap went one of these ways, or through a wait
 * the shim does not see (system(), pclose()): p's totals cannot be told.
 */
static bool children_accounted(struct fl_ingest *g, const struct proc *p)
{
	for (size_t i = 0; i < g->nall; i++) {
		const struct proc *c = g->all[i];
		if (c->parent == p && c->ended && !c->reaper && !c->by_faultline)
			return false;
	}
	return true;
}

/*
 * A child no record spoke of (a vfork child that exec'd a static binary, a
 * child whose shim had no channel): its parent's reap is all there is.  It
 * gets a row with its status; nothing is read from /proc (it is long gone,
 * its pid maybe another's).  Its fault totals stay unknown: its rusage holds
 * those of children it reaped, unseen too.  fl_ingest_finish counts it
 * shim_absent, the loss that says all of it but its end is unknown.
 */
static struct proc *unseen_child(struct fl_ingest *g, const struct fl_reaped *r, struct proc *reaper)
{
	struct proc *p = fl_procs_add(g, r->child, reaper->pid, NULL, r->time_ns);
	if (p) {
		fl_procs_end(g, p, r->time_ns, -1, -1);
		p->faults_final = true; /* unknown, and said so by shim_absent, not exit_unknown */
	}
	return p;
}

static void take_reap(struct fl_ingest *g, const struct fl_reap *k)
{
	const struct fl_reaped *r = &k->r;
	struct proc *p = reaped_proc(g, r), *reaper = k->reaper;
	__u64 ru[2] = { r->min_flt, r->maj_flt };
	bool ru_known = !(r->flags & FL_REAPED_SYSTEM) || system_growth(g, k, ru) == 0;
	/* the kernel added the child's rusage to the reaper's children's */
	if (reaper && reaper != p && ru_known) {
		reaper->reaped_ru[0] += ru[0];
		reaper->reaped_ru[1] += ru[1];
	}
	if (!p && r->child && reaper && !fl_procs_find(g, r->child))
		p = unseen_child(g, r, reaper);
	if (!p)
		return;
	p->reaper = r->pid;
	p->ru_known = ru_known;
	p->ru[0] = ru[0];
	p->ru[1] = ru[1];
	if (!p->status_known) {
		int st = r->status;
		fl_store_process_end(g->store, p->id, p->end_ns, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
				     WIFSIGNALED(st) ? WTERMSIG(st) : -1);
		p->status_known = true;
	}
}

__u64 fl_reaped_finish(struct fl_ingest *g)
{
	__u64 unknown = 0;
	if (g->bpf_mode)
		return 0;
	for (size_t i = 0; i < g->nreaps; i++)
		take_reap(g, &g->reaps[i]);
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		if (!p->ended)
			continue;
		if (!p->faults_final && p->reaper && p->ru_known && p->ru[0] >= p->reaped_ru[0] && p->ru[1] >= p->reaped_ru[1] &&
		    children_accounted(g, p)) {
			__u64 own[2] = { p->ru[0] - p->reaped_ru[0], p->ru[1] - p->reaped_ru[1] };
			fl_reaped_zombie(g, p, own);
		}
		unknown += !p->status_known || !p->faults_final;
	}
	return unknown;
}
