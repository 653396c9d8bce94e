/* SPDX-License-Identifier: MIT */
/*
 * shimmaps.h - the shim's snapshot of a process image's mappings (a HELLO
 * record, then one MAPPING record per /proc/self/maps line), assembled;
 * procs.c reconciles the process's model with it.
 */
#ifndef FL_SHIMMAPS_H
#define FL_SHIMMAPS_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "faultline.h"
#include "model.h"

struct fl_shimmaps {
	struct fl_vma *v;       /* the snapshot being received (NULL: none) */
	size_t n, want;
	__u32 flags;            /* FL_HELLO_* */
	__u64 time_ns;
	struct fl_vma *last;    /* the latest whole snapshot, and when it was taken */
	size_t nlast;
	__u64 last_ns;
};

/* A HELLO announced nmappings lines taken at time_ns (a snapshot still incomplete is dropped). */
void fl_shimmaps_begin(struct fl_shimmaps *s, __u32 nmappings, __u32 flags, __u64 time_ns);

/* Add one line.  Returns true when the snapshot is whole (then apply it). */
bool fl_shimmaps_add(struct fl_shimmaps *s, const struct fl_mapping *m);

/* The snapshot received (whole, or all there is) becomes the latest one, kept. */
void fl_shimmaps_keep(struct fl_shimmaps *s);

void fl_shimmaps_free(struct fl_shimmaps *s);

#endif /* FL_SHIMMAPS_H */
