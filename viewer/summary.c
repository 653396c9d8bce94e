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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "faultline.h"
#include "measure.h"
#include "rows.h"

/* The fault table's class columns and thp, as `faults` and `report` list them. */
#define CLASS_NAME_(c, name) #name,
static const char *const columns[] = { FL_FAULT_CLASSES(CLASS_NAME_) "thp" };
#define NCOLUMNS (int)(sizeof(columns) / sizeof(columns[0]))

/* The creating event of a row: its own, else (a piece split off, or inherited at fork) its origin's. */
#define CREATING_EVENT \
	"coalesce(v.created_by, CASE WHEN v.how IN ('split', 'fork') THEN" \
	" (SELECT x.created_by FROM vma x WHERE x.id = v.origin_id AND x.id != v.id) END)"

/* The region of a row: the kernel VMA the last smaps sample that saw it found it in, else the row alone. */
#define REGION_OF \
	"coalesce((SELECT pr.sample_id || ':' || pr.region_start FROM piece_rss pr WHERE pr.vma_id = v.id" \
	" ORDER BY pr.sample_id DESC LIMIT 1), 'row:' || v.id)"

const struct fl_faults_key fl_faults_keys[] = {
	{ "process", "f.proc_id", "f.pid, f.exe", 2, { "pid", "exe" }, true },
	{ "region", "f.region", "f.pid, printf('%x-%x', min(f.start), max(f.end)), f.kind, coalesce(f.path, '')", 4,
	  { "pid", "range", "kind", "file" }, true },
	{ "vma", "f.vma_id", "f.pid, printf('%x-%x', f.start, f.end), f.kind, coalesce(f.path, '')", 4,
	  { "pid", "range", "kind", "file" }, true },
	{ "kind", "f.kind", "f.kind", 1, { "kind" }, false },
	{ "file", "coalesce(f.path, '[' || f.kind || ']')", "coalesce(f.path, '[' || f.kind || ']')", 1, { "file" },
	  false },
	{ "stack", "f.stack_id", "f.stack_id", 1, { "creating stack" }, false },
};
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

/*
 * The faults of every key of `faults --by`: per process and group, the
 * fault rows summed (the per-row sums first, in a scratch table with what
 * the keys group by, so the ten million fault rows and the joins are read
 * once).  site_summary: fault_site per
 * process, instruction and class.
 */
