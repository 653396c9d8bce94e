/* SPDX-License-Identifier: MIT */
/*
 * timeline.c - `faultline timeline FILE`: resident memory over time as a
 * stacked terminal chart (top series, the rest grouped), the fault rate by
 * class under it, and the same bins as CSV or JSON.
 *
 * The chart fits the width asked for (80 columns by default).  Colour only
 * goes to a terminal and never when NO_COLOR is set (no-color.org); block
 * characters only when the locale's character set is UTF-8, so a pipe or a
 * C locale gets plain ASCII that diffs and greps well.
 */
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "db.h"
#include "output.h"
#include "series.h"
#include "viewer.h"

#define USAGE "timeline FILE [--pid P] [--by process|kind|region] [--top N] [--width COLS] [--height ROWS]\n" \
	      "                          [--bins N] [--format text|json|csv]"
#define AXIS_W 12      /* "write_notify", "1023.9 MiB" */
#define COUNT_W 9      /* " 12345678" after a fault row */

struct opts {
	struct fl_cli cli;
	int64_t pid;
	enum fl_series_by by;
	int top, width, height, bins;
};

struct style {
	bool color, utf8;
};

static const char series_glyph[] = "#=+%*o";
static const char *const series_color[] = { "32", "34", "33", "35", "36", "31" };
#define OTHER_GLYPH '.'
#define OTHER_COLOR "90"

static int parse_int(struct opts *o, const char *name, const char *arg, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end || v < lo || v > hi)
		return fl_cli_usage_error(&o->cli, "%s wants a number from %d to %d, not '%s'", name, lo, hi, arg);
	*out = (int)v;
	return -1;
}

static int on_option(void *ctx, int c, const char *arg)
{
	struct opts *o = ctx;
	char *end;

	switch (c) {
	case 'p':
		o->pid = strtoll(arg, &end, 10);
		if (*end || o->pid <= 0)
			return fl_cli_usage_error(&o->cli, "--pid wants a process id, not '%s'", arg);
		return -1;
	case 'b':
		if (!strcmp(arg, "process"))
			o->by = FL_BY_PROCESS;
		else if (!strcmp(arg, "kind"))
			o->by = FL_BY_KIND;
		else if (!strcmp(arg, "region"))
			o->by = FL_BY_REGION;
		else
			return fl_cli_usage_error(&o->cli, "--by wants process, kind or region, not '%s'", arg);
		return -1;
	case 't':
		return parse_int(o, "--top", arg, 1, 64, &o->top);
	case 'w':
		return parse_int(o, "--width", arg, 80, 1000, &o->width);
	case 'H':
		return parse_int(o, "--height", arg, 3, 200, &o->height);
	case 'n':
		return parse_int(o, "--bins", arg, 1, 100000, &o->bins);
	}
	return 2;
}

static struct style detect_style(void)
{
	const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
	struct style s = { .color = isatty(STDOUT_FILENO) && !(no_color && *no_color) && !(term && !strcmp(term, "dumb")) };

	setlocale(LC_CTYPE, "");
	s.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	return s;
}

static const char *by_name(enum fl_series_by by)
{
	return by == FL_BY_KIND ? "kind" : by == FL_BY_REGION ? "region" : "process";
}

/* ---- the text chart ------------------------------------------------------ */

/* One chart cell: the series whose band holds the middle of the cell's value range, or -1. */
static int cell_series(const struct fl_timeline *t, int bin, int row, int height)
{
	double mid = (double)t->peak * ((double)(height - 1 - row) + 0.5) / height, sum = 0;
	const int64_t *v = &t->rss[(size_t)bin * (size_t)t->nseries];

	for (int s = 0; s < t->nseries; s++) {
		sum += (double)v[s];
		if (mid < sum)
			return s;
	}
	return -1;
}

static bool is_other(const struct fl_timeline *t, int s)
{
	return t->by != FL_BY_KIND && !strncmp(t->series[s].name, "other (", 7);
}

