/* SPDX-License-Identifier: MIT */
/*
 * why.c - `faultline why`: a process's resident memory at one moment,
 * broken down region -> who made it -> bytes, adding up.
 *
 * The moment is an smaps sample (schema: smaps_sample): by default the one
 * with the most resident bytes of the process with the highest RSS peak.
 * At a moment after the latest sample before it (--at TIME between samples,
 * --at end of a process that exited with no sample just before: a fatal
 * signal), what is shown first is an estimate from that sample, the faults
 * and the frees since (estimate.h), said to be one, with the kernel's RSS
 * counter then and the residual; the sample it starts from follows.
 * A region is what the kernel kept as one VMA (region_rss); its bytes go to
 * the recorded VMA rows inside it (piece_rss: whole, or counted page by
 * page from pagemap), grouped by the stack of the call that created them.
 * Whatever no row holds is shown as the region's residual, and the total of
 * the regions is compared with what the kernel's RSS counter said then.
 *
 * A region holding sampled heap blocks (malloc's heap, arenas, own mmaps;
 * viewer/heapsites.h) is broken down a second way, by allocating call site: the
 * estimated live bytes of each site, with its sampling error, and what the
 * region's resident bytes hold beyond the live blocks (allocator overhead,
 * free chunks) on a line of its own, so the sites and that line add up to
 * the region's resident bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "estimate.h"
#include "frames.h"
#include "heapsites.h"
#include "output.h"
#include "rows.h"
#include "viewer.h"
#include "why.h"

#define USAGE "why FILE [--pid P] [--at peak|end|TIME] [--top N] [--format json]"
#define HEAP_SITES 8         /* heap sites listed per region (text); the rest on one line */

struct why {
	struct fl_db *d;
	struct fl_json *j;
	int64_t pid;            /* 0: the process with the highest peak */
	int64_t at;             /* -1: its sample with the most resident bytes; AT_END: its end */
	int top;                /* regions shown; the rest are summed in one line */
};

#define AT_END (-2)

/* The sample chosen: smaps_sample columns. */
struct sample {
	int64_t id, proc_id, pid, time_ns, cost_ns, regions, rss, pss, anon, swap;
	struct fl_opt held;     /* 'exit': how long the process waited for the read */
	int64_t peak, peak_ns;  /* the process's RSS peak as rss_stat counted it, and when */
	struct fl_opt rss_stat;
	char reason[16], exe[512];
};

static double pct(int64_t part, int64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

int fl_why_processes(struct fl_db *d, struct fl_json *j, const char *key, int top, int indent)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT p.pid, p.exe, max(r.anon + r.file + r.shmem), r.time_ns,"
		" (SELECT count(*) FROM smaps_sample s WHERE s.proc_id = p.id)"
		" FROM process p JOIN rss r ON r.proc_id = p.id GROUP BY p.id ORDER BY 3 DESC, p.id");
	int rc, n = 0;
	char size[32], when[32];
	if (!st)
		return -1;
	if (j) {
		fl_json_key(j, key);
		fl_json_open(j, '[');
	}
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		n++;
		if (j) {
			fl_json_open(j, '{');
			fl_json_kcol(j, "pid", st, 0);
			fl_json_kcol(j, "exe", st, 1);
			fl_json_kcol(j, "peak_rss", st, 2);
			fl_json_key(j, "peak_s");
			fl_json_real(j, (double)(sqlite3_column_int64(st, 3) - d->start_ns) / 1e9);
			fl_json_kcol(j, "samples", st, 4);
			fl_json_close(j, '}');
		} else {
			if (n == 1)
				printf("%*sprocesses by peak RSS\n", indent, "");
			if (n <= top)
				printf("%*s  %-8lld %10s at %-10s %s\n", indent, "", (long long)sqlite3_column_int64(st, 0),
				       fl_out_size(size, sizeof(size), sqlite3_column_int64(st, 2)),
				       fl_out_reltime(when, sizeof(when), sqlite3_column_int64(st, 3) - d->start_ns),
				       sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "?");
		}
	}
	sqlite3_finalize(st);
	if (j)
		fl_json_close(j, ']');
	else if (n > top)
		printf("%*s  ... %d more\n", indent, "", n - top);
	return rc == SQLITE_DONE ? n : -1;
}

/*
 * The sample: of the process given (else the one with the highest peak that
 * has samples), the one with the most resident bytes, or the latest at or
 * before --at (else the first after it).  Returns 1, 0 if none, -1.
 */
