/* SPDX-License-Identifier: MIT */
/*
 * db.c - open a recording read-only and refuse, with a clear message, any
 * file that is not one this build can read.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"

/* Files up to this size get a full PRAGMA quick_check; bigger ones a cheap header check only. */
#define QUICK_CHECK_MAX_BYTES (64ll << 20)

int fl_db_error(struct fl_db *d, const char *what)
{
	fprintf(stderr, "faultline: %s: %s (%s)\n", d->path, what, sqlite3_errmsg(d->db));
	return -1;
}

sqlite3_stmt *fl_db_prepare(struct fl_db *d, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fl_db_error(d, "query failed");
		return NULL;
	}
	return st;
}

int fl_db_step(struct fl_db *d, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	return fl_db_error(d, "query failed");
}

/* "file:PATH?mode=ro" with PATH percent-encoded. Caller frees. */
char *fl_db_ro_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *uri = malloc(3 * n + 32), *p = uri;

	if (!uri)
		return NULL;
	p += sprintf(p, path[0] == '/' ? "file://" : "file:");
	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    strchr("/-_.~", *s)) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	strcpy(p, "?mode=ro");
	return uri;
}

static int be32(const unsigned char *p)
{
	return (int)((unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3]);
}

/*
 * Is the file shorter than its header says?  The in-header size is valid
 * only when the change counter (offset 24) equals version-valid-for (92);
 * skipped while a WAL holds pages the main file does not have yet.
 */
static int check_length(struct fl_db *d, off_t size)
{
	unsigned char h[100];
	char wal[4096];
	struct stat st;
	int64_t page_size, pages;
	int fd;

	snprintf(wal, sizeof(wal), "%s-wal", d->path);
	if (!stat(wal, &st) && st.st_size > 0)
		return 0;
	fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (read(fd, h, sizeof(h)) != (ssize_t)sizeof(h) || memcmp(h + 24, h + 92, 4)) {
		close(fd);
		return 0;
	}
	close(fd);
	page_size = (h[16] << 8 | h[17]) == 1 ? 65536 : (h[16] << 8 | h[17]);
	pages = (unsigned)be32(h + 28);
	if (pages * page_size <= (int64_t)size)
		return 0;
	fprintf(stderr, "faultline: %s is truncated or corrupt (file has %lld bytes, its header says %lld)\n",
		d->path, (long long)size, (long long)(pages * page_size));
	return -1;
}

