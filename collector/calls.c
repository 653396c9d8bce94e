/* SPDX-License-Identifier: MIT */
/* calls.c - settled calls to event rows (see calls.h). */
#include "calls.h"
#include "process.h"

void fl_calls_settle(void *proc, const struct fl_pending *kernel, const struct fl_pending *shim)
{
	struct proc *p = proc;
	struct fl_ingest *g = p->ingest;
	/* the stack is resolved in the address space as it is now, which is as it was at the call */
	__s64 stack = shim ? fl_stacks_intern(g->stacks, &p->model, shim->frames, shim->nframes) : 0;
	if (kernel)
		fl_store_event_at(g->store, kernel->event_id, p->id, &kernel->call, stack ? "both" : "bpf", NULL,
				  stack);
	else
		fl_store_event(g->store, p->id, &shim->call, "shim", shim->path, stack);
}