static int pick(struct why *w, struct sample *s)
{
	sqlite3_stmt *st = fl_db_prepare(w->d,
		"WITH cand AS (SELECT p.id, p.pid, p.exe, (SELECT max(r.anon + r.file + r.shmem) FROM rss r"
		"  WHERE r.proc_id = p.id) AS peak FROM process p WHERE (?1 = 0 OR p.pid = ?1)"
		"  AND EXISTS (SELECT 1 FROM smaps_sample s WHERE s.proc_id = p.id)"
		"  ORDER BY peak DESC, p.id LIMIT 1),"
		/* once, not once per sample: a thousand samples each sorting the process's RSS rows took 15 s */
		" one AS MATERIALIZED (SELECT c.*, (SELECT r.time_ns FROM rss r WHERE r.proc_id = c.id"
		"  ORDER BY r.anon + r.file + r.shmem DESC, r.time_ns LIMIT 1) AS peak_ns FROM cand c)"
		" SELECT s.id, s.proc_id, c.pid, s.time_ns, s.cost_ns, s.regions, s.rss, s.pss, s.anon, s.swap,"
		"  s.rss_stat, s.reason, c.exe, c.peak, c.peak_ns, s.held_ns"
		" FROM smaps_sample s JOIN one c ON c.id = s.proc_id"
		" ORDER BY CASE WHEN ?2 < 0 THEN -s.rss"
		"  WHEN s.time_ns <= ?2 THEN ?2 - s.time_ns ELSE (1 << 62) + s.time_ns - ?2 END,"
		"  -s.time_ns LIMIT 1"); /* of equal ones the latest: the model had more time to catch up */
	int rc;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, w->pid);
	/* its end: the latest sample */
	sqlite3_bind_int64(st, 2, w->at == AT_END ? INT64_MAX / 4 : w->at < 0 ? -1 : w->d->start_ns + w->at);
	rc = fl_db_step(w->d, st);
	if (rc == SQLITE_ROW) {
		int64_t *f[] = { &s->id, &s->proc_id, &s->pid, &s->time_ns, &s->cost_ns, &s->regions,
				 &s->rss, &s->pss, &s->anon, &s->swap };
		for (int i = 0; i < 10; i++)
			*f[i] = sqlite3_column_int64(st, i);
		s->rss_stat.set = sqlite3_column_type(st, 10) != SQLITE_NULL;
		s->rss_stat.v = sqlite3_column_int64(st, 10);
		snprintf(s->reason, sizeof(s->reason), "%s", (const char *)sqlite3_column_text(st, 11));
		snprintf(s->exe, sizeof(s->exe), "%s",
			 sqlite3_column_text(st, 12) ? (const char *)sqlite3_column_text(st, 12) : "?");
		s->peak = sqlite3_column_int64(st, 13);
		s->peak_ns = sqlite3_column_int64(st, 14);
		s->held.set = sqlite3_column_type(st, 15) != SQLITE_NULL;
		s->held.v = sqlite3_column_int64(st, 15);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* One sample's regions as fl_why_regions prints them. */
struct regions {
	struct fl_db *d;
	struct fl_json *j;
	int64_t sample_id, proc_id, total;
	const struct fl_why_view *view;
	struct fl_heap_view heap;       /* live sampled heap blocks at the sample (mean 0: none) */
};

/* Who made one piece: its creating stack's innermost frames (up to view->frames lines). */
static int creator(const struct regions *g, int64_t vma_id, char lines[][512])
{
	struct fl_vma *v = calloc(1, sizeof(*v));
	int n = -1, got = v ? fl_vma_get(g->d, g->proc_id, vma_id, v) : -1;
	if (got == 1)
		n = fl_vma_creator(g->d, v, g->view->frames, lines);
	else if (got == 0) { /* rows are written when they end: an incomplete recording lacks the live ones */
		snprintf(lines[0], 512, "a row the recording never wrote (it is incomplete)");
		n = 1;
	}
	fl_vma_free(v, v && v->kind ? 1 : 0); /* frees v as well: freeing it again crashed on a piece of another process */
	return n;
}

struct group {
	char lines[FL_WHY_FRAMES][512];
	int nlines, pieces;
	int64_t rss, anon, swap;
};

/* The pieces of one region grouped by creator, largest first. Returns the count or -1. */
static int groups(const struct regions *g, int64_t region_start, struct group **out)
{
	sqlite3_stmt *st = fl_db_prepare(g->d,
		"SELECT vma_id, rss, anon, swap FROM piece_rss WHERE sample_id = ?1 AND region_start = ?2"
		" ORDER BY rss DESC, vma_id");
	struct group *gs = NULL;
	int n = 0, rc;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, g->sample_id);
	sqlite3_bind_int64(st, 2, region_start);
	while ((rc = fl_db_step(g->d, st)) == SQLITE_ROW) {
		struct group one = { .pieces = 1, .rss = sqlite3_column_int64(st, 1),
				     .anon = sqlite3_column_int64(st, 2), .swap = sqlite3_column_int64(st, 3) };
		int k;
		one.nlines = creator(g, sqlite3_column_int64(st, 0), one.lines);
		if (one.nlines < 0) {
			rc = -1;
			break;
		}
		for (k = 0; k < n; k++)
			if (gs[k].nlines == one.nlines &&
			    !memcmp(gs[k].lines, one.lines, sizeof(one.lines[0]) * (size_t)one.nlines))
				break;
		if (k < n) {
			gs[k].pieces++;
			gs[k].rss += one.rss;
			gs[k].anon += one.anon;
			gs[k].swap += one.swap;
			continue;
		}
		struct group *grown = realloc(gs, (size_t)(n + 1) * sizeof(*gs));
		if (!grown) {
			rc = -1;
			break;
		}
		gs = grown;
		gs[n++] = one;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(gs);
		return -1;
	}
	for (int a = 1; a < n; a++) /* insertion sort by bytes: groups per region are few */
		for (int b = a; b > 0 && gs[b].rss > gs[b - 1].rss; b--) {
			struct group t = gs[b];
			gs[b] = gs[b - 1];
			gs[b - 1] = t;
		}
	*out = gs;
	return n;
}

