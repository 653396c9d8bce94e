/* SPDX-License-Identifier: MIT */
/* vec.h - growing arrays, the collector's and the viewer's (doubling, so appends are amortized O(1)). */
#ifndef FL_VEC_H
#define FL_VEC_H

#include <stdlib.h>

/* Make the array *a of elements of size bytes hold at least need of them. Returns 0 or -1 (*a kept). */
static inline int fl_vec_reserve(void **a, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	while (c < need)
		c *= 2;
	void *p = realloc(*a, c * size);
	if (!p)
		return -1;
	*a = p;
	*cap = c;
	return 0;
}

/*
 * Sort the n elements of a by cmp, unless they are in its order already: rows
 * read back in the order they were written often are, and glibc's merge sort
 * compares n log n times even then (400,000 regions of one process: 0.1 s).
 */
static inline void fl_vec_sort(void *a, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	const char *p = a;

	for (size_t i = 1; i < n; i++)
		if (cmp(p + (i - 1) * size, p + i * size) > 0) {
			qsort(a, n, size, cmp);
			return;
		}
}

#endif /* FL_VEC_H */
