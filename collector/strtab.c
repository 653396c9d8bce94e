/* SPDX-License-Identifier: MIT */
/* strtab.c - interned strings (see strtab.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "strtab.h"

/*
 * An interned string carries its index just before its bytes: a stack's
 * every frame asks the index of its module's path (fl_strtab_index), which
 * hashing the path made 4% of the collector's time (threads8).
 */
struct interned {
	unsigned index;
	char z[];
};

static struct fl_hmap by_hash;  /* hash of the string -> index */
static char **strs;             /* strs[index - 1]: the z of a struct interned */
static unsigned nstrs, capstrs;

static uint64_t hash_str(const char *z)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *z; z++)
		h = (h ^ (unsigned char)*z) * 1099511628211ULL;
	return h ? h : 1;
}

const char *fl_strtab_intern(const char *z)
{
	if (!z)
		return NULL;
	uint64_t h = hash_str(z);
	unsigned i = (unsigned)fl_hmap_get(&by_hash, h);
	if (i && !strcmp(strs[i - 1], z))
		return strs[i - 1];
	if (i) /* a 64-bit hash collision: find it the slow way */
		for (unsigned k = 0; k < nstrs; k++)
			if (!strcmp(strs[k], z))
				return strs[k];
	if (nstrs == capstrs) {
		unsigned cap = capstrs ? capstrs * 2 : 256;
		char **p = realloc(strs, cap * sizeof(*p));
		if (!p)
			return NULL;
		strs = p;
		capstrs = cap;
	}
	size_t len = strlen(z) + 1;
	struct interned *copy = malloc(sizeof(*copy) + len);
	if (!copy)
		return NULL;
	memcpy(copy->z, z, len);
	copy->index = ++nstrs;
	strs[nstrs - 1] = copy->z;
	if (!i)
		fl_hmap_put(&by_hash, h, nstrs);
	return copy->z;
}

unsigned fl_strtab_index(const char *interned)
{
	if (!interned)
		return 0;
	unsigned i = ((const struct interned *)(interned - offsetof(struct interned, z)))->index;
	return i && i <= nstrs && strs[i - 1] == interned ? i : 0;
}

const char *fl_strtab_get(unsigned index)
{
	return index && index <= nstrs ? strs[index - 1] : NULL;
}

unsigned fl_strtab_count(void)
{
	return nstrs;
}

void fl_strtab_free(void)
{
	for (unsigned k = 0; k < nstrs; k++)
		free(strs[k] - offsetof(struct interned, z));
	free(strs);
	strs = NULL;
	nstrs = capstrs = 0;
	fl_hmap_free(&by_hash);
}
