/* SPDX-License-Identifier: MIT */
/*
 * export.c - `faultline export FILE --format pprof|perfetto|folded|csv -o OUT`:
 * the recording as files other tools open.  This file holds the command,
 * the folded stacks (flamegraph.pl, speedscope, inferno) and CSV of a
 * table; pprof.c and perfetto.c hold the other two.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "export.h"
#include "measure.h"
#include "profile.h"
#include "viewer.h"

#define USAGE "export FILE --format pprof|perfetto|folded|csv -o OUT [--pid P] [--weight faults|resident|heap]\n" \
	      "                          [--class C] [--table T]"

enum format { F_NONE, F_PPROF, F_PERFETTO, F_FOLDED, F_CSV };

struct opts {
	struct fl_cli cli;
	enum format format;
	struct fl_export x;
};

static int on_option(void *ctx, int c, const char *arg)
{
	struct opts *o = ctx;
	char *end;

	switch (c) {
	case 'f':
		o->format = !strcmp(arg, "pprof") ? F_PPROF : !strcmp(arg, "perfetto") ? F_PERFETTO
			  : !strcmp(arg, "folded") ? F_FOLDED : !strcmp(arg, "csv") ? F_CSV : F_NONE;
		if (o->format == F_NONE)
			return fl_cli_usage_error(&o->cli, "--format wants pprof, perfetto, folded or csv, not '%s'", arg);
		return -1;
	case 'o':
		o->x.out = arg;
		return -1;
	case 'p':
		o->x.pid = strtoll(arg, &end, 10);
		if (*end || o->x.pid <= 0)
			return fl_cli_usage_error(&o->cli, "--pid wants a process id, not '%s'", arg);
		return -1;
	case 'c':
		for (int k = 0; k < FL_NCLASSES; k++)
			if (!strcmp(arg, fl_class_names[k]))
				o->x.class_idx = k;
		if (o->x.class_idx < 0)
			return fl_cli_usage_error(&o->cli, "--class wants a fault class (anon_new, cow_anon, pagecache, ...;"
						  " see docs/faults.md), not '%s'", arg);
		return -1;
	case 't':
		o->x.table = arg;
		return -1;
	case 'w':
		o->x.weight = !strcmp(arg, "faults") ? FL_W_FAULTS : !strcmp(arg, "resident") ? FL_W_RESIDENT
			    : !strcmp(arg, "heap") ? FL_W_HEAP : (enum fl_weight)-1;
		if ((int)o->x.weight < 0)
			return fl_cli_usage_error(&o->cli, "--weight wants faults, resident or heap, not '%s'", arg);
		return -1;
	}
	return 2;
}

static FILE *open_out(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;

	if (!f)
		fprintf(stderr, "faultline: cannot write %s: %m\n", path);
	return f;
}

static int close_out(FILE *f, const char *path)
{
	int bad = ferror(f);

	if (f == stdout)
		bad |= fflush(f) != 0;
	else
		bad |= fclose(f) != 0;
	if (bad)
		fprintf(stderr, "faultline: cannot write %s\n", path);
	return bad ? 1 : 0;
}

/* ---- folded stacks --------------------------------------------------------- */

