/* SPDX-License-Identifier: MIT */
/*
 * series.c - resident memory and fault counts over time, binned for
 * drawing without losing the peak (see series.h).
 */
#include "series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fl_rss_part_names[FL_RSS_PARTS] = { "anon", "file", "shmem" };

/* One change of a process's counters: an rss row, or its end (all zero). */
struct sample {
	int proc;               /* index into the loader's processes */
	int64_t t;              /* ns after the run's start */
	int64_t v[FL_RSS_PARTS];
};

struct loader {
	struct fl_db *d;
	struct fl_timeline *t;
	int64_t *ids, *pids;    /* per selected process: row id, pid */
	char **exes;
	int nprocs;
	int *pidx;              /* process.id -> index, -1 if not selected */
	int64_t max_id;
	struct sample *s;
	size_t ns;
	int nfull;              /* series before grouping: processes or parts */
	int *out_of;            /* full series -> output series */
};

const char *fl_basename(const char *path, char *buf, size_t n)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	snprintf(buf, n, "%s", !path ? "?" : slash && slash[1] ? slash + 1 : path);
	return buf;
}

static int proc_of(const struct loader *l, int64_t id)
{
	return id >= 0 && id <= l->max_id ? l->pidx[id] : -1;
}

/* The processes pid selects (0: all) and the span they lived in. */
static int load_procs(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT id, pid, exe, start_ns, end_ns, (SELECT max(id) FROM process) FROM process"
		" WHERE ?1 = 0 OR pid = ?1 ORDER BY start_ns, id");
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, l->t->pid);
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int i = l->nprocs++;
		int64_t *ids = realloc(l->ids, (size_t)l->nprocs * sizeof(*ids));
		int64_t *pids = ids ? realloc(l->pids, (size_t)l->nprocs * sizeof(*pids)) : NULL;
		char **exes = pids ? realloc(l->exes, (size_t)l->nprocs * sizeof(*exes)) : NULL;

		if (ids)
			l->ids = ids;
		if (pids)
			l->pids = pids;
		if (!exes) {
			l->nprocs--;
			break;
		}
		l->exes = exes;
		ids[i] = sqlite3_column_int64(st, 0);
		pids[i] = sqlite3_column_int64(st, 1);
		exes[i] = strdup(sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "?");
		l->max_id = sqlite3_column_int64(st, 5);
		if (sqlite3_column_int64(st, 3) < lo)
			lo = sqlite3_column_int64(st, 3);
		hi = sqlite3_column_type(st, 4) == SQLITE_NULL ? l->d->end_ns
			: sqlite3_column_int64(st, 4) > hi ? sqlite3_column_int64(st, 4) : hi;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || l->max_id > (int64_t)1 << 30)
		return -1;
	if (!(l->pidx = malloc((size_t)(l->max_id + 1) * sizeof(int))))
		return -1;
	memset(l->pidx, 0xff, (size_t)(l->max_id + 1) * sizeof(int));
	for (int i = 0; i < l->nprocs; i++)
		if (l->ids[i] >= 0 && l->ids[i] <= l->max_id)
			l->pidx[l->ids[i]] = i;
	/* the whole run, or the selected process's life */
	l->t->t0 = l->t->pid && l->nprocs ? lo - l->d->start_ns : 0;
	l->t->t1 = (l->t->pid && l->nprocs ? hi : l->d->end_ns) - l->d->start_ns;
	if (l->t->t1 <= l->t->t0)
		l->t->t1 = l->t->t0 + 1;
	return 0;
}

/* Every rss row of the selected processes and their ends, in time order. */
static int load_samples(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT proc_id, time_ns, anon, file, shmem, 0 FROM rss"
		" UNION ALL SELECT id, end_ns, 0, 0, 0, 1 FROM process WHERE end_ns IS NOT NULL ORDER BY 2, 6");
	size_t cap = 0;
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int p = proc_of(l, sqlite3_column_int64(st, 0));

		if (p < 0)
			continue;
		if (l->ns == cap) {
			struct sample *grown = realloc(l->s, (cap = cap ? 2 * cap : 1024) * sizeof(*grown));

			if (!grown)
				break;
			l->s = grown;
		}
		l->s[l->ns++] = (struct sample){ .proc = p, .t = sqlite3_column_int64(st, 1) - l->d->start_ns,
			.v = { sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4) } };
		l->t->nsamples += !sqlite3_column_int(st, 5);
	}
	sqlite3_finalize(st);
	/* the whole run's chart starts at its first sample: before it faultline was loading its BPF programs */
	if (!l->t->pid && l->ns && l->s[0].t > l->t->t0 && l->s[0].t < l->t->t1)
		l->t->t0 = l->s[0].t;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The full series a process's counter part goes to. */
static int full_series(const struct loader *l, int proc, int part)
{
	return l->t->by == FL_BY_PROCESS ? proc : part;
}

