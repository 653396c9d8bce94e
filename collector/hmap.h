/* SPDX-License-Identifier: MIT */
/*
 * hmap.h - an open-addressing hash map from a non-zero 64-bit key to a
 * pointer-sized value, for the collector's lookups (pid -> process, frame
 * key -> frame id, ...).  Keys are never removed one by one; a removed
 * entry is marked with a value of 0 and skipped.
 */
#ifndef FL_HMAP_H
#define FL_HMAP_H

#include <stdint.h>
#include <stdlib.h>

struct fl_hmap {
	uint64_t *keys;
	uintptr_t *vals;
	size_t cap, n;  /* cap is a power of two */
};

static inline uint64_t fl_hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* The value stored under key, or 0. */
static inline uintptr_t fl_hmap_get(const struct fl_hmap *h, uint64_t key)
{
	if (!h->cap)
		return 0;
	for (size_t i = fl_hash64(key) & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
		if (h->keys[i] == key)
			return h->vals[i];
		if (!h->keys[i])
			return 0;
	}
}

/* Store val (non-zero to be found again) under key. Returns 0 or -1 when out of memory. */
static inline int fl_hmap_put(struct fl_hmap *h, uint64_t key, uintptr_t val)
{
	if ((h->n + 1) * 2 > h->cap) {
		struct fl_hmap g = { .cap = h->cap ? h->cap * 2 : 1024 };
		g.keys = calloc(g.cap, sizeof(*g.keys));
		g.vals = calloc(g.cap, sizeof(*g.vals));
		if (!g.keys || !g.vals) {
			free(g.keys);
			free(g.vals);
			return -1;
		}
		for (size_t i = 0; i < h->cap; i++)
			if (h->keys[i])
				fl_hmap_put(&g, h->keys[i], h->vals[i]);
		free(h->keys);
		free(h->vals);
		*h = g;
	}
	size_t i = fl_hash64(key) & (h->cap - 1);
	while (h->keys[i] && h->keys[i] != key)
		i = (i + 1) & (h->cap - 1);
	if (!h->keys[i])
		h->n++;
	h->keys[i] = key;
	h->vals[i] = val;
	return 0;
}

static inline void fl_hmap_free(struct fl_hmap *h)
{
	free(h->keys);
	free(h->vals);
	h->keys = NULL;
	h->vals = NULL;
	h->cap = h->n = 0;
}

#endif /* FL_HMAP_H */
