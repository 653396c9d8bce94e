/* SPDX-License-Identifier: MIT */
/*
 * maps N: N one-page anonymous mmaps kept alive, each written once.  With
 * top-down mmap every new mapping lies below all the others (the kernel
 * merges them into few VMAs; faultline's model keeps N, one per call).
 */
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	for (long i = 0; i < n; i++) {
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		p[0] = 1;
	}
	return 0;
}