static void put_series(const struct fl_timeline *t, const struct style *st, int s)
{
	bool other = is_other(t, s);
	const char *color = other ? OTHER_COLOR : series_color[s % 6];

	if (st->color)
		printf("\033[%sm%s\033[0m", color, st->utf8 ? "\u2588" : (char[]){ other ? OTHER_GLYPH : series_glyph[s % 6], 0 });
	else
		putchar(other ? OTHER_GLYPH : series_glyph[s % 6]);
}

static void chart_rows(const struct fl_timeline *t, const struct style *st, int height)
{
	char size[32];

	for (int row = 0; row < height; row++) {
		const char *label = "";

		if (row == 0)
			label = fl_out_size(size, sizeof(size), t->peak);
		else if (row == height / 2 && height >= 5)
			label = fl_out_size(size, sizeof(size), t->peak * (height - row) / height);
		printf("%*s |", AXIS_W, label);
		for (int b = 0; b < t->nbins; b++) {
			int s = t->peak > 0 ? cell_series(t, b, row, height) : -1;

			if (s < 0)
				putchar(' ');
			else
				put_series(t, st, s);
		}
		putchar('\n');
	}
}

static void chart_axis(const struct fl_timeline *t)
{
	char a[32], m[32], z[32];
	int w = t->nbins, lm, lz;

	printf("%*s +", AXIS_W, "0 B");
	for (int b = 0; b < w; b++)
		putchar('-');
	fl_out_reltime(a, sizeof(a), t->t0);
	fl_out_reltime(m, sizeof(m), (t->t0 + t->t1) / 2);
	fl_out_reltime(z, sizeof(z), t->t1);
	lm = (int)strlen(m);
	lz = (int)strlen(z);
	printf("\n%*s  %s", AXIS_W, "", a);
	printf("%*s%s", w / 2 - (int)strlen(a) - lm / 2 > 1 ? w / 2 - (int)strlen(a) - lm / 2 : 1, "", m);
	printf("%*s%s\n", w - w / 2 - (lm - lm / 2) - lz > 1 ? w - w / 2 - (lm - lm / 2) - lz : 1, "", z);
}

static void chart_legend(const struct fl_timeline *t, const struct style *st, int width)
{
	char at[32], own[32];
	int name_w = width - AXIS_W - 48; /* the rest of the line is 48 wide at most */

	for (int s = 0; s < t->nseries; s++) {
		printf("%*s  ", AXIS_W, "");
		put_series(t, st, s);
		printf(" %-*.*s %10s at the peak, own peak %s\n", name_w < 8 ? 8 : name_w, name_w < 8 ? 8 : name_w, t->series[s].name,
		       fl_out_size(at, sizeof(at), t->series[s].at_peak), fl_out_size(own, sizeof(own), t->series[s].peak));
	}
}

