/* SPDX-License-Identifier: MIT */
/*
 * matcher.h - BPF mode: a syscall the kernel reported meets its shim twin
 * (the same call of the same thread, which carries the user stack).
 *
 * Each thread has two queues of waiting calls, oldest first: syscalls no
 * shim call claimed yet and shim calls no syscall claimed yet.  A call is
 * settled, through the matcher's settle function, when it meets its twin
 * or is known never to (the shim does not see glibc's internal syscalls;
 * the kernel does not see libc calls that fail before the syscall): a
 * shim call when a later syscall of its thread arrives, either one when
 * the other side's stream has been read well past it (fl_matcher_expire).
 */
#ifndef FL_MATCHER_H
#define FL_MATCHER_H

#include <linux/types.h>
#include <stddef.h>

#include "faultline.h"
#include "hmap.h"

/*
 * A waiting call.  A shim call's frames stay raw until it is settled, so
 * they are resolved against the address space as it was at that call.
 */
struct fl_pending {
	__u32 kind;             /* the syscall kind (shim sbrk -> brk); shim-only kinds never match */
	__u64 key;              /* what must agree: fl_match_key() */
	__u64 time_ns;
	__s64 event_id;         /* kernel side: the event row's id, reserved */
	struct fl_call call;
	const char *path;
	const __u64 *frames;    /* shim side: return addresses */
	unsigned nframes;
};

/*
 * Settle a call: kernel and its shim twin, or one of them alone (the other
 * NULL).  The frames are valid only during the call.
 */
typedef void (*fl_settle_fn)(void *ctx, const struct fl_pending *kernel, const struct fl_pending *shim);

struct tidq;

struct fl_matcher {
	struct fl_hmap tids;    /* tid -> per-thread queues (struct tidq *) */
	struct tidq **active;   /* the threads with waiting calls */
	size_t nactive, capactive;
	fl_settle_fn settle;
	void *ctx;
};

void fl_matcher_init(struct fl_matcher *m, fl_settle_fn settle, void *ctx);
void fl_matcher_free(struct fl_matcher *m);

/* The waiting-call entry of a call: its kind for matching and its key. */
struct fl_pending fl_pending_of(const struct fl_call *c);

/* A syscall returned (k from fl_pending_of, event_id set). */
void fl_matcher_kernel(struct fl_matcher *m, const struct fl_pending *k);

/* A shim call was read (s from fl_pending_of, frames set; copied if it must wait). */
void fl_matcher_shim(struct fl_matcher *m, const struct fl_pending *s);

/*
 * The channel has been read up to channel_ns and BPF's ring up to ring_ns
 * (less a grace for records reserved but not yet published): settle alone
 * the syscalls older than channel_ns and the shim calls older than ring_ns.
 */
void fl_matcher_expire(struct fl_matcher *m, __u64 channel_ns, __u64 ring_ns);

/* Settle everything still waiting (the process ended). */
void fl_matcher_flush(struct fl_matcher *m);

#endif /* FL_MATCHER_H */
