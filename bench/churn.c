/* SPDX-License-Identifier: MIT */
/*
 * churn ITERS THREADS [map]: each thread ITERS x { mmap 64 KiB; write a
 * page; mprotect; munmap }, or with "map" ITERS x { mmap; munmap } only.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static long iters;
static int map_only;

static void *worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < iters; i++) {
		char *p = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			exit(1);
		if (!map_only) {
			p[0] = 1;
			mprotect(p, 64 << 10, PROT_READ);
		}
		munmap(p, 64 << 10);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	iters = argc > 1 ? atol(argv[1]) : 50000;
	int nt = argc > 2 ? atoi(argv[2]) : 4;
	map_only = argc > 3 && !strcmp(argv[3], "map");
	pthread_t t[64];
	if (nt < 1 || nt > 64)
		nt = 4;
	for (int i = 0; i < nt; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	return 0;
}
