/* SPDX-License-Identifier: MIT */
/*
 * faultsby.c - `faultline faults FILE --by KEY`: the recorded page faults
 * summed by one key, each fault class a column (docs/faults.md says what
 * each class means).
 *
 *   process  the process that faulted
 *   region   the kernel VMA that held the faulted row in the last smaps
 *            sample that saw it (docs/schema.md piece_rss); a row no sample
 *            saw is a region of its own
 *   vma      the recorded row (a piece: one call's part of a region)
 *   kind     anon, heap, stack, file, shm, ...
 *   file     the mapped file, or [kind] for memory with none
 *   stack    the stack of the call that created the faulted memory
 *   site     the faulting instruction and the calls that led to it
 *            (fault_site, docs/faults.md "Callers"); the faults with no
 *            recorded site are one more row, so the columns add up
 *
 * Every key but site reads the fault table, whose rows hold every
 * classified fault; site reads fault_site.  Totals are reads + writes +
 * execs, as the report's; thp counts faults that mapped a huge page (they
 * are in their class too).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "cli.h"
#include "csv.h"
#include "db.h"
#include "faultline.h"
#include "frames.h"
#include "output.h"
#include "rows.h"
#include "summary.h"
#include "viewer.h"

#define USAGE "faults FILE --by region|vma|kind|file|site|stack|process [--class C] [--pid P] [--top N]" \
	" [--format json|csv]"
#define STACK_FRAMES 3

#define CLASS_NAME_(c, name) #name,
static const char *const classes[] = { FL_FAULT_CLASSES(CLASS_NAME_) "thp" };
#define NCLASSES (int)(sizeof(classes) / sizeof(classes[0]))
#define NSITE_CLASSES FL_F_NCLASS  /* fault_site has no thp */

/* The keys: summary.c's fault keys, then site (fault_site rows, summed in site_summary). */
#define NKEYS (fl_nfaults_keys + 1)
static const struct fl_faults_key site_key = { "site", 2, { "faulting instruction", "callers" }, false, false };
static const struct fl_faults_key residual_key = { "residual", 2, { "", "" }, false, false };

static const struct fl_faults_key *key_at(int i)
{
	return i < fl_nfaults_keys ? &fl_faults_keys[i] : &site_key;
}

struct opts {
	struct fl_cli cli;
	const struct fl_faults_key *key;
	int cls;       /* --class: index into classes, or -1 */
	int64_t pid;   /* 0: every process */
	int top;       /* text rows shown; the rest summed */
};

/* One output row: its labels and per-class counts (classes[], then the total). */
struct row {
	char *label[4];
	int64_t n[NCLASSES + 1];
	char *callers_end;  /* site: fault_site.callers_end ("" when not walked) */
};

static int on_option(void *ctx, int c, const char *arg)
{
	struct opts *o = ctx;
	char *end;

	switch (c) {
	case 'b':
		for (int i = 0; i < NKEYS; i++)
			if (!strcmp(arg, key_at(i)->name))
				o->key = key_at(i);
		return o->key ? -1 : fl_cli_usage_error(&o->cli, "--by wants region, vma, kind, file, site, stack or"
							" process, not '%s'", arg);
	case 'c':
		for (int i = 0; i < NCLASSES; i++)
			if (!strcmp(arg, classes[i]))
				o->cls = i;
		return o->cls >= 0 ? -1 : fl_cli_usage_error(&o->cli, "--class wants a fault class (anon_new, "
							     "pagecache, cow_anon, ... thp: docs/faults.md), not '%s'", arg);
	case 'p':
		o->pid = strtoll(arg, &end, 10);
		return *end || o->pid <= 0 ? fl_cli_usage_error(&o->cli, "--pid wants a pid, not '%s'", arg) : -1;
	case 't':
		o->top = (int)strtol(arg, &end, 10);
		return *end || o->top < 1 ? fl_cli_usage_error(&o->cli, "--top wants a positive number, not '%s'", arg)
					  : -1;
	}
	return 2;
}

/*
 * The query over the summaries (summary.h): labels, one sum per class, the
 * total; ordered by --class or the total, ties by the labels.  With
 * --class, the groups that took faults of that class, with all their
 * faults.
 */