/* PRAGMA quick_check on small files; its first complaint is the message. */
static int check_integrity(struct fl_db *d, off_t size)
{
	sqlite3_stmt *st;
	int rc;

	if (check_length(d, size))
		return -1;
	if (size > QUICK_CHECK_MAX_BYTES)
		return 0;
	if (sqlite3_prepare_v2(d->db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK)
		goto corrupt;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
		sqlite3_finalize(st);
		return 0;
	}
	if (rc == SQLITE_ROW) {
		fprintf(stderr, "faultline: %s is truncated or corrupt (%s)\n", d->path,
			(const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
corrupt:
	fprintf(stderr, "faultline: %s is truncated or corrupt (%s)\n", d->path, sqlite3_errmsg(d->db));
	return -1;
}

/* Reads an integer PRAGMA; a failure here means the file is not an SQLite database we can read. */
static int pragma_int(struct fl_db *d, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if ((sqlite3_errcode(d->db) & 0xff) == SQLITE_CORRUPT)
		fprintf(stderr, "faultline: %s is truncated or corrupt (%s)\n", d->path, sqlite3_errmsg(d->db));
	else
		fprintf(stderr, "faultline: %s: not a faultline recording (%s)\n", d->path, sqlite3_errmsg(d->db));
	return -1;
}

/* application_id, then user_version: is this a recording we can read? */
static int check_identity(struct fl_db *d)
{
	int64_t app_id, version;

	if (pragma_int(d, "PRAGMA application_id", &app_id) || pragma_int(d, "PRAGMA user_version", &version))
		return -1;
	if (app_id != FL_APPLICATION_ID) {
		fprintf(stderr, "faultline: %s: not a faultline recording (application_id %lld, expected %lld)\n",
			d->path, (long long)app_id, (long long)FL_APPLICATION_ID);
		return -1;
	}
	if (version > FL_SCHEMA_VERSION) {
		fprintf(stderr, "faultline: %s was written by a newer faultline (schema %lld, this one reads <= %d); "
			"upgrade faultline\n", d->path, (long long)version, FL_SCHEMA_VERSION);
		return -1;
	}
	if (version < 1) {
		fprintf(stderr, "faultline: %s: unknown schema version %lld (older than any this faultline reads, "
			"1 to %d)\n", d->path, (long long)version, FL_SCHEMA_VERSION);
		return -1;
	}
	/*
	 * Version 6 added fault classes, version 7 the faultline flag of event,
	 * fault and fault_site, version 10 the callers of fault_site; a recording
	 * made before reads them as 0 (callers as NULL: not walked) through
	 * temporary views (the temp schema shadows main.fault).
	 */
	if (version < 7 &&
	    sqlite3_exec(d->db, version < 6 ?
			 "CREATE TEMP VIEW fault AS SELECT *, 0 AS retry, 0 AS uffd, 0 AS hugetlb, "
			 "0 AS pfn, 0 AS spurious, 0 AS faultline FROM main.fault;"
			 "CREATE TEMP VIEW event AS SELECT *, 0 AS faultline FROM main.event" :
			 "CREATE TEMP VIEW fault AS SELECT *, 0 AS faultline FROM main.fault;"
			 "CREATE TEMP VIEW event AS SELECT *, 0 AS faultline FROM main.event",
			 NULL, NULL, NULL) != SQLITE_OK)
		return fl_db_error(d, "cannot read the fault table of schema version < 7");
	/* Version 9 added smaps_sample.held_ns (exit samples): NULL before. */
	if (version >= 2 && version < 9 &&
	    sqlite3_exec(d->db, "CREATE TEMP VIEW smaps_sample AS SELECT *, NULL AS held_ns FROM main.smaps_sample",
			 NULL, NULL, NULL) != SQLITE_OK)
		return fl_db_error(d, "cannot read the smaps_sample table of schema version < 9");
	/* Version 10 added the callers of fault_site: not recorded (NULL) before. */
	if (version < 10 &&
	    sqlite3_exec(d->db, version < 7 ?
			 "CREATE TEMP VIEW fault_site AS SELECT *, 0 AS faultline, NULL AS callers_id, "
			 "NULL AS callers_end FROM main.fault_site" :
			 "CREATE TEMP VIEW fault_site AS SELECT *, NULL AS callers_id, NULL AS callers_end "
			 "FROM main.fault_site", NULL, NULL, NULL) != SQLITE_OK)
		return fl_db_error(d, "cannot read the fault_site table of schema version < 10");
	d->version = version;
	/* belt and braces: the viewer never writes, even if a bug asked it to */
	if (sqlite3_exec(d->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK)
		return fl_db_error(d, "cannot set query_only");
	return 0;
}

/* run.start_ns, run.complete, and the end of the recording. */
static int read_run(struct fl_db *d)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT start_ns, complete, coalesce(end_ns, max(start_ns,"
		" (SELECT coalesce(max(time_ns), 0) FROM event),"
		" (SELECT coalesce(max(max(created_ns, coalesce(destroyed_ns, 0))), 0) FROM vma),"
		" (SELECT coalesce(max(end_ns), 0) FROM process))) FROM run");
	int rc = st ? fl_db_step(d, st) : -1;

	if (rc == SQLITE_ROW) {
		d->start_ns = sqlite3_column_int64(st, 0);
		d->complete = sqlite3_column_int(st, 1) != 0;
		d->end_ns = sqlite3_column_int64(st, 2);
	} else if (rc == SQLITE_DONE) {
		fprintf(stderr, "faultline: %s: the recording has no run row (the recorder stopped before writing it)\n",
			d->path);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int db_open(struct fl_db *d, const char *path, bool writable)
{
	struct stat st;
	char *uri;
	int fd, rc;

	memset(d, 0, sizeof(*d));
	d->path = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "faultline: %s: %s\n", path, fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	uri = fl_db_ro_uri(path);
	if (!uri) {
		fprintf(stderr, "faultline: out of memory\n");
		return -1;
	}
	/* one thread per connection: no mutex around every column read (a tenth of `html` at a million rows) */
	if (writable) /* `__summarize`: the one command that writes, and only its summary tables */
		uri[strlen(uri) - strlen("?mode=ro")] = '\0';
	rc = sqlite3_open_v2(uri, &d->db, (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_URI |
			     SQLITE_OPEN_NOMUTEX, NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		fl_db_error(d, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(d->db, 2000);
	if (check_identity(d) || check_integrity(d, st.st_size) || read_run(d) ||
	    (writable && sqlite3_exec(d->db, "PRAGMA query_only = 0", NULL, NULL, NULL) != SQLITE_OK))
		goto fail;
	return 0;
fail:
	fl_db_close(d);
	return -1;
}

int fl_db_open(struct fl_db *d, const char *path)
{
	return db_open(d, path, false);
}

int fl_db_open_writable(struct fl_db *d, const char *path)
{
	return db_open(d, path, true);
}

int fl_db_wrap(struct fl_db *d, sqlite3 *db, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->db = db;
	d->path = path;
	d->version = FL_SCHEMA_VERSION; /* the recorder's own: this build's schema */
	return read_run(d);
}

void fl_db_release(struct fl_db *d)
{
	sqlite3_stmt **cached[] = { &d->frames, &d->vma_get, &d->vma_mapped, &d->vma_unmapped, &d->unwinder };

	for (size_t i = 0; i < sizeof(cached) / sizeof(cached[0]); i++) {
		sqlite3_finalize(*cached[i]);
		*cached[i] = NULL;
	}
}

void fl_db_close(struct fl_db *d)
{
	fl_db_release(d);
	sqlite3_close(d->db);
	d->db = NULL;
}

int fl_db_argv(struct fl_db *d, const char *json, char ***out)
{
	sqlite3_stmt *st = NULL;
	char **argv = NULL;
	int n = 0, rc;

	*out = NULL;
	argv = calloc(1, sizeof(*argv));
	if (!argv || !json || sqlite3_prepare_v2(d->db, "SELECT value, type FROM json_each(?) ORDER BY key",
					-1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **grown = realloc(argv, (size_t)(n + 2) * sizeof(*argv));

		if (!grown || strcmp((const char *)sqlite3_column_text(st, 1), "text")) {
			argv = grown ? grown : argv;
			goto fail;
		}
		argv = grown;
		argv[n] = strdup((const char *)sqlite3_column_text(st, 0));
		argv[++n] = NULL;
		if (!argv[n - 1])
			goto fail;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	*out = argv;
	return n;
fail:
	sqlite3_finalize(st);
	if (argv)
		argv[n] = NULL;
	fl_db_free_argv(argv);
	*out = NULL;
	return -1;
}

void fl_db_free_argv(char **argv)
{
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}
