/* SPDX-License-Identifier: MIT */
/*
 * heapblocks.c - sampled heap blocks, live per process, to heap_sample rows
 * (see heapblocks.h).
 *
 * A block's stack stays raw (return addresses) until its row is written:
 * in BPF mode the new image's first samples can be read before the kernel's
 * exec record that builds the model they must be resolved in (as with the
 * shim's calls, matcher.c).  Raw stacks are deduplicated per image, and each
 * is interned once, the first time a block of it is written.  For the same
 * reason, in BPF mode a block that ends is held until the kernel's records
 * were read past its end (fl_heap_settle): a library's mapping can still be
 * unread when its code frees a block.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapblocks.h"
#include "hmap.h"
#include "vec.h"

struct block {
	__u64 addr, size, mean, alloc_ns;
	__u32 tid, fn;
	__u32 raw;                      /* index of its stack in image.raw */
	__u32 inherited;                /* a fork child's copy of its parent's block */
};

struct raw_stack {
	__u64 *frames;
	unsigned n;
	__s64 id;                       /* interned stack, 0 until first needed */
};

/* One process row's live blocks, and the stacks they were sampled at. */
struct image {
	struct fl_hmap live;            /* addr -> struct block * (0: none) */
	const struct fl_model *model;   /* the process's address space, to resolve stacks in */
	struct fl_hmap raw_by_hash;     /* hash of the frames -> index + 1 in raw */
	struct raw_stack *raw;
	size_t nraw, capraw;
	__u64 exec_ns;                  /* its latest exec: older samples read late were of the image before */
	/* A fork child whose parent's record is not read yet: the fork it waits for,
	 * and its frees of blocks it does not have yet (inherited ones, likely) */
	__u32 await_ppid;
	__u64 await_fork;
	struct early_free { __u64 addr, time_ns; } *frees;
	size_t nfrees, capfrees;
};

/*
 * The live blocks of a parent at one of its forks, copied when its record
 * (sent holding every lock of its set, just before the real fork) is read,
 * until the child's record claims them.  The child's record can be read
 * first: its ring is read at once when it exits, and the parent's may stall
 * on a slot another of its threads has not filled yet.  Then the child
 * waits (image.await_*), keeping its frees of blocks it does not have, and
 * gets its blocks when the parent's record comes.
 */
struct inheritance {
	__u32 ppid;
	__u64 fork_id;
	const struct image *parent;     /* the raw stacks of the blocks */
	struct block *blocks;
	size_t n;
};

/* Blocks held for children not heard from yet, at most (~40 MB). */
#define INHERIT_MAX (1u << 20)

/* An ended block waiting for the kernel's records to catch up. */
struct ended {
	__s64 proc_id;
	struct image *im;
	struct block b;
	__u64 end_ns;
	const char *how;
};

struct fl_heap {
	struct fl_store *store;
	struct fl_stacks *stacks;
	bool hold;                      /* BPF mode: hold ended blocks until settled */
	struct ended *ended;            /* in the order they ended */
	size_t nended, capended, ended_done;
	struct fl_hmap images;          /* proc_id -> struct image * */
	struct inheritance *forks;      /* forks whose child has not claimed its blocks */
	size_t nforks, capforks, fork_blocks;
	__u64 uninherited;              /* children that could not be given their blocks */
	__u64 unrecorded_count, unrecorded_bytes, lost_frees, unmatched_frees, reused;
};

struct fl_heap *fl_heap_new(struct fl_store *store, struct fl_stacks *stacks)
{
	struct fl_heap *h = calloc(1, sizeof(*h));
	if (h) {
		h->store = store;
		h->stacks = stacks;
	}
	return h;
}

static void drop_image(struct image *im)
{
	for (size_t i = 0; i < im->live.cap; i++)
		free((void *)im->live.vals[i]);
	for (size_t i = 0; i < im->nraw; i++)
		free(im->raw[i].frames);
	fl_hmap_free(&im->live);
	fl_hmap_free(&im->raw_by_hash);
	free(im->raw);
	free(im->frees);
	free(im);
}