static int write_faults(struct fl_db *d, const char *schema)
{
	char cols[1024], sums[1024], resum[1024], sql[8192];
	int rc;

	column_list(cols, sizeof(cols), ", %s INTEGER NOT NULL%.0s");
	column_list(sums, sizeof(sums), ", sum(%s) AS %s");
	column_list(resum, sizeof(resum), ", sum(f.%s)%.0s");
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %%s.fault_summary (key TEXT NOT NULL, pid INTEGER NOT NULL, grp, l1, l2, l3, l4,"
		 " nrows INTEGER NOT NULL%s, total INTEGER NOT NULL);"
		 "CREATE TABLE %%s.site_summary (proc_id INTEGER NOT NULL, frame_id INTEGER NOT NULL, class TEXT NOT NULL,"
		 " count INTEGER NOT NULL, PRIMARY KEY (proc_id, frame_id, class)) WITHOUT ROWID;"
		 "INSERT INTO %%s.site_summary SELECT proc_id, frame_id, class, sum(count) FROM fault_site"
		 " GROUP BY proc_id, frame_id, class;"
		 "DROP TABLE IF EXISTS temp.summary_vma_fault;"
		 "CREATE TEMP TABLE summary_vma_fault AS SELECT s.*, p.pid, p.exe, v.id IS NOT NULL AS has_vma, v.kind,"
		 " v.path, v.start, v.end, " REGION_OF " AS region, e.stack_id"
		 " FROM (SELECT vma_id, proc_id, count(*) AS nrows%s, sum(reads + writes + execs) AS total FROM fault"
		 "  GROUP BY vma_id, proc_id) s JOIN process p ON p.id = s.proc_id LEFT JOIN vma v ON v.id = s.vma_id"
		 " LEFT JOIN event e ON e.id = " CREATING_EVENT ";",
		 cols, sums);
	if ((rc = exec_in(d, schema, sql)))
		return rc;
	for (int k = 0; k < fl_nfaults_keys && !rc; k++) {
		const struct fl_faults_key *key = &fl_faults_keys[k];

		/* the process key needs no VMA row: a fault of a row never written (an incomplete
		 * recording) is the process's all the same, as in report's totals */
		snprintf(sql, sizeof(sql),
			 "INSERT INTO %%s.fault_summary SELECT '%s', f.pid, %s, %s%s, sum(f.nrows)%s, sum(f.total)"
			 " FROM temp.summary_vma_fault f%s GROUP BY f.proc_id, %s;",
			 key->name, key->group, key->labels, key->nlabels == 1 ? ", NULL, NULL, NULL" :
			 key->nlabels == 2 ? ", NULL, NULL" : "", resum,
			 strcmp(key->name, "process") ? " WHERE f.has_vma" : "", key->group);
		rc = exec_in(d, schema, sql);
	}
	if (rc)
		return -1;
	/* what text leaves out below its top rows: the whole less the top (half a million regions are not read) */
	column_list(sums, sizeof(sums), ", sum(%s) AS %s");
	snprintf(sql, sizeof(sql),
		 /* the order `faults` lists them in: its top rows need no sort, even when all tie */
		 "CREATE INDEX %%s.fault_summary_order ON fault_summary(key, total DESC, l1, l2, l3, l4);"
		 "CREATE TABLE %%s.fault_summary_total AS SELECT key, pid, count(*) AS groups%s, sum(total) AS total"
		 " FROM %%s.fault_summary GROUP BY key, pid;"
		 "DROP TABLE temp.summary_vma_fault;", sums);
	return exec_in(d, schema, sql);
}

static int64_t sum_classes(const int64_t *v)
{
	int64_t n = 0;

	for (int c = 0; c < FL_NCLASSES; c++)
		n += v[c];
	return n;
}

/* Regions by faults (their own and faultline's), most first, then by origin: html's order. */
static int by_faults(const void *a, const void *b)
{
	const struct fl_region *x = *(const struct fl_region *const *)a, *y = *(const struct fl_region *const *)b;
	int64_t fx = sum_classes(x->faults) + sum_classes(x->fl_faults), fy = sum_classes(y->faults) + sum_classes(y->fl_faults);

	if (fx != fy)
		return fx > fy ? -1 : 1;
	return (x->origin_id > y->origin_id) - (x->origin_id < y->origin_id);
}

/* One row of region_summary: a region, or (g NULL) the sum of the n regions of rest[]. */
static int region_row(struct fl_db *d, sqlite3_stmt *ins, int64_t proc_id, const struct fl_region *g,
		      struct fl_region *const *rest, size_t n)
{
	int64_t faults[FL_NCLASSES] = { 0 }, fl = 0;

	for (size_t i = 0; i < (g ? 1 : n); i++) {
		const struct fl_region *one = g ? g : rest[i];
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
		struct fl_region **order;
		size_t n;

		for (k = i; k < run->nregions && run->regions[k].proc == run->regions[i].proc; k++)
			;
		n = k - i;
		if (!(order = malloc(n * sizeof(*order)))) {
			rc = -1;
			break;
		}
		for (size_t m = 0; m < n; m++)
			order[m] = &run->regions[i + m];
		qsort(order, n, sizeof(*order), by_faults);
		for (size_t m = 0; m < n && m < FL_SUM_TOP_REGIONS && !rc; m++)
			rc = region_row(d, ins, run->procs[run->regions[i].proc].id, order[m], NULL, 0);
		if (!rc && n > FL_SUM_TOP_REGIONS)
			rc = region_row(d, ins, run->procs[run->regions[i].proc].id, NULL, order + FL_SUM_TOP_REGIONS,
					n - FL_SUM_TOP_REGIONS);
		free(order);
	}
	sqlite3_finalize(ins);
	return rc;
}

