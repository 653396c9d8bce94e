/* SPDX-License-Identifier: MIT */
/*
 * output.h - formatting shared by every viewer command: human units, a
 * small JSON writer, and an aligned-column table.
 */
#ifndef FL_OUTPUT_H
#define FL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

/* "512 B", "4.0 KiB", "1.5 MiB" ... into buf; returns buf. */
const char *fl_out_size(char *buf, size_t n, int64_t bytes);
/* Seconds to the microsecond, at least 3 decimals: "1.500s", "0.000250s". */
const char *fl_out_reltime(char *buf, size_t n, int64_t ns);
/* /proc/PID/maps permissions from PROT_* and MAP_* bits: "rw-p", "r-xs". */
const char *fl_out_perms(char *buf, size_t n, int64_t prot, int64_t flags);
/* "SIGSEGV", or "signal 77" for a number libc has no name for. */
const char *fl_out_signal(char *buf, size_t n, int64_t sig);
/* Parses a time relative to run start: 1.5, 1.5s, 250ms, 100us, 7ns. Returns 0 or -1. */
int fl_out_parse_time(const char *s, int64_t *ns);
/* Appends arg to buf (of size n) shell-quoted when it needs it, space-separated. */
void fl_out_append_arg(char *buf, size_t n, const char *arg);

/* JSON writer: pretty-printed, strings escaped (invalid UTF-8 becomes U+FFFD). */
#define FL_JSON_MAX_DEPTH 32
struct fl_json {
	FILE *out;
	int depth;
	bool after_key;
	bool compact;       /* no newlines or indentation (large exports); set after fl_json_init */
	bool has_items[FL_JSON_MAX_DEPTH];
};

void fl_json_init(struct fl_json *j, FILE *out);
void fl_json_open(struct fl_json *j, char bracket);   /* '{' or '[' */
void fl_json_close(struct fl_json *j, char bracket);  /* '}' or ']'; a newline after the last */
void fl_json_key(struct fl_json *j, const char *key);
void fl_json_str(struct fl_json *j, const char *s);   /* NULL writes null */
void fl_json_int(struct fl_json *j, int64_t v);
void fl_json_real(struct fl_json *j, double v);
void fl_json_bool(struct fl_json *j, bool v);
void fl_json_null(struct fl_json *j);
/* Column i of a stepped statement, typed as SQLite holds it (blob: hex string). */
void fl_json_col(struct fl_json *j, sqlite3_stmt *st, int i);
/* key + value shorthands */
void fl_json_kstr(struct fl_json *j, const char *key, const char *s);
void fl_json_kint(struct fl_json *j, const char *key, int64_t v);
void fl_json_kcol(struct fl_json *j, const char *key, sqlite3_stmt *st, int i);

/* Aligned columns: add rows of strings, then print them padded to the widest cell. */
struct fl_table {
	int ncols;
	unsigned right;       /* bit c: right-align column c */
	size_t nrows, cap;
	char **cells;         /* nrows * ncols; a row whose first cell is NULL is a rule */
	char **notes;         /* per row: a verbatim line printed after it, or NULL */
};

void fl_table_init(struct fl_table *t, int ncols, unsigned right);
/* Adds a row of ncols cells (NULL cells print empty). Returns 0 or -ENOMEM. */
int fl_table_add(struct fl_table *t, const char *const *cells);
/* Adds a rule (dashes the width of each column). */
int fl_table_rule(struct fl_table *t);
/* Attaches a verbatim line printed under the last row (not part of the widths). */
int fl_table_note(struct fl_table *t, const char *line);
void fl_table_print(const struct fl_table *t, FILE *out, int indent);
void fl_table_free(struct fl_table *t);

#endif /* FL_OUTPUT_H */
