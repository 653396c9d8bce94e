/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - consumer side of the shim -> collector shared-memory channel.
 * See common/channel.h for the layout and the ring protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "consumer.h"

struct fl_channel {
	int fd;
	char path[64];
	struct fl_chan_hdr *hdr;
	unsigned char *base;        /* the whole file, mapped */
	__u64 dropped_retired;      /* `dropped` of rings already retired */
	__u64 unpublished;
	__u32 cur_pid;              /* the ring being delivered (for fn) */
	int cur_ring;
	__u32 order[FL_CHAN_RINGS]; /* scratch: owned rings by claim */
};

int fl_channel_create(struct fl_channel **out, unsigned wait_ms)
{
	struct fl_channel *c;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cur_ring = -1;
	/* CLOEXEC: the target does not inherit it, it opens /proc/PID/fd/N,
	 * which works as long as we keep the fd (fs/proc/fd.c). */
	c->fd = memfd_create("faultline-channel", MFD_CLOEXEC);
	if (c->fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (ftruncate(c->fd, (off_t)FL_CHAN_BYTES) < 0) {
		rc = -errno;
		goto fail;
	}
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
	/* Magic last: a shim that sees it sees a complete header. */
	__atomic_store_n(&c->hdr->magic, FL_CHAN_MAGIC, __ATOMIC_RELEASE);
	snprintf(c->path, sizeof(c->path), "/proc/%d/fd/%d", (int)getpid(), c->fd);
	*out = c;
	return 0;
fail:
	fl_channel_destroy(c);
	return rc;
}

const char *fl_channel_path(const struct fl_channel *c)
{
	return c->path;
}

__u32 fl_channel_current_pid(const struct fl_channel *c)
{
	return c->cur_pid;
}

int fl_channel_current_ring(const struct fl_channel *c)
{
	return c->cur_ring;
}

static struct fl_slot *ring_slots(struct fl_channel *c, __u32 i)
{
	return (struct fl_slot *)(c->base + c->hdr->ring_offset + (__u64)i * c->hdr->ring_bytes);
}

/* Deliver up to max published records of ring i.  Returns how many. */
static int drain(struct fl_channel *c, __u32 i, fl_channel_fn fn, void *ctx, unsigned max)
{
	struct fl_ring_desc *d = &c->hdr->rings[i];
	struct fl_slot *slots = ring_slots(c, i), *s;
	int n = 0;

	c->cur_pid = d->pid;
	c->cur_ring = (int)i;
	while ((unsigned)n < max && (s = fl_ring_peek(d, slots))) {
		const struct fl_rec *r = (const struct fl_rec *)s->data;
		/* A record the shim cannot have written: skip, count as lost. */
		if (r->size >= sizeof(*r) && r->size <= FL_SLOT_DATA)
			fn(ctx, r);
		else
			c->unpublished++;
		fl_ring_release(d, s);
		n++;
	}
	c->cur_pid = 0;
	c->cur_ring = -1;
	return n;
}

/* Ring i's process image is gone: drain it, count its losses, free it. */
static int retire_ring(struct fl_channel *c, __u32 i, fl_channel_fn fn, void *ctx)
{
	struct fl_ring_desc *d = &c->hdr->rings[i];
	int n = drain(c, i, fn, ctx, ~0u);
	__u64 head = __atomic_load_n(&d->head, __ATOMIC_ACQUIRE);

	if (head > d->tail)
		c->unpublished += head - d->tail;
	c->dropped_retired += __atomic_load_n(&d->dropped, __ATOMIC_RELAXED);
	/* Punching a hole in shmem frees the pages and reads back as zeros
	 * (mm/shmem.c shmem_fallocate), which is an empty ring. */
	if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(c->hdr->ring_offset + (__u64)i * c->hdr->ring_bytes),
		      (off_t)c->hdr->ring_bytes) < 0)
		memset(ring_slots(c, i), 0, c->hdr->ring_bytes);
	fl_ring_reset(d);
	return n;
}

/* Fill c->order with the owned rings sorted by claim.  Returns the count. */
static unsigned owned_by_claim(struct fl_channel *c)
{
	unsigned n = 0;

	for (__u32 i = 0; i < c->hdr->nrings; i++)
		if (__atomic_load_n(&c->hdr->rings[i].state, __ATOMIC_ACQUIRE) == FL_RING_OWNED)
			c->order[n++] = i;
	/* Insertion sort: few rings are owned at once. */
	for (unsigned a = 1; a < n; a++) {
		__u32 v = c->order[a];
		unsigned b = a;
		while (b > 0 && c->hdr->rings[c->order[b - 1]].claim > c->hdr->rings[v].claim) {
			c->order[b] = c->order[b - 1];
			b--;
		}
		c->order[b] = v;
	}
	return n;
}

int fl_channel_poll(struct fl_channel *c, fl_channel_fn fn, void *ctx)
{
	unsigned n;
	int total = 0;

	if (!c || !c->hdr)
		return -EINVAL;
	n = owned_by_claim(c);
	for (unsigned a = 0; a < n; a++) {
		__u32 i = c->order[a], pid = c->hdr->rings[i].pid;
		int newer = 0;
		for (unsigned b = a + 1; b < n && !newer; b++)
			newer = c->hdr->rings[c->order[b]].pid == pid;
		if (newer)
			total += retire_ring(c, i, fn, ctx);
		else
			/* A bound per ring per poll keeps one busy producer
			 * from starving the rest. */
			total += drain(c, i, fn, ctx, 4 * FL_RING_SLOTS);
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
		if (c->hdr->rings[c->order[a]].pid == pid)
			retire_ring(c, c->order[a], fn, ctx);
	/* A process killed between claiming and owning leaves CLAIMING. */
	for (__u32 i = 0; i < c->hdr->nrings; i++) {
		struct fl_ring_desc *d = &c->hdr->rings[i];
		if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) == FL_RING_CLAIMING && d->pid == pid)
			fl_ring_reset(d);
	}
}

void fl_channel_loss(const struct fl_channel *c, struct fl_channel_loss *out)
{
	memset(out, 0, sizeof(*out));
	if (!c || !c->hdr)
		return;
	out->dropped = c->dropped_retired;
	for (__u32 i = 0; i < c->hdr->nrings; i++)
		if (__atomic_load_n(&c->hdr->rings[i].state, __ATOMIC_ACQUIRE) == FL_RING_OWNED)
			out->dropped += __atomic_load_n(&c->hdr->rings[i].dropped, __ATOMIC_RELAXED);
	out->no_ring = __atomic_load_n(&c->hdr->no_ring, __ATOMIC_RELAXED);
	out->unpublished = c->unpublished;
}

unsigned fl_channel_owners(const struct fl_channel *c, __u32 *pids, unsigned max)
{
	unsigned n = 0;

	for (__u32 i = 0; c && c->hdr && i < c->hdr->nrings; i++) {
		const struct fl_ring_desc *d = &c->hdr->rings[i];
		if (__atomic_load_n(&d->state, __ATOMIC_ACQUIRE) != FL_RING_OWNED)
			continue;
		if (n < max)
			pids[n] = d->pid;
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
