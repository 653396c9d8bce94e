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

/*
 * One change of one full series (a process, a counter part, a region) by
 * delta bytes.  The changes one reading made (an rss row, an smaps sample,
 * a process's end) share a group: the total is only looked at between
 * groups, so a reading that moves bytes from one series to another never
 * shows a total that did not exist.
 */
struct step {
	int f;                  /* full series */
	int64_t t;              /* ns after the run's start */
	int64_t delta;
	int64_t group;
};

struct loader {
	struct fl_db *d;
	struct fl_timeline *t;
	int64_t *ids, *pids;    /* per selected process: row id, pid */
	char **exes;
	int64_t *ends;          /* per selected process: end_ns, -1 alive at the end */
	int nprocs;
	int *pidx;              /* process.id -> index, -1 if not selected */
	int64_t max_id;
	struct step *s;
	size_t ns, caps;
	int64_t ngroups;
	int nfull;              /* series before grouping: processes, parts or regions */
	char **full_names;      /* FL_BY_REGION: "101 anon by fill_buffer" per full series */
	int *full_proc;         /* FL_BY_REGION: the process of each full series */
	int *out_of;            /* full series -> output series */
	int other;              /* the output series "other", -1 if none */
	size_t capchanges;
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
		int64_t *ends = exes ? realloc(l->ends, (size_t)l->nprocs * sizeof(*ends)) : NULL;

		if (ids)
			l->ids = ids;
		if (pids)
			l->pids = pids;
		if (exes)
			l->exes = exes;
		if (!ends) {
			l->nprocs--;
			break;
		}
		l->ends = ends;
		ends[i] = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4) - l->d->start_ns;
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

static int add_step(struct loader *l, int f, int64_t t, int64_t delta)
{
	if (!delta)
		return 0;
	if (l->ns == l->caps) {
		struct step *grown = realloc(l->s, (l->caps = l->caps ? 2 * l->caps : 1024) * sizeof(*grown));

		if (!grown)
			return -1;
		l->s = grown;
	}
	l->s[l->ns++] = (struct step){ .f = f, .t = t, .delta = delta, .group = l->ngroups };
	return 0;
}

/* The whole run's chart starts at its first reading: before it faultline was loading its BPF programs. */
static void start_at_first(struct loader *l, int64_t first)
{
	if (!l->t->pid && first > l->t->t0 && first < l->t->t1)
		l->t->t0 = first;
}

/* Every rss row of the selected processes and their ends (all zero), in time order, as steps. */
static int load_counters(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT proc_id, time_ns, anon, file, shmem, 0 FROM rss"
		" UNION ALL SELECT id, end_ns, 0, 0, 0, 1 FROM process WHERE end_ns IS NOT NULL ORDER BY 2, 6");
	int64_t *last = calloc((size_t)l->nprocs * FL_RSS_PARTS + 1, sizeof(int64_t)), first = -1;
	int rc = SQLITE_NOMEM;

	if (!st || !last)
		goto out;
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int p = proc_of(l, sqlite3_column_int64(st, 0));
		int64_t t = sqlite3_column_int64(st, 1) - l->d->start_ns;

		if (p < 0)
			continue;
		if (first < 0)
			first = t;
		for (int c = 0; c < FL_RSS_PARTS; c++) {
			int64_t v = sqlite3_column_int64(st, 2 + c), *was = &last[(size_t)p * FL_RSS_PARTS + c];

			if (add_step(l, l->t->by == FL_BY_PROCESS ? p : c, t, v - *was))
				goto out;
			*was = v;
		}
		l->ngroups++;
		l->t->nsamples += !sqlite3_column_int(st, 5);
	}
	start_at_first(l, first);
out:
	sqlite3_finalize(st);
	free(last);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A region's series name: "[heap]", a file's base name, or for anonymous
 * memory who made it ("anon by fill_buffer": the innermost frame of the
 * call that created its largest recorded piece).
 */
