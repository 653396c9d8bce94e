/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - consumer side of the shim -> collector shared-memory channel.
 * See common/channel.h for the layout and the ring protocol.
 *
 * Everything in the channel can be written by the target, which may be
 * hostile (it runs as another user, or just has a bug), while the collector
 * may run as root.  So:
 *  - the geometry (ring count, offsets, sizes) is the collector's own
 *    constants, never read back from the header;
 *  - each ring's tail (the consumer's position) is kept here, and only
 *    written to shared memory for the producers' sake;
 *  - a record is copied out of its slot once, then checked
 *    (fl_channel_check_record), and only the checked copy is delivered;
 *  - every count read from shared memory is bounded before it is used.
 * What fails a check is a counted loss (`corrupt`) with the first reason
 * kept for a message, never a crash, a hang or a made-up row.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "monotime.h"

/* The owned rings as one poll saw them (read once from shared memory). */
struct owner {
	__u32 ring;
	__u32 pid;          /* the host pid (identified), 0 when none */
	__u32 claimed;      /* the pid the shim wrote */
	__u64 claim;
};

/* A ring's identified owner, for the claim it was identified for; and the
 * threads of a namespaced owner, their pid there -> the host's. */
#define TIDS_KEPT 8
struct ring_id {
	__u64 claim;
	__u32 host;
	__u32 ntids;
	__u32 ns_tid[TIDS_KEPT], host_tid[TIDS_KEPT];
};

struct fl_channel {
	int fd;
	char path[64];
	struct fl_chan_hdr *hdr;
	unsigned char *base;        /* the whole file, mapped */
	__u64 tail[FL_CHAN_RINGS];  /* the consumer's own position in each ring */
	/* A ring whose owner said a valid hello: only its counts (dropped) are
	 * believed; a ring forged by the target never said one. */
	unsigned char said_hello[FL_CHAN_RINGS];
	/* A ring whose owner (this host pid) said it is exiting and waits (FL_R_EXITING), not yet answered. */
	__u32 exiting[FL_CHAN_RINGS];
	__u32 nexiting;
	__u64 exits_seen;           /* hdr->exits when the last poll began */
	__u64 dropped_retired;      /* `dropped` of rings already retired */
	__u64 unpublished;
	__u64 corrupt;
	__u64 unidentified;
	__u64 stopped[FL_OFF_TAKEN_OVER + 1];
	char corrupt_why[160];      /* the first corrupt record, described */
	__u32 max_mappings;         /* a hello announcing more mappings is corrupt */
	__u64 ino;                  /* the memfd's, as a ring owner's maps show it */
	struct fl_channel_identity id;
	struct ring_id ids[FL_CHAN_RINGS];
	__u32 cur_pid;              /* the ring being delivered (for fn) */
	int cur_ring;
	int wake_early;             /* producers woken while a ring is read (drain) */
	/* The owned rings by claim, as the last scan of all FL_CHAN_RINGS
	 * descriptors found them (64 KiB of memory the producers write: done on
	 * every poll it was 7% of the collector's time under churn).  Scanned
	 * again when a claim was made since (hdr->claims moved), a ring was
	 * mid-claim, the collector freed one, or OWNERS_RESCAN_NS passed: a
	 * target that writes the counter delays its ring's reading, no more. */
	struct owner owners[FL_CHAN_RINGS];
	unsigned nowners;
	bool owners_valid;
	__u64 owners_claims, owners_ns;
	/* The record being delivered, copied out of its slot; one spare byte
	 * so a string running to the end can be terminated. */
	union {
		__u64 align;
		__u8 bytes[FL_SLOT_DATA + 1];
	} rec;
};

/* vm.max_map_count: no process has more mappings than this, so no hello
 * may announce more (the collector allocates for what it announces). */
static __u32 max_map_count(void)
{
	unsigned long v = 0;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (v < 65530)
		v = 65530;
	if (v > (1u << 24))
		v = 1u << 24;
	return (__u32)v + 2;   /* the snapshot may split one line around its buffer */
}

