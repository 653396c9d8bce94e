/* SPDX-License-Identifier: MIT */
/*
 * stacktab.h - deduplicated frames and stacks, and fault sites.  Every new
 * frame goes to the symbolizer (symbolizer.h), which names it on its own
 * thread while the target runs; the names are stored as they come and the
 * last ones before the recording ends.
 *
 * A frame is named by (module path, file offset) so the same code has the
 * same frame in every process despite ASLR; an address outside any file
 * mapping (JIT code, a stack trampoline) is kept raw.
 */
#ifndef FL_STACKTAB_H
#define FL_STACKTAB_H

#include <linux/types.h>

#include "model.h"
#include "store.h"

struct fl_stacks;

struct fl_stacks *fl_stacks_new(struct fl_store *store);
void fl_stacks_free(struct fl_stacks *st);

/* Start the symbolizer's thread (fl_symbolizer_start: the shim's path and the target's, or NULL). Once, after the target was forked. */
void fl_stacks_prewarm(struct fl_stacks *st, const char *shim, const char *exe);

/* The stack of return addresses ips[0..n) (innermost first) in address space m; 0 if n is 0. */
__s64 fl_stacks_intern(struct fl_stacks *st, const struct fl_model *m, const __u64 *ips, unsigned n);

/* The frame of an exact instruction address (a fault site) in m as mapped at t (FL_MODEL_NOW: now). */
__s64 fl_stacks_frame(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip);

/*
 * The callers of a fault site (fl_site_key.callers of the fault at ip,
 * kernel: taken in kernel mode) that the unwind tables vouch for, as a
 * stack (0: none), and in *end why the chain ends there; addresses as mapped at t.
 */
__s64 fl_stacks_callers(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int kernel,
			const __u64 *callers, enum fl_caller_end *end);

/* Add count faults of class cls at frame in a VMA (stored by fl_stacks_finish); faultline:
 * taken inside faultline's shim; callers_id, callers_end: fl_stacks_callers's (-1: not walked). */
void fl_stacks_add_site(struct fl_stacks *st, __s64 vma_id, __s64 proc_id, const char *cls,
			__s64 frame_id, __u64 count, int faultline, __s64 callers_id, int callers_end);

/*
 * Store the names of the frames named since the last call (without the
 * symbolizer's thread, name them here until stop(ctx) says to stop).
 */
void fl_stacks_symbolize(struct fl_stacks *st, bool (*stop)(void *ctx), void *ctx);

/* Write the fault sites, and the names of the frames still unnamed once they are named. */
void fl_stacks_finish(struct fl_stacks *st);

#endif /* FL_STACKTAB_H */