/*
 * Replays the samples [0, upto) into per-full-series values and calls
 * on_step after each; returns the index of the sample after which the total
 * first reached its highest value (-1 if it never rose above zero).
 */
static ssize_t replay(struct loader *l, size_t upto, int64_t *val, int64_t *last, int64_t *peaks)
{
	int64_t total = 0, best = 0;
	ssize_t at = -1;

	for (size_t i = 0; i < upto; i++) {
		const struct sample *s = &l->s[i];

		for (int c = 0; c < FL_RSS_PARTS; c++) {
			int f = full_series(l, s->proc, c);
			int64_t delta = s->v[c] - last[(size_t)s->proc * FL_RSS_PARTS + c];

			last[(size_t)s->proc * FL_RSS_PARTS + c] = s->v[c];
			val[f] += delta;
			total += delta;
			if (peaks && val[f] > peaks[f])
				peaks[f] = val[f];
		}
		if (total > best) {
			best = total;
			at = (ssize_t)i;
		}
	}
	return at;
}

static int rank_cmp(const void *a, const void *b, void *ctx)
{
	const int64_t *at = ((int64_t **)ctx)[0], *peak = ((int64_t **)ctx)[1];
	int x = *(const int *)a, y = *(const int *)b;

	if (at[x] != at[y])
		return at[x] > at[y] ? -1 : 1;
	if (peak[x] != peak[y])
		return peak[x] > peak[y] ? -1 : 1;
	return x - y;
}

static char *series_name(const struct loader *l, int f)
{
	char base[256], *out = NULL;

	if (l->t->by == FL_BY_KIND)
		return strdup(fl_rss_part_names[f]);
	if (asprintf(&out, "%lld %s", (long long)l->pids[f], fl_basename(l->exes[f], base, sizeof(base))) < 0)
		return NULL;
	return out;
}

/* Finds the peak, ranks the full series, and keeps the top ones (the rest grouped as "other"). */
static int choose_series(struct loader *l, int top)
{
	struct fl_timeline *t = l->t;
	size_t nlast = (size_t)l->nprocs * FL_RSS_PARTS + 1;
	int64_t *val = calloc((size_t)l->nfull + 1, sizeof(int64_t)), *peak = calloc((size_t)l->nfull + 1, sizeof(int64_t));
	int64_t *last = calloc(nlast, sizeof(int64_t));
	int *order = calloc((size_t)l->nfull + 1, sizeof(int));
	int rc = -1, kept;
	ssize_t at;

	l->out_of = calloc((size_t)l->nfull + 1, sizeof(int));
	if (!val || !peak || !last || !order || !l->out_of)
		goto out;
	at = replay(l, l->ns, val, last, peak);
	memset(val, 0, (size_t)l->nfull * sizeof(int64_t));
	memset(last, 0, nlast * sizeof(int64_t));
	replay(l, at < 0 ? 0 : (size_t)at + 1, val, last, NULL);
	for (int f = 0; f < l->nfull; f++) {
		order[f] = f;
		t->peak += val[f];
	}
	t->peak_t = at < 0 ? t->t0 : l->s[at].t;
	qsort_r(order, (size_t)l->nfull, sizeof(int), rank_cmp, (int64_t *[]){ val, peak });
	kept = l->nfull <= top ? l->nfull : top - 1; /* "other" takes the last slot */
	t->nseries = kept + (kept < l->nfull);
	if (!(t->series = calloc((size_t)t->nseries + 1, sizeof(*t->series))))
		goto out;
	for (int i = 0; i < kept; i++) {
		int f = order[i];

		l->out_of[f] = i;
		t->series[i] = (struct fl_series){ .name = series_name(l, f), .peak = peak[f], .at_peak = val[f],
			.proc_id = t->by == FL_BY_PROCESS ? l->ids[f] : -1 };
		if (!t->series[i].name)
			goto out;
	}
	if (kept < l->nfull) {
		struct fl_series *o = &t->series[kept];

		for (int i = kept; i < l->nfull; i++) {
			l->out_of[order[i]] = kept;
			o->at_peak += val[order[i]];
		}
		o->proc_id = -1;
		if (asprintf(&o->name, "other (%d processes)", l->nfull - kept) < 0)
			goto out;
	}
	rc = 0;
out:
	free(val);
	free(peak);
	free(last);
	free(order);
	return rc;
}

int64_t fl_timeline_bin_start(const struct fl_timeline *t, int b)
{
	return t->t0 + (int64_t)((double)(t->t1 - t->t0) * b / t->nbins);
}

static int bin_of(const struct fl_timeline *t, int64_t ns)
{
	double b = (double)(ns - t->t0) * t->nbins / (double)(t->t1 - t->t0);

	return b < 0 ? 0 : b >= t->nbins ? t->nbins - 1 : (int)b;
}

