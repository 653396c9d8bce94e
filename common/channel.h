/* SPDX-License-Identifier: MIT */
/*
 * channel.h - the shared-memory channel from the shim (in each target
 * process) to the collector.  Part of the contract, with faultline.h.
 *
 * The collector creates one memfd and passes its path (/proc/PID/fd/N) in
 * FAULTLINE_CHANNEL.  Layout: a header with an array of ring descriptors,
 * then FL_CHAN_RINGS rings of FL_RING_SLOTS fixed-size slots.  Each process
 * image claims one ring (at start, after fork, after exec) and its threads
 * are the producers; the collector is the single consumer.
 *
 * Why shared memory: an event costs no syscall, and everything a process
 * published is in memory the collector owns, so it survives the target
 * dying by SIGKILL or SIGSEGV.  Why a ring per process: a producer killed
 * between reserving and publishing a slot blocks only its own (dead)
 * process's ring, which the collector retires when the process is gone.
 *
 * Ring protocol (Vyukov's bounded MPSC queue, with the slot index taken
 * out of seq so that zeroed memory is an empty ring): the slot of ticket
 * pos holds seq == lap(pos) when free for it and lap(pos) + 1 once
 * published, where lap(pos) = pos & ~(N-1).  A producer takes a ticket
 * with fetch_add(head), waits for its slot to be free, writes, then
 * publishes; the consumer frees a slot for the next lap.  Lossless by default: producers wait when the ring is
 * full.  Needs <linux/types.h> and faultline.h included first.
 */
#ifndef FAULTLINE_CHANNEL_H
#define FAULTLINE_CHANNEL_H

#define FL_CHAN_MAGIC 0x48434c46u /* "FLCH" */
#define FL_CHAN_RINGS 1024
#define FL_RING_SLOTS 512          /* power of two */
#define FL_SLOT_SIZE 1408          /* bytes, seq included; 512 slots = 176 pages */
#define FL_SLOT_DATA (FL_SLOT_SIZE - 8)
#define FL_CHAN_ENV "FAULTLINE_CHANNEL"

enum fl_ring_state { FL_RING_FREE = 0, FL_RING_CLAIMING = 1, FL_RING_OWNED = 2 };

/*
 * Why a process image's shim stopped recording for good (fl_ring_desc
 * off_reason; the first reason wins).  Each is a loss: what the process did
 * afterwards has no record from the shim.
 */
enum fl_off_reason {
	FL_OFF_NONE = 0,
	FL_OFF_TIMEOUT = 1,        /* a record waited wait_ms for room in a full ring */
	FL_OFF_COLLECTOR_GONE = 2, /* the collector died, stopped or stopped beating */
	FL_OFF_TAKEN_OVER = 3,     /* the program unmapped or remapped the shim's channel memory */
};

/* A producer waiting on a full ring sleeps at most FL_WAIT_STEP_MS at a time
 * (between wakes from the collector), and asks the kernel whether the
 * collector is alive once per FL_COLLECTOR_CHECK_MS of waiting. */
#define FL_WAIT_STEP_MS 10
#define FL_COLLECTOR_CHECK_MS 100

/*
 * The exit sample (ABI 10; preload/exit.c, collector/smaps.c).  A process
 * about to exit whose ring's exit_min_age_ms is set and that has lived that
 * long sets exit_state WAITING, sends FL_R_EXITING and sleeps on exit_state
 * for at most FL_EXIT_WAIT_MS.  The collector reads its smaps, then moves
 * WAITING to DONE (compare-and-swap) and wakes it; a shim that stops
 * waiting first moves WAITING to LATE, and the collector, finding LATE,
 * throws the read away (the address space may have been torn down under
 * it).  The collector also moves WAITING to DONE when it declines.
 */
enum fl_exit_state { FL_EXIT_IDLE = 0, FL_EXIT_WAITING = 1, FL_EXIT_DONE = 2, FL_EXIT_LATE = 3 };
#define FL_EXIT_WAIT_MS 100

struct fl_slot {
	__u64 seq;
	__u8 data[FL_SLOT_DATA];   /* one record: struct fl_rec first */
};
_Static_assert(sizeof(struct fl_slot) == FL_SLOT_SIZE, "fl_slot layout");
_Static_assert(FL_SLOT_DATA >= sizeof(struct fl_call_rec) + 8 * FL_MAX_FRAMES + FL_NAME_MAX,
	       "a slot holds the largest call record");
_Static_assert(FL_SLOT_DATA >= sizeof(struct fl_hello) && FL_SLOT_DATA >= sizeof(struct fl_mapping),
	       "a slot holds the largest record");

struct fl_ring_desc {
	__u32 state;        /* enum fl_ring_state */
	__u32 pid;          /* owner, valid once OWNED */
	__u64 claim;        /* order of claims: a pid's newer image has a larger one */
	__u64 head;         /* next producer ticket */
	__u64 tail;         /* next slot the collector reads */
	__u64 dropped;      /* records given up after the producer waited too long */
	__u32 wake;         /* futex word: the collector bumps it (and wakes) after freeing slots */
	__u32 waiters;      /* producers blocked on `wake` */
	__u32 off_reason;   /* enum fl_off_reason: why the shim stopped recording into this ring */
	__u32 exit_state;   /* futex word, enum fl_exit_state: the exit sample's handshake (ABI 10) */
	__u32 exit_min_age_ms; /* collector: wait at exit for a last smaps read only if this image has
	                        * lived this long (0: never); keeps that read's cost bounded */
	__u32 pad1;
};
_Static_assert(sizeof(struct fl_ring_desc) == 64, "fl_ring_desc layout");

