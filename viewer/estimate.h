/* SPDX-License-Identifier: MIT */
/*
 * estimate.h - a process's resident memory between smaps samples, or at
 * its end when no sample was taken just before it exited (a fatal signal,
 * a raw exit_group): the latest sample, plus the pages faults made resident
 * since, less the pages frees released since.  An estimate, and always
 * marked as one; the kernel's own RSS counter at that moment says how far
 * off it is (the residual).  docs/schema.md, "The estimate between samples".
 */
#ifndef FL_ESTIMATE_H
#define FL_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* One recorded VMA row live at the moment (bytes). */
struct fl_est_row {
	int64_t vma_id, start, end;
	int64_t sampled;        /* resident at the sample (carried through splits, pro rata) */
	int64_t added;          /* made resident by faults since (first touches, copies, swap-ins, file pages) */
	int64_t freed;          /* released by MADV_DONTNEED/MADV_REMOVE since (pro rata of what was resident) */
	int64_t rss;            /* the estimate: sampled + added - freed, within the row's size */
};

struct fl_estimate {
	int64_t t_ns;           /* the moment */
	int64_t sample_id;      /* the sample it starts from (0: none before t: from nothing) */
	int64_t sample_ns;      /* when its read began */
	int64_t seen_ns;        /* when its read ended: faults and calls stamped later are after it */
	char reason[16];        /* that sample's reason */
	int64_t rss;            /* the estimate: the rows' sum plus unrowed */
	int64_t unrowed;        /* the sample's resident bytes on no recorded row, carried as they were */
	int64_t added, freed;   /* over every row */
	int64_t kernel;         /* the kernel's RSS counter (anon + file + shmem) at or before t; -1: none */
	int64_t kernel_ns;
	struct fl_est_row *rows; /* rows with anything resident or changed, by rss, largest first */
	size_t nrows;
};

/* Estimate proc_id's resident memory at t_ns into *e (free with fl_estimate_free).  Returns 0 or -1. */
int fl_estimate(struct fl_db *d, int64_t proc_id, int64_t t_ns, struct fl_estimate *e);
void fl_estimate_free(struct fl_estimate *e);

#endif /* FL_ESTIMATE_H */
