/* SPDX-License-Identifier: MIT */
/*
 * summary.c - the summaries `report` and `faults` read (summary.h;
 * docs/schema.md "Summaries").  Every figure in them is a sum of the rows,
 * made here by SQL over the rows or by the C code that computes it live
 * (measure.c's own numbers, rows.c's mapped-size peak), so a recording
 * without them answers the same once they are built into temp.
 */
#include "summary.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "faultline.h"
#include "measure.h"
#include "rows.h"
#include "sqlrows.h"
#include "vec.h"

/* The fault table's class columns and thp, as `faults` and `report` list them. */
#define CLASS_NAME_(c, name) #name,
static const char *const columns[] = { FL_FAULT_CLASSES(CLASS_NAME_) "thp" };
#define NCOLUMNS (int)(sizeof(columns) / sizeof(columns[0]))

/* The creating event of a row: its own, else (a piece split off, or inherited at fork) its origin's. */
#define CREATING_EVENT \
	"coalesce(v.created_by, CASE WHEN v.how IN ('split', 'fork') THEN" \
	" (SELECT x.created_by FROM vma x WHERE x.id = v.origin_id AND x.id != v.id) END)"

/* The region of a row: the kernel VMA the last smaps sample that saw it found it in, else NULL (the
 * row alone).  max() takes the other column from its row (SQLite's bare columns): no sort per row. */
#define REGION_OF \
	"(SELECT max(pr.sample_id) || ':' || pr.region_start FROM piece_rss pr WHERE pr.vma_id = v.id)"

const struct fl_faults_key fl_faults_keys[] = {
	{ "process", 2, { "pid", "exe" }, true, false },
	{ "region", 4, { "pid", "range", "kind", "file" }, true, true },
	{ "vma", 4, { "pid", "range", "kind", "file" }, true, true },
	{ "kind", 1, { "kind" }, false, false },
	{ "file", 1, { "file" }, false, false },
	{ "stack", 1, { "creating stack" }, false, false },
};
enum { KEY_PROCESS, KEY_REGION, KEY_VMA, KEY_KIND, KEY_FILE, KEY_STACK };
const int fl_nfaults_keys = (int)(sizeof(fl_faults_keys) / sizeof(fl_faults_keys[0]));

/* The tables each part makes, FL_SUM_FAULTS's then FL_SUM_PROCS's. */
#define PART_TABLES 3
static const char *const tables[2 * PART_TABLES] = { "fault_summary", "site_summary", "fault_summary_total",
						     "proc_summary", "call_summary", "region_summary" };

static int exec(struct fl_db *d, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(d->db, sql, NULL, NULL, &err) == SQLITE_OK)
		return 0;
	fprintf(stderr, "faultline: %s: cannot summarize the recording (%s)\n", d->path, err ? err : "?");
	sqlite3_free(err);
	return -1;
}

/* sql with every "%s" replaced by schema: the same tables in main (at close) or temp (a reader's own). */
static int exec_in(struct fl_db *d, const char *schema, const char *sql)
{
	size_t n = strlen(sql) + 1;
	char *out, *o;
	int rc;

	for (const char *s = sql; (s = strstr(s, "%s")); s += 2)
		n += strlen(schema);
	if (!(out = o = malloc(n)))
		return -1;
	for (const char *s = sql; *s;) {
		if (s[0] == '%' && s[1] == 's') {
			o = stpcpy(o, schema);
			s += 2;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	rc = exec(d, out);
	free(out);
	return rc;
}

/* "sum(f.major_file), ..." or the bare column list; into buf. */
static void column_list(char *buf, size_t n, const char *fmt)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < NCOLUMNS && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, fmt, columns[i], columns[i]);
}

/* A column value with SQLite's type: readers GROUP BY grp, where 5 and '5' differ. */
struct cell {
	int type; /* SQLITE_NULL, SQLITE_INTEGER or SQLITE_TEXT */
	int64_t i;
	const char *s;
};

/*
 * The faults of one VMA row in one process, summed, with what the keys group
 * and label them by.  Its strings are its group's and its process's (they
 * outlive it: write_faults), but for "row:id", made here.
 */
struct row_sums {
	int64_t proc_id, pid, start, end;
	struct cell vma, stack;                /* vma: NULL when the row was never written (an incomplete recording) */
	const char *exe, *kind, *path, *file;  /* file: the path, else "[kind]" */
	const char *region;                    /* the kernel VMA it was last seen in: "sample_id:start", else "row:id" */
	int64_t nrows, total, sums[NCOLUMNS];
	char row_region[32];                   /* "row:id" */
};

/* One fault_summary_total row: the fault_summary rows of one key and pid, counted and summed. */
struct key_total {
	int key;
	int64_t pid, groups, sums[NCOLUMNS], total;
};

struct key_totals {
	struct key_total *v;
	size_t n, cap;
};

static struct cell int_cell(int64_t i) { return (struct cell){ SQLITE_INTEGER, i, NULL }; }
static struct cell text_cell(const char *s) { return s ? (struct cell){ SQLITE_TEXT, 0, s } : (struct cell){ SQLITE_NULL, 0, NULL }; }

/* The group of row r under key k. */
static struct cell group_of(int k, const struct row_sums *r)
{
	switch (k) {
	case KEY_PROCESS: return int_cell(r->proc_id);
	case KEY_REGION: return text_cell(r->region);
	case KEY_VMA: return r->vma;
	case KEY_KIND: return text_cell(r->kind);
	case KEY_FILE: return text_cell(r->file);
	default: return r->stack;
	}
}

static int cell_cmp(struct cell a, struct cell b)
{
	if (a.type != b.type)
		return a.type < b.type ? -1 : 1;
	if (a.type == SQLITE_INTEGER)
		return (a.i > b.i) - (a.i < b.i);
	return a.type == SQLITE_TEXT ? strcmp(a.s, b.s) : 0;
}