/* A frame name as folded text: ';' separates frames and a line ends the stack. */
static void folded_name(char *buf, size_t n, const char *name)
{
	size_t i = 0;

	for (; name && *name && i + 1 < n; name++)
		buf[i++] = *name == ';' ? ':' : *name == '\n' || *name == '\r' ? ' ' : *name;
	buf[i] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "frames count" with the count after the last space; lines with the same frames are merged. */
static int write_folded(FILE *f, const struct fl_profile *p, const struct fl_export *x)
{
	char **lines = calloc(p->nsamples + 1, sizeof(char *));
	size_t n = 0;
	int rc = 0;

	if (!lines)
		return -1;
	for (size_t i = 0; i < p->nsamples && !rc; i++) {
		const struct fl_psample *s = &p->samples[i];
		int64_t w = 0;
		char *line = NULL, name[4300];
		size_t len = 0;
		FILE *m;

		if (x->weight == FL_W_RESIDENT)
			w = s->v[FL_PV_RESIDENT];
		else if (x->weight == FL_W_HEAP)
			w = s->v[FL_PV_HEAP];
		else
			for (int c = 0; c < FL_NCLASSES; c++)
				w += x->class_idx < 0 || c == x->class_idx ? s->v[c] : 0;
		if (!w)
			continue;
		if (!(m = open_memstream(&line, &len)))
			rc = -1;
		for (int k = s->nframes - 1; m && k >= 0; k--) {
			folded_name(name, sizeof(name), p->nodes[s->frames[k]].name);
			fprintf(m, "%s%s", name, k ? ";" : "");
		}
		if (m && (fprintf(m, " %lld", (long long)w) < 0 || fclose(m)))
			rc = -1;
		lines[n++] = line;
	}
	if (n)
		qsort(lines, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n && !rc;) {
		char *sp = strrchr(lines[i], ' ');
		long long w = 0;
		size_t j = i;

		for (; j < n && !strncmp(lines[j], lines[i], (size_t)(sp - lines[i])) &&
		       lines[j][sp - lines[i]] == ' '; j++)
			w += strtoll(strrchr(lines[j], ' ') + 1, NULL, 10);
		fprintf(f, "%.*s %lld\n", (int)(sp - lines[i]), lines[i], w);
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	return rc;
}

static int export_folded(struct fl_db *d, const struct fl_export *x)
{
	struct fl_profile p;
	FILE *f;
	int rc;

	if (fl_profile_load(d, x->pid, &p))
		return 1;
	if (!(f = open_out(x->out))) {
		fl_profile_free(&p);
		return 1;
	}
	rc = write_folded(f, &p, x);
	fl_profile_free(&p);
	return close_out(f, x->out) || rc ? 1 : 0;
}

/* ---- CSV of a table -------------------------------------------------------- */

static int export_csv(struct fl_db *d, const struct fl_export *x)
{
	sqlite3_stmt *known = fl_db_prepare(d, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?");
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	FILE *f = NULL;
	int rc = -1;

	if (!known)
		return 1;
	sqlite3_bind_text(known, 1, x->table, -1, SQLITE_STATIC);
	if (fl_db_step(d, known) != SQLITE_ROW) {
		fprintf(stderr, "faultline: %s: no table '%s' (docs/schema.md lists them)\n", d->path, x->table);
		goto out;
	}
	if (!(sql = sqlite3_mprintf("SELECT * FROM \"%w\"", x->table)) || !(st = fl_db_prepare(d, sql)) ||
	    !(f = open_out(x->out)))
		goto out;
	for (int i = 0; i < sqlite3_column_count(st); i++)
		fl_csv_str(f, sqlite3_column_name(st, i), i == 0);
	fputc('\n', f);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(st); i++)
			fl_csv_col(f, st, i, i == 0);
		fputc('\n', f);
	}
	rc = rc == SQLITE_DONE ? 0 : -1;
out:
	if (f && close_out(f, x->out))
		rc = -1;
	sqlite3_finalize(known);
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return rc ? 1 : 0;
}

/* ---- the command ----------------------------------------------------------- */

static int start_unix(struct fl_db *d, int64_t *out)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT start_unix FROM run");
	int rc = st ? fl_db_step(d, st) : -1;

	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int fl_cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' }, { "output", required_argument, NULL, 'o' },
		{ "pid", required_argument, NULL, 'p' },    { "class", required_argument, NULL, 'c' },
		{ "table", required_argument, NULL, 't' },  { "weight", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .cli = { .usage = USAGE }, .x = { .class_idx = -1 } };
	struct fl_db d;
	int rc = fl_cli_parse(&o.cli, argc, argv, "o:", longopts, on_option, &o);

	if (rc >= 0)
		return rc;
	if (optind + 1 != argc)
		return fl_cli_usage_error(&o.cli, optind >= argc ? "which recording?" : "one recording at a time");
	if (o.format == F_NONE)
		return fl_cli_usage_error(&o.cli, "which --format?");
	if (!o.x.out)
		return fl_cli_usage_error(&o.cli, "where to? -o FILE (- for standard output)");
	if (o.x.class_idx >= 0 && o.x.weight != FL_W_FAULTS)
		return fl_cli_usage_error(&o.cli, "--class weighs faults: not with --weight resident or heap");
	if (o.format == F_CSV && !o.x.table)
		return fl_cli_usage_error(&o.cli, "--format csv wants --table T (run, process, event, vma, fault, rss, ...)");
	if (fl_db_open(&d, argv[optind]))
		return 1;
	if (start_unix(&d, &o.x.start_unix))
		rc = 1;
	else if (o.format == F_PPROF)
		rc = fl_export_pprof(&d, &o.x);
	else if (o.format == F_PERFETTO)
		rc = fl_export_perfetto(&d, &o.x);
	else if (o.format == F_FOLDED)
		rc = export_folded(&d, &o.x);
	else
		rc = export_csv(&d, &o.x);
	fl_db_close(&d);
	return rc;
}
