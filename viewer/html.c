/* SPDX-License-Identifier: MIT */
/*
 * html.c - `faultline html FILE -o report.html`: one self-contained page
 * (no network: its CSS and drawing code are embedded from
 * viewer/html/report.html) with the recording's numbers as JSON.
 *
 * The page draws RSS stacked over time, the fault rate by class, the
 * breakdown at the peak (exactly what `why --format json` prints, embedded
 * as its own script element), the regions, the process tree and the losses.
 * The charts are downsampled (TIMELINE_BINS bins, each at its highest
 * instant, series.h); every total is computed here from every row.  The
 * recording is hostile input: every '<' of the JSON is written as \u003c,
 * so no string in it can end the script element that holds it.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "measure.h"
#include "output.h"
#include "report_html.h"
#include "rows.h"
#include "series.h"
#include "summary.h"
#include "viewer.h"

#define USAGE "html FILE -o OUT.html [--pid P]"
#define TIMELINE_BINS 600
#define TOP_SERIES 8
#define MAX_REGIONS FL_SUM_TOP_REGIONS
#define WHY_TOP 10      /* regions in the breakdown at the peak: why's default */

struct opts {
	struct fl_cli cli;
	const char *out;
	int64_t pid;
};

static int on_option(void *ctx, int c, const char *arg)
{
	struct opts *o = ctx;
	char *end;

	if (c == 'o') {
		o->out = arg;
		return -1;
	}
	if (c == 'p') {
		o->pid = strtoll(arg, &end, 10);
		if (*end || o->pid <= 0)
			return fl_cli_usage_error(&o->cli, "--pid wants a process id, not '%s'", arg);
		return -1;
	}
	return 2;
}

static int run_json(struct fl_db *d, struct fl_json *j)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT * FROM run");
	int rc = st ? fl_db_step(d, st) : -1;

	fl_json_key(j, "run");
	fl_json_open(j, '{');
	fl_json_kstr(j, "file", d->path);
	fl_json_kint(j, "duration_ns", d->end_ns - d->start_ns);
	for (int i = 0; rc == SQLITE_ROW && i < sqlite3_column_count(st); i++)
		fl_json_kcol(j, sqlite3_column_name(st, i), st, i);
	fl_json_close(j, '}');
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static void timeline_json(struct fl_json *j, const char *key, const struct fl_timeline *t)
{
	fl_json_key(j, key);
	fl_json_open(j, '{');
	fl_json_kint(j, "start_ns", t->t0);
	fl_json_kint(j, "end_ns", t->t1);
	fl_json_kint(j, "peak_bytes", t->peak);
	fl_json_kint(j, "peak_ns", t->peak_t);
	fl_json_kint(j, "samples", t->nsamples);
	fl_json_key(j, "series");
	fl_json_open(j, '[');
	for (int s = 0; s < t->nseries; s++) {
		fl_json_open(j, '{');
		fl_json_kstr(j, "name", t->series[s].name);
		fl_json_kint(j, "at_peak", t->series[s].at_peak);
		fl_json_kint(j, "peak", t->series[s].peak);
		fl_json_key(j, "bytes");
		fl_json_open(j, '[');
		for (int b = 0; b < t->nbins; b++)
			fl_json_int(j, t->rss[(size_t)b * (size_t)t->nseries + s]);
		fl_json_close(j, ']');
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	fl_json_key(j, "total");
	fl_json_open(j, '[');
	for (int b = 0; b < t->nbins; b++)
		fl_json_int(j, t->total[b]);
	fl_json_close(j, ']');
	fl_json_close(j, '}');
}

static void faults_json(struct fl_json *j, const struct fl_timeline *t)
{
	fl_json_key(j, "faults");
	if (!t->has_faults) {
		fl_json_null(j);
		return;
	}
	fl_json_open(j, '{');
	fl_json_kint(j, "bin_ns", (t->t1 - t->t0) / t->nbins);
	fl_json_key(j, "classes");
	fl_json_open(j, '[');
	for (int c = 0; c < FL_NCLASSES; c++) {
		fl_json_open(j, '{');
		fl_json_kstr(j, "name", fl_class_names[c]);
		fl_json_kint(j, "total", t->fault_total[c]);
		fl_json_key(j, "per_bin");
		fl_json_open(j, '[');
		for (int b = 0; b < t->nbins; b++)
			fl_json_int(j, t->faults[(size_t)b * FL_NCLASSES + c]);
		fl_json_close(j, ']');
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	fl_json_close(j, '}');
}

/* Every process alive at the total's peak: its counters then (they add up to the peak). */
static int peak_json(struct fl_db *d, struct fl_json *j, const struct fl_timeline *t)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT p.pid, p.exe, r.anon, r.file, r.shmem FROM process p JOIN rss r ON r.rowid ="
		" (SELECT rowid FROM rss WHERE proc_id = p.id AND time_ns <= ?1 ORDER BY time_ns DESC, rowid DESC LIMIT 1)"
		" WHERE p.start_ns <= ?1 AND (p.end_ns IS NULL OR p.end_ns > ?1) AND (?2 = 0 OR p.pid = ?2)"
		" ORDER BY r.anon + r.file + r.shmem DESC, p.pid");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, t->peak_t + d->start_ns);
	sqlite3_bind_int64(st, 2, t->pid);
	fl_json_key(j, "peak");
	fl_json_open(j, '{');
	fl_json_kint(j, "bytes", t->peak);
	fl_json_kint(j, "time_ns", t->peak_t);
	fl_json_key(j, "processes");
	fl_json_open(j, '[');
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		fl_json_open(j, '{');
		fl_json_kcol(j, "pid", st, 0);
		fl_json_kcol(j, "exe", st, 1);
		fl_json_kcol(j, "anon", st, 2);
		fl_json_kcol(j, "file", st, 3);
		fl_json_kcol(j, "shmem", st, 4);
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	fl_json_close(j, '}');
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Regions (measure.c) with their faults, the most faulted first; totals over
 * all of them.  From region_summary (summary.c): each process's regions
 * with the most faults, and one row for the rest of them.
 */