static void bind_cell(sqlite3_stmt *st, int i, struct cell c)
{
	if (c.type == SQLITE_INTEGER)
		sqlite3_bind_int64(st, i, c.i);
	else if (c.type == SQLITE_TEXT)
		sqlite3_bind_text(st, i, c.s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Rows by their group of key *k (qsort_r's context). */
static int by_group(const void *a, const void *b, void *k)
{
	int key = *(const int *)k;

	return cell_cmp(group_of(key, *(struct row_sums *const *)a), group_of(key, *(struct row_sums *const *)b));
}

/* One group of key k: n rows of one process, summed, with the range they span. */
struct group {
	struct row_sums *const *rows;
	size_t n;
	int64_t nrows, total, sums[NCOLUMNS];
	char range[40];  /* "lo-hi", hex: the region and vma keys' second label */
};

static void group_sum(struct group *g, struct row_sums *const *rows, size_t n)
{
	int64_t lo = rows[0]->start, hi = rows[0]->end;

	*g = (struct group){ .rows = rows, .n = n };
	for (size_t i = 0; i < n; i++) {
		g->nrows += rows[i]->nrows;
		g->total += rows[i]->total;
		for (int c = 0; c < NCOLUMNS; c++)
			g->sums[c] += rows[i]->sums[c];
		lo = rows[i]->start < lo ? rows[i]->start : lo;
		hi = rows[i]->end > hi ? rows[i]->end : hi;
	}
	snprintf(g->range, sizeof(g->range), "%" PRIx64 "-%" PRIx64, lo, hi);
}

static void total_add(struct key_total *t, const struct group *g)
{
	t->groups++;
	t->total += g->total;
	for (int c = 0; c < NCOLUMNS; c++)
		t->sums[c] += g->sums[c];
}

/* One fault_summary row: key k's group g. */
static int group_row(struct fl_db *d, sqlite3_stmt *ins, int k, const struct group *g)
{
	const struct row_sums *r = g->rows[0];

	sqlite3_reset(ins);
	sqlite3_clear_bindings(ins);
	sqlite3_bind_text(ins, 1, fl_faults_keys[k].name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 2, r->pid);
	bind_cell(ins, 3, group_of(k, r));
	switch (k) {
	case KEY_PROCESS:
		sqlite3_bind_int64(ins, 4, r->pid);
		sqlite3_bind_text(ins, 5, r->exe, -1, SQLITE_STATIC);
		break;
	case KEY_REGION:
	case KEY_VMA:
		sqlite3_bind_int64(ins, 4, r->pid);
		sqlite3_bind_text(ins, 5, g->range, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 7, r->path ? r->path : "", -1, SQLITE_STATIC);
		break;
	default:
		bind_cell(ins, 4, group_of(k, r));
	}
	sqlite3_bind_int64(ins, 8, g->nrows);
	for (int c = 0; c < NCOLUMNS; c++)
		sqlite3_bind_int64(ins, 9 + c, g->sums[c]);
	sqlite3_bind_int64(ins, 9 + NCOLUMNS, g->total);
	return fl_db_step(d, ins) == SQLITE_DONE ? 0 : -1;
}

/* NULL first, then bytewise: SQLite's order of text under BINARY. */
static int text_cmp(const char *a, const char *b)
{
	return !a || !b ? (b == NULL) - (a == NULL) : strcmp(a, b);
}

/*
 * Groups of one process under the region or vma key in `faults` order: the
 * total, most first, then the labels l2..l4 (l1, the pid, is the same).
 */
static int by_faults_then_labels(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	const struct row_sums *p = x->rows[0], *q = y->rows[0];
	int c;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	if ((c = strcmp(x->range, y->range)) || (c = text_cmp(p->kind, q->kind)))
		return c;
	return strcmp(p->path ? p->path : "", q->path ? q->path : "");
}

/*
 * Key k's fault_summary rows of one process from its m rows v (sorted by
 * group).  With cut, a key with a group per region or row (churn's 80,000)
 * keeps its FL_SUM_TOP_GROUPS groups with the most faults: `faults` text
 * shows the top 20 and the rest from fault_summary_total, which counts
 * every group; anything else asked of such a key is answered from a whole
 * summary made in temp (fl_summary_whole).  Writing and indexing all of
 * them was half of churn's close.
 */
static int key_rows(struct fl_db *d, sqlite3_stmt *ins, int k, struct row_sums **v, size_t m, bool cut,
		    struct key_total *kt)
{
	struct group *g = NULL, one;
	size_t ng = 0, cap = 0;
	int rc = 0;

	cut = cut && fl_faults_keys[k].cut;
	for (size_t i = 0, j; i < m && !rc; i = j) {
		for (j = i + 1; j < m && !cell_cmp(group_of(k, v[i]), group_of(k, v[j])); j++)
			;
		group_sum(&one, v + i, j - i);
		total_add(kt, &one);
		if (!cut)
			rc = group_row(d, ins, k, &one);
		else if (!fl_vec_reserve((void **)&g, &cap, ng + 1, sizeof(*g)))
			g[ng++] = one;
		else
			rc = -1;
	}
	if (!rc && cut && ng > FL_SUM_TOP_GROUPS)
		qsort(g, ng, sizeof(*g), by_faults_then_labels);
	for (size_t i = 0; i < ng && i < FL_SUM_TOP_GROUPS && !rc; i++)
		rc = group_row(d, ins, k, &g[i]);
	free(g);
	return rc;
}

/*
 * The fault_summary rows of one process, every key, from its n rows; each
 * key's totals appended to *t.  cut: keep the top groups only (key_rows).
 */
static int process_groups(struct fl_db *d, sqlite3_stmt *ins, struct row_sums **rows, size_t n, bool cut,
			  struct key_totals *t)
{
	struct row_sums **v = malloc((n ? n : 1) * sizeof(*v));
	int rc = v ? 0 : -1;

	for (int k = 0; k < fl_nfaults_keys && !rc; k++) {
		struct key_total *kt;
		size_t m = 0;

		/* the process key needs no VMA row: a fault of a row never written (an incomplete
		 * recording) is the process's all the same, as in report's totals */
		for (size_t i = 0; i < n; i++)
			if (k == KEY_PROCESS || rows[i]->vma.type != SQLITE_NULL)
				v[m++] = rows[i];
		if (!m)
			continue;
		if (fl_vec_reserve((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v))) {
			rc = -1;
			break;
		}
		kt = &t->v[t->n++];
		*kt = (struct key_total){ .key = k, .pid = v[0]->pid };
		/* by process and VMA row they are: the rows came in that order */
		fl_vec_sort_r(v, m, sizeof(*v), by_group, &k);
		rc = key_rows(d, ins, k, v, m, cut, kt);
	}
	free(v);
	return rc;
}

/* process_groups for the *n rows of one process, then forgets them. */
static int flush_process(struct fl_db *d, sqlite3_stmt *ins, struct row_sums **rows, size_t *n, bool cut,
			 struct key_totals *t)
{
	int rc = process_groups(d, ins, rows, *n, cut, t);

	while (*n)
		free(rows[--*n]);
	return rc;
}

/* The fault rows of one process in one VMA row, summed, and what that row says of them. */
struct vma_faults {
	int64_t proc_id, vma_id, nrows, total, sums[NCOLUMNS];
	bool found;                 /* the VMA row exists (not: an incomplete recording) */
	int64_t start, end;
	struct cell stack;          /* its creating stack, or NULL */
	const struct kind *kind;    /* NULL: no row */
	char *path, *region;        /* region NULL: "row:ID", the row alone */
};

static int by_proc_vma(const void *a, const void *b)
{
	const struct vma_faults *x = a, *y = b;

	if (x->proc_id != y->proc_id)
		return x->proc_id < y->proc_id ? -1 : 1;
	return (x->vma_id > y->vma_id) - (x->vma_id < y->vma_id);
}

/* A VMA row's kind, and "[kind]": the file key of a row without a path. */
struct kind {
	char *name, *bracketed;
};

/* The distinct kinds (a few), each kept once. */
struct kinds {
	struct kind **v;
	size_t n, cap;
};

static const struct kind *kind_of(struct kinds *t, const char *name)
{
	struct kind *k;
	char *b;

	if (!name)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i]->name, name))
			return t->v[i];
	if (fl_vec_reserve((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v)) || !(k = calloc(1, sizeof(*k))))
		return NULL;
	t->v[t->n++] = k;
	if (!(k->name = strdup(name)) || asprintf(&b, "[%s]", name) < 0)
		return NULL;
	k->bracketed = b;
	return k;
}

