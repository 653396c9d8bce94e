/* SPDX-License-Identifier: MIT */
/*
 * limit.c - limits from the command line and from a limits file.
 *
 * The file is INI, read by inih (Debian's libinih, the parser of
 * systemd-style and git-style configs): one [section] per check, "key =
 * value" lines, "#" or ";" comments at the start of a line.  inih reports
 * the first line it could not parse; the keys and values are checked here,
 * and the line of each is known because the reader below counts the lines
 * it hands to inih.
 */
#include "limit.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[] = { "anon", "heap", "stack", "file", "shm", "vdso", "vvar", "vsyscall",
				     "faultline", "other" };

struct fl_check *fl_limits_add(struct fl_limits *l, const char *name, int line)
{
	struct fl_check *grown = realloc(l->checks, (size_t)(l->n + 1) * sizeof(*grown)), *c;

	if (!grown)
		return NULL;
	l->checks = grown;
	c = &l->checks[l->n];
	*c = (struct fl_check){ .name = strdup(name), .line = line };
	if (!c->name)
		return NULL;
	l->n++;
	return c;
}

int fl_parse_count(const char *s, int64_t *out, char *err, size_t n)
{
	char *end;
	long long v;

	errno = 0;
	while (*s == ' ')
		s++;
	if (*s == '-') {
		snprintf(err, n, "'%s' is negative: a limit is a count of 0 or more", s);
		return -1;
	}
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno) {
		snprintf(err, n, "'%s' is not a count (a whole number like 1000)", s);
		return -1;
	}
	*out = v;
	return 0;
}

int fl_parse_size(const char *s, int64_t *out, char *err, size_t n)
{
	static const struct { const char *unit; double mult; } units[] = {
		{ "", 1 }, { "B", 1 }, { "K", 1024.0 }, { "KiB", 1024.0 }, { "M", 1048576.0 }, { "MiB", 1048576.0 },
		{ "G", 1073741824.0 }, { "GiB", 1073741824.0 }, { "T", 1099511627776.0 },
		{ "TiB", 1099511627776.0 }, { "kB", 1e3 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 }, { "TB", 1e12 },
	};
	char *end;
	double v;

	errno = 0;
	while (*s == ' ')
		s++;
	if (*s == '-') {
		snprintf(err, n, "'%s' is negative: a size is 0 or more bytes", s);
		return -1;
	}
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v)) {
		snprintf(err, n, "'%s' is not a size (like 512MiB, 1.5GiB or 4096)", s);
		return -1;
	}
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit))
			continue;
		if (v * units[i].mult >= 9.2e18) {
			snprintf(err, n, "'%s' is too large", s);
			return -1;
		}
		*out = (int64_t)(v * units[i].mult);
		return 0;
	}
	snprintf(err, n, "'%s': unknown unit '%s' (B, KiB, MiB, GiB, TiB; KB, MB, GB, TB are powers of 1000)",
		 s, end);
	return -1;
}

static int set_str(char **field, const char *value, const char *key, char *err, size_t n)
{
	if (!*value) {
		snprintf(err, n, "%s wants a value", key);
		return -1;
	}
	free(*field);
	if (!(*field = strdup(value))) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	return 0;
}

static int set_kind(struct fl_check *c, const char *value, char *err, size_t n)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(value, kinds[i]))
			return set_str(&c->sel.kind, value, "kind", err, n);
	snprintf(err, n, "kind: unknown region kind '%s' (anon, heap, stack, file, shm, vdso, vvar, vsyscall, "
		 "faultline, other)", value);
	return -1;
}

int fl_check_set(struct fl_check *c, const char *key, const char *value, char *err, size_t n)
{
	char what[256];
	int m;

	if (!strncmp(key, "max-", 4) && (m = fl_metric_parse(key + 4)) >= 0 && m != FL_M_calls) {
		int rc = m == FL_M_rss ? fl_parse_size(value, &c->max[m], what, sizeof(what))
				       : fl_parse_count(value, &c->max[m], what, sizeof(what));

		if (rc) {
			snprintf(err, n, "%s: %s", key, what);
			return -1;
		}
		c->has[m] = true;
		return 0;
	}
	if (!strcmp(key, "per")) {
		if (!strcmp(value, "process") || !strcmp(value, "total")) {
			c->scope = !strcmp(value, "process") ? FL_SCOPE_PROCESS : FL_SCOPE_TOTAL;
			return 0;
		}
		snprintf(err, n, "per: '%s' is neither 'process' nor 'total'", value);
		return -1;
	}
	if (!strcmp(key, "kind"))
		return set_kind(c, value, err, n);
	if (!strcmp(key, "path"))
		return set_str(&c->sel.path, value, key, err, n);
	if (!strcmp(key, "function"))
		return set_str(&c->sel.function, value, key, err, n);
	if (!strcmp(key, "exe"))
		return set_str(&c->sel.exe, value, key, err, n);
	snprintf(err, n, "unknown key '%s' (max-rss, max-minor, max-major, max-cow, max-mappings, per, kind, path, "
		 "function, exe)", key);
	return -1;
}

