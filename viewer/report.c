/* SPDX-License-Identifier: MIT */
/*
 * report.c - `faultline report FILE`: the run, what was lost, the process
 * tree, and per process its calls, faults and the largest mappings at its
 * peak.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/types.h>

#include "cli.h"
#include "db.h"
#include "faultline.h"
#include "measure.h"
#include "frames.h"
#include "heapsites.h"
#include "output.h"
#include "rows.h"
#include "summary.h"
#include "viewer.h"
#include "why.h"

#define USAGE "report FILE [--pid P] [--top N] [--all] [--pieces] [--format json]"
#define PROC_DETAIL 10  /* processes detailed by default in a run with more (ranked by peak RSS) */
#define CREATOR_FRAMES 3
#define TREE_MAX_DEPTH 64

/* The fault table's classes, in the order a report lists them. */
#define CLASS_COLUMN_(c, name) #name,
static const char *const fault_classes[] = { FL_FAULT_CLASSES(CLASS_COLUMN_) "thp" };
#define NCLASSES (int)(sizeof(fault_classes) / sizeof(fault_classes[0]))

struct report {
	struct fl_db *d;
	struct fl_json *j;     /* NULL: human output */
	int top;               /* VMAs listed at each peak */
	int64_t pid;           /* --pid: only this process (0: all) */
	bool all;              /* --all: detail every process, however many */
	bool pieces;           /* --pieces: the peak lists recorded rows, not regions */
	struct fl_proc *procs;
	int nprocs;
	int *order, *depth;    /* tree order: index into procs, and its depth */
	bool *seen;
	bool has_faults;       /* an eBPF recording: fault rows exist, or fidelity bpf */
};

/* Shell-like "prog arg1 'arg 2'" of a JSON argv, or the raw text if it is not one. */
static void argv_text(struct fl_db *d, const char *json, char *buf, size_t n)
{
	char **argv;

	buf[0] = '\0';
	if (fl_db_argv(d, json, &argv) < 0) {
		snprintf(buf, n, "%s", json ? json : "");
		return;
	}
	for (char **a = argv; *a; a++)
		fl_out_append_arg(buf, n, *a);
	fl_db_free_argv(argv);
}

/* A JSON argv as an array, or null. */
static void argv_json(struct report *r, const char *key, const char *json)
{
	char **argv;

	fl_json_key(r->j, key);
	if (fl_db_argv(r->d, json, &argv) < 0) {
		fl_json_null(r->j);
		return;
	}
	fl_json_open(r->j, '[');
	for (char **a = argv; *a; a++)
		fl_json_str(r->j, *a);
	fl_json_close(r->j, ']');
	fl_db_free_argv(argv);
}

/* ---- the run ----------------------------------------------------------- */

static void run_exit_text(sqlite3_stmt *st, int col, char *buf, size_t n)
{
	int64_t status = sqlite3_column_int64(st, col);
	char sig[32];

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		snprintf(buf, n, "unknown");
	else if (status > 128 && status < 128 + 65)
		snprintf(buf, n, "killed by %s (status %" PRId64 ")", fl_out_signal(sig, sizeof(sig), status - 128),
			 status);
	else
		snprintf(buf, n, "exited %" PRId64, status);
}

