/* SPDX-License-Identifier: MIT */
/*
 * profile.h - a recording's faults as weighted stacks, for flame graphs
 * (`export --format folded`) and pprof (`export --format pprof`).
 *
 * A sample's stack, outermost first: the process ("app (100)"), the call
 * stack that created the memory (the creating call of the region's origin
 * row: the mmap, brk, ... that made it, or the parent's call for memory
 * inherited at fork), the region ("[anon]", "[file /usr/lib/libc.so.6]"),
 * and the faulting instruction (fault_site), or "[no fault site]" for the
 * faults the kernel counted that no site row holds.  So every fault of the
 * fault table is in exactly one sample, and the samples of a class sum to
 * that class's column total.
 *
 * Two more values, at one moment (profile.at_ns): the resident bytes of
 * the smaps sample `why` explains (the process with the highest RSS peak,
 * or --pid's, at its sample with the most resident bytes), one sample per
 * recorded VMA piece (process; creating stack; region) and one per
 * region's rest ("[no recorded VMA]"), so they sum to why's total; and the
 * live heap bytes of that process then (heap_sample, estimated bytes,
 * rounded per block), by allocating stack under the allocating function.
 */
#ifndef FL_PROFILE_H
#define FL_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "measure.h"

/* A frame of a sample: a recorded code location (frame row), or a pseudo-frame with only a name. */
struct fl_pnode {
	int64_t frame_id;       /* frame.id, 0 for a pseudo-frame */
	char *name;             /* function, "module+0x1a2b", or the pseudo-frame's text */
	char *file, *module, *build_id; /* NULL when unknown or a pseudo-frame */
	int64_t line, rel_addr;
};

/* A sample's values: faults per class, then resident bytes, then live heap bytes. */
#define FL_PV_RESIDENT FL_NCLASSES
#define FL_PV_HEAP (FL_NCLASSES + 1)
#define FL_PVALUES (FL_NCLASSES + 2)

struct fl_psample {
	int nframes;
	int *frames;            /* indexes into nodes, innermost (the leaf) first */
	int64_t v[FL_PVALUES];
};

struct fl_profile {
	struct fl_pnode *nodes;
	size_t nnodes, capnodes;
	struct fl_psample *samples;
	size_t nsamples, capsamples;
	int64_t total[FL_PVALUES];    /* the fault table's column sums over the selected processes, resident, heap */
	int64_t pid;                  /* 0: all processes */
	int64_t at_pid, at_ns;        /* the process and moment of the resident and heap values (ns after start), -1 none */
	int64_t sample_id;            /* the smaps sample (why's), -1 none */
};

/* Loads the fault, resident and heap samples of pid (0: all).  Returns 0, or -1 after printing why. */
int fl_profile_load(struct fl_db *d, int64_t pid, struct fl_profile *p);
void fl_profile_free(struct fl_profile *p);

#endif /* FL_PROFILE_H */
