/* SPDX-License-Identifier: MIT */
/*
 * check.c - `faultline check [LIMITS] (FILE | -- CMD [ARGS...])`: compare a
 * recording (or one made now) with limits and with a baseline recording,
 * print every limit with its measured value and margin, write JUnit XML and
 * JSON for CI, and exit 0 (pass), 1 (a limit exceeded), 2 (usage or input
 * error) or 3 (the target itself failed).  docs/check.md documents the
 * output formats and what each metric counts.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "db.h"
#include "limit.h"
#include "measure.h"
#include "output.h"
#include "record.h"
#include "viewer.h"

#define USAGE "check [--max-rss SIZE] [--max-minor N] [--max-major N] [--max-cow N] [--max-mappings N]\n" \
	"         [--per process|total] [--kind K] [--path GLOB] [--function GLOB] [--exe GLOB]\n" \
	"         [--limits FILE] [--baseline OLD.db [--tolerance 5%|METRIC=P%,...]]\n" \
	"         [--junit FILE] [--format json] (RUN.db | [-o FILE] [--force] [--no-bpf] [--thp=never] -- CMD [ARGS...])"
#define DEFAULT_TOLERANCE 0.05

enum status { ST_PASS, ST_FAIL, ST_NO_MATCH, ST_NO_DATA };
static const char *const status_names[] = { "pass", "FAIL", "FAIL", "error" };

/* One line of the result: a limit or a baseline comparison, and what was measured. */
struct row {
	const struct fl_check *check;
	enum fl_metric metric;
	bool baseline;
	int64_t measured, limit, base;  /* base: the baseline's value (baseline rows) */
	double tol;
	int worst;                      /* per-process scope: index of the worst process, -1 */
	int matched;                    /* processes the selector matched */
	enum status status;
};

struct checker {
	struct fl_cli cli;
	struct fl_limits limits;
	int cmdline;                    /* index of the check the options describe, -1 if none */
	const char *baseline_path, *junit_path, *output;
	bool force, no_bpf, thp_never;
	const char *depth;
	struct fl_run run, base;
	struct row *rows;
	int nrows;
	int exit_status;                /* the recording's, -1 unknown */
};

/* ---- options --------------------------------------------------------------- */

/* The options that describe the command line's check, by their getopt value - KEY_BASE. */
#define KEY_BASE 1000
static const char *const check_keys[] = { "max-rss", "max-minor", "max-major", "max-cow", "max-mappings",
					  "per", "kind", "path", "function", "exe" };

static const struct option options[] = {
	FL_CLI_COMMON_OPTIONS,
	{ "max-rss", required_argument, NULL, KEY_BASE + 0 }, { "max-minor", required_argument, NULL, KEY_BASE + 1 },
	{ "max-major", required_argument, NULL, KEY_BASE + 2 }, { "max-cow", required_argument, NULL, KEY_BASE + 3 },
	{ "max-mappings", required_argument, NULL, KEY_BASE + 4 }, { "per", required_argument, NULL, KEY_BASE + 5 },
	{ "kind", required_argument, NULL, KEY_BASE + 6 }, { "path", required_argument, NULL, KEY_BASE + 7 },
	{ "function", required_argument, NULL, KEY_BASE + 8 }, { "exe", required_argument, NULL, KEY_BASE + 9 },
	{ "limits", required_argument, NULL, 'l' }, { "baseline", required_argument, NULL, 'b' },
	{ "tolerance", required_argument, NULL, 't' }, { "junit", required_argument, NULL, 'j' },
	{ "output", required_argument, NULL, 'o' }, { "force", no_argument, NULL, 'f' },
	{ "no-bpf", no_argument, NULL, 'n' }, { "depth", required_argument, NULL, 'd' },
	{ "thp", required_argument, NULL, 'T' },
	{ 0 }
};

