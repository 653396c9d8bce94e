/* SPDX-License-Identifier: MIT */
/* touch MiB ROUNDS: mmap MiB of anonymous memory, write one byte per page, munmap; ROUNDS times. */
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	size_t len = (size_t)(argc > 1 ? atol(argv[1]) : 256) << 20;
	long rounds = argc > 2 ? atol(argv[2]) : 4;
	for (long r = 0; r < rounds; r++) {
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		for (size_t off = 0; off < len; off += 4096)
			p[off] = 1;
		munmap((void *)p, len);
	}
	return 0;
}
