/* SPDX-License-Identifier: MIT */
/*
 * shimdec.c - records from the shim channel (see shimdec.h): process
 * images saying hello, their mapping snapshots, their calls with stacks.
 * In shim mode a call changes the model; in BPF mode it only lends its
 * stack to the syscall it matches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h"
#include "procs.h"
#include "reaped.h"
#include "shimdec.h"
#include "strtab.h"

static void on_hello(struct fl_ingest *g, const struct fl_hello *h)
{
	struct proc *p = fl_procs_find(g, h->pid);
	const char *exe = fl_strtab_intern(h->exe);
	if (h->abi != FL_ABI_VERSION) {
		char msg[160];
		snprintf(msg, sizeof(msg), "shim ABI %u differs from the collector's %u: pid %u not recorded by the shim",
			 h->abi, FL_ABI_VERSION, h->pid);
		fl_store_message(g->store, h->time_ns, h->pid, msg);
		return;
	}
	if (p && !p->ended && (h->flags & FL_HELLO_EXECED) && !g->bpf_mode)
		fl_procs_exec(g, p, h->time_ns, exe, "shim");
	else if (p && p->ended && g->bpf_mode && h->time_ns <= p->end_ns)
		; /* read after the kernel's exit record of the same process: it is p, not a new one */
	else if (!p || p->ended)
		p = fl_procs_add(g, h->pid, h->ppid, exe, h->time_ns);
	if (!p)
		return;
	/* a hello read after the kernel's record of a later exec speaks of an image already gone */
	if (!(h->flags & FL_HELLO_FORKED) && h->time_ns >= p->image_ns) {
		char **argv = fl_procfs_argv((pid_t)p->pid);
		if (argv)
			fl_store_process_exe(g->store, p->id, exe, argv);
		free(argv);
	}
	if (h->time_ns > p->exec_try_ns)
		p->exec_try_ns = 0; /* the image it exec'd said hello */
	if (!p->shim)
		fl_store_process_shim(g->store, p->id);
	p->shim = true;
	if (h->time_ns > p->hello_ns)
		p->hello_ns = h->time_ns;
	if (!p->first_hello_ns || h->time_ns < p->first_hello_ns)
		p->first_hello_ns = h->time_ns;
	fl_shimmaps_begin(&p->snap, h->nmappings, h->flags, h->time_ns);
}

static void on_mapping(struct fl_ingest *g, const struct fl_mapping *m)
{
	struct proc *p = fl_procs_find(g, m->pid);
	if (p && fl_shimmaps_add(&p->snap, m))
		fl_procs_snapshot(g, p);
}

static void on_call(struct fl_ingest *g, const struct fl_call_rec *r)
{
	const struct fl_call *c = &r->call;
	struct proc *p = fl_procs_find(g, c->pid);
	if (!p)
		return;
	if (c->flags & FL_CALL_NESTED)
		g->nested_caller_only++;
	const char *path = NULL;
	size_t fixed = sizeof(*r) + r->h.nframes * sizeof(__u64);
	if (c->kind == FL_K_DLOPEN && r->h.size > fixed)
		path = fl_strtab_intern((const char *)r + fixed);
	if (g->bpf_mode) {
		struct fl_pending s = fl_pending_of(c);
		s.path = path;
		s.frames = r->frames;
		s.nframes = r->h.nframes;
		fl_matcher_shim(&p->matcher, &s);
		return;
	}
	__s64 stack = fl_stacks_intern(g->stacks, &p->model, r->frames, r->h.nframes);
	__s64 ev = fl_store_event(g->store, p->id, c, "shim", path, stack);
	struct fl_change ch = fl_proc_change(p, c->time_ns, ev, FL_HOW_CALL);
	fl_model_apply(&p->model, &ch, c, path ? path : fl_procfs_call_path((pid_t)p->pid, c), false);
}

