/* SPDX-License-Identifier: MIT */
/*
 * blocks ITERS: ITERS x { malloc 256 KiB; write it once; free }.  The mmap
 * threshold is fixed at 128 KiB so every block is glibc's own mmap and
 * munmap, calls the shim cannot see (only the kernel reports them).
 */
#include <malloc.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 10000;
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	for (long i = 0; i < iters; i++) {
		volatile char *p = malloc(256 << 10);
		if (!p)
			return 1;
		p[0] = 1;
		free((void *)p);
	}
	return 0;
}
