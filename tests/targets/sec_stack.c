/* SPDX-License-Identifier: MIT */
/*
 * sec_stack measure | left BYTES: the shim's stack use per hook.
 *   measure     for each address-space hook, in a thread whose stack we allocated (so its
 *               bounds are known): paint the free stack, make the call,
 *               and print how deep below the caller's frame it was written
 *               ("mmap 2712"), the call's own libc use included.
 *   left BYTES  in such a thread, with a PROT_NONE guard page below its
 *               stack, use the stack until BYTES are left, then call mmap,
 *               munmap, mprotect, madvise and malloc/free: a hook that needs
 *               more crashes the thread (SIGSEGV on the guard).  Prints "ok".
 */
#include <alloca.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define STACK (256 * 1024)
#define PAINT 0xa5

static char *stack_lo;     /* lowest usable byte of the thread's stack */
static long left;

enum { H_MMAP, H_MUNMAP, H_MPROTECT, H_MADVISE, H_MREMAP, H_MALLOC, H_SHMAT, H_N };
static const char *const names[H_N] = { "mmap", "munmap", "mprotect", "madvise", "mremap", "malloc", "shmat" };
static void *page;

__attribute__((noinline)) static void call(int h)
{
	switch (h) {
	case H_MMAP: {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		page = p;
		break;
	}
	case H_MUNMAP:
		munmap(page, 4096);
		break;
	case H_MPROTECT:
		mprotect(page, 4096, PROT_READ);
		break;
	case H_MADVISE:
		madvise(page, 4096, MADV_DONTNEED);
		break;
	case H_MREMAP:
		page = mremap(page, 4096, 8192, MREMAP_MAYMOVE);
		break;
	case H_MALLOC:
		/* sampled every time with --heap-sample 1 */
		for (int i = 0; i < 4; i++)
			free(malloc(1000));
		break;
	case H_SHMAT: {
		int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
		void *p = shmat(id, NULL, 0);
		shmdt(p);
		shmctl(id, IPC_RMID, NULL);
		break;
	}
	}
	__asm__ volatile("" ::: "memory");
}

/* Paint from the stack's bottom up to just below here, call, find the deepest write. */
__attribute__((noinline)) static long measure(int h)
{
	char here;
	char *top = (char *)((uintptr_t)&here - 512);
	memset(stack_lo, PAINT, (size_t)(top - stack_lo));
	call(h);
	char *p = stack_lo;
	while (p < top && *p == (char)PAINT)
		p++;
	return &here - p;
}

static void *measure_all(void *arg)
{
	(void)arg;
	call(H_MMAP);   /* the first call of a thread sets up its TLS and may load things */
	call(H_MUNMAP);
	for (int h = 0; h < H_N; h++) {
		if (h == H_MALLOC)
			continue;   /* whether an allocation is sampled is chance: not measured here */
		if (h == H_MPROTECT || h == H_MADVISE || h == H_MREMAP || h == H_MUNMAP)
			call(H_MMAP);
		long used = measure(h);
		if (h == H_MPROTECT || h == H_MADVISE)
			munmap(page, 4096);
		if (h == H_MREMAP)
			munmap(page, 8192);
		printf("%s %ld\n", names[h], used);
	}
	return NULL;
}

__attribute__((noinline)) static void with_little_left(void)
{
	char here;
	long use = &here - stack_lo - left;
	if (use > 0) {
		volatile char *a = alloca((size_t)use);
		a[0] = 0;
		__asm__ volatile("" : : "r"(a) : "memory");
	}
	for (int h = 0; h < H_N; h++) {
		if (h == H_MPROTECT || h == H_MADVISE || h == H_MREMAP || h == H_MUNMAP)
			call(H_MMAP);
		call(h);
		if (h == H_MPROTECT || h == H_MADVISE)
			munmap(page, 4096);
		if (h == H_MREMAP)
			munmap(page, 8192);
	}
}

static void *little_left(void *arg)
{
	(void)arg;
	call(H_MMAP);
	call(H_MUNMAP);
	with_little_left();
	return NULL;
}

int main(int argc, char **argv)
{
	int measuring = argc > 1 && !strcmp(argv[1], "measure");
	if (!measuring && (argc < 3 || strcmp(argv[1], "left"))) {
		fprintf(stderr, "usage: sec_stack measure | left BYTES\n");
		return 2;
	}
	left = measuring ? 0 : atol(argv[2]);
	/* one guard page, then the stack */
	char *m = mmap(NULL, STACK + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE))
		return 1;
	stack_lo = m + 4096;
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setstack(&a, stack_lo, STACK);
	if (pthread_create(&t, &a, measuring ? measure_all : little_left, NULL))
		return 1;
	pthread_join(t, NULL);
	if (!measuring)
		printf("ok\n");
	return 0;
}
