/* SPDX-License-Identifier: MIT */
/* pre_dlopen: dlopen("libpre_dlib.so") by bare name: found only via our DT_RUNPATH ($ORIGIN). */
#include <dlfcn.h>
#include <stdio.h>

int main(void)
{
	void *h = dlopen("libpre_dlib.so", RTLD_NOW);
	if (!h) {
		printf("dlopen failed: %s\n", dlerror());
		return 1;
	}
	int (*f)(void) = (int (*)(void))dlsym(h, "pre_dlib_answer");
	printf("answer=%d\n", f ? f() : -1);
	printf("dlclose=%d\n", dlclose(h));
	return 0;
}