static char *region_series_name(const struct loader *l, int p, sqlite3_stmt *st)
{
	const char *path = (const char *)sqlite3_column_text(st, 3), *fn = (const char *)sqlite3_column_text(st, 5);
	char base[256], *out = NULL;
	int n;

	if (path && path[0] == '[')
		n = asprintf(&out, "%lld %s", (long long)l->pids[p], path);
	else if (path)
		n = asprintf(&out, "%lld %s", (long long)l->pids[p], fl_basename(path, base, sizeof(base)));
	else
		n = asprintf(&out, "%lld %s%s%s", (long long)l->pids[p], sqlite3_column_int(st, 6) ? "shared anon" : "anon",
			     fn ? " by " : "", fn ? fn : "");
	return n < 0 ? NULL : out;
}

/* The full series called name (of process p), added on first use; -1 out of memory. */
static int region_series(struct loader *l, int p, char *name)
{
	for (int f = l->nfull - 1; f >= 0; f--) /* regions of one process are few and come together */
		if (l->full_proc[f] == p && !strcmp(l->full_names[f], name)) {
			free(name);
			return f;
		}
	if (!(l->nfull & (l->nfull + 1)) || !l->nfull) { /* grow at 1, 2, 4, ... */
		size_t cap = 2 * (size_t)l->nfull + 2;
		char **names = realloc(l->full_names, cap * sizeof(char *));
		int *procs = names ? realloc(l->full_proc, cap * sizeof(int)) : NULL;

		if (names)
			l->full_names = names;
		if (!procs) {
			free(name);
			return -1;
		}
		l->full_proc = procs;
	}
	l->full_names[l->nfull] = name;
	l->full_proc[l->nfull] = p;
	return l->nfull++;
}

/* The steps of one process from one smaps sample (vals: its regions' bytes then) or its end (vals all 0). */
static int region_steps(struct loader *l, int p, int64_t t, int64_t *vals, int64_t *last)
{
	for (int f = 0; f < l->nfull; f++)
		if (l->full_proc[f] == p) {
			if (add_step(l, f, t, vals[f] - last[f]))
				return -1;
			last[f] = vals[f];
			vals[f] = 0;
		}
	l->ngroups++;
	return 0;
}

/*
 * Resident memory by region: every smaps sample of the selected processes
 * (region_rss).  A process's regions hold their bytes until its next
 * sample and drop to zero when it ends; between samples nothing is known
 * per region, so the chart is a step from one sample to the next.
 */
static int load_regions(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT s.proc_id, s.id, s.time_ns, r.path, r.rss,"
		" (SELECT f.function FROM piece_rss pr JOIN vma v ON v.id = pr.vma_id JOIN vma o ON o.id = v.origin_id"
		"  JOIN event e ON e.id = o.created_by JOIN stack_frame sf ON sf.stack_id = e.stack_id AND sf.idx = 0"
		"  JOIN frame f ON f.id = sf.frame_id WHERE pr.sample_id = s.id AND pr.region_start = r.start"
		"  ORDER BY pr.rss DESC, pr.vma_id LIMIT 1), r.shared"
		" FROM smaps_sample s JOIN region_rss r ON r.sample_id = s.id ORDER BY s.time_ns, s.id");
	int64_t *vals = NULL, *last = NULL, sample = -1, t = 0, first = -1;
	size_t cap = 0;
	int rc = SQLITE_NOMEM, p = -1, next_end = 0;
	int *by_end = calloc((size_t)l->nprocs + 1, sizeof(int));

	if (!st || !by_end)
		goto out;
	for (int i = 0; i < l->nprocs; i++)
		by_end[i] = i;
	/* ends in time order (insertion sort: processes are few next to samples) */
	for (int a = 1; a < l->nprocs; a++)
		for (int b = a; b > 0 && (uint64_t)l->ends[by_end[b]] < (uint64_t)l->ends[by_end[b - 1]]; b--) {
			int x = by_end[b];

			by_end[b] = by_end[b - 1];
			by_end[b - 1] = x;
		}
	for (;;) {
		int q = -1, f;
		char *name;

		rc = fl_db_step(l->d, st);
		if (rc == SQLITE_ROW) {
			q = proc_of(l, sqlite3_column_int64(st, 0));
			if (q < 0)
				continue;
		} else if (rc != SQLITE_DONE) {
			goto out;
		}
		if (p >= 0 && (q < 0 || sqlite3_column_int64(st, 1) != sample)) { /* the sample before is complete */
			for (; next_end < l->nprocs && l->ends[by_end[next_end]] >= 0 && l->ends[by_end[next_end]] <= t; next_end++)
				if (region_steps(l, by_end[next_end], l->ends[by_end[next_end]], vals, last))
					goto oom;
			if (region_steps(l, p, t, vals, last))
				goto oom;
		}
		if (q < 0)
			break;
		p = q;
		l->t->nsamples += sqlite3_column_int64(st, 1) != sample;
		sample = sqlite3_column_int64(st, 1);
		t = sqlite3_column_int64(st, 2) - l->d->start_ns;
		if (first < 0)
			first = t;
		if (!(name = region_series_name(l, p, st)) || (f = region_series(l, p, name)) < 0)
			goto oom;
		if ((size_t)l->nfull > cap) {
			size_t grown_cap = 2 * (size_t)l->nfull;
			int64_t *v = realloc(vals, grown_cap * sizeof(int64_t)), *w = v ? realloc(last, grown_cap * sizeof(int64_t)) : NULL;

			if (v)
				vals = v;
			if (!w)
				goto oom;
			last = w;
			memset(vals + cap, 0, (grown_cap - cap) * sizeof(int64_t));
			memset(last + cap, 0, (grown_cap - cap) * sizeof(int64_t));
			cap = grown_cap;
		}
		vals[f] += sqlite3_column_int64(st, 4);
	}
	for (; next_end < l->nprocs; next_end++)
		if (l->ends[by_end[next_end]] >= 0 && region_steps(l, by_end[next_end], l->ends[by_end[next_end]], vals, last))
			goto oom;
	start_at_first(l, first);
	rc = SQLITE_DONE;
	goto out;
