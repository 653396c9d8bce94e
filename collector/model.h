/* SPDX-License-Identifier: MIT */
/*
 * model.h - a process's address space as a set of VMAs (vmatree.h), changed by
 * the calls it made (mmap, munmap, mprotect, mremap, brk), by fork and exec,
 * and reconciled with /proc/PID/maps snapshots.  A change ends rows
 * (destroyed_ns, destroyed_by) and its surviving pieces start new rows that
 * name it as parent_id and keep its origin_id, so each byte's history and
 * creator stay queryable.  A row is written once, whole, when it ends (or
 * at fl_model_close): one INSERT per row, never an UPDATE.
 *
 * The model owns every change to itself: the decoders hand it calls
 * (fl_model_apply), forks, execs and snapshots; they never edit its VMAs.
 *
 * Unlike the kernel, the model does not merge adjacent compatible VMAs: two
 * mmap calls stay two rows, each with its own creating call.
 */
#ifndef FL_MODEL_H
#define FL_MODEL_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"
#include "vmatree.h"

/* A row that ended recently, kept for fault counts read after its VMA went, and for the code
 * addresses of their sites (an exec'd fork child's faults before its exec ran the old image's code). */
struct fl_dead_vma {
	__u64 start, end;
	__u64 created_ns, destroyed_ns;
	__s64 id;
	const char *path;       /* interned, as fl_vma.path */
	__u64 offset;
	__u32 prot;
};

struct fl_model {
	struct fl_vmatree vmas; /* live VMAs, by address, never overlapping */
	struct fl_dead_vma *dead; /* in the order they ended; [dead0, ndead) are kept */
	size_t dead0, ndead, capdead;
	__u64 brk;              /* current program break, 0 = not known yet */
};

/* Who is changing the model, for the rows written. */
struct fl_change {
	struct fl_store *store;
	__s64 proc_id;
	__u32 pid;
	__u64 time_ns;
	__s64 event_id;         /* the call making the change; 0 for a resync */
	enum fl_how how;        /* how rows created by fl_model_map() came to be */
};

void fl_model_free(struct fl_model *m);

/* The VMA containing addr, or NULL. */
const struct fl_vma *fl_model_find(const struct fl_model *m, __u64 addr);

/* fl_model_find_at's time for "now": the live VMAs. */
#define FL_MODEL_NOW ((__u64)-1)

/*
 * What held addr at time t: the live VMA if it existed then, else a row that
 * ended since (kept until pruned), as *ended (start, end, offset, prot, path,
 * id, created_ns); NULL if neither.
 */
const struct fl_vma *fl_model_find_at(const struct fl_model *m, __u64 addr, __u64 t, struct fl_vma *ended);

/*
 * The kernel grows a stack VMA (VM_GROWSDOWN) down on faults, with no call
 * to see.  When the kernel VMA a fault hit, [vm_start, vm_end), ends where
 * a live stack row ends and starts below it, the row now starts at
 * vm_start: its row says how far the stack grew (/proc/PID/maps at the
 * end), and the pages below its first start are no longer outside it.
 */
void fl_model_grow_stack(struct fl_model *m, __u64 vm_start, __u64 vm_end);

/*
 * Map tmpl's range, replacing anything there (MAP_FIXED semantics): a new
 * row (how = c->how) created by c->event_id, its own origin.
 */
void fl_model_map(struct fl_model *m, const struct fl_change *c, const struct fl_vma *tmpl);

/* Remove [start, end), splitting VMAs that straddle its ends. */
void fl_model_unmap(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end);

/* Set prot on the mapped parts of [start, end), splitting as the kernel does. */
void fl_model_protect(struct fl_model *m, const struct fl_change *c, __u64 start, __u64 end, __u32 prot);

/* mremap(old, old_len, new_len, flags, ...) that returned new_addr. */
void fl_model_remap(struct fl_model *m, const struct fl_change *c, __u64 old, __u64 old_len,
		    __u64 new_addr, __u64 new_len, __u32 flags);

/* A fork child's address space: a copy of the parent's, break included (rows how = fork). */
void fl_model_fork(struct fl_model *child, const struct fl_model *parent, const struct fl_change *c);

/*
 * Apply a successful address-space call (a failed one changes nothing).
 * path: the file an mmap mapped, when known.  from_kernel: the call is the
 * syscall as BPF saw it (brk returns the new break), not libc's wrapper
 * (brk returns 0 and the break is its argument).
 */
void fl_model_apply(struct fl_model *m, const struct fl_change *c, const struct fl_call *call, const char *path,
		    bool from_kernel);

/* The run closes: write the rows still live (destroyed_ns NULL).  Call once, last. */
void fl_model_close(struct fl_model *m, const struct fl_change *c);

/* End every row and forget the break (exec replaced the address space). */
void fl_model_clear(struct fl_model *m, const struct fl_change *c);

/*
 * Reconcile with a snapshot of /proc/PID/maps (sorted, as the kernel prints
 * it): VMAs the snapshot does not cover with the same protection end; parts
 * of the snapshot the model lacks are added with how = c->how.  One pass
 * over both: O((n + model size) log model size).
 */
void fl_model_resync(struct fl_model *m, const struct fl_change *c, const struct fl_vma *snap, size_t n);

/*
 * The row that faults counted for the kernel VMA [start, end), the latest at
 * time t, belong to: the row that held start at t (a live one, or one that
 * ended since), else a live one overlapping the range (the kernel merged
 * it with a neighbour).  Returns 0 if none.
 */
__s64 fl_model_attribute(const struct fl_model *m, __u64 start, __u64 end, __u64 t);

/* Forget ended rows that ended before t (no count read later can belong to them). */
void fl_model_prune_dead(struct fl_model *m, __u64 t);

/*
 * Name the file of VMAs the model knows only as "some file" (the kernel
 * said which inode, but its path could no longer be found) from a snapshot
 * line covering them.
 */
void fl_model_fill_paths(struct fl_model *m, const struct fl_vma *snap, size_t n);

/* The kind of a mapping from its /proc/PID/maps path and flags. */
const char *fl_model_kind(const char *path, __u32 flags);

#endif /* FL_MODEL_H */