static void run_text(struct report *r, sqlite3_stmt *st)
{
	char cmd[4096], when[64], dur[32], exit_text[64];
	const char *note = (const char *)sqlite3_column_text(st, 6);
	time_t start = (time_t)sqlite3_column_int64(st, 9);
	struct tm tm;

	argv_text(r->d, (const char *)sqlite3_column_text(st, 1), cmd, sizeof(cmd));
	/* the file is input: a start time no calendar holds (gmtime_r says NULL) is not a crash */
	if (gmtime_r(&start, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	else
		snprintf(when, sizeof(when), "unix time %lld (out of range)", (long long)start);
	run_exit_text(st, 10, exit_text, sizeof(exit_text));
	printf("faultline report: %s%s\n", r->d->path, r->d->complete ? "" : " (recording incomplete)");
	if (!r->d->complete)
		printf("recording  incomplete: still being written, or the recorder stopped early\n");
	printf("command    %s\n", cmd);
	printf("started    %s, %s %s\n", when, r->d->complete ? "ran" : "recorded so far",
	       fl_out_reltime(dur, sizeof(dur), r->d->end_ns - r->d->start_ns));
	printf("host       %s, kernel %s, page size %d\n", sqlite3_column_text(st, 2) ?: (const unsigned char *)"?",
	       sqlite3_column_text(st, 3) ?: (const unsigned char *)"?", sqlite3_column_int(st, 4));
	printf("fidelity   %s%s%s\n", sqlite3_column_text(st, 5), note ? ": " : "", note ? note : "");
	printf("faultline  %s, stack depth %d\n", sqlite3_column_text(st, 0), sqlite3_column_int(st, 7));
	printf("exit       %s\n", exit_text);
}

static void run_json(struct report *r)
{
	sqlite3_stmt *all = fl_db_prepare(r->d, "SELECT * FROM run");

	fl_json_kstr(r->j, "file", r->d->path);
	fl_json_key(r->j, "complete");
	fl_json_bool(r->j, r->d->complete);
	fl_json_key(r->j, "run");
	fl_json_open(r->j, '{');
	if (all && fl_db_step(r->d, all) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(all); i++) {
			const char *name = sqlite3_column_name(all, i);

			if (!strcmp(name, "argv"))
				argv_json(r, name, (const char *)sqlite3_column_text(all, i));
			else
				fl_json_kcol(r->j, name, all, i);
		}
	}
	sqlite3_finalize(all);
	fl_json_kint(r->j, "duration_ns", r->d->end_ns - r->d->start_ns);
	fl_json_close(r->j, '}');
}

static int section_run(struct report *r)
{
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT version, argv, host, kernel, page_size, fidelity, fidelity_note, stack_depth,"
		" start_ns, start_unix, exit_status FROM run");
	int rc = st ? fl_db_step(r->d, st) : -1;

	if (rc == SQLITE_ROW)
		r->j ? run_json(r) : run_text(r, st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* ---- kernel features (bpf/fl_bpf.h FL_CAPS) ------------------------------ */

/* Features the kernel lacked and what replaced them; one line when nothing was. */
static int section_features(struct report *r)
{
	sqlite3_stmt *st;
	int rc, n = 0, absent = 0;

	if (sqlite3_prepare_v2(r->d->db, "SELECT name, state, how FROM kernel_feature ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK)
		return 0; /* recorded before schema version 3 */
	if (r->j) {
		fl_json_key(r->j, "kernel_features");
		fl_json_open(r->j, '[');
	}
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 1);

		n++;
		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_kcol(r->j, "name", st, 0);
			fl_json_kcol(r->j, "state", st, 1);
			fl_json_kcol(r->j, "how", st, 2);
			fl_json_close(r->j, '}');
		} else if (strcmp(state, "present")) {
			absent++;
			printf("kernel     %s %s: %s\n", sqlite3_column_text(st, 0), state,
			       sqlite3_column_text(st, 2) ?: (const unsigned char *)"");
		}
	}
	sqlite3_finalize(st);
	if (r->j)
		fl_json_close(r->j, ']');
	else if (n && !absent)
		printf("kernel     every feature faultline uses is present\n");
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- losses ------------------------------------------------------------ */

static int section_losses(struct report *r)
{
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT cause, count, detail FROM loss WHERE count > 0 ORDER BY count DESC, cause");
	int rc, n = 0;

	if (!st)
		return -1;
	if (r->j) {
		fl_json_key(r->j, "losses");
		fl_json_open(r->j, '[');
	}
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 2);

		n++;
		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_kcol(r->j, "cause", st, 0);
			fl_json_kcol(r->j, "count", st, 1);
			fl_json_kcol(r->j, "detail", st, 2);
			fl_json_close(r->j, '}');
		} else {
			printf("LOST       %s: %lld%s%s%s\n", sqlite3_column_text(st, 0),
			       (long long)sqlite3_column_int64(st, 1), detail ? " (" : "", detail ? detail : "",
			       detail ? ")" : "");
		}
	}
	sqlite3_finalize(st);
	/* a recording faultline could not close (disk full, killed) lacks
	 * whatever came after its last commit: a loss like any other */
	if (rc == SQLITE_DONE && !r->d->complete) {
		n++;
		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_key(r->j, "cause");
			fl_json_str(r->j, "recording_incomplete");
			fl_json_close(r->j, '}');
		} else {
			printf("LOST       recording_incomplete (faultline stopped before closing the recording: "
			       "what came after its last commit is missing)\n");
		}
	}
	if (r->j) {
		fl_json_close(r->j, ']');
		fl_json_key(r->j, "lost");
		fl_json_bool(r->j, n > 0);
	} else if (rc == SQLITE_DONE && n == 0) {
		printf("losses     nothing lost\n");
	} else if (rc == SQLITE_DONE) {
		printf("           data was lost: the numbers below are incomplete\n");
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the process tree -------------------------------------------------- */

static int proc_index(const struct report *r, int64_t id)
{
	for (int i = 0; i < r->nprocs; i++)
		if (r->procs[i].id == id)
			return i;
	return -1;
}

/* Appends procs[i] and, depth first, its children to the tree order. */
static void tree_visit(struct report *r, int i, int depth, int *n)
{
	if (r->seen[i])
		return;
	r->seen[i] = true;
	r->order[*n] = i;
	r->depth[(*n)++] = depth;
	for (int c = 0; c < r->nprocs; c++)
		if (r->procs[c].parent_id.set && r->procs[c].parent_id.v == r->procs[i].id)
			tree_visit(r, c, depth < TREE_MAX_DEPTH ? depth + 1 : depth, n);
}

/* Roots are processes whose parent was not recorded; a parent cycle (a bad store) is cut anywhere. */
static int tree_build(struct report *r)
{
	int n = 0;

	r->order = calloc((size_t)r->nprocs + 1, sizeof(int));
	r->depth = calloc((size_t)r->nprocs + 1, sizeof(int));
	r->seen = calloc((size_t)r->nprocs + 1, sizeof(bool));
	if (!r->order || !r->depth || !r->seen)
		return -1;
	for (int i = 0; i < r->nprocs; i++) {
		const struct fl_proc *p = &r->procs[i];

		if (!p->parent_id.set || proc_index(r, p->parent_id.v) < 0)
			tree_visit(r, i, 0, &n);
	}
	for (int i = 0; i < r->nprocs; i++)
		tree_visit(r, i, 0, &n);
	return n;
}

static void proc_faults_text(const struct fl_proc *p, char *buf, size_t n)
{
	if (p->min_flt.set || p->maj_flt.set)
		snprintf(buf, n, "faults %lld minor, %lld major", (long long)p->min_flt.v, (long long)p->maj_flt.v);
	else
		snprintf(buf, n, "-");
}

static int tree_text(struct report *r, int n)
{
	struct fl_table t;
	int rc = 0;

	printf("\nprocesses (%d)\n", r->nprocs);
	fl_table_init(&t, 6, 0);
	for (int k = 0; k < n && !rc; k++) {
		const struct fl_proc *p = &r->procs[r->order[k]];
		char pid[96], life[64], t0[32], t1[32], status[64], faults[96], argv[4096];

		snprintf(pid, sizeof(pid), "%*s%" PRId64, 2 * r->depth[k], "", p->pid);
		fl_out_reltime(t0, sizeof(t0), p->start_ns - r->d->start_ns);
		if (p->end_ns.set)
			fl_out_reltime(t1, sizeof(t1), p->end_ns.v - r->d->start_ns);
		snprintf(life, sizeof(life), "%s-%s", t0, p->end_ns.set ? t1 : "?");
		fl_proc_status(p, status, sizeof(status));
		proc_faults_text(p, faults, sizeof(faults));
		argv_text(r->d, p->argv, argv, sizeof(argv));
		rc = fl_table_add(&t, (const char *[]){ pid, p->exe ? p->exe : "?", life, status, faults, argv });
	}
	fl_table_print(&t, stdout, 2);
	fl_table_free(&t);
	return rc ? -1 : 0;
}

/* ---- per process ------------------------------------------------------- */

static int proc_calls(struct report *r, const struct fl_proc *p)
{
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT kind, count, errors FROM call_summary WHERE proc_id = ? ORDER BY count DESC, kind");
	char line[4096] = "";
	size_t len = 0;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	if (r->j) {
		fl_json_key(r->j, "calls");
		fl_json_open(r->j, '[');
	}
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		int64_t errors = sqlite3_column_int64(st, 2);

		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_kcol(r->j, "kind", st, 0);
			fl_json_kcol(r->j, "count", st, 1);
			fl_json_kint(r->j, "errors", errors);
			fl_json_close(r->j, '}');
		} else if (len < sizeof(line)) {
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s %lld", len ? ", " : "",
						sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1));
			if (errors && len < sizeof(line))
				len += (size_t)snprintf(line + len, sizeof(line) - len, " (%lld failed)",
							(long long)errors);
		}
	}
	sqlite3_finalize(st);
	if (r->j)
		fl_json_close(r->j, ']');
	else
		printf("  calls    %s\n", len ? line : "none recorded");
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The program's own faults and calls, and faultline's footprint in it (docs/check.md; measure.c via summary.c). */
static int proc_own(struct report *r, const struct fl_proc *p)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT own_minor, own_major, own_calls, fl_faults, fl_calls"
					       " FROM proc_summary WHERE proc_id = ? AND own_minor IS NOT NULL");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	if ((rc = fl_db_step(r->d, st)) == SQLITE_ROW && r->j) {
		fl_json_key(r->j, "own");
		fl_json_open(r->j, '{');
		fl_json_kcol(r->j, "minor", st, 0);
		fl_json_kcol(r->j, "major", st, 1);
		fl_json_kcol(r->j, "calls", st, 2);
		fl_json_kcol(r->j, "faultline_faults", st, 3);
		fl_json_kcol(r->j, "faultline_calls", st, 4);
		fl_json_close(r->j, '}');
	} else if (rc == SQLITE_ROW) {
		printf("  own      %lld minor, %lld major, %lld calls; faultline's own footprint: %lld faults, %lld calls\n",
		       (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1),
		       (long long)sqlite3_column_int64(st, 2), (long long)sqlite3_column_int64(st, 3),
		       (long long)sqlite3_column_int64(st, 4));
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static int proc_faults(struct report *r, const struct fl_proc *p)
{
	char sql[1024] = "SELECT coalesce(sum(nrows), 0)", line[1024] = "";
	size_t len = strlen(sql), llen = 0;
	int64_t total = 0;
	sqlite3_stmt *st;
	int rc;

	for (int i = 0; i < NCLASSES; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", coalesce(sum(%s), 0)", fault_classes[i]);
	snprintf(sql + len, sizeof(sql) - len, ", coalesce(sum(total), 0)"
		 " FROM fault_summary WHERE key = 'process' AND grp = ?");
	if (!(st = fl_db_prepare(r->d, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	rc = fl_db_step(r->d, st);
	/* no fault rows: nothing to say without eBPF; with it, a process none of
	 * whose faults were classified is checked like any other */
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0 && !r->has_faults) {
		if (r->j) {
			fl_json_key(r->j, "faults");
			fl_json_null(r->j);
		}
	} else if (rc == SQLITE_ROW) {
		total = sqlite3_column_int64(st, NCLASSES + 1);
		if (r->j) {
			fl_json_key(r->j, "faults");
			fl_json_open(r->j, '{');
		}
		for (int i = 0; i < NCLASSES; i++) {
			int64_t v = sqlite3_column_int64(st, i + 1);

			if (r->j)
				fl_json_kint(r->j, fault_classes[i], v);
			else if (v && llen < sizeof(line))
				llen += (size_t)snprintf(line + llen, sizeof(line) - llen, "%s%s %lld",
							 llen ? ", " : "", fault_classes[i], (long long)v);
		}
		/* what the kernel counted beyond the classified faults, so the totals add up */
		int64_t before = p->min_flt_before.v + p->maj_flt_before.v, gup = p->min_flt_gup.v + p->maj_flt_gup.v;
		/* the invariant: what the kernel counted (min_flt + maj_flt) = classified + before + gup */
		int64_t kernel = p->min_flt.v + p->maj_flt.v, missing = kernel - total - before - gup;
		bool checked = p->min_flt.set && p->maj_flt.set;
		if (r->j) {
			fl_json_kint(r->j, "total", total);
			fl_json_kint(r->j, "before_tracking", before);
			fl_json_kint(r->j, "get_user_pages", gup);
			if (checked) {
				fl_json_key(r->j, "totals_match");
				fl_json_bool(r->j, missing == 0);
			}
			fl_json_close(r->j, '}');
		} else {
			printf("  faults   %s (total %lld)\n", llen ? line : "none", (long long)total);
			if (checked && !missing)
				printf("           kernel total %lld = %lld classified + %lld before the target ran"
				       " + %lld by get_user_pages (no fault event)\n",
				       (long long)kernel, (long long)total, (long long)before, (long long)gup);
			else if (checked)
				printf("           MISMATCH: kernel total %lld != %lld classified + %lld before the target"
				       " ran + %lld by get_user_pages: %lld %s (see the losses)\n",
				       (long long)kernel, (long long)total, (long long)before, (long long)gup,
				       (long long)(missing < 0 ? -missing : missing),
				       missing > 0 ? "faults in no class" : "faults counted twice");
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * One line of the peak table: a region (rows v[0..n), adjacent, one kernel
 * VMA) or one row, with the creating frames of its largest row as notes.
 */
static int peak_vma_text(struct report *r, struct fl_table *t, const struct fl_vma *v, int n)
{
	char range[64], size[32], perms[8], faults[48] = "", lines[CREATOR_FRAMES][512], note[600];
	int64_t nfaults = 0;
	bool counted = false;
	int big = 0, nl;

	for (int i = 0; i < n; i++) {
		counted = counted || v[i].faults.set;
		nfaults += v[i].faults.set ? v[i].faults.v : 0;
		big = v[i].end - v[i].start > v[big].end - v[big].start ? i : big;
	}
	if ((nl = fl_vma_creator(r->d, &v[big], CREATOR_FRAMES, lines)) < 0)
		return -1;
	snprintf(range, sizeof(range), "%08" PRIx64 "-%08" PRIx64, (uint64_t)v[0].start, (uint64_t)v[n - 1].end);
	if (counted)
		snprintf(faults, sizeof(faults), "%lld faults", (long long)nfaults);
	if (fl_table_add(t, (const char *[]){ range, fl_out_size(size, sizeof(size), v[n - 1].end - v[0].start),
			fl_out_perms(perms, sizeof(perms), v[0].prot, v[0].flags), v[0].kind, faults,
			v[0].path ? v[0].path : "" }))
		return -1;
	for (int i = 0; i < nl; i++) {
		int len = snprintf(note, sizeof(note), "        %.500s", lines[i]);
		if (i == 0 && n > 1)
			snprintf(note + len, sizeof(note) - (size_t)len, " (and %d more VMAs)", n - 1);
		if (fl_table_note(t, note))
			return -1;
	}
	return 0;
}

/* A region of the peak: rows first..first+n of the rows by address, and its bytes. */
struct peak_region {
	int first, n;
	int64_t size;
};

static int by_size(const void *a, const void *b)
{
	const struct peak_region *x = a, *y = b;
	return x->size != y->size ? (x->size < y->size) - (x->size > y->size) : x->first - y->first;
}

/* The rows by address grouped into regions, largest first; reservations (---p) left out. */
static int peak_regions(const struct fl_vma *v, int n, struct peak_region **out)
{
	struct peak_region *g = calloc((size_t)n + 1, sizeof(*g));
	int ng = 0;

	if (!g)
		return -1;
	for (int i = 0, k; i < n; i = k) {
		for (k = i + 1; k < n && fl_vma_same_region(&v[k - 1], &v[k]); k++)
			;
		if (v[i].prot)
			g[ng++] = (struct peak_region){ i, k - i, v[k - 1].end - v[i].start };
	}
	qsort(g, (size_t)ng, sizeof(*g), by_size);
	*out = g;
	return ng;
}

/* The sample with the most resident bytes of p (smaps_sample), or 0 (none, or a file older than schema 3). */
static int64_t peak_sample(struct report *r, const struct fl_proc *p, int64_t *t, int64_t *rss)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT 1 FROM sqlite_master WHERE name = 'smaps_sample'");
	int64_t id = 0;
	bool have = st && fl_db_step(r->d, st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (!have || !(st = fl_db_prepare(r->d, "SELECT id, time_ns, rss FROM smaps_sample WHERE proc_id = ?1"
						   " ORDER BY rss DESC, time_ns DESC LIMIT 1")))
		return 0;
	sqlite3_bind_int64(st, 1, p->id);
	if (fl_db_step(r->d, st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		*t = sqlite3_column_int64(st, 1);
		*rss = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return id;
}

/*
 * The answer first: the regions (VMAs as the kernel keeps them) holding the
 * most resident bytes at p's RSS peak sample, with who made the largest
 * part of each, printed as `faultline why` prints them (why.c), which
 * breaks each region down in full.  Reservations (---p) hold nothing
 * resident, so they never rank here.
 */
static int proc_resident(struct report *r, const struct fl_proc *p)
{
	int64_t t = 0, total = 0, id = peak_sample(r, p, &t, &total);
	char when[32], size[32];
	int rc;
	if (!id) {
		if (r->j) {
			fl_json_key(r->j, "resident");
			fl_json_null(r->j);
		}
		return 0;
	}
	if (r->j) {
		fl_json_key(r->j, "resident");
		fl_json_open(r->j, '{');
		fl_json_key(r->j, "time_s");
		fl_json_real(r->j, (double)(t - r->d->start_ns) / 1e9);
		fl_json_kint(r->j, "rss", total);
	} else {
		printf("  resident %s at %s (smaps); top regions (`faultline why --pid %" PRId64 "` breaks them down):\n",
		       fl_out_size(size, sizeof(size), total), fl_out_reltime(when, sizeof(when), t - r->d->start_ns),
		       p->pid);
	}
	/* before the regions, as why says it: their "not in live blocks" lines read differently after it */
	fl_why_heap_peak(r->d, r->j, p->id, p->pid, id, 2);
	rc = fl_why_regions(r->d, r->j, id, p->id, total,
			    &(struct fl_why_view){ .top = r->top, .groups = 1, .frames = 1, .indent = 2 });
	if (r->j)
		fl_json_close(r->j, '}');
	return rc;
}

/* fl_vma_peak's answer, as summary.c wrote it. */
static int peak_of(struct report *r, const struct fl_proc *p, int64_t *t, int64_t *bytes)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT peak_ns, peak_mapped FROM proc_summary"
					       " WHERE proc_id = ? AND peak_ns IS NOT NULL");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	if ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		*t = sqlite3_column_int64(st, 0);
		*bytes = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : rc == SQLITE_ROW;
}

static int proc_peak(struct report *r, const struct fl_proc *p)
{
	int64_t t = 0, bytes = 0;
	struct fl_vma *vmas = NULL;
	int n = 0, shown = 0, has = peak_of(r, p, &t, &bytes), rc = 0;
	char when[32], size[32];
	struct fl_table tab;

	struct peak_region *g = NULL;
	int ng = 0;

	/* reservations (---p) are address space, not memory: they sort last and are never listed */
	if (has > 0 && (r->j || r->pieces))
		n = fl_vma_select(r->d, p->id, t, false, "v.prot = 0, v.end - v.start DESC, v.start", r->top, &vmas);
	else if (has > 0)
		n = fl_vma_select(r->d, p->id, t, false, "v.start, v.id", 0, &vmas);
	while (shown < n && vmas[shown].prot != 0)
		shown++;
	if (has < 0 || n < 0 || (has > 0 && !r->j && !r->pieces && (ng = peak_regions(vmas, n, &g)) < 0)) {
		fl_vma_free(vmas, n > 0 ? n : 0);
		return -1;
	}
	if (r->j) {
		fl_json_key(r->j, "peak");
		if (!has) {
			fl_json_null(r->j);
			return 0;
		}
		fl_json_open(r->j, '{');
		fl_json_kint(r->j, "time_ns", t);
		fl_json_key(r->j, "time_s");
		fl_json_real(r->j, (double)(t - r->d->start_ns) / 1e9);
		fl_json_kint(r->j, "mapped", bytes);
		fl_json_key(r->j, "vmas");
		fl_json_open(r->j, '[');
		for (int i = 0; i < shown; i++)
			fl_vma_json(r->d, r->j, &vmas[i]);
		fl_json_close(r->j, ']');
		fl_json_close(r->j, '}');
	} else if (!has) {
		printf("  peak     no mappings recorded\n");
	} else {
		printf("  peak     %s mapped at %s; largest %s then:\n", fl_out_size(size, sizeof(size), bytes),
		       fl_out_reltime(when, sizeof(when), t - r->d->start_ns), r->pieces ? "VMAs" : "regions");
		fl_table_init(&tab, 6, 1u << 1);
		for (int i = 0; r->pieces && i < shown && !rc; i++)
			rc = peak_vma_text(r, &tab, &vmas[i], 1);
		for (int i = 0; !r->pieces && i < ng && i < r->top && !rc; i++)
			rc = peak_vma_text(r, &tab, &vmas[g[i].first], g[i].n);
		fl_table_print(&tab, stdout, 4);
		fl_table_free(&tab);
	}
	free(g);
	fl_vma_free(vmas, n);
	return rc;
}

static int proc_json_head(struct report *r, const struct fl_proc *p, int depth)
{
	char status[64];

	fl_json_open(r->j, '{');
	fl_json_kint(r->j, "id", p->id);
	fl_json_kint(r->j, "pid", p->pid);
	fl_json_opt(r->j, "ppid", p->ppid);
	fl_json_opt(r->j, "parent_id", p->parent_id);
	fl_json_kint(r->j, "depth", depth);
	fl_json_kstr(r->j, "exe", p->exe);
	argv_json(r, "argv", p->argv);
	fl_json_kint(r->j, "start_ns", p->start_ns);
	fl_json_opt(r->j, "end_ns", p->end_ns);
	fl_json_opt(r->j, "exit_code", p->exit_code);
	fl_json_opt(r->j, "exit_signal", p->exit_signal);
	fl_json_kstr(r->j, "status", fl_proc_status(p, status, sizeof(status)));
	fl_json_key(r->j, "shim");
	fl_json_bool(r->j, p->shim);
	fl_json_opt(r->j, "min_flt", p->min_flt);
	fl_json_opt(r->j, "maj_flt", p->maj_flt);
	return 0;
}

/* Resident memory at its peak (sum of anon, file and shmem), from the rss samples. */
static int proc_rss(struct report *r, const struct fl_proc *p)
{
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT time_ns, anon, file, shmem, swap, (SELECT count(*) FROM rss WHERE proc_id = ?1), source"
		" FROM rss WHERE proc_id = ?1 ORDER BY anon + file + shmem DESC, time_ns LIMIT 1");
	char t[32], total[32], a[32], f[32], sh[32];
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	rc = fl_db_step(r->d, st);
	if (rc == SQLITE_ROW) {
		int64_t anon = sqlite3_column_int64(st, 1), file = sqlite3_column_int64(st, 2);
		int64_t shmem = sqlite3_column_int64(st, 3);

		if (r->j) {
			fl_json_key(r->j, "rss_peak");
			fl_json_open(r->j, '{');
			fl_json_kcol(r->j, "time_ns", st, 0);
			fl_json_kint(r->j, "total", anon + file + shmem);
			fl_json_kcol(r->j, "anon", st, 1);
			fl_json_kcol(r->j, "file", st, 2);
			fl_json_kcol(r->j, "shmem", st, 3);
			fl_json_kcol(r->j, "swap", st, 4);
			fl_json_kcol(r->j, "samples", st, 5);
			fl_json_kcol(r->j, "source", st, 6);
			fl_json_close(r->j, '}');
		} else {
			printf("  rss      peak %s at %s (anon %s, file %s, shmem %s; %lld samples from %s)\n",
			       fl_out_size(total, sizeof(total), anon + file + shmem),
			       fl_out_reltime(t, sizeof(t), sqlite3_column_int64(st, 0) - r->d->start_ns),
			       fl_out_size(a, sizeof(a), anon), fl_out_size(f, sizeof(f), file),
			       fl_out_size(sh, sizeof(sh), shmem), (long long)sqlite3_column_int64(st, 5),
			       sqlite3_column_text(st, 6));
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

#define SITE_CALLERS 2   /* callers shown per fault site (text) */

/* The instructions that took the most faults, with their class and callers. */
static int proc_sites(struct report *r, const struct fl_proc *p)
{
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT s.frame_id, s.class, s.count AS n, s.callers_id, s.callers_end FROM site_summary s"
		" WHERE s.proc_id = ? ORDER BY n DESC, s.frame_id, s.class, s.callers_id, s.callers_end LIMIT 3");
	int rc, k = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	if (r->j) {
		fl_json_key(r->j, "fault_sites");
		fl_json_open(r->j, '[');
	}
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		struct fl_frame *f = NULL;
		char where[512];
		const char *end = (const char *)sqlite3_column_text(st, 4);
		int nf = fl_frame_load(r->d, sqlite3_column_int64(st, 0), &f);
		char *callers = fl_callers_label(r->d, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 3),
						 end ? end : "", r->j ? 0 : SITE_CALLERS);

		if (!callers) {
			fl_stack_free(f, nf > 0 ? nf : 0);
			rc = -1;
			break;
		}
		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_kcol(r->j, "class", st, 1);
			fl_json_kcol(r->j, "count", st, 2);
			if (nf > 0) {
				fl_json_key(r->j, "frame");
				fl_frame_json(r->j, f);
			}
			fl_json_kstr(r->j, "callers", callers);
			fl_json_kstr(r->j, "callers_end", end && *end ? end : NULL);
			fl_json_close(r->j, '}');
		} else {
			printf("  %s %s  %lld %s\n  %s   callers %s\n", k++ ? "        " : "sites   ",
			       nf > 0 ? fl_frame_short(f, where, sizeof(where)) : "?",
			       (long long)sqlite3_column_int64(st, 2), sqlite3_column_text(st, 1), "        ", callers);
		}
		free(callers);
		fl_stack_free(f, nf > 0 ? nf : 0);
	}
	sqlite3_finalize(st);
	if (r->j)
		fl_json_close(r->j, ']');
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- heap: who owns the live heap bytes ---------------------------------- */

#define HEAP_SITES 5         /* sites listed per region */
#define HEAP_SITE_FRAMES 2   /* frames shown per site */

/*
 * When to look at the heap: the smaps sample with the most resident bytes
 * (the moment `why` explains; the regions' resident bytes are known then),
 * else the RSS peak if one was recorded, else the process's end.
 */
static int heap_time(struct report *r, const struct fl_proc *p, int64_t *t, bool *at_end, bool *smaps)
{
	int64_t rss;
	sqlite3_stmt *st;
	int rc;

	*at_end = false;
	if ((*smaps = peak_sample(r, p, t, &rss) != 0))
		return 0;
	if (!(st = fl_db_prepare(r->d,
		"SELECT time_ns FROM rss WHERE proc_id = ? ORDER BY anon + file + shmem DESC, time_ns LIMIT 1")))
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	rc = fl_db_step(r->d, st);
	*at_end = rc != SQLITE_ROW;
	*t = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : fl_proc_end(r->d, p);
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static void heap_site_text(const struct fl_heap_shown *s)
{
	char est[64];

	printf("      %-22s %5lld× %s%s%s\n", fl_heap_estimate(est, sizeof(est), s->bytes, s->var), (long long)s->samples,
	       s->lines[0], *s->via ? " via " : "", s->via);
	for (int i = 1; i < s->nlines; i++)
		printf("      %-22s        %s\n", "", s->lines[i]);
}

static int heap_region_text(struct report *r, const struct fl_heap_region *g)
{
	char est[64], a[32], b[32];
	double rest = 0, rest_var = 0;
	int64_t rest_samples = 0;
	struct fl_heap_shown *sh;
	/* sites shown by equal frames are one: each line is a different place */
	int ns = fl_heap_sites_shown(r->d, g->sites, g->nsites, HEAP_SITE_FRAMES, &sh);

	if (ns < 0)
		return -1;
	if (g->end)
		printf("    %-7s %llx-%llx  rw %s", g->kind, (unsigned long long)g->start, (unsigned long long)g->end,
		       fl_out_size(a, sizeof(a), g->mapped_rw));
	else
		printf("    %-7s (no recorded mapping holds these blocks)", g->kind);
	if (g->resident >= 0)
		printf(", resident %s", fl_out_size(b, sizeof(b), g->resident));
	else if (g->touched >= 0)
		printf(", first-touched %s", fl_out_size(b, sizeof(b), g->touched));
	printf(": %s live in %lld samples\n", fl_heap_estimate(est, sizeof(est), g->bytes, g->var), (long long)g->samples);
	for (int i = 0; i < ns; i++) {
		if (i < HEAP_SITES) {
			heap_site_text(&sh[i]);
			continue;
		}
		rest += sh[i].bytes;
		rest_var += sh[i].var;
		rest_samples += sh[i].samples;
	}
	if (ns > HEAP_SITES)
		printf("      %-22s %5lld× %d other sites\n", fl_heap_estimate(est, sizeof(est), rest, rest_var),
		       (long long)rest_samples, ns - HEAP_SITES);
	fl_heap_shown_free(sh, ns);
	/* what the resident pages hold beyond the live blocks the samples stand for */
	if (g->resident >= 0 && g->resident >= g->bytes)
		printf("      %-22s        not in live blocks: allocator overhead, free chunks\n",
		       fl_heap_estimate(est, sizeof(est), (double)g->resident - g->bytes, g->var));
	else if (g->resident >= 0)
		printf("      %-22s        less: live blocks not resident (never touched, or swapped out)\n",
		       fl_heap_estimate(est, sizeof(est), g->bytes - (double)g->resident, g->var));
	return 0;
}

static void heap_json(struct report *r, const struct fl_heap_view *v, bool at_end)
{
	fl_json_key(r->j, "heap");
	fl_json_open(r->j, '{');
	fl_json_kint(r->j, "mean", v->mean);
	fl_json_kint(r->j, "time_ns", v->t);
	fl_json_key(r->j, "at_end");
	fl_json_bool(r->j, at_end);
	fl_json_key(r->j, "live");
	fl_json_real(r->j, v->bytes);
	fl_json_key(r->j, "err95");
	fl_json_real(r->j, fl_heap_err95(v->var));
	fl_json_kint(r->j, "samples", v->samples);
	fl_json_key(r->j, "regions");
	fl_json_open(r->j, '[');
	for (int i = 0; i < v->nregions; i++) {
		const struct fl_heap_region *g = &v->regions[i];
		fl_json_open(r->j, '{');
		fl_json_kstr(r->j, "kind", g->kind);
		fl_json_kint(r->j, "start", g->start);
		fl_json_kint(r->j, "end", g->end);
		fl_json_kint(r->j, "mapped_rw", g->mapped_rw);
		fl_json_key(r->j, "touched");
		if (g->touched >= 0)
			fl_json_int(r->j, g->touched);
		else
			fl_json_null(r->j);
		fl_json_key(r->j, "resident");
		if (g->resident >= 0)
			fl_json_int(r->j, g->resident);
		else
			fl_json_null(r->j);
		fl_json_key(r->j, "live");
		fl_json_real(r->j, g->bytes);
		fl_json_key(r->j, "err95");
		fl_json_real(r->j, fl_heap_err95(g->var));
		fl_json_kint(r->j, "samples", g->samples);
		fl_json_key(r->j, "sites");
		fl_json_open(r->j, '[');
		for (int k = 0; k < g->nsites; k++) {
			fl_json_open(r->j, '{');
			fl_json_kint(r->j, "stack_id", g->sites[k].stack_id);
			fl_json_key(r->j, "live");
			fl_json_real(r->j, g->sites[k].bytes);
			fl_json_key(r->j, "err95");
			fl_json_real(r->j, fl_heap_err95(g->sites[k].var));
			fl_json_kint(r->j, "samples", g->sites[k].samples);
			fl_json_close(r->j, '}');
		}
		fl_json_close(r->j, ']');
		fl_json_close(r->j, '}');
	}
	fl_json_close(r->j, ']');
	fl_json_close(r->j, '}');
}

/* The live heap at the resident peak by region and allocating site (sampled malloc tracking). */
static int proc_heap(struct report *r, const struct fl_proc *p)
{
	struct fl_heap_view v;
	char when[32], est[64], mean[32];
	int64_t t;
	bool at_end, smaps;
	int has;

	if (!p->shim || heap_time(r, p, &t, &at_end, &smaps))
		return p->shim ? -1 : 0;
	if ((has = fl_heap_view_load(r->d, p->id, t, at_end, &v)) <= 0)
		return has;
	if (r->j) {
		heap_json(r, &v, at_end);
	} else {
		printf("  heap     %s %s: %s live in %lld sampled blocks (",
		       at_end ? "at its end" : smaps ? "at the resident peak (smaps)" : "at the RSS peak",
		       fl_out_reltime(when, sizeof(when), t - r->d->start_ns), fl_heap_estimate(est, sizeof(est), v.bytes, v.var),
		       (long long)v.samples);
		if (v.mean == 1)
			printf("every allocation recorded)\n");
		else
			printf("one per %s allocated on average; ± is 95%%)\n", fl_out_size(mean, sizeof(mean), v.mean));
		for (int i = 0; i < v.nregions && i < r->top; i++)
			if (heap_region_text(r, &v.regions[i])) {
				fl_heap_view_free(&v);
				return -1;
			}
	}
	fl_heap_view_free(&v);
	return 0;
}

/*
 * Which processes get their own section: the one --pid names, else all of
 * them, or in a run with more than PROC_DETAIL processes the PROC_DETAIL
 * with the highest peak RSS (the ranking above the tree says which).
 */
static int detail_pick(struct report *r, bool *detail)
{
	sqlite3_stmt *st;
	int rc, n = 0;
	for (int i = 0; i < r->nprocs; i++) {
		detail[i] = r->pid ? r->procs[i].pid == r->pid : r->all || r->nprocs <= PROC_DETAIL;
		n += detail[i];
	}
	if (r->pid && !n) {
		fprintf(stderr, "faultline report: %s: no process with pid %" PRId64 "\n", r->d->path, r->pid);
		return -1;
	}
	if (n)
		return 0;
	st = fl_db_prepare(r->d, "SELECT p.id FROM process p LEFT JOIN rss s ON s.proc_id = p.id GROUP BY p.id"
				 " ORDER BY max(s.anon + s.file + s.shmem) DESC NULLS LAST, p.id LIMIT ?1");
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, PROC_DETAIL);
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		int i = proc_index(r, sqlite3_column_int64(st, 0));
		if (i >= 0)
			detail[i] = true;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * The fault-total invariant proc_faults checks, for the processes not
 * detailed: a mismatch anywhere is said, not only in the top ten.  Returns
 * 0 or -1.
 */
static int mismatches_hidden(struct report *r, const bool *detail)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT nrows, total FROM fault_summary WHERE key = 'process' AND grp = ?");
	int n = 0, rc = 0;
	char pids[256] = "";
	size_t len = 0;

	if (!st)
		return -1;
	if (r->j) {
		fl_json_key(r->j, "fault_totals_mismatch");
		fl_json_open(r->j, '[');
	}
	for (int i = 0; i < r->nprocs && !rc; i++) {
		const struct fl_proc *p = &r->procs[i];
		int64_t rows = 0, total = 0, missing;

		if (detail[i] || !p->min_flt.set || !p->maj_flt.set)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, p->id);
		if ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
			rows = sqlite3_column_int64(st, 0);
			total = sqlite3_column_int64(st, 1);
		}
		rc = rc < 0 ? -1 : 0;
		missing = p->min_flt.v + p->maj_flt.v - total - p->min_flt_before.v - p->maj_flt_before.v -
			  p->min_flt_gup.v - p->maj_flt_gup.v;
		if (rc || (!rows && !r->has_faults) || !missing)
			continue;
		n++;
		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_kint(r->j, "pid", p->pid);
			fl_json_kint(r->j, "unclassified", missing);
			fl_json_close(r->j, '}');
		} else if (len < sizeof(pids) - 64) {
			len += (size_t)snprintf(pids + len, sizeof(pids) - len, "%s%" PRId64 " (%+lld)", n > 1 ? ", " : "",
						p->pid, (long long)missing);
		} else if (len < sizeof(pids) - 4) {
			len += (size_t)snprintf(pids + len, sizeof(pids) - len, ", ...");
			len = sizeof(pids);  /* said once */
		}
	}
	sqlite3_finalize(st);
	if (r->j)
		fl_json_close(r->j, ']');
	else if (n)
		printf("MISMATCH   the kernel's fault totals differ from the classified ones in %d process%s not shown above"
		       " (pid and faults in no class; negative: counted twice): %s; --pid P shows one\n",
		       n, n == 1 ? "" : "es", pids);
	return rc;
}

static int section_processes(struct report *r)
{
	int n = tree_build(r), rc = 0, shown = 0;
	bool *detail = calloc((size_t)r->nprocs + 1, sizeof(bool));

	if (n < 0 || !detail || detail_pick(r, detail)) {
		free(detail);
		return -1;
	}
	if (!r->pid && r->nprocs > 1 && !r->j) {
		printf("\n");
		if (fl_why_processes(r->d, NULL, NULL, PROC_DETAIL, 0) < 0)
			rc = -1;
	}
	if (r->j) {
		if (!r->pid && fl_why_processes(r->d, r->j, "processes_by_rss", PROC_DETAIL, 0) < 0)
			rc = -1;
		fl_json_key(r->j, "processes");
		fl_json_open(r->j, '[');
	} else if (!r->pid && tree_text(r, n)) {
		rc = -1;
	}
	for (int k = 0; k < n && !rc; k++) {
		const struct fl_proc *p = &r->procs[r->order[k]];

		if (!detail[r->order[k]])
			continue;
		shown++;
		if (r->j)
			proc_json_head(r, p, r->depth[k]);
		else
			printf("\nprocess %" PRId64 " %s\n", p->pid, p->exe ? p->exe : "?");
		rc = proc_resident(r, p) || proc_calls(r, p) || proc_faults(r, p) || proc_own(r, p) ||
		     proc_sites(r, p) || proc_rss(r, p) || proc_heap(r, p) ||
		     proc_peak(r, p) ? -1 : 0;
		if (r->j)
			fl_json_close(r->j, '}');
	}
	if (r->j)
		fl_json_close(r->j, ']');
	else if (!rc && shown < r->nprocs && !r->pid)
		printf("\n%d more processes, smaller at their peak: --pid P shows one, --all every one\n",
		       r->nprocs - shown);
	if (!rc && !r->pid)
		rc = mismatches_hidden(r, detail);
	free(detail);
	return rc;
}

/* ---- messages ---------------------------------------------------------- */

static int section_messages(struct report *r)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT time_ns, pid, text FROM message ORDER BY time_ns, id");
	int rc, n = 0;
	char when[32], pid[32];

	if (!st)
		return -1;
	if (r->j) {
		fl_json_key(r->j, "messages");
		fl_json_open(r->j, '[');
	} else {
		printf("\nmessages\n");
	}
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		n++;
		if (r->j) {
			fl_json_open(r->j, '{');
			fl_json_kcol(r->j, "time_ns", st, 0);
			fl_json_kcol(r->j, "pid", st, 1);
			fl_json_kcol(r->j, "text", st, 2);
			fl_json_close(r->j, '}');
			continue;
		}
		snprintf(pid, sizeof(pid), sqlite3_column_type(st, 1) == SQLITE_NULL ? "[-]" : "[%lld]",
			 (long long)sqlite3_column_int64(st, 1));
		printf("  %s  %s  %s\n", fl_out_reltime(when, sizeof(when), sqlite3_column_int64(st, 0) - r->d->start_ns),
		       pid, sqlite3_column_text(st, 2));
	}
	sqlite3_finalize(st);
	if (r->j)
		fl_json_close(r->j, ']');
	else if (!n && rc == SQLITE_DONE)
		printf("  none\n");
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the command ------------------------------------------------------- */

/* As measure.c decides it: an eBPF recording, whose processes all have fault figures. */
static int has_faults(struct report *r)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT fidelity = 'bpf' OR EXISTS (SELECT 1 FROM fault) FROM run");
	int rc = st ? fl_db_step(r->d, st) : -1;

	r->has_faults = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static int on_option(void *ctx, int c, const char *arg)
{
	struct report *r = ctx;
	char *end;

	if (c == 'a' || c == 'P') {
		*(c == 'a' ? &r->all : &r->pieces) = true;
		return -1;
	}
	if (c == 'p') {
		r->pid = strtoll(arg, &end, 10);
		if (*end || r->pid <= 0)
			return fl_cli_usage_error(&(struct fl_cli){ .usage = USAGE }, "--pid wants a pid, not '%s'", arg);
		return -1;
	}
	if (c != 't')
		return 2;
	r->top = (int)strtol(arg, &end, 10);
	if (*end || r->top < 1)
		return fl_cli_usage_error(&(struct fl_cli){ .usage = USAGE },
					  "--top wants a positive number, not '%s'", arg);
	return -1;
}

int fl_cmd_report(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS, { "top", required_argument, NULL, 't' },
						 { "pid", required_argument, NULL, 'p' },
						 { "all", no_argument, NULL, 'a' },
						 { "pieces", no_argument, NULL, 'P' }, { 0 } };
	struct fl_cli cli = { .usage = USAGE };
	struct report r = { .top = 5 };
	struct fl_json j;
	struct fl_db d;
	int rc = fl_cli_parse(&cli, argc, argv, ":h", options, on_option, &r);

	if (rc >= 0)
		return rc;
	if ((rc = fl_cli_open_recording(&cli, argc, argv, &d)) >= 0)
		return rc;
	r.d = &d;
	if (cli.json) {
		fl_json_init(&j, stdout);
		r.j = &j;
		fl_json_open(&j, '{');
	}
	r.nprocs = fl_proc_load(&d, &r.procs);
	rc = r.nprocs < 0 || fl_summary_ready(&d, FL_SUM_ALL) || has_faults(&r) || section_run(&r) || section_features(&r) || section_losses(&r) || section_processes(&r) ||
	     section_messages(&r);
	if (cli.json && !rc)
		fl_json_close(&j, '}');
	fl_proc_free(r.procs, r.nprocs > 0 ? r.nprocs : 0);
	free(r.order);
	free(r.depth);
	free(r.seen);
	fl_db_close(&d);
	return rc ? 1 : 0;
}