void fl_heap_free(struct fl_heap *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->images.cap; i++)
		if (h->images.vals[i])
			drop_image((struct image *)h->images.vals[i]);
	fl_hmap_free(&h->images);
	for (size_t i = 0; i < h->nforks; i++)
		free(h->forks[i].blocks);
	free(h->forks);
	free(h->ended);
	free(h);
}

double fl_heap_weight(__u64 size, __u64 mean)
{
	if (mean <= 1 || !size)
		return (double)size;
	/* -expm1(-x) = 1 - exp(-x) without cancellation for small x */
	return (double)size / -expm1(-(double)size / (double)mean);
}

static const char *fn_name(__u32 fn)
{
	switch (fn) {
	case FL_ALLOC_CALLOC: return "calloc";
	case FL_ALLOC_REALLOC: return "realloc";
	case FL_ALLOC_MEMALIGN: return "memalign";
	default: return "malloc";
	}
}

/* The index of the raw stack frames[0..n) in im, added if new; -1 when out of memory. */
static long raw_index(struct image *im, const __u64 *frames, unsigned n)
{
	__u64 key = n;
	for (unsigned i = 0; i < n; i++)
		key = fl_hash64(key ^ frames[i]);
	/* distinct stacks with one hash take the next keys (the map needs them non-zero) */
	for (;; key++) {
		uintptr_t v = fl_hmap_get(&im->raw_by_hash, key | 1);
		if (!v)
			break;
		const struct raw_stack *r = &im->raw[v - 1];
		if (r->n == n && !memcmp(r->frames, frames, n * sizeof(*frames)))
			return (long)v - 1;
	}
	if (fl_vec_reserve((void **)&im->raw, &im->capraw, im->nraw + 1, sizeof(*im->raw)))
		return -1;
	struct raw_stack *r = &im->raw[im->nraw];
	*r = (struct raw_stack){ .frames = malloc(n * sizeof(*frames) + 1), .n = n };
	if (!r->frames || fl_hmap_put(&im->raw_by_hash, key | 1, im->nraw + 1)) {
		free(r->frames);
		return -1;
	}
	memcpy(r->frames, frames, n * sizeof(*frames));
	return (long)im->nraw++;
}

static void write_now(struct fl_heap *h, __s64 proc_id, struct image *im, const struct block *b, __u64 end_ns,
		      const char *how)
{
	struct raw_stack *r = &im->raw[b->raw];
	if (!r->id && r->n)
		r->id = fl_stacks_intern(h->stacks, im->model, r->frames, r->n);
	struct fl_heap_row row = {
		.proc_id = proc_id, .tid = b->tid, .addr = b->addr, .size = b->size,
		.weight = fl_heap_weight(b->size, b->mean), .mean = b->mean, .fn = fn_name(b->fn),
		.alloc_ns = b->alloc_ns, .free_ns = end_ns, .end_how = how, .stack_id = r->id,
	};
	fl_store_heap_sample(h->store, &row);
}

/* A block ended: written now, or held until the kernel's records are read past end_ns. */
static void write_block(struct fl_heap *h, __s64 proc_id, struct image *im, const struct block *b, __u64 end_ns,
			const char *how)
{
	if (h->hold && !fl_vec_reserve((void **)&h->ended, &h->capended, h->nended + 1, sizeof(*h->ended))) {
		h->ended[h->nended++] = (struct ended){ proc_id, im, *b, end_ns, how };
		return;
	}
	write_now(h, proc_id, im, b, end_ns, how);
}

/* Write the held blocks that ended before t (all with t = -1; only im's when im is set). */
static void write_held(struct fl_heap *h, __u64 t, const struct image *only)
{
	size_t i = h->ended_done;
	for (; i < h->nended && (only || h->ended[i].end_ns < t); i++) {
		struct ended *e = &h->ended[i];
		if (e->im && (!only || e->im == only)) {
			write_now(h, e->proc_id, e->im, &e->b, e->end_ns, e->how);
			e->im = NULL;
		}
	}
	if (only)
		return;
	h->ended_done = i;
	if (h->ended_done == h->nended || h->ended_done > 4096) { /* drop the written front */
		memmove(h->ended, h->ended + h->ended_done, (h->nended - h->ended_done) * sizeof(*h->ended));
		h->nended -= h->ended_done;
		h->ended_done = 0;
	}
}

