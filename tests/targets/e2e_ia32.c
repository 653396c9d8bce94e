// SPDX-License-Identifier: MIT
/*
 * e2e_ia32: 32-bit (ia32) system calls from a 64-bit process (int $0x80),
 * whose numbers are not x86-64's: link(NULL, NULL) is 9 (x86-64 mmap),
 * unlink(NULL) 10 (mprotect), both failing with EFAULT, then mmap2 of 4
 * anonymous pages, touched.  Prints "ia32 <mmap2 address>", or "noia32" when
 * the kernel has no ia32 emulation.
 */
#include <stdio.h>
#include <sys/mman.h>

static long int80(long nr, long a, long b, long c, long d, long e)
{
	long ret;

	/* the sixth argument (ebp) is 0: rbp is the frame pointer, saved around the call */
	__asm__ volatile("push %%rbp\n\txor %%ebp, %%ebp\n\tint $0x80\n\tpop %%rbp"
			 : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory");
	return ret;
}

int main(void)
{
	long link_ret = int80(9, 0, 0, 0, 0, 0), unlink_ret = int80(10, 0, 0, 0, 0, 0);
	long addr = int80(192, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);

	if (link_ret != -14 || unlink_ret != -14 || addr < 0 || addr > 0xffffffffL) {
		printf("noia32 %ld %ld %ld\n", link_ret, unlink_ret, addr);
		return 0;
	}
	for (int i = 0; i < 4; i++)
		((volatile char *)addr)[i * 4096] = 1;
	printf("ia32 %lx\n", addr);
	return 0;
}
