/* SPDX-License-Identifier: MIT */
/* csv.c - RFC 4180 fields for `timeline --format csv` and `export --format csv`. */
#include "csv.h"

#include <inttypes.h>
#include <string.h>

void fl_csv_str(FILE *out, const char *s, int first)
{
	if (!first)
		fputc(',', out);
	if (!s)
		return;
	if (!s[strcspn(s, ",\"\r\n")]) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

void fl_csv_int(FILE *out, int64_t v, int first)
{
	fprintf(out, "%s%" PRId64, first ? "" : ",", v);
}

void fl_csv_col(FILE *out, sqlite3_stmt *st, int i, int first)
{
	const unsigned char *b;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		fl_csv_int(out, sqlite3_column_int64(st, i), first);
		break;
	case SQLITE_FLOAT:
		fprintf(out, "%s%.17g", first ? "" : ",", sqlite3_column_double(st, i));
		break;
	case SQLITE_BLOB:
		if (!first)
			fputc(',', out);
		b = sqlite3_column_blob(st, i);
		for (int k = 0; k < sqlite3_column_bytes(st, i); k++)
			fprintf(out, "%02x", b[k]);
		break;
	case SQLITE_NULL:
		fl_csv_str(out, NULL, first);
		break;
	default:
		fl_csv_str(out, (const char *)sqlite3_column_text(st, i), first);
	}
}
