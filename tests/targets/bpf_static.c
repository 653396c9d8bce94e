/* SPDX-License-Identifier: MIT */
/*
 * bpf_static N - built with -static: no LD_PRELOAD shim can see it.  Maps N
 * pages with a raw syscall(SYS_mmap), touches them, prints the address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;
	char *p = (char *)syscall(SYS_mmap, 0L, n * 4096L, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1L, 0L);
	struct rusage ru;

	if (p == MAP_FAILED)
		return 1;
	syscall(SYS_madvise, p, n * 4096L, MADV_NOHUGEPAGE);
	fprintf(stderr, "target addr %d %p\n", getpid(), p);
	for (long i = 0; i < n; i++)
		((volatile char *)p)[i * 4096] = 1;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "target rusage %d %ld %ld\n", getpid(), ru.ru_minflt, ru.ru_majflt);
	return 0;
}
