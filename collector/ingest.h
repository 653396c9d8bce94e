/* SPDX-License-Identifier: MIT */
/*
 * ingest.h - turns records from the shim channel and from BPF into
 * processes, events, VMAs, stacks and fault rows.
 *
 * Two fidelities: in shim mode the shim's calls drive the VMA model; in BPF
 * mode the kernel's syscall records drive it and the shim's calls only lend
 * their stacks to the syscall they match (same thread, same call, in order).
 *
 * This is the recording's lifecycle as record.c sees it; records go to the
 * decoders (shimdec.h, bpfdec.h) and fault counts to faults.h directly.
 * process.h lists the layers.
 */
#ifndef FL_INGEST_H
#define FL_INGEST_H

#include <linux/types.h>
#include <stdbool.h>
#include <sys/types.h>

#include "faultline.h"
#include "store.h"

struct fl_ingest;

/* A new ingest, in shim mode until fl_ingest_use_bpf(). */
struct fl_ingest *fl_ingest_new(struct fl_store *store);
/* Start reading what symbolization will need (stacktab.h fl_stacks_prewarm), after the target was forked. */
void fl_ingest_prewarm(struct fl_ingest *g, const char *shim, const char *exe);
/* BPF is attached: its syscall records drive the model from now on. */
void fl_ingest_use_bpf(struct fl_ingest *g);
void fl_ingest_free(struct fl_ingest *g);

/* The launched process, before it execs the target. */
void fl_ingest_root(struct fl_ingest *g, pid_t pid, const char *exe, char *const *argv, __u64 time_ns);

/* Shim mode: read a dead (zombie) process's wait status and final fault
 * totals from /proc (the totals are stored).  0, or -1 (BPF mode, not a zombie, reaped). */
int fl_ingest_zombie(struct fl_ingest *g, pid_t pid, int *wait_status);

/* Shim mode: a child faultline reaped as subreaper that the shim never
 * spoke for gets a process row (it then counts as shim_absent). */
void fl_ingest_orphan(struct fl_ingest *g, pid_t pid, __u64 time_ns);

/* A process ended (exit_code / exit_signal -1 when unknown). */
void fl_ingest_exit(struct fl_ingest *g, pid_t pid, __u64 time_ns, int exit_code, int exit_signal);

/*
 * Exit samples (collector/smaps.c): hint tells a process's shim from what age
 * on it may wait at exit for a last read, done answers a shim that waits
 * (1: it still waited).  eBPF runs only: its record of the shim's wait wakes
 * the collector at once, where shim-only mode would sleep through it.
 * every: offered to every process, whatever its reads cost.
 */
void fl_ingest_set_exit_channel(struct fl_ingest *g, void (*hint)(void *ctx, __u32 pid, __u32 min_age_ms),
				int (*done)(void *ctx, __u32 pid), void *ctx, bool every);
/*
 * eBPF: drain the fault counts into rows now.
 * Called before each round of smaps reads, so a fault row never holds
 * faults from both sides of a sample (the estimate between samples needs
 * them apart).  Its records are read and decoded meanwhile.
 */
void fl_ingest_set_fault_drain(struct fl_ingest *g, void (*drain)(void *ctx), void *ctx);

/* Both rings were just drained: what waited for that (smaps samples) runs now. */
void fl_ingest_drained(struct fl_ingest *g, __u64 now_ns);

/*
 * BPF mode, after reading both streams: the channel was read up to
 * channel_ns, BPF's ring up to ring_ns.  Calls whose twin would have been
 * in them settle alone (matcher.h); checked at most every few ms.
 */
void fl_ingest_settle(struct fl_ingest *g, __u64 channel_ns, __u64 ring_ns);

/* Symbolize the frames recorded so far (the loop calls it when the channel is quiet). */
void fl_ingest_symbolize(struct fl_ingest *g, bool (*stop)(void *ctx), void *ctx);

/* Processes still alive as far as the records tell. */
unsigned fl_ingest_alive(const struct fl_ingest *g);

/*
 * Shim mode housekeeping on the collector's tick: sample RSS and fault
 * totals from /proc for live processes and, when quiet (the channel is
 * drained), reconcile their models with /proc/PID/maps.
 */
void fl_ingest_sample(struct fl_ingest *g, __u64 now_ns, bool quiet);

/* Set when a new process appears whose exit must be watched: returns its pid and clears it, or 0. */
pid_t fl_ingest_next_watch(struct fl_ingest *g);

/* Flush what is held back (unmatched stacks, fault sites) and symbolize every frame. */
void fl_ingest_finish(struct fl_ingest *g, __u64 end_ns);
/* When the last process ended (after fl_ingest_finish: every process has ended by then). */
__u64 fl_ingest_end_ns(const struct fl_ingest *g);

#endif /* FL_INGEST_H */