static int on_option(void *ctx, int c, const char *arg)
{
	struct checker *k = ctx;
	char err[512];

	if (c >= KEY_BASE && c < KEY_BASE + (int)(sizeof(check_keys) / sizeof(check_keys[0]))) {
		if (k->cmdline < 0) {
			if (!fl_limits_add(&k->limits, "command line", 0))
				return fl_cli_usage_error(&k->cli, "out of memory");
			k->cmdline = k->limits.n - 1;
		}
		if (fl_check_set(&k->limits.checks[k->cmdline], check_keys[c - KEY_BASE], arg, err, sizeof(err)))
			return fl_cli_usage_error(&k->cli, "--%s", err);
		return -1;
	}
	switch (c) {
	case 'l':
		if (fl_limits_read(&k->limits, arg, err, sizeof(err)))
			return fl_cli_usage_error(&k->cli, "%s", err);
		return -1;
	case 'b':
		k->baseline_path = arg;
		return -1;
	case 't':
		if (fl_limits_tolerance(&k->limits, arg, err, sizeof(err)))
			return fl_cli_usage_error(&k->cli, "%s", err);
		return -1;
	case 'j':
		k->junit_path = arg;
		return -1;
	case 'o':
		k->output = arg;
		return -1;
	case 'f':
		k->force = true;
		return -1;
	case 'n':
		k->no_bpf = true;
		return -1;
	case 'd':
		k->depth = arg;
		return -1;
	case 'T':
		if (strcmp(arg, "never"))
			return fl_cli_usage_error(&k->cli, "--thp takes 'never', not '%s'", arg);
		k->thp_never = true;
		return -1;
	}
	return 2;
}

/* ---- measuring -------------------------------------------------------------- */

/* Metric m of run r over the check's selection: in total, or its worst process. */
static int64_t measure(const struct fl_run *r, const struct fl_check *c, enum fl_metric m, int *worst, int *matched)
{
	int64_t best = -1, v;

	*worst = -1;
	*matched = 0;
	for (int p = 0; p < r->nprocs; p++)
		*matched += fl_sel_proc(&c->sel, &r->procs[p]);
	if (c->scope == FL_SCOPE_TOTAL)
		return fl_run_metric(r, &c->sel, m);
	for (int p = 0; p < r->nprocs; p++) {
		if (!fl_sel_proc(&c->sel, &r->procs[p]))
			continue;
		if ((v = fl_proc_metric(r, p, &c->sel, m)) < 0)
			return v;
		if (v > best) {
			best = v;
			*worst = p;
		}
	}
	return best < 0 ? 0 : best;
}

static struct row *add_row(struct checker *k, const struct fl_check *c, enum fl_metric m, bool baseline)
{
	struct row *grown = realloc(k->rows, (size_t)(k->nrows + 1) * sizeof(*grown)), *row;

	if (!grown)
		return NULL;
	k->rows = grown;
	row = &k->rows[k->nrows++];
	*row = (struct row){ .check = c, .metric = m, .baseline = baseline, .base = -1, .worst = -1 };
	row->measured = measure(&k->run, c, m, &row->worst, &row->matched);
	if (row->measured < 0)
		row->status = ST_NO_DATA;
	else if (!row->matched)
		row->status = ST_NO_MATCH;
	return row;
}

static void judge(struct row *row)
{
	if (row->status == ST_PASS)
		row->status = row->measured <= row->limit ? ST_PASS : ST_FAIL;
}

/* A baseline comparison of check c's metric m: at most the baseline's value plus the tolerance. */
static int add_baseline_row(struct checker *k, const struct fl_check *c, enum fl_metric m)
{
	struct row *row = add_row(k, c, m, true);
	int worst, matched;

	if (!row)
		return -1;
	row->tol = k->limits.tol_set[m] ? k->limits.tol[m] : DEFAULT_TOLERANCE;
	row->base = measure(&k->base, c, m, &worst, &matched);
	if (row->base < 0) {
		row->status = ST_NO_DATA;
		return 0;
	}
	row->limit = (int64_t)floor((double)row->base * (1 + row->tol) + 1e-9);
	judge(row);
	return 0;
}

/* The baseline's own check: every metric of the whole run (major faults only with a tolerance
 * given for them: they depend on the page cache). */