struct fl_chan_hdr {
	__u32 magic;
	__u32 abi;          /* FL_ABI_VERSION */
	__u32 nrings;
	__u32 collector_pid;
	__u64 claims;       /* claim counter */
	__u64 no_ring;      /* process images that found every ring taken */
	__u64 ring_offset;  /* file offset of ring 0 (page aligned) */
	__u64 ring_bytes;   /* bytes per ring (page aligned) */
	__u32 wait_ms;      /* how long a producer waits for a full ring before giving up */
	__u32 high;         /* 1 + the highest ring index ever claimed: a scan for owners stops there */
	__u64 exits;        /* exit waits begun (ABI 10; was a heartbeat, then 0): the collector, seeing it
	                     * move, stops symbolizing (which can take 100 ms) to answer them */
	struct fl_ring_desc rings[FL_CHAN_RINGS];
};
_Static_assert(sizeof(struct fl_chan_hdr) == 64 + 64 * FL_CHAN_RINGS, "fl_chan_hdr layout");

#define FL_CHAN_RING_BYTES ((__u64)FL_RING_SLOTS * FL_SLOT_SIZE)
#define FL_CHAN_HDR_BYTES (((sizeof(struct fl_chan_hdr) + 4095) / 4096) * 4096)
#define FL_CHAN_BYTES (FL_CHAN_HDR_BYTES + (__u64)FL_CHAN_RINGS * FL_CHAN_RING_BYTES)
_Static_assert(FL_CHAN_RING_BYTES % 4096 == 0, "rings are page aligned");

/* Claim a free ring among the first nrings (the caller's own copy of the
 * count, never re-read from shared memory) for pid; returns its index or -1
 * when all are taken. */
static inline int fl_chan_claim(struct fl_chan_hdr *h, __u32 nrings, __u32 pid)
{
	for (__u32 i = 0; i < nrings && i < FL_CHAN_RINGS; i++) {
		struct fl_ring_desc *d = &h->rings[i];
		__u32 expect = FL_RING_FREE;
		if (__atomic_load_n(&d->state, __ATOMIC_RELAXED) != FL_RING_FREE ||
		    !__atomic_compare_exchange_n(&d->state, &expect, FL_RING_CLAIMING, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		d->pid = pid;
		d->claim = __atomic_add_fetch(&h->claims, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&d->state, FL_RING_OWNED, __ATOMIC_RELEASE);
		/* Raised before this image can exec, so its successor's scan sees the ring. */
		__u32 top = __atomic_load_n(&h->high, __ATOMIC_RELAXED);
		while (top < i + 1 && !__atomic_compare_exchange_n(&h->high, &top, i + 1, 1, __ATOMIC_RELEASE,
								    __ATOMIC_RELAXED))
			;
		return (int)i;
	}
	__atomic_add_fetch(&h->no_ring, 1, __ATOMIC_RELAXED);
	return -1;
}

/* Producer: take a ticket; the slot is &slots[*pos & (FL_RING_SLOTS-1)]. */
static inline __u64 fl_ring_ticket(struct fl_ring_desc *d)
{
	return __atomic_fetch_add(&d->head, 1, __ATOMIC_RELAXED);
}

#define FL_LAP(pos) ((pos) & ~(__u64)(FL_RING_SLOTS - 1))

/* Producer: is the slot for ticket pos free to write? */
static inline int fl_slot_free(const struct fl_slot *s, __u64 pos)
{
	return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == FL_LAP(pos);
}

/* Producer: make the record in the slot of ticket pos visible. */
static inline void fl_slot_publish(struct fl_slot *s, __u64 pos)
{
	__atomic_store_n(&s->seq, FL_LAP(pos) + 1, __ATOMIC_RELEASE);
}

/* Consumer: the next published slot, or NULL when there is none yet. */
static inline struct fl_slot *fl_ring_peek(struct fl_ring_desc *d, struct fl_slot *slots)
{
	__u64 t = d->tail;
	struct fl_slot *s = &slots[t & (FL_RING_SLOTS - 1)];
	return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == FL_LAP(t) + 1 ? s : 0;
}

/* Consumer: hand the slot just read back to the producers (for the next lap). */
static inline void fl_ring_release(struct fl_ring_desc *d, struct fl_slot *s)
{
	__atomic_store_n(&s->seq, FL_LAP(d->tail) + FL_RING_SLOTS, __ATOMIC_RELEASE);
	d->tail++;
}

/*
 * Consumer: make a retired ring claimable again.  The caller has zeroed
 * its slots first (fallocate(FALLOC_FL_PUNCH_HOLE) also returns the memory).
 */
static inline void fl_ring_reset(struct fl_ring_desc *d)
{
	d->head = 0;
	d->tail = 0;
	d->dropped = 0;
	d->pid = 0;
	__atomic_store_n(&d->state, FL_RING_FREE, __ATOMIC_RELEASE);
}

#endif /* FAULTLINE_CHANNEL_H */
