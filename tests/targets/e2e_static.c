/* SPDX-License-Identifier: MIT */
/*
 * e2e_static N: built -static (no shim can enter it).  Maps N pages with a
 * raw syscall, writes each once, prints the address, exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;
	char *p = (char *)syscall(SYS_mmap, NULL, n * 4096, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	madvise(p, n * 4096, MADV_NOHUGEPAGE);
	for (long i = 0; i < n; i++)
		p[i * 4096] = 1;
	printf("%lx\n", (unsigned long)p);
	return 0;
}
