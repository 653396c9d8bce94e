/* SPDX-License-Identifier: MIT */
/*
 * output.c - human units, the JSON writer and the column table shared by
 * the viewer commands.
 */
#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- human units ------------------------------------------------------- */

const char *fl_out_size(char *buf, size_t n, int64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024 && bytes > -1024) {
		snprintf(buf, n, "%" PRId64 " B", bytes);
		return buf;
	}
	while (u < 4 && (v >= 1024 || v <= -1024)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, "%.1f %s", v, units[u]);
	return buf;
}

const char *fl_out_reltime(char *buf, size_t n, int64_t ns)
{
	const char *dot;
	size_t len;

	int64_t us = ((ns < 0 ? -ns : ns) + 500) / 1000; /* microseconds are plenty for people */

	snprintf(buf, n, "%s%" PRId64 ".%06" PRId64, ns < 0 ? "-" : "", us / 1000000, us % 1000000);
	len = strlen(buf);
	dot = strchr(buf, '.');
	/* keep milliseconds, drop the zeros after them */
	while (dot && len - (size_t)(dot - buf) > 4 && buf[len - 1] == '0')
		buf[--len] = '\0';
	if (len + 1 < n) {
		buf[len] = 's';
		buf[len + 1] = '\0';
	}
	return buf;
}

const char *fl_out_perms(char *buf, size_t n, int64_t prot, int64_t flags)
{
	int type = (int)(flags & 3); /* MAP_SHARED 1, MAP_PRIVATE 2, MAP_SHARED_VALIDATE 3 */

	snprintf(buf, n, "%c%c%c%c", prot & 1 ? 'r' : '-', prot & 2 ? 'w' : '-',
		 prot & 4 ? 'x' : '-', type == 2 ? 'p' : 's');
	return buf;
}

const char *fl_out_signal(char *buf, size_t n, int64_t sig)
{
	const char *abbrev = sig > 0 && sig < 65 ? sigabbrev_np((int)sig) : NULL;

	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else
		snprintf(buf, n, "signal %" PRId64, sig);
	return buf;
}

int fl_out_parse_time(const char *s, int64_t *ns)
{
	static const struct { const char *suffix; double scale; } units[] = {
		{ "", 1e9 }, { "s", 1e9 }, { "ms", 1e6 }, { "us", 1e3 }, { "ns", 1 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !(v >= 0 && v < 9e9))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].suffix)) {
			*ns = (int64_t)(v * units[i].scale + 0.5);
			return 0;
		}
	}
	return -1;
}

void fl_out_append_arg(char *buf, size_t n, const char *arg)
{
	size_t len = strlen(buf);
	bool plain = *arg != '\0' && strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					      "0123456789-_./=:,+@%") == strlen(arg);

	if (len && len + 1 < n)
		buf[len++] = ' ';
	if (plain) {
		snprintf(buf + len, n - len, "%s", arg);
		return;
	}
	/* single quotes, with ' written as '\'' */
	if (len + 1 < n)
		buf[len++] = '\'';
	for (; *arg && len + 5 < n; arg++) {
		if (*arg == '\'') {
			memcpy(buf + len, "'\\''", 4);
			len += 4;
		} else {
			buf[len++] = *arg;
		}
	}
	if (len + 1 < n)
		buf[len++] = '\'';
	buf[len < n ? len : n - 1] = '\0';
}

/* ---- JSON -------------------------------------------------------------- */

void fl_json_init(struct fl_json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

/* Separator and indentation before a value (or a key) in the current container. */
static void json_sep(struct fl_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (j->compact)
		fputs(j->has_items[j->depth] ? "," : "", j->out);
	else
		fprintf(j->out, "%s\n%*s", j->has_items[j->depth] ? "," : "", 2 * j->depth, "");
	j->has_items[j->depth] = true;
}

void fl_json_open(struct fl_json *j, char bracket)
{
	json_sep(j);
	fputc(bracket, j->out);
	if (j->depth + 1 < FL_JSON_MAX_DEPTH)
		j->depth++;
	j->has_items[j->depth] = false;
}

void fl_json_close(struct fl_json *j, char bracket)
{
	bool items = j->has_items[j->depth];

	j->depth--;
	if (items && !j->compact)
		fprintf(j->out, "\n%*s", 2 * j->depth, "");
	fputc(bracket, j->out);
	if (j->depth == 0)
		fputc('\n', j->out);
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
	int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (s[0] >= 0xf5)
		return 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
	    (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0; /* overlong, surrogate, or beyond U+10FFFF */
	return n;
}

static void json_escape(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', out);
	while (*s) {
		int n;

		if (*s == '"' || *s == '\\') {
			fprintf(out, "\\%c", *s++);
		} else if (*s == '\n') {
			fputs("\\n", out), s++;
		} else if (*s == '\t') {
			fputs("\\t", out), s++;
		} else if (*s == '\r') {
			fputs("\\r", out), s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(out, "\\u%04x", *s++);
		} else if (*s < 0x80) {
			fputc(*s++, out);
		} else if ((n = utf8_len(s)) > 0) {
			fwrite(s, 1, (size_t)n, out);
			s += n;
		} else {
			fputs("\\ufffd", out), s++;
		}
	}
	fputc('"', out);
}

void fl_json_key(struct fl_json *j, const char *key)
{
	json_sep(j);
	json_escape(j->out, key);
	fputs(j->compact ? ":" : ": ", j->out);
	j->after_key = true;
}

void fl_json_str(struct fl_json *j, const char *s)
{
	json_sep(j);
	if (s)
		json_escape(j->out, s);
	else
		fputs("null", j->out);
}

void fl_json_int(struct fl_json *j, int64_t v)
{
	json_sep(j);
	fprintf(j->out, "%" PRId64, v);
}

void fl_json_real(struct fl_json *j, double v)
{
	json_sep(j);
	if (v == v && v - v == 0) /* finite, without libm */
		fprintf(j->out, "%.17g", v);
	else
		fputs("null", j->out);
}

void fl_json_bool(struct fl_json *j, bool v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->out);
}

void fl_json_null(struct fl_json *j)
{
	json_sep(j);
	fputs("null", j->out);
}

void fl_json_col(struct fl_json *j, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		fl_json_int(j, sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		fl_json_real(j, sqlite3_column_double(st, i));
		break;
	case SQLITE_TEXT:
		fl_json_str(j, (const char *)sqlite3_column_text(st, i));
		break;
	case SQLITE_BLOB: {
		const unsigned char *p = sqlite3_column_blob(st, i);
		int n = sqlite3_column_bytes(st, i);

		json_sep(j);
		fputc('"', j->out);
		for (int k = 0; k < n; k++)
			fprintf(j->out, "%02x", p[k]);
		fputc('"', j->out);
		break;
	}
	default:
		fl_json_null(j);
	}
}

void fl_json_kstr(struct fl_json *j, const char *key, const char *s)
{
	fl_json_key(j, key);
	fl_json_str(j, s);
}

void fl_json_kint(struct fl_json *j, const char *key, int64_t v)
{
	fl_json_key(j, key);
	fl_json_int(j, v);
}

void fl_json_kcol(struct fl_json *j, const char *key, sqlite3_stmt *st, int i)
{
	fl_json_key(j, key);
	fl_json_col(j, st, i);
}

/* ---- tables ------------------------------------------------------------ */

void fl_table_init(struct fl_table *t, int ncols, unsigned right)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->right = right;
}

