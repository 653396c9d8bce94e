/* SPDX-License-Identifier: MIT */
/*
 * estimate.c - resident memory between smaps samples (see estimate.h).
 *
 * Per recorded VMA row live at the moment t, in pages:
 *   - from the latest sample at or before t: the row's resident pages then
 *     (piece_rss).  A row made since by a split, a partial munmap or an
 *     mremap of a sampled row gets its ancestor's pages pro rata of size;
 *   - then, in time order, the faults counted on it (or on that ancestor)
 *     since the sample that make a page resident: first touches of anonymous
 *     memory (anon_new), copies of the zero page (cow_zero), swap-ins and
 *     file pages mapped (major_file, major_swap, pagecache: one page each,
 *     though fault-around may map up to 16), plus 511 pages per huge-page
 *     fault; copies of a page already resident (cow_anon, cow_file,
 *     cow_reuse) and zero-page reads add none;
 *   - and the frees the calls say: MADV_DONTNEED or MADV_REMOVE of k of
 *     its n pages releases k/n of what it then held (pages are taken as
 *     spread evenly over the row: exact for a row wholly resident or wholly
 *     freed).  munmap and mremap end or shrink rows, which then no longer
 *     count.  MADV_FREE releases nothing until reclaim takes the pages, so
 *     it counts for nothing.
 * Fault counts come in buckets (one per row and collector drain, stamped
 * with the latest fault's time); the collector drains them just before and
 * just after each read, so a bucket stamped before the read ended is taken
 * as seen by it, and the rest as after it (a fault during the read may be
 * either), as are the calls; a bucket straddling a free is taken as wholly
 * after it.  What the sample held on no recorded
 * row is carried unchanged.  The kernel's RSS counter at t (the latest rss
 * row; eBPF flushes it as a process exits) is the check: the residual.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "estimate.h"
#include "vec.h"

#define PAGE 4096.0
#define CHAIN_MAX 64            /* ancestors followed up from a live row */

/* A vma row of the process. */
struct row {
	int64_t id, start, end, parent, created, destroyed; /* destroyed -1: never */
	bool by_call;           /* destroyed by a call (not by the exit, an exec or a resync) */
	int64_t sampled;        /* resident bytes at the sample, -1: no piece then */
};

/* Faults counted on row elem go to live row `live`, times share (its part of elem). */
struct link {
	int64_t elem;
	size_t live;
	double share;
};

/* One change to a live row: pages made resident, or pages of it freed. */
struct change {
	size_t live;
	int64_t time;
	double pages;
	bool free;
};

struct work {
	struct fl_db *d;
	int64_t proc_id, t;
	int64_t sample_ns;      /* the sample's read began then ... */
	int64_t seen_ns;        /* ... and ended then: anything stamped later is after it */
	struct row *rows;
	size_t nrows;
	size_t *live;           /* indexes into rows: live at t, by start */
	size_t nlive;
	double *pages;          /* per live row: the estimate, in pages */
	int64_t *since;         /* per live row: its lineage began then (frees before do not apply) */
	struct link *links;
	size_t nlinks, caplinks;
	struct change *changes;
	size_t nchanges, capchanges;
};

static int by_elem(const void *a, const void *b)
{
	const struct link *x = a, *y = b;
	return (x->elem > y->elem) - (x->elem < y->elem);
}

static int by_live_time(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	if (x->live != y->live)
		return (x->live > y->live) - (x->live < y->live);
	if (x->time != y->time)
		return (x->time > y->time) - (x->time < y->time);
	return (int)x->free - (int)y->free; /* at one instant: the touch, then the free */
}