/* ---- heap groups: a region's live heap blocks by allocating site ------------ */

static int heap_json(const struct regions *g, const struct fl_heap_range *h, int64_t rss)
{
	struct fl_json *j = g->j;
	struct fl_heap_shown *sh;
	int ns = fl_heap_sites_shown(g->d, h->sites, h->nsites, g->view->frames, &sh);
	if (ns < 0)
		return -1;
	fl_json_key(j, "heap");
	fl_json_open(j, '{');
	fl_json_kint(j, "mean", g->heap.mean);
	fl_json_key(j, "live");
	fl_json_real(j, h->bytes);
	fl_json_key(j, "err95");
	fl_json_real(j, fl_heap_err95(h->var));
	fl_json_kint(j, "samples", h->samples);
	fl_json_key(j, "sites");
	fl_json_open(j, '[');
	for (int i = 0; i < ns; i++) {
		fl_json_open(j, '{');
		fl_json_key(j, "stack");
		fl_json_open(j, '[');
		for (int k = 0; k < sh[i].nlines; k++)
			fl_json_str(j, sh[i].lines[k]);
		fl_json_close(j, ']');
		fl_json_key(j, "via"); /* the allocation wrapper skipped before `stack`, "" if none */
		fl_json_str(j, sh[i].via);
		fl_json_kint(j, "stack_id", sh[i].stack_ids[0]);
		fl_json_key(j, "stack_ids"); /* every allocating stack these frames stand for */
		fl_json_open(j, '[');
		for (int k = 0; k < sh[i].nstack_ids; k++)
			fl_json_int(j, sh[i].stack_ids[k]);
		fl_json_close(j, ']');
		fl_json_key(j, "live");
		fl_json_real(j, sh[i].bytes);
		fl_json_key(j, "err95");
		fl_json_real(j, fl_heap_err95(sh[i].var));
		fl_json_kint(j, "samples", sh[i].samples);
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	/* resident bytes beyond the live blocks: sites + this = the region's rss */
	fl_json_key(j, "not_in_live_blocks");
	fl_json_real(j, (double)rss - h->bytes);
	fl_json_close(j, '}');
	fl_heap_shown_free(sh, ns);
	return 0;
}

static int heap_text(const struct regions *g, const struct fl_heap_range *h, int64_t rss)
{
	char est[64], mean[32];
	double rest = 0, rest_var = 0;
	int64_t rest_samples = 0;
	int in = g->view->indent;
	struct fl_heap_shown *sh;
	int ns = fl_heap_sites_shown(g->d, h->sites, h->nsites, g->view->frames, &sh);
	if (ns < 0)
		return -1;
	if (g->heap.mean == 1)
		printf("%*s       the same bytes by allocating site (every allocation recorded):\n", in, "");
	else
		printf("%*s       the same bytes by allocating site (one allocation sampled per %s on average; "
		       "± is 95%%):\n", in, "", fl_out_size(mean, sizeof(mean), g->heap.mean));
	for (int i = 0; i < ns; i++) {
		const struct fl_heap_shown *s = &sh[i];
		if (i >= HEAP_SITES) {
			rest += s->bytes;
			rest_var += s->var;
			rest_samples += s->samples;
			continue;
		}
		printf("%*s       %-22s %5.1f%%  %s%s%s (%lld block%s)\n", in, "",
		       fl_heap_estimate(est, sizeof(est), s->bytes, s->var), pct((int64_t)s->bytes, rss), s->lines[0],
		       *s->via ? " via " : "", s->via, (long long)s->samples, s->samples == 1 ? "" : "s");
		for (int k = 1; k < s->nlines; k++)
			printf("%*s       %-22s         %s\n", in, "", "", s->lines[k]);
	}
	if (ns > HEAP_SITES)
		printf("%*s       %-22s %5.1f%%  %d other site%s (%lld blocks)\n", in, "",
		       fl_heap_estimate(est, sizeof(est), rest, rest_var), pct((int64_t)rest, rss), ns - HEAP_SITES,
		       ns - HEAP_SITES == 1 ? "" : "s", (long long)rest_samples);
	fl_heap_shown_free(sh, ns);
	/* what the resident pages hold beyond the live blocks, or (less) what live blocks do not have resident */
	double beyond = (double)rss - h->bytes, size = beyond < 0 ? -beyond : beyond;
	printf("%*s       %-22s %5.1f%%  %s\n", in, "", fl_heap_estimate(est, sizeof(est), size, h->var), pct((int64_t)size, rss),
	       beyond >= 0 ? "not in live blocks: allocator overhead, free chunks, the untrimmed top" :
	       size <= fl_heap_err95(h->var) ? "less: the estimate of live bytes is above the resident bytes, "
					       "within its sampling error" :
	       "less: live blocks not resident (pages never touched, or swapped out)");
	return 0;
}

/* The region's live sampled heap blocks by site (nothing if it holds none). */
static int heap_groups(const struct regions *g, int64_t start, int64_t end, int64_t rss)
{
	struct fl_heap_range h;
	int rc;
	if (!g->heap.mean)
		return 0;
	if (fl_heap_view_range(&g->heap, start, end, &h))
		return fl_db_error(g->d, "out of memory");
	if (!h.samples)
		return 0;
	rc = g->j ? heap_json(g, &h, rss) : heap_text(g, &h, rss);
	fl_heap_range_free(&h);
	return rc;
}

/* The heap blocks live at sample_id's moment into g->heap (none: mean 0).  0 or -1. */
static int heap_load(struct regions *g)
{
	sqlite3_stmt *st = fl_db_prepare(g->d, "SELECT time_ns FROM smaps_sample WHERE id = ?1");
	int rc;
	memset(&g->heap, 0, sizeof(g->heap));
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, g->sample_id);
	rc = fl_db_step(g->d, st);
	int64_t t = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -1;
	return fl_heap_view_load(g->d, g->proc_id, t, false, &g->heap) < 0 ? -1 : 0;
}

