/* SPDX-License-Identifier: MIT */
/*
 * measure.c - a recording's numbers for `check` and `diff`, with faultline's
 * own footprint taken out.
 *
 * What faultline's presence costs a process (measured on /usr/bin/true, 47-50
 * faults plain, 86 classified under faultline; docs/check.md has the
 * table): the channel it writes its events to (about 14 faults: the header
 * page, the ring slots its hello fills), the shim's own image
 * (ld.so mapping and relocating it, its code and data: about 10), libgcc_s,
 * which the shim dlopens for its unwinding (about 7, and the unwinder's
 * reads of libc's unwind tables), and small mappings only the shim touches
 * (the maps snapshot buffer).  BPF marks every fault and call taken while
 * the shim works (shim_busy, FL_SHIM_MARK); the rest is split here, at
 * query time, from the recording as it is:
 *
 *   - a region is faultline's when its kind is `faultline` (the channel), its
 *     file is the shim, it is libgcc_s mapped while the shim initialized
 *     (after ld.so's first relro mprotect following the exec, no later than
 *     the shim's channel: a libgcc_s the program needs is mapped before any
 *     relocation), a marked call made it, or it is anonymous memory that
 *     only the shim's code ever touched;
 *   - in other regions, the marked faults, and those whose instruction lies
 *     in the shim (or in a libgcc_s loaded for it) or in ld.so's LD_PRELOAD
 *     handling, are faultline's, except the marked page-cache faults in a
 *     file the program reads too, which were moved, not added
 *     (settle_footprint);
 *   - the calls that made, changed or unmapped faultline's regions are its
 *     calls.
 *
 * What stays in the program's numbers and is faultline's all the same:
 * ld.so's start-up allocations for the shim's link map (its allocator's
 * next page), and the few libc pages the shim still runs (dlsym, dlopen).
 * What the shim takes from the program: the first touches of stack and
 * vvar pages the program would have made later.  docs/check.md gives the
 * residue per process against `perf stat` on plain runs.
 */
#include "measure.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "vec.h"

const char *const fl_class_names[FL_NCLASSES] = {
#define FL_CLASS_NAME(c, name) #name,
	FL_FAULT_CLASSES(FL_CLASS_NAME)
#undef FL_CLASS_NAME
};

const char *const fl_metric_names[FL_NMETRICS] = {
#define FL_METRIC_NAME(m) #m,
	FL_METRICS(FL_METRIC_NAME)
};

#define SHIM_GLOB "*/libfaultline-preload.so"
#define UNWINDER_GLOB "*/libgcc_s.so*"
#define LOADER_GLOB "*/ld-linux*.so*"
#define LABEL_FRAMES 3

int fl_metric_parse(const char *name)
{
	for (int m = 0; m < FL_NMETRICS; m++)
		if (!strcmp(name, fl_metric_names[m]))
			return m;
	return -1;
}

bool fl_metric_per_region(enum fl_metric m)
{
	return m == FL_M_minor || m == FL_M_major || m == FL_M_cow || m == FL_M_mappings;
}

static char *dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

static int class_index(const char *name)
{
	for (int c = 0; c < FL_NCLASSES; c++)
		if (name && !strcmp(name, fl_class_names[c]))
			return c;
	return -1;
}

/* ---- processes ---------------------------------------------------------- */

/* Index of process row id, or -1 (ids map through r->pidx, built by load_procs). */
struct loader {
	struct fl_run *r;
	int *pidx;          /* process.id -> index into r->procs */
	int64_t max_id;
	char **stacks;      /* stack.id -> function lines (the run's strings once regions point to them) */
	int64_t nstacks;
	struct fl_names kinds; /* the region kinds met (the run's strings once regions point to them) */
	struct { const char *kind, *label; } *labels; /* [stack.id + 1]: the label of the last region
						       * without a file that stack made */
};

/* s (made by malloc, or NULL) as one of the run's strings, freed with it.  Returns s, or NULL. */
static char *run_string(struct fl_run *r, char *s)
{
	if (s && fl_vec_reserve((void **)&r->strings, &r->capstrings, r->nstrings + 1, sizeof(*r->strings))) {
		free(s);
		return NULL;
	}
	if (s)
		r->strings[r->nstrings++] = s;
	return s;
}

long fl_names_index(struct fl_names *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++) {
		size_t j = (t->last + i) % t->n;
		if (!strcmp(t->v[j], name))
			return (long)(t->last = j);
	}
	if (fl_vec_reserve((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v)) || !(t->v[t->n] = strdup(name)))
		return -1;
	return (long)(t->last = t->n++);
}

void fl_names_free(struct fl_names *t)
{
	while (t->n)
		free(t->v[--t->n]);
	free(t->v);
	*t = (struct fl_names){ 0 };
}

/* The n strings v[] (NULLs skipped) become the run's, freed with it, or (rc set, or no memory) are
 * freed now.  Returns rc, or -1. */
static int run_keep(struct fl_run *r, char **v, size_t n, int rc)
{
	if (!rc && fl_vec_reserve((void **)&r->strings, &r->capstrings, r->nstrings + n, sizeof(*r->strings)))
		rc = -1;
	for (size_t i = 0; i < n; i++)
		if (!rc && v[i])
			r->strings[r->nstrings++] = v[i];
		else
			free(v[i]);
	return rc;
}

static int proc_of(const struct loader *l, int64_t id)
{
	return id >= 0 && id <= l->max_id ? l->pidx[id] : -1;
}