static struct fl_check baseline_totals = { .name = "totals" };

/* Whether a check already compares metric m of the whole run with the baseline. */
static bool compared_in_total(const struct checker *k, enum fl_metric m)
{
	for (int i = 0; i < k->nrows; i++) {
		const struct fl_check *c = k->rows[i].check;

		if (k->rows[i].baseline && k->rows[i].metric == m && c->scope == FL_SCOPE_TOTAL && !c->sel.exe &&
		    !fl_sel_region_part(&c->sel))
			return true;
	}
	return false;
}

static int evaluate(struct checker *k)
{
	for (int i = 0; i < k->limits.n; i++) {
		const struct fl_check *c = &k->limits.checks[i];

		for (int m = 0; m < FL_NMETRICS; m++) {
			struct row *row;

			if (!c->has[m])
				continue;
			if (!(row = add_row(k, c, m, false)))
				return -1;
			row->limit = c->max[m];
			judge(row);
			if (k->baseline_path && add_baseline_row(k, c, m))
				return -1;
		}
	}
	if (!k->baseline_path)
		return 0;
	for (int m = 0; m < FL_NMETRICS; m++)
		if (m != FL_M_calls && (m != FL_M_major || k->limits.tol_set[m]) && !compared_in_total(k, m) &&
		    add_baseline_row(k, &baseline_totals, m))
			return -1;
	return 0;
}

/* ---- text -------------------------------------------------------------------- */

static const char *value_text(enum fl_metric m, int64_t v, char *buf, size_t n)
{
	if (m == FL_M_rss)
		return fl_out_size(buf, n, v);
	snprintf(buf, n, "%" PRId64, v);
	return buf;
}

/* What a row says beyond its numbers: the worst process, the baseline, why it could not be judged. */
static const char *row_note(const struct checker *k, const struct row *row, char *buf, size_t n)
{
	char base[32];
	size_t len = 0;

	buf[0] = '\0';
	if (row->status == ST_NO_DATA)
		return snprintf(buf, n, "%s holds no %s numbers (recorded without eBPF?)",
				row->base < 0 && row->baseline ? k->baseline_path : k->run.d->path,
				fl_metric_names[row->metric]), buf;
	if (row->status == ST_NO_MATCH)
		return snprintf(buf, n, "no process matched exe=%s", row->check->sel.exe), buf;
	if (row->baseline)
		len += (size_t)snprintf(buf, n, "baseline %s + %g%%", value_text(row->metric, row->base, base, sizeof(base)),
					row->tol * 100);
	if (row->worst >= 0 && len < n)
		snprintf(buf + len, n - len, "%sworst: pid %" PRId64 " %s", len ? ", " : "", k->run.procs[row->worst].pid,
			 k->run.procs[row->worst].exe);
	return buf;
}

