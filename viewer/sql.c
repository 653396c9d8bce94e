/* SPDX-License-Identifier: MIT */
/*
 * sql.c - `faultline sql FILE 'SELECT ...'`: one read-only query over a
 * recording, as aligned columns or a JSON array of objects.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "output.h"
#include "viewer.h"

#define USAGE "sql FILE 'SELECT ...' [--format json]"

/*
 * The connection is read-only and query_only; this also refuses what those
 * leave open: attaching other files, and turning query_only back off.
 */
static int authorize(void *ctx, int action, const char *a, const char *b, const char *c, const char *d)
{
	(void)ctx, (void)b, (void)c, (void)d;
	if (action == SQLITE_ATTACH || action == SQLITE_DETACH)
		return SQLITE_DENY;
	if (action == SQLITE_PRAGMA && a && (!strcasecmp(a, "query_only") || !strcasecmp(a, "writable_schema")))
		return SQLITE_DENY;
	return SQLITE_OK;
}

static int rows_json(struct fl_db *d, sqlite3_stmt *st)
{
	struct fl_json j;
	int rc;

	fl_json_init(&j, stdout);
	fl_json_open(&j, '[');
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		fl_json_open(&j, '{');
		for (int i = 0; i < sqlite3_column_count(st); i++)
			fl_json_kcol(&j, sqlite3_column_name(st, i), st, i);
		fl_json_close(&j, '}');
	}
	if (rc == SQLITE_DONE)
		fl_json_close(&j, ']');
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A header, a rule, and the rows; columns holding only numbers are right-aligned. */
static int rows_text(struct fl_db *d, sqlite3_stmt *st)
{
	int ncols = sqlite3_column_count(st), rc;
	const char **cells = calloc((size_t)ncols + 1, sizeof(*cells));
	unsigned numeric = ~0u;
	struct fl_table t;

	if (!cells)
		return -1;
	fl_table_init(&t, ncols, 0);
	for (int i = 0; i < ncols; i++)
		cells[i] = sqlite3_column_name(st, i);
	fl_table_add(&t, cells);
	fl_table_rule(&t);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		for (int i = 0; i < ncols; i++) {
			int type = sqlite3_column_type(st, i);

			if (type == SQLITE_TEXT || type == SQLITE_BLOB)
				numeric &= ~(1u << (i & 31));
			cells[i] = type == SQLITE_NULL ? "NULL" : (const char *)sqlite3_column_text(st, i);
		}
		if (fl_table_add(&t, cells)) {
			rc = -1;
			break;
		}
	}
	t.right = ncols <= 32 ? numeric : 0;
	if (rc == SQLITE_DONE)
		fl_table_print(&t, stdout, 0);
	fl_table_free(&t);
	free(cells);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int query(struct fl_db *d, const char *sql, bool json)
{
	sqlite3_stmt *st = NULL;
	const char *tail;
	int rc;

	sqlite3_set_authorizer(d->db, authorize, NULL);
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, &tail) != SQLITE_OK) {
		fprintf(stderr, "faultline: %s: SQL error: %s%s\n", d->path, sqlite3_errmsg(d->db),
			sqlite3_errcode(d->db) == SQLITE_AUTH ? " (sql is read-only: no ATTACH, no query_only change)" : "");
		return -1;
	}
	while (*tail && (isspace((unsigned char)*tail) || *tail == ';'))
		tail++;
	if (!st || *tail) {
		fprintf(stderr, "faultline: %s: %s\n", d->path,
			st ? "one statement at a time, please" : "no SQL statement given");
		sqlite3_finalize(st);
		return -1;
	}
	if (!sqlite3_stmt_readonly(st)) {
		fprintf(stderr, "faultline: %s: sql is read-only; this statement would change the recording\n",
			d->path);
		sqlite3_finalize(st);
		return -1;
	}
	rc = json ? rows_json(d, st) : rows_text(d, st);
	sqlite3_finalize(st);
	return rc;
}

/*
 * A query may start with an SQL comment ("-- why\nSELECT ..."), which
 * getopt would take for an option.  No option holds white space, so an
 * argument starting with '-' that does is a query: it moves behind a "--",
 * where getopt leaves it alone ("sql FILE -- QUERY" works as well, and is
 * then left as given).
 */
static char **queries_last(int *argcp, char **argv)
{
	int argc = *argcp;
	char **out = calloc((size_t)argc + 2, sizeof(*out));
	int n = 0;

	if (!out)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < argc; i++) {
			bool query = i > 0 && argv[i][0] == '-' && argv[i][strcspn(argv[i], " \t\n\r")];
			if (query == (pass == 1))
				out[n++] = argv[i];
		}
		if (pass == 0)
			out[n++] = "--";
	}
	*argcp = n;
	return out;
}

int fl_cmd_sql(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS, { 0 } };
	struct fl_cli cli = { .usage = USAGE };
	bool has_query_option = false;
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		has_query_option |= argv[i][0] == '-' && argv[i][strcspn(argv[i], " \t\n\r")];
	char **args = has_query_option ? queries_last(&argc, argv) : argv;
	int rc;
	struct fl_db d;

	if (!args)
		return 1;
	argv = args;
	rc = fl_cli_parse(&cli, argc, argv, ":h", options, NULL, NULL);
	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return fl_cli_usage_error(&cli, argc - optind > 2 ? "too many arguments (quote the query)"
					  : argc - optind == 0 ? "no recording given" : "no query given");
	if (fl_db_open(&d, argv[optind]))
		return 1;
	rc = query(&d, argv[optind + 1], cli.json);
	fl_db_close(&d);
	return rc ? 1 : 0;
}
