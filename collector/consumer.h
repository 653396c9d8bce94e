/* SPDX-License-Identifier: MIT */
/*
 * consumer.h - the collector's (consumer) side of the shared-memory channel
 * described in common/channel.h (the protocol).  Single consumer: call
 * these from one thread.
 */
#ifndef FL_CONSUMER_H
#define FL_CONSUMER_H

#include <linux/types.h>
#include <stdbool.h>

#include "faultline.h"
#include "channel.h"

struct fl_channel;

/* Receives one record; rec is valid only during the call. */
typedef void (*fl_channel_fn)(void *ctx, const struct fl_rec *rec);

struct fl_channel_loss {
	__u64 dropped;      /* records producers gave up on (ring full longer than wait_ms) */
	__u64 no_ring;      /* process images that found no free ring (not recorded at all) */
	__u64 unpublished;  /* slots reserved by a producer that died before publishing */
	__u64 corrupt;      /* records or ring state that failed a check (the target wrote over them) */
	__u64 unidentified; /* records of rings whose claimed owner is no process of the recorded tree */
	const char *corrupt_why;   /* the first of those, described; NULL when none */
	/* process images whose shim stopped recording for good (FL_OFF_*) */
	__u64 stopped_timeout;     /* a record waited wait_ms for room */
	__u64 stopped_collector;   /* the shim found the collector gone */
	__u64 stopped_taken_over;  /* the program unmapped or remapped the shim's ring */
};

/*
 * Create the channel: a memfd of FL_CHAN_BYTES (sparse), mapped whole, with
 * an initialized header.  wait_ms: how long a producer waits on a full ring
 * before dropping.  Returns 0 and *out, or -errno.
 */
int fl_channel_create(struct fl_channel **out, unsigned wait_ms);

/*
 * Who owns a ring, in the kernel's eyes (collector/identity.h).  Without
 * these a ring's pid is taken as written (the tests' and fuzzer's channel).
 *   ring:   the host pid of the process that claims to be `claimed` and
 *           maps the ring at file offset `offset` of the memfd (inode ino);
 *           0 when it is no process of the recorded tree (the ring's records
 *           are then counted as unidentified, never delivered);
 *   tid:    the host tid of a thread of `host` that calls itself ns_tid;
 *   parent: the parent of host, as the kernel says.
 * A ring whose host pid differs from its claimed one (a PID namespace) has
 * every record's pid, tid and a hello's ppid rewritten to the host's before
 * delivery.
 */
struct fl_channel_identity {
	__u32 (*ring)(void *ctx, __u32 claimed, __u64 ino, __u64 offset);
	__u32 (*tid)(void *ctx, __u32 host, __u32 ns_tid);
	__u32 (*parent)(void *ctx, __u32 host);
	void *ctx;
};
void fl_channel_set_identity(struct fl_channel *c, const struct fl_channel_identity *id);

/* The value for FAULTLINE_CHANNEL ("/proc/<our pid>/fd/<N>"). */
const char *fl_channel_path(const struct fl_channel *c);

/* The channel's memfd (for a keeper that holds it open for another uid: launch.h). */
int fl_channel_fd(const struct fl_channel *c);

/*
 * Deliver every published record of every owned ring, rings in claim order
 * (a pid's pre-exec images before its newer one).  An older ring of a pid
 * that owns a newer one is final (exec killed its other threads): it is
 * drained, its unpublished reservations are counted as lost, and it is
 * retired.  Returns the number of records delivered, or -errno.
 */
int fl_channel_poll(struct fl_channel *c, fl_channel_fn fn, void *ctx);

/*
 * Inside fn: the pid owning the ring the current record came from (the
 * only way to attribute FL_R_MAPPING records), and that ring's index.
 */
__u32 fl_channel_current_pid(const struct fl_channel *c);
int fl_channel_current_ring(const struct fl_channel *c);

/*
 * The process pid is gone: deliver what its rings hold, count unpublished
 * reservations as lost, zero the rings (punch their pages) and make them
 * claimable again.
 */
void fl_channel_retire(struct fl_channel *c, __u32 pid, fl_channel_fn fn, void *ctx);

/* Losses so far, including the dropped counts of live rings. */
/*
 * The exit sample's handshake (common/channel.h).  exit_hint: pid's shim may
 * wait at exit for a last smaps read once its image has lived min_age_ms
 * (0: never).  exit_done: its read is done: wake it; 1 if it was still
 * waiting (else the read may have raced with its exit: throw it away).
 * exit_release: wake every shim still waiting that no read answered.
 */
void fl_channel_exit_hint(struct fl_channel *c, __u32 pid, __u32 min_age_ms);
int fl_channel_exit_done(struct fl_channel *c, __u32 pid);
void fl_channel_exit_release(struct fl_channel *c);
/* Has a shim begun an exit wait since the last poll?  (The target can make this
 * say yes at will: it only makes the collector poll sooner.) */
bool fl_channel_exit_waiting(const struct fl_channel *c);

void fl_channel_loss(const struct fl_channel *c, struct fl_channel_loss *out);

/* Pids owning a ring now (at most max written); returns how many there are. */
unsigned fl_channel_owners(const struct fl_channel *c, __u32 *pids, unsigned max);

/*
 * Check a record copied out of a ring of ring_pid (len bytes, with at least
 * one spare byte after them), and terminate its strings.  Returns NULL when
 * the decoders may trust it, else why not.  The only gate between the
 * target's memory and the decoders (also driven by fuzz/).
 */
const char *fl_channel_check_record(struct fl_rec *r, __u32 len, __u32 ring_pid,
				    __u32 max_mappings);

/* Unmap and close.  Safe with NULL. */
void fl_channel_destroy(struct fl_channel *c);

#endif /* FL_CONSUMER_H */
