/* SPDX-License-Identifier: MIT */
/*
 * e2e_unwind LIB_A LIB_B: loads each library in turn (one at a time, so the
 * second lands where the first was), maps a page from inside its lib_map()
 * and unloads it again; prints where each lib_map was.  The two are built
 * from e2e_unwind_lib.c alike but for the size of lib_map's frame: a stack
 * rule cached for the first at that address is wrong for the second
 * (preload/cfi.c forgets its rules when ld.so unloads anything).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/mman.h>

static __attribute__((noinline)) void *map_page(size_t n)
{
	return mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		void *lib = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
		void *(*lib_map)(void *(*)(size_t)) = lib ? (void *(*)(void *(*)(size_t)))dlsym(lib, "lib_map") : NULL;
		void *page;

		if (!lib_map) {
			fprintf(stderr, "e2e_unwind: %s\n", dlerror());
			return 1;
		}
		page = lib_map(map_page);
		if (page == MAP_FAILED)
			return 1;
		munmap(page, 4096);
		printf("%p\n", (void *)lib_map);
		dlclose(lib);
	}
	return 0;
}
