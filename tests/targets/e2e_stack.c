/* SPDX-License-Identifier: MIT */
/* e2e_stack: grows the main thread's stack by 4 MiB (64 frames of 64 KiB, each written):
 * the kernel extends the [stack] VMA on the faults, with no call. */
#include <stdio.h>
#include <string.h>

static __attribute__((noinline)) int deep(int n)
{
	volatile char buf[65536];
	memset((char *)buf, n, sizeof(buf));
	return n ? deep(n - 1) + buf[100] : buf[5];
}

int main(void)
{
	printf("%d\n", deep(64));
	return 0;
}