int fl_check_validate(const struct fl_check *c, char *err, size_t n)
{
	bool any = false;

	for (int m = 0; m < FL_NMETRICS; m++)
		any |= c->has[m];
	if (!any) {
		snprintf(err, n, "check '%s' sets no limit (max-rss, max-minor, max-major, max-cow or max-mappings)",
			 c->name);
		return -1;
	}
	if (c->has[FL_M_rss] && fl_sel_region_part(&c->sel)) {
		snprintf(err, n, "check '%s': max-rss cannot select regions (kind, path, function): resident memory "
			 "is recorded per process; select processes with exe", c->name);
		return -1;
	}
	return 0;
}

/* ---- the limits file -------------------------------------------------------- */

struct file_parse {
	struct fl_limits *l;
	FILE *f;
	int line;          /* of the line inih last read */
	int err_line;      /* of the first error of ours */
	char err[512];
	struct fl_check *cur;
};

/* inih's reader: fgets, counting lines so the handler knows where it is. */
static char *read_line(char *str, int num, void *stream)
{
	struct file_parse *p = stream;
	char *s = fgets(str, num, p->f);

	if (s)
		p->line++;
	return s;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct file_parse *p = user;
	char what[400];

	if (p->err_line)
		return 1;  /* report the first error only */
	if (!*section) {
		snprintf(p->err, sizeof(p->err), "'%s' is outside a [check] section", name);
		goto fail;
	}
	if (!p->cur || strcmp(p->cur->name, section)) {
		for (int i = 0; i < p->l->n; i++)
			if (!strcmp(p->l->checks[i].name, section) && p->l->checks[i].line) {
				snprintf(p->err, sizeof(p->err), "section [%s] appears twice (also at line %d)",
					 section, p->l->checks[i].line);
				goto fail;
			}
		if (!(p->cur = fl_limits_add(p->l, section, p->line))) {
			snprintf(p->err, sizeof(p->err), "out of memory");
			goto fail;
		}
	}
	if (!fl_check_set(p->cur, name, value, what, sizeof(what)))
		return 1;
	snprintf(p->err, sizeof(p->err), "%s", what);
fail:
	p->err_line = p->line;
	return 0;
}

int fl_limits_read(struct fl_limits *l, const char *path, char *err, size_t n)
{
	struct file_parse p = { .l = l };
	int first = l->n, rc;

	if (!(p.f = fopen(path, "r"))) {
		snprintf(err, n, "%s: cannot read the limits file: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	fclose(p.f);
	if (rc == -2) {
		snprintf(err, n, "%s: out of memory", path);
		return -1;
	}
	if (rc > 0 && rc == p.err_line) {
		snprintf(err, n, "%s:%d: %s", path, rc, p.err);
		return -1;
	}
	if (rc > 0) {
		snprintf(err, n, "%s:%d: not a '[check name]' header nor a 'key = value' line", path, rc);
		return -1;
	}
	if (l->n == first) {
		snprintf(err, n, "%s: no checks in the file (a check is a [name] section with max-... keys)", path);
		return -1;
	}
	for (int i = first; i < l->n; i++) {
		char what[400];

		if (fl_check_validate(&l->checks[i], what, sizeof(what))) {
			snprintf(err, n, "%s:%d: %s", path, l->checks[i].line, what);
			return -1;
		}
	}
	return 0;
}

/* ---- tolerances ------------------------------------------------------------- */

static int parse_percent(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || strcmp(end, "%") || v < 0 || !isfinite(v))
		return -1;
	*out = v / 100;
	return 0;
}

int fl_limits_tolerance(struct fl_limits *l, const char *spec, char *err, size_t n)
{
	char *copy = strdup(spec), *save = NULL;
	int rc = 0;

	if (!copy)
		return -1;
	for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		double v;
		int m = -1;

		if (eq) {
			*eq = '\0';
			if ((m = fl_metric_parse(item)) < 0 || m == FL_M_calls) {
				snprintf(err, n, "--tolerance: unknown metric '%s' (rss, minor, major, cow, mappings)", item);
				rc = -1;
				break;
			}
		}
		if (parse_percent(eq ? eq + 1 : item, &v)) {
			snprintf(err, n, "--tolerance: '%s' is not a percentage of 0 or more (like 5%%)", eq ? eq + 1 : item);
			rc = -1;
			break;
		}
		/* major faults depend on the page cache: only a tolerance named for them compares them */
		for (int k = 0; k < FL_NMETRICS; k++)
			if (k == m || (m < 0 && k != FL_M_major)) {
				l->tol[k] = v;
				l->tol_set[k] = true;
			}
	}
	free(copy);
	return rc;
}

void fl_limits_free(struct fl_limits *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->checks[i].name);
		free(l->checks[i].sel.kind);
		free(l->checks[i].sel.path);
		free(l->checks[i].sel.function);
		free(l->checks[i].sel.exe);
	}
	free(l->checks);
	*l = (struct fl_limits){ 0 };
}