static int load_procs(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT id, pid, coalesce(exe, '?'), min_flt + maj_flt, (SELECT max(id) FROM process), start_ns,"
		" coalesce(end_ns, -1)"
		" FROM process ORDER BY start_ns, id");
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		struct fl_mproc *grown = realloc(r->procs, (size_t)(r->nprocs + 1) * sizeof(*grown)), *p;

		if (!grown)
			break;
		r->procs = grown;
		p = &r->procs[r->nprocs++];
		*p = (struct fl_mproc){ .id = sqlite3_column_int64(st, 0), .pid = sqlite3_column_int64(st, 1),
					.exe = dup_col(st, 2), .rss_peak = -1, .kernel_faults = -1,
					.start_ns = sqlite3_column_int64(st, 5), .end_ns = sqlite3_column_int64(st, 6) };
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			p->kernel_faults = sqlite3_column_int64(st, 3);
		l->max_id = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || l->max_id < 0 || l->max_id > (int64_t)1 << 30)
		return -1;
	if (!(l->pidx = malloc((size_t)(l->max_id + 1) * sizeof(int))))
		return -1;
	memset(l->pidx, 0xff, (size_t)(l->max_id + 1) * sizeof(int));
	for (int i = 0; i < r->nprocs; i++)
		if (r->procs[i].id >= 0 && r->procs[i].id <= l->max_id)
			l->pidx[r->procs[i].id] = i;
	return 0;
}

/* Per process: resident peak, calls, and the run's exit status. */
static int load_proc_numbers(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT 0, proc_id, max(anon + file + shmem) FROM rss GROUP BY proc_id"
		" UNION ALL SELECT 1, proc_id, count(*) FROM event GROUP BY proc_id"
		" UNION ALL SELECT 2, 0, coalesce(exit_status, -1) FROM run"
		" UNION ALL SELECT 3, 0, fidelity = 'bpf' OR EXISTS (SELECT 1 FROM fault) FROM run");
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		int what = sqlite3_column_int(st, 0), p = proc_of(l, sqlite3_column_int64(st, 1));
		int64_t v = sqlite3_column_int64(st, 2);

		if (what == 2)
			r->exit_status = v;
		else if (what == 3)
			r->has_faults = v != 0;
		else if (p >= 0 && what == 0)
			r->procs[p].rss_peak = v;
		else if (p >= 0)
			r->procs[p].calls = v;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- creating stacks ------------------------------------------------------ */

/* Every stack's functions, innermost first, one per line; a frame without a
 * symbol is module+offset, which is as stable as the build. */
static int load_stacks(struct loader *l)
{
	struct fl_db *d = l->r->d;
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT sf.stack_id, coalesce(f.function, replace(f.module, rtrim(f.module, replace(f.module, '/', '')), '')"
		" || printf('+0x%x', f.rel_addr), printf('0x%x', f.rel_addr)), (SELECT max(id) FROM stack)"
		" FROM stack_frame sf JOIN frame f ON f.id = sf.frame_id ORDER BY sf.stack_id, sf.idx");
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *fn = (const char *)sqlite3_column_text(st, 1);
		char *line;

		if (!l->stacks) {
			l->nstacks = sqlite3_column_int64(st, 2) + 1;
			if (l->nstacks > (int64_t)1 << 28 || !(l->stacks = calloc((size_t)l->nstacks, sizeof(char *))))
				break;
		}
		if (id < 0 || id >= l->nstacks)
			continue;
		if (asprintf(&line, "%s%s%s", l->stacks[id] ? l->stacks[id] : "", l->stacks[id] ? "\n" : "",
			     fn ? fn : "?") < 0)
			break;
		free(l->stacks[id]);
		l->stacks[id] = line;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- regions -------------------------------------------------------------- */

static int region_cmp(const void *a, const void *b)
{
	const struct fl_region *x = a, *y = b;

	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return x->origin_id < y->origin_id ? -1 : x->origin_id > y->origin_id;
}

static struct fl_region *region_find(const struct fl_run *r, int proc, int64_t origin_id)
{
	struct fl_region key = { .proc = proc, .origin_id = origin_id };

	return bsearch(&key, r->regions, r->nregions, sizeof(key), region_cmp);
}

/*
 * libgcc_s is the shim's unwinder when the process mapped it while the shim
 * initialized: after ld.so's first relro mprotect since the exec (every
 * library the program needs is mapped before relocation starts) and no later
 * than the shim's channel (attach() follows unwind_init() in preload/shim.c).
 * Each is the first match walking the (proc_id, time) indexes in order, not
 * a min() or max(): those read every later row of the process (70 ms per
 * libgcc_s segment after 240k calls).
 */
static int unwinder_for_shim(struct fl_db *d, int64_t proc_id, int64_t created_ns)
{
	if (!d->unwinder)
		d->unwinder = fl_db_prepare(d,
			"WITH x(t) AS (SELECT coalesce((SELECT time_ns FROM event WHERE proc_id = ?1 AND time_ns <= ?2"
			"                                AND kind = 'exec' ORDER BY time_ns DESC LIMIT 1), 0))"
			" SELECT (SELECT time_ns FROM event WHERE proc_id = ?1 AND time_ns > (SELECT t FROM x) AND kind = 'mprotect'"
			"         ORDER BY time_ns LIMIT 1),"
			"        (SELECT created_ns FROM vma WHERE proc_id = ?1 AND created_ns > (SELECT t FROM x)"
			"         AND kind = 'faultline'"
			"         AND offset = 0 AND end - start = ?3 ORDER BY created_ns LIMIT 1)");
	sqlite3_stmt *st = d->unwinder; /* asked of every libgcc_s region: a process each */
	int rc, yes = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, created_ns);
	sqlite3_bind_int64(st, 3, (int64_t)FL_CHAN_HDR_BYTES);
	rc = fl_db_step(d, st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL && sqlite3_column_type(st, 1) != SQLITE_NULL)
		yes = sqlite3_column_int64(st, 0) < created_ns && created_ns <= sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? yes : -1;
}

