/* SPDX-License-Identifier: MIT */
/*
 * rows.h - processes and VMAs as the viewer commands read them: one row
 * struct each, the queries that select them, and how a VMA's creator is
 * described.
 */
#ifndef FL_ROWS_H
#define FL_ROWS_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "output.h"

/* A nullable integer column. */
struct fl_opt {
	bool set;
	int64_t v;
};

struct fl_proc {
	int64_t id, pid, start_ns;
	struct fl_opt ppid, parent_id, end_ns, exit_code, exit_signal, min_flt, maj_flt;
	struct fl_opt min_flt_before, maj_flt_before, min_flt_gup, maj_flt_gup;
	bool shim;
	char *exe, *argv;   /* argv: JSON array text */
};

struct fl_vma {
	int64_t id, proc_id, pid, start, end, prot, flags, offset, created_ns, origin_id;
	struct fl_opt inode, destroyed_ns, created_by, destroyed_by, parent_id, faults;
	struct fl_opt event_id, stack_id;  /* the creating event (see fl_vma_select) and its stack */
	char *kind, *path, *how, *event_kind;
};

/* All processes in start order; *out freed with fl_proc_free. Returns the count or -1. */
int fl_proc_load(struct fl_db *d, struct fl_proc **out);
void fl_proc_free(struct fl_proc *p, int n);
/* "exited 0", "killed by SIGSEGV", "running at the end" into buf. */
const char *fl_proc_status(const struct fl_proc *p, char *buf, size_t n);
/* The last moment p was alive: end_ns, else the end of the recording. */
int64_t fl_proc_end(const struct fl_db *d, const struct fl_proc *p);
/* Whether p was alive at t. */
bool fl_proc_alive_at(const struct fl_proc *p, int64_t t);

/*
 * The VMAs of process proc_id live at time t (created_ns <= t < destroyed_ns),
 * or with at_end, its VMAs at its end (see docs/schema.md: not destroyed by
 * a call, and not gone before t = fl_proc_end).  order_by is an SQL ORDER
 * BY clause body, limit 0 for all.  Returns the count or -1; free with
 * fl_vma_free.
 */
int fl_vma_select(struct fl_db *d, int64_t proc_id, int64_t t, bool at_end, const char *order_by,
		  int limit, struct fl_vma **out);
/* Row id of process proc_id into *out (a malloc'd struct: fl_vma_free(out, 1)). Returns 1, 0 if none, -1. */
int fl_vma_get(struct fl_db *d, int64_t proc_id, int64_t id, struct fl_vma *out);
void fl_vma_free(struct fl_vma *v, int n);
/*
 * The time at which the sum of the sizes of proc_id's live VMAs peaked (the
 * earliest, if several) and that sum.  Returns 1, 0 when the process has no
 * VMAs, or -1.
 */
int fl_vma_peak(struct fl_db *d, int64_t proc_id, int64_t *t, int64_t *bytes);
/*
 * Describes who created v in up to nframes lines of frames ("function
 * (file:line)"), written to lines[i] (each of size n).  When there is no
 * stack, one line says why: "(mapped before start)", "no user stack (seen
 * by the kernel only)", ...  Returns the number of lines, or -1.
 */
int fl_vma_creator(struct fl_db *d, const struct fl_vma *v, int nframes, char lines[][512]);
/*
 * Whether row b (starting where a ends) continues a's region: what the
 * kernel would keep as one VMA (same permissions, flags, kind and file,
 * contiguous file offsets).  Rows one call made, brk extensions of a heap
 * and adjacent anonymous mmaps with equal flags are one region.
 */
bool fl_vma_same_region(const struct fl_vma *a, const struct fl_vma *b);
/* The VMA as a JSON object (all columns, plus size, perms, creator text). */
void fl_vma_json(struct fl_db *d, struct fl_json *j, const struct fl_vma *v);
/* The same, left open for more keys (close it with fl_json_close(j, '}')). */
void fl_vma_json_open(struct fl_db *d, struct fl_json *j, const struct fl_vma *v);
/* JSON value of a nullable integer. */
void fl_json_opt(struct fl_json *j, const char *key, struct fl_opt o);

#endif /* FL_ROWS_H */