static int regions_json(struct fl_db *d, struct fl_json *j, int64_t pid)
{
	char sql[2048] = "SELECT sum(regions), sum(fl_faults)";
	size_t len = strlen(sql);
	sqlite3_stmt *st;
	int rc;

	for (int c = 0; c < FL_NCLASSES; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", sum(r.%s)", fl_class_names[c]);
	snprintf(sql + len, sizeof(sql) - len, " FROM region_summary r JOIN process p ON p.id = r.proc_id"
		 " WHERE (?1 = 0 OR p.pid = ?1)");
	if (!(st = fl_db_prepare(d, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, pid);
	if ((rc = fl_db_step(d, st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return -1;
	}
	int64_t nregions = sqlite3_column_int64(st, 0), fl_total = sqlite3_column_int64(st, 1), total[FL_NCLASSES];
	for (int c = 0; c < FL_NCLASSES; c++)
		total[c] = sqlite3_column_int64(st, 2 + c);
	sqlite3_finalize(st);
	fl_json_key(j, "classes");
	fl_json_open(j, '[');
	for (int c = 0; c < FL_NCLASSES; c++)
		fl_json_str(j, fl_class_names[c]);
	fl_json_close(j, ']');
	fl_json_kint(j, "regions_total", nregions);

	len = (size_t)snprintf(sql, sizeof(sql), "SELECT p.pid, r.label, r.kind, r.funcs, r.faultline, r.fl_faults");
	for (int c = 0; c < FL_NCLASSES; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", r.%s", fl_class_names[c]);
	snprintf(sql + len, sizeof(sql) - len, " FROM region_summary r JOIN process p ON p.id = r.proc_id"
		 " WHERE r.origin_id IS NOT NULL AND (?1 = 0 OR p.pid = ?1)"
		 " ORDER BY r.total DESC, r.origin_id, r.proc_id LIMIT %d", MAX_REGIONS);
	if (!(st = fl_db_prepare(d, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, pid);
	fl_json_key(j, "regions");
	fl_json_open(j, '[');
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		fl_json_open(j, '{');
		fl_json_kcol(j, "pid", st, 0);
		fl_json_kcol(j, "label", st, 1);
		fl_json_kcol(j, "kind", st, 2);
		fl_json_kcol(j, "funcs", st, 3);
		fl_json_key(j, "faultline");
		fl_json_bool(j, sqlite3_column_int(st, 4));
		fl_json_kcol(j, "faultline_faults", st, 5);
		fl_json_key(j, "faults");
		fl_json_open(j, '[');
		for (int c = 0; c < FL_NCLASSES; c++)
			fl_json_int(j, sqlite3_column_int64(st, 6 + c));
		fl_json_close(j, ']');
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	sqlite3_finalize(st);
	fl_json_key(j, "region_faults");
	fl_json_open(j, '[');
	for (int c = 0; c < FL_NCLASSES; c++)
		fl_json_int(j, total[c]);
	fl_json_close(j, ']');
	fl_json_kint(j, "faultline_faults", fl_total);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int processes_json(struct fl_db *d, struct fl_json *j)
{
	struct fl_proc *procs;
	int n = fl_proc_load(d, &procs), rc = 0;
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT rss_peak, calls FROM proc_summary WHERE proc_id = ?");
	char status[128];

	if (n < 0 || !st) {
		sqlite3_finalize(st);
		if (n >= 0)
			fl_proc_free(procs, n);
		return -1;
	}
	fl_json_key(j, "processes");
	fl_json_open(j, '[');
	for (int i = 0; i < n && !rc; i++) {
		const struct fl_proc *p = &procs[i];
		bool known;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, p->id);
		if ((rc = fl_db_step(d, st)) < 0)
			break;
		known = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
		rc = 0;
		fl_json_open(j, '{');
		fl_json_kint(j, "id", p->id);
		fl_json_kint(j, "pid", p->pid);
		fl_json_opt(j, "parent_id", p->parent_id);
		fl_json_kstr(j, "exe", p->exe);
		fl_json_kstr(j, "argv", p->argv);
		fl_json_kint(j, "start_ns", p->start_ns - d->start_ns);
		fl_json_kint(j, "end_ns", fl_proc_end(d, p) - d->start_ns);
		fl_json_kstr(j, "status", fl_proc_status(p, status, sizeof(status)));
		fl_json_opt(j, "min_flt", p->min_flt);
		fl_json_opt(j, "maj_flt", p->maj_flt);
		fl_json_kint(j, "rss_peak", known ? sqlite3_column_int64(st, 0) : -1);
		fl_json_kint(j, "calls", known ? sqlite3_column_int64(st, 1) : 0);
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	sqlite3_finalize(st);
	fl_proc_free(procs, n);
	return rc;
}

static int losses_json(struct fl_db *d, struct fl_json *j)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT cause, count, detail FROM loss WHERE count > 0 ORDER BY count DESC, cause");
	int rc;

	if (!st)
		return -1;
	fl_json_key(j, "losses");
	fl_json_open(j, '[');
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		fl_json_open(j, '{');
		fl_json_kcol(j, "cause", st, 0);
		fl_json_kcol(j, "count", st, 1);
		fl_json_kcol(j, "detail", st, 2);
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The page's data as JSON into *buf. */
static int data_json(struct fl_db *d, int64_t pid, char **buf, size_t *len)
{
	struct fl_timeline by_proc = { 0 }, by_kind = { 0 }, by_region = { 0 };
	struct fl_json j;
	FILE *m = open_memstream(buf, len);
	int rc = -1;

	if (!m)
		return -1;
	fl_json_init(&j, m);
	j.compact = true;
	if (fl_timeline_load(d, FL_BY_PROCESS, pid, TIMELINE_BINS, TOP_SERIES, &by_proc) ||
	    fl_timeline_load_resident(d, FL_BY_KIND, pid, TIMELINE_BINS, TOP_SERIES, &by_kind) ||
	    fl_timeline_load_resident(d, FL_BY_REGION, pid, TIMELINE_BINS, TOP_SERIES, &by_region) ||
	    fl_summary_ready(d, FL_SUM_PROCS))
		goto out;
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "producer", "faultline " FL_VERSION);
	fl_json_key(&j, "pid");
	pid ? fl_json_int(&j, pid) : fl_json_null(&j);
	rc = run_json(d, &j);
	timeline_json(&j, "by_process", &by_proc);
	timeline_json(&j, "by_kind", &by_kind);
	timeline_json(&j, "by_region", &by_region);
	faults_json(&j, &by_proc);
	rc = rc || peak_json(d, &j, &by_proc) || regions_json(d, &j, pid) || processes_json(d, &j) ||
	     losses_json(d, &j);
	fl_json_close(&j, '}');
out:
	fl_timeline_free(&by_proc);
	fl_timeline_free(&by_kind);
	fl_timeline_free(&by_region);
	if (fclose(m))
		rc = -1;
	return rc;
}

/*
 * What `why --format json` says at the peak (of pid), exactly: the page
 * draws its breakdown from this.  *buf is "null" when the recording has no
 * resident-memory sample.
 */
static int why_json(struct fl_db *d, int64_t pid, char **buf, size_t *len)
{
	FILE *m = open_memstream(buf, len);
	int rc;

	if (!m)
		return -1;
	rc = fl_why_json(d, pid, WHY_TOP, m);
	if (fclose(m) || rc < 0) {
		fprintf(stderr, "faultline: %s: cannot read the breakdown at the peak\n", d->path);
		return -1;
	}
	if (rc == 1) { /* what why began to write is not a breakdown */
		free(*buf);
		if (!(*buf = strdup("null")))
			return -1;
	}
	return 0;
}

/* A script element holding JSON, every '<' escaped so that no string in it can end the element. */
static void json_script(FILE *f, const char *id, const char *json)
{
	fprintf(f, "<script id=\"%s\" type=\"application/json\">", id);
	for (const char *s = json; *s; s++)
		if (*s == '<')
			fputs("\\u003c", f);
		else
			fputc(*s, f);
	fputs("</script>\n", f);
}

/* The page: its head, the data, why's breakdown, its tail. */
static int write_page(const char *path, const char *data, const char *why)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	int bad;

	if (!f) {
		fprintf(stderr, "faultline: cannot write %s: %m\n", path);
		return -1;
	}
	fputs(fl_html_head, f);
	json_script(f, "data", data);
	json_script(f, "why", why);
	fputs(fl_html_tail, f);
	bad = ferror(f) | (f == stdout ? fflush(f) : fclose(f));
	if (bad)
		fprintf(stderr, "faultline: cannot write %s\n", path);
	return bad ? -1 : 0;
}

int fl_cmd_html(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' }, { "pid", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	struct opts o = { .cli = { .usage = USAGE } };
	char *data = NULL, *why = NULL;
	size_t len = 0, why_len = 0;
	struct fl_db d;
	int rc = fl_cli_parse(&o.cli, argc, argv, "o:", longopts, on_option, &o);

	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return fl_cli_usage_error(&o.cli, optind >= argc ? "which recording?" : "one recording at a time");
	if (!o.out)
		return fl_cli_usage_error(&o.cli, "where to? -o FILE.html (- for standard output)");
	if (fl_db_open(&d, argv[optind]))
		return 1;
	rc = data_json(&d, o.pid, &data, &len) || why_json(&d, o.pid, &why, &why_len) || write_page(o.out, data, why)
		? 1 : 0;
	free(data);
	free(why);
	fl_db_close(&d);
	return rc;
}
