/* SPDX-License-Identifier: MIT */
/*
 * Unit test: common/schema.sql names exactly what common/faultline.h lists
 * (FL_KINDS, FL_HOWS, FL_FAULT_CLASSES, FL_CALLER_ENDS): the fault table's
 * class columns in order, and the CHECK lists (OR chains: see schema.sql) of
 * event.kind, vma.how, fault_site.class and fault_site.callers_end.
 * Also that the store really refuses a name outside them.
 */
#include <stdio.h>
#include <string.h>

#include <linux/types.h>
#include <sqlite3.h>

#include "faultline.h"
#include "schema.h"

static int failures;

#define KIND_Q_(c, name, value) "'" #name "',"
#define HOW_Q_(c, name) "'" #name "',"
#define CLASS_Q_(c, name) "'" #name "',"
#define CLASS_NAME_(c, name) #name,
#define END_Q_(c, name) "'" #name "',"

/* s with every space and newline removed (the schema wraps its lists freely). */
static void squeeze(const char *s, char *out, size_t len)
{
	size_t n = 0;
	for (; *s && n + 1 < len; s++)
		if (*s != ' ' && *s != '\n')
			out[n++] = *s;
	out[n] = 0;
}

/*
 * The CREATE TABLE text of table holds "CHECK(column='a'ORcolumn='b'...)"
 * (squeezed), the names being want's ("'a','b',").
 */
static void expect_check(sqlite3 *db, const char *table, const char *column, const char *want)
{
	char sql[8192] = "", expect[4096], q[128];
	size_t n = (size_t)snprintf(expect, sizeof(expect), "CHECK(");
	sqlite3_stmt *st;
	snprintf(q, sizeof(q), "SELECT sql FROM sqlite_master WHERE name = '%s'", table);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		squeeze((const char *)sqlite3_column_text(st, 0), sql, sizeof(sql));
	sqlite3_finalize(st);
	for (const char *name = want, *comma; (comma = strchr(name, ',')) && n < sizeof(expect); name = comma + 1)
		n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%s%s=%.*s", name == want ? "" : "OR", column,
				      (int)(comma - name), name);
	snprintf(expect + n, n < sizeof(expect) ? sizeof(expect) - n : 0, ")");
	if (!strstr(sql, expect)) {
		fprintf(stderr, "FAIL: schema.sql's %s.%s does not list exactly %s\n", table, column, want);
		failures++;
	}
}

static void expect_columns(sqlite3 *db)
{
	static const char *const classes[] = { FL_FAULT_CLASSES(CLASS_NAME_) };
	sqlite3_stmt *st;
	int col = 0, k = 0;
	sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('fault') ORDER BY cid", -1, &st, NULL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (col++ < 3) /* vma_id, proc_id, time_ns */
			continue;
		if (k < FL_F_NCLASS && strcmp(name, classes[k])) {
			fprintf(stderr, "FAIL: fault column %d is %s, FL_FAULT_CLASSES says %s\n", col, name,
				classes[k]);
			failures++;
		}
		k++;
	}
	sqlite3_finalize(st);
	if (k < FL_F_NCLASS) {
		fprintf(stderr, "FAIL: the fault table has %d class columns, FL_FAULT_CLASSES %d\n", k, FL_F_NCLASS);
		failures++;
	}
}

/* The constraint is live: a name outside the list is refused. */
static void expect_refused(sqlite3 *db)
{
	const char *bad = "INSERT INTO vma(proc_id,pid,start,end,prot,flags,kind,created_ns,origin_id,how) "
			  "VALUES(1,1,0,4096,0,0,'anon',0,1,'bogus')";
	if (sqlite3_exec(db, bad, NULL, NULL, NULL) != SQLITE_CONSTRAINT) {
		fprintf(stderr, "FAIL: vma.how 'bogus' was not refused\n");
		failures++;
	}
}

int main(void)
{
	sqlite3 *db;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK || sqlite3_exec(db, fl_schema_sql, NULL, NULL, NULL)) {
		fprintf(stderr, "FAIL: schema.sql does not load: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	expect_columns(db);
	expect_check(db, "event", "kind", FL_KINDS(KIND_Q_) "'unknown',");
	expect_check(db, "vma", "how", FL_HOWS(HOW_Q_));
	expect_check(db, "fault_site", "class", FL_FAULT_CLASSES(CLASS_Q_));
	expect_check(db, "fault_site", "callers_end", FL_CALLER_ENDS(END_Q_));
	expect_refused(db);
	sqlite3_close(db);
	printf("names: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