/* A region's name: its path as smaps gave it, else what the rows inside call it. */
static const char *region_name(const unsigned char *path, int shared)
{
	if (path && *path)
		return (const char *)path;
	return shared ? "[anon shared]" : "[anon]";
}

static int region_json(const struct regions *g, sqlite3_stmt *st, int rank, const struct group *gs, int ng,
		       int64_t held)
{
	struct fl_json *j = g->j;
	int64_t rss = sqlite3_column_int64(st, 5);
	char perms[8];
	fl_json_open(j, '{');
	fl_json_kint(j, "rank", rank);
	fl_json_kcol(j, "start", st, 0);
	fl_json_kcol(j, "end", st, 1);
	fl_json_kstr(j, "perms", fl_out_perms(perms, sizeof(perms), sqlite3_column_int64(st, 2),
					      sqlite3_column_int(st, 3) ? 1 : 2));
	fl_json_kcol(j, "path", st, 4);
	fl_json_kint(j, "rss", rss);
	fl_json_key(j, "percent");
	fl_json_real(j, pct(rss, g->total));
	fl_json_kcol(j, "pss", st, 6);
	fl_json_kcol(j, "anon", st, 7);
	fl_json_kcol(j, "swap", st, 8);
	fl_json_kcol(j, "private_dirty", st, 9);
	fl_json_key(j, "creators");
	fl_json_open(j, '[');
	for (int i = 0; i < ng; i++) {
		fl_json_open(j, '{');
		fl_json_key(j, "stack");
		fl_json_open(j, '[');
		for (int k = 0; k < gs[i].nlines; k++)
			fl_json_str(j, gs[i].lines[k]);
		fl_json_close(j, ']');
		fl_json_kint(j, "pieces", gs[i].pieces);
		fl_json_kint(j, "rss", gs[i].rss);
		fl_json_kint(j, "anon", gs[i].anon);
		fl_json_kint(j, "swap", gs[i].swap);
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	fl_json_kint(j, "unattributed", rss - held);
	if (heap_groups(g, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), rss))
		return -1;
	fl_json_close(j, '}');
	return 0;
}