static char *build_sql(const struct opts *o, int limit)
{
	bool site = !strcmp(o->key->name, "site"), final = o->key->per_process;
	const char *cls = o->cls >= 0 ? classes[o->cls] : NULL;
	size_t cap = 8192, len;
	char *sql = malloc(cap);

	if (!sql)
		return NULL;
	len = (size_t)snprintf(sql, cap, "SELECT %s", site ? "s.frame_id, s.callers_id" : "l1");
	for (int i = 2; i <= o->key->nlabels && !site; i++)
		len += (size_t)snprintf(sql + len, cap - len, ", l%d", i);
	for (int i = 0; i < NCLASSES; i++) {
		if (site)
			len += (size_t)snprintf(sql + len, cap - len, i < NSITE_CLASSES ?
				", coalesce(sum(CASE WHEN s.class = '%s' THEN s.count END), 0)" : ", 0 /* %s */", classes[i]);
		else
			len += (size_t)snprintf(sql + len, cap - len, final ? ", %s" : ", sum(%s)", classes[i]);
	}
	if (site)
		len += (size_t)snprintf(sql + len, cap - len, ", sum(s.count), s.callers_end FROM site_summary s"
					" JOIN process p ON p.id = s.proc_id WHERE (?1 = 0 OR p.pid = ?1)%s%s%s"
					" GROUP BY s.frame_id, s.callers_id, s.callers_end",
					cls && o->cls < NSITE_CLASSES ? " AND s.class = '" : "",
					cls && o->cls < NSITE_CLASSES ? cls : "", cls && o->cls < NSITE_CLASSES ? "'" : "");
	else
		len += (size_t)snprintf(sql + len, cap - len, ", %s FROM fault_summary WHERE key = '%s'"
					" AND (?1 = 0 OR pid = ?1)%s%s%s%s%s",
					final ? "total" : "sum(total)", o->key->name, final ? "" : " GROUP BY grp",
					!cls ? "" : final ? " AND " : " HAVING sum(", cls ? cls : "",
					!cls ? "" : final ? " > 0" : ") > 0", "");
	len += (size_t)snprintf(sql + len, cap - len, " ORDER BY %d DESC", o->key->nlabels + 1 + (o->cls >= 0 ? o->cls : NCLASSES));
	for (int i = 1; i <= o->key->nlabels; i++)
		len += (size_t)snprintf(sql + len, cap - len, ", %d", i);
	if (limit >= 0)
		snprintf(sql + len, cap - len, " LIMIT %d", limit);
	return sql;
}

/* A creating stack's innermost frames, "f1 < f2 < f3", or why there is none. */
static char *stack_label(struct fl_db *d, sqlite3_stmt *st)
{
	char buf[1600] = "(no user stack: mapped by the kernel, at exec, or before the start)", one[512];
	struct fl_frame *f = NULL;
	int n = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0
		: fl_stack_load(d, sqlite3_column_int64(st, 0), STACK_FRAMES, &f);

	if (n < 0)
		return NULL;
	for (int i = 0; i < n; i++)
		snprintf(buf + (i ? strlen(buf) : 0), sizeof(buf) - (i ? strlen(buf) : 0), "%s%s", i ? " < " : "",
			 fl_frame_short(&f[i], one, sizeof(one)));
	fl_stack_free(f, n);
	return strdup(buf);
}

static char *site_label(struct fl_db *d, sqlite3_stmt *st)
{
	struct fl_frame *f = NULL;
	char buf[512] = "?";
	int n = fl_frame_load(d, sqlite3_column_int64(st, 0), &f);

	if (n < 0)
		return NULL;
	if (n)
		fl_frame_short(f, buf, sizeof(buf));
	fl_stack_free(f, n);
	return strdup(buf);
}

