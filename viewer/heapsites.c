/* SPDX-License-Identifier: MIT */
/* heapsites.c - sampled heap blocks live at a time, by region and call site (see heapsites.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "heapsites.h"
#include "vec.h"
#include "output.h"
#include "rows.h"

#define PAGE 4096
/* glibc's arenas are reservations of HEAP_MAX_SIZE (64 MiB on 64-bit), aligned to it. */
#define ARENA_BYTES (64LL << 20)
/* A block malloc served with its own mmap starts one chunk header (16 bytes) in. */
#define MMAP_CHUNK_HEADER 16

/* A live sample, placed: its region key (-1: the brk heap, 0: in no VMA, else the origin row). */
struct placed {
	int64_t region, stack_id, addr;
	double w, var;
	int vma;                /* index in the VMAs at the time, -1 if none */
};

double fl_heap_err95(double var)
{
	return 1.96 * sqrt(var > 0 ? var : 0);
}

const char *fl_heap_estimate(char *buf, size_t n, double bytes, double var)
{
	char a[32], b[32];

	if (var <= 0)
		snprintf(buf, n, "%s", fl_out_size(a, sizeof(a), (int64_t)(bytes + 0.5)));
	else
		snprintf(buf, n, "%s ±%s", fl_out_size(a, sizeof(a), (int64_t)(bytes + 0.5)),
			 fl_out_size(b, sizeof(b), (int64_t)(fl_heap_err95(var) + 0.5)));
	return buf;
}

