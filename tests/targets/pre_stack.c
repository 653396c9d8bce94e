/* SPDX-License-Identifier: MIT */
/* pre_stack: pre_stack_a -> pre_stack_b -> pre_stack_c -> mmap (11 pages); prints the functions' addresses. */
#include <stdio.h>
#include <sys/mman.h>

__attribute__((noinline)) long pre_stack_c(void)
{
	void *p = mmap(NULL, 0xb000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	__asm__ volatile("" ::: "memory");  /* no tail call */
	return (long)p + 1;
}

__attribute__((noinline)) long pre_stack_b(void)
{
	long r = pre_stack_c();
	__asm__ volatile("" ::: "memory");
	return r + 1;
}

__attribute__((noinline)) long pre_stack_a(void)
{
	long r = pre_stack_b();
	__asm__ volatile("" ::: "memory");
	return r + 1;
}

int main(void)
{
	long r = pre_stack_a();
	printf("a=%p b=%p c=%p r=%d\n", (void *)pre_stack_a, (void *)pre_stack_b,
	       (void *)pre_stack_c, r != 0);
	return 0;
}