static void kinds_free(struct kinds *t)
{
	while (t->n) {
		struct kind *k = t->v[--t->n];
		free(k->name);
		free(k->bracketed);
		free(k);
	}
	free(t->v);
}

static void groups_free(struct vma_faults *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].region);
	}
	free(v);
}

/*
 * What each group's VMA row says of it: the n groups (in VMA order) and the
 * rows with faults, read in one pass, side by side.  A lookup per group
 * took 25 us each (2 s of a 240k-call recording's close).
 */
static int read_vmas(struct fl_db *d, struct vma_faults *v, size_t n, struct kinds *kinds)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT v.id, v.kind, v.path, v.start, v.end, " REGION_OF ", e.stack_id"
					 " FROM vma v LEFT JOIN event e ON e.id = " CREATING_EVENT
					 " WHERE v.id IN (SELECT vma_id FROM fault) ORDER BY v.id");
	size_t i = 0;
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *kind = (const char *)sqlite3_column_text(st, 1), *path, *region;

		for (; i < n && v[i].vma_id < id; i++)
			;
		for (; i < n && v[i].vma_id == id; i++) {
			struct vma_faults *g = &v[i];

			g->found = true;
			g->kind = kind_of(kinds, kind);
			path = (const char *)sqlite3_column_text(st, 2);
			g->path = path ? strdup(path) : NULL;
			g->start = sqlite3_column_int64(st, 3);
			g->end = sqlite3_column_int64(st, 4);
			region = (const char *)sqlite3_column_text(st, 5);
			g->region = region ? strdup(region) : NULL;
			g->stack = sqlite3_column_type(st, 6) == SQLITE_NULL ? text_cell(NULL)
									    : int_cell(sqlite3_column_int64(st, 6));
			if ((kind && !g->kind) || (path && !g->path) || (region && !g->region)) {
				sqlite3_finalize(st);
				return -1;
			}
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * The fault rows summed per process and VMA row, in process order.  Read in
 * VMA order (the fault_vma index) and summed here: SQL's GROUP BY sorted
 * every row with its 20 sums (0.7 s at 80k rows).
 */
static int sum_faults(struct fl_db *d, struct vma_faults **out, size_t *n, struct kinds *kinds)
{
	char cols[1024], sql[2048];
	struct vma_faults *v = NULL, *g = NULL;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	column_list(cols, sizeof(cols), ", %s%.0s");
	snprintf(sql, sizeof(sql), "SELECT proc_id, vma_id, reads + writes + execs%s FROM fault ORDER BY vma_id, proc_id",
		 cols);
	*n = 0;
	if (!(st = fl_db_prepare(d, sql)))
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		int64_t proc_id = sqlite3_column_int64(st, 0), vma_id = sqlite3_column_int64(st, 1);

		if (!g || g->proc_id != proc_id || g->vma_id != vma_id) {
			if (fl_vec_reserve((void **)&v, &cap, *n + 1, sizeof(*v)))
				break;
			g = &v[(*n)++];
			*g = (struct vma_faults){ .proc_id = proc_id, .vma_id = vma_id, .stack = text_cell(NULL) };
		}
		g->nrows++;
		g->total += sqlite3_column_int64(st, 2);
		for (int c = 0; c < NCOLUMNS; c++)
			g->sums[c] += sqlite3_column_int64(st, 3 + c);
	}
	sqlite3_finalize(st);
	*out = v;
	if (rc != SQLITE_DONE || read_vmas(d, v, *n, kinds))
		return -1;
	if (*n)
		qsort(v, *n, sizeof(*v), by_proc_vma);
	return 0;
}

/* Group g as a row of process (pid, exe), or NULL without memory. */
static struct row_sums *row_of(const struct vma_faults *g, int64_t pid, const char *exe)
{
	struct row_sums *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->proc_id = g->proc_id;
	r->pid = pid;
	r->exe = exe;
	r->vma = g->found ? int_cell(g->vma_id) : text_cell(NULL);
	r->kind = g->kind ? g->kind->name : NULL;
	r->path = g->path;
	r->file = g->path ? g->path : g->kind ? g->kind->bracketed : "[]";
	r->start = g->start;
	r->end = g->end;
	r->region = g->region;
	if (!g->region && g->found) {
		snprintf(r->row_region, sizeof(r->row_region), "row:%" PRId64, g->vma_id);
		r->region = r->row_region;
	}
	r->stack = g->stack;
	r->nrows = g->nrows;
	memcpy(r->sums, g->sums, sizeof(r->sums));
	r->total = g->total;
	return r;
}

