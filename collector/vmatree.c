/* SPDX-License-Identifier: MIT */
/* vmatree.c - VMAs in a treap keyed by start (see vmatree.h). */
#include <stdlib.h>

#include "vmatree.h"

struct fl_vnode {
	struct fl_vma v;        /* first: a struct fl_vma * of the tree is its node */
	struct fl_vnode *l, *r;
	__u64 prio;             /* a heap on these keeps the tree's depth O(log n) expected */
};

struct fl_vma *fl_vmatree_above(const struct fl_vmatree *t, __u64 addr)
{
	struct fl_vnode *x = t->root, *best = NULL;
	while (x) {
		if (x->v.end > addr) {
			best = x;
			x = x->l;
		} else {
			x = x->r;
		}
	}
	return best ? &best->v : NULL;
}

struct fl_vma *fl_vmatree_first(const struct fl_vmatree *t)
{
	return fl_vmatree_above(t, 0);
}

struct fl_vma *fl_vmatree_next(const struct fl_vmatree *t, const struct fl_vma *v)
{
	return fl_vmatree_above(t, v->end); /* VMAs do not overlap: the next one ends above v's end */
}

/* Split x into the nodes starting below key (*lo) and the rest (*hi). */
static void split(struct fl_vnode *x, __u64 key, struct fl_vnode **lo, struct fl_vnode **hi)
{
	if (!x) {
		*lo = *hi = NULL;
	} else if (x->v.start < key) {
		split(x->r, key, &x->r, hi);
		*lo = x;
	} else {
		split(x->l, key, lo, &x->l);
		*hi = x;
	}
}

/* Join a and b, every node of a below every node of b. */
static struct fl_vnode *merge(struct fl_vnode *a, struct fl_vnode *b)
{
	if (!a || !b)
		return a ? a : b;
	if (a->prio > b->prio) {
		a->r = merge(a->r, b);
		return a;
	}
	b->l = merge(a, b->l);
	return b;
}

static struct fl_vnode *insert(struct fl_vnode *x, struct fl_vnode *n)
{
	if (!x)
		return n;
	if (n->prio > x->prio) {
		split(x, n->v.start, &n->l, &n->r);
		return n;
	}
	if (n->v.start < x->v.start)
		x->l = insert(x->l, n);
	else
		x->r = insert(x->r, n);
	return x;
}

static __u64 next_prio(struct fl_vmatree *t)
{
	/* splitmix64: any fixed sequence of well-spread numbers does */
	__u64 z = (t->seed += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct fl_vma *fl_vmatree_insert(struct fl_vmatree *t, const struct fl_vma *v)
{
	struct fl_vnode *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->v = *v;
	n->prio = next_prio(t);
	t->root = insert(t->root, n);
	t->n++;
	return &n->v;
}

void fl_vmatree_erase(struct fl_vmatree *t, const struct fl_vma *v)
{
	struct fl_vnode **link = &t->root;
	while (*link && *link != (const struct fl_vnode *)v)
		link = v->start < (*link)->v.start ? &(*link)->l : &(*link)->r;
	if (!*link)
		return;
	struct fl_vnode *gone = *link;
	*link = merge(gone->l, gone->r);
	free(gone);
	t->n--;
}

static void free_nodes(struct fl_vnode *x)
{
	while (x) {
		struct fl_vnode *r = x->r;
		free_nodes(x->l);
		free(x);
		x = r;
	}
}

void fl_vmatree_clear(struct fl_vmatree *t)
{
	free_nodes(t->root);
	t->root = NULL;
	t->n = 0;
}