static void print_text(const struct checker *k, int failed, int errors)
{
	struct fl_table t;
	int64_t minor, major, calls;

	printf("faultline check: %s", k->run.d->path);
	if (k->baseline_path)
		printf(" against baseline %s", k->baseline_path);
	printf("\n\n");
	fl_table_init(&t, 9, (1u << 4) | (1u << 5) | (1u << 6));
	fl_table_add(&t, (const char *[]){ "check", "selects", "metric", "per", "measured", "limit", "margin",
					   "result", "" });
	fl_table_rule(&t);
	for (int i = 0; i < k->nrows; i++) {
		const struct row *row = &k->rows[i];
		char name[300], sel[512], measured[32], limit[32], margin[32], note[1024];
		bool judged = row->status == ST_PASS || row->status == ST_FAIL;

		fl_sel_text(&row->check->sel, sel, sizeof(sel));
		if (row->status != ST_NO_DATA)
			value_text(row->metric, row->measured, measured, sizeof(measured));
		if (row->status != ST_NO_DATA || !row->baseline || row->base >= 0)
			value_text(row->metric, row->limit, limit, sizeof(limit));
		if (judged)
			value_text(row->metric, row->limit - row->measured, margin, sizeof(margin));
		snprintf(name, sizeof(name), "%s%s", row->check->name, row->baseline ? " vs baseline" : "");
		fl_table_add(&t, (const char *[]){ name, sel, fl_metric_names[row->metric],
			row->check->scope == FL_SCOPE_PROCESS ? "process" : "total",
			row->status == ST_NO_DATA ? "?" : measured, row->status == ST_NO_DATA ? "?" : limit,
			judged ? margin : "", status_names[row->status], row_note(k, row, note, sizeof(note)) });
	}
	fl_table_print(&t, stdout, 0);
	fl_table_free(&t);
	fl_run_footprint(&k->run, &minor, &major, &calls);
	printf("\nfaultline's own footprint, left out of every number above: %" PRId64 " minor faults, %" PRId64
	       " major, %" PRId64 " calls\n", minor, major, calls);
	if (k->exit_status > 0)
		printf("the target failed: it exited with status %d; its numbers may not be comparable\n",
		       k->exit_status);
	if (errors)
		printf("result: ERROR, %d of %d limits could not be checked\n", errors, k->nrows);
	else if (failed)
		printf("result: FAIL, %d of %d limits exceeded\n", failed, k->nrows);
	else
		printf("result: pass, %d limits\n", k->nrows);
}

/* ---- JSON (docs/check.md: format "faultline-check", version 1) ----------------- */

static void selector_json(struct fl_json *j, const struct fl_selector *s)
{
	fl_json_key(j, "selector");
	fl_json_open(j, '{');
	fl_json_kstr(j, "kind", s->kind);
	fl_json_kstr(j, "path", s->path);
	fl_json_kstr(j, "function", s->function);
	fl_json_kstr(j, "exe", s->exe);
	fl_json_close(j, '}');
}

static void print_json(const struct checker *k, const char *result)
{
	struct fl_json j;
	int64_t minor, major, calls;

	fl_json_init(&j, stdout);
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "format", "faultline-check");
	fl_json_kint(&j, "version", 1);
	fl_json_kstr(&j, "file", k->run.d->path);
	fl_json_kstr(&j, "baseline", k->baseline_path);
	fl_json_kstr(&j, "result", result);
	fl_json_key(&j, "target_exit_status");
	k->exit_status >= 0 ? fl_json_int(&j, k->exit_status) : fl_json_null(&j);
	fl_run_footprint(&k->run, &minor, &major, &calls);
	fl_json_key(&j, "faultline_footprint");
	fl_json_open(&j, '{');
	fl_json_kint(&j, "minor", minor);
	fl_json_kint(&j, "major", major);
	fl_json_kint(&j, "calls", calls);
	fl_json_close(&j, '}');
	fl_json_key(&j, "limits");
	fl_json_open(&j, '[');
	for (int i = 0; i < k->nrows; i++) {
		const struct row *row = &k->rows[i];
		bool judged = row->status == ST_PASS || row->status == ST_FAIL;

		fl_json_open(&j, '{');
		fl_json_kstr(&j, "check", row->check->name);
		fl_json_kint(&j, "line", row->check->line);
		fl_json_kstr(&j, "type", row->baseline ? "baseline" : "limit");
		fl_json_kstr(&j, "metric", fl_metric_names[row->metric]);
		fl_json_kstr(&j, "per", row->check->scope == FL_SCOPE_PROCESS ? "process" : "total");
		selector_json(&j, &row->check->sel);
		fl_json_key(&j, "measured");
		row->status != ST_NO_DATA ? fl_json_int(&j, row->measured) : fl_json_null(&j);
		fl_json_key(&j, "limit");
		row->status != ST_NO_DATA ? fl_json_int(&j, row->limit) : fl_json_null(&j);
		fl_json_key(&j, "margin");
		judged ? fl_json_int(&j, row->limit - row->measured) : fl_json_null(&j);
		if (row->baseline) {
			fl_json_key(&j, "baseline_value");
			row->base >= 0 ? fl_json_int(&j, row->base) : fl_json_null(&j);
			fl_json_key(&j, "tolerance");
			fl_json_real(&j, row->tol);
		}
		fl_json_key(&j, "worst_pid");
		row->worst >= 0 ? fl_json_int(&j, k->run.procs[row->worst].pid) : fl_json_null(&j);
		fl_json_kstr(&j, "worst_exe", row->worst >= 0 ? k->run.procs[row->worst].exe : NULL);
		fl_json_kint(&j, "processes_matched", row->matched);
		fl_json_kstr(&j, "result", row->status == ST_PASS ? "pass" : row->status == ST_NO_DATA ? "error" : "fail");
		fl_json_close(&j, '}');
	}
	fl_json_close(&j, ']');
	fl_json_close(&j, '}');
}

