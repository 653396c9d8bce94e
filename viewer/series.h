/* SPDX-License-Identifier: MIT */
/*
 * series.h - resident memory and fault counts over time, for the charts and
 * exports (`timeline`, `html`, `export --format perfetto`).
 *
 * Resident memory is the kernel's own RSS counters per process (the rss
 * table: anon, file and shmem pages, one sample at each rss_stat change or
 * /proc poll), summed over the processes alive at each moment; a process's
 * memory drops to zero when it ends.  By region it is what the smaps
 * samples read (region_rss), held from one sample of a process to its next:
 * fewer moments than the counters, so its peak can be lower.  Drawing downsamples into bins, and a
 * bin shows the state at the instant its total was highest, so a peak is
 * never flattened away; the totals (peak, fault counts) always come from
 * every row.
 */
#ifndef FL_SERIES_H
#define FL_SERIES_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "measure.h"

/* What the stacked series are. */
enum fl_series_by {
	FL_BY_PROCESS,  /* one series per process (anon + file + shmem) */
	FL_BY_KIND,     /* the kernel's counters summed over processes: anon, file, shmem */
	FL_BY_REGION,   /* one series per region and process, from the smaps samples (region_rss) */
};

/* The kernel's RSS counters (rss table columns), in series order for FL_BY_KIND. */
#define FL_RSS_PARTS 3
extern const char *const fl_rss_part_names[FL_RSS_PARTS];

struct fl_series {
	char *name;          /* "30292 faultline-demo", "anon", "101 anon by fill_buffer", "other (3 processes)" */
	int64_t peak;        /* the series' own highest value, bytes (exact, from every row) */
	int64_t at_peak;     /* its value when the total peaked */
	int64_t proc_id;     /* FL_BY_PROCESS, FL_BY_REGION: the process row, else -1 (and for "other") */
};

/* An output series' value after one reading (FL_BY_REGION: every smaps sample, every end). */
struct fl_change {
	int64_t t;                /* ns after the run's start */
	int series;
	int64_t bytes;
};

struct fl_timeline {
	enum fl_series_by by;
	int64_t pid;              /* 0: every process */
	int64_t t0, t1;           /* the binned span, ns after the run's start */
	int nbins;
	int nseries;              /* the top series, then "other" if anything was grouped */
	struct fl_series *series;
	int64_t *rss;             /* nbins x nseries: bytes at the bin's highest instant */
	int64_t *total;           /* nbins: that instant's total */
	int64_t peak, peak_t;     /* the total's highest value and its first time (ns after start), exact */
	int64_t nsamples;         /* rss rows read (FL_BY_REGION: smaps samples) */
	bool has_faults;          /* the run has per-VMA fault counts (eBPF) */
	int64_t *faults;          /* nbins x FL_NCLASSES: faults counted in the bin */
	int64_t fault_total[FL_NCLASSES]; /* exact, from every row */
	int64_t fault_rows;
	struct fl_change *changes; /* FL_BY_REGION: every change of every output series, in time order */
	size_t nchanges;
};

/*
 * Loads the timeline of pid (0: all processes) into nbins bins over the whole
 * run, stacked by `by` with at most top series (the rest summed as "other"),
 * ranked by their value at the total's peak, then by their own peak.
 * Returns 0, or -1 after printing why.
 */
int fl_timeline_load(struct fl_db *d, enum fl_series_by by, int64_t pid, int nbins, int top,
		     struct fl_timeline *t);
/* The same without the fault counts (has_faults false, no fault bins): `html` reads them once, not per stacking. */
int fl_timeline_load_resident(struct fl_db *d, enum fl_series_by by, int64_t pid, int nbins, int top,
			      struct fl_timeline *t);
void fl_timeline_free(struct fl_timeline *t);
/* Start of bin b, ns after the run's start. */
int64_t fl_timeline_bin_start(const struct fl_timeline *t, int b);
/* The process's executable's last path component, into buf. */
const char *fl_basename(const char *path, char *buf, size_t n);

#endif /* FL_SERIES_H */
