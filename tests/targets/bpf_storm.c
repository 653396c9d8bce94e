/* SPDX-License-Identifier: MIT */
/*
 * bpf_storm THREADS MIB - a fault storm: each thread maps MIB MiB of anon
 * memory (THP off) and writes one byte per page as fast as it can, all
 * threads released together.  Prints each region and the time taken.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>

static long pages;
static pthread_barrier_t go;

static void *run(void *arg)
{
	char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	(void)arg;
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	madvise(p, pages * 4096, MADV_NOHUGEPAGE);
	fprintf(stderr, "target addr %d %p\n", getpid(), p);
	pthread_barrier_wait(&go);
	for (long i = 0; i < pages; i++)
		((volatile char *)p)[i * 4096] = 1;
	return p;
}

int main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 4;
	long mib = argc > 2 ? atol(argv[2]) : 1024;
	pthread_t t[64];
	struct timespec a, b;
	struct rusage ru;

	if (nt < 1 || nt > 64)
		return 2;
	pages = mib * 256;
	pthread_barrier_init(&go, NULL, nt + 1);
	for (int i = 0; i < nt; i++)
		pthread_create(&t[i], NULL, run, NULL);
	pthread_barrier_wait(&go);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "target time %.3f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	fprintf(stderr, "target rusage %d %ld %ld\n", getpid(), ru.ru_minflt, ru.ru_majflt);
	return 0;
}
