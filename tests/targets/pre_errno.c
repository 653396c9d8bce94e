/* SPDX-License-Identifier: MIT */
/* pre_errno: calls that fail; prints results and errno (same with or without the shim). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

int main(void)
{
	void *p;
	int r;

	errno = 0;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, 9999, 0);
	printf("mmap badfd failed=%d errno=%d\n", p == MAP_FAILED, errno);
	errno = 0;
	p = mmap(NULL, (size_t)1 << 62, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap huge failed=%d errno=%d\n", p == MAP_FAILED, errno);
	errno = 0;
	r = munmap((void *)(uintptr_t)0x1001, 4096);
	printf("munmap unaligned r=%d errno=%d\n", r, errno);
	errno = 0;
	r = madvise((void *)(uintptr_t)0x1001, 4096, MADV_DONTNEED);
	printf("madvise unaligned r=%d errno=%d\n", r, errno);
	/* A successful call must leave errno alone (glibc does). */
	errno = 1234;
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap ok failed=%d errno=%d\n", p == MAP_FAILED, errno);
	return 0;
}
