/* SPDX-License-Identifier: MIT */
/* pre_ringfull N: N mmaps of 12 pages as fast as possible (fills the ring). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;

	for (int i = 0; i < n; i++) {
		void *p = mmap(NULL, 0xc000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 0xc000);
	}
	printf("done %d\n", n);
	return 0;
}