/*
 * The channel: its header (offset 0) or one ring, by the sizes the shim maps
 * (common/channel.h).  The kind alone is not enough: a mapping of another
 * file at an address the channel later took can be recorded with the
 * channel's path (seen with ld.so.cache, 45056 bytes, unmapped before the
 * shim attached).
 */
static bool is_channel(const char *kind, int64_t offset, int64_t size)
{
	return !strcmp(kind, "faultline") && ((offset == 0 && size == (int64_t)FL_CHAN_HDR_BYTES) ||
					      (offset >= (int64_t)FL_CHAN_HDR_BYTES && size == (int64_t)FL_CHAN_RING_BYTES));
}

static enum fl_footprint region_footprint(struct fl_db *d, const char *kind, const char *path, int64_t offset,
					  int64_t size, int64_t origin_proc_id, int64_t created_ns)
{
	if (is_channel(kind, offset, size))
		return FL_FP_CHANNEL;
	if (path && !fnmatch(SHIM_GLOB, path, 0))
		return FL_FP_SHIM;
	if (path && !fnmatch(UNWINDER_GLOB, path, 0) && unwinder_for_shim(d, origin_proc_id, created_ns) == 1)
		return FL_FP_UNWINDER;
	return FL_FP_NONE;
}

/* "KIND by f0 < f1 < f2" from the first LABEL_FRAMES of funcs, or "KIND (no user stack)". */
static char *stack_label(const char *kind, const char *funcs)
{
	char frames[1024] = "", *out = NULL;
	size_t len = 0;
	int n = 0;

	for (const char *f = funcs; f && *f && n < LABEL_FRAMES && len < sizeof(frames); n++) {
		size_t flen = strcspn(f, "\n");

		len += (size_t)snprintf(frames + len, sizeof(frames) - len, "%s%.*s", n ? " < " : "", (int)flen, f);
		f += flen + (f[flen] == '\n');
	}
	if (asprintf(&out, "%s %s%s", kind, n ? "by " : "(no user stack)", frames) < 0)
		return NULL;
	return out;
}

/* "/usr/lib/libc.so.6+0x26000", "[heap]", "anon by arena_new < main < __libc_start_call_main". */
static bool is_channel(const char *kind, int64_t offset, int64_t size);

static char *region_label(const char *kind, const char *path, int64_t offset, int64_t size, const char *funcs)
{
	char *out = NULL;

	if (is_channel(kind, offset, size))
		return strdup("faultline channel");
	if (path && path[0] == '[')
		return strdup(path);
	if (path)
		return asprintf(&out, "%s+0x%llx", path, (unsigned long long)offset) < 0 ? NULL : out;
	return stack_label(kind, funcs);
}

/*
 * The region's label (region_label) as one of the run's strings.  A region
 * without a file is labelled by its kind and creating stack alone: it
 * shares the label of the last such region of that stack (kind interned by
 * l->kinds, stack the index into l->labels).
 */
static const char *label_of(struct loader *l, const char *kind, const char *path, int64_t offset, int64_t size,
			    int64_t stack, const char *funcs)
{
	bool by_stack = !path && !is_channel(kind, offset, size);
	const char *label;

	if (by_stack && l->labels[stack].kind == kind)
		return l->labels[stack].label;
	label = run_string(l->r, region_label(kind, path, offset, size, funcs));
	if (by_stack && label) {
		l->labels[stack].kind = kind;
		l->labels[stack].label = label;
	}
	return label;
}

/* Calls of one process index, kind and stack (-1: none): a call site of load_callsites. */
struct site_count {
	int proc, kind;         /* proc -1: an empty slot; kind an index into site_counts.kinds.v */
	int64_t stack, count;
};

/* The sites counted so far: open addressing, grown at half full. */
struct site_counts {
	struct site_count *v;
	size_t cap, n;
	struct fl_names kinds;
	const struct fl_mproc *procs; /* for by_site: the processes the indexes are of */
};

static size_t site_slot(const struct site_count *v, size_t cap, int proc, int kind, int64_t stack)
{
	size_t i = (size_t)(((uint64_t)stack * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)proc << 8) ^ (uint64_t)kind) & (cap - 1);

	while (v[i].proc >= 0 && (v[i].proc != proc || v[i].kind != kind || v[i].stack != stack))
		i = (i + 1) & (cap - 1);
	return i;
}

/* The site's counter, added at 0 if new, or NULL without memory. */
static struct site_count *site_at(struct site_counts *s, int proc, int kind, int64_t stack)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct site_count *v = malloc(cap * sizeof(*v));

		if (!v)
			return NULL;
		for (size_t k = 0; k < cap; k++)
			v[k].proc = -1;
		for (size_t k = 0; k < s->cap; k++)
			if (s->v[k].proc >= 0)
				v[site_slot(v, cap, s->v[k].proc, s->v[k].kind, s->v[k].stack)] = s->v[k];
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	i = site_slot(s->v, s->cap, proc, kind, stack);
	if (s->v[i].proc < 0) {
		s->v[i] = (struct site_count){ proc, kind, stack, 0 };
		s->n++;
	}
	return &s->v[i];
}

/* GROUP BY's order, which the sites had when SQL counted them: process id, kind, stack (qsort_r). */
static int by_site(const void *a, const void *b, void *counts)
{
	const struct site_count *x = a, *y = b;
	const struct site_counts *s = counts;
	int64_t px = s->procs[x->proc].id, py = s->procs[y->proc].id;
	int k;

	if (px != py)
		return px < py ? -1 : 1;
	if ((k = strcmp(s->kinds.v[x->kind], s->kinds.v[y->kind])))
		return k;
	return (x->stack > y->stack) - (x->stack < y->stack);
}

