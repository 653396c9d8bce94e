/* SPDX-License-Identifier: MIT */
/*
 * heap_sites: known live heap bytes from distinct call sites, for the heap
 * tests.  Usage: heap_sites SCALE [hold].  hold: stay 3 s before exiting,
 * all blocks live, so the recorder takes a resident-memory sample then.  Each site allocates SCALE times its
 * base amount; what stays live at exit (exact, in bytes requested):
 *
 *   site_small      SCALE*4096 x 256 B (main heap)                 live
 *   site_arena      SCALE*2048 x 512 B in a second thread (arena)  live
 *   site_big        SCALE*4 x 1 MiB (above the mmap threshold)     live
 *   site_freed      SCALE*4096 x 1 KiB, all freed                  0
 *   site_calloc     SCALE*1024 x calloc(4, 100)                    live
 *   site_realloc    SCALE*256 chains 16 -> 32 -> ... -> 4096       live: the 4096-byte ends
 *   site_memalign   SCALE*256 each of posix_memalign(64, 1000), aligned_alloc(4096, 4096),
 *                   memalign(256, 2000), valloc(3000), pvalloc(5000)   live
 *   site_handoff    SCALE*2048 x 300 B, the odd ones freed by another thread
 *   site_early      64 x 100 B in the program's constructor        live
 *   lib_early_site  16 x 1000 B live (16 more freed) in the constructor of
 *                   libheap_early.so, which runs before the shim is on
 *
 * It prints each site's expected live bytes, "name bytes", one per line.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static long scale = 1;
void **early; /* not static: kept live for the recording to see */

NOINLINE static void site_early(void)
{
	early = malloc(64 * sizeof(void *));
	for (int i = 0; i < 64; i++)
		early[i] = malloc(100);
}

__attribute__((constructor)) static void ctor(void)
{
	site_early();
}

NOINLINE static void **site_small(long n)
{
	void **v = calloc((size_t)n, sizeof(void *));
	for (long i = 0; i < n; i++)
		memset(v[i] = malloc(256), 1, 256);
	return v;
}

static void *arena_thread(void *arg)
{
	long n = (long)arg;
	void **v = malloc((size_t)n * sizeof(void *));
	extern void *site_arena(long);
	for (long i = 0; i < n; i++)
		v[i] = site_arena(i);
	return v;
}

NOINLINE void *site_arena(long i)
{
	char *p = malloc(512);
	p[0] = (char)i;
	return p;
}

NOINLINE static void site_big(void **v, long n)
{
	for (long i = 0; i < n; i++)
		memset(v[i] = malloc(1 << 20), 2, 1 << 20);
}

NOINLINE static void site_freed(long n)
{
	void **v = malloc((size_t)n * sizeof(void *));
	for (long i = 0; i < n; i++)
		v[i] = malloc(1024);
	for (long i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

NOINLINE static void site_calloc(void **v, long n)
{
	for (long i = 0; i < n; i++)
		v[i] = calloc(4, 100);
}

NOINLINE static void site_realloc(void **v, long n)
{
	for (long i = 0; i < n; i++) {
		char *p = NULL;
		for (size_t sz = 16; sz <= 4096; sz *= 2)
			p = realloc(p, sz);
		v[i] = p;
	}
}

NOINLINE static void site_memalign(void **v, long n)
{
	for (long i = 0; i < n; i++) {
		if (posix_memalign(&v[5 * i], 64, 1000))
			abort();
		v[5 * i + 1] = aligned_alloc(4096, 4096);
		v[5 * i + 2] = memalign(256, 2000);
		v[5 * i + 3] = valloc(3000);
		v[5 * i + 4] = pvalloc(5000);
	}
}

struct handoff {
	void **v;
	long n;
};

static void *free_odd(void *arg)
{
	struct handoff *h = arg;
	for (long i = 1; i < h->n; i += 2)
		free(h->v[i]);
	return NULL;
}

NOINLINE static void site_handoff(void **v, long n)
{
	for (long i = 0; i < n; i++)
		v[i] = malloc(300);
}

int main(int argc, char **argv)
{
	pthread_t t;
	void *arena_v;

	if (argc > 1)
		scale = atol(argv[1]);
	mallopt(M_MMAP_THRESHOLD, 128 << 10); /* fixed: glibc's dynamic threshold would move */

	void **small = site_small(scale * 4096);
	pthread_create(&t, NULL, arena_thread, (void *)(scale * 2048));
	pthread_join(t, &arena_v);
	void **big = malloc((size_t)scale * 4 * sizeof(void *));
	site_big(big, scale * 4);
	site_freed(scale * 4096);
	void **cal = malloc((size_t)scale * 1024 * sizeof(void *));
	site_calloc(cal, scale * 1024);
	void **re = malloc((size_t)scale * 256 * sizeof(void *));
	site_realloc(re, scale * 256);
	void **al = malloc((size_t)scale * 256 * 5 * sizeof(void *));
	site_memalign(al, scale * 256);
	struct handoff h = { malloc((size_t)scale * 2048 * sizeof(void *)), scale * 2048 };
	site_handoff(h.v, h.n);
	pthread_create(&t, NULL, free_odd, &h);
	pthread_join(t, NULL);

	/* site_small also made its pointer array (calloc, 8 bytes a block) */
	printf("site_small %ld\n", scale * 4096 * (256 + 8));
	printf("site_arena %ld\n", scale * 2048 * 512);
	printf("site_big %ld\n", scale * 4 * (1L << 20));
	printf("site_freed 0\n");
	printf("site_calloc %ld\n", scale * 1024 * 400);
	printf("site_realloc %ld\n", scale * 256 * 4096);
	printf("site_memalign %ld\n", scale * 256 * (1000 + 4096 + 2000 + 3000 + 5000));
	printf("site_handoff %ld\n", scale * 1024 * 300);
	printf("site_early %d\n", 64 * 100 + 64 * 8);
	printf("lib_early_site %d\n", 16 * 1000 + 32 * 8);
	fflush(stdout);
	if (argc > 2 && !strcmp(argv[2], "hold"))
		sleep(3);
	extern void **lib_blocks;
	if (!lib_blocks) /* also keeps the link to libheap_early.so (--as-needed) */
		return 3;
	(void)small; (void)arena_v; (void)cal; (void)re; (void)al; (void)early;
	return 0;
}