/* Shim mode: p is about to exec, or its exec failed.  The new image's hello
 * is read after this (its ring is newer, fl_channel_poll retires the old one
 * first) and clears it; without one, the image is written when p ends. */
static void on_exec(struct fl_ingest *g, const struct fl_exec_rec *x)
{
	struct proc *p = fl_procs_find(g, x->pid);
	if (g->bpf_mode || !p || p->ended)
		return;
	if (!x->err) {
		p->exec_try_ns = x->time_ns;
		p->exec_try_path = fl_strtab_intern(x->path);
	} else {
		p->exec_try_ns = 0;
	}
}

/* A sampled heap block (its stack is resolved when its row is written). */
static void on_alloc(struct fl_ingest *g, const struct fl_alloc_rec *r)
{
	struct proc *p = fl_procs_find(g, r->pid);
	if (p)
		fl_heap_alloc(g->heap, p->id, &p->model, r);
}

static void on_free(struct fl_ingest *g, const struct fl_free_rec *r)
{
	struct proc *p = fl_procs_find(g, r->pid);
	if (p)
		fl_heap_release(g->heap, p->id, r);
}

/* A fork, from the parent's side (its blocks then) or the child's (which it inherits). */
static void on_heap_fork(struct fl_ingest *g, const struct fl_heap_fork *r)
{
	struct proc *p = fl_procs_find(g, r->pid);
	if (!p)
		return;
	if (!r->ppid)
		fl_heap_fork_parent(g->heap, p->id, r->pid, r->fork_id, r->inherit != 0);
	else
		fl_heap_fork_child(g->heap, p->id, &p->model, r->ppid, r->fork_id, r->inherit != 0);
}

static void on_note(struct fl_ingest *g, const struct fl_note *n)
{
	char text[sizeof(n->text) + 1];
	memcpy(text, n->text, sizeof(n->text));
	text[sizeof(n->text)] = 0;
	fl_store_message(g->store, 0, n->pid, text);
}

void fl_shimdec_record(void *ctx, const struct fl_rec *rec)
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
			on_call(g, (const struct fl_call_rec *)rec);
		break;
	case FL_R_NOTE:
		if (rec->size >= sizeof(struct fl_note))
			on_note(g, (const struct fl_note *)rec);
		break;
	case FL_R_ALLOC:
		if (rec->size >= sizeof(struct fl_alloc_rec) + rec->nframes * sizeof(__u64))
			on_alloc(g, (const struct fl_alloc_rec *)rec);
		break;
	case FL_R_FREE:
		if (rec->size >= sizeof(struct fl_free_rec))
			on_free(g, (const struct fl_free_rec *)rec);
		break;
	case FL_R_HEAP_STATS:
		if (rec->size >= sizeof(struct fl_heap_stats))
			fl_heap_stats(g->heap, (const struct fl_heap_stats *)rec);
		break;
	case FL_R_HEAP_FORK:
		if (rec->size >= sizeof(struct fl_heap_fork))
			on_heap_fork(g, (const struct fl_heap_fork *)rec);
		break;
	case FL_R_EXEC:
		if (rec->size >= sizeof(struct fl_exec_rec))
			on_exec(g, (const struct fl_exec_rec *)rec);
		break;
	case FL_R_NESTED:
		if (rec->size >= sizeof(struct fl_nested))
			g->nested_lost += ((const struct fl_nested *)rec)->count;
		break;
	case FL_R_EXITING:
		if (rec->size >= sizeof(struct fl_exiting)) {
			const struct fl_exiting *x = (const struct fl_exiting *)rec;
			struct proc *p = fl_procs_find(g, x->pid);
			if (p)
				fl_smaps_on_exiting(g, p, x->time_ns);
		}
		break;
	case FL_R_REAPED:
		if (rec->size >= sizeof(struct fl_reaped))
			fl_reaped_record(g, (const struct fl_reaped *)rec);
		break;
	}
}