void fl_heap_hold(struct fl_heap *h)
{
	h->hold = true;
}

void fl_heap_settle(struct fl_heap *h, __u64 ring_ns)
{
	write_held(h, ring_ns, NULL);
}

static struct image *image_of(struct fl_heap *h, __s64 proc_id, const struct fl_model *model)
{
	struct image *im = (struct image *)fl_hmap_get(&h->images, (__u64)proc_id);
	if (im || !model)
		return im;
	im = calloc(1, sizeof(*im));
	if (im && fl_hmap_put(&h->images, (__u64)proc_id, (uintptr_t)im)) {
		free(im);
		return NULL;
	}
	if (im)
		im->model = model;
	return im;
}

/* Set addr's entry to b (NULL: remove), returning what was there. */
static struct block *swap_block(struct image *im, __u64 addr, struct block *b)
{
	struct block *old = (struct block *)fl_hmap_get(&im->live, addr);
	if (!old && !b)
		return NULL;
	if (fl_hmap_put(&im->live, addr, (uintptr_t)b))
		return b; /* out of memory: the new block is not kept (the caller frees it) */
	return old;
}

/* The block b (malloc'd) is live in im from now: it owns b. */
static void adopt(struct fl_heap *h, __s64 proc_id, struct image *im, struct block *b)
{
	if (b->alloc_ns < im->exec_ns) {
		/* of an image the kernel's exec record (read first) already
		 * replaced: ended then, its stack no longer resolvable */
		if (b->inherited) { /* as in fl_heap_exec */
			free(b);
			return;
		}
		struct fl_heap_row row = {
			.proc_id = proc_id, .tid = b->tid, .addr = b->addr, .size = b->size,
			.weight = fl_heap_weight(b->size, b->mean), .mean = b->mean, .fn = fn_name(b->fn),
			.alloc_ns = b->alloc_ns, .free_ns = im->exec_ns, .end_how = "exec",
		};
		fl_store_heap_sample(h->store, &row);
		free(b);
		return;
	}
	struct block *old = swap_block(im, b->addr, b);
	if (old == b) {
		free(b);
	} else if (old) {
		/* sampled again with no free in between: that free was not seen */
		write_block(h, proc_id, im, old, b->alloc_ns, "lost");
		h->reused++;
		free(old);
	}
}

void fl_heap_alloc(struct fl_heap *h, __s64 proc_id, const struct fl_model *model, const struct fl_alloc_rec *r)
{
	struct image *im = image_of(h, proc_id, model);
	struct block *b = malloc(sizeof(*b));
	long raw = im ? raw_index(im, r->frames, r->h.nframes) : -1;
	if (raw < 0 || !b || !r->addr) {
		free(b);
		return;
	}
	*b = (struct block){ .addr = r->addr, .size = r->size, .mean = r->mean, .alloc_ns = r->time_ns,
			     .tid = r->tid, .fn = r->fn, .raw = (__u32)raw };
	adopt(h, proc_id, im, b);
}

static long find_fork(const struct fl_heap *h, __u32 ppid, __u64 fork_id)
{
	for (size_t i = 0; i < h->nforks; i++)
		if (h->forks[i].ppid == ppid && h->forks[i].fork_id == fork_id)
			return (long)i;
	return -1;
}

static void forget_fork(struct fl_heap *h, size_t i)
{
	h->fork_blocks -= h->forks[i].n;
	free(h->forks[i].blocks);
	h->forks[i] = h->forks[--h->nforks];
}