/*
 * Calls per process, kind and stack, labelled like regions.  Counted in C
 * over one scan of the event table: a GROUP BY sorted every row for a few
 * dozen sites (1.2 s of 8 threads x 50k mmap/munmap's 800k calls).
 */
static int load_callsites(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT proc_id, kind, coalesce(stack_id, -1) FROM event");
	struct site_counts s = { .procs = r->procs };
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		int p = proc_of(l, sqlite3_column_int64(st, 0));
		const char *name = (const char *)sqlite3_column_text(st, 1);
		struct site_count *c;
		long kind;

		if (p < 0 || !name)
			continue;
		if ((kind = fl_names_index(&s.kinds, name)) < 0 ||
		    !(c = site_at(&s, p, (int)kind, sqlite3_column_int64(st, 2))))
			break;
		c->count++;
	}
	sqlite3_finalize(st);
	/* the occupied slots, packed, in GROUP BY's order */
	size_t n = 0;
	for (size_t i = 0; i < s.cap; i++)
		if (s.v[i].proc >= 0)
			s.v[n++] = s.v[i];
	if (n)
		qsort_r(s.v, n, sizeof(*s.v), by_site, &s);
	if (rc == SQLITE_DONE && n && !(r->sites = malloc(n * sizeof(*r->sites))))
		rc = -1;
	for (size_t i = 0; i < n && rc == SQLITE_DONE; i++) {
		const struct site_count *c = &s.v[i];
		struct fl_callsite *site = &r->sites[r->nsites];

		site->proc = c->proc;
		site->count = c->count;
		if (!(site->label = stack_label(s.kinds.v[c->kind], c->stack >= 0 && c->stack < l->nstacks ?
							l->stacks[c->stack] : NULL)))
			rc = -1;
		else
			r->nsites++;
	}
	free(s.v);
	fl_names_free(&s.kinds);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A set of (process index, origin id) pairs: open addressing, grown at half full. */
struct pairset {
	int64_t *keys;          /* 2 per slot; proc -1 marks an empty slot */
	size_t cap, n;
};

static size_t pair_slot(const int64_t *keys, size_t cap, int64_t proc, int64_t origin)
{
	size_t i = (size_t)((uint64_t)(origin * 0x9e3779b97f4a7c15ull) ^ (uint64_t)proc) & (cap - 1);

	while (keys[2 * i] >= 0 && (keys[2 * i] != proc || keys[2 * i + 1] != origin))
		i = (i + 1) & (cap - 1);
	return i;
}

/* 1 if added, 0 if it was there, -1 out of memory. */
static int pairset_add(struct pairset *s, int64_t proc, int64_t origin)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		int64_t *keys = malloc(2 * cap * sizeof(int64_t));

		if (!keys)
			return -1;
		for (size_t k = 0; k < cap; k++)
			keys[2 * k] = -1;
		for (size_t k = 0; k < s->cap; k++)
			if (s->keys[2 * k] >= 0) {
				size_t j = pair_slot(keys, cap, s->keys[2 * k], s->keys[2 * k + 1]);

				keys[2 * j] = s->keys[2 * k];
				keys[2 * j + 1] = s->keys[2 * k + 1];
			}
		free(s->keys);
		s->keys = keys;
		s->cap = cap;
	}
	i = pair_slot(s->keys, s->cap, proc, origin);
	if (s->keys[2 * i] >= 0)
		return 0;
	s->keys[2 * i] = proc;
	s->keys[2 * i + 1] = origin;
	s->n++;
	return 1;
}

/*
 * The shim's .bss: the anonymous rest of its data segment, which ld.so maps
 * right after the segment's last file page (the next mapping it makes, so the
 * next origin but one or two).  The shim's memory, though ld.so writes it too
 * (relocating the shim, and at exit).
 */
static void mark_shim_bss(struct fl_run *r)
{
	for (size_t i = 0; i < r->nregions; i++) {
		const struct fl_region *seg = &r->regions[i];

		if (seg->footprint != FL_FP_SHIM || !seg->created_here)
			continue;
		for (size_t j = i + 1; j < r->nregions && j <= i + 2 && r->regions[j].proc == seg->proc; j++) {
			struct fl_region *g = &r->regions[j];

			if (!g->footprint && !g->path && !strcmp(g->kind, "anon") && g->start == seg->end)
				g->footprint = FL_FP_SHIM;
		}
	}
}

