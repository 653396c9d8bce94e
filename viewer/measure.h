/* SPDX-License-Identifier: MIT */
/*
 * measure.h - a recording's numbers for `check` and `diff`: per process and
 * per region (everything one call mapped, with what split from it and what a
 * fork child inherited of it), the program's own share kept apart from
 * faultline's footprint, and labels that match the same region across runs
 * despite ASLR.  docs/check.md says what each metric counts.
 */
#ifndef FL_MEASURE_H
#define FL_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "db.h"
#include "faultline.h"

/* The fault table's classes: common/faultline.h FL_FAULT_CLASSES (docs/faults.md). */
#define FL_NCLASSES FL_F_NCLASS
extern const char *const fl_class_names[FL_NCLASSES];

/* What a limit or a diff row measures. */
#define FL_METRICS(X) X(rss) X(minor) X(major) X(cow) X(mappings) X(calls)
enum fl_metric {
#define FL_METRIC_ENUM(m) FL_M_##m,
	FL_METRICS(FL_METRIC_ENUM)
	FL_NMETRICS
};
extern const char *const fl_metric_names[FL_NMETRICS];
/* The metric called name, or -1. */
int fl_metric_parse(const char *name);
/* Whether the metric is counted per region (faults, mappings) rather than only per process. */
bool fl_metric_per_region(enum fl_metric m);

/* Why a region is faultline's rather than the program's. */
enum fl_footprint { FL_FP_NONE, FL_FP_CHANNEL, FL_FP_SHIM, FL_FP_UNWINDER, FL_FP_SHIM_ONLY, FL_FP_SHIM_MADE };

struct fl_region {
	int proc;               /* index into fl_run.procs */
	int64_t origin_id;      /* the vma row its creating call made */
	const char *kind, *path; /* of that row */
	int64_t start, end;     /* of that row */
	const char *label;      /* stable across runs: see fl_run_load */
	const char *funcs;      /* the creating stack's functions, one per line; "" without a stack */
	bool created_here;      /* made by this process, not inherited at fork */
	enum fl_footprint footprint;
	int64_t faults[FL_NCLASSES];    /* the program's own */
	int64_t fl_faults[FL_NCLASSES]; /* faultline's: its region, or its code touching this one */
	int64_t fl_unwind_reads;        /* of fl_faults[pagecache]: the unwinder reading unwind tables */
};

struct fl_mproc {
	int64_t id, pid;
	int64_t start_ns, end_ns; /* end_ns -1: alive at the end of the recording */
	char *exe;              /* "?" when unknown */
	int64_t rss_peak;       /* bytes (anon + file + shmem), -1 without samples */
	int64_t calls;          /* address-space calls of the program itself */
	int64_t fl_calls;       /* calls faultline made in it (mapping its channel, shim, unwinder) */
	int64_t kernel_faults;  /* min_flt + maj_flt at exit, -1 unknown */
	size_t region0, nregions; /* its regions: r->regions[r->by_proc[region0 + k]], k < nregions */
};

/* The calls of one kind from one stack in one process ("mmap by arena_new < main < ..."). */
struct fl_callsite {
	int proc;
	char *label;
	int64_t count;
};

struct fl_run {
	struct fl_db *d;
	struct fl_mproc *procs;
	int nprocs;
	struct fl_region *regions;
	size_t nregions;
	size_t *by_proc;        /* region indices, process by process (fl_mproc.region0) */
	struct fl_callsite *sites;
	size_t nsites;
	int *pidx;              /* process.id -> index into procs, -1 where none; max_id + 1 entries */
	int64_t max_id;
	bool has_faults;        /* an eBPF recording (fault rows exist or fidelity bpf) */
	int64_t exit_status;    /* run.exit_status, -1 unknown */
	char *command;          /* run.command */
	/* what the regions' strings point into, each made once (400k anonymous regions share a
	 * few kinds, stacks and labels): freed with the run */
	char **strings;
	size_t nstrings, capstrings;
};

/* Loads what check and diff need.  Returns 0, or -1 after printing why. */
int fl_run_load(struct fl_db *d, struct fl_run *r);
/* The same without the call sites (r->sites empty): what `html` needs, seconds faster at a million calls. */
int fl_run_load_regions(struct fl_db *d, struct fl_run *r);
void fl_run_free(struct fl_run *r);

/*
 * The distinct values of a text column read row by row (the kinds of call
 * or of region: a few), each copied once and known by its index.
 */
struct fl_names {
	char **v;
	size_t n, cap, last;    /* last: the index found last, where a search starts (rows come in runs) */
};
/* The index of name in t, added if new; -1 without memory. */
long fl_names_index(struct fl_names *t, const char *name);
void fl_names_free(struct fl_names *t);

/* Selects regions and processes; NULL fields match everything.  Globs are fnmatch(3) patterns. */
struct fl_selector {
	char *kind;      /* region kind: anon heap stack file shm vdso vvar faultline other */
	char *path;      /* glob on the region's path */
	char *function;  /* glob on any function of the creating stack */
	char *exe;       /* glob on the process's executable */
};

bool fl_sel_region_part(const struct fl_selector *s);
bool fl_sel_proc(const struct fl_selector *s, const struct fl_mproc *p);
bool fl_sel_region(const struct fl_selector *s, const struct fl_run *r, const struct fl_region *g);
/* "kind=anon, exe=*sqlite3" or "everything". */
const char *fl_sel_text(const struct fl_selector *s, char *buf, size_t n);

/* A region's own faults in metric m (minor, major or cow). */
int64_t fl_region_faults(const struct fl_region *g, enum fl_metric m);
/*
 * Metric m of process p over the regions s selects (the program's own
 * share).  Returns -1 when the run holds no such number (no RSS samples,
 * faults of a shim-only run).
 */
int64_t fl_proc_metric(const struct fl_run *r, int p, const struct fl_selector *s, enum fl_metric m);
/*
 * Metric m over every process s selects.  RSS in total is the largest sum
 * of the peaks of selected processes alive at the same moment.  Returns -1
 * as fl_proc_metric, -2 on an error.
 */
int64_t fl_run_metric(const struct fl_run *r, const struct fl_selector *s, enum fl_metric m);
/* Index of the process with row id in r->procs, or -1. */
int fl_run_proc(const struct fl_run *r, int64_t id);
/* faultline's own faults (minor and major together) and calls in process p. */
void fl_proc_footprint(const struct fl_run *r, int p, int64_t *faults, int64_t *calls);
/* faultline's own faults and calls in the whole run (the part every metric leaves out). */
void fl_run_footprint(const struct fl_run *r, int64_t *minor, int64_t *major, int64_t *calls);

#endif /* FL_MEASURE_H */
