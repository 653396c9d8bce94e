/* SPDX-License-Identifier: MIT */
/*
 * heapsites.h - the sampled heap blocks of a recording (table heap_sample) as the
 * viewer reads them: the blocks live in a process at a time, placed in the
 * region that held them (the brk heap, a malloc arena, a block's own mmap)
 * and broken down by allocating stack, with the sampling error.
 *
 * This is the hook for commands that explain a region's memory (`report`
 * now, `why` later): load a view at (process, time), then for any address
 * range, the regions here that fall in it say which code owns the bytes.
 *
 * What a region's resident bytes hold beyond its live blocks (allocator
 * overhead, free chunks) is resident - bytes, never spread over the sites.
 *
 * Estimates (docs/heap.md): a block of n bytes sampled at mean M stands for
 * w = n / (1 - exp(-n/M)) bytes; a sum of weights is unbiased, and its
 * variance is estimated by the sum of w (w - n).  Everything at mean 1 is
 * exact (variance 0).
 */
#ifndef FL_HEAP_VIEW_H
#define FL_HEAP_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

struct fl_heap_site {
	int64_t stack_id;       /* 0: no stack */
	double bytes, var;      /* estimated live bytes and its variance */
	int64_t samples;
};

struct fl_heap_region {
	int64_t start, end;     /* extent of its VMAs at the time (0, 0: blocks in no known VMA) */
	int64_t mapped_rw;      /* bytes of those VMAs that are writable */
	int64_t touched;        /* first-touch faults in it up to the time, bytes (-1: not recorded) */
	int64_t resident;       /* resident bytes of its VMAs by the smaps sample taken at the
				 * time viewed (piece_rss), -1 when none was taken then */
	char kind[16];          /* "heap", "arena", "mmap" (a block's own mapping), "anon", "unknown" ... */
	double bytes, var;      /* estimated live bytes in it and the variance */
	int64_t samples;
	struct fl_heap_site *sites; /* by estimated bytes, largest first */
	int nsites;
};

/* One live sampled block. */
struct fl_heap_block {
	int64_t addr, stack_id;
	double w, var;          /* the bytes it stands for, and the variance of that */
};

/* The live blocks in an address range, by allocating stack. */
struct fl_heap_range {
	double bytes, var;
	int64_t samples;
	struct fl_heap_site *sites; /* by estimated bytes, largest first */
	int nsites;
};

struct fl_heap_view {
	int64_t mean;           /* the sampling mean (1: every allocation) */
	int64_t t;              /* the time viewed */
	double bytes, var;      /* all live sampled blocks */
	int64_t samples;
	struct fl_heap_region *regions; /* by estimated bytes, largest first */
	int nregions;
	struct fl_heap_block *blocks;   /* by address */
	int nblocks;
};

/*
 * The blocks of proc_id live at t (at_end: still live when it ended).
 * Returns 1, 0 when the recording has no heap samples for it (heap
 * sampling off, no allocation sampled, an older recording, no shim), or
 * -1 (printed).
 */
int fl_heap_view_load(struct fl_db *d, int64_t proc_id, int64_t t, bool at_end, struct fl_heap_view *out);
void fl_heap_view_free(struct fl_heap_view *v);
/*
 * When proc_id's sampled heap held the most: of its smaps samples, the one
 * with the most bytes in live blocks (as fl_heap_view_load counts them;
 * the earliest of equal ones) into *most, and the bytes live at sample
 * here_id into *here.  A heap's resident peak can fall after its live peak
 * (glibc keeps freed chunks resident): perl's global destruction touched
 * pages as it freed 39 of 66 sampled blocks and became the RSS peak.
 * Returns 1, 0 when the process has no heap or smaps sample, -1 (printed).
 */
struct fl_heap_moment {
	int64_t sample_id, time_ns, rss;
	double live;
};
int fl_heap_live_peak(struct fl_db *d, int64_t proc_id, int64_t here_id, struct fl_heap_moment *most, double *here);

/* The blocks of v starting in [start, end) by stack (none: 0 samples).  0 or -1 (out of memory). */
int fl_heap_view_range(const struct fl_heap_view *v, int64_t start, int64_t end, struct fl_heap_range *out);
void fl_heap_range_free(struct fl_heap_range *r);
/*
 * Sites as they are shown: `frames` frames of their stacks, as lines.  An
 * allocation wrapper (Perl_safesysmalloc, xmalloc, operator new) says
 * nothing about which code owns the bytes: an innermost frame whose sites
 * were called from two places or more is skipped (not a site's only frame),
 * and named in `via`.  Sites whose lines are then
 * equal are one site with their bytes, variances and samples summed and
 * every stack id, so no two printed lines are the same site twice.
 * Largest first.
 */
#define FL_HEAP_SHOWN_FRAMES 3
struct fl_heap_shown {
	char lines[FL_HEAP_SHOWN_FRAMES][512];
	int nlines;
	char via[256];          /* the wrapper skipped ("Perl_safesysmalloc"), "" if none */
	double bytes, var;
	int64_t samples;
	int64_t *stack_ids;     /* the merged sites' stacks, largest first (0: no stack) */
	int nstack_ids;
};
/* Returns the number in *out, or -1 (printed).  frames: 1..FL_HEAP_SHOWN_FRAMES. */
int fl_heap_sites_shown(struct fl_db *d, const struct fl_heap_site *sites, int n, int frames,
			struct fl_heap_shown **out);
void fl_heap_shown_free(struct fl_heap_shown *s, int n);

/* 1.96 standard deviations: the half-width of a 95% interval. */
double fl_heap_err95(double var);
/* "12.3 MiB" or, when sampled (var > 0), "12.3 MiB ±1.1 MiB" (95%); into buf. */
const char *fl_heap_estimate(char *buf, size_t n, double bytes, double var);

#endif /* FL_HEAP_VIEW_H */