/* Give the child image im (child_id) the blocks of in; a block it freed already ends then. */
static void inherit(struct fl_heap *h, __s64 child_id, struct image *im, const struct inheritance *in)
{
	for (size_t i = 0; i < in->n; i++) {
		const struct raw_stack *r = &in->parent->raw[in->blocks[i].raw];
		long raw = raw_index(im, r->frames, r->n);
		struct block *b = raw < 0 ? NULL : malloc(sizeof(*b));
		if (!b)
			continue;
		*b = in->blocks[i];
		b->raw = (__u32)raw;
		b->inherited = 1;
		size_t k = 0;
		while (k < im->nfrees && im->frees[k].addr != b->addr)
			k++;
		if (k == im->nfrees) {
			adopt(h, child_id, im, b);
			continue;
		}
		write_block(h, child_id, im, b, im->frees[k].time_ns, "free");
		free(b);
		im->frees[k] = im->frees[--im->nfrees];
	}
	h->unmatched_frees += im->nfrees; /* of blocks it never had */
	im->nfrees = 0;
	im->await_ppid = 0;
	im->await_fork = 0;
}

/* The child image waiting for fork fork_id of pid, and its proc_id; NULL if none. */
static struct image *awaiting(struct fl_heap *h, __u32 pid, __u64 fork_id, __s64 *child_id)
{
	for (size_t i = 0; i < h->images.cap; i++) {
		struct image *im = (struct image *)h->images.vals[i];
		if (im && im->await_fork == fork_id && im->await_ppid == pid) {
			*child_id = (__s64)h->images.keys[i];
			return im;
		}
	}
	return NULL;
}

void fl_heap_fork_parent(struct fl_heap *h, __s64 proc_id, __u32 pid, __u64 fork_id, bool inherit_them)
{
	const struct image *im = image_of(h, proc_id, NULL);
	struct inheritance in = { .ppid = pid, .fork_id = fork_id, .parent = im };
	__s64 child_id;
	struct image *child = awaiting(h, pid, fork_id, &child_id);
	long old = find_fork(h, pid, fork_id);
	if (old >= 0) /* of an image before an exec, whose child never claimed it */
		forget_fork(h, (size_t)old);
	if (!inherit_them) {
		if (child) /* it said it kept the set: the two records disagree */
			inherit(h, child_id, child, &in);
		return;
	}
	size_t live = 0;
	for (size_t i = 0; im && i < im->live.cap; i++)
		live += im->live.vals[i] != 0;
	if (live) {
		if (h->fork_blocks + live > INHERIT_MAX || !(in.blocks = malloc(live * sizeof(*in.blocks)))) {
			h->uninherited++;
			if (child)
				inherit(h, child_id, child, &(struct inheritance){ 0 });
			return;
		}
		for (size_t i = 0; i < im->live.cap; i++)
			if (im->live.vals[i])
				in.blocks[in.n++] = *(const struct block *)im->live.vals[i];
	}
	if (child) {
		inherit(h, child_id, child, &in);
		free(in.blocks);
		return;
	}
	if (fl_vec_reserve((void **)&h->forks, &h->capforks, h->nforks + 1, sizeof(*h->forks))) {
		free(in.blocks);
		h->uninherited++;
		return;
	}
	h->forks[h->nforks++] = in;
	h->fork_blocks += in.n;
}

void fl_heap_fork_child(struct fl_heap *h, __s64 child_id, const struct fl_model *model, __u32 ppid,
			__u64 fork_id, bool inherit_them)
{
	long k = find_fork(h, ppid, fork_id);
	struct image *im = image_of(h, child_id, model);
	if (!inherit_them || !im)
		return;
	if (k < 0) { /* the parent's record is still unread */
		im->await_ppid = ppid;
		im->await_fork = fork_id;
		return;
	}
	inherit(h, child_id, im, &h->forks[k]);
	forget_fork(h, (size_t)k);
}

void fl_heap_release(struct fl_heap *h, __s64 proc_id, const struct fl_free_rec *r)
{
	struct image *im = image_of(h, proc_id, NULL);
	struct block *b = im ? swap_block(im, r->addr, NULL) : NULL;
	if (!b && im && im->await_fork && r->time_ns >= im->exec_ns) {
		/* perhaps of a block it inherited, not given to it yet */
		if (!fl_vec_reserve((void **)&im->frees, &im->capfrees, im->nfrees + 1, sizeof(*im->frees))) {
			im->frees[im->nfrees++] = (struct early_free){ r->addr, r->time_ns };
			return;
		}
	}
	if (!b) {
		if (!im || r->time_ns >= im->exec_ns) /* else: of a replaced image, written at its exec */
			h->unmatched_frees++;
		return;
	}
	write_block(h, proc_id, im, b, r->time_ns, "free");
	free(b);
}

