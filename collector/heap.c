/* SPDX-License-Identifier: MIT */
/* heap.c - sampled heap blocks, live per process, to heap_sample rows (see heap.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "hmap.h"

struct block {
	__u64 addr, size, mean, alloc_ns;
	__u32 tid, fn;
	__s64 stack_id;
};

/* One process image's live blocks: addr -> struct block * (0: none). */
struct image {
	struct fl_hmap live;
	size_t n;
};

struct fl_heap {
	struct fl_store *store;
	struct fl_hmap images;          /* proc_id -> struct image * */
	__u64 unrecorded_count, unrecorded_bytes, lost_frees, unmatched_frees, reused;
};

struct fl_heap *fl_heap_new(struct fl_store *store)
{
	struct fl_heap *h = calloc(1, sizeof(*h));
	if (h)
		h->store = store;
	return h;
}

static void drop_image(struct image *im)
{
	for (size_t i = 0; i < im->live.cap; i++)
		free((void *)im->live.vals[i]);
	fl_hmap_free(&im->live);
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

static void write_block(struct fl_heap *h, __s64 proc_id, const struct block *b, __u64 end_ns, const char *how)
{
	struct fl_heap_row r = {
		.proc_id = proc_id, .tid = b->tid, .addr = b->addr, .size = b->size,
		.weight = fl_heap_weight(b->size, b->mean), .mean = b->mean, .fn = fn_name(b->fn), .alloc_ns = b->alloc_ns,
		.free_ns = end_ns, .end_how = how, .stack_id = b->stack_id,
	};
	fl_store_heap_sample(h->store, &r);
}

static struct image *image_of(struct fl_heap *h, __s64 proc_id, int create)
{
	struct image *im = (struct image *)fl_hmap_get(&h->images, (__u64)proc_id);
	if (im || !create)
		return im;
	im = calloc(1, sizeof(*im));
	if (im && fl_hmap_put(&h->images, (__u64)proc_id, (uintptr_t)im)) {
		free(im);
		im = NULL;
	}
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
	im->n += (b != NULL) - (old != NULL);
	return old;
}

void fl_heap_alloc(struct fl_heap *h, __s64 proc_id, const struct fl_alloc_rec *r, __s64 stack_id)
{
	struct image *im = image_of(h, proc_id, 1);
	struct block *b = malloc(sizeof(*b));
	if (!im || !b || !r->addr) {
		free(b);
		return;
	}
	*b = (struct block){ .addr = r->addr, .size = r->size, .mean = r->mean, .alloc_ns = r->time_ns,
			     .tid = r->tid, .fn = r->fn, .stack_id = stack_id };
	struct block *old = swap_block(im, r->addr, b);
	if (old == b) {
		free(b);
	} else if (old) {
		/* sampled again with no free in between: that free was not seen */
		write_block(h, proc_id, old, r->time_ns, "lost");
		h->reused++;
		free(old);
	}
}

void fl_heap_release(struct fl_heap *h, __s64 proc_id, const struct fl_free_rec *r)
{
	struct image *im = image_of(h, proc_id, 0);
	struct block *b = im ? swap_block(im, r->addr, NULL) : NULL;
	if (!b) {
		h->unmatched_frees++;
		return;
	}
	write_block(h, proc_id, b, r->time_ns, "free");
	free(b);
}

/* Write an image's live blocks as ended by how at t (0: live to the end) and forget it. */
static void end_image(struct fl_heap *h, __s64 proc_id, struct image *im, __u64 t, const char *how)
{
	for (size_t i = 0; i < im->live.cap; i++)
		if (im->live.vals[i])
			write_block(h, proc_id, (struct block *)im->live.vals[i], t, how);
	drop_image(im);
	fl_hmap_put(&h->images, (__u64)proc_id, 0);
}

void fl_heap_end(struct fl_heap *h, __s64 proc_id, __u64 t, const char *how)
{
	struct image *im = image_of(h, proc_id, 0);
	if (!im)
		return;
	if (strcmp(how, "exit")) {
		end_image(h, proc_id, im, t, how); /* exec: gone with the image */
		return;
	}
	/* The kernel's exit record can be read before the last of the
	 * process's channel (frees in its atexit handlers): the blocks are
	 * written at the end of the recording, as live to the end. */
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
	for (size_t i = 0; i < h->images.cap; i++)
		if (h->images.vals[i])
			end_image(h, (__s64)h->images.keys[i], (struct image *)h->images.vals[i], 0, "exit");
	if (h->unrecorded_count) {
		snprintf(detail, sizeof(detail),
			 "%llu bytes allocated before the shim was on or inside it (unwinder, dlsym): never sampled",
			 (unsigned long long)h->unrecorded_bytes);
		fl_store_loss(h->store, "heap_unrecorded", h->unrecorded_count, detail);
	}
	if (h->lost_frees + h->reused)
		fl_store_loss(h->store, "heap_lost_free", h->lost_frees + h->reused,
			      "sampled blocks whose free was not seen (a signal handler freeing inside the shim, "
			      "or a free libc made internally): they end at the next sample of their address");
	if (h->unmatched_frees)
		fl_store_loss(h->store, "heap_unmatched_free", h->unmatched_frees,
			      "frees of sampled blocks the collector did not know (their allocation was dropped)");
}