static int region_text(const struct regions *g, sqlite3_stmt *st, int rank, const struct group *gs, int ng,
		       int64_t held)
{
	int64_t start = sqlite3_column_int64(st, 0), end = sqlite3_column_int64(st, 1);
	int64_t rss = sqlite3_column_int64(st, 5), rest = 0;
	int in = g->view->indent, nrest = 0;
	char perms[8], a[32], b[32], c[32];
	fl_out_perms(perms, sizeof(perms), sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3) ? 1 : 2);
	printf("%*s%3d. %10s %5.1f%%  %llx-%llx %s %s (%s mapped, %s anon)\n", in, "", rank,
	       fl_out_size(a, sizeof(a), rss), pct(rss, g->total), (long long)start, (long long)end, perms,
	       region_name(sqlite3_column_text(st, 4), sqlite3_column_int(st, 3)),
	       fl_out_size(b, sizeof(b), end - start), fl_out_size(c, sizeof(c), sqlite3_column_int64(st, 7)));
	for (int i = 0; i < ng; i++) {
		char pieces[32] = "";
		if (i >= g->view->groups) {
			rest += gs[i].rss;
			nrest++;
			continue;
		}
		if (gs[i].pieces > 1)
			snprintf(pieces, sizeof(pieces), " (%d VMAs)", gs[i].pieces);
		printf("%*s     %10s %5.1f%%  %s%s\n", in, "", fl_out_size(a, sizeof(a), gs[i].rss), pct(gs[i].rss, rss),
		       gs[i].lines[0], pieces);
		for (int k = 1; k < gs[i].nlines; k++)
			printf("%*s                        %s\n", in, "", gs[i].lines[k]);
	}
	if (nrest)
		printf("%*s     %10s %5.1f%%  by %d other creators\n", in, "", fl_out_size(a, sizeof(a), rest),
		       pct(rest, rss), nrest);
	if (rss != held)
		printf("%*s     %10s %5.1f%%  (no recorded VMA: the model had not seen its call yet, or the "
		       "region was too large to read page by page)\n", in, "", fl_out_size(a, sizeof(a), rss - held),
		       pct(rss - held, rss));
	return heap_groups(g, start, end, rss);
}

static int region(const struct regions *g, sqlite3_stmt *st, int rank)
{
	struct group *gs = NULL;
	int64_t held = 0;
	int ng = groups(g, sqlite3_column_int64(st, 0), &gs);
	if (ng < 0)
		return -1;
	for (int i = 0; i < ng; i++)
		held += gs[i].rss;
	int rc = g->j ? region_json(g, st, rank, gs, ng, held) : region_text(g, st, rank, gs, ng, held);
	free(gs);
	return rc;
}

int fl_why_regions(struct fl_db *d, struct fl_json *j, int64_t sample_id, int64_t proc_id, int64_t total,
		   const struct fl_why_view *view)
{
	struct regions g = { d, j, sample_id, proc_id, total, view, { 0 } };
	sqlite3_stmt *st;
	int rc, n = 0;
	int64_t rest = 0, nrest = 0;
	char a[32];
	if (heap_load(&g))
		return -1;
	st = fl_db_prepare(d, "SELECT start, end, prot, shared, path, rss, pss, anon, swap, private_dirty FROM region_rss"
			      " WHERE sample_id = ?1 ORDER BY rss DESC, start");
	if (!st) {
		fl_heap_view_free(&g.heap);
		return -1;
	}
	sqlite3_bind_int64(st, 1, sample_id);
	if (j) {
		fl_json_key(j, "regions");
		fl_json_open(j, '[');
	}
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		if (++n > view->top) {
			rest += sqlite3_column_int64(st, 5);
			nrest++;
			continue;
		}
		if (region(&g, st, n)) {
			rc = -1;
			break;
		}
	}
	sqlite3_finalize(st);
	fl_heap_view_free(&g.heap);
	if (rc != SQLITE_DONE)
		return -1;
	if (j) {
		fl_json_close(j, ']');
		fl_json_key(j, "other_regions");
		fl_json_open(j, '{');
		fl_json_kint(j, "count", nrest);
		fl_json_kint(j, "rss", rest);
		fl_json_close(j, '}');
	} else if (nrest) {
		printf("%*s     %10s %5.1f%%  in %lld more regions (--top shows more)\n", view->indent, "",
		       fl_out_size(a, sizeof(a), rest), pct(rest, total), (long long)nrest);
	}
	return 0;
}