static struct row *find_row(struct work *w, int64_t id)
{
	size_t lo = 0, hi = w->nrows;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w->rows[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < w->nrows && w->rows[lo].id == id ? &w->rows[lo] : NULL;
}

static int add_change(struct work *w, struct change c)
{
	if (fl_vec_reserve((void **)&w->changes, &w->capchanges, w->nchanges + 1, sizeof(*w->changes)))
		return -1;
	w->changes[w->nchanges++] = c;
	return 0;
}

/* The process's rows (by id), with their resident bytes at the sample. */
static int load_rows(struct work *w, int64_t sample_id)
{
	sqlite3_stmt *st = fl_db_prepare(w->d, "SELECT id, start, end, coalesce(parent_id, 0), created_ns,"
					       " coalesce(destroyed_ns, -1), destroyed_by IS NOT NULL FROM vma"
					       " WHERE proc_id = ?1 ORDER BY id");
	int rc;
	size_t cap = 0;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, w->proc_id);
	while ((rc = fl_db_step(w->d, st)) == SQLITE_ROW) {
		if (fl_vec_reserve((void **)&w->rows, &cap, w->nrows + 1, sizeof(*w->rows)))
			break;
		w->rows[w->nrows++] = (struct row){ sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
						    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
						    sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5),
						    sqlite3_column_int(st, 6) != 0, -1 };
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	st = fl_db_prepare(w->d, "SELECT vma_id, sum(rss) FROM piece_rss WHERE sample_id = ?1 GROUP BY vma_id");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, sample_id);
	while ((rc = fl_db_step(w->d, st)) == SQLITE_ROW) {
		struct row *r = find_row(w, sqlite3_column_int64(st, 0));
		if (r)
			r->sampled = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int by_start(const void *a, const void *b, void *rows)
{
	const struct row *x = &((struct row *)rows)[*(const size_t *)a], *y = &((struct row *)rows)[*(const size_t *)b];
	return (x->start > y->start) - (x->start < y->start);
}

/* Is r live at t?  Rows the exit (or the recording's end) closed count at that very instant. */
static bool live_at(const struct row *r, int64_t t)
{
	return r->created <= t && (r->destroyed < 0 || r->destroyed > t || (!r->by_call && r->destroyed >= t));
}

/*
 * The live rows, each with what it held at the sample (through its
 * ancestors made since, pro rata), and the links that route the faults of
 * it and those ancestors to it.
 */
static int trace_lineage(struct work *w)
{
	w->live = calloc(w->nrows ? w->nrows : 1, sizeof(*w->live));
	if (!w->live)
		return -1;
	for (size_t i = 0; i < w->nrows; i++)
		if (live_at(&w->rows[i], w->t))
			w->live[w->nlive++] = i;
	qsort_r(w->live, w->nlive, sizeof(*w->live), by_start, w->rows);
	w->pages = calloc(w->nlive ? w->nlive : 1, sizeof(*w->pages));
	w->since = calloc(w->nlive ? w->nlive : 1, sizeof(*w->since));
	if (!w->pages || !w->since)
		return -1;
	for (size_t k = 0; k < w->nlive; k++) {
		const struct row *e = &w->rows[w->live[k]];
		double share = 1;
		for (int depth = 0; e && depth < CHAIN_MAX; depth++) {
			if (fl_vec_reserve((void **)&w->links, &w->caplinks, w->nlinks + 1, sizeof(*w->links)))
				return -1;
			w->links[w->nlinks++] = (struct link){ e->id, k, share };
			w->since[k] = e->created;
			if (e->sampled >= 0) {
				w->pages[k] = (double)e->sampled / PAGE * share;
				break;
			}
			if (!w->sample_ns || e->created <= w->seen_ns)
				break; /* it existed at the sample with nothing resident, or there is no sample */
			const struct row *p = e->parent ? find_row(w, e->parent) : NULL;
			if (p && p->end > p->start && e->end - e->start < p->end - p->start)
				share *= (double)(e->end - e->start) / (double)(p->end - p->start);
			e = p;
		}
	}
	qsort(w->links, w->nlinks, sizeof(*w->links), by_elem);
	return 0;
}

/* sql, whose ?1 is the process, ?2 and ?3 the span from the sample to the time estimated, prepared; NULL on error. */
static sqlite3_stmt *since_sample(const struct work *w, const char *sql)
{
	sqlite3_stmt *st = fl_db_prepare(w->d, sql);
	if (st) {
		sqlite3_bind_int64(st, 1, w->proc_id);
		sqlite3_bind_int64(st, 2, w->seen_ns);
		sqlite3_bind_int64(st, 3, w->t);
	}
	return st;
}

/* Faults since the sample that made pages resident, routed to the live rows. */
static int load_faults(struct work *w)
{
	sqlite3_stmt *st = since_sample(w, "SELECT vma_id, time_ns, anon_new + cow_zero + major_file + major_swap"
					   " + pagecache + 511 * thp FROM fault"
					   " WHERE proc_id = ?1 AND time_ns > ?2 AND time_ns <= ?3");
	int rc;
	if (!st)
		return -1;
	while ((rc = fl_db_step(w->d, st)) == SQLITE_ROW) {
		struct link key = { sqlite3_column_int64(st, 0), 0, 0 };
		int64_t n = sqlite3_column_int64(st, 2);
		struct link *l = n ? bsearch(&key, w->links, w->nlinks, sizeof(key), by_elem) : NULL;
		if (!l)
			continue;
		while (l > w->links && l[-1].elem == key.elem)
			l--;
		for (; l < w->links + w->nlinks && l->elem == key.elem; l++)
			if (add_change(w, (struct change){ l->live, sqlite3_column_int64(st, 1), (double)n * l->share, false }))
				rc = -1;
		if (rc < 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* MADV_DONTNEED (4), MADV_REMOVE (9), MADV_DONTNEED_LOCKED (24) since the sample, per live row overlapped. */
static int load_frees(struct work *w)
{
	sqlite3_stmt *st = since_sample(w, "SELECT time_ns, a0, a1 FROM event WHERE proc_id = ?1"
					   " AND kind = 'madvise' AND result = 0 AND a2 IN (4, 9, 24)"
					   " AND time_ns > ?2 AND time_ns <= ?3");
	int rc;
	if (!st)
		return -1;
	while ((rc = fl_db_step(w->d, st)) == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(st, 0), lo = sqlite3_column_int64(st, 1);
		int64_t hi = lo + ((sqlite3_column_int64(st, 2) + 4095) & ~4095LL);
		size_t a = 0, b = w->nlive; /* the first live row ending above lo (they do not overlap) */
		while (a < b) {
			size_t mid = (a + b) / 2;
			if (w->rows[w->live[mid]].end <= lo)
				a = mid + 1;
			else
				b = mid;
		}
		for (size_t k = a; k < w->nlive && w->rows[w->live[k]].start < hi; k++) {
			const struct row *r = &w->rows[w->live[k]];
			int64_t from = lo > r->start ? lo : r->start, to = hi < r->end ? hi : r->end;
			if (t >= w->since[k] && to > from &&
			    add_change(w, (struct change){ k, t, (double)(to - from) / PAGE, true })) {
				rc = -1;
				break;
			}
		}
		if (rc < 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Apply the changes in time order; the rows worth showing into e. */
static int settle(struct work *w, struct fl_estimate *e)
{
	qsort(w->changes, w->nchanges, sizeof(*w->changes), by_live_time);
	e->rows = calloc(w->nlive ? w->nlive : 1, sizeof(*e->rows));
	if (!e->rows)
		return -1;
	size_t c = 0;
	for (size_t k = 0; k < w->nlive; k++) {
		const struct row *r = &w->rows[w->live[k]];
		double size = (double)(r->end - r->start) / PAGE, est = w->pages[k], added = 0, freed = 0;
		for (; c < w->nchanges && w->changes[c].live == k; c++) {
			const struct change *ch = &w->changes[c];
			if (!ch->free) {
				est += ch->pages;
				added += ch->pages;
			} else if (size > 0) {
				double gone = est * (ch->pages < size ? ch->pages / size : 1);
				est -= gone;
				freed += gone;
			}
		}
		if (est > size)
			est = size;
		if (est < 0)
			est = 0;
		if (!(est > 0 || w->pages[k] > 0 || added > 0 || freed > 0))
			continue;
		struct fl_est_row *o = &e->rows[e->nrows++];
		*o = (struct fl_est_row){ r->id, r->start, r->end, (int64_t)(w->pages[k] * PAGE + 0.5),
					  (int64_t)(added * PAGE + 0.5), (int64_t)(freed * PAGE + 0.5),
					  (int64_t)(est * PAGE + 0.5) };
		e->rss += o->rss;
		e->added += o->added;
		e->freed += o->freed;
	}
	return 0;
}

static int by_rss(const void *a, const void *b)
{
	const struct fl_est_row *x = a, *y = b;
	if (x->rss != y->rss)
		return (x->rss < y->rss) - (x->rss > y->rss);
	return (x->start > y->start) - (x->start < y->start);
}

/* One int64 (or -1) from a query binding ?1 and ?2; *second gets column 1 when given. */
static int64_t one(struct fl_db *d, const char *sql, int64_t a, int64_t b, int64_t *second)
{
	sqlite3_stmt *st = fl_db_prepare(d, sql);
	int64_t v = -1;
	if (!st)
		return -2;
	sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, b);
	int rc = fl_db_step(d, st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		v = sqlite3_column_int64(st, 0);
		if (second)
			*second = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? v : -2;
}

/* The latest sample at or before t; 0 when none. */
static int pick_sample(struct fl_db *d, int64_t proc_id, struct fl_estimate *e)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT id, time_ns, reason, cost_ns FROM smaps_sample WHERE proc_id = ?1"
					    " AND time_ns <= ?2 ORDER BY time_ns DESC, id DESC LIMIT 1");
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, e->t_ns);
	int rc = fl_db_step(d, st);
	if (rc == SQLITE_ROW) {
		e->sample_id = sqlite3_column_int64(st, 0);
		e->sample_ns = sqlite3_column_int64(st, 1);
		snprintf(e->reason, sizeof(e->reason), "%s", (const char *)sqlite3_column_text(st, 2));
		e->seen_ns = e->sample_ns + sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int fl_estimate(struct fl_db *d, int64_t proc_id, int64_t t_ns, struct fl_estimate *e)
{
	memset(e, 0, sizeof(*e));
	e->t_ns = t_ns;
	e->kernel = -1;
	if (pick_sample(d, proc_id, e))
		return -1;
	struct work w = { .d = d, .proc_id = proc_id, .t = t_ns, .sample_ns = e->sample_ns, .seen_ns = e->seen_ns };
	int rc = load_rows(&w, e->sample_id) || trace_lineage(&w) || load_faults(&w) || load_frees(&w) ||
		 settle(&w, e) ? -1 : 0;
	free(w.rows);
	free(w.live);
	free(w.pages);
	free(w.since);
	free(w.links);
	free(w.changes);
	if (!rc && e->sample_id) {
		e->unrowed = one(d, "SELECT (SELECT coalesce(sum(rss), 0) FROM region_rss WHERE sample_id = ?1)"
				    " - (SELECT coalesce(sum(rss), 0) FROM piece_rss WHERE sample_id = ?1)",
				 e->sample_id, 0, NULL);
		if (e->unrowed < -1)
			rc = -1;
		else if (e->unrowed > 0)
			e->rss += e->unrowed;
		else
			e->unrowed = 0;
	}
	if (!rc) {
		e->kernel = one(d, "SELECT anon + file + shmem, time_ns FROM rss WHERE proc_id = ?1 AND time_ns <= ?2"
				   " ORDER BY time_ns DESC LIMIT 1", proc_id, t_ns, &e->kernel_ns);
		if (e->kernel < -1)
			rc = -1;
	}
	if (rc) {
		fl_estimate_free(e);
		return -1;
	}
	qsort(e->rows, e->nrows, sizeof(*e->rows), by_rss);
	return 0;
}

void fl_estimate_free(struct fl_estimate *e)
{
	free(e->rows);
	e->rows = NULL;
	e->nrows = 0;
}