static int table_grow(struct fl_table *t)
{
	size_t cap = t->cap ? 2 * t->cap : 16;
	char **cells, **notes;

	if (t->nrows < t->cap)
		return 0;
	cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*cells));
	if (!cells)
		return -ENOMEM;
	t->cells = cells;
	notes = realloc(t->notes, cap * sizeof(*notes));
	if (!notes)
		return -ENOMEM;
	t->notes = notes;
	t->cap = cap;
	return 0;
}

int fl_table_add(struct fl_table *t, const char *const *cells)
{
	char **row;

	if (table_grow(t))
		return -ENOMEM;
	row = t->cells + t->nrows * (size_t)t->ncols;
	for (int c = 0; c < t->ncols; c++) {
		row[c] = strdup(cells && cells[c] ? cells[c] : "");
		if (!row[c]) {
			while (c--)
				free(row[c]);
			return -ENOMEM;
		}
	}
	t->notes[t->nrows++] = NULL;
	return 0;
}

int fl_table_rule(struct fl_table *t)
{
	if (table_grow(t))
		return -ENOMEM;
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * (size_t)t->ncols + c] = NULL;
	t->notes[t->nrows++] = NULL;
	return 0;
}

int fl_table_note(struct fl_table *t, const char *line)
{
	char **note, *joined;

	if (!t->nrows)
		return -EINVAL;
	note = &t->notes[t->nrows - 1];
	if (*note) {
		if (asprintf(&joined, "%s\n%s", *note, line) < 0)
			return -ENOMEM;
	} else if (!(joined = strdup(line))) {
		return -ENOMEM;
	}
	free(*note);
	*note = joined;
	return 0;
}

/* Display width: UTF-8 continuation bytes take no column. */
static int text_width(const char *s)
{
	int w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void fl_table_print(const struct fl_table *t, FILE *out, int indent)
{
	int width[32] = { 0 };
	int ncols = t->ncols < 32 ? t->ncols : 32;

	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < ncols; c++) {
			const char *cell = t->cells[r * (size_t)t->ncols + c];
			int w = cell ? text_width(cell) : 0;

			width[c] = w > width[c] ? w : width[c];
		}
	/* the last column is not padded unless it is right-aligned */
	for (size_t r = 0; r < t->nrows; r++) {
		char *const *row = t->cells + r * (size_t)t->ncols;
		int last = ncols - 1;

		while (last > 0 && row[0] && !*row[last] && !(t->right & (1u << last)))
			last--; /* no trailing spaces before empty cells */
		fprintf(out, "%*s", indent, "");
		for (int c = 0; c <= last; c++) {
			const char *cell = row[0] ? row[c] : NULL;
			int pad = width[c] - (cell ? text_width(cell) : 0);

			if (c)
				fputs("  ", out);
			if (!row[0]) {
				for (int k = 0; k < width[c]; k++)
					fputc('-', out);
			} else if (t->right & (1u << c)) {
				fprintf(out, "%*s%s", pad, "", cell);
			} else {
				fputs(cell, out);
				if (c < last)
					fprintf(out, "%*s", pad, "");
			}
		}
		fputc('\n', out);
		if (t->notes[r])
			fprintf(out, "%s\n", t->notes[r]);
	}
}

void fl_table_free(struct fl_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	for (size_t r = 0; r < t->nrows; r++)
		free(t->notes[r]);
	free(t->cells);
	free(t->notes);
	memset(t, 0, sizeof(*t));
}
