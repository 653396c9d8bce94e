/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - one recording's ingest as a whole: made, sampled (shim mode),
 * finished and freed.  The records themselves are decoded in shimdec.c and
 * bpfdec.c, fault counts attributed in faults.c (see process.h for the layers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "faults.h"
#include "ingest.h"
#include "procfs.h"
#include "procs.h"
#include "reaped.h"

struct fl_ingest *fl_ingest_new(struct fl_store *store)
{
	struct fl_ingest *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->store = store;
	g->stacks = fl_stacks_new(store);
	g->heap = fl_heap_new(store, g->stacks);
	if (!g->stacks || !g->heap) {
		fl_stacks_free(g->stacks);
		fl_heap_free(g->heap);
		free(g);
		return NULL;
	}
	return g;
}

void fl_ingest_prewarm(struct fl_ingest *g, const char *shim, const char *exe)
{
	fl_stacks_prewarm(g->stacks, shim, exe);
}

void fl_ingest_use_bpf(struct fl_ingest *g)
{
	g->bpf_mode = true;
	fl_heap_hold(g->heap);
}

void fl_ingest_set_exit_channel(struct fl_ingest *g, void (*hint)(void *ctx, __u32 pid, __u32 min_age_ms),
				int (*done)(void *ctx, __u32 pid), void *ctx, bool every)
{
	g->exit_every = every;
	g->exit_hint = hint;
	g->exit_done = done;
	g->exit_ctx = ctx;
}

void fl_ingest_set_fault_drain(struct fl_ingest *g, void (*drain)(void *ctx), void *ctx)
{
	g->drain_faults = drain;
	g->drain_ctx = ctx;
}

void fl_ingest_free(struct fl_ingest *g)
{
	if (!g)
		return;
	fl_procs_free(g);
	fl_stacks_free(g->stacks);
	fl_heap_free(g->heap);
	fl_faults_free(g);
	free(g);
}

void fl_ingest_root(struct fl_ingest *g, pid_t pid, const char *exe, char *const *argv, __u64 time_ns)
{
	struct proc *p = fl_procs_add(g, (__u32)pid, (__u32)getpid(), exe, time_ns);
	if (!p)
		return;
	g->nwatch--; /* the loop watches the root itself (waitpid) */
	fl_store_process_exe(g->store, p->id, exe, argv);
}

void fl_ingest_orphan(struct fl_ingest *g, pid_t pid, __u64 time_ns)
{
	struct proc *p = fl_procs_find(g, (__u32)pid);
	if (g->bpf_mode)
		return;
	/* one already ended is this one, its exit read from /proc before the reap */
	if (!p)
		p = fl_procs_add(g, (__u32)pid, (__u32)getpid(), NULL, time_ns);
	if (p)
		p->by_faultline = true;
}

void fl_ingest_exit(struct fl_ingest *g, pid_t pid, __u64 time_ns, int exit_code, int exit_signal)
{
	struct proc *p = fl_procs_find(g, (__u32)pid);
	if (p)
		fl_procs_end(g, p, time_ns, exit_code, exit_signal);
}

pid_t fl_ingest_next_watch(struct fl_ingest *g)
{
	return g->nwatch ? g->watch[--g->nwatch] : 0;
}

unsigned fl_ingest_alive(const struct fl_ingest *g)
{
	return g->alive;
}

/*
 * Reconcile p's model with /proc/PID/maps, rows stamped with the time they
 * were seen.  In shim mode this is how mappings the shim cannot see (glibc
 * malloc's internal mmap and brk, ld.so loading a library, raw syscalls)
 * get in, only when the channel is drained so the calls the shim did see
 * are in the model first.
 */
static void resync_from_proc(struct proc *p, __u64 now_ns)
{
	struct fl_vma *snap;
	size_t n;
	if (fl_procfs_maps((pid_t)p->pid, &snap, &n))
		return;
	struct fl_change ch = fl_proc_change(p, now_ns, 0, FL_HOW_RESYNC);
	fl_model_resync(&p->model, &ch, snap, n);
	free(snap);
}

void fl_ingest_sample(struct fl_ingest *g, __u64 now_ns, bool quiet)
{
	fl_smaps_tick(g, now_ns);
	if (g->bpf_mode)
		return;
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		__u64 anon, file, shmem, swap, mn, mj;
		if (p->ended)
			continue;
		if (fl_procfs_rss((pid_t)p->pid, &anon, &file, &shmem, &swap) == 0) {
			fl_store_rss(g->store, p->id, now_ns, anon, file, shmem, swap, "proc");
			fl_smaps_on_rss(g, p, anon + file + shmem, now_ns);
		}
		if (fl_procfs_faults((pid_t)p->pid, &mn, &mj) == 0)
			fl_store_process_faults(g->store, p->id, mn, mj, NULL, NULL);
		if (quiet && p->shim && !p->snap.v)
			resync_from_proc(p, now_ns);
	}
	fl_smaps_drained(g, now_ns); /* the caller drained the channel just before */
}

void fl_ingest_drained(struct fl_ingest *g, __u64 now_ns)
{
	fl_smaps_drained(g, now_ns);
}

/*
 * How long a call's other record may still be unpublished after the call:
 * a producer preempted between the syscall and its record, the shim's
 * first backtrace() loading libgcc_s.  Twins later than this lose their
 * link (the call is stored twice, "bpf" and "shim"), never a call.  On a
 * loaded machine a runnable thread can wait well over 100 ms for a CPU
 * (seen: 8 threads x 4000 mmaps at load average 19), so the grace is long;
 * it bounds only how long an unmatched call waits, not the cost per call.
 */
