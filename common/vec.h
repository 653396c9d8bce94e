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
 * Sort the n elements of a by cmp (qsort_r's, ctx its context), unless they
 * are in its order already: rows read back in the order they were written
 * often are, and glibc's merge sort compares n log n times even then
 * (400,000 regions of one process: 0.1 s).
 */
static inline void fl_vec_sort_r(void *a, size_t n, size_t size, int (*cmp)(const void *, const void *, void *),
				 void *ctx)
{
	const char *p = a;

	for (size_t i = 1; i < n; i++)
		if (cmp(p + (i - 1) * size, p + i * size, ctx) > 0) {
			qsort_r(a, n, size, cmp, ctx);
			return;
		}
}

/* fl_vec_sort_r's context for a comparator that takes none: the comparator itself. */
static inline int fl_vec_cmp_plain(const void *x, const void *y, void *cmp)
{
	return (*(int (**)(const void *, const void *))cmp)(x, y);
}

/* fl_vec_sort_r by a comparator without context (qsort's). */
static inline void fl_vec_sort(void *a, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	fl_vec_sort_r(a, n, size, fl_vec_cmp_plain, &cmp);
}

#endif /* FL_VEC_H */