void fl_why_heap_peak(struct fl_db *d, struct fl_json *j, int64_t proc_id, int64_t pid, int64_t sample_id,
		      int indent)
{
	struct fl_heap_moment most;
	double here = 0;
	char a[32], b[32], c[32], t[32];

	if (fl_heap_live_peak(d, proc_id, sample_id, &most, &here) != 1)
		return;
	if (j) {
		fl_json_key(j, "heap_peak");
		fl_json_open(j, '{');
		fl_json_key(j, "time_s");
		fl_json_real(j, (double)(most.time_ns - d->start_ns) / 1e9);
		fl_json_kint(j, "sample", most.sample_id);
		fl_json_key(j, "live");
		fl_json_real(j, most.live);
		fl_json_kint(j, "rss", most.rss);
		fl_json_key(j, "live_here");
		fl_json_real(j, here);
		fl_json_close(j, '}');
		return;
	}
	if (most.sample_id == sample_id || most.live <= here + here / 10 + (1 << 20))
		return;
	/* in microseconds rounded up: --at takes the latest sample at or before the time given */
	int64_t us = (most.time_ns - d->start_ns + 999) / 1000;
	snprintf(t, sizeof(t), "%lld.%06llds", (long long)(us / 1000000), (long long)(us % 1000000));
	printf("%*sits live heap blocks held the most at %s: ~%s, against ~%s here (RSS then %s): "
	       "`faultline why --pid %lld --at %s` shows that moment\n", indent, "", t,
	       fl_out_size(a, sizeof(a), (int64_t)most.live), fl_out_size(b, sizeof(b), (int64_t)here),
	       fl_out_size(c, sizeof(c), most.rss), (long long)pid, t);
}

static void header(struct why *w, const struct sample *s)
{
	char a[32], b[32], c[32], t[32], cost[32];
	fl_out_reltime(t, sizeof(t), s->time_ns - w->d->start_ns);
	fl_out_reltime(cost, sizeof(cost), s->cost_ns);
	if (w->j) {
		fl_json_kint(w->j, "pid", s->pid);
		fl_json_kstr(w->j, "exe", s->exe);
		fl_json_key(w->j, "sample");
		fl_json_open(w->j, '{');
		fl_json_kint(w->j, "id", s->id);
		fl_json_key(w->j, "time_s");
		fl_json_real(w->j, (double)(s->time_ns - w->d->start_ns) / 1e9);
		fl_json_kstr(w->j, "reason", s->reason);
		fl_json_kint(w->j, "rss", s->rss);
		fl_json_kint(w->j, "pss", s->pss);
		fl_json_kint(w->j, "anon", s->anon);
		fl_json_kint(w->j, "swap", s->swap);
		fl_json_opt(w->j, "rss_stat", s->rss_stat);
		fl_json_kint(w->j, "peak_rss", s->peak);
		fl_json_key(w->j, "peak_s");
		fl_json_real(w->j, (double)(s->peak_ns - w->d->start_ns) / 1e9);
		fl_json_kint(w->j, "regions", s->regions);
		fl_json_kint(w->j, "cost_ns", s->cost_ns);
		fl_json_opt(w->j, "held_ns", s->held);
		fl_json_close(w->j, '}');
		fl_why_heap_peak(w->d, w->j, s->proc_id, s->pid, s->id, 2);
		return;
	}
	printf("pid %lld %s: %s resident at %s (smaps, %s; %lld regions read in %s)\n", (long long)s->pid, s->exe,
	       fl_out_size(a, sizeof(a), s->rss), t, s->reason, (long long)s->regions, cost);
	if (s->held.set)
		printf("  measured just before it exited: it waited %s for this read\n",
		       fl_out_reltime(b, sizeof(b), s->held.v));
	printf("  anon %s, pss %s, swap %s", fl_out_size(a, sizeof(a), s->anon), fl_out_size(b, sizeof(b), s->pss),
	       fl_out_size(c, sizeof(c), s->swap));
	if (s->rss_stat.set)
		printf("; the kernel's RSS counter said %s just before (it lags by up to 64 pages per CPU)",
		       fl_out_size(a, sizeof(a), s->rss_stat.v));
	printf("\n");
	if (s->peak > s->rss + s->rss / 50)
		printf("  its RSS peak was %s at %s: no sample caught it (samples wait 20x their cost), so %.0f%% of "
		       "it is explained here\n", fl_out_size(a, sizeof(a), s->peak),
		       fl_out_reltime(t, sizeof(t), s->peak_ns - w->d->start_ns), pct(s->rss, s->peak));
	fl_why_heap_peak(w->d, w->j, s->proc_id, s->pid, s->id, 2);
	printf("\n");
}