/* Does the process have heap samples at all (and with which mean)?  1, 0, or -1. */
static int heap_mean(struct fl_db *d, int64_t proc_id, int64_t *mean)
{
	sqlite3_stmt *st;
	int rc;

	/* a recording older than schema 3 has no such table */
	if (sqlite3_prepare_v2(d->db, "SELECT max(mean) FROM heap_sample WHERE proc_id = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, proc_id);
	rc = fl_db_step(d, st);
	*mean = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc < 0 ? -1 : *mean != 0;
}

static int find_vma(const struct fl_vma *v, int n, int64_t addr)
{
	int lo = 0, hi = n - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (addr < v[mid].start)
			hi = mid - 1;
		else if (addr >= v[mid].end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

static int by_region_stack(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;

	if (x->region != y->region)
		return x->region < y->region ? -1 : 1;
	return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

static int by_addr(const void *a, const void *b)
{
	int64_t x = ((const struct fl_heap_block *)a)->addr, y = ((const struct fl_heap_block *)b)->addr;
	return x < y ? -1 : x > y;
}

static int by_stack(const void *a, const void *b)
{
	int64_t x = ((const struct fl_heap_block *)a)->stack_id, y = ((const struct fl_heap_block *)b)->stack_id;
	return x < y ? -1 : x > y;
}

static int by_bytes_region(const void *a, const void *b)
{
	double x = ((const struct fl_heap_region *)a)->bytes, y = ((const struct fl_heap_region *)b)->bytes;
	return x > y ? -1 : x < y;
}

static int by_bytes_site(const void *a, const void *b)
{
	double x = ((const struct fl_heap_site *)a)->bytes, y = ((const struct fl_heap_site *)b)->bytes;
	return x > y ? -1 : x < y;
}

/* The blocks live at t, placed in the VMAs live then.  Returns the count or -1. */
static int load_live(struct fl_db *d, int64_t proc_id, int64_t t, bool at_end, const struct fl_vma *v, int nv,
		     struct placed **out)
{
	sqlite3_stmt *st = fl_db_prepare(d, at_end
		? "SELECT addr, size, weight, stack_id FROM heap_sample WHERE proc_id = ?1 AND free_ns IS NULL"
		: "SELECT addr, size, weight, stack_id FROM heap_sample WHERE proc_id = ?1 AND alloc_ns <= ?2"
		  " AND (free_ns IS NULL OR free_ns > ?2)");
	struct placed *p = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, t);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		if (n == cap) {
			struct placed *g = realloc(p, (cap = cap ? cap * 2 : 256) * sizeof(*p));
			if (!g) {
				rc = fl_db_error(d, "out of memory");
				break;
			}
			p = g;
		}
		struct placed *s = &p[n++];
		double size = (double)sqlite3_column_int64(st, 1);
		s->addr = sqlite3_column_int64(st, 0);
		s->w = sqlite3_column_double(st, 2);
		s->var = s->w * (s->w - size);
		s->stack_id = sqlite3_column_int64(st, 3);
		s->vma = find_vma(v, nv, s->addr);
		s->region = s->vma < 0 ? 0 : !strcmp(v[s->vma].kind, "heap") ? -1 : v[s->vma].origin_id;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(p);
		return -1;
	}
	*out = p;
	return (int)n;
}

/* First-touch faults (bytes) in the region up to t, or -1 when the run counted none. */
static int64_t touched(struct fl_db *d, int64_t proc_id, int64_t region, int64_t t)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT (SELECT count(*) FROM fault WHERE proc_id = ?1),"
		" (SELECT sum(f.anon_new) FROM fault f JOIN vma v ON v.id = f.vma_id WHERE f.proc_id = ?1"
		"  AND f.time_ns <= ?3 AND CASE WHEN ?2 = -1 THEN v.kind = 'heap' ELSE v.origin_id = ?2 END)");
	int64_t bytes = -1;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, region);
	sqlite3_bind_int64(st, 3, t);
	if (fl_db_step(d, st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		bytes = sqlite3_column_int64(st, 1) * PAGE;
	sqlite3_finalize(st);
	return bytes;
}

/* The smaps sample of proc_id taken at t, or 0. */
static int64_t sample_at(struct fl_db *d, int64_t proc_id, int64_t t)
{
	sqlite3_stmt *st;
	int64_t id = 0;

	/* a recording older than schema 3 has no such table */
	if (sqlite3_prepare_v2(d->db, "SELECT id FROM smaps_sample WHERE proc_id = ?1 AND time_ns = ?2", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, t);
	if (fl_db_step(d, st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

/* Is VMA row i part of region key? */
static bool in_region(const struct fl_vma *v, int i, int64_t key)
{
	return key == -1 ? !strcmp(v[i].kind, "heap") : v[i].origin_id == key;
}

/*
 * Resident bytes of region r (key) in smaps sample sample_id, or -1: each
 * kernel region (region_rss) inside its extent whole; of one reaching out of
 * it (the kernel merged a block's own mmap with its neighbours), the shares
 * of r's VMA rows (piece_rss).  Whole regions first: the model can miss a
 * row smaps already shows (an arena grown by mprotect a moment ago).
 */
static int64_t resident(struct fl_db *d, int64_t sample_id, int64_t key, const struct fl_heap_region *r,
			const struct fl_vma *v, int nv)
{
	sqlite3_stmt *st = sample_id && key && r->end ? fl_db_prepare(d,
		"SELECT start, end, rss FROM region_rss WHERE sample_id = ?1 AND start < ?3 AND end > ?2") : NULL;
	sqlite3_stmt *piece = st ? fl_db_prepare(d,
		"SELECT rss FROM piece_rss WHERE sample_id = ?1 AND region_start = ?2 AND vma_id = ?3") : NULL;
	int64_t bytes = 0;
	int rc;

	if (!piece) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_bind_int64(st, 1, sample_id);
	sqlite3_bind_int64(st, 2, r->start);
	sqlite3_bind_int64(st, 3, r->end);
	sqlite3_bind_int64(piece, 1, sample_id);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		int64_t start = sqlite3_column_int64(st, 0), end = sqlite3_column_int64(st, 1);
		if (start >= r->start && end <= r->end) {
			bytes += sqlite3_column_int64(st, 2);
			continue;
		}
		sqlite3_bind_int64(piece, 2, start);
		for (int i = 0; i < nv; i++) {
			if (!in_region(v, i, key) || v[i].end <= start || v[i].start >= end)
				continue;
			sqlite3_bind_int64(piece, 3, v[i].id);
			if (fl_db_step(d, piece) == SQLITE_ROW)
				bytes += sqlite3_column_int64(piece, 0);
			sqlite3_reset(piece);
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(piece);
	return rc == SQLITE_DONE ? bytes : -1;
}

/* Extent, writable bytes and kind of the region holding samples p[0..n). */
static void describe(struct fl_heap_region *r, const struct placed *p, int n, const struct fl_vma *v, int nv)
{
	int64_t key = p[0].region;
	bool own_mmap = n == 1;

	if (!key) {
		snprintf(r->kind, sizeof(r->kind), "unknown");
		return;
	}
	for (int i = 0; i < nv; i++) {
		if (!in_region(v, i, key))
			continue;
		if (!r->end || v[i].start < r->start)
			r->start = v[i].start;
		if (v[i].end > r->end)
			r->end = v[i].end;
		if (v[i].prot & 2)
			r->mapped_rw += v[i].end - v[i].start;
	}
	own_mmap = own_mmap && p[0].addr == r->start + MMAP_CHUNK_HEADER;
	snprintf(r->kind, sizeof(r->kind), "%s",
		 key == -1 ? "heap" :
		 r->end - r->start == ARENA_BYTES && r->start % ARENA_BYTES == 0 ? "arena" :
		 own_mmap ? "mmap" : v[p[0].vma].kind);
}

/* One region from its samples p[0..n) (sorted by stack). Returns 0 or -1. */
static int build_region(struct fl_db *d, int64_t proc_id, int64_t t, int64_t sample_id, struct fl_heap_region *r,
			const struct placed *p, int n, const struct fl_vma *v, int nv)
{
	memset(r, 0, sizeof(*r));
	describe(r, p, n, v, nv);
	r->touched = p[0].region ? touched(d, proc_id, p[0].region, t) : -1;
	r->resident = resident(d, sample_id, p[0].region, r, v, nv);
	r->sites = calloc((size_t)n, sizeof(*r->sites));
	if (!r->sites)
		return fl_db_error(d, "out of memory");
	for (int i = 0; i < n; i++) {
		if (!r->nsites || r->sites[r->nsites - 1].stack_id != p[i].stack_id)
			r->sites[r->nsites++].stack_id = p[i].stack_id;
		struct fl_heap_site *s = &r->sites[r->nsites - 1];
		s->bytes += p[i].w;
		s->var += p[i].var;
		s->samples++;
		r->bytes += p[i].w;
		r->var += p[i].var;
		r->samples++;
	}
	qsort(r->sites, (size_t)r->nsites, sizeof(*r->sites), by_bytes_site);
	return 0;
}

int fl_heap_view_load(struct fl_db *d, int64_t proc_id, int64_t t, bool at_end, struct fl_heap_view *out)
{
	struct fl_vma *v = NULL;
	struct placed *p = NULL;
	int has, nv, n, rc = 0;
	int64_t sample;

	memset(out, 0, sizeof(*out));
	out->t = t;
	if ((has = heap_mean(d, proc_id, &out->mean)) <= 0)
		return has;
	if ((nv = fl_vma_select(d, proc_id, t, at_end, "v.start", 0, &v)) < 0)
		return -1;
	if ((n = load_live(d, proc_id, t, at_end, v, nv, &p)) < 0) {
		fl_vma_free(v, nv);
		return -1;
	}
	out->blocks = calloc((size_t)n + 1, sizeof(*out->blocks));
	out->regions = calloc((size_t)n + 1, sizeof(*out->regions));
	if (!out->regions || !out->blocks)
		rc = fl_db_error(d, "out of memory");
	for (int i = 0; i < n && !rc; i++)
		out->blocks[out->nblocks++] = (struct fl_heap_block){ p[i].addr, p[i].stack_id, p[i].w, p[i].var };
	qsort(out->blocks, (size_t)out->nblocks, sizeof(*out->blocks), by_addr);
	qsort(p, (size_t)n, sizeof(*p), by_region_stack);
	sample = at_end ? 0 : sample_at(d, proc_id, t);
	for (int i = 0, j; i < n && !rc; i = j) {
		for (j = i; j < n && p[j].region == p[i].region; j++)
			;
		rc = build_region(d, proc_id, t, sample, &out->regions[out->nregions++], &p[i], j - i, v, nv);
		out->bytes += out->regions[out->nregions - 1].bytes;
		out->var += out->regions[out->nregions - 1].var;
		out->samples += j - i;
	}
	free(p);
	fl_vma_free(v, nv);
	if (rc) {
		fl_heap_view_free(out);
		return -1;
	}
	qsort(out->regions, (size_t)out->nregions, sizeof(*out->regions), by_bytes_region);
	return 1;
}

/* An allocation or a free: the time and the weight it adds to the live bytes. */
struct heap_step {
	int64_t t;
	double w;
};

static int by_step_time(const void *a, const void *b)
{
	const struct heap_step *x = a, *y = b;
	return (x->t > y->t) - (x->t < y->t);
}

/* proc_id's allocations and frees (weights negative), by time, into *out.  The count, or -1. */
static int heap_steps(struct fl_db *d, int64_t proc_id, struct heap_step **out)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT alloc_ns, free_ns, weight FROM heap_sample WHERE proc_id = ?1");
	struct heap_step *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		if (fl_vec_reserve((void **)&v, &cap, n + 2, sizeof(*v))) {
			rc = fl_db_error(d, "out of memory");
			break;
		}
		double w = sqlite3_column_double(st, 2);
		v[n++] = (struct heap_step){ sqlite3_column_int64(st, 0), w };
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) /* live while alloc_ns <= t < free_ns */
			v[n++] = (struct heap_step){ sqlite3_column_int64(st, 1), -w };
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	qsort(v, n, sizeof(*v), by_step_time);
	*out = v;
	return (int)n;
}

int fl_heap_live_peak(struct fl_db *d, int64_t proc_id, int64_t here_id, struct fl_heap_moment *most, double *here)
{
	struct heap_step *steps = NULL;
	int n = heap_steps(d, proc_id, &steps), i = 0, found = 0, rc;
	sqlite3_stmt *st = n > 0 ? fl_db_prepare(d, "SELECT id, time_ns, rss FROM smaps_sample WHERE proc_id = ?1"
						   " ORDER BY time_ns, id") : NULL;
	double live = 0;

	if (n <= 0 || !st) {
		free(steps);
		return n < 0 || (n > 0 && !st) ? -1 : 0;
	}
	*here = 0;
	sqlite3_bind_int64(st, 1, proc_id);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), t = sqlite3_column_int64(st, 1);

		for (; i < n && steps[i].t <= t; i++)
			live += steps[i].w;
		if (id == here_id)
			*here = live;
		if (!found++ || live > most->live)
			*most = (struct fl_heap_moment){ id, t, sqlite3_column_int64(st, 2), live };
	}
	sqlite3_finalize(st);
	free(steps);
	/* sums of the weights added and taken away again: whole bytes, not the rounding left over */
	most->live = round(most->live);
	*here = round(*here);
	return rc == SQLITE_DONE ? found > 0 : -1;
}

void fl_heap_view_free(struct fl_heap_view *v)
{
	for (int i = 0; i < v->nregions; i++)
		free(v->regions[i].sites);
	free(v->regions);
	free(v->blocks);
	v->regions = NULL;
	v->blocks = NULL;
	v->nregions = v->nblocks = 0;
}

/* The first block at or above addr. */
static int first_at(const struct fl_heap_view *v, int64_t addr)
{
	int lo = 0, hi = v->nblocks;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (v->blocks[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int fl_heap_view_range(const struct fl_heap_view *v, int64_t start, int64_t end, struct fl_heap_range *out)
{
	int a = first_at(v, start), b = first_at(v, end), n = b - a;
	struct fl_heap_block *in;

	memset(out, 0, sizeof(*out));
	if (n <= 0)
		return 0;
	in = malloc((size_t)n * sizeof(*in));
	out->sites = calloc((size_t)n, sizeof(*out->sites));
	if (!in || !out->sites) {
		free(in);
		free(out->sites);
		out->sites = NULL;
		return -1;
	}
	memcpy(in, v->blocks + a, (size_t)n * sizeof(*in));
	qsort(in, (size_t)n, sizeof(*in), by_stack);
	for (int i = 0; i < n; i++) {
		if (!out->nsites || out->sites[out->nsites - 1].stack_id != in[i].stack_id)
			out->sites[out->nsites++].stack_id = in[i].stack_id;
		struct fl_heap_site *s = &out->sites[out->nsites - 1];
		s->bytes += in[i].w;
		s->var += in[i].var;
		s->samples++;
		out->bytes += in[i].w;
		out->var += in[i].var;
		out->samples++;
	}
	free(in);
	qsort(out->sites, (size_t)out->nsites, sizeof(*out->sites), by_bytes_site);
	return 0;
}

void fl_heap_range_free(struct fl_heap_range *r)
{
	free(r->sites);
	r->sites = NULL;
	r->nsites = 0;
}

/* Each site's innermost frames, loaded: enough to skip a wrapper and still show `frames`. */
struct loaded {
	struct fl_frame *f;
	int n;
	int skip;               /* 1: its innermost frame is a wrapper (wrapper_skips) */
};

static void free_loaded(struct loaded *l, int n)
{
	for (int i = 0; l && i < n; i++)
		fl_stack_free(l[i].f, l[i].n);
	free(l);
}

/*
 * Per site, 1 when its innermost frame is an allocation wrapper: the sites
 * of that frame were called from two places or more (Perl_safesysmalloc from
 * Perl_sv_grow and from Perl_more_sv), and it is neither the site's only
 * frame nor called by itself.
 * One level only: past it, callers differ in every program, more so the
 * more blocks are sampled.
 */
static void wrapper_skips(struct loaded *l, int n)
{
	for (int i = 0; i < n; i++) {
		const struct fl_frame *f = l[i].f;
		if (l[i].n < 2 || (f[0].function && f[1].function && !strcmp(f[0].function, f[1].function)))
			continue; /* its only frame, or a recursion: the caller would name the wrapper again */
		for (int k = 0; k < n && !l[i].skip; k++)
			l[i].skip = l[k].n > 1 && l[k].f[0].frame_id == f[0].frame_id && l[k].f[1].frame_id != f[1].frame_id;
	}
}

/* A site as shown: `frames` frames past its wrapper as lines, or "(no user stack)". */
static void shown_of(const struct loaded *l, int frames, struct fl_heap_shown *s)
{
	int n = 0;

	memset(s, 0, sizeof(*s));
	for (int k = l->skip; k < l->n && n < frames; k++)
		fl_frame_short(&l->f[k], s->lines[n++], sizeof(s->lines[0]));
	if (!n)
		snprintf(s->lines[n++], sizeof(s->lines[0]), "(no user stack)");
	s->nlines = n;
	if (l->skip) {
		if (l->f[0].function)
			snprintf(s->via, sizeof(s->via), "%s", l->f[0].function);
		else
			fl_frame_short(&l->f[0], s->via, sizeof(s->via));
	}
}

static bool same_shown(const struct fl_heap_shown *a, const struct fl_heap_shown *b)
{
	return a->nlines == b->nlines && !strcmp(a->via, b->via) &&
	       !memcmp(a->lines, b->lines, sizeof(a->lines[0]) * (size_t)a->nlines);
}

int fl_heap_sites_shown(struct fl_db *d, const struct fl_heap_site *sites, int n, int frames,
			struct fl_heap_shown **out)
{
	struct fl_heap_shown *s = calloc((size_t)n + 1, sizeof(*s)), one;
	struct loaded *l = calloc((size_t)n + 1, sizeof(*l));
	int ns = 0, k;
	bool oom = true;

	*out = NULL;
	if (!s || !l)
		goto fail;
	frames = frames < 1 ? 1 : frames > FL_HEAP_SHOWN_FRAMES ? FL_HEAP_SHOWN_FRAMES : frames;
	for (int i = 0; i < n; i++)
		if (sites[i].stack_id &&
		    (l[i].n = fl_stack_load(d, sites[i].stack_id, frames + 1, &l[i].f)) < 0) {
			l[i].n = 0;
			oom = false; /* said */
			goto fail;
		}
	wrapper_skips(l, n);
	for (int i = 0; i < n; i++) {
		shown_of(&l[i], frames, &one);
		for (k = 0; k < ns; k++)
			if (same_shown(&s[k], &one))
				break;
		if (k == ns)
			s[ns++] = one;
		int64_t *grown = realloc(s[k].stack_ids, (size_t)(s[k].nstack_ids + 1) * sizeof(*grown));
		if (!grown)
			goto fail;
		s[k].stack_ids = grown;
		s[k].stack_ids[s[k].nstack_ids++] = sites[i].stack_id;
		s[k].bytes += sites[i].bytes;
		s[k].var += sites[i].var;  /* independent samples: variances add */
		s[k].samples += sites[i].samples;
	}
	free_loaded(l, n);
	for (int a = 1; a < ns; a++) /* merged sites may now outweigh those above them */
		for (int b = a; b > 0 && s[b].bytes > s[b - 1].bytes; b--) {
			struct fl_heap_shown t = s[b];
			s[b] = s[b - 1];
			s[b - 1] = t;
		}
	*out = s;
	return ns;
fail:
	free_loaded(l, n);
	fl_heap_shown_free(s, ns);
	if (oom)
		fprintf(stderr, "faultline: out of memory\n");
	return -1;
}

void fl_heap_shown_free(struct fl_heap_shown *s, int n)
{
	for (int i = 0; s && i < n; i++)
		free(s[i].stack_ids);
	free(s);
}