/* Write an image's live blocks as ended by how at t (0: live to the end) and forget it. */
static void end_image(struct fl_heap *h, __s64 proc_id, struct image *im, __u64 t, const char *how)
{
	for (size_t i = 0; i < im->live.cap; i++)
		if (im->live.vals[i])
			write_block(h, proc_id, im, (struct block *)im->live.vals[i], t, how);
	drop_image(im);
	fl_hmap_put(&h->images, (__u64)proc_id, 0);
}

void fl_heap_exec(struct fl_heap *h, __s64 proc_id, const struct fl_model *model, __u64 t)
{
	struct image *im = image_of(h, proc_id, model);
	if (!im)
		return;
	if (t > im->exec_ns)
		im->exec_ns = t;
	/* the kernel's exec record was read: everything of the old image is, and its model goes next */
	write_held(h, 0, im);
	/* Gone with the image, resolved in its address space (the caller
	 * clears the model next).  In BPF mode the kernel's exec record can be
	 * read after the new image's first samples: those stay. */
	for (size_t i = 0; i < im->live.cap; i++) {
		struct block *b = (struct block *)im->live.vals[i];
		if (b && b->alloc_ns < t) {
			/* A fork child's copies of its parent's blocks get no row when
			 * its exec ends them: fork + exec (shells, make) would repeat
			 * the parent's blocks once per child, for the moment between. */
			if (!b->inherited)
				write_now(h, proc_id, im, b, t, "exec");
			free(b);
			im->live.vals[i] = 0; /* removed (hmap.h), without a put that could grow the map */
		}
	}
	/* the same return addresses mean other code in the new image */
	for (size_t i = 0; i < im->nraw; i++)
		im->raw[i].id = 0;
}

void fl_heap_stats(struct fl_heap *h, const struct fl_heap_stats *s)
{
	h->unrecorded_count += s->unrecorded_count;
	h->unrecorded_bytes += s->unrecorded_bytes;
	h->lost_frees += s->lost_frees;
}

void fl_heap_finish(struct fl_heap *h)
{
	char detail[200];
	write_held(h, (__u64)-1, NULL);
	h->hold = false;
	/* what is still live was live when its process ended (or the recording stopped) */
	for (size_t i = 0; i < h->images.cap; i++) {
		struct image *im = (struct image *)h->images.vals[i];
		if (im && im->await_fork) { /* the parent's record never came */
			h->uninherited++;
			h->unmatched_frees += im->nfrees;
		}
	}
	for (size_t i = 0; i < h->images.cap; i++)
		if (h->images.vals[i])
			end_image(h, (__s64)h->images.keys[i], (struct image *)h->images.vals[i], 0, "exit");
	if (h->unrecorded_count) {
		snprintf(detail, sizeof(detail),
			 "%llu bytes allocated inside the shim (a signal handler interrupting it) or before it was on "
			 "(beyond the first 256): never sampled", (unsigned long long)h->unrecorded_bytes);
		fl_store_loss(h->store, "heap_unrecorded", h->unrecorded_count, detail);
	}
	if (h->lost_frees + h->reused)
		fl_store_loss(h->store, "heap_lost_free", h->lost_frees + h->reused,
			      "sampled blocks whose free was not seen (a signal handler freeing inside the shim): "
			      "they end at the next sample of their address, or count as live");
	if (h->uninherited)
		fl_store_loss(h->store, "heap_uninherited", h->uninherited,
			      "fork children that could not be given the sampled blocks they inherited (the parent's "
			      "record was lost, or too many blocks were waiting for children): their frees of those "
			      "count as unmatched");
	if (h->unmatched_frees)
		fl_store_loss(h->store, "heap_unmatched_free", h->unmatched_frees,
			      "frees of sampled blocks the collector did not know (their allocation was dropped)");
}
