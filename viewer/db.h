/* SPDX-License-Identifier: MIT */
/*
 * db.h - opening a recording read-only, and the statement helpers every
 * viewer command uses.  Every helper prints its own "faultline: ..." error.
 */
#ifndef FL_DB_H
#define FL_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

struct fl_db {
	sqlite3 *db;
	const char *path;   /* as the user gave it, for messages */
	int64_t start_ns;   /* run.start_ns: the origin of relative times */
	int64_t end_ns;     /* run.end_ns, or the latest time recorded if NULL */
	bool complete;      /* run.complete */
	int64_t version;    /* PRAGMA user_version: the schema it was written with */
	/* statements a loop over processes or regions runs again and again, prepared once per connection */
	sqlite3_stmt *frames; /* stack.c */
	sqlite3_stmt *vma_get, *vma_mapped, *vma_unmapped; /* rows.c */
	sqlite3_stmt *unwinder; /* measure.c */
};

/*
 * Opens path read-only and checks it is a faultline recording this build
 * can read (application_id, user_version, not truncated).  Returns 0, or -1
 * after printing why not.
 */
int fl_db_open(struct fl_db *d, const char *path);
void fl_db_close(struct fl_db *d);
/* The same, writable (`faultline __summarize` adds the summaries to a recording). */
int fl_db_open_writable(struct fl_db *d, const char *path);
/*
 * d over a connection the caller owns (the recorder's, at close): reads the
 * run row.  Returns 0 or -1; release with fl_db_release, not fl_db_close.
 */
int fl_db_wrap(struct fl_db *d, sqlite3 *db, const char *path);
/* Finalizes the statements d cached, leaving the connection open. */
void fl_db_release(struct fl_db *d);

/* The read-only URI of the file at path (%-escaped), to free; NULL without memory. */
char *fl_db_ro_uri(const char *path);

/* Prepares sql; NULL after printing the error. */
sqlite3_stmt *fl_db_prepare(struct fl_db *d, const char *sql);
/* Steps st: SQLITE_ROW, SQLITE_DONE, or -1 after printing the error. */
int fl_db_step(struct fl_db *d, sqlite3_stmt *st);
/* Prints "faultline: FILE: what (sqlite message)" and returns -1. */
int fl_db_error(struct fl_db *d, const char *what);

/*
 * The strings of a JSON array of strings (run.argv, process.argv), via
 * SQLite's json_each.  *out is a NULL-terminated array to free with
 * fl_db_free_argv.  Returns the count, or -1 when json is not such an array.
 */
int fl_db_argv(struct fl_db *d, const char *json, char ***out);
void fl_db_free_argv(char **argv);

#endif /* FL_DB_H */