static int by_key_pid(const void *a, const void *b)
{
	const struct key_total *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/*
 * fault_summary_total, what `faults` text leaves out below its top rows (the
 * whole less the top: half a million regions are not read): per key and pid,
 * the fault_summary rows counted and summed.  Summed as they were written,
 * one entry per process and key; two processes of one pid (an exec) merge.
 * A GROUP BY over fault_summary took 0.4 s at 160k rows.
 */
static int write_totals(struct fl_db *d, const char *schema, struct key_totals *t)
{
	char cols[1024], sql[2048];
	sqlite3_stmt *ins;
	size_t len;
	int rc = 0;

	column_list(cols, sizeof(cols), ", %s INTEGER NOT NULL%.0s");
	snprintf(sql, sizeof(sql), "CREATE TABLE %s.fault_summary_total (key TEXT NOT NULL, pid INTEGER NOT NULL,"
		 " groups INTEGER NOT NULL%s, total INTEGER NOT NULL)", schema, cols);
	if (exec(d, sql))
		return -1;
	len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s.fault_summary_total VALUES (?, ?, ?", schema);
	for (int c = 0; c <= NCOLUMNS; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", ?");
	snprintf(sql + len, sizeof(sql) - len, ")");
	if (!(ins = fl_db_prepare(d, sql)))
		return -1;
	qsort(t->v, t->n, sizeof(*t->v), by_key_pid);
	for (size_t i = 0, j; i < t->n && !rc; i = j) {
		struct key_total sum = t->v[i];

		for (j = i + 1; j < t->n && !by_key_pid(&t->v[i], &t->v[j]); j++) {
			sum.groups += t->v[j].groups;
			sum.total += t->v[j].total;
			for (int c = 0; c < NCOLUMNS; c++)
				sum.sums[c] += t->v[j].sums[c];
		}
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, fl_faults_keys[sum.key].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, sum.pid);
		sqlite3_bind_int64(ins, 3, sum.groups);
		for (int c = 0; c < NCOLUMNS; c++)
			sqlite3_bind_int64(ins, 4 + c, sum.sums[c]);
		sqlite3_bind_int64(ins, 4 + NCOLUMNS, sum.total);
		rc = fl_db_step(d, ins) == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(ins);
	return rc;
}

/* A site_summary row: one process's faults of one class at one instruction, by one caller chain. */
struct site_sum {
	int64_t proc_id, frame_id, callers_id, count;
	const char *end, *cls; /* interned (kind_of) */
};

static int by_site(const void *a, const void *b)
{
	const struct site_sum *x = a, *y = b;
	int c;

	if (x->proc_id != y->proc_id)
		return x->proc_id < y->proc_id ? -1 : 1;
	if (x->frame_id != y->frame_id)
		return x->frame_id < y->frame_id ? -1 : 1;
	if (x->callers_id != y->callers_id)
		return x->callers_id < y->callers_id ? -1 : 1;
	return (c = strcmp(x->end, y->end)) ? c : strcmp(x->cls, y->cls);
}

/* The fault_site rows into *out (n of them), their strings interned in names. */
static int read_sites(struct fl_db *d, struct site_sum **out, size_t *n, struct kinds *names)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT proc_id, frame_id, coalesce(callers_id, 0),"
					    " coalesce(callers_end, ''), class, count FROM fault_site");
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		const struct kind *end = kind_of(names, (const char *)sqlite3_column_text(st, 3)),
				  *cls = kind_of(names, (const char *)sqlite3_column_text(st, 4));

		if (!end || !cls || fl_vec_reserve((void **)out, &cap, *n + 1, sizeof(**out)))
			break;
		(*out)[(*n)++] = (struct site_sum){ sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
						    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 5),
						    end->name, cls->name };
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Rows a site_summary INSERT carries: one statement a row cost what SQLite's GROUP BY did. */
#define SITE_BATCH 64

/* Binds site s as the i'th row of st (6 columns). */
static void bind_site(sqlite3_stmt *st, int i, const struct site_sum *s)
{
	sqlite3_bind_int64(st, 6 * i + 1, s->proc_id);
	sqlite3_bind_int64(st, 6 * i + 2, s->frame_id);
	sqlite3_bind_int64(st, 6 * i + 3, s->callers_id);
	sqlite3_bind_text(st, 6 * i + 4, s->end, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6 * i + 5, s->cls, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6 * i + 6, s->count);
}

/* The INSERT into schema's site_summary of `rows` rows, prepared. */
static sqlite3_stmt *site_insert(struct fl_db *d, const char *schema, int rows)
{
	char one[64], *sql;
	sqlite3_stmt *st;

	snprintf(one, sizeof(one), "INSERT INTO %s.site_summary VALUES(?,?,?,?,?,?)", schema);
	if (!(sql = fl_sql_many_rows(one, rows)))
		return NULL;
	st = fl_db_prepare(d, sql);
	free(sql);
	return st;
}

/*
 * site_summary: fault_site per process, instruction, caller chain and class
 * (callers_id 0: none known; callers_end '': not walked), summed here and
 * inserted in key order, SITE_BATCH rows a statement.  SQLite's GROUP BY
 * took 100-112 ms of a 223-process build's close to sort its 87,689 rows
 * (docs/performance.md).
 */