int fl_channel_create(struct fl_channel **out, unsigned wait_ms)
{
	struct fl_channel *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cur_ring = -1;
	c->max_mappings = max_map_count();
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	c->wake_early = cpus > 2 ? (int)cpus - 1 : 1;
	/* CLOEXEC: the target does not inherit it, it opens /proc/PID/fd/N,
	 * which works as long as we keep the fd (fs/proc/fd.c). */
	c->fd = memfd_create("faultline-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->fd < 0) {
		rc = -errno;
		goto fail;
	}
	/* Sealed at its size: the target opens this file read-write, and one
	 * that truncated it would kill the (root) collector with SIGBUS on its
	 * next read.  Punching holes (zeros) is still possible, and harmless. */
	if (ftruncate(c->fd, (off_t)FL_CHAN_BYTES) < 0 ||
	    fcntl(c->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(c->fd, &st) == 0)
		c->ino = st.st_ino;
	c->base = mmap(NULL, FL_CHAN_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->base == MAP_FAILED) {
		c->base = NULL;
		rc = -errno;
		goto fail;
	}
	c->hdr = (struct fl_chan_hdr *)c->base;
	c->hdr->abi = FL_ABI_VERSION;
	c->hdr->nrings = FL_CHAN_RINGS;
	c->hdr->collector_pid = (__u32)getpid();
	c->hdr->ring_offset = FL_CHAN_HDR_BYTES;
	c->hdr->ring_bytes = FL_CHAN_RING_BYTES;
	c->hdr->wait_ms = wait_ms;
	/* No heartbeat: a producer waiting on a full ring asks the kernel whether
	 * the collector is alive (preload/ring.c collector_alive), so nothing here
	 * wakes while the target is idle (a 10 ms beat thread did). */
	/* Magic last: a shim that sees it sees a complete header. */
	__atomic_store_n(&c->hdr->magic, FL_CHAN_MAGIC, __ATOMIC_RELEASE);
	snprintf(c->path, sizeof(c->path), "/proc/%d/fd/%d", (int)getpid(), c->fd);
	*out = c;
	return 0;
fail:
	fl_channel_destroy(c);
	return rc;
}

static __u64 ring_offset(__u32 i)
{
	return FL_CHAN_HDR_BYTES + (__u64)i * FL_CHAN_RING_BYTES;
}

static struct fl_slot *ring_slots(struct fl_channel *c, __u32 i)
{
	return (struct fl_slot *)(c->base + ring_offset(i));
}

void fl_channel_set_identity(struct fl_channel *c, const struct fl_channel_identity *id)
{
	c->id = *id;
}

/* Ring i's owner, claimed to be pid, as the kernel says (once per claim). */
static __u32 identify(struct fl_channel *c, __u32 i, __u32 claimed, __u64 claim)
{
	struct ring_id *r = &c->ids[i];
	if (!c->id.ring)
		return claimed;
	if (r->claim != claim || !claim) {
		r->claim = claim;
		r->host = c->id.ring(c->id.ctx, claimed, c->ino, ring_offset(i));
		r->ntids = 0;
	}
	return r->host;
}

/* The host tid of a namespaced ring owner's thread (a few kept per ring). */
static __u32 host_tid(struct fl_channel *c, __u32 i, __u32 claimed, __u32 host, __u32 tid)
{
	struct ring_id *r = &c->ids[i];
	if (tid == claimed)
		return host;
	for (__u32 k = 0; k < r->ntids; k++)
		if (r->ns_tid[k] == tid)
			return r->host_tid[k];
	__u32 h = c->id.tid(c->id.ctx, host, tid), k = r->ntids < TIDS_KEPT ? r->ntids++ : tid % TIDS_KEPT;
	r->ns_tid[k] = tid;
	r->host_tid[k] = h;
	return h;
}

/* A checked record of a namespaced owner, filed under its host pid and tids. */
static void file_under_host(struct fl_channel *c, __u32 i, __u32 claimed, __u32 host, struct fl_rec *r)
{
	switch (r->type) {
	case FL_R_HELLO: {
		struct fl_hello *h = (void *)r;
		h->pid = host;
		h->ppid = c->id.parent(c->id.ctx, host);
		break;
	}
	case FL_R_MAPPING:
		((struct fl_mapping *)r)->pid = host;
		break;
	case FL_R_CALL: {
		struct fl_call *k = &((struct fl_call_rec *)r)->call;
		k->pid = host;
		k->tid = host_tid(c, i, claimed, host, k->tid);
		break;
	}
	case FL_R_NOTE:
		((struct fl_note *)r)->pid = host;
		break;
	case FL_R_ALLOC: {
		struct fl_alloc_rec *a = (void *)r;
		a->pid = host;
		a->tid = host_tid(c, i, claimed, host, a->tid);
		break;
	}
	case FL_R_FREE: {
		struct fl_free_rec *f = (void *)r;
		f->pid = host;
		f->tid = host_tid(c, i, claimed, host, f->tid);
		break;
	}
	case FL_R_HEAP_STATS:
		((struct fl_heap_stats *)r)->pid = host;
		break;
	case FL_R_EXEC:
		((struct fl_exec_rec *)r)->pid = host;
		break;
	case FL_R_NESTED:
		((struct fl_nested *)r)->pid = host;
		break;
	case FL_R_EXITING:
		((struct fl_exiting *)r)->pid = host;
		break;
	case FL_R_REAPED:
		/* the child's pid is the namespace's, and once reaped the kernel
		 * has nothing left to map it by: the record names no one */
		((struct fl_reaped *)r)->pid = host;
		((struct fl_reaped *)r)->child = 0;
		break;
	}
}

const char *fl_channel_path(const struct fl_channel *c)
{
	return c->path;
}

int fl_channel_fd(const struct fl_channel *c)
{
	return c->fd;
}

__u32 fl_channel_current_pid(const struct fl_channel *c)
{
	return c->cur_pid;
}

int fl_channel_current_ring(const struct fl_channel *c)
{
	return c->cur_ring;
}

/* Terminate a string field in the checked copy; says whether it was. */
static int terminated(char *s, size_t cap)
{
	int ok = memchr(s, 0, cap) != NULL;

	s[cap - 1] = 0;
	return ok;
}

const char *fl_channel_check_record(struct fl_rec *r, __u32 len, __u32 ring_pid,
				    __u32 max_mappings)
{
	if (len < sizeof(*r) || r->size != len || len > FL_SLOT_DATA)
		return "record size out of range";
	switch (r->type) {
	case FL_R_HELLO: {
		struct fl_hello *h = (void *)r;
		if (len != sizeof(*h))
			return "hello of the wrong size";
		if (h->pid != ring_pid)
			return "hello for another pid than its ring's";
		if (h->nmappings > max_mappings)
			return "hello announcing more mappings than vm.max_map_count";
		if (h->depth > FL_MAX_FRAMES)
			return "hello with a stack depth over FL_MAX_FRAMES";
		terminated(h->exe, sizeof(h->exe));
		return NULL;
	}
	case FL_R_MAPPING: {
		struct fl_mapping *m = (void *)r;
		if (len != sizeof(*m))
			return "mapping of the wrong size";
		if (m->pid != ring_pid)
			return "mapping for another pid than its ring's";
		if (m->end <= m->start || (m->start | m->end) & 4095)
			return "mapping with an impossible range";
		terminated(m->path, sizeof(m->path));
		return NULL;
	}
	case FL_R_CALL: {
		struct fl_call_rec *c = (void *)r;
		__u64 fixed = sizeof(*c) + 8ull * r->nframes;
		if (len < sizeof(*c) || r->nframes > FL_MAX_FRAMES || fixed > len)
			return "call record with a bad frame count";
		if (c->call.pid != ring_pid)
			return "call for another pid than its ring's";
		if (c->call.kind == FL_K_NONE || c->call.kind >= FL_K_COUNT ||
		    c->call.kind == FL_K_EXEC || c->call.kind == FL_K_EXIT ||
		    c->call.kind == FL_K_CLONE)
			return "call of a kind the shim does not record";
		if (len > fixed) {
			if (c->call.kind != FL_K_DLOPEN || len - fixed > FL_NAME_MAX)
				return "call with trailing bytes";
			/* the copy has a spare byte: the name always ends */
			((char *)r)[len] = 0;
		}
		return NULL;
	}
	case FL_R_NOTE: {
		struct fl_note *n = (void *)r;
		if (len != sizeof(*n))
			return "note of the wrong size";
		if (n->pid != ring_pid)
			return "note for another pid than its ring's";
		terminated(n->text, sizeof(n->text));
		return NULL;
	}
	case FL_R_ALLOC: {
		struct fl_alloc_rec *a = (void *)r;
		if (len < sizeof(*a) || r->nframes > FL_MAX_FRAMES || len != sizeof(*a) + 8ull * r->nframes)
			return "allocation record with a bad frame count";
		if (a->pid != ring_pid)
			return "allocation for another pid than its ring's";
		return NULL;
	}
	case FL_R_FREE:
		if (len != sizeof(struct fl_free_rec))
			return "free record of the wrong size";
		if (((struct fl_free_rec *)r)->pid != ring_pid)
			return "free for another pid than its ring's";
		return NULL;
	case FL_R_HEAP_STATS:
		if (len != sizeof(struct fl_heap_stats))
			return "heap stats of the wrong size";
		if (((struct fl_heap_stats *)r)->pid != ring_pid)
			return "heap stats for another pid than its ring's";
		return NULL;
	case FL_R_HEAP_FORK:
		if (len != sizeof(struct fl_heap_fork))
			return "heap fork record of the wrong size";
		if (((struct fl_heap_fork *)r)->pid != ring_pid)
			return "heap fork record for another pid than its ring's";
		return NULL;
	case FL_R_EXEC: {
		struct fl_exec_rec *x = (void *)r;
		if (len != sizeof(*x))
			return "exec record of the wrong size";
		if (x->pid != ring_pid)
			return "exec record for another pid than its ring's";
		terminated(x->path, sizeof(x->path));
		return NULL;
	}
	case FL_R_NESTED:
		if (len != sizeof(struct fl_nested))
			return "nested-call count of the wrong size";
		if (((struct fl_nested *)r)->pid != ring_pid)
			return "nested-call count for another pid than its ring's";
		return NULL;
	case FL_R_EXITING:
		if (len != sizeof(struct fl_exiting))
			return "exiting record of the wrong size";
		if (((struct fl_exiting *)r)->pid != ring_pid)
			return "exiting record for another pid than its ring's";
		return NULL;
	case FL_R_REAPED:
		if (len != sizeof(struct fl_reaped))
			return "reaped record of the wrong size";
		if (((struct fl_reaped *)r)->pid != ring_pid)
			return "reaped record for another pid than its ring's";
		return NULL;
	default:
		return "record of a type the shim does not send";
	}
}

static void count_corrupt(struct fl_channel *c, __u32 i, __u32 pid, const char *why)
{
	if (!c->corrupt++)
		snprintf(c->corrupt_why, sizeof(c->corrupt_why), "ring %u (pid %u): %s", i, pid, why);
}

/* Copy the slot's record out, hand the slot back, check the copy.  Returns
 * the record's length, or 0 when it failed a check (counted). */
static __u32 take(struct fl_channel *c, __u32 i, __u32 pid, struct fl_slot *s, __u64 t)
{
	struct fl_ring_desc *d = &c->hdr->rings[i];
	__u32 len;
	const char *why;

	/* The size is read once, from the copy, and bounded before use; a
	 * size over the slot stays in the copy and fails the check. */
	memcpy(c->rec.bytes, s->data, sizeof(struct fl_rec));
	len = ((struct fl_rec *)c->rec.bytes)->size;
	if (len > FL_SLOT_DATA)
		len = FL_SLOT_DATA;
	memcpy(c->rec.bytes, s->data, len > sizeof(struct fl_rec) ? len : sizeof(struct fl_rec));
	__atomic_store_n(&s->seq, FL_LAP(t) + FL_RING_SLOTS, __ATOMIC_RELEASE);
	c->tail[i] = t + 1;
	__atomic_store_n(&d->tail, t + 1, __ATOMIC_RELEASE);
	why = fl_channel_check_record((struct fl_rec *)c->rec.bytes, len, pid, c->max_mappings);
	if (why) {
		count_corrupt(c, i, pid, why);
		return 0;
	}
	return len;
}

/*
 * Producers that find their ring full wait on a futex.  Woken only once the
 * collector had read all of it (512 records, ~1.8 ms on threads8), they
 * slept meanwhile with their CPU idle: a fifth of threads8's samples.  So
 * every WAKE_EVERY records a few are woken (c->wake_early: one per CPU the
 * collector leaves free) to fill the slots read so far, and all of them
 * when the read ends.  Waking them all each time made a herd of threads64's
 * 64 that took the collector's CPU from it (4.3 -> 5.1 s).
 */
#define WAKE_EVERY 64

/* Producers blocked on a full ring: room was made, wake nr of them. */
static void wake_producers(struct fl_ring_desc *d, int nr)
{
	if (!__atomic_load_n(&d->waiters, __ATOMIC_SEQ_CST))
		return;
	__atomic_add_fetch(&d->wake, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &d->wake, FUTEX_WAKE, nr, NULL, NULL, 0);
}

/* Deliver up to max published records of ring i (owned by o).  Returns how many. */
static int drain(struct fl_channel *c, const struct owner *o, fl_channel_fn fn, void *ctx,
		 unsigned max)
{
	__u32 i = o->ring, pid = o->claimed;
	struct fl_slot *slots = ring_slots(c, i);
	int n = 0;

	c->cur_pid = o->pid;
	c->cur_ring = (int)i;
	while ((unsigned)n < max) {
		__u64 t = c->tail[i];
		struct fl_slot *s = &slots[t & (FL_RING_SLOTS - 1)];
		if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != FL_LAP(t) + 1)
			break;
		if (take(c, i, pid, s, t)) {
			struct fl_rec *r = (struct fl_rec *)c->rec.bytes;
			if (!o->pid) {
				c->unidentified++;
			} else {
				if (r->type == FL_R_HELLO)
					c->said_hello[i] = 1;
				if (r->type == FL_R_EXITING && !c->exiting[i]) {
					c->exiting[i] = o->pid;
					c->nexiting++;
				}
				if (o->pid != pid)
					file_under_host(c, i, pid, o->pid, r);
				fn(ctx, r);
			}
		}
		if (++n % WAKE_EVERY == 0)
			wake_producers(&c->hdr->rings[i], c->wake_early);
	}
	if (n)
		wake_producers(&c->hdr->rings[i], INT_MAX);
	c->cur_pid = 0;
	c->cur_ring = -1;
	return n;
}

