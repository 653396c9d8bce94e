/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the shim-to-syscall matcher (collector/matcher.c): which
 * calls it pairs, which it settles alone and when, in every order the two
 * streams can be read in.  Each settled call is logged as "K<n>+S<n>",
 * "K<n>" or "S<n>" (n: the call's a[0], an identity the test gives it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matcher.h"

static int failures;
static char log_[1 << 16];
static size_t nlog, nsettled;

static void settle(void *ctx, const struct fl_pending *k, const struct fl_pending *s)
{
	(void)ctx;
	char one[64];
	if (k && s)
		snprintf(one, sizeof(one), "K%llu+S%llu", (unsigned long long)k->call.args[1],
			 (unsigned long long)s->call.args[1]);
	else
		snprintf(one, sizeof(one), "%c%llu", k ? 'K' : 'S', (unsigned long long)(k ? k : s)->call.args[1]);
	if (nlog < sizeof(log_) - 80)
		nlog += (size_t)snprintf(log_ + nlog, sizeof(log_) - nlog, "%s%s", nlog ? " " : "", one);
	nsettled++;
}

static void expect(const char *want, int line)
{
	if (strcmp(log_, want)) {
		fprintf(stderr, "FAIL line %d:\n  got  %s\n  want %s\n", line, log_, want);
		failures++;
	}
	nlog = 0;
	log_[0] = 0;
}
#define EXPECT(want) expect(want, __LINE__)

/*
 * A munmap of thread tid at time t.  Twins share addr (the match key); id
 * (a[1], the length, also in the key) names the call in the log, so give
 * twins the same id.
 */
static struct fl_pending call(__u32 tid, __u64 t, __u64 addr, __u64 id)
{
	struct fl_call c = { .kind = FL_K_MUNMAP, .pid = 1, .tid = tid, .time_ns = t, .args = { addr, id } };
	return fl_pending_of(&c);
}

static void kernel(struct fl_matcher *m, __u32 tid, __u64 t, __u64 addr, __u64 id)
{
	struct fl_pending k = call(tid, t, addr, id);
	fl_matcher_kernel(m, &k);
}

static void shim(struct fl_matcher *m, __u32 tid, __u64 t, __u64 addr, __u64 id)
{
	static const __u64 frames[2] = { 0x1000, 0x2000 };
	struct fl_pending s = call(tid, t, addr, id);
	s.frames = frames;
	s.nframes = 2;
	fl_matcher_shim(m, &s);
}

int main(void)
{
	struct fl_matcher m;
	fl_matcher_init(&m, settle, NULL);

	/* in order, either stream first */
	kernel(&m, 1, 10, 0xa, 1);
	shim(&m, 1, 11, 0xa, 1);
	shim(&m, 1, 21, 0xb, 2);
	kernel(&m, 1, 20, 0xb, 2);
	EXPECT("K1+S1 K2+S2");

	/* glibc's own calls (no shim twin) wait until the channel is read past them, then settle alone */
	kernel(&m, 1, 30, 0xc, 3);
	kernel(&m, 1, 31, 0xc, 4); /* the same key as 3 would have, but another call */
	kernel(&m, 1, 32, 0xd, 5);
	shim(&m, 1, 33, 0xd, 5);
	EXPECT("K5+S5");
	fl_matcher_expire(&m, 31, 0);
	EXPECT("K3");
	fl_matcher_expire(&m, 100, 0);
	EXPECT("K4");

	/* a shim twin pairs with the newest syscall of its key before it: 7, not glibc's 6 */
	kernel(&m, 1, 40, 0xe, 6);
	kernel(&m, 1, 41, 0xe, 6);
	shim(&m, 1, 42, 0xe, 6);
	fl_matcher_expire(&m, 100, 100);
	EXPECT("K6+S6 K6");

	/* a shim call whose syscall never came (failed in libc) settles when a later syscall arrives */
	shim(&m, 1, 50, 0xf, 8);
	kernel(&m, 1, 51, 0x10, 9);
	EXPECT("S8");
	shim(&m, 1, 52, 0x10, 9);
	EXPECT("K9+S9");
	/* ... or when BPF's ring has been read past it */
	shim(&m, 1, 60, 0x11, 10);
	fl_matcher_expire(&m, 1000, 59);
	EXPECT("");
	fl_matcher_expire(&m, 1000, 61);
	EXPECT("S10");

	/* BPF far ahead of the channel: 1000 syscalls, then their shim twins */
	for (__u64 i = 0; i < 1000; i++)
		kernel(&m, 2, 100 + 2 * i, 0x1000 + i, 1000 + i);
	for (__u64 i = 0; i < 1000; i++)
		shim(&m, 2, 101 + 2 * i, 0x1000 + i, 1000 + i);
	char want[1 << 15];
	size_t w = 0;
	for (__u64 i = 0; i < 1000 && w < sizeof(want) - 32; i++)
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%sK%llu+S%llu", i ? " " : "",
				      (unsigned long long)(1000 + i), (unsigned long long)(1000 + i));
	EXPECT(want);

	/*
	 * A signal handler between a syscall (K1) and its shim record (S1)
	 * makes calls of its own (K2, S2): K1 K2 S2 S1, read in either order.
	 */
	kernel(&m, 3, 200, 0x20, 21);
	kernel(&m, 3, 201, 0x21, 22);
	shim(&m, 3, 202, 0x21, 22);
	shim(&m, 3, 203, 0x20, 21);
	EXPECT("K22+S22 K21+S21");
	shim(&m, 3, 302, 0x31, 32);
	shim(&m, 3, 303, 0x30, 31);
	kernel(&m, 3, 300, 0x30, 31);
	kernel(&m, 3, 301, 0x31, 32);
	EXPECT("K31+S31 K32+S32");

	/* threads do not mix: the same key on another thread is another call */
	kernel(&m, 4, 400, 0x40, 41);
	shim(&m, 5, 401, 0x40, 42);
	fl_matcher_flush(&m);
	EXPECT("K41 S42");

	/* a million of glibc's calls and a few of the shim's: queues stay short, each settles once */
	nsettled = 0;
	for (__u64 i = 0; i < 1000000; i++) {
		kernel(&m, 6, 1000 + i * 10, 0x100000 + (i % 7), i);
		if (i % 1000 == 999)
			shim(&m, 6, 1000 + i * 10 + 1, 0x100000 + (i % 7), i);
		if (i % 10000 == 0)
			fl_matcher_expire(&m, 1000 + i * 10 - 500, 1000 + i * 10 - 500);
		nlog = 0;
	}
	fl_matcher_flush(&m);
	if (nsettled != 1000000) {
		fprintf(stderr, "FAIL: %zu settled, want 1000000\n", nsettled);
		failures++;
	}
	fl_matcher_free(&m);
	printf("matcher: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