static int write_sites(struct fl_db *d, const char *schema)
{
	struct kinds names = { 0 };
	struct site_sum *v;
	sqlite3_stmt *batch = NULL, *one = NULL;
	size_t n, out = 0;
	int rc = read_sites(d, &v, &n, &names);

	if (!rc)
		fl_vec_sort(v, n, sizeof(*v), by_site);
	for (size_t i = 0, j; i < n && !rc; i = j) { /* the sums into v[0..out) */
		v[out] = v[i];
		for (j = i + 1; j < n && !by_site(&v[i], &v[j]); j++)
			v[out].count += v[j].count;
		out++;
	}
	for (size_t i = 0; i < out && !rc; ) {
		bool full = out - i >= SITE_BATCH;
		sqlite3_stmt **st = full ? &batch : &one;

		if (!*st && !(*st = site_insert(d, schema, full ? SITE_BATCH : 1))) {
			rc = -1;
			break;
		}
		sqlite3_reset(*st);
		for (int k = 0; k < (full ? SITE_BATCH : 1); k++)
			bind_site(*st, k, &v[i++]);
		rc = fl_db_step(d, *st) == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(batch);
	sqlite3_finalize(one);
	free(v);
	kinds_free(&names);
	return rc;
}

/*
 * The faults of every key of `faults --by`: the fault rows summed per
 * process and VMA row by one query, then grouped here for each key, one
 * process at a time (six GROUP BYs in SQL over a scratch table took
 * seconds on 100,000 rows); site_summary by write_sites.  The recording's
 * own (main) keeps the top groups of the region and vma keys (key_rows); a
 * reader's own (temp) all.
 */
static int write_faults(struct fl_db *d, const char *schema)
{
	bool cut = strcmp(schema, "temp") != 0;
	char cols[1024], sql[8192];
	struct row_sums **rows = NULL;
	struct vma_faults *groups = NULL;
	struct key_totals totals = { 0 };
	struct kinds kinds = { 0 };
	sqlite3_stmt *proc = NULL, *ins = NULL;
	size_t n = 0, cap = 0, ngroups = 0;
	int rc = 0;

	column_list(cols, sizeof(cols), ", %s INTEGER NOT NULL%.0s");
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %%s.fault_summary (key TEXT NOT NULL, pid INTEGER NOT NULL, grp, l1, l2, l3, l4,"
		 " nrows INTEGER NOT NULL%s, total INTEGER NOT NULL);"
		 "CREATE TABLE %%s.site_summary (proc_id INTEGER NOT NULL, frame_id INTEGER NOT NULL,"
		 " callers_id INTEGER NOT NULL, callers_end TEXT NOT NULL, class TEXT NOT NULL, count INTEGER NOT NULL,"
		 " PRIMARY KEY (proc_id, frame_id, callers_id, callers_end, class)) WITHOUT ROWID;", cols);
	if (exec_in(d, schema, sql) || write_sites(d, schema) || sum_faults(d, &groups, &ngroups, &kinds)) {
		groups_free(groups, ngroups);
		kinds_free(&kinds);
		return -1;
	}
	/* each group's process (a fault of a process with no row is no process's: skipped) */
	proc = fl_db_prepare(d, "SELECT pid, exe FROM process WHERE id = ?");
	snprintf(sql, sizeof(sql), "INSERT INTO %s.fault_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?", schema);
	for (int c = 0; c <= NCOLUMNS; c++)
		strcat(sql, ", ?");
	strcat(sql, ")");
	ins = proc ? fl_db_prepare(d, sql) : NULL;
	rc = ins ? 0 : -1;
	bool have_proc = false;
	for (size_t i = 0; i < ngroups && !rc; i++) {
		const struct vma_faults *g = &groups[i];

		if (!i || g->proc_id != groups[i - 1].proc_id) {
			if (n && (rc = flush_process(d, ins, rows, &n, cut, &totals)))
				break;
			sqlite3_reset(proc);
			sqlite3_bind_int64(proc, 1, g->proc_id);
			rc = fl_db_step(d, proc);
			have_proc = rc == SQLITE_ROW;
			if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				break;
			rc = 0;
		}
		if (!have_proc)
			continue;
		if (fl_vec_reserve((void **)&rows, &cap, n + 1, sizeof(*rows)) ||
		    !(rows[n] = row_of(g, sqlite3_column_int64(proc, 0), (const char *)sqlite3_column_text(proc, 1)))) {
			rc = -1;
			break;
		}
		n++;
	}
	rc = rc ? -1 : flush_process(d, ins, rows, &n, cut, &totals);
	while (n)
		free(rows[--n]);
	free(rows);
	groups_free(groups, ngroups);
	kinds_free(&kinds);
	sqlite3_finalize(proc);
	sqlite3_finalize(ins);
	rc = rc || write_totals(d, schema, &totals) ||
	     /* the order `faults` lists them in: its top rows need no sort, even when all tie */
	     exec_in(d, schema, "CREATE INDEX %s.fault_summary_order ON fault_summary(key, total DESC, l1, l2, l3, l4)");
	free(totals.v);
	return rc ? -1 : 0;
}

static int64_t sum_classes(const int64_t *v)
{
	int64_t n = 0;

	for (int c = 0; c < FL_NCLASSES; c++)
		n += v[c];
	return n;
}

/* A region and its faults (its own and faultline's), summed once, not in every comparison. */
struct ranked {
	int64_t faults;
	const struct fl_region *region;
};

/* Regions by faults, most first, then by origin: html's order. */
static int by_faults(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->faults != y->faults)
		return x->faults > y->faults ? -1 : 1;
	return (x->region->origin_id > y->region->origin_id) - (x->region->origin_id < y->region->origin_id);
}

/* One row of region_summary: a region, or (g NULL) the sum of the n regions of rest[]. */
static int region_row(struct fl_db *d, sqlite3_stmt *ins, int64_t proc_id, const struct fl_region *g,
		      const struct ranked *rest, size_t n)
{
	int64_t faults[FL_NCLASSES] = { 0 }, fl = 0;

	for (size_t i = 0; i < (g ? 1 : n); i++) {
		const struct fl_region *one = g ? g : rest[i].region;
		for (int c = 0; c < FL_NCLASSES; c++)
			faults[c] += one->faults[c];
		fl += sum_classes(one->fl_faults);
	}
	sqlite3_reset(ins);
	sqlite3_clear_bindings(ins);
	sqlite3_bind_int64(ins, 1, proc_id);
	if (g) {
		sqlite3_bind_int64(ins, 2, g->origin_id);
		sqlite3_bind_text(ins, 4, g->label, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, g->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, g->funcs, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 7, g->footprint != FL_FP_NONE);
	}
	sqlite3_bind_int64(ins, 3, g ? 1 : (int64_t)n);
	sqlite3_bind_int64(ins, 8, fl);
	for (int c = 0; c < FL_NCLASSES; c++)
		sqlite3_bind_int64(ins, 9 + c, faults[c]);
	sqlite3_bind_int64(ins, 9 + FL_NCLASSES, sum_classes(faults) + fl);
	return fl_db_step(d, ins) == SQLITE_DONE ? 0 : -1;
}

/*
 * Per process, its regions (measure.c: everything one call mapped, with what
 * split from it) with the most faults, FL_SUM_TOP_REGIONS of them, and one
 * row for the rest: what `html` lists, and its totals.
 */
