/* SPDX-License-Identifier: MIT */
/*
 * limit.h - the limits `faultline check` enforces: one check from the
 * command line, any number from a limits file (INI syntax, parsed by inih;
 * docs/check.md), and the tolerances of a baseline comparison.
 */
#ifndef FL_LIMIT_H
#define FL_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "measure.h"

enum fl_scope { FL_SCOPE_TOTAL, FL_SCOPE_PROCESS };

/* One check: a selector, a scope and a maximum per metric. */
struct fl_check {
	char *name;                  /* the file's [section], or "command line" */
	struct fl_selector sel;
	enum fl_scope scope;
	bool has[FL_NMETRICS];
	int64_t max[FL_NMETRICS];
	int line;                    /* of its first key in the file, 0 on the command line */
};

struct fl_limits {
	struct fl_check *checks;
	int n;
	bool tol_set[FL_NMETRICS];   /* given by --tolerance */
	double tol[FL_NMETRICS];     /* a fraction: 5% is 0.05 */
};

/* Adds an empty check named name; returns it, or NULL without memory. */
struct fl_check *fl_limits_add(struct fl_limits *l, const char *name, int line);
/*
 * Sets key (max-rss, max-minor, max-major, max-cow, max-mappings, per, kind,
 * path, function, exe) of c to value.  Returns 0, or -1 with a message for
 * the user in err.
 */
int fl_check_set(struct fl_check *c, const char *key, const char *value, char *err, size_t n);
/* Checks that c makes sense as a whole (a limit at all; no RSS per region). 0 or -1 with err. */
int fl_check_validate(const struct fl_check *c, char *err, size_t n);
/*
 * Reads a limits file into l.  Returns 0, or -1 with "FILE:LINE: what" (or
 * "FILE: why" when it cannot be read) in err.
 */
int fl_limits_read(struct fl_limits *l, const char *path, char *err, size_t n);
/* Parses a --tolerance value: "5%" for every metric, or "cow=0%,rss=10%".  0 or -1 with err. */
int fl_limits_tolerance(struct fl_limits *l, const char *spec, char *err, size_t n);
void fl_limits_free(struct fl_limits *l);

/* "512MiB", "1.5 GiB", "4096", "2GB" -> bytes.  0 or -1 with err. */
int fl_parse_size(const char *s, int64_t *out, char *err, size_t n);
/* A non-negative integer.  0 or -1 with err. */
int fl_parse_count(const char *s, int64_t *out, char *err, size_t n);

#endif /* FL_LIMIT_H */