static __u64 add_sat(__u64 a, __u64 b)
{
	return a + b < a ? ~0ull : a + b;
}

/* Ring o->ring's process image is gone: drain it, count its losses, free it. */
static int retire_ring(struct fl_channel *c, const struct owner *o, fl_channel_fn fn, void *ctx)
{
	__u32 i = o->ring, pid = o->claimed;
	struct fl_ring_desc *d = &c->hdr->rings[i];
	int n = drain(c, o, fn, ctx, ~0u);
	__u64 head = __atomic_load_n(&d->head, __ATOMIC_ACQUIRE);
	__u32 off = __atomic_load_n(&d->off_reason, __ATOMIC_RELAXED);

	/* A producer never gets more than a ring ahead of the consumer. */
	if (head > c->tail[i] && head - c->tail[i] <= FL_RING_SLOTS)
		c->unpublished += head - c->tail[i];
	else if (head != c->tail[i])
		count_corrupt(c, i, pid, "ring head out of range");
	if (c->said_hello[i]) {
		c->dropped_retired = add_sat(c->dropped_retired,
					     __atomic_load_n(&d->dropped, __ATOMIC_RELAXED));
		if (off > FL_OFF_NONE && off <= FL_OFF_TAKEN_OVER)
			c->stopped[off]++;
		else if (off)
			count_corrupt(c, i, pid, "unknown reason for stopping");
	}
	c->said_hello[i] = 0;
	c->owners_valid = false;
	if (c->exiting[i]) {
		c->exiting[i] = 0;
		c->nexiting--;
	}
	/* Punching a hole in shmem frees the pages and reads back as zeros
	 * (mm/shmem.c shmem_fallocate), which is an empty ring. */
	if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)ring_offset(i), (off_t)FL_CHAN_RING_BYTES) < 0)
		memset(ring_slots(c, i), 0, FL_CHAN_RING_BYTES);
	c->tail[i] = 0;
	memset(&d->wake, 0, sizeof(*d) - offsetof(struct fl_ring_desc, wake));
	fl_ring_reset(d);
	return n;
}