oom:
	rc = SQLITE_NOMEM;
out:
	sqlite3_finalize(st);
	free(vals);
	free(last);
	free(by_end);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Applies the steps [0, upto) to per-full-series values; returns the index
 * of the last step of the group after which the total first reached its
 * highest value (-1 if it never rose above zero).
 */
static ssize_t replay(const struct loader *l, size_t upto, int64_t *val, int64_t *peaks)
{
	int64_t total = 0, best = 0;
	ssize_t at = -1;

	for (size_t i = 0; i < upto; i++) {
		const struct step *s = &l->s[i];

		val[s->f] += s->delta;
		total += s->delta;
		if (peaks && val[s->f] > peaks[s->f])
			peaks[s->f] = val[s->f];
		if ((i + 1 == upto || l->s[i + 1].group != s->group) && total > best) {
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
	if (l->t->by == FL_BY_REGION)
		return strdup(l->full_names[f]);
	if (asprintf(&out, "%lld %s", (long long)l->pids[f], fl_basename(l->exes[f], base, sizeof(base))) < 0)
		return NULL;
	return out;
}

/* Finds the peak, ranks the full series, and keeps the top ones (the rest grouped as "other"). */
static int choose_series(struct loader *l, int top)
{
	struct fl_timeline *t = l->t;
	int64_t *val = calloc((size_t)l->nfull + 1, sizeof(int64_t)), *peak = calloc((size_t)l->nfull + 1, sizeof(int64_t));
	int *order = calloc((size_t)l->nfull + 1, sizeof(int));
	int rc = -1, kept;
	ssize_t at;

	l->out_of = calloc((size_t)l->nfull + 1, sizeof(int));
	if (!val || !peak || !order || !l->out_of)
		goto out;
	at = replay(l, l->ns, val, peak);
	memset(val, 0, (size_t)l->nfull * sizeof(int64_t));
	replay(l, at < 0 ? 0 : (size_t)at + 1, val, NULL);
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
			.proc_id = t->by == FL_BY_PROCESS ? l->ids[f] : t->by == FL_BY_REGION ? l->ids[l->full_proc[f]] : -1 };
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
		l->other = kept;
		if (asprintf(&o->name, "other (%d %s)", l->nfull - kept, t->by == FL_BY_REGION ? "regions" : "processes") < 0)
			goto out;
	}
	rc = 0;
out:
	free(val);
	free(peak);
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

/* The output series the group ending at step i changed, with their values after it (t->changes). */
static int log_changes(struct loader *l, size_t i, const int64_t *cur)
{
	struct fl_timeline *t = l->t;
	size_t first = i, from = t->nchanges;

	while (first > 0 && l->s[first - 1].group == l->s[i].group)
		first--;
	for (size_t k = first; k <= i; k++) {
		int o = l->out_of[l->s[k].f];
		bool seen = false;

		for (size_t c = from; c < t->nchanges && !seen; c++)
			seen = t->changes[c].series == o;
		if (seen)
			continue;
		if (t->nchanges == l->capchanges) {
			struct fl_change *grown = realloc(t->changes, (l->capchanges = l->capchanges ? 2 * l->capchanges : 256) *
							  sizeof(*grown));

			if (!grown)
				return -1;
			t->changes = grown;
		}
		t->changes[t->nchanges++] = (struct fl_change){ .t = l->s[i].t, .series = o, .bytes = cur[o] };
	}
	return 0;
}

/* Each bin gets the output series' values at the instant its total was highest. */
static int fill_bins(struct loader *l)
{
	struct fl_timeline *t = l->t;
	int64_t *cur = calloc((size_t)t->nseries + 1, sizeof(int64_t));
	int64_t total = 0;
	int bin = -1;

	t->rss = calloc((size_t)t->nbins * (size_t)(t->nseries + 1), sizeof(int64_t));
	t->total = calloc((size_t)t->nbins, sizeof(int64_t));
	if (!cur || !t->rss || !t->total) {
		free(cur);
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
		cur[l->out_of[l->s[i].f]] += l->s[i].delta;
		total += l->s[i].delta;
		if (i + 1 < l->ns && l->s[i + 1].group == l->s[i].group)
			continue;
		if (total > t->total[bin]) {
			t->total[bin] = total;
			memcpy(&t->rss[(size_t)bin * (size_t)t->nseries], cur, (size_t)t->nseries * sizeof(int64_t));
		}
		if (l->other >= 0 && cur[l->other] > t->series[l->other].peak) /* "other"'s own peak, as a sum */
			t->series[l->other].peak = cur[l->other];
		if (t->by == FL_BY_REGION && log_changes(l, i, cur)) {
			free(cur);
			return -1;
		}
	}
	free(cur);
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

static int timeline_load(struct fl_db *d, enum fl_series_by by, int64_t pid, int nbins, int top, bool faults,
			 struct fl_timeline *t)
{
	struct loader l = { .d = d, .t = t, .max_id = -1, .other = -1 };
	int rc;

	*t = (struct fl_timeline){ .by = by, .pid = pid, .nbins = nbins > 0 ? nbins : 1 };
	rc = load_procs(&l);
	if (!rc && pid && !l.nprocs) {
		fprintf(stderr, "faultline: %s: no process %lld in this recording\n", d->path, (long long)pid);
		rc = -2;
	}
	if (!rc) {
		l.nfull = by == FL_BY_PROCESS ? l.nprocs : by == FL_BY_KIND ? FL_RSS_PARTS : 0;
		rc = (by == FL_BY_REGION ? load_regions(&l) : load_counters(&l)) || choose_series(&l, top < 2 ? 2 : top) ||
		     fill_bins(&l) || (faults && load_faults(&l));
	}
	for (int i = 0; i < l.nprocs; i++)
		free(l.exes[i]);
	free(l.exes);
	free(l.ends);
	for (int f = 0; l.full_names && f < l.nfull; f++)
		free(l.full_names[f]);
	free(l.full_names);
	free(l.full_proc);
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

int fl_timeline_load(struct fl_db *d, enum fl_series_by by, int64_t pid, int nbins, int top, struct fl_timeline *t)
{
	return timeline_load(d, by, pid, nbins, top, true, t);
}

int fl_timeline_load_resident(struct fl_db *d, enum fl_series_by by, int64_t pid, int nbins, int top,
			      struct fl_timeline *t)
{
	return timeline_load(d, by, pid, nbins, top, false, t);
}

void fl_timeline_free(struct fl_timeline *t)
{
	for (int i = 0; t->series && i < t->nseries; i++)
		free(t->series[i].name);
	free(t->series);
	free(t->rss);
	free(t->total);
	free(t->faults);
	free(t->changes);
	*t = (struct fl_timeline){ 0 };
}