#define MATCH_GRACE_NS 2000000000ull
#define SETTLE_EVERY_NS 10000000ull

void fl_ingest_settle(struct fl_ingest *g, __u64 channel_ns, __u64 ring_ns)
{
	if (!g->bpf_mode || channel_ns < MATCH_GRACE_NS || ring_ns < MATCH_GRACE_NS ||
	    channel_ns - g->last_settle < SETTLE_EVERY_NS)
		return;
	g->last_settle = channel_ns;
	fl_heap_settle(g->heap, ring_ns - SETTLE_EVERY_NS); /* the margin: records of other CPUs in flight */
	for (size_t i = 0; i < g->nall; i++)
		if (!g->all[i]->ended)
			fl_matcher_expire(&g->all[i]->matcher, channel_ns - MATCH_GRACE_NS, ring_ns - MATCH_GRACE_NS);
}

void fl_ingest_symbolize(struct fl_ingest *g, bool (*stop)(void *ctx), void *ctx)
{
	fl_stacks_symbolize(g->stacks, stop, ctx);
}

int fl_ingest_zombie(struct fl_ingest *g, pid_t pid, int *wait_status)
{
	struct proc *p = fl_procs_find(g, (__u32)pid);
	__u64 faults[2];
	if (g->bpf_mode || fl_procfs_zombie(pid, wait_status, faults))
		return -1;
	if (p && !p->ended)
		fl_reaped_zombie(g, p, faults);
	return 0;
}

/*
 * Process images the shim never spoke for: their calls have no stacks (BPF
 * mode) or were not seen at all (shim mode).  The shim cannot say why (it
 * had no channel), so the reasons are the possible ones.  A loss row, and a
 * message naming the first few.
 */
#define UNSHIMMED_NAMED 8
static void count_unshimmed(struct fl_ingest *g, __u64 end_ns)
{
	__u64 n = 0;
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		if (p->shim && p->hello_ns >= p->image_ns)
			continue;
		if (++n <= UNSHIMMED_NAMED) {
			char msg[300];
			snprintf(msg, sizeof(msg), "pid %u (%s): its shim never reached the channel",
				 p->pid, p->exe ? p->exe : "?");
			fl_store_message(g->store, end_ns, p->pid, msg);
		}
	}
	fl_store_loss(g->store, "shim_absent", n,
		      "process images the shim never reported from (a static binary, LD_PRELOAD removed, "
		      "or the channel could not be opened: another uid, mount namespace or a seccomp filter)");
}

__u64 fl_ingest_end_ns(const struct fl_ingest *g)
{
	return g->last_end_ns;
}

void fl_ingest_finish(struct fl_ingest *g, __u64 end_ns)
{
	__u64 exit_unknown = fl_reaped_finish(g); /* before the processes still running are ended */
	count_unshimmed(g, end_ns);
	fl_faults_attribute(g, end_ns, true);
	for (size_t i = 0; i < g->nall; i++)
		fl_procs_end(g, g->all[i], end_ns, -1, -1);
	fl_smaps_finish(g);      /* before the models close: held regions are split among their rows */
	fl_heap_finish(g->heap); /* before the models close: it resolves stacks in them */
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		struct fl_change ch = fl_proc_change(p, end_ns, 0, FL_HOW_CALL);
		fl_model_close(&p->model, &ch);
		if (p->prexec[0] || p->prexec[1])
			fl_store_process_prexec(g->store, p->id, p->prexec);
	}
	fl_stacks_finish(g->stacks);
	if (!g->bpf_mode)
		fl_store_loss(g->store, "exit_unknown", exit_unknown,
			      "processes whose exit status or final fault totals shim-only mode could not know "
			      "(reaped where no shim could see it: pclose(), a raw syscall, SIGCHLD ignored, "
			      "a parent without the shim; or a parent of such a process)");
	if (g->exit_late) {
		/* not a loss: a process killed by a signal has no exit sample either; why --at end estimates both */
		char msg[200];
		snprintf(msg, sizeof(msg), "%llu process%s stopped waiting at exit (100 ms) before its smaps was read: "
			 "its end is an estimate from its last sample", (unsigned long long)g->exit_late,
			 g->exit_late == 1 ? "" : "es");
		fl_store_message(g->store, end_ns, 0, msg);
	}
	fl_store_loss(g->store, "shim_nested_caller", g->nested_caller_only,
		      "calls a signal handler made while its thread was inside the shim's unwinder: "
		      "their stacks hold the caller only (the unwinder is not known to be reentrant)");
	fl_store_loss(g->store, "shim_nested_unrecorded", g->nested_lost,
		      g->bpf_mode ? "calls a signal handler made while its thread was busy in the shim outside a record "
				    "(fork, a maps snapshot, heap sampling): the kernel's record of each has no stack"
				  : "calls a signal handler made while its thread was busy in the shim outside a record "
				    "(fork, a maps snapshot, heap sampling): not recorded; the maps resync finds what they left");
	fl_store_fill_paths(g->store, fl_procfs_resolve_files);
	if (g->bpf_mode)
		fl_store_loss(g->store, "fault_unattributed", g->faults.unattributed,
			      "faults in an address range no recorded VMA covered");
}
