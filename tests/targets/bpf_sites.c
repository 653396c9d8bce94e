/* SPDX-License-Identifier: MIT */
/*
 * bpf_sites A B [leaf] - one faulting instruction reached from two callers,
 * for the callers of fault sites (docs/faults.md "Callers").  Built with
 * frame pointers and without sibling calls (tests/bpf/meson.build), so the
 * chain is main -> fill_a -> touch and main -> fill_b -> touch:
 *
 *   fill_a maps A pages and touches each once in touch(), fill_b B pages;
 *   with "leaf", fill_c maps A pages more and memset()s them (glibc's memset
 *   is a leaf built without frame pointers: its callers are not known);
 *   with "forkexec", a fork child does fill_a and fill_b and then execs
 *   /bin/true at once: its sites ran the code of the image it left (the
 *   collector most often reads their counts after the exec).
 *
 * Prints to stderr "target addr PID 0xADDR" for each mapping, like bpf_faults.
 * THP is off on every mapping (MADV_NOHUGEPAGE): one fault per 4 KiB page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "pages.h"

/* anon(), saying where: "target addr PID 0xADDR". */
static char *mapped(long n)
{
	char *p = anon(n);

	fprintf(stderr, "target addr %d %p\n", getpid(), (void *)p);
	return p;
}

/* Not a leaf: the faults come with touch's own frame set up. */
__attribute__((noinline)) static long pages_of(long n)
{
	asm volatile("" : "+r"(n));
	return n;
}

__attribute__((noinline)) void touch(volatile char *p, long n)
{
	n = pages_of(n);
	for (long i = 0; i < n; i++)
		p[i * PG] = 1;
}

__attribute__((noinline)) long fill_a(long n)
{
	char *p = mapped(n);

	touch(p, n);
	return p[0];
}

__attribute__((noinline)) long fill_b(long n)
{
	char *p = mapped(n);

	touch(p, n);
	return p[0];
}

__attribute__((noinline)) long fill_c(long n)
{
	char *p = mapped(n);

	memset(p, 1, n * PG);
	return p[0];
}

int main(int argc, char **argv)
{
	long a = argc > 1 ? atol(argv[1]) : 300, b = argc > 2 ? atol(argv[2]) : 200, sum;
	int status;

	if (argc > 3 && !strcmp(argv[3], "forkexec")) {
		pid_t pid = fork();
		if (pid == 0) {
			if (fill_a(a) + fill_b(b) == 2)
				execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		return pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status);
	}
	sum = fill_a(a) + fill_b(b);
	if (argc > 3 && !strcmp(argv[3], "leaf"))
		sum += fill_c(a);
	return sum == 0;
}
