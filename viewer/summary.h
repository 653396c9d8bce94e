/* SPDX-License-Identifier: MIT */
/*
 * summary.h - what `report`, `faults` and `html` read, summed once when
 * the recording closes (docs/schema.md "Summaries"): per process its calls
 * by kind, mapped-size and resident peaks, own/faultline numbers and the
 * regions with the most faults, and the faults summed by every key of
 * `faults --by`.  They are a cache of the rows: a recording
 * without them (incomplete, or older than schema 8) gets the same tables
 * built by the same code into the connection's temp schema when a command
 * asks for them, so a command reads one set of tables either way and prints
 * the same numbers.
 */
#ifndef FL_SUMMARY_H
#define FL_SUMMARY_H

#include <stdbool.h>

#include <sqlite3.h>

#include "db.h"

/* The parts a command asks for. */
#define FL_SUM_FAULTS 1u  /* fault_summary, site_summary */
#define FL_SUM_PROCS 2u   /* proc_summary, call_summary, region_summary */
#define FL_SUM_ALL (FL_SUM_FAULTS | FL_SUM_PROCS)

/* Regions kept per process in region_summary, by faults (the rest are one row): what `html` lists at most. */
#define FL_SUM_TOP_REGIONS 2000

/*
 * Groups of the region and vma keys kept per process in the recording's own
 * fault_summary, by faults (fault_summary_total counts and sums them all).
 */
#define FL_SUM_TOP_GROUPS 2000

/*
 * A key of `faults --by` (site aside: it reads site_summary).  summary.c
 * groups the faults of each VMA row of a process by it: the process, the
 * region (the kernel VMA the last smaps sample that saw the row found it
 * in: "sample_id:region_start", else "row:vma_id"), the VMA row, its kind,
 * its file, its creating stack.
 */
struct fl_faults_key {
	const char *name;
	int nlabels;
	const char *titles[4];
	bool per_process;       /* a group never spans processes: its summary row is the answer's row */
	bool cut;               /* the recording keeps its top FL_SUM_TOP_GROUPS groups per process */
};
extern const struct fl_faults_key fl_faults_keys[];
extern const int fl_nfaults_keys;

/*
 * Makes the summary tables in schema ("main" or "temp") from the rows.
 * Returns 0, or -1 after printing why.
 */
int fl_summary_write(struct fl_db *d, const char *schema, unsigned parts);
/*
 * Makes the parts available to the queries of d: the recording's own
 * summaries when it has them, else built now into temp (seconds on a large
 * recording).  Returns 0, or -1 after printing why.
 */
int fl_summary_ready(struct fl_db *d, unsigned parts);
/*
 * After fl_summary_ready: makes the fault part whole in temp when the
 * recording's own kept only the top groups of key (a cut key) in a process:
 * for what needs every group (all rows, more than those, or --class).
 * Returns 0, or -1 after printing why.
 */
int fl_summary_whole(struct fl_db *d, const struct fl_faults_key *key);
/*
 * The store's close path (collector/store.c, wired by main.c): summarizes
 * the recording open in db (path for messages; file, unless NULL, where a
 * second connection reads what is committed: store.h).  A failure leaves
 * the recording without summaries (readers then sum the rows), never half
 * of them.  Returns 0 or -1.
 */
int fl_summary_store(sqlite3 *db, const char *path, const char *file);
/* `faultline __summarize FILE` (not for people): summarizes a recording in place, as its close would. */
int fl_cmd_summarize(int argc, char **argv);

#endif /* FL_SUMMARY_H */