/* ---- JUnit XML ------------------------------------------------------------------ */

static void xml_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '&')
			fputs("&amp;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c < 0x20 && c != '\n' && c != '\t')
			fputc('?', f);  /* not allowed in XML 1.0 */
		else
			fputc(c, f);
	}
}

/* One testcase per limit: classname the check, name the metric and scope; a failure says by how much. */
static int write_junit(const struct checker *k, int failed, int errors)
{
	FILE *f = fopen(k->junit_path, "w");
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!f) {
		fprintf(stderr, "faultline check: cannot write %s: %m\n", k->junit_path);
		return -1;
	}
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now, &tm));
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<testsuites name=\"faultline check\" tests=\"%d\" failures=\"%d\" errors=\"%d\" time=\"0\">\n"
		   "  <testsuite name=\"faultline check ", k->nrows, failed, errors);
	xml_text(f, k->run.d->path);
	fprintf(f, "\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"0\" time=\"0\" timestamp=\"%s\">\n",
		k->nrows, failed, errors, stamp);
	for (int i = 0; i < k->nrows; i++) {
		const struct row *row = &k->rows[i];
		char sel[512], note[1024], measured[32], limit[32];

		fputs("    <testcase classname=\"faultline.", f);
		xml_text(f, row->check->name);
		fputs("\" name=\"", f);
		fprintf(f, "%s%s per %s (", row->baseline ? "baseline " : "max-", fl_metric_names[row->metric],
			row->check->scope == FL_SCOPE_PROCESS ? "process" : "total");
		xml_text(f, fl_sel_text(&row->check->sel, sel, sizeof(sel)));
		fputs(")\" time=\"0\"", f);
		value_text(row->metric, row->measured, measured, sizeof(measured));
		value_text(row->metric, row->limit, limit, sizeof(limit));
		row_note(k, row, note, sizeof(note));
		if (row->status == ST_PASS) {
			fputs(">\n      <system-out>", f);
			fprintf(f, "measured %s, limit %s", measured, limit);
			if (*note)
				fputs("; ", f), xml_text(f, note);
			fputs("</system-out>\n    </testcase>\n", f);
			continue;
		}
		fprintf(f, ">\n      <%s type=\"%s\" message=\"", row->status == ST_NO_DATA ? "error" : "failure",
			row->status == ST_NO_DATA ? "no data" : row->status == ST_NO_MATCH ? "nothing matched" :
			"limit exceeded");
		if (row->status == ST_FAIL) {
			fprintf(f, "%s %s exceeds the limit %s", fl_metric_names[row->metric], measured, limit);
		} else {
			xml_text(f, note);
		}
		fputs("\">", f);
		xml_text(f, note);
		fprintf(f, "</%s>\n    </testcase>\n", row->status == ST_NO_DATA ? "error" : "failure");
	}
	fputs("  </testsuite>\n</testsuites>\n", f);
	if (fclose(f)) {
		fprintf(stderr, "faultline check: cannot write %s: %m\n", k->junit_path);
		return -1;
	}
	return 0;
}

/* ---- the command ---------------------------------------------------------------- */