static int row_read(struct fl_db *d, const struct opts *o, sqlite3_stmt *st, struct row *r)
{
	int nl = o->key->nlabels;

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < nl; i++) {
		const unsigned char *t = sqlite3_column_text(st, i);
		r->label[i] = strdup(t ? (const char *)t : "?");
	}
	if (!strcmp(o->key->name, "stack")) {
		free(r->label[0]);
		r->label[0] = stack_label(d, st);
	} else if (!strcmp(o->key->name, "site")) {
		const unsigned char *end = sqlite3_column_text(st, nl + NCLASSES + 1);

		free(r->label[0]);
		free(r->label[1]);
		r->callers_end = strdup(end ? (const char *)end : "");
		r->label[0] = site_label(d, st);
		r->label[1] = r->callers_end ? fl_callers_label(d, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
								r->callers_end, 0) : NULL;
	}
	for (int i = 0; i <= NCLASSES; i++)
		r->n[i] = sqlite3_column_int64(st, nl + i);
	for (int i = 0; i < nl; i++)
		if (!r->label[i])
			return -1;
	return 0;
}

static void rows_free(struct row *r, int n)
{
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 4; k++)
			free(r[i].label[k]);
		free(r[i].callers_end);
	}
	free(r);
}

/*
 * The faults no fault_site row holds, per class: the site table keeps one
 * row per (VMA, class, instruction) while the map has room, so when it
 * filled, or a process ended before its sites were read, the sites fall
 * short of the faults.  Shown as one more row so the columns add up.
 */