/* The moment asked for, in ns: the sample's own (peak), --at's, or the process's end. */
static int64_t moment(const struct why *w, const struct sample *s)
{
	int64_t t = w->d->end_ns;
	if (w->at == -1)
		return s->time_ns;
	if (w->at >= 0)
		return w->d->start_ns + w->at;
	sqlite3_stmt *st = fl_db_prepare(w->d, "SELECT end_ns FROM process WHERE id = ?1");
	if (st) {
		sqlite3_bind_int64(st, 1, s->proc_id);
		if (fl_db_step(w->d, st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			t = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return t;
}

/*
 * Is the moment after the sample, so that what is shown is an estimate?  An
 * exit sample is the end, and a time as faultline prints it (to the
 * microsecond, rounded up where it names a sample) is the sample's.
 */
static bool estimated(const struct sample *s, int64_t t)
{
	return strcmp(s->reason, "exit") && t >= s->time_ns + 1000;
}

static void estimate_json(struct why *w, const struct fl_estimate *e)
{
	struct fl_json *j = w->j;
	fl_json_key(j, "estimate");
	fl_json_open(j, '{');
	fl_json_key(j, "time_s");
	fl_json_real(j, (double)(e->t_ns - w->d->start_ns) / 1e9);
	fl_json_kint(j, "from_sample", e->sample_id);
	fl_json_kstr(j, "from_reason", e->reason);
	fl_json_kint(j, "rss", e->rss);
	fl_json_kint(j, "added", e->added);
	fl_json_kint(j, "freed", e->freed);
	fl_json_kint(j, "unrowed", e->unrowed);
	fl_json_opt(j, "kernel_rss", (struct fl_opt){ e->kernel >= 0, e->kernel });
	fl_json_opt(j, "residual", (struct fl_opt){ e->kernel >= 0, e->kernel - e->rss });
	fl_json_key(j, "rows");
	fl_json_open(j, '[');
	for (size_t i = 0; i < e->nrows && (int)i < w->top; i++) {
		const struct fl_est_row *r = &e->rows[i];
		fl_json_open(j, '{');
		fl_json_kint(j, "vma_id", r->vma_id);
		fl_json_kint(j, "start", r->start);
		fl_json_kint(j, "end", r->end);
		fl_json_kint(j, "sampled", r->sampled);
		fl_json_kint(j, "added", r->added);
		fl_json_kint(j, "freed", r->freed);
		fl_json_kint(j, "rss", r->rss);
		fl_json_close(j, '}');
	}
	fl_json_close(j, ']');
	fl_json_close(j, '}');
}

static void estimate_text(struct why *w, const struct sample *s, const struct fl_estimate *e)
{
	char a[32], b[32], c[32], t[32], t0[32];
	fl_out_reltime(t, sizeof(t), e->t_ns - w->d->start_ns);
	fl_out_reltime(t0, sizeof(t0), e->sample_ns - w->d->start_ns);
	printf("pid %lld %s: about %s resident at %s: an ESTIMATE, not a measurement (no smaps sample then)\n",
	       (long long)s->pid, s->exe, fl_out_size(a, sizeof(a), e->rss), t);
	printf("  from smaps sample %lld at %s (%s): %s then, %s made resident by faults since, %s freed since\n",
	       (long long)e->sample_id, t0, e->reason, fl_out_size(a, sizeof(a), s->rss),
	       fl_out_size(b, sizeof(b), e->added), fl_out_size(c, sizeof(c), e->freed));
	if (e->kernel >= 0) {
		int64_t r = e->kernel - e->rss;
		printf("  the kernel's RSS counter said %s at %s: residual %s%s (what the estimate misses, or counts "
		       "too much)\n", fl_out_size(a, sizeof(a), e->kernel),
		       fl_out_reltime(c, sizeof(c), e->kernel_ns - w->d->start_ns), r < 0 ? "-" : "",
		       fl_out_size(b, sizeof(b), r < 0 ? -r : r));
	}
	for (size_t i = 0; i < e->nrows && (int)i < w->top; i++) {
		const struct fl_est_row *r = &e->rows[i];
		char sa[32], ad[32], fr[32];
		printf("  %10s  %llx-%llx  (vma %lld: %s at the sample, +%s, -%s)\n", fl_out_size(a, sizeof(a), r->rss),
		       (unsigned long long)r->start, (unsigned long long)r->end, (long long)r->vma_id,
		       fl_out_size(sa, sizeof(sa), r->sampled), fl_out_size(ad, sizeof(ad), r->added),
		       fl_out_size(fr, sizeof(fr), r->freed));
	}
	if (e->unrowed)
		printf("  %10s  on no recorded VMA at the sample, carried as it was\n", fl_out_size(a, sizeof(a), e->unrowed));
	printf("\nthe sample it starts from:\n");
}

/* At a moment after the sample: the estimate first (estimate.h), marked as such.  0 or -1. */
static int show_moment(struct why *w, const struct sample *s)
{
	int64_t t = moment(w, s);
	bool est = estimated(s, t);
	if (w->j) {
		fl_json_key(w->j, "moment");
		fl_json_open(w->j, '{');
		fl_json_kstr(w->j, "kind", est ? "estimate" : "sample");
		fl_json_key(w->j, "time_s");
		fl_json_real(w->j, (double)((est ? t : s->time_ns) - w->d->start_ns) / 1e9);
		fl_json_kint(w->j, "sample_id", s->id);
		fl_json_close(w->j, '}');
	}
	if (!est)
		return 0;
	struct fl_estimate e;
	if (fl_estimate(w->d, s->proc_id, t, &e))
		return -1;
	if (w->j)
		estimate_json(w, &e);
	else
		estimate_text(w, s, &e);
	fl_estimate_free(&e);
	return 0;
}

/* Whether the file has the sample tables (schema version 3 on). */
static bool has_samples(struct fl_db *d)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT 1 FROM sqlite_master WHERE name = 'smaps_sample'");
	bool yes = st && fl_db_step(d, st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

static int on_option(void *ctx, int c, const char *arg)
{
	struct why *w = ctx;
	char *end;
	switch (c) {
	case 'p':
		w->pid = strtoll(arg, &end, 10);
		if (*end || w->pid <= 0)
			return fl_cli_usage_error(&(struct fl_cli){ .usage = USAGE }, "--pid wants a pid, not '%s'", arg);
		return -1;
	case 'a':
		if (!strcmp(arg, "peak") || !strcmp(arg, "end")) {
			w->at = !strcmp(arg, "peak") ? -1 : AT_END;
			return -1;
		}
		if (fl_out_parse_time(arg, &w->at))
			return fl_cli_usage_error(&(struct fl_cli){ .usage = USAGE },
						  "--at wants peak, end or a time like 1.5s, not '%s'", arg);
		return -1;
	case 't':
		w->top = (int)strtol(arg, &end, 10);
		if (*end || w->top < 1)
			return fl_cli_usage_error(&(struct fl_cli){ .usage = USAGE },
						  "--top wants a positive number, not '%s'", arg);
		return -1;
	}
	return 2;
}

/*
 * `why --format json` of the highest peak (of pid, unless 0) into out, as
 * fl_cmd_why writes it: `html` embeds exactly this.  Returns 0, 1 when the
 * recording has no resident-memory sample (of pid), -1 on an error.
 */
int fl_why_json(struct fl_db *d, int64_t pid, int top, FILE *out)
{
	struct why w = { .d = d, .pid = pid, .at = -1, .top = top };
	struct sample s = { 0 };
	struct fl_json j;
	int rc;

	if (!has_samples(d))
		return 1;
	fl_json_init(&j, out);
	w.j = &j;
	fl_json_open(&j, '{');
	rc = fl_why_processes(d, w.j, "processes", 10, 0) < 0 ? -1 : pick(&w, &s);
	if (rc == 1) {
		header(&w, &s);
		rc = fl_why_regions(d, w.j, s.id, s.proc_id, s.rss,
				    &(struct fl_why_view){ .top = w.top, .groups = INT32_MAX, .frames = FL_WHY_FRAMES });
		fl_json_close(&j, '}');
		return rc ? -1 : 0;
	}
	return rc == 0 ? 1 : -1;
}

int fl_cmd_why(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS, { "pid", required_argument, NULL, 'p' },
						 { "at", required_argument, NULL, 'a' },
						 { "top", required_argument, NULL, 't' }, { 0 } };
	struct fl_cli cli = { .usage = USAGE };
	struct why w = { .at = -1, .top = 10 };
	struct sample s = { 0 };
	struct fl_json j;
	struct fl_db d;
	int rc = fl_cli_parse(&cli, argc, argv, ":h", options, on_option, &w);
	if (rc >= 0)
		return rc;
	if ((rc = fl_cli_open_recording(&cli, argc, argv, &d)) >= 0)
		return rc;
	w.d = &d;
	if (!has_samples(&d)) {
		fprintf(stderr, "faultline why: %s: recorded by an older faultline (no resident-memory samples)\n",
			argv[optind]);
		fl_db_close(&d);
		return 1;
	}
	if (cli.json) {
		fl_json_init(&j, stdout);
		w.j = &j;
		fl_json_open(&j, '{');
	}
	rc = fl_why_processes(&d, w.j, "processes", 10, 0);
	if (rc > 0 && !w.j)
		printf("\n");
	rc = rc < 0 ? -1 : pick(&w, &s);
	if (rc == 0) {
		fprintf(stderr, "faultline why: %s: no resident-memory sample%s (recorded by an older faultline, "
			"or the process ended before its first sample)\n", argv[optind], w.pid ? " of that pid" : "");
		rc = -1;
	} else if (rc == 1) {
		rc = show_moment(&w, &s);
		if (!rc) {
			header(&w, &s);
			rc = fl_why_regions(&d, w.j, s.id, s.proc_id, s.rss,
					    &(struct fl_why_view){ .top = w.top, .groups = INT32_MAX,
								   .frames = FL_WHY_FRAMES });
		}
	}
	if (cli.json && !rc)
		fl_json_close(&j, '}');
	fl_db_close(&d);
	return rc ? 1 : 0;
}
