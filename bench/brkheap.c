/* SPDX-License-Identifier: MIT */
/* brkheap MiB ROUNDS: grow the brk heap by MiB in 64 KiB sbrk steps, writing each step's pages; shrink; ROUNDS times. */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long steps = (argc > 1 ? atol(argv[1]) : 256) * 16, rounds = argc > 2 ? atol(argv[2]) : 4;
	for (long r = 0; r < rounds; r++) {
		for (long s = 0; s < steps; s++) {
			volatile char *p = sbrk(65536);
			if (p == (void *)-1)
				return 1;
			for (long off = 0; off < 65536; off += 4096)
				p[off] = 1;
		}
		sbrk(-steps * 65536);
	}
	return 0;
}
