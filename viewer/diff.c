/* SPDX-License-Identifier: MIT */
/*
 * diff.c - `faultline diff A.db B.db`: what grew or shrank from one
 * recording to the other, per stable label (measure.c: a region's file and
 * offset or its creating functions, a call's kind and stack, a process's
 * executable), ranked by the size of the change, with totals.  faultline's
 * own footprint is left out of both sides, as in `check`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "measure.h"
#include "output.h"
#include "viewer.h"

#define USAGE "diff A.db B.db [--top N] [--format json]"

/* The numbers a label carries: peak RSS, faults per class, mappings made, calls. */
enum { V_RSS, V_CLASS0, V_MAPPINGS = V_CLASS0 + FL_NCLASSES, V_CALLS, NV };

static const char *value_name(int v)
{
	return v == V_RSS ? "rss" : v == V_MAPPINGS ? "mappings" : v == V_CALLS ? "calls" : fl_class_names[v - V_CLASS0];
}

struct entry {
	char *key;          /* "EXE\tLABEL" */
	int64_t v[2][NV];   /* per side */
};

struct differ {
	struct entry *e;
	size_t n, cap;
	int64_t page_size;
};

static struct entry *entry_add(struct differ *df, const char *exe, const char *label)
{
	struct entry *e;

	if (df->n == df->cap) {
		struct entry *grown = realloc(df->e, (df->cap = df->cap ? 2 * df->cap : 256) * sizeof(*grown));

		if (!grown)
			return NULL;
		df->e = grown;
	}
	e = &df->e[df->n];
	memset(e, 0, sizeof(*e));
	if (asprintf(&e->key, "%s\t%s", exe, label) < 0)
		return NULL;
	df->n++;
	return e;
}

