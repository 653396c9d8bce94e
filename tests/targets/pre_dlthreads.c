/* SPDX-License-Identifier: MIT */
/*
 * pre_dlthreads THREADS K: THREADS threads map and unmap 5 pages until told
 * to stop, while main dlopens and dlcloses libpre_dlib.so (found through
 * DT_RUNPATH) K times, mapping and unmapping 4 pages after each call.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static int stop;
static long done[64];

static void map_unmap(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, len))
		abort();
}

static void *worker(void *arg)
{
	long *n = arg;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		map_unmap(0x5000);
		(*n)++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4, k = argc > 2 ? atoi(argv[2]) : 20;
	pthread_t t[64];
	long total = 0;

	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, &done[i]);
	for (int i = 0; i < k; i++) {
		void *h = dlopen("libpre_dlib.so", RTLD_NOW);
		if (!h)
			abort();
		map_unmap(0x4000);
		if (dlclose(h))
			abort();
		map_unmap(0x4000);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		total += done[i];
	}
	printf("maps=%ld\n", total);
	return 0;
}
