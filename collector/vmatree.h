/* SPDX-License-Identifier: MIT */
/*
 * vmatree.h - a set of non-overlapping VMAs ordered by address: a treap
 * (a binary search tree kept balanced by random priorities), so lookup,
 * insert and erase take O(log n) expected whatever the order of the calls
 * (top-down mmap puts each new mapping below all others: a sorted array
 * moved every entry for it).  The kernel keeps its VMAs in a maple tree
 * for the same reason.
 */
#ifndef FL_VMATREE_H
#define FL_VMATREE_H

#include <linux/types.h>
#include <stddef.h>

struct fl_vma {
	__u64 start, end;       /* [start, end), page aligned */
	__u64 offset;           /* file offset of start (file mappings) */
	__u64 inode;
	__u32 dev;              /* of the file, kernel encoding; 0 if unknown */
	__u32 prot;             /* PROT_* */
	__u32 flags;            /* MAP_* */
	const char *kind;       /* static string: anon heap stack file shm vdso vvar vsyscall faultline */
	const char *path;       /* interned by the caller; NULL for anonymous memory */
	__s64 id;               /* current vma row (written when it ends: fl_model_close) */
	__s64 origin_id;        /* row made by the creating call */
	__s64 created_by;       /* event that created the memory, 0 = none seen */
	__u64 created_ns;       /* when the current row started */
	__s64 parent_id;        /* the row it was split from or inherited from, 0 = none */
	__u32 how;              /* enum fl_how: how the current row came to be */
};

struct fl_vnode;

struct fl_vmatree {
	struct fl_vnode *root;
	size_t n;
	__u64 seed;             /* of the priorities */
};

/* The first VMA ending above addr (the one holding addr, or the next), or NULL. */
struct fl_vma *fl_vmatree_above(const struct fl_vmatree *t, __u64 addr);

/* The lowest VMA, and the one after v; NULL past the end. */
struct fl_vma *fl_vmatree_first(const struct fl_vmatree *t);
struct fl_vma *fl_vmatree_next(const struct fl_vmatree *t, const struct fl_vma *v);

/* Add a copy of v (which overlaps nothing in t).  Returns it, or NULL when out of memory. */
struct fl_vma *fl_vmatree_insert(struct fl_vmatree *t, const struct fl_vma *v);

/* Remove v (a VMA of t; the pointer is invalid afterwards). */
void fl_vmatree_erase(struct fl_vmatree *t, const struct fl_vma *v);

/* Remove everything. */
void fl_vmatree_clear(struct fl_vmatree *t);

#endif /* FL_VMATREE_H */