/* Every label of one run into df, on side s (entries merged later by key). */
static int collect(struct differ *df, const struct fl_run *r, int s)
{
	struct entry *e;

	for (int p = 0; p < r->nprocs; p++) {
		if (!(e = entry_add(df, r->procs[p].exe, "(process)")))
			return -1;
		e->v[s][V_RSS] = r->procs[p].rss_peak > 0 ? r->procs[p].rss_peak : 0;
	}
	for (size_t i = 0; i < r->nregions; i++) {
		const struct fl_region *g = &r->regions[i];

		if (g->footprint)
			continue;
		if (!(e = entry_add(df, r->procs[g->proc].exe, g->label)))
			return -1;
		memcpy(&e->v[s][V_CLASS0], g->faults, sizeof(g->faults));
		e->v[s][V_MAPPINGS] = g->created_here;
	}
	for (size_t i = 0; i < r->nsites; i++) {
		if (!(e = entry_add(df, r->procs[r->sites[i].proc].exe, r->sites[i].label)))
			return -1;
		e->v[s][V_CALLS] = r->sites[i].count;
	}
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

/* Sums entries with the same key into one (RSS: the larger peak of processes with one exe). */
static void merge(struct differ *df)
{
	size_t out = 0;

	qsort(df->e, df->n, sizeof(*df->e), by_key);
	for (size_t i = 0; i < df->n; i++) {
		struct entry *e = &df->e[i];

		if (out && !strcmp(df->e[out - 1].key, e->key)) {
			struct entry *m = &df->e[out - 1];

			for (int s = 0; s < 2; s++)
				for (int v = 0; v < NV; v++)
					m->v[s][v] = v == V_RSS ? (e->v[s][v] > m->v[s][v] ? e->v[s][v] : m->v[s][v])
								: m->v[s][v] + e->v[s][v];
			free(e->key);
			continue;
		}
		df->e[out++] = *e;
	}
	df->n = out;
}

/* One change: entry e's value v. */
struct change {
	const struct entry *e;
	int v;
	int64_t weight;     /* |change| in pages for RSS, in counts otherwise: the ranking */
};

static int by_weight(const void *a, const void *b)
{
	const struct change *x = a, *y = b;

	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	if (x->v != y->v)
		return x->v - y->v;
	return strcmp(x->e->key, y->e->key);
}

static struct change *changes(const struct differ *df, size_t *n)
{
	struct change *c = malloc((df->n * NV + 1) * sizeof(*c));

	*n = 0;
	for (size_t i = 0; c && i < df->n; i++)
		for (int v = 0; v < NV; v++) {
			int64_t d = df->e[i].v[1][v] - df->e[i].v[0][v];

			if (d)
				c[(*n)++] = (struct change){ &df->e[i], v, (d < 0 ? -d : d) / (v == V_RSS ? df->page_size : 1) };
		}
	if (c)
		qsort(c, *n, sizeof(*c), by_weight);
	return c;
}

static void totals(const struct fl_run *r, int64_t *t)
{
	static const struct fl_selector all;

	memset(t, 0, NV * sizeof(*t));
	t[V_RSS] = fl_run_metric(r, &all, FL_M_rss);
	for (size_t i = 0; i < r->nregions; i++)
		for (int c = 0; c < FL_NCLASSES; c++)
			t[V_CLASS0 + c] += r->regions[i].faults[c];
	t[V_MAPPINGS] = fl_run_metric(r, &all, FL_M_mappings);
	t[V_CALLS] = fl_run_metric(r, &all, FL_M_calls);
}

static const char *num(int v, int64_t x, bool sign, char *buf, size_t n)
{
	if (v == V_RSS) {
		fl_out_size(buf + 1, n - 1, x);
		buf[0] = sign && x >= 0 ? '+' : ' ';
		return sign && x >= 0 ? buf : buf + 1;
	}
	snprintf(buf, n, sign ? "%+" PRId64 : "%" PRId64, x);
	return buf;
}

static void print_text(const char *a, const char *b, const int64_t t[2][NV], const struct change *c, size_t n,
		       int top, const int64_t fp[2])
{
	struct fl_table tab;
	char x[32], y[32], d[32];

	printf("faultline diff: %s -> %s\n\ntotals (the programs' own; faultline's footprint left out: "
	       "%" PRId64 " -> %" PRId64 " faults)\n", a, b, fp[0], fp[1]);
	fl_table_init(&tab, 4, 0xe);
	for (int v = 0; v < NV; v++) {
		if (!t[0][v] && !t[1][v])
			continue;
		fl_table_add(&tab, (const char *[]){ value_name(v), num(v, t[0][v], false, x, sizeof(x)),
						     num(v, t[1][v], false, y, sizeof(y)),
						     num(v, t[1][v] - t[0][v], true, d, sizeof(d)) });
	}
	fl_table_print(&tab, stdout, 2);
	fl_table_free(&tab);
	printf("\nchanges, largest first%s\n", n ? "" : ": none");
	fl_table_init(&tab, 6, 0x7);
	for (size_t i = 0; i < n && (int)i < top; i++) {
		const char *key = c[i].e->key, *tabc = strchr(key, '\t');
		char exe[4096];
		int v = c[i].v;

		snprintf(exe, sizeof(exe), "%.*s", (int)(tabc - key), key);
		fl_table_add(&tab, (const char *[]){ num(v, c[i].e->v[1][v] - c[i].e->v[0][v], true, d, sizeof(d)),
						     num(v, c[i].e->v[0][v], false, x, sizeof(x)),
						     num(v, c[i].e->v[1][v], false, y, sizeof(y)), value_name(v), exe, tabc + 1 });
	}
	fl_table_print(&tab, stdout, 2);
	fl_table_free(&tab);
	if (n > (size_t)top)
		printf("  ... %zu more (--top N)\n", n - (size_t)top);
}

static void print_json(const char *a, const char *b, const int64_t t[2][NV], const struct change *c, size_t n,
		       int top, const int64_t fp[2])
{
	struct fl_json j;

	fl_json_init(&j, stdout);
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "format", "faultline-diff");
	fl_json_kint(&j, "version", 1);
	fl_json_kstr(&j, "a", a);
	fl_json_kstr(&j, "b", b);
	fl_json_key(&j, "faultline_footprint_faults");
	fl_json_open(&j, '[');
	fl_json_int(&j, fp[0]);
	fl_json_int(&j, fp[1]);
	fl_json_close(&j, ']');
	fl_json_key(&j, "totals");
	fl_json_open(&j, '{');
	for (int v = 0; v < NV; v++) {
		fl_json_key(&j, value_name(v));
		fl_json_open(&j, '{');
		fl_json_kint(&j, "a", t[0][v]);
		fl_json_kint(&j, "b", t[1][v]);
		fl_json_kint(&j, "change", t[1][v] - t[0][v]);
		fl_json_close(&j, '}');
	}
	fl_json_close(&j, '}');
	fl_json_key(&j, "changes");
	fl_json_open(&j, '[');
	for (size_t i = 0; i < n && (int)i < top; i++) {
		const char *key = c[i].e->key, *tabc = strchr(key, '\t');
		char exe[4096];
		int v = c[i].v;

		snprintf(exe, sizeof(exe), "%.*s", (int)(tabc - key), key);
		fl_json_open(&j, '{');
		fl_json_kstr(&j, "exe", exe);
		fl_json_kstr(&j, "label", tabc + 1);
		fl_json_kstr(&j, "metric", value_name(v));
		fl_json_kint(&j, "a", c[i].e->v[0][v]);
		fl_json_kint(&j, "b", c[i].e->v[1][v]);
		fl_json_kint(&j, "change", c[i].e->v[1][v] - c[i].e->v[0][v]);
		fl_json_close(&j, '}');
	}
	fl_json_close(&j, ']');
	fl_json_kint(&j, "more", n > (size_t)top ? (int64_t)(n - (size_t)top) : 0);
	fl_json_close(&j, '}');
}

