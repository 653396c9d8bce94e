/* SPDX-License-Identifier: MIT */
/* A library whose constructor allocates: it runs before the shim's own
 * constructor (libraries are initialized before the preload that does not
 * depend on them), so these blocks are made before the shim is on. */
#include <stdlib.h>

void **lib_blocks;

__attribute__((noinline)) void lib_early_site(void)
{
	lib_blocks = malloc(32 * sizeof(void *));
	for (int i = 0; i < 32; i++)
		lib_blocks[i] = malloc(1000);
	for (int i = 16; i < 32; i++)   /* half freed again, still before the shim is on */
		free(lib_blocks[i]);
}

__attribute__((constructor)) static void lib_ctor(void)
{
	lib_early_site();
}