#define OWNERS_RESCAN_NS 100000000ull

/* Fill c->owners with the owned rings sorted by claim, each descriptor
 * read once, unless the last scan still holds (struct fl_channel).
 * Returns the count (at most FL_CHAN_RINGS, whatever the header says). */
static unsigned owned_by_claim(struct fl_channel *c)
{
	/* the counter first: a claim it does not count yet is seen by the next poll */
	__u64 claims = __atomic_load_n(&c->hdr->claims, __ATOMIC_ACQUIRE), now = fl_mono_ns();
	bool settled = true;
	unsigned n = 0;

	if (c->owners_valid && claims == c->owners_claims && now - c->owners_ns < OWNERS_RESCAN_NS)
		return c->nowners;
	for (__u32 i = 0; i < FL_CHAN_RINGS; i++) {
		struct fl_ring_desc *d = &c->hdr->rings[i];
		__u32 state = __atomic_load_n(&d->state, __ATOMIC_ACQUIRE);
		settled &= state != FL_RING_CLAIMING;
		if (state != FL_RING_OWNED)
			continue;
		c->owners[n].ring = i;
		c->owners[n].claimed = __atomic_load_n(&d->pid, __ATOMIC_RELAXED);
		c->owners[n].claim = __atomic_load_n(&d->claim, __ATOMIC_RELAXED);
		c->owners[n].pid = identify(c, i, c->owners[n].claimed, c->owners[n].claim);
		n++;
	}
	/* Insertion sort: few rings are owned at once. */
	for (unsigned a = 1; a < n; a++) {
		struct owner v = c->owners[a];
		unsigned b = a;
		while (b > 0 && c->owners[b - 1].claim > v.claim) {
			c->owners[b] = c->owners[b - 1];
			b--;
		}
		c->owners[b] = v;
	}
	c->nowners = n;
	c->owners_valid = settled;
	c->owners_claims = claims;
	c->owners_ns = now;
	return n;
}

