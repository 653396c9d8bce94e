/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the shared-memory ring protocol (common/channel.h) with the
 * collector's consumer (collector/consumer.c): the producer side here uses
 * the same primitives the shim's ring.c does, through the channel's own
 * memfd mapped a second time, as a target maps it.
 *   wrap:       records keep their order across many laps of the ring
 *   full:       a full ring refuses the next ticket until the consumer frees a slot
 *   concurrent: producer threads racing for tickets lose and repeat nothing
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "consumer.h"
#include "check.h"

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };

/* A real record (the consumer checks every record): a note of this pid,
 * the producer in pad, the sequence number at the start of the text. */
struct test_rec {
	struct fl_rec h;
	__u32 pid;
	__u32 producer;
	__u64 seq;
	char rest[240];
};
_Static_assert(sizeof(struct test_rec) == sizeof(struct fl_note), "test_rec is a note");

static struct fl_ring_desc *desc;
static struct fl_slot *slots;
static __u64 next_seq[PRODUCERS], delivered;

/* The producer's side of one record, as the shim writes it (waits while the ring is full). */
static void produce(__u32 producer, __u64 seq)
{
	__u64 pos = fl_ring_ticket(desc);
	struct fl_slot *s = &slots[pos & (FL_RING_SLOTS - 1)];
	while (!fl_slot_free(s, pos))
		sched_yield();
	struct test_rec r = { .h = { .type = FL_R_NOTE, .size = sizeof(r) }, .pid = (__u32)getpid(),
			      .producer = producer, .seq = seq };
	memcpy(s->data, &r, sizeof(r));
	fl_slot_publish(s, pos);
}

static void consume(void *ctx, const struct fl_rec *rec)
{
	(void)ctx;
	const struct test_rec *r = (const struct test_rec *)rec;
	if (rec->size != sizeof(*r) || r->producer >= PRODUCERS) {
		CHECK(0, "a record the producers did not write (size %u)", rec->size);
		return;
	}
	CHECK(r->seq == next_seq[r->producer], "producer %u: record %llu, expected %llu", r->producer,
	      (unsigned long long)r->seq, (unsigned long long)next_seq[r->producer]);
	next_seq[r->producer] = r->seq + 1;
	delivered++;
}

static void *producer_thread(void *arg)
{
	__u32 p = (__u32)(uintptr_t)arg;
	for (__u64 i = 0; i < PER_PRODUCER; i++)
		produce(p, i);
	return NULL;
}

int main(void)
{
	struct fl_channel *chan;
	if (fl_channel_create(&chan, 1000) < 0) {
		fprintf(stderr, "FAIL: fl_channel_create\n");
		return 1;
	}
	int fd = open(fl_channel_path(chan), O_RDWR | O_CLOEXEC);
	char *base = fd < 0 ? MAP_FAILED : mmap(NULL, FL_CHAN_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "FAIL: mapping the channel a second time\n");
		return 1;
	}
	struct fl_chan_hdr *hdr = (struct fl_chan_hdr *)base;
	int ring = fl_chan_claim(hdr, FL_CHAN_RINGS, (__u32)getpid());
	CHECK(ring >= 0, "claim a ring");
	desc = &hdr->rings[ring];
	slots = (struct fl_slot *)(base + hdr->ring_offset + (__u64)ring * hdr->ring_bytes);

	/* wrap: ten laps and a bit, read every 100 records */
	const __u64 laps = 10 * FL_RING_SLOTS + 7;
	for (__u64 i = 0; i < laps; i++) {
		produce(0, i);
		if (i % 100 == 99)
			fl_channel_poll(chan, consume, NULL);
	}
	fl_channel_poll(chan, consume, NULL);
	CHECK(delivered == laps && next_seq[0] == laps, "wrap: %llu of %llu delivered in order",
	      (unsigned long long)delivered, (unsigned long long)laps);

	/* full: a whole ring unread; the next ticket's slot is not free until one is read */
	for (__u64 i = 0; i < FL_RING_SLOTS; i++)
		produce(1, i);
	__u64 pos = __atomic_load_n(&desc->head, __ATOMIC_RELAXED);
	CHECK(!fl_slot_free(&slots[pos & (FL_RING_SLOTS - 1)], pos), "full: the next slot is taken");
	delivered = 0;
	CHECK(fl_channel_poll(chan, consume, NULL) == FL_RING_SLOTS, "full: the whole ring is read");
	CHECK(fl_slot_free(&slots[pos & (FL_RING_SLOTS - 1)], pos), "full: read slots are free again");
	CHECK(next_seq[1] == FL_RING_SLOTS, "full: %llu records read", (unsigned long long)next_seq[1]);

	/* concurrent: producers race for tickets while the consumer reads */
	memset(next_seq, 0, sizeof(next_seq));
	delivered = 0;
	pthread_t t[PRODUCERS];
	for (uintptr_t p = 0; p < PRODUCERS; p++)
		pthread_create(&t[p], NULL, producer_thread, (void *)p);
	while (delivered < (__u64)PRODUCERS * PER_PRODUCER && !failures)
		if (fl_channel_poll(chan, consume, NULL) == 0)
			sched_yield();
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(t[p], NULL);
	fl_channel_poll(chan, consume, NULL);
	for (int p = 0; p < PRODUCERS; p++)
		CHECK(next_seq[p] == PER_PRODUCER, "concurrent: producer %d delivered %llu of %d", p,
		      (unsigned long long)next_seq[p], PER_PRODUCER);
	struct fl_channel_loss loss;
	fl_channel_loss(chan, &loss);
	CHECK(loss.dropped == 0 && loss.unpublished == 0 && loss.no_ring == 0 && loss.corrupt == 0,
	      "no loss");

	munmap(base, FL_CHAN_BYTES);
	close(fd);
	fl_channel_destroy(chan);
	printf("ring: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
