/* SPDX-License-Identifier: MIT */
/*
 * unwind_cost: what one call stack costs with each unwinder the shim could
 * use on its sampled-malloc path, at a given depth.  bench/heap.py builds
 * and runs it; docs/heap.md has the numbers.
 *
 *   backtrace   glibc backtrace() (libgcc's DWARF unwinder, _dl_find_object)
 *   fp          walking the frame-pointer chain (valid only where every frame
 *               keeps one: this program is built -fno-omit-frame-pointer,
 *               Debian's libraries and most programs are not)
 *   libunwind   unw_backtrace() of libunwind 1.6 with UNW_CACHE_PER_THREAD
 *               (dlopen'ed, if installed; it keeps a pipe open in the
 *               process: docs/libunwind.md)
 *
 * Usage: unwind_cost DEPTH CALLS
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX 64

static int (*unw_bt)(void **, int);
static int calls;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: other load on the machine does not count */
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static int fp_walk(void **buf, int max)
{
	void **fp = __builtin_frame_address(0);
	int n = 0;

	while (fp && n < max) {
		void *ret = fp[1];
		void **next = fp[0];
		if (!ret || next <= fp)
			break;
		buf[n++] = ret;
		fp = next;
	}
	return n;
}

static void measure(const char *name, int (*fn)(void **, int))
{
	void *buf[MAX];
	int got = 0;
	double t = now();

	for (int i = 0; i < calls; i++)
		got = fn(buf, MAX);
	t = now() - t;
	printf("%-10s %8.0f ns per stack, %d frames\n", name, t / calls * 1e9, got);
}

__attribute__((noinline)) static int recurse(int depth)
{
	if (depth > 0) {
		int r = recurse(depth - 1);
		__asm__ volatile("" : "+r"(r) : : "memory"); /* a real frame each: no tail call */
		return r + 1;
	}
	measure("backtrace", backtrace);
	measure("fp", fp_walk);
	if (unw_bt)
		measure("libunwind", unw_bt);
	return 0;
}

int main(int argc, char **argv)
{
	int depth = argc > 1 ? atoi(argv[1]) : 16;
	void *h = dlopen("libunwind.so.8", RTLD_NOW);

	calls = argc > 2 ? atoi(argv[2]) : 100000;
	if (h) {
		int (*set_caching)(void *, int) = (int (*)(void *, int))dlsym(h, "_ULx86_64_set_caching_policy");
		void **as = (void **)dlsym(h, "_ULx86_64_local_addr_space");
		unw_bt = (int (*)(void **, int))dlsym(h, "unw_backtrace");
		if (set_caching && as)
			set_caching(*as, 2 /* UNW_CACHE_PER_THREAD */);
	}
	{
		void *warm[MAX];
		backtrace(warm, MAX); /* dlopens libgcc_s */
		if (unw_bt)
			unw_bt(warm, MAX);
	}
	return recurse(depth);
}
