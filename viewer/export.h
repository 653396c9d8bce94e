/* SPDX-License-Identifier: MIT */
/*
 * export.h - `faultline export`: a recording as files other tools open
 * (export.c: the command, folded stacks and CSV; pprof.c; perfetto.c).
 */
#ifndef FL_EXPORT_H
#define FL_EXPORT_H

#include <stdint.h>

#include "db.h"

/* What folded stacks and pprof's default weigh. */
enum fl_weight { FL_W_FAULTS, FL_W_RESIDENT, FL_W_HEAP };

struct fl_export {
	const char *out;        /* the file to write, "-" for stdout */
	int64_t pid;            /* 0: every process */
	int class_idx;          /* folded/pprof: the fault class weighed (fl_class_names), -1 all */
	enum fl_weight weight;  /* folded/pprof: faults (of class_idx), resident or heap bytes */
	const char *table;      /* csv: the table */
	int64_t start_unix;     /* run.start_unix */
	int top;                /* perfetto: ... */
};

/* Each returns the exit status: 0, or 1 after printing why. */
int fl_export_pprof(struct fl_db *d, const struct fl_export *x);
int fl_export_perfetto(struct fl_db *d, const struct fl_export *x);

#endif /* FL_EXPORT_H */
