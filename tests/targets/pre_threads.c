/* SPDX-License-Identifier: MIT */
/* pre_threads THREADS N: each thread maps and unmaps 7 pages N times. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static int count;

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < count; i++) {
		void *p = mmap(NULL, 0x7000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || munmap(p, 0x7000))
			abort();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;
	pthread_t t[64];

	count = argc > 2 ? atoi(argv[2]) : 100;
	for (int i = 0; i < n && i < 64; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < n && i < 64; i++)
		pthread_join(t[i], NULL);
	printf("done\n");
	return 0;
}