static int load_regions(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT v.proc_id, v.origin_id, o.kind, o.path, o.offset, o.proc_id, o.created_ns, e.stack_id, o.end - o.start,"
		"  e.faultline AND e.kind = 'mmap', o.start, o.end"
		" FROM vma v JOIN vma o ON o.id = v.origin_id LEFT JOIN event e ON e.id = o.created_by");
	/* asked once per region, not per row: a region split in thousands of pieces made it quadratic */
	sqlite3_stmt *named = fl_db_prepare(r->d, "SELECT path FROM vma WHERE origin_id = ? AND path IS NOT NULL LIMIT 1");
	struct pairset seen = { 0 };
	size_t cap = 0;
	int rc;

	l->labels = calloc((size_t)l->nstacks + 1, sizeof(*l->labels));
	if (!st || !named || !l->labels) {
		sqlite3_finalize(st);
		sqlite3_finalize(named);
		return -1;
	}
	/* every row, each (process, origin) kept once: SQL's DISTINCT sorted them all (seconds at a million rows) */
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		int p = proc_of(l, sqlite3_column_int64(st, 0)), added;
		int64_t stack;
		const char *kind, *path, *funcs;
		struct fl_region *g;

		if (p < 0 || (added = pairset_add(&seen, p, sqlite3_column_int64(st, 1))) == 0)
			continue;
		if (added < 0)
			break;
		stack = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 7);
		if (stack < 0 || stack >= l->nstacks || !l->stacks[stack])
			stack = -1; /* none known: labelled alike */
		funcs = stack >= 0 ? l->stacks[stack] : "";
		kind = (const char *)sqlite3_column_text(st, 2);
		path = (const char *)sqlite3_column_text(st, 3);
		if (!kind)
			continue;
		long k = fl_names_index(&l->kinds, kind);
		if (k < 0)
			break;
		kind = l->kinds.v[k];
		if (r->nregions == cap) {
			struct fl_region *grown = realloc(r->regions, (cap = cap ? 2 * cap : 256) * sizeof(*grown));

			if (!grown)
				break;
			r->regions = grown;
		}
		g = &r->regions[r->nregions++];
		*g = (struct fl_region){ .proc = p, .origin_id = sqlite3_column_int64(st, 1), .kind = kind,
					 .path = path ? run_string(r, strdup(path)) : NULL, .funcs = funcs,
					 .start = sqlite3_column_int64(st, 10), .end = sqlite3_column_int64(st, 11),
					 .created_here = sqlite3_column_int64(st, 5) == sqlite3_column_int64(st, 0) };
		g->label = label_of(l, kind, path, sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 8), stack + 1,
				    funcs);
		/* by the file's path as any piece of the region knows it: ld.so's first mmap of a library
		 * (the whole file, cut into segments after) is recorded before a snapshot names it.
		 * Anonymous memory has no file to name (nor a footprint by path): not asked. */
		sqlite3_reset(named);
		sqlite3_bind_int64(named, 1, g->origin_id);
		g->footprint = region_footprint(r->d, kind, path || !strcmp(kind, "anon") ? path :
						fl_db_step(r->d, named) == SQLITE_ROW ?
						(const char *)sqlite3_column_text(named, 0) : NULL,
						sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 8),
						sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6));
		/* mapped by a call BPF saw inside the shim: its raw mmaps, ld.so mapping the unwinder for
		 * it.  Not a brk: the heap glibc's malloc starts for dlopen is the program's heap too. */
		if (!g->footprint && sqlite3_column_int(st, 9))
			g->footprint = FL_FP_SHIM_MADE;
		if (!g->label || (path && !g->path))
			break;
	}
	sqlite3_finalize(st);
	sqlite3_finalize(named);
	free(seen.keys);
	if (rc != SQLITE_DONE)
		return -1;
	fl_vec_sort(r->regions, r->nregions, sizeof(*r->regions), region_cmp);
	mark_shim_bss(r);
	return 0;
}

/* Fault counts per region: faultline's when BPF saw the thread inside the shim (fault.faultline),
 * the rest the program's until load_footprint_sites and settle_footprint. */
