/* SPDX-License-Identifier: MIT */
/* frames.c - loading and printing recorded call stacks. */
#include "frames.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

/* A frame from a row of: idx, id, rel_addr, func_off, line, module, build_id, function, file. */
static void fill_frame(struct fl_frame *f, sqlite3_stmt *st)
{
	f->idx = sqlite3_column_int64(st, 0);
	f->frame_id = sqlite3_column_int64(st, 1);
	f->rel_addr = sqlite3_column_int64(st, 2);
	f->has_func_off = sqlite3_column_type(st, 3) != SQLITE_NULL;
	f->func_off = sqlite3_column_int64(st, 3);
	f->has_line = sqlite3_column_type(st, 4) != SQLITE_NULL;
	f->line = sqlite3_column_int64(st, 4);
	f->module = dup_col(st, 5);
	f->build_id = dup_col(st, 6);
	f->function = dup_col(st, 7);
	f->file = dup_col(st, 8);
}

int fl_frame_load(struct fl_db *d, int64_t frame_id, struct fl_frame **out)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT 0, id, rel_addr, func_off, line, module, build_id,"
					    " function, file FROM frame WHERE id = ?");
	int rc;

	*out = NULL;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, frame_id);
	rc = fl_db_step(d, st);
	if (rc == SQLITE_ROW && (*out = calloc(1, sizeof(**out))))
		fill_frame(*out, st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? (*out ? 1 : -1) : rc == SQLITE_DONE ? 0 : -1;
}

int fl_stack_load(struct fl_db *d, int64_t stack_id, int max, struct fl_frame **out)
{
	struct fl_frame *frames = NULL;
	int n = 0, rc;

	*out = NULL;
	if (!d->frames && !(d->frames = fl_db_prepare(d,
			"SELECT sf.idx, f.id, f.rel_addr, f.func_off, f.line, f.module, f.build_id,"
			" f.function, f.file FROM stack_frame sf JOIN frame f ON f.id = sf.frame_id"
			" WHERE sf.stack_id = ?1 ORDER BY sf.idx LIMIT ?2")))
		return -1;
	sqlite3_reset(d->frames);
	sqlite3_bind_int64(d->frames, 1, stack_id);
	sqlite3_bind_int(d->frames, 2, max > 0 ? max : -1);
	while ((rc = fl_db_step(d, d->frames)) == SQLITE_ROW) {
		struct fl_frame *grown = realloc(frames, (size_t)(n + 1) * sizeof(*frames)), *f;

		if (!grown) {
			rc = -1;
			break;
		}
		frames = grown;
		f = &frames[n++];
		fill_frame(f, d->frames);
	}
	sqlite3_reset(d->frames);
	if (rc < 0) {
		fl_stack_free(frames, n);
		return -1;
	}
	*out = frames;
	return n;
}

void fl_stack_free(struct fl_frame *frames, int n)
{
	for (int i = 0; i < n; i++) {
		free(frames[i].module);
		free(frames[i].build_id);
		free(frames[i].function);
		free(frames[i].file);
	}
	free(frames);
}

int fl_stack_exists(struct fl_db *d, int64_t stack_id)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT 1 FROM stack WHERE id = ?");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, stack_id);
	rc = fl_db_step(d, st);
	sqlite3_finalize(st);
	return rc < 0 ? -1 : rc == SQLITE_ROW;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* "libc.so.6+0x2a1ca", or the bare address when the frame has no module. */
static const char *module_offset(const struct fl_frame *f, char *buf, size_t n)
{
	if (f->module)
		snprintf(buf, n, "%s+0x%" PRIx64, base_name(f->module), (uint64_t)f->rel_addr);
	else
		snprintf(buf, n, "0x%" PRIx64, (uint64_t)f->rel_addr);
	return buf;
}