/* `faultline record` with check's recording options; its exit status. */
static int record_now(struct checker *k, char **cmd)
{
	int ncmd = 0, n = 0, rc;
	char **argv;

	while (cmd[ncmd])
		ncmd++;
	if (!(argv = calloc((size_t)ncmd + 12, sizeof(char *))))
		return 125;
	argv[n++] = "record";
	argv[n++] = "-o";
	argv[n++] = (char *)k->output;
	if (k->force)
		argv[n++] = "--force";
	if (k->no_bpf)
		argv[n++] = "--no-bpf";
	if (k->thp_never)
		argv[n++] = "--thp=never";
	if (k->depth) {
		argv[n++] = "--depth";
		argv[n++] = (char *)k->depth;
	}
	argv[n++] = "--";
	memcpy(argv + n, cmd, (size_t)ncmd * sizeof(char *));
	rc = fl_cmd_record(n + ncmd, argv);
	free(argv);
	fflush(stdout);
	return rc;
}

static int check_main(struct checker *k, int argc, char **argv)
{
	struct fl_db d, bd;
	bool have_base = false;
	const char *path;
	int failed = 0, errors = 0, rc;
	char err[512];

	if (k->cmdline >= 0 && fl_check_validate(&k->limits.checks[k->cmdline], err, sizeof(err)))
		return fl_cli_usage_error(&k->cli, "%s", err);
	if (!k->limits.n && !k->baseline_path)
		return fl_cli_usage_error(&k->cli, "nothing to check: give limits (--max-cow N, --limits FILE) or "
					  "--baseline OLD.db");
	if (optind > 0 && optind <= argc && !strcmp(argv[optind - 1], "--")) {
		if (optind == argc)
			return fl_cli_usage_error(&k->cli, "no command after '--'");
		rc = record_now(k, argv + optind);
		if (rc == 125 || rc == 126 || rc == 127)
			return 2;  /* record said why; no fresh recording to check */
		path = k->output;
	} else if (argc - optind == 1) {
		path = argv[optind];
	} else {
		return fl_cli_usage_error(&k->cli, argc == optind ? "no recording given (RUN.db, or -- CMD to record one)"
							     : "too many arguments");
	}
	if (fl_db_open(&d, path))
		return 2;
	if (k->baseline_path) {
		if (fl_db_open(&bd, k->baseline_path)) {
			fl_db_close(&d);
			return 2;
		}
		have_base = true;
	}
	rc = 2;
	if (!d.complete || (have_base && !bd.complete)) {
		/* a recorder that stopped early left numbers a limit cannot be judged by */
		fprintf(stderr, "faultline check: %s: the recording is incomplete (still being written, or the "
			"recorder stopped early)\n", d.complete ? bd.path : d.path);
		goto out;
	}
	if (fl_run_load(&d, &k->run) || (have_base && fl_run_load(&bd, &k->base)))
		goto out;
	k->exit_status = (int)k->run.exit_status;
	if (evaluate(k))
		goto out;
	for (int i = 0; i < k->nrows; i++) {
		failed += k->rows[i].status == ST_FAIL || k->rows[i].status == ST_NO_MATCH;
		errors += k->rows[i].status == ST_NO_DATA;
	}
	if (k->cli.json)
		print_json(k, errors ? "error" : k->exit_status > 0 ? "target_failed" : failed ? "fail" : "pass");
	else
		print_text(k, failed, errors);
	if (k->junit_path && write_junit(k, failed, errors))
		goto out;
	rc = errors ? 2 : k->exit_status > 0 ? 3 : failed ? 1 : 0;
out:
	fl_run_free(&k->run);
	fl_run_free(&k->base);
	if (have_base)
		fl_db_close(&bd);
	fl_db_close(&d);
	return rc;
}

int fl_cmd_check(int argc, char **argv)
{
	struct checker k = { .cli = { .usage = USAGE }, .cmdline = -1, .output = "faultline.db", .exit_status = -1 };
	int rc = fl_cli_parse(&k.cli, argc, argv, ":ho:f", options, on_option, &k);

	if (rc < 0)
		rc = check_main(&k, argc, argv);
	fl_limits_free(&k.limits);
	free(k.rows);
	return rc;
}