static int site_residual(struct fl_db *d, const struct opts *o, const struct row *rows, int n,
			 const struct row *rest, struct row *out)
{
	char sql[2048] = "SELECT '(no site recorded)', ''";
	size_t len = strlen(sql);
	sqlite3_stmt *st;
	int rc;

	for (int i = 0; i < NCLASSES; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, i < NSITE_CLASSES ? ", coalesce(sum(f.%s), 0)" :
					", 0 /* %s */", classes[i]);
	snprintf(sql + len, sizeof(sql) - len, ", coalesce(sum(f.total), 0) FROM fault_summary f"
		 " WHERE f.key = 'process' AND (?1 = 0 OR f.pid = ?1)");
	if (!(st = fl_db_prepare(d, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, o->pid);
	rc = fl_db_step(d, st);
	if (rc == SQLITE_ROW && !row_read(d, &(struct opts){ .key = &residual_key }, st, out)) {
		for (int i = 0; i < n; i++)
			for (int c = 0; c <= NCLASSES; c++)
				out->n[c] -= rows[i].n[c];
		for (int c = 0; c <= NCLASSES; c++)
			out->n[c] -= rest->n[c];
		if (o->cls >= 0)  /* only the class asked for: its residual is the total's */
			for (int c = 0; c <= NCLASSES; c++)
				out->n[c] = c == o->cls || c == NCLASSES ? out->n[o->cls] : 0;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Which class columns text shows: --class's, else those with any fault. */
static void columns(const struct opts *o, const struct row *rows, int n, const struct row *rest, bool *show)
{
	for (int c = 0; c < NCLASSES; c++) {
		show[c] = o->cls == c || (o->cls < 0 && rest->n[c]);
		for (int i = 0; i < n && o->cls < 0; i++)
			show[c] = show[c] || rows[i].n[c];
	}
}

/* The top rows, and the rest summed in one (load keeps no more than --top rows for text). */
static int print_text(const struct opts *o, const struct row *rows, int n, const struct row *rest, int nrest)
{
	const char *cells[4 + NCLASSES + 1];
	char nums[NCLASSES + 1][32], title[64];
	bool show[NCLASSES];
	struct fl_table t;
	int nl = o->key->nlabels, nc = 0, rc = 0;

	int tot = o->cls < 0;  /* with --class, text shows that class alone */

	columns(o, rows, n, rest, show);
	for (int c = 0; c < NCLASSES; c++)
		nc += show[c];
	fl_table_init(&t, nl + tot + nc, ~0u << nl);
	for (int i = 0; i < nl; i++)
		cells[i] = o->key->titles[i];
	cells[nl] = "total";
	for (int c = 0, k = nl + tot; c < NCLASSES; c++)
		if (show[c])
			cells[k++] = classes[c];
	rc = fl_table_add(&t, cells);
	for (int i = 0; i < n && !rc; i++) {
		const struct row *r = &rows[i];
		for (int k = 0; k < nl; k++)
			cells[k] = r->label[k];
		snprintf(nums[NCLASSES], 32, "%lld", (long long)r->n[NCLASSES]);
		cells[nl] = nums[NCLASSES];
		for (int c = 0, k = nl + tot; c < NCLASSES; c++)
			if (show[c]) {
				snprintf(nums[c], 32, "%lld", (long long)r->n[c]);
				cells[k++] = nums[c];
			}
		rc = fl_table_add(&t, cells);
	}
	if (nrest && !rc) {
		snprintf(title, sizeof(title), "(%d more rows: --top)", nrest);
		for (int k = 0; k < nl; k++)
			cells[k] = k == nl - 1 ? title : "";
		snprintf(nums[NCLASSES], 32, "%lld", (long long)rest->n[NCLASSES]);
		cells[nl] = nums[NCLASSES];
		for (int c = 0, k = nl + tot; c < NCLASSES; c++)
			if (show[c]) {
				snprintf(nums[c], 32, "%lld", (long long)rest->n[c]);
				cells[k++] = nums[c];
			}
		rc = fl_table_add(&t, cells);
	}
	if (!rc)
		fl_table_print(&t, stdout, 0);
	fl_table_free(&t);
	return rc ? -1 : 0;
}

static void print_json(const struct opts *o, const struct row *rows, int n)
{
	struct fl_json j;

	fl_json_init(&j, stdout);
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "by", o->key->name);
	fl_json_kstr(&j, "class", o->cls >= 0 ? classes[o->cls] : NULL);
	fl_json_key(&j, "rows");
	fl_json_open(&j, '[');
	for (int i = 0; i < n; i++) {
		fl_json_open(&j, '{');
		for (int k = 0; k < o->key->nlabels; k++)
			fl_json_kstr(&j, o->key->titles[k], rows[i].label[k]);
		if (o->key == &site_key)
			fl_json_kstr(&j, "callers_end", rows[i].callers_end && *rows[i].callers_end ? rows[i].callers_end
												  : NULL);
		fl_json_kint(&j, "total", rows[i].n[NCLASSES]);
		for (int c = 0; c < NCLASSES; c++)
			fl_json_kint(&j, classes[c], rows[i].n[c]);
		fl_json_close(&j, '}');
	}
	fl_json_close(&j, ']');
	fl_json_close(&j, '}');
}

static void print_csv(const struct opts *o, const struct row *rows, int n)
{
	for (int k = 0; k < o->key->nlabels; k++)
		fl_csv_str(stdout, o->key->titles[k], !k);
	if (o->key == &site_key)
		fl_csv_str(stdout, "callers_end", 0);
	fl_csv_str(stdout, "total", 0);
	for (int c = 0; c < NCLASSES; c++)
		fl_csv_str(stdout, classes[c], 0);
	putchar('\n');
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < o->key->nlabels; k++)
			fl_csv_str(stdout, rows[i].label[k], !k);
		if (o->key == &site_key)
			fl_csv_str(stdout, rows[i].callers_end ? rows[i].callers_end : "", 0);
		for (int c = 0; c <= NCLASSES; c++)
			fl_csv_int(stdout, rows[i].n[c == 0 ? NCLASSES : c - 1], 0);
		putchar('\n');
	}
}

/*
 * Text of a key whose groups are one process's (half a million regions):
 * the top rows only, and the rest as the key's totals (fault_summary_total)
 * less them.  Not with --class: its totals count only the groups it keeps.
 */
static int rest_from_totals(struct fl_db *d, const struct opts *o, const struct row *rows, int n, struct row *rest,
			    int *nrest)
{
	char sql[2048] = "SELECT sum(groups)";
	size_t len = strlen(sql);
	sqlite3_stmt *st;
	int rc;

	for (int c = 0; c < NCLASSES; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", coalesce(sum(%s), 0)", classes[c]);
	snprintf(sql + len, sizeof(sql) - len, ", coalesce(sum(total), 0) FROM fault_summary_total"
		 " WHERE key = ?2 AND (?1 = 0 OR pid = ?1)");
	if (!(st = fl_db_prepare(d, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, o->pid);
	sqlite3_bind_text(st, 2, o->key->name, -1, SQLITE_STATIC);
	if ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		*nrest = (int)sqlite3_column_int64(st, 0) - n;
		for (int c = 0; c <= NCLASSES; c++) {
			rest->n[c] = sqlite3_column_int64(st, 1 + c);
			for (int i = 0; i < n; i++)
				rest->n[c] -= rows[i].n[c];
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static void add_to(struct row *rest, int *nrest, const struct row *r)
{
	(*nrest)++;
	for (int c = 0; c <= NCLASSES; c++)
		rest->n[c] += r->n[c];
}

/*
 * The rows, the first keep of them in *out and the others summed in *rest
 * (text shows --top rows: a key with half a million groups is not copied).
 * Returns the number in *out, or -1.
 */
static int load(struct fl_db *d, const struct opts *o, int keep, struct row **out, struct row *rest, int *nrest)
{
	bool totals = keep < INT_MAX && o->key->per_process && o->cls < 0;
	bool every_group = keep > FL_SUM_TOP_GROUPS || o->cls >= 0;  /* more than the recording may keep */
	char *sql = fl_summary_ready(d, FL_SUM_FAULTS) || (every_group && fl_summary_whole(d, o->key)) ? NULL
		    : build_sql(o, totals ? keep : -1);
	sqlite3_stmt *st = sql ? fl_db_prepare(d, sql) : NULL;
	struct row *rows = NULL, one;
	int n = 0, rc = -1;

	free(sql);
	*rest = (struct row){ 0 };
	*nrest = 0;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, o->pid);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		if (n >= keep) {
			for (int c = 0; c <= NCLASSES; c++)
				one.n[c] = sqlite3_column_int64(st, o->key->nlabels + c);
			add_to(rest, nrest, &one);
			continue;
		}
		struct row *grown = realloc(rows, (size_t)(n + 1) * sizeof(*rows));
		if (!grown) {
			rc = -1;
			break;
		}
		rows = grown;
		if (row_read(d, o, st, &rows[n++])) {
			rc = -1;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && totals && rest_from_totals(d, o, rows, n, rest, nrest))
		rc = -1;
	if (rc == SQLITE_DONE && !strcmp(o->key->name, "site")) {
		struct row extra;
		struct row *grown = realloc(rows, (size_t)(n + 1) * sizeof(*rows));
		rc = grown && !site_residual(d, o, grown, n, rest, &extra) ? SQLITE_DONE : -1;
		rows = grown ? grown : rows;
		if (rc == SQLITE_DONE && extra.n[NCLASSES] && n < keep)
			rows[n++] = extra;
		else if (rc == SQLITE_DONE && extra.n[NCLASSES])
			add_to(rest, nrest, &extra);
		if (rc == SQLITE_DONE && (!extra.n[NCLASSES] || n >= keep))
			free(extra.label[0]);
	}
	if (rc != SQLITE_DONE) {
		rows_free(rows, n);
		return -1;
	}
	*out = rows;
	return n;
}

int fl_cmd_faults(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS, { "by", required_argument, NULL, 'b' },
		{ "class", required_argument, NULL, 'c' }, { "pid", required_argument, NULL, 'p' },
		{ "top", required_argument, NULL, 't' }, { 0 } };
	struct opts o = { .cli = { .usage = USAGE, .csv_ok = true }, .cls = -1, .top = 20 };
	struct row *rows = NULL, rest;
	struct fl_db d;
	int rc = fl_cli_parse(&o.cli, argc, argv, ":h", options, on_option, &o), n, nrest;

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return fl_cli_usage_error(&o.cli, argc - optind ? "too many arguments" : "no recording given");
	if (!o.key)
		return fl_cli_usage_error(&o.cli, "--by is required");
	if (fl_db_open(&d, argv[optind]))
		return 1;
	n = load(&d, &o, o.cli.json || o.cli.csv ? INT_MAX : o.top, &rows, &rest, &nrest);
	if (n >= 0 && o.cli.json)
		print_json(&o, rows, n);
	else if (n >= 0 && o.cli.csv)
		print_csv(&o, rows, n);
	else if (n >= 0 && print_text(&o, rows, n, &rest, nrest))
		n = -1;
	if (n >= 0)
		rows_free(rows, n);
	fl_db_close(&d);
	return n < 0 ? 1 : 0;
}