static int write_regions(struct fl_db *d, const char *schema, const struct fl_run *run)
{
	char cols[1024], sql[2048];
	sqlite3_stmt *ins;
	size_t len;
	int rc = 0;

	len = (size_t)snprintf(cols, sizeof(cols), "proc_id INTEGER NOT NULL, origin_id INTEGER, regions INTEGER NOT NULL,"
			       " label TEXT, kind TEXT, funcs TEXT, faultline INTEGER, fl_faults INTEGER NOT NULL");
	for (int c = 0; c < FL_NCLASSES; c++)
		len += (size_t)snprintf(cols + len, sizeof(cols) - len, ", %s INTEGER NOT NULL", fl_class_names[c]);
	snprintf(cols + len, sizeof(cols) - len, ", total INTEGER NOT NULL");
	snprintf(sql, sizeof(sql), "CREATE TABLE %s.region_summary (%s)", schema, cols);
	if (exec(d, sql))
		return -1;
	len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s.region_summary VALUES (?", schema);
	for (int i = 1; i < 9 + FL_NCLASSES; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", ?");
	snprintf(sql + len, sizeof(sql) - len, ")");
	if (!(ins = fl_db_prepare(d, sql)))
		return -1;
	for (size_t i = 0, k; i < run->nregions && !rc; i = k) {
		struct ranked *order;
		size_t n;

		for (k = i; k < run->nregions && run->regions[k].proc == run->regions[i].proc; k++)
			;
		n = k - i;
		if (!(order = malloc(n * sizeof(*order)))) {
			rc = -1;
			break;
		}
		for (size_t m = 0; m < n; m++) {
			const struct fl_region *g = &run->regions[i + m];
			order[m] = (struct ranked){ sum_classes(g->faults) + sum_classes(g->fl_faults), g };
		}
		fl_vec_sort(order, n, sizeof(*order), by_faults);
		for (size_t m = 0; m < n && m < FL_SUM_TOP_REGIONS && !rc; m++)
			rc = region_row(d, ins, run->procs[run->regions[i].proc].id, order[m].region, NULL, 0);
		if (!rc && n > FL_SUM_TOP_REGIONS)
			rc = region_row(d, ins, run->procs[run->regions[i].proc].id, NULL, order + FL_SUM_TOP_REGIONS,
					n - FL_SUM_TOP_REGIONS);
		free(order);
	}
	sqlite3_finalize(ins);
	return rc;
}

/* The kinds of call met in the event table, with their calls and failed calls per process. */
struct call_kinds {
	struct fl_names names;
	int64_t **counts; /* [kind][2 * i]: calls of the process ids[i], then [2 * i + 1] its failed calls */
	size_t ncounts, capcounts;
	int64_t *ids;     /* the process table's ids, ascending (a recording read may be anyone's:
			   * not assumed dense) */
	size_t nprocs;
};

/* The index in k->ids of process id, or -1: the last one found first (a process's calls come in runs). */
static long proc_index(const struct call_kinds *k, int64_t id, long last)
{
	size_t lo = 0, hi = k->nprocs;

	if (last >= 0 && k->ids[last] == id)
		return last;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->ids[mid] == id)
			return (long)mid;
		if (k->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The counts of the kind called name, made if new, or NULL without memory. */
static int64_t *call_counts(struct call_kinds *k, const char *name)
{
	long i = fl_names_index(&k->names, name);

	if (i < 0)
		return NULL;
	if ((size_t)i == k->ncounts) { /* a new kind */
		if (fl_vec_reserve((void **)&k->counts, &k->capcounts, k->ncounts + 1, sizeof(*k->counts)) ||
		    !(k->counts[i] = calloc(k->nprocs * 2 + 1, sizeof(**k->counts))))
			return NULL;
		k->ncounts++;
	}
	return k->counts[i];
}

/*
 * call_summary: each process's calls and failed calls by kind, counted in
 * C over one scan of the event table (70 ms for churn's 240k calls; the
 * GROUP BY it replaces sorted every row: 0.3-0.7 s).
 */
static int write_calls(struct fl_db *d, const char *schema)
{
	struct call_kinds k = { 0 };
	sqlite3_stmt *st, *ins = NULL;
	size_t cap = 0;
	long last = -1;
	char sql[256];
	int rc;

	if (exec_in(d, schema,
		    "CREATE TABLE %s.call_summary (proc_id INTEGER NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL,"
		    " errors INTEGER NOT NULL, PRIMARY KEY (proc_id, kind)) WITHOUT ROWID;") ||
	    !(st = fl_db_prepare(d, "SELECT id FROM process ORDER BY id")))
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW && !fl_vec_reserve((void **)&k.ids, &cap, k.nprocs + 1, sizeof(*k.ids)))
		k.ids[k.nprocs++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	snprintf(sql, sizeof(sql), "INSERT INTO %s.call_summary VALUES (?, ?, ?, ?)", schema);
	if (rc != SQLITE_DONE || !(st = fl_db_prepare(d, "SELECT proc_id, kind, errno != 0 FROM event")) ||
	    !(ins = fl_db_prepare(d, sql))) {
		rc = -1;
		goto out;
	}
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		long p = proc_index(&k, sqlite3_column_int64(st, 0), last);
		int64_t *c;

		if (!name || p < 0) /* no kind, no process: the schema forbids it */
			continue;
		if (!(c = call_counts(&k, name))) {
			fprintf(stderr, "faultline: out of memory\n");
			break;
		}
		c[2 * p]++;
		c[2 * p + 1] += sqlite3_column_int(st, 2);
		last = p;
	}
	if (rc != SQLITE_DONE) {
		rc = -1;
		goto out;
	}
	rc = 0;
	for (size_t p = 0; p < k.nprocs && !rc; p++)
		for (size_t i = 0; i < k.ncounts && !rc; i++) {
			const int64_t *c = k.counts[i] + 2 * p;
			if (!c[0])
				continue;
			sqlite3_reset(ins);
			sqlite3_bind_int64(ins, 1, k.ids[p]);
			sqlite3_bind_text(ins, 2, k.names.v[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 3, c[0]);
			sqlite3_bind_int64(ins, 4, c[1]);
			rc = fl_db_step(d, ins) == SQLITE_DONE ? 0 : -1;
		}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	for (size_t i = 0; i < k.ncounts; i++)
		free(k.counts[i]);
	free(k.counts);
	fl_names_free(&k.names);
	free(k.ids);
	return rc;
}

/*
 * Who makes proc_summary's mapped-size peaks (fl_vma_peak: a walk of every
 * VMA row of a process in time order) at the close: the first of its two
 * sides free to (fl_summary_store).  threads8's process part loads its
 * 400k regions for 0.6 s while the main thread is done in 0.2; churn's
 * main thread sums 80k faulted VMAs while the process part is done first.
 */
enum { PEAKS_UNCLAIMED, PEAKS_BY_PART, PEAKS_BY_MAIN };

/* Whether side `me` makes the peaks: the first to ask takes them (by NULL: no other side). */
static bool claim_peaks(int *by, int me)
{
	int unclaimed = PEAKS_UNCLAIMED;

	return !by || __atomic_compare_exchange_n(by, &unclaimed, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
	       unclaimed == me;
}

/*
 * Per process: its mapped-size peak (rows.c), its resident peak and calls,
 * the program's own faults and calls apart from faultline's (measure.c;
 * eBPF recordings only, NULL otherwise or when they cannot be read), and
 * its regions with the most faults.  (Its calls by kind: write_calls.)
 * The peaks are made here unless peaks_by says the other side of the close
 * claimed them first (NULL: there is none); they are NULL then, until
 * write_peaks.
 */
static int write_procs(struct fl_db *d, const char *schema, int *peaks_by)
{
	struct fl_run run = { 0 };
	sqlite3_stmt *st = NULL, *ins = NULL;
	char sql[512];
	bool loaded, own, peaks;
	int rc;

	if (exec_in(d, schema,
		    "CREATE TABLE %s.proc_summary (proc_id INTEGER PRIMARY KEY, peak_ns INTEGER, peak_mapped INTEGER,"
		    " rss_peak INTEGER, calls INTEGER, own_minor INTEGER, own_major INTEGER, own_calls INTEGER,"
		    " fl_faults INTEGER, fl_calls INTEGER);"))
		return -1;
	loaded = !fl_run_load_regions(d, &run);
	own = loaded && run.has_faults;
	peaks = claim_peaks(peaks_by, PEAKS_BY_PART); /* else NULL here, and write_peaks fills them */
	snprintf(sql, sizeof(sql), "INSERT INTO %s.proc_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", schema);
	if (!(st = fl_db_prepare(d, "SELECT id FROM process ORDER BY id")) || !(ins = fl_db_prepare(d, sql))) {
		rc = -1;
		goto out;
	}
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		static const struct fl_selector all;
		int64_t id = sqlite3_column_int64(st, 0), t = 0, bytes = 0, fl_faults, fl_calls;
		int has = peaks ? fl_vma_peak(d, id, &t, &bytes) : 0, i = loaded ? fl_run_proc(&run, id) : -1;

		if (has < 0) {
			rc = -1;
			break;
		}
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		sqlite3_bind_int64(ins, 1, id);
		if (has) {
			sqlite3_bind_int64(ins, 2, t);
			sqlite3_bind_int64(ins, 3, bytes);
		}
		if (i >= 0) {
			sqlite3_bind_int64(ins, 4, run.procs[i].rss_peak);
			sqlite3_bind_int64(ins, 5, run.procs[i].calls);
		}
		if (i >= 0 && own) {
			fl_proc_footprint(&run, i, &fl_faults, &fl_calls);
			sqlite3_bind_int64(ins, 6, fl_proc_metric(&run, i, &all, FL_M_minor));
			sqlite3_bind_int64(ins, 7, fl_proc_metric(&run, i, &all, FL_M_major));
			sqlite3_bind_int64(ins, 8, run.procs[i].calls);
			sqlite3_bind_int64(ins, 9, fl_faults);
			sqlite3_bind_int64(ins, 10, fl_calls);
		}
		if (fl_db_step(d, ins) != SQLITE_DONE) {
			rc = -1;
			break;
		}
	}
	rc = rc == SQLITE_DONE ? write_regions(d, schema, &run) : -1;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	fl_run_free(&run);
	return rc;
}

/*
 * FL_SUM_PROCS in two, for the close: call_summary alone (a scan of every
 * event: threads8's 800k, 0.19 s) is made on the main thread after the
 * fault part, the rest on the part's own thread beside them.
 */
#define SUM_CALLS 4u
#define SUM_PROCS_REST 8u

int fl_summary_write(struct fl_db *d, const char *schema, unsigned parts)
{
	if (parts & FL_SUM_PROCS)
		parts |= SUM_CALLS | SUM_PROCS_REST;
	return ((parts & FL_SUM_FAULTS) && write_faults(d, schema)) || ((parts & SUM_CALLS) && write_calls(d, schema)) ||
	       ((parts & SUM_PROCS_REST) && write_procs(d, schema, NULL)) ? -1 : 0;
}

/* A process's mapped-size peak (fl_vma_peak), made apart from its proc_summary row. */
struct proc_peak {
	int64_t proc_id, t, bytes;
};

/* The peak of every process that has one, into *out (n of them). */
static int read_peaks(struct fl_db *d, struct proc_peak **out, size_t *n)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT id FROM process ORDER BY id");
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		struct proc_peak p = { .proc_id = sqlite3_column_int64(st, 0) };
		int has = fl_vma_peak(d, p.proc_id, &p.t, &p.bytes);

		if (has < 0 || (has && fl_vec_reserve((void **)out, &cap, *n + 1, sizeof(**out)))) {
			rc = -1;
			break;
		}
		if (has)
			(*out)[(*n)++] = p;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The peaks into the proc_summary rows the process part made without them. */
static int write_peaks(struct fl_db *d, const struct proc_peak *v, size_t n)
{
	sqlite3_stmt *st = fl_db_prepare(d, "UPDATE main.proc_summary SET peak_ns = ?, peak_mapped = ? WHERE proc_id = ?");
	int rc = st ? 0 : -1;

	for (size_t i = 0; i < n && !rc; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, v[i].t);
		sqlite3_bind_int64(st, 2, v[i].bytes);
		sqlite3_bind_int64(st, 3, v[i].proc_id);
		rc = fl_db_step(d, st) == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Whether schema holds table. */
static bool has_table(struct fl_db *d, const char *schema, const char *table)
{
	char sql[256];
	sqlite3_stmt *st;
	bool has;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s.sqlite_master WHERE type = 'table' AND name = ?", schema);
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return has;
}

/* The parts into the connection's temp schema: its own, where the viewer's read-only connection may write. */
static int write_temp(struct fl_db *d, unsigned parts)
{
	int rc;

	if (exec(d, "PRAGMA query_only = 0"))
		return -1;
	rc = fl_summary_write(d, "temp", parts);
	return exec(d, "PRAGMA query_only = 1") || rc ? -1 : 0;
}

int fl_summary_ready(struct fl_db *d, unsigned parts)
{
	unsigned missing = 0;

	/* the recording's own, written in the same transaction that marked it complete */
	for (int p = 0; p < 2; p++) {
		unsigned part = p ? FL_SUM_PROCS : FL_SUM_FAULTS;
		const char *const *t = &tables[PART_TABLES * p];
		bool all = d->complete && (p || d->version >= 10); /* 10: site_summary has the callers */

		for (int i = 0; i < PART_TABLES && all; i++)
			all = has_table(d, "main", t[i]);
		if ((parts & part) && !all && !has_table(d, "temp", t[0]))
			missing |= part;
	}
	return missing ? write_temp(d, missing) : 0;
}

int fl_summary_whole(struct fl_db *d, const struct fl_faults_key *key)
{
	sqlite3_stmt *st;
	int rc;

	if (!key->cut || has_table(d, "temp", "fault_summary"))
		return 0;  /* kept whole at close, or a reader's own */
	/* a key cut at close has more groups than it kept (an older recording's never were: built again all the same) */
	if (!(st = fl_db_prepare(d, "SELECT EXISTS (SELECT 1 FROM fault_summary_total WHERE key = ? AND groups > ?)")))
		return -1;
	sqlite3_bind_text(st, 1, key->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, FL_SUM_TOP_GROUPS);
	rc = fl_db_step(d, st);
	bool cut = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -1;
	return cut ? write_temp(d, FL_SUM_FAULTS) : 0;
}

/*
 * The close's second part, FL_SUM_PROCS but its calls by kind (and its
 * mapped-size peaks when the main thread claims them first), made on a
 * thread of its own while the first is written: it reads the recording
 * through a read-only connection of its own and writes into an in-memory
 * database, whose few rows (one per process, its top regions) are copied
 * in afterwards.  The two parts read the rows and write their own tables
 * only.  churn (240k calls, 80k faulted VMAs): 1.0 s of the close's 2.6 s.
 */
struct procs_part {
	const char *file; /* the recording, everything committed in the file itself (store.h) */
	const char *path; /* for messages */
	sqlite3 *mem;     /* the part's tables */
	int peaks_by;     /* PEAKS_*: which side makes the mapped-size peaks */
	int rc;
};

static void *make_procs_part(void *arg)
{
	struct procs_part *p = arg;
	char *ro = fl_db_ro_uri(p->file), *uri = NULL;
	sqlite3_stmt *st = NULL;
	struct fl_db d;

	p->rc = -1;
	/* immutable: no locks, no WAL index; nothing writes the file itself meanwhile (the
	 * recorder's writes go to the WAL until it commits, after this part is done) */
	if (!ro || asprintf(&uri, "%s&immutable=1", ro) < 0)
		uri = NULL;
	free(ro);
	/* the recording as "rec": the part's reads find its tables there, its writes go to main;
	 * if it cannot, the caller makes the part itself (a message here would be one too many) */
	if (uri && sqlite3_open_v2(":memory:", &p->mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
				   NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(p->mem, "ATTACH ? AS rec", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE &&
	    !fl_db_wrap(&d, p->mem, p->path)) {
		p->rc = write_procs(&d, "main", &p->peaks_by);
		fl_db_release(&d);
	}
	sqlite3_finalize(st);
	free(uri);
	return NULL;
}

/* Table name of from, made by create, and its rows into d's main schema. */
static int copy_table(struct fl_db *d, sqlite3 *from, const char *name, const char *create)
{
	char sql[1024];
	sqlite3_stmt *sel = NULL, *ins = NULL;
	int rc = -1, n;

	snprintf(sql, sizeof(sql), "SELECT * FROM main.\"%s\"", name);
	if (sqlite3_prepare_v2(from, sql, -1, &sel, NULL) != SQLITE_OK || exec(d, create))
		goto out;
	n = sqlite3_column_count(sel);
	size_t len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO main.\"%s\" VALUES (?", name);
	for (int i = 1; i < n && len < sizeof(sql); i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", ?");
	snprintf(sql + len, sizeof(sql) - len, ")");
	if (!(ins = fl_db_prepare(d, sql)))
		goto out;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		sqlite3_reset(ins);
		for (int i = 0; i < n; i++)
			sqlite3_bind_value(ins, i + 1, sqlite3_column_value(sel, i));
		if (fl_db_step(d, ins) != SQLITE_DONE)
			break;
	}
	rc = rc == SQLITE_DONE ? 0 : -1;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return rc;
}

/* The tables (then the indexes, if any) of mem's main schema into d's. */
static int copy_part(struct fl_db *d, sqlite3 *mem)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(mem, "SELECT type, name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL"
				    " ORDER BY type = 'index'", -1, &st, NULL) == SQLITE_OK ? SQLITE_ROW : -1;

	while (rc == SQLITE_ROW && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0), *name = (const char *)sqlite3_column_text(st, 1),
			   *create = (const char *)sqlite3_column_text(st, 2);
		if (!strcmp(type, "table") ? copy_table(d, mem, name, create) : exec(d, create))
			rc = -1;
	}
	if (rc != SQLITE_DONE)
		fprintf(stderr, "faultline: %s: cannot copy the summaries of its processes (%s)\n", d->path,
			sqlite3_errmsg(mem));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Whether the recording is large enough for the process part to pay for its
 * thread: a second connection reading the schema, and the copy of its rows,
 * cost ~3.5 ms, which is all a recording of `true` (~100 calls and VMA rows)
 * would save.
 */
static bool worth_a_thread(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool big = true;

	if (sqlite3_prepare_v2(db, "SELECT coalesce((SELECT max(rowid) FROM event), 0) + "
				   "coalesce((SELECT max(rowid) FROM vma), 0)", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		big = sqlite3_column_int64(st, 0) >= 2000;
	sqlite3_finalize(st);
	return big;
}

int fl_summary_store(sqlite3 *db, const char *path, const char *file)
{
	struct procs_part procs = { .file = file, .path = path };
	pthread_t thread;
	bool threaded = file && worth_a_thread(db) && !pthread_create(&thread, NULL, make_procs_part, &procs);
	struct proc_peak *peaks = NULL;
	size_t npeaks = 0;
	struct fl_db d;
	int rc = fl_db_wrap(&d, db, path);

	if (!rc && !(rc = exec(&d, "SAVEPOINT summary")))
		rc = fl_summary_write(&d, "main", FL_SUM_FAULTS | SUM_CALLS) ||
		     (threaded && claim_peaks(&procs.peaks_by, PEAKS_BY_MAIN) && read_peaks(&d, &peaks, &npeaks));
	if (threaded)
		pthread_join(thread, NULL);
	if (!rc) /* the rest of the part from its thread, else (no thread, or it failed) made here */
		rc = threaded && !procs.rc ? copy_part(&d, procs.mem) || write_peaks(&d, peaks, npeaks)
					   : fl_summary_write(&d, "main", SUM_PROCS_REST);
	free(peaks);
	if (rc && sqlite3_get_autocommit(db) == 0)
		sqlite3_exec(db, "ROLLBACK TO summary", NULL, NULL, NULL);
	sqlite3_exec(db, "RELEASE summary", NULL, NULL, NULL);
	fl_db_release(&d);
	sqlite3_close(procs.mem);
	return rc;
}

int fl_cmd_summarize(int argc, char **argv)
{
	struct fl_db d;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: faultline __summarize FILE\n");
		return 2;
	}
	if (fl_db_open_writable(&d, argv[1]))
		return 1;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS main.%s", tables[i]);
		if (exec(&d, sql)) {
			fl_db_close(&d);
			return 1;
		}
	}
	rc = exec(&d, "BEGIN") || fl_summary_write(&d, "main", FL_SUM_ALL) || exec(&d, "COMMIT");
	fl_db_close(&d);
	return rc ? 1 : 0;
}