static int load_faults(struct loader *l)
{
	struct fl_run *r = l->r;
	char sql[1024] = "SELECT v.proc_id, v.origin_id";
	size_t len = strlen(sql);
	sqlite3_stmt *st;
	int rc;

	for (int c = 0; c < FL_NCLASSES; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", f.%s", fl_class_names[c]);
	/* summed here, not by GROUP BY: sorting every fault row took seconds at a million */
	snprintf(sql + len, sizeof(sql) - len, ", f.faultline FROM fault f JOIN vma v ON v.id = f.vma_id");
	if (!(st = fl_db_prepare(r->d, sql)))
		return -1;
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		struct fl_region *g = region_find(r, proc_of(l, sqlite3_column_int64(st, 0)), sqlite3_column_int64(st, 1));
		int64_t *to = g && sqlite3_column_int(st, 2 + FL_NCLASSES) ? g->fl_faults : g ? g->faults : NULL;

		for (int c = 0; to && c < FL_NCLASSES; c++)
			to[c] += sqlite3_column_int64(st, 2 + c);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static bool proc_has_unwinder(const struct fl_run *r, int p)
{
	for (size_t i = 0; i < r->nregions; i++)
		if (r->regions[i].proc == p && r->regions[i].footprint == FL_FP_UNWINDER)
			return true;
	return false;
}

/* Moves the faults faultline's code took in the program's regions to fl_faults, of those BPF did not
 * already see inside the shim: the shim's (a hook's first instructions, before it marks itself busy),
 * its unwinder's, and ld.so's LD_PRELOAD handling (handle_preload_list and do_preload run only for it,
 * before any shim code). */
static int load_footprint_sites(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT v.proc_id, v.origin_id, s.class, sum(s.count), f.module GLOB '" UNWINDER_GLOB "'"
		" FROM fault_site s JOIN frame f ON f.id = s.frame_id JOIN vma v ON v.id = s.vma_id"
		" WHERE NOT s.faultline AND (f.module GLOB '" SHIM_GLOB "' OR f.module GLOB '" UNWINDER_GLOB "'"
		"    OR (f.module GLOB '" LOADER_GLOB "' AND f.function IN ('handle_preload_list', 'do_preload')))"
		" GROUP BY 1, 2, 3, 5");
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		int p = proc_of(l, sqlite3_column_int64(st, 0)), c = class_index((const char *)sqlite3_column_text(st, 2));
		struct fl_region *g = region_find(r, p, sqlite3_column_int64(st, 1));
		int64_t n = sqlite3_column_int64(st, 3);

		if (!g || c < 0 || g->footprint || (sqlite3_column_int(st, 4) && !proc_has_unwinder(r, p)))
			continue;
		n = n < g->faults[c] ? n : g->faults[c];
		g->faults[c] -= n;
		g->fl_faults[c] += n;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Page-cache faults the unwinder took inside the shim, per region: reads of .eh_frame, which the
 * program itself reads only to throw (settle_footprint). */
static int load_unwind_reads(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = fl_db_prepare(r->d,
		"SELECT v.proc_id, v.origin_id, sum(s.count)"
		" FROM fault_site s JOIN frame f ON f.id = s.frame_id JOIN vma v ON v.id = s.vma_id"
		" WHERE s.faultline AND s.class = 'pagecache' AND f.module GLOB '" UNWINDER_GLOB "' GROUP BY 1, 2");
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW) {
		struct fl_region *g = region_find(r, proc_of(l, sqlite3_column_int64(st, 0)), sqlite3_column_int64(st, 1));

		if (g)
			g->fl_unwind_reads += sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int64_t sum_classes(const int64_t *v)
{
	int64_t n = 0;

	for (int c = 0; c < FL_NCLASSES; c++)
		n += v[c];
	return n;
}

/* The faults the kernel counted as major (maj_flt): FL_F_IS_MAJOR. */
static int64_t major_of(const int64_t *v)
{
	int64_t n = 0;

	for (int c = 0; c < FL_F_NCLASS; c++)
		if (FL_F_IS_MAJOR(c))
			n += v[c];
	return n;
}

/* Whole regions that are faultline's: all their faults are its own. */
static void settle_footprint(struct fl_run *r)
{
	for (size_t i = 0; i < r->nregions; i++) {
		struct fl_region *g = &r->regions[i];

		/* memory no instruction but the shim's ever touched is the shim's (its maps snapshot buffer);
		 * so is a libgcc_s only the shim used: loaded for its first stack (preload/unwind.c) */
		if (!g->footprint && !sum_classes(g->faults) && sum_classes(g->fl_faults)) {
			if (!strcmp(g->kind, "anon"))
				g->footprint = FL_FP_SHIM_ONLY;
			else if (g->path && !fnmatch(UNWINDER_GLOB, g->path, 0))
				g->footprint = FL_FP_UNWINDER;
		}
		/*
		 * A page-cache page the shim read first in a file region the program reads too: the fault
		 * mapped up to 16 cached pages around it (fault-around), which the program would have
		 * faulted in itself; with the shim it does not.  Such a fault was moved, not added: it is
		 * counted as the program's (docs/check.md, measured against plain runs).  Not the
		 * unwinder's reads of .eh_frame, which the program does not read.
		 */
		if (!g->footprint && sum_classes(g->faults)) {
			int64_t moved = g->fl_faults[FL_F_PAGECACHE] - g->fl_unwind_reads;

			if (moved > 0) {
				g->faults[FL_F_PAGECACHE] += moved;
				g->fl_faults[FL_F_PAGECACHE] -= moved;
			}
		}
		/*
		 * The copies after fork, in a region the program itself writes after fork (it took copies
		 * there too: its stack, its thread's TLS block, where the shim keeps its busy count).  The
		 * page is shared with the child, and the first write copies it, whoever makes it; the
		 * shim's fork hook writes right after the real fork returns, before the program's next
		 * write, which then finds the page copied.  Moved, not added: the bash pipeline's parent
		 * takes as many copies in its stack and TLS with the shim as without (docs/check.md).
		 */
		if (!g->footprint && g->faults[FL_F_COW_ANON] + g->faults[FL_F_COW_REUSE]) {
			static const int copies[] = { FL_F_COW_ANON, FL_F_COW_REUSE };

			for (size_t k = 0; k < sizeof(copies) / sizeof(copies[0]); k++) {
				g->faults[copies[k]] += g->fl_faults[copies[k]];
				g->fl_faults[copies[k]] = 0;
			}
		}
		if (!g->footprint)
			continue;
		for (int c = 0; c < FL_NCLASSES; c++) {
			g->fl_faults[c] += g->faults[c];
			g->faults[c] = 0;
		}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int push_event(int64_t **out, size_t *n, size_t *cap, int64_t id)
{
	if (*n == *cap) {
		int64_t *grown = realloc(*out, (*cap = *cap ? 2 * *cap : 64) * sizeof(int64_t));

		if (!grown)
			return -1;
		*out = grown;
	}
	(*out)[(*n)++] = id;
	return 0;
}

/* The events that made, changed or unmapped the VMAs of faultline's regions, and every call BPF saw
 * made inside the shim, sorted into *out (duplicates included). */
static int footprint_events(struct fl_run *r, int64_t **out, size_t *n)
{
	sqlite3_stmt *st = fl_db_prepare(r->d, "SELECT created_by, destroyed_by FROM vma WHERE origin_id = ?");
	size_t cap = 0;
	int rc = SQLITE_DONE;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	for (size_t i = 0; i < r->nregions && rc == SQLITE_DONE; i++) {
		if (!r->regions[i].footprint || !r->regions[i].created_here)
			continue;
		sqlite3_bind_int64(st, 1, r->regions[i].origin_id);
		while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW)
			for (int c = 0; c < 2; c++)
				if (sqlite3_column_type(st, c) != SQLITE_NULL && push_event(out, n, &cap, sqlite3_column_int64(st, c)))
					rc = -1;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && (st = fl_db_prepare(r->d, "SELECT id FROM event WHERE faultline"))) {
		while ((rc = fl_db_step(r->d, st)) == SQLITE_ROW)
			if (push_event(out, n, &cap, sqlite3_column_int64(st, 0)))
				rc = -1;
		sqlite3_finalize(st);
	} else if (rc == SQLITE_DONE) {
		rc = -1;
	}
	if (*n)
		qsort(*out, *n, sizeof(int64_t), cmp_i64);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Takes one of faultline's calls (made without a user stack: raw syscalls, ld.so) out of the call sites. */
static void uncount_callsite(struct fl_run *r, int p, const char *kind)
{
	char *label = kind ? stack_label(kind, NULL) : NULL;

	for (size_t i = 0; label && i < r->nsites; i++)
		if (r->sites[i].proc == p && r->sites[i].count > 0 && !strcmp(r->sites[i].label, label)) {
			r->sites[i].count--;
			break;
		}
	free(label);
}

/* The calls that made, changed or unmapped faultline's regions (not the process's exec or exit,
 * which also end VMAs). */
static int load_footprint_calls(struct loader *l)
{
	struct fl_run *r = l->r;
	sqlite3_stmt *st = NULL;
	int64_t *ev;
	size_t n;
	int rc = footprint_events(r, &ev, &n);

	if (!rc && n && !(st = fl_db_prepare(r->d, "SELECT proc_id, kind, stack_id IS NULL FROM event WHERE id = ?"
						    " AND kind IN ('mmap', 'munmap', 'mprotect', 'pkey_mprotect', 'mremap', 'madvise')")))
		rc = -1;
	for (size_t i = 0; i < n && !rc; i++) {
		int step, p;

		if (i && ev[i] == ev[i - 1])
			continue;
		sqlite3_bind_int64(st, 1, ev[i]);
		if ((step = fl_db_step(r->d, st)) == SQLITE_ROW && (p = proc_of(l, sqlite3_column_int64(st, 0))) >= 0) {
			r->procs[p].fl_calls++;
			r->procs[p].calls--;
			if (sqlite3_column_int(st, 2))
				uncount_callsite(r, p, (const char *)sqlite3_column_text(st, 1));
		}
		rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	free(ev);
	return rc;
}

/*
 * r->by_proc: the regions' indices grouped by process, so that a process's
 * metrics read its own regions (a build's thousands of processes each read
 * every region of the run: 300 processes took 35 ms of their summaries).
 */
static int index_by_proc(struct fl_run *r)
{
	if (!(r->by_proc = malloc((r->nregions + 1) * sizeof(*r->by_proc))))
		return -1;
	for (size_t i = 0; i < r->nregions; i++)
		if (r->regions[i].proc >= 0 && r->regions[i].proc < r->nprocs)
			r->procs[r->regions[i].proc].nregions++;
	for (int p = 0, at = 0; p < r->nprocs; at += (int)r->procs[p++].nregions)
		r->procs[p].region0 = (size_t)at;
	for (int p = 0; p < r->nprocs; p++)
		r->procs[p].nregions = 0;
	for (size_t i = 0; i < r->nregions; i++) {
		struct fl_mproc *m = r->regions[i].proc >= 0 && r->regions[i].proc < r->nprocs ?
				     &r->procs[r->regions[i].proc] : NULL;
		if (m)
			r->by_proc[m->region0 + m->nregions++] = i;
	}
	return 0;
}

static int run_load(struct fl_db *d, struct fl_run *r, bool callsites)
{
	struct loader l = { .r = r, .max_id = -1 };
	sqlite3_stmt *st;
	int rc;

	*r = (struct fl_run){ .d = d, .exit_status = -1 };
	if ((st = fl_db_prepare(d, "SELECT command FROM run")) && fl_db_step(d, st) == SQLITE_ROW)
		r->command = dup_col(st, 0);
	sqlite3_finalize(st);
	rc = load_procs(&l) || load_proc_numbers(&l) || load_stacks(&l) || (callsites && load_callsites(&l)) ||
	     load_regions(&l) ||
	     load_faults(&l) || load_footprint_sites(&l) || load_unwind_reads(&l);
	if (!rc) {
		settle_footprint(r);
		rc = load_footprint_calls(&l) || index_by_proc(r);
	}
	r->pidx = l.pidx;
	r->max_id = l.max_id;
	/* the regions' funcs and kinds point into the stacks and the kind names: the run keeps them */
	rc = run_keep(r, l.stacks, (size_t)l.nstacks, rc);
	rc = run_keep(r, l.kinds.v, l.kinds.n, rc);
	free(l.stacks);
	free(l.kinds.v);
	free(l.labels);
	if (rc) {
		fprintf(stderr, "faultline: %s: cannot read the recording's numbers\n", d->path);
		fl_run_free(r);
		return -1;
	}
	return 0;
}

int fl_run_load(struct fl_db *d, struct fl_run *r)
{
	return run_load(d, r, true);
}

int fl_run_load_regions(struct fl_db *d, struct fl_run *r)
{
	return run_load(d, r, false);
}

void fl_run_free(struct fl_run *r)
{
	for (int i = 0; i < r->nprocs; i++)
		free(r->procs[i].exe);
	for (size_t i = 0; i < r->nstrings; i++)
		free(r->strings[i]);
	free(r->strings);
	for (size_t i = 0; i < r->nsites; i++)
		free(r->sites[i].label);
	free(r->procs);
	free(r->regions);
	free(r->by_proc);
	free(r->sites);
	free(r->pidx);
	free(r->command);
	*r = (struct fl_run){ 0 };
}

/* ---- selectors and metrics ------------------------------------------------ */

bool fl_sel_region_part(const struct fl_selector *s)
{
	return s->kind || s->path || s->function;
}

bool fl_sel_proc(const struct fl_selector *s, const struct fl_mproc *p)
{
	return !s->exe || !fnmatch(s->exe, p->exe, 0);
}

static bool any_function(const char *glob, const char *funcs)
{
	char f[512];

	while (*funcs) {
		size_t n = strcspn(funcs, "\n");

		snprintf(f, sizeof(f), "%.*s", (int)n, funcs);
		if (!fnmatch(glob, f, 0))
			return true;
		funcs += n + (funcs[n] == '\n');
	}
	return false;
}

bool fl_sel_region(const struct fl_selector *s, const struct fl_run *r, const struct fl_region *g)
{
	return fl_sel_proc(s, &r->procs[g->proc]) && (!s->kind || !strcmp(s->kind, g->kind)) &&
	       (!s->path || (g->path && !fnmatch(s->path, g->path, 0))) &&
	       (!s->function || any_function(s->function, g->funcs));
}

const char *fl_sel_text(const struct fl_selector *s, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	if (s->kind)
		len += (size_t)snprintf(buf + len, n - len, "kind=%s", s->kind);
	if (s->path && len < n)
		len += (size_t)snprintf(buf + len, n - len, "%spath=%s", len ? ", " : "", s->path);
	if (s->function && len < n)
		len += (size_t)snprintf(buf + len, n - len, "%sfunction=%s", len ? ", " : "", s->function);
	if (s->exe && len < n)
		len += (size_t)snprintf(buf + len, n - len, "%sexe=%s", len ? ", " : "", s->exe);
	if (!len)
		snprintf(buf, n, "everything");
	return buf;
}

int64_t fl_region_faults(const struct fl_region *g, enum fl_metric m)
{
	const int64_t *f = g->faults;

	switch (m) {
	case FL_M_major:
		return major_of(f);
	case FL_M_minor:
		return sum_classes(f) - major_of(f);
	case FL_M_cow:
		return f[FL_F_COW_ANON] + f[FL_F_COW_ZERO] + f[FL_F_COW_FILE];
	default:
		return 0;
	}
}

int64_t fl_proc_metric(const struct fl_run *r, int p, const struct fl_selector *s, enum fl_metric m)
{
	int64_t n = 0;

	if (m == FL_M_rss)
		return r->procs[p].rss_peak;
	if (m == FL_M_calls)
		return r->procs[p].calls;
	if (m != FL_M_mappings && !r->has_faults)
		return -1;
	for (size_t k = 0; k < r->procs[p].nregions; k++) {
		const struct fl_region *g = &r->regions[r->by_proc[r->procs[p].region0 + k]];

		if (!fl_sel_region(s, r, g))
			continue;
		if (m == FL_M_mappings)
			n += g->created_here && !g->footprint;
		else
			n += fl_region_faults(g, m);
	}
	return n;
}

struct life_edge {
	int64_t t, bytes;   /* +peak at the start, -peak at the end */
};

static int by_time(const void *a, const void *b)
{
	const struct life_edge *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;  /* ends first */
}

/*
 * RSS in total: the largest sum of the peaks of selected processes alive at
 * the same moment.  Summing each process's latest sample instead would mix
 * samples taken at different moments (rss_stat is sampled at most once per
 * ms per process): six runs of a fork workload gave 8.6 to 10.5 MB that way,
 * while the per-process peaks agreed within 2%.  This is an upper bound of
 * the true simultaneous peak, and as stable as the per-process peaks.
 */
static int64_t total_rss(const struct fl_run *r, const struct fl_selector *s)
{
	struct life_edge *e = malloc(((size_t)r->nprocs * 2 + 1) * sizeof(*e));
	int64_t sum = 0, peak = -1;
	size_t n = 0;

	if (!e)
		return -2;
	for (int p = 0; p < r->nprocs; p++) {
		const struct fl_mproc *m = &r->procs[p];

		if (m->rss_peak < 0 || !fl_sel_proc(s, m))
			continue;
		e[n++] = (struct life_edge){ m->start_ns, m->rss_peak };
		e[n++] = (struct life_edge){ m->end_ns >= 0 ? m->end_ns : INT64_MAX, -m->rss_peak };
	}
	qsort(e, n, sizeof(*e), by_time);
	for (size_t i = 0; i < n; i++) {
		sum += e[i].bytes;
		peak = sum > peak ? sum : peak;
	}
	free(e);
	return peak;
}

int64_t fl_run_metric(const struct fl_run *r, const struct fl_selector *s, enum fl_metric m)
{
	int64_t n = 0, v;

	if (m == FL_M_rss)
		return total_rss(r, s);
	for (int p = 0; p < r->nprocs; p++) {
		if (!fl_sel_proc(s, &r->procs[p]))
			continue;
		if ((v = fl_proc_metric(r, p, s, m)) < 0)
			return v;
		n += v;
	}
	return n;
}

void fl_run_footprint(const struct fl_run *r, int64_t *minor, int64_t *major, int64_t *calls)
{
	*minor = *major = *calls = 0;
	for (size_t i = 0; i < r->nregions; i++) {
		const int64_t *f = r->regions[i].fl_faults;

		*major += major_of(f);
		*minor += sum_classes(f) - major_of(f);
	}
	for (int p = 0; p < r->nprocs; p++)
		*calls += r->procs[p].fl_calls;
}

int fl_run_proc(const struct fl_run *r, int64_t id)
{
	return r->pidx && id >= 0 && id <= r->max_id ? r->pidx[id] : -1;
}

void fl_proc_footprint(const struct fl_run *r, int p, int64_t *faults, int64_t *calls)
{
	*faults = 0;
	for (size_t k = 0; k < r->procs[p].nregions; k++)
		*faults += sum_classes(r->regions[r->by_proc[r->procs[p].region0 + k]].fl_faults);
	*calls = r->procs[p].fl_calls;
}