int fl_channel_poll(struct fl_channel *c, fl_channel_fn fn, void *ctx)
{
	unsigned n;
	int total = 0;

	if (!c || !c->hdr)
		return -EINVAL;
	c->exits_seen = __atomic_load_n(&c->hdr->exits, __ATOMIC_SEQ_CST);
	n = owned_by_claim(c);
	for (unsigned a = 0; a < n; a++) {
		struct owner *o = &c->owners[a];
		int newer = 0;
		for (unsigned b = a + 1; b < n && !newer; b++)
			newer = o->pid && c->owners[b].pid == o->pid;
		if (newer)
			total += retire_ring(c, o, fn, ctx);
		else
			/* A bound per ring per poll keeps one busy producer
			 * from starving the rest. */
			total += drain(c, o, fn, ctx, 4 * FL_RING_SLOTS);
	}
	return total;
}

void fl_channel_retire(struct fl_channel *c, __u32 pid, fl_channel_fn fn, void *ctx)
{
	unsigned n;

	if (!c || !c->hdr || !pid)
		return;
	n = owned_by_claim(c);
	for (unsigned a = 0; a < n; a++)
		if (c->owners[a].pid == pid)
			retire_ring(c, &c->owners[a], fn, ctx);
	/* A process killed between claiming and owning leaves CLAIMING. */
	for (__u32 i = 0; i < FL_CHAN_RINGS; i++) {
		struct fl_ring_desc *d = &c->hdr->rings[i];
		if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) == FL_RING_CLAIMING && d->pid == pid) {
			fl_ring_reset(d);
			c->owners_valid = false;
		}
	}
}

