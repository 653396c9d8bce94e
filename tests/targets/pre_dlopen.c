/* SPDX-License-Identifier: MIT */
/*
 * pre_dlopen: dlopen("libpre_dlib.so") by bare name: found only via our
 * DT_RUNPATH ($ORIGIN).  Maps 13 pages after dlopen and 14 after dlclose
 * (the first hooked calls after each: the shim's resync snapshots precede them).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static void map_unmap(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, len))
		abort();
}

int main(void)
{
	void *h = dlopen("libpre_dlib.so", RTLD_NOW);
	if (!h) {
		printf("dlopen failed: %s\n", dlerror());
		return 1;
	}
	map_unmap(0xd000);
	int (*f)(void) = (int (*)(void))dlsym(h, "pre_dlib_answer");
	printf("answer=%d\n", f ? f() : -1);
	int rc = dlclose(h);
	map_unmap(0xe000);
	printf("dlclose=%d\n", rc);
	return 0;
}