const char *fl_frame_short(const struct fl_frame *f, char *buf, size_t n)
{
	char where[512];

	if (f->function && f->file)
		snprintf(buf, n, "%s (%s:%" PRId64 ")", f->function, base_name(f->file), f->line);
	else if (f->function)
		snprintf(buf, n, "%s (%s)", f->function, module_offset(f, where, sizeof(where)));
	else
		module_offset(f, buf, n);
	return buf;
}

const char *fl_frame_function(const struct fl_frame *f, char *buf, size_t n)
{
	if (!f->function)
		snprintf(buf, n, "??");
	else if (f->has_func_off)
		snprintf(buf, n, "%s+0x%" PRIx64, f->function, (uint64_t)f->func_off);
	else
		snprintf(buf, n, "%s", f->function);
	return buf;
}

void fl_frame_json(struct fl_json *j, const struct fl_frame *f)
{
	char text[1024];

	fl_json_open(j, '{');
	fl_json_kint(j, "idx", f->idx);
	fl_json_kint(j, "frame_id", f->frame_id);
	fl_json_kstr(j, "function", f->function);
	fl_json_key(j, "func_off");
	f->has_func_off ? fl_json_int(j, f->func_off) : fl_json_null(j);
	fl_json_kstr(j, "file", f->file);
	fl_json_key(j, "line");
	f->has_line ? fl_json_int(j, f->line) : fl_json_null(j);
	fl_json_kstr(j, "module", f->module);
	fl_json_kint(j, "rel_addr", f->rel_addr);
	fl_json_kstr(j, "build_id", f->build_id);
	fl_json_kstr(j, "text", fl_frame_short(f, text, sizeof(text)));
	fl_json_close(j, '}');
}

/* The module's file name ("libc.so.6"), or what stands for it. */
static const char *module_name(const struct fl_frame *f)
{
	const char *slash = f->module ? strrchr(f->module, '/') : NULL;

	return slash ? slash + 1 : f->module ? f->module : "code with no file";
}

/*
 * Why a chain ends after last (the last caller, else the site; NULL:
 * unknown), or NULL when nothing need be said; chained: there are callers.
 */
static const char *end_reason(const char *end, const struct fl_frame *last, bool chained, char *buf, size_t n)
{
	if (!*end)
		return "not recorded";
	if (!strcmp(end, "no_frame_pointer") && last)
		return snprintf(buf, n, "no frame pointer in %s", module_name(last)), buf;
	if (!strcmp(end, "no_unwind_info") && last)
		return snprintf(buf, n, "no unwind info for %s", module_name(last)), buf;
	if (!strcmp(end, "not_code")) /* none at all: a fault the kernel took for no user code (exec's) */
		return chained ? "the next return address is in no code" : "no user code called it";
	return NULL;
}

char *fl_callers_label(struct fl_db *d, int64_t site_frame, int64_t callers_id, const char *end, int max)
{
	char buf[2400] = "", one[512], cut[600];
	struct fl_frame *f = NULL, *site = NULL;
	int all = fl_stack_load(d, callers_id, 0, &f), n = max && all > max ? max : all, ns = 0;
	size_t len = 0;
	const char *why;

	if (all < 0)
		return NULL;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? " < " : "",
					fl_frame_short(&f[i], one, sizeof(one)));
	if (!all && (ns = fl_frame_load(d, site_frame, &site)) < 0) {
		fl_stack_free(f, all);
		return NULL;
	}
	/* the frame whose caller is not known: the last caller, else the site itself */
	why = end_reason(end, all ? &f[all - 1] : ns ? site : NULL, all > 0, cut, sizeof(cut));
	if (n < all || !strcmp(end, "depth"))
		snprintf(buf + len, sizeof(buf) - len, " < ...");
	else if (why && n)
		snprintf(buf + len, sizeof(buf) - len, " < ? (%s)", why);
	else if (why)
		snprintf(buf, sizeof(buf), *end ? "unavailable (%s)" : "%s", why);
	fl_stack_free(f, all);
	fl_stack_free(site, ns);
	return strdup(buf);
}
