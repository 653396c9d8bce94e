/* SPDX-License-Identifier: MIT */
/*
 * e2e_merge - memory the kernel merges into one VMA while the model keeps
 * one row per call; each piece is touched a known number of times.
 *
 *   adjacent A B   two 4 MiB anonymous mmaps placed end to end (one kernel
 *                  VMA): 1024 pages of A written, 64 of B
 *   brk BASE       100 sbrk steps of (i % 5 + 1) pages, each followed by
 *                  writes to its first min(i % 3 + 1, step) pages
 *   split M        64 pages: writes to 0..7; mprotect(16..31, PROT_READ);
 *                  writes to 8..11 and 40..45, reads of 16..19;
 *                  mprotect(16..31, PROT_READ|PROT_WRITE) (merged back);
 *                  writes to 12..13, 24..27 and 50..52
 *
 *   bursts LO HI   (argument "bursts" only) 16 bursts of 32 adjacent 16-page
 *                  mmaps in [LO, HI), each written at once, 30 ms apart:
 *                  every burst raises the RSS while its calls are in flight
 *
 * Transparent huge pages are disabled so that every page is one fault.
 * With the argument "hold" it stays alive for a second at the end, so
 * that the recorder samples its resident memory (faultline why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#define PG 4096L

static void write_pages(char *p, long from, long to)
{
	for (long i = from; i < to; i++)
		((volatile char *)p)[i * PG] = 1;
}

static void read_pages(char *p, long from, long to)
{
	long sum = 0;
	for (long i = from; i < to; i++)
		sum += ((volatile char *)p)[i * PG];
	if (sum)
		abort();
}

static char *map_at(void *at, long len, int flags)
{
	char *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED || (at && p != at)) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* Mappings made while the collector samples smaps (test why_race_bpf). */
static int bursts(void)
{
	const long chunk = 16 * PG, per = 32, nb = 16;
	char out[64], *r = map_at(NULL, nb * per * chunk, 0);
	munmap(r, nb * per * chunk);
	for (long b = 0; b < nb; b++) {
		for (long i = 0; i < per; i++)
			write_pages(map_at(r + (b * per + i) * chunk, chunk, MAP_FIXED_NOREPLACE), 0, 16);
		usleep(30000);
	}
	int n = snprintf(out, sizeof(out), "bursts %lx %lx\n", (unsigned long)r, (unsigned long)(r + nb * per * chunk));
	if (write(1, out, (size_t)n) != n)
		return 2;
	sleep(1);
	return 0;
}

int main(int argc, char **argv)
{
	char out[256];
	int n;
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	if (argc > 1 && !strcmp(argv[1], "bursts"))
		return bursts();

	/* adjacent: reserve 8 MiB to find room, free it, map the halves end to end */
	char *r = map_at(NULL, 8L << 20, 0);
	munmap(r, 8L << 20);
	char *a = map_at(r, 4L << 20, MAP_FIXED_NOREPLACE), *b = map_at(r + (4L << 20), 4L << 20, MAP_FIXED_NOREPLACE);
	write_pages(a, 0, 1024);
	write_pages(b, 0, 64);

	/* brk: the heap grown step by step, each step touched right away */
	char *base = sbrk(0);
	for (int i = 0; i < 100; i++) {
		long step = i % 5 + 1, touch = i % 3 + 1;
		char *p = sbrk(step * PG);
		if (p == (void *)-1) {
			perror("sbrk");
			return 2;
		}
		write_pages(p, 0, touch < step ? touch : step);
	}

	/* split and merged back */
	char *m = map_at(NULL, 64 * PG, 0);
	write_pages(m, 0, 8);
	mprotect(m + 16 * PG, 16 * PG, PROT_READ);
	write_pages(m, 8, 12);
	write_pages(m, 40, 46);
	read_pages(m, 16, 20);
	mprotect(m + 16 * PG, 16 * PG, PROT_READ | PROT_WRITE);
	write_pages(m, 12, 14);
	write_pages(m, 24, 28);
	write_pages(m, 50, 53);

	/* one write(2): stdio would malloc and move the break */
	n = snprintf(out, sizeof(out), "adjacent %lx %lx\nbrk %lx\nsplit %lx\n", (unsigned long)a,
		     (unsigned long)b, (unsigned long)base, (unsigned long)m);
	if (write(1, out, (size_t)n) != n)
		return 2;
	if (argc > 1 && argv[1][0] == 'h')
		sleep(1);
	return 0;
}
