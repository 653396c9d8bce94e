/* SPDX-License-Identifier: MIT */
/* csv.h - RFC 4180 fields: quoted when they hold a comma, a quote or a line break. */
#ifndef FL_CSV_H
#define FL_CSV_H

#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

/* Writes s as one field (NULL: empty), preceded by a comma unless first. */
void fl_csv_str(FILE *out, const char *s, int first);
void fl_csv_int(FILE *out, int64_t v, int first);
/* Column i of a stepped statement as SQLite holds it (blob: hex). */
void fl_csv_col(FILE *out, sqlite3_stmt *st, int i, int first);

#endif /* FL_CSV_H */
