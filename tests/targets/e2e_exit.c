/* SPDX-License-Identifier: MIT */
/*
 * e2e_exit - resident memory that changes after the last RSS high, then an
 * exit of a chosen kind (tests exit_sample_bpf, exit_estimate_bpf).
 *
 *   e2e_exit HOW N M   maps N pages and writes them all (a new RSS high),
 *                      waits 800 ms (the recorder reads smaps at the high and
 *                      once more when quiet, and symbolizes), frees the first N/2 with
 *                      MADV_DONTNEED, writes M < N/2 of them again, and ends
 *                      at once: HOW is exit (exit()), return (from main),
 *                      _exit, _Exit, or kill (SIGKILL to itself).
 *
 * It prints "map ADDR" first.  Transparent huge pages are disabled so that
 * every page is one fault.  The mapping's resident pages at the end are
 * exactly N/2 + M, and its RSS stays below the high (M < N/2).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define PG 4096L

static void write_pages(char *p, long from, long to)
{
	for (long i = from; i < to; i++)
		((volatile char *)p)[i * PG] = 1;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	const char *how = argv[1];
	long n = atol(argv[2]), m = atol(argv[3]);
	if (n < 2 || m < 0 || m >= n / 2)
		return 2;
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	char *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 2;
	printf("map %lx\n", (unsigned long)p);
	fflush(stdout);
	write_pages(p, 0, n);
	usleep(800000);
	if (madvise(p, (n / 2) * PG, MADV_DONTNEED))
		return 2;
	write_pages(p, 0, m);
	if (!strcmp(how, "exit"))
		exit(0);
	if (!strcmp(how, "_exit"))
		_exit(0);
	if (!strcmp(how, "_Exit"))
		_Exit(0);
	if (!strcmp(how, "kill"))
		kill(getpid(), SIGKILL);
	return 0;
}
