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

struct fl_psample {
	int nframes;
	int *frames;            /* indexes into nodes, innermost (the leaf) first */
	int64_t v[FL_NCLASSES];
};

struct fl_profile {
	struct fl_pnode *nodes;
	size_t nnodes, capnodes;
	struct fl_psample *samples;
	size_t nsamples, capsamples;
	int64_t total[FL_NCLASSES];   /* the fault table's column sums over the selected processes */
	int64_t pid;                  /* 0: all processes */
};

/* Loads the fault samples of pid (0: all).  Returns 0, or -1 after printing why. */
int fl_profile_load(struct fl_db *d, int64_t pid, struct fl_profile *p);
void fl_profile_free(struct fl_profile *p);

#endif /* FL_PROFILE_H */
