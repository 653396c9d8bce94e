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

#endif /* FL_VEC_H */