/* A fault class's bins as a sparkline scaled to its own highest bin. */
static void fault_row(const struct fl_timeline *t, const struct style *st, int c)
{
	static const char *const utf8_ramp[] = { " ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii_ramp[] = " .:-=+*#@";
	int64_t max = 0;

	for (int b = 0; b < t->nbins; b++)
		if (t->faults[(size_t)b * FL_NCLASSES + c] > max)
			max = t->faults[(size_t)b * FL_NCLASSES + c];
	printf("%*s |", AXIS_W, fl_class_names[c]);
	for (int b = 0; b < t->nbins; b++) {
		int64_t n = t->faults[(size_t)b * FL_NCLASSES + c];
		int level = n ? 1 + (int)((n * 7 + max - 1) / max) : 0; /* any fault shows */

		level = level > 8 ? 8 : level;
		fputs(st->utf8 ? utf8_ramp[level] : (char[]){ ascii_ramp[level], 0 }, stdout);
	}
	printf("| %lld\n", (long long)t->fault_total[c]);
}

static void fault_rows(const struct fl_timeline *t, const struct style *st)
{
	char bin[32];
	int64_t all = 0;

	if (!t->has_faults) {
		printf("faults     not recorded: per-VMA fault counts need an eBPF recording (fidelity bpf)\n");
		return;
	}
	for (int c = 0; c < FL_NCLASSES; c++)
		all += t->fault_total[c];
	printf("faults per %s bin, %lld in all; each class scaled to its busiest bin\n",
	       fl_out_reltime(bin, sizeof(bin), (t->t1 - t->t0) / t->nbins), (long long)all);
	for (int c = 0; c < FL_NCLASSES; c++)
		if (t->fault_total[c])
			fault_row(t, st, c);
}

static int losses_text(struct fl_db *d)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT cause, count FROM loss WHERE count > 0 ORDER BY count DESC, cause");
	int rc, n = 0;

	if (!st)
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW)
		printf("%s%s %lld", n++ ? ", " : "LOST       ", sqlite3_column_text(st, 0),
		       (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	printf(n ? " (the numbers above are incomplete)\n" : "losses     nothing lost\n");
	return rc == SQLITE_DONE ? 0 : -1;
}

static int timeline_text(struct fl_db *d, const struct fl_timeline *t, const struct opts *o)
{
	struct style st = detect_style();
	char peak[32], when[32];

	printf("faultline timeline: %s, by %s", d->path, by_name(t->by));
	if (t->pid)
		printf(", pid %lld", (long long)t->pid);
	printf("\n%s: peak %s at %s, %lld samples\n",
	       t->by == FL_BY_REGION ? "resident by region (smaps samples)"
				     : "RSS (the kernel's anon + file + shmem)",
	       fl_out_size(peak, sizeof(peak), t->peak), fl_out_reltime(when, sizeof(when), t->peak_t),
	       (long long)t->nsamples);
	if (!t->nsamples) {
		printf("           no resident memory samples in this recording%s\n",
		       t->by == FL_BY_REGION ? " (per-region samples came with schema version 3)" : "");
	} else {
		chart_rows(t, &st, o->height);
		chart_axis(t);
		chart_legend(t, &st, o->width);
	}
	fault_rows(t, &st);
	return losses_text(d);
}

/* ---- CSV and JSON -------------------------------------------------------- */

static void timeline_csv(const struct fl_timeline *t)
{
	fl_csv_str(stdout, "time_s", 1);
	for (int s = 0; s < t->nseries; s++)
		fl_csv_str(stdout, t->series[s].name, 0);
	fl_csv_str(stdout, "total", 0);
	for (int c = 0; c < FL_NCLASSES; c++)
		fl_csv_str(stdout, fl_class_names[c], 0);
	putchar('\n');
	for (int b = 0; b < t->nbins; b++) {
		printf("%.9f", (double)fl_timeline_bin_start(t, b) / 1e9);
		for (int s = 0; s < t->nseries; s++)
			fl_csv_int(stdout, t->rss[(size_t)b * (size_t)t->nseries + s], 0);
		fl_csv_int(stdout, t->total[b], 0);
		for (int c = 0; c < FL_NCLASSES; c++) {
			if (t->has_faults)
				fl_csv_int(stdout, t->faults[(size_t)b * FL_NCLASSES + c], 0);
			else
				fl_csv_str(stdout, NULL, 0);
		}
		putchar('\n');
	}
}

static void timeline_json(struct fl_db *d, const struct fl_timeline *t)
{
	struct fl_json j;

	fl_json_init(&j, stdout);
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "file", d->path);
	fl_json_kstr(&j, "by", by_name(t->by));
	fl_json_key(&j, "pid");
	t->pid ? fl_json_int(&j, t->pid) : fl_json_null(&j);
	fl_json_kint(&j, "start_ns", t->t0);
	fl_json_kint(&j, "end_ns", t->t1);
	fl_json_kint(&j, "bins", t->nbins);
	fl_json_kint(&j, "samples", t->nsamples);
	fl_json_kint(&j, "peak_bytes", t->peak);
	fl_json_kint(&j, "peak_ns", t->peak_t);
	fl_json_key(&j, "bin_start_ns");
	fl_json_open(&j, '[');
	for (int b = 0; b < t->nbins; b++)
		fl_json_int(&j, fl_timeline_bin_start(t, b));
	fl_json_close(&j, ']');
	fl_json_key(&j, "series");
	fl_json_open(&j, '[');
	for (int s = 0; s < t->nseries; s++) {
		fl_json_open(&j, '{');
		fl_json_kstr(&j, "name", t->series[s].name);
		fl_json_key(&j, "proc_id");
		t->series[s].proc_id >= 0 ? fl_json_int(&j, t->series[s].proc_id) : fl_json_null(&j);
		fl_json_kint(&j, "at_peak_bytes", t->series[s].at_peak);
		fl_json_kint(&j, "peak_bytes", t->series[s].peak);
		fl_json_key(&j, "bytes");
		fl_json_open(&j, '[');
		for (int b = 0; b < t->nbins; b++)
			fl_json_int(&j, t->rss[(size_t)b * (size_t)t->nseries + s]);
		fl_json_close(&j, ']');
		fl_json_close(&j, '}');
	}
	fl_json_close(&j, ']');
	fl_json_key(&j, "total_bytes");
	fl_json_open(&j, '[');
	for (int b = 0; b < t->nbins; b++)
		fl_json_int(&j, t->total[b]);
	fl_json_close(&j, ']');
	fl_json_key(&j, "faults");
	if (!t->has_faults) {
		fl_json_null(&j);
	} else {
		fl_json_open(&j, '{');
		for (int c = 0; c < FL_NCLASSES; c++) {
			fl_json_key(&j, fl_class_names[c]);
			fl_json_open(&j, '{');
			fl_json_kint(&j, "total", t->fault_total[c]);
			fl_json_key(&j, "per_bin");
			fl_json_open(&j, '[');
			for (int b = 0; b < t->nbins; b++)
				fl_json_int(&j, t->faults[(size_t)b * FL_NCLASSES + c]);
			fl_json_close(&j, ']');
			fl_json_close(&j, '}');
		}
		fl_json_close(&j, '}');
	}
	fl_json_close(&j, '}');
}