/*
 * Per process: its calls by kind, its mapped-size peak (rows.c), its
 * resident peak and calls, the program's own faults and calls apart from
 * faultline's (measure.c; eBPF recordings only, NULL otherwise or when they
 * cannot be read), and its regions with the most faults.
 */
static int write_procs(struct fl_db *d, const char *schema)
{
	struct fl_run run = { 0 };
	sqlite3_stmt *st = NULL, *ins = NULL;
	char sql[512];
	bool loaded, own;
	int rc;

	if (exec_in(d, schema,
		    "CREATE TABLE %s.call_summary (proc_id INTEGER NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL,"
		    " errors INTEGER NOT NULL, PRIMARY KEY (proc_id, kind)) WITHOUT ROWID;"
		    "INSERT INTO %s.call_summary SELECT proc_id, kind, count(*), sum(errno != 0) FROM event"
		    " GROUP BY proc_id, kind;"
		    "CREATE TABLE %s.proc_summary (proc_id INTEGER PRIMARY KEY, peak_ns INTEGER, peak_mapped INTEGER,"
		    " rss_peak INTEGER, calls INTEGER, own_minor INTEGER, own_major INTEGER, own_calls INTEGER,"
		    " fl_faults INTEGER, fl_calls INTEGER);"))
		return -1;
	loaded = !fl_run_load_regions(d, &run);
	own = loaded && run.has_faults;
	snprintf(sql, sizeof(sql), "INSERT INTO %s.proc_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", schema);
	if (!(st = fl_db_prepare(d, "SELECT id FROM process ORDER BY id")) || !(ins = fl_db_prepare(d, sql))) {
		rc = -1;
		goto out;
	}
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		static const struct fl_selector all;
		int64_t id = sqlite3_column_int64(st, 0), t = 0, bytes = 0, fl_faults, fl_calls;
		int has = fl_vma_peak(d, id, &t, &bytes), i = loaded ? fl_run_proc(&run, id) : -1;

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

int fl_summary_write(struct fl_db *d, const char *schema, unsigned parts)
{
	return ((parts & FL_SUM_FAULTS) && write_faults(d, schema)) || ((parts & FL_SUM_PROCS) && write_procs(d, schema))
	       ? -1 : 0;
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

int fl_summary_ready(struct fl_db *d, unsigned parts)
{
	unsigned missing = 0;
	int rc;

	/* the recording's own, written in the same transaction that marked it complete */
	for (int p = 0; p < 2; p++) {
		unsigned part = p ? FL_SUM_PROCS : FL_SUM_FAULTS;
		const char *const *t = &tables[PART_TABLES * p];
		bool all = d->complete;

		for (int i = 0; i < PART_TABLES && all; i++)
			all = has_table(d, "main", t[i]);
		if ((parts & part) && !all && !has_table(d, "temp", t[0]))
			missing |= part;
	}
	if (!missing)
		return 0;
	/* the viewer's connection is read-only; its temp schema is its own */
	if (exec(d, "PRAGMA query_only = 0"))
		return -1;
	rc = fl_summary_write(d, "temp", missing);
	return exec(d, "PRAGMA query_only = 1") || rc ? -1 : 0;
}

int fl_summary_store(sqlite3 *db, const char *path)
{
	struct fl_db d;
	int rc = fl_db_wrap(&d, db, path);

	if (!rc && !(rc = exec(&d, "SAVEPOINT summary")))
		rc = fl_summary_write(&d, "main", FL_SUM_ALL);
	if (rc && sqlite3_get_autocommit(db) == 0)
		sqlite3_exec(db, "ROLLBACK TO summary", NULL, NULL, NULL);
	sqlite3_exec(db, "RELEASE summary", NULL, NULL, NULL);
	fl_db_release(&d);
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