static int on_option(void *ctx, int c, const char *arg)
{
	int *top = ctx;
	char *end;

	if (c != 't')
		return 2;
	*top = (int)strtol(arg, &end, 10);
	if (*end || *top < 1)
		return fl_cli_usage_error(&(struct fl_cli){ .usage = USAGE }, "--top wants a positive number, not '%s'",
					  arg);
	return -1;
}

int fl_cmd_diff(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS, { "top", required_argument, NULL, 't' },
						 { 0 } };
	struct fl_cli cli = { .usage = USAGE };
	struct fl_db d[2];
	struct fl_run r[2] = { 0 };
	struct differ df = { .page_size = 4096 };
	int64_t t[2][NV], fp[2], calls, major;
	struct change *c = NULL;
	int top = 20, opened = 0, rc = fl_cli_parse(&cli, argc, argv, ":h", options, on_option, &top);
	size_t n = 0;

	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return fl_cli_usage_error(&cli, "diff takes two recordings, the old and the new");
	rc = 2;
	for (; opened < 2; opened++) {
		if (fl_db_open(&d[opened], argv[optind + opened]))
			goto out;
		if (fl_run_load(&d[opened], &r[opened])) {
			fl_db_close(&d[opened]);
			goto out;
		}
	}
	for (int s = 0; s < 2; s++) {
		if (collect(&df, &r[s], s))
			goto out;
		totals(&r[s], t[s]);
		fl_run_footprint(&r[s], &fp[s], &major, &calls);
		fp[s] += major;
	}
	merge(&df);
	if (!(c = changes(&df, &n)))
		goto out;
	if (cli.json)
		print_json(argv[optind], argv[optind + 1], t, c, n, top, fp);
	else
		print_text(argv[optind], argv[optind + 1], t, c, n, top, fp);
	rc = 0;
out:
	free(c);
	for (size_t i = 0; i < df.n; i++)
		free(df.e[i].key);
	free(df.e);
	for (int s = 0; s < opened; s++) {
		fl_run_free(&r[s]);
		fl_db_close(&d[s]);
	}
	return rc;
}
