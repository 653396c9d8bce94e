/* SPDX-License-Identifier: MIT */
/* heap_ownmalloc: a program with its own malloc (a bump allocator), as one
 * linking jemalloc or tcmalloc statically is: the shim's hooks never run,
 * and the recording must say so. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static char arena[1 << 20];
static size_t used;

void *malloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (used + n > sizeof(arena))
		return NULL;
	used += n;
	return arena + used - n;
}
void free(void *p) { (void)p; }
void *calloc(size_t k, size_t n) { void *p = malloc(k * n); return p ? memset(p, 0, k * n) : NULL; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (q && p) memcpy(q, p, n); return q; }

int main(void)
{
	for (int i = 0; i < 1000; i++)
		if (!malloc(100))
			return 1;
	printf("used %zu\n", used);
	return 0;
}
