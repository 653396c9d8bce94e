/* SPDX-License-Identifier: MIT */
/* pre_closefds M: close every fd above 2, then M mmaps of 9 pages. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int m = argc > 1 ? atoi(argv[1]) : 10;

	if (syscall(SYS_close_range, 3u, ~0u, 0) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	for (int i = 0; i < m; i++) {
		void *p = mmap(NULL, 0x9000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 0x9000);
	}
	printf("closed and mapped\n");
	return 0;
}