int fl_cmd_timeline(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },   { "by", required_argument, NULL, 'b' },
		{ "top", required_argument, NULL, 't' },   { "width", required_argument, NULL, 'w' },
		{ "height", required_argument, NULL, 'H' }, { "bins", required_argument, NULL, 'n' },
		FL_CLI_COMMON_OPTIONS, { 0 }
	};
	struct opts o = { .cli = { .usage = USAGE, .csv_ok = true }, .top = 5, .width = 80, .height = 12 };
	struct fl_timeline t;
	struct fl_db d;
	int rc = fl_cli_parse(&o.cli, argc, argv, "", longopts, on_option, &o);

	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return fl_cli_usage_error(&o.cli, optind >= argc ? "which recording?" : "one recording at a time");
	if (fl_db_open(&d, argv[optind]))
		return 1;
	/* the chart takes the width less the axis and the fault rows' counts */
	if (fl_timeline_load(&d, o.by, o.pid, o.bins ? o.bins : o.width - AXIS_W - 2 - COUNT_W - 1, o.top + 1, &t)) {
		fl_db_close(&d);
		return 1;
	}
	rc = 0;
	if (o.cli.json)
		timeline_json(&d, &t);
	else if (o.cli.csv)
		timeline_csv(&t);
	else
		rc = timeline_text(&d, &t, &o);
	fl_timeline_free(&t);
	fl_db_close(&d);
	return rc < 0 ? 1 : 0;
}