/* Each bin gets the output series' values at the instant its total was highest. */
static int fill_bins(struct loader *l)
{
	struct fl_timeline *t = l->t;
	size_t nlast = (size_t)l->nprocs * FL_RSS_PARTS + 1;
	int64_t *cur = calloc((size_t)t->nseries + 1, sizeof(int64_t)), *last = calloc(nlast, sizeof(int64_t));
	int64_t total = 0;
	int bin = -1;

	t->rss = calloc((size_t)t->nbins * (size_t)(t->nseries + 1), sizeof(int64_t));
	t->total = calloc((size_t)t->nbins, sizeof(int64_t));
	if (!cur || !last || !t->rss || !t->total) {
		free(cur);
		free(last);
		return -1;
	}
	for (size_t i = 0; i <= l->ns; i++) {
		int b = i < l->ns ? bin_of(t, l->s[i].t) : t->nbins - 1;

		for (; bin < b; bin++) { /* bins start with the state carried in */
			t->total[bin + 1] = total;
			memcpy(&t->rss[(size_t)(bin + 1) * (size_t)t->nseries], cur, (size_t)t->nseries * sizeof(int64_t));
		}
		if (i == l->ns)
			break;
		for (int c = 0; c < FL_RSS_PARTS; c++) {
			const struct sample *s = &l->s[i];
			int64_t delta = s->v[c] - last[(size_t)s->proc * FL_RSS_PARTS + c];

			last[(size_t)s->proc * FL_RSS_PARTS + c] = s->v[c];
			cur[l->out_of[full_series(l, s->proc, c)]] += delta;
			total += delta;
		}
		if (total > t->total[bin]) {
			t->total[bin] = total;
			memcpy(&t->rss[(size_t)bin * (size_t)t->nseries], cur, (size_t)t->nseries * sizeof(int64_t));
		}
	}
	free(cur);
	free(last);
	return 0;
}

/* Whether the run has per-VMA fault counts at all (an eBPF recording). */
static int load_has_faults(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d, "SELECT fidelity = 'bpf' OR EXISTS (SELECT 1 FROM fault) FROM run");
	int rc = st ? fl_db_step(l->d, st) : -1;

	if (rc == SQLITE_ROW)
		l->t->has_faults = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Fault counts per bin and class; a fault row is a drain's count, placed at its latest fault. */
static int load_faults(struct loader *l)
{
	struct fl_timeline *t = l->t;
	char sql[1024] = "SELECT proc_id, time_ns";
	size_t len = strlen(sql);
	sqlite3_stmt *st;
	int rc;

	for (int c = 0; c < FL_NCLASSES; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", %s", fl_class_names[c]);
	snprintf(sql + len, sizeof(sql) - len, " FROM fault");
	if (load_has_faults(l) || !(t->faults = calloc((size_t)t->nbins * FL_NCLASSES, sizeof(int64_t))) ||
	    !(st = fl_db_prepare(l->d, sql)))
		return -1;
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int p = proc_of(l, sqlite3_column_int64(st, 0)), b;

		if (p < 0)
			continue;
		t->fault_rows++;
		b = bin_of(t, sqlite3_column_int64(st, 1) - l->d->start_ns);
		for (int c = 0; c < FL_NCLASSES; c++) {
			int64_t n = sqlite3_column_int64(st, 2 + c);

			t->faults[(size_t)b * FL_NCLASSES + c] += n;
			t->fault_total[c] += n;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int fl_timeline_load(struct fl_db *d, enum fl_series_by by, int64_t pid, int nbins, int top, struct fl_timeline *t)
{
	struct loader l = { .d = d, .t = t, .max_id = -1 };
	int rc;

	*t = (struct fl_timeline){ .by = by, .pid = pid, .nbins = nbins > 0 ? nbins : 1 };
	rc = load_procs(&l);
	if (!rc && pid && !l.nprocs) {
		fprintf(stderr, "faultline: %s: no process %lld in this recording\n", d->path, (long long)pid);
		rc = -2;
	}
	if (!rc) {
		l.nfull = by == FL_BY_PROCESS ? l.nprocs : FL_RSS_PARTS;
		rc = load_samples(&l) || choose_series(&l, top < 2 ? 2 : top) || fill_bins(&l) || load_faults(&l);
	}
	for (int i = 0; i < l.nprocs; i++)
		free(l.exes[i]);
	free(l.exes);
	free(l.ids);
	free(l.pids);
	free(l.pidx);
	free(l.s);
	free(l.out_of);
	if (rc) {
		if (rc != -2)
			fprintf(stderr, "faultline: %s: cannot read the resident memory timeline\n", d->path);
		fl_timeline_free(t);
		return -1;
	}
	return 0;
}

void fl_timeline_free(struct fl_timeline *t)
{
	for (int i = 0; t->series && i < t->nseries; i++)
		free(t->series[i].name);
	free(t->series);
	free(t->rss);
	free(t->total);
	free(t->faults);
	*t = (struct fl_timeline){ 0 };
}
