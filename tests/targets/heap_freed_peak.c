/* SPDX-License-Identifier: MIT */
/*
 * heap_freed_peak: the resident peak after the live heap's.  Allocates and
 * touches 16384 blocks of 4000 bytes (at fill), sleeps a second, frees them
 * all (glibc keeps the memory resident), sleeps, then maps and touches 96 MiB
 * of anonymous memory: the RSS peak, with no live heap block.  Prints the
 * CLOCK_MONOTONIC time of the frees ("free SECONDS").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

enum { BLOCKS = 16384, SIZE = 4000 };

static char *blocks[BLOCKS];

/* Quiet for a second: the collector reads a process again 0.2 s after its last high (smaps.c SETTLE_NS). */
static void pause_a_while(void)
{
	struct timespec d = { 1, 0 };
	nanosleep(&d, NULL);
}

__attribute__((noinline)) static void fill(void)
{
	for (int i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc(SIZE);
		memset(blocks[i], 1, SIZE);
	}
}

int main(void)
{
	struct timespec now;
	size_t n = 96u << 20;

	fill();
	pause_a_while();
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* not stdio: its buffer, allocated here while every block is live, would raise the live
	 * peak by 4 KiB whenever a sample fell between this line and the frees (it did, in CI) */
	char line[64];
	int len = snprintf(line, sizeof(line), "free %lld.%09ld\n", (long long)now.tv_sec, now.tv_nsec);
	if (write(1, line, (size_t)len) != len)
		return 1;
	for (int i = 0; i < BLOCKS; i++)
		free(blocks[i]);
	pause_a_while();
	char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	memset(m, 1, n);
	pause_a_while();
	return 0;
}
