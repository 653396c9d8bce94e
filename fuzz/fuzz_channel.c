/* SPDX-License-Identifier: MIT */
/*
 * fuzz_channel - libFuzzer harness for everything the target can write that
 * the collector reads: the ring reader (collector/consumer.c) and, behind
 * its checks, the shim record decoders (collector/shimdec.c and the ingest
 * they feed).  Built and run by scripts/fuzz.sh (a meson test, suite fuzz).
 *
 * The channel is real (fl_channel_create), and the harness maps it a second
 * time as a target does.  Input (fuzz/corpus/channel holds seeds):
 *   byte 0, bit 0 clear: records.  Then { u16 length, bytes } each; each
 *       record is published in ring 0 the way the shim does it, one per slot.
 *       Bit 1 set: each record's pid field (by its type) is made this
 *       process's pid first, so records reach the decoders.
 *   bit 0 set: raw.  The rest is written over ring 0's descriptor (pid kept:
 *       identity is not the reader's job here) and then over its slots,
 *       sequence words included.
 * Either way the collector then polls, retires the ring (draining what is
 * left, counting what is missing) and frees it for the next input.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "consumer.h"
#include "ingest.h"
#include "shimdec.h"
#include "store.h"

static struct fl_channel *chan;
static struct fl_store *store;
static struct fl_ingest *ingest;
static struct fl_chan_hdr *hdr;
static struct fl_slot *slots;
static __u32 self;

static void cleanup(void)
{
	fl_store_discard(store);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256] = "", path[64];
	(void)argc;

	self = (__u32)getpid();
	snprintf(path, sizeof(path), "/tmp/fuzz_channel.%u.db", self);
	if (fl_channel_create(&chan, 1) || fl_store_create(&store, path, true, err, sizeof(err)) ||
	    !(ingest = fl_ingest_new(store))) {
		fprintf(stderr, "fuzz_channel: setup failed: %s\n", err);
		exit(1);
	}
	int fd = open(fl_channel_path(chan), O_RDWR | O_CLOEXEC);
	unsigned char *base = mmap(NULL, FL_CHAN_HDR_BYTES + FL_CHAN_RING_BYTES, PROT_READ | PROT_WRITE,
				   MAP_SHARED, fd, 0);
	if (fd < 0 || base == MAP_FAILED)
		exit(1);
	close(fd);
	hdr = (struct fl_chan_hdr *)base;
	slots = (struct fl_slot *)(base + FL_CHAN_HDR_BYTES);
	fl_ingest_root(ingest, (pid_t)self, "fuzz_channel", *argv, 1);
	atexit(cleanup);
	return 0;
}

static void claim(void)
{
	if (fl_chan_claim(hdr, 1, self) != 0)
		abort();   /* ring 0 was not freed by the last retire */
}

/* Where a record of this type keeps its pid (faultline.h). */
static size_t pid_offset(__u16 type)
{
	switch (type) {
	case FL_R_HELLO: return offsetof(struct fl_hello, pid);
	case FL_R_MAPPING: return offsetof(struct fl_mapping, pid);
	case FL_R_CALL: return offsetof(struct fl_call_rec, call.pid);
	case FL_R_NOTE: return offsetof(struct fl_note, pid);
	default: return 0;
	}
}

static void records(const uint8_t *d, size_t n, int patch_pid)
{
	struct fl_ring_desc *desc = &hdr->rings[0];

	claim();
	for (__u64 pos = 0; n >= 2 && pos < FL_RING_SLOTS; pos++) {
		size_t len = (size_t)d[0] | (size_t)d[1] << 8;
		d += 2;
		n -= 2;
		if (len > n)
			len = n;
		struct fl_slot *s = &slots[pos];
		memset(s->data, 0, sizeof(s->data));
		memcpy(s->data, d, len < sizeof(s->data) ? len : sizeof(s->data));
		size_t at = pid_offset(((struct fl_rec *)s->data)->type);
		if (patch_pid && at)
			memcpy(s->data + at, &self, sizeof(self));
		d += len;
		n -= len;
		__atomic_store_n(&desc->head, pos + 1, __ATOMIC_RELAXED);
		fl_slot_publish(s, pos);
	}
}

static void raw(const uint8_t *d, size_t n)
{
	struct fl_ring_desc *desc = &hdr->rings[0];
	size_t k = n < sizeof(*desc) ? n : sizeof(*desc);

	claim();
	memcpy(desc, d, k);
	desc->pid = self;
	desc->state = FL_RING_OWNED;   /* so the retire below always runs */
	d += k;
	n -= k;
	memcpy(slots, d, n < FL_CHAN_RING_BYTES ? n : FL_CHAN_RING_BYTES);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 1)
		return 0;
	if (d[0] & 1)
		raw(d + 1, n - 1);
	else
		records(d + 1, n - 1, d[0] & 2);
	fl_channel_poll(chan, fl_shimdec_record, ingest);
	fl_channel_retire(chan, self, fl_shimdec_record, ingest);
	/* The retire punched the ring's pages (zeros: an empty ring) and
	 * freed its descriptor, whatever the input claimed. */
	fl_ring_reset(&hdr->rings[0]);
	return 0;
}
