/* SPDX-License-Identifier: MIT */
/*
 * heapblocks.h - sampled heap blocks (records FL_R_ALLOC / FL_R_FREE from
 * preload/malloc.c): which are live per process image, and their rows in
 * heap_sample once they end (freed, or their image exited or exec'd).
 */
#ifndef FL_HEAP_H
#define FL_HEAP_H

#include <linux/types.h>
#include <stdbool.h>

#include "faultline.h"
#include "model.h"
#include "stacktab.h"
#include "store.h"

struct fl_heap;

/* Stacks are interned in stacks when a block's row is written. */
struct fl_heap *fl_heap_new(struct fl_store *store, struct fl_stacks *stacks);
/* Write nothing more; free everything. */
void fl_heap_free(struct fl_heap *h);
/* A sampled allocation of process row proc_id, whose address space is model (kept for its stack). */
void fl_heap_alloc(struct fl_heap *h, __s64 proc_id, const struct fl_model *model, const struct fl_alloc_rec *r);
/* A sampled block of proc_id was freed (or moved by realloc). */
void fl_heap_release(struct fl_heap *h, __s64 proc_id, const struct fl_free_rec *r);
/* An exec replaced the image of proc_id at t: its blocks from before t end (call before clearing the model). */
void fl_heap_exec(struct fl_heap *h, __s64 proc_id, const struct fl_model *model, __u64 t);
/*
 * fork: the parent proc_id (pid) is about to fork (its fork number fork_id);
 * its live blocks now are what the child inherits (inherit: the child keeps
 * them).  The child (child_id, whose parent is ppid) then claims them.
 */
void fl_heap_fork_parent(struct fl_heap *h, __s64 proc_id, __u32 pid, __u64 fork_id, bool inherit_them);
void fl_heap_fork_child(struct fl_heap *h, __s64 child_id, const struct fl_model *model, __u32 ppid,
			__u64 fork_id, bool inherit_them);
/* A process's shim said, at its exit, what the sampler could not see. */
void fl_heap_stats(struct fl_heap *h, const struct fl_heap_stats *s);
/* BPF mode: hold ended blocks until fl_heap_settle() says the kernel's records were read past them. */
void fl_heap_hold(struct fl_heap *h);
/* The kernel's records were read up to ring_ns. */
void fl_heap_settle(struct fl_heap *h, __u64 ring_ns);
/* Write the blocks still live (live to their process's end) and the loss rows. */
void fl_heap_finish(struct fl_heap *h);
/* The bytes a sample of size bytes stands for at sampling mean `mean`. */
double fl_heap_weight(__u64 size, __u64 mean);

#endif /* FL_HEAP_H */