/* The ring pid (host) owns now, or -1. */
static int ring_of(struct fl_channel *c, __u32 pid)
{
	int best = -1;
	__u64 best_claim = 0;

	for (__u32 i = 0; i < FL_CHAN_RINGS; i++) {
		struct fl_ring_desc *d = &c->hdr->rings[i];
		if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != FL_RING_OWNED)
			continue;
		__u64 claim = __atomic_load_n(&d->claim, __ATOMIC_RELAXED);
		if (identify(c, i, __atomic_load_n(&d->pid, __ATOMIC_RELAXED), claim) == pid && claim >= best_claim) {
			best = (int)i;
			best_claim = claim;
		}
	}
	return best;
}

void fl_channel_exit_hint(struct fl_channel *c, __u32 pid, __u32 min_age_ms)
{
	int i = c && c->hdr && pid ? ring_of(c, pid) : -1;
	if (i >= 0)
		__atomic_store_n(&c->hdr->rings[i].exit_min_age_ms, min_age_ms, __ATOMIC_RELAXED);
}

/* Answer ring i's waiting shim: 1 if it was still waiting, 0 if it had stopped (LATE) or never waited. */
static int answer_exit(struct fl_channel *c, __u32 i)
{
	struct fl_ring_desc *d = &c->hdr->rings[i];
	__u32 expect = FL_EXIT_WAITING;
	int waited = __atomic_compare_exchange_n(&d->exit_state, &expect, FL_EXIT_DONE, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST);
	if (waited)
		syscall(SYS_futex, &d->exit_state, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
	c->exiting[i] = 0;
	c->nexiting--;
	return waited;
}

int fl_channel_exit_done(struct fl_channel *c, __u32 pid)
{
	int waited = 0;
	for (__u32 i = 0; c && c->nexiting && i < FL_CHAN_RINGS; i++)
		if (pid && c->exiting[i] == pid)
			waited |= answer_exit(c, i);
	return waited;
}

bool fl_channel_exit_waiting(const struct fl_channel *c)
{
	return c && c->hdr && __atomic_load_n(&c->hdr->exits, __ATOMIC_SEQ_CST) != c->exits_seen;
}

void fl_channel_exit_release(struct fl_channel *c)
{
	for (__u32 i = 0; c && c->nexiting && i < FL_CHAN_RINGS; i++)
		if (c->exiting[i])
			answer_exit(c, i);
}

void fl_channel_loss(const struct fl_channel *c, struct fl_channel_loss *out)
{
	memset(out, 0, sizeof(*out));
	if (!c || !c->hdr)
		return;
	out->dropped = c->dropped_retired;
	for (__u32 i = 0; i < FL_CHAN_RINGS; i++)
		if (c->said_hello[i] &&
		    __atomic_load_n(&c->hdr->rings[i].state, __ATOMIC_ACQUIRE) == FL_RING_OWNED)
			out->dropped = add_sat(out->dropped,
					       __atomic_load_n(&c->hdr->rings[i].dropped, __ATOMIC_RELAXED));
	out->no_ring = __atomic_load_n(&c->hdr->no_ring, __ATOMIC_RELAXED);
	out->unpublished = c->unpublished;
	out->corrupt = c->corrupt;
	out->unidentified = c->unidentified;
	out->corrupt_why = c->corrupt ? c->corrupt_why : NULL;
	out->stopped_timeout = c->stopped[FL_OFF_TIMEOUT];
	out->stopped_collector = c->stopped[FL_OFF_COLLECTOR_GONE];
	out->stopped_taken_over = c->stopped[FL_OFF_TAKEN_OVER];
}

unsigned fl_channel_owners(const struct fl_channel *c, __u32 *pids, unsigned max)
{
	unsigned n = 0;

	for (__u32 i = 0; c && c->hdr && i < FL_CHAN_RINGS; i++) {
		const struct fl_ring_desc *d = &c->hdr->rings[i];
		if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != FL_RING_OWNED)
			continue;
		if (n < max)
			pids[n] = __atomic_load_n(&d->pid, __ATOMIC_RELAXED);
		n++;
	}
	return n;
}

void fl_channel_destroy(struct fl_channel *c)
{
	if (!c)
		return;
	if (c->base)
		munmap(c->base, FL_CHAN_BYTES);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
