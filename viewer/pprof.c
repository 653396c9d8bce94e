/* SPDX-License-Identifier: MIT */
/*
 * pprof.c - `export --format pprof`: the fault samples (profile.h) as a
 * gzipped profile.proto, the format `go tool pprof`, Grafana Pyroscope and
 * Parca read.  The protobuf encoding is written here by hand (varints and
 * length-delimited fields are all profile.proto needs); zlib gzips it.
 *
 * Field numbers are those of github.com/google/pprof proto/profile.proto.
 * Sample types: "faults" (every class), then one per fault class, all
 * counts; then "resident" and "heap", bytes at one moment (profile.h).  Locations carry the function, file and line the recording
 * symbolized, and a mapping per module with its build-id, so pprof never
 * needs the binaries; the pseudo-frames (process, region, creator) are
 * locations with a function name only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "export.h"
#include "profile.h"

/* ---- a growable buffer and the protobuf wire format ------------------------ */

struct pb {
	uint8_t *b;
	size_t n, cap;
	bool oom;
};

static void pb_put(struct pb *p, const void *data, size_t n)
{
	if (p->n + n > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		uint8_t *grown;

		while (cap < p->n + n)
			cap *= 2;
		if (!(grown = realloc(p->b, cap))) {
			p->oom = true;
			return;
		}
		p->b = grown;
		p->cap = cap;
	}
	memcpy(p->b + p->n, data, n);
	p->n += n;
}

static void pb_varint(struct pb *p, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	do {
		b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_put(p, b, n);
}

/* A varint field (wire type 0); zero values are left out, as proto3 does. */
static void pb_uint(struct pb *p, int field, uint64_t v)
{
	if (!v)
		return;
	pb_varint(p, (uint64_t)field << 3);
	pb_varint(p, v);
}

/* A length-delimited field (wire type 2): bytes, a string or an embedded message. */
static void pb_bytes(struct pb *p, int field, const void *data, size_t n)
{
	pb_varint(p, (uint64_t)field << 3 | 2);
	pb_varint(p, n);
	pb_put(p, data, n);
}

static void pb_msg(struct pb *p, int field, struct pb *m)
{
	pb_bytes(p, field, m->b, m->n);
	p->oom |= m->oom;
	m->n = 0;
}

/* ---- the string table ------------------------------------------------------ */

struct strtab {
	struct pb out;          /* the encoded string_table fields */
	char **s;
	size_t n, cap;
	int64_t *hash;          /* open addressing: index + 1, 0 empty */
	size_t nhash;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The index of s in the string table, added on first use ("" is 0). */
static int64_t str_id(struct strtab *t, const char *s)
{
	size_t i;

	if (!s)
		s = "";
	if (2 * (t->n + 1) >= t->nhash) {
		size_t cap = t->nhash ? 2 * t->nhash : 1024;
		int64_t *h = calloc(cap, sizeof(int64_t));

		if (!h) {
			t->out.oom = true;
			return 0;
		}
		for (size_t k = 0; k < t->n; k++) {
			for (i = str_hash(t->s[k]) & (cap - 1); h[i]; i = (i + 1) & (cap - 1))
				;
			h[i] = (int64_t)k + 1;
		}
		free(t->hash);
		t->hash = h;
		t->nhash = cap;
	}
	for (i = str_hash(s) & (t->nhash - 1); t->hash[i]; i = (i + 1) & (t->nhash - 1))
		if (!strcmp(t->s[t->hash[i] - 1], s))
			return t->hash[i] - 1;
	if (t->n == t->cap) {
		char **grown = realloc(t->s, (t->cap = t->cap ? 2 * t->cap : 256) * sizeof(char *));

		if (!grown) {
			t->out.oom = true;
			return 0;
		}
		t->s = grown;
	}
	if (!(t->s[t->n] = strdup(s))) {
		t->out.oom = true;
		return 0;
	}
	t->hash[i] = (int64_t)t->n + 1;
	pb_bytes(&t->out, 6, s, strlen(s));
	return (int64_t)t->n++;
}

static void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->hash);
	free(t->out.b);
}

/* ---- the profile ----------------------------------------------------------- */

static void value_type(struct pb *out, struct pb *m, struct strtab *st, int field, const char *type, const char *unit)
{
	pb_uint(m, 1, (uint64_t)str_id(st, type));
	pb_uint(m, 2, (uint64_t)str_id(st, unit));
	pb_msg(out, field, m);
}

/* One mapping per module: addresses are file offsets (frame.rel_addr), so each spans [0, its largest + 1). */
static void mappings(struct pb *out, struct pb *m, struct strtab *st, const struct fl_profile *p, uint64_t *mapping_of)
{
	uint64_t next = 1;

	for (size_t i = 0; i < p->nnodes; i++) {
		const struct fl_pnode *n = &p->nodes[i];
		uint64_t limit = 0;

		if (!n->module || mapping_of[i])
			continue;
		for (size_t k = i; k < p->nnodes; k++)
			if (p->nodes[k].module && !mapping_of[k] && !strcmp(p->nodes[k].module, n->module)) {
				mapping_of[k] = next;
				if ((uint64_t)p->nodes[k].rel_addr + 1 > limit)
					limit = (uint64_t)p->nodes[k].rel_addr + 1;
			}
		pb_uint(m, 1, next++);
		pb_uint(m, 3, limit);
		pb_uint(m, 5, (uint64_t)str_id(st, n->module));
		pb_uint(m, 6, (uint64_t)str_id(st, n->build_id));
		pb_uint(m, 7, 1); /* has_functions, has_filenames, has_line_numbers: symbolized already */
		pb_uint(m, 8, 1);
		pb_uint(m, 9, 1);
		pb_msg(out, 3, m);
	}
}

/* A function and a location per node (ids = node index + 1). */
static void locations(struct pb *out, struct pb *m, struct pb *line, struct strtab *st, const struct fl_profile *p,
		      const uint64_t *mapping_of)
{
	for (size_t i = 0; i < p->nnodes; i++) {
		const struct fl_pnode *n = &p->nodes[i];

		pb_uint(m, 1, i + 1);
		pb_uint(m, 2, (uint64_t)str_id(st, n->name));
		pb_uint(m, 3, (uint64_t)str_id(st, n->name));
		pb_uint(m, 4, (uint64_t)str_id(st, n->file));
		pb_msg(out, 5, m);
		pb_uint(line, 1, i + 1);
		pb_uint(line, 2, n->file && n->line > 0 ? (uint64_t)n->line : 0);
		pb_uint(m, 1, i + 1);
		pb_uint(m, 2, mapping_of[i]);
		pb_uint(m, 3, n->frame_id ? (uint64_t)n->rel_addr : 0);
		pb_msg(m, 4, line);
		pb_msg(out, 4, m);
	}
}

static void samples(struct pb *out, struct pb *m, struct pb *packed, const struct fl_profile *p)
{
	for (size_t i = 0; i < p->nsamples; i++) {
		const struct fl_psample *s = &p->samples[i];
		int64_t all = 0;

		for (int k = 0; k < s->nframes; k++)
			pb_varint(packed, (uint64_t)s->frames[k] + 1);
		pb_msg(m, 1, packed);
		for (int c = 0; c < FL_NCLASSES; c++)
			all += s->v[c];
		pb_varint(packed, (uint64_t)all);
		for (int c = 0; c < FL_PVALUES; c++) /* the classes, resident bytes, heap bytes */
			pb_varint(packed, (uint64_t)s->v[c]);
		pb_msg(m, 2, packed);
		pb_msg(out, 2, m);
	}
}

static int write_gzip(const char *path, const struct pb *body, const struct strtab *st)
{
	gzFile gz = strcmp(path, "-") ? gzopen(path, "wb") : gzdopen(dup(1), "wb");
	int ok;

	if (!gz)
		return -1;
	ok = gzwrite(gz, body->b, (unsigned)body->n) == (int)body->n &&
	     (!st->out.n || gzwrite(gz, st->out.b, (unsigned)st->out.n) == (int)st->out.n);
	return gzclose(gz) == Z_OK && ok ? 0 : -1;
}

/* A comment saying which moment the resident and heap values are of. */
static int moment_comment(struct strtab *st, struct pb *out, const struct fl_profile *p)
{
	char text[160];

	snprintf(text, sizeof(text), "resident and heap: pid %lld at %.6fs (%s)", (long long)p->at_pid, (double)p->at_ns / 1e9,
		 p->sample_id >= 0 ? "the smaps sample faultline why explains" : "its RSS peak; no smaps sample");
	pb_uint(out, 13, (uint64_t)str_id(st, text));
	return 0;
}

int fl_export_pprof(struct fl_db *d, const struct fl_export *x)
{
	struct fl_profile p;
	struct strtab st = { 0 };
	struct pb out = { 0 }, m = { 0 }, sub = { 0 };
	uint64_t *mapping_of;
	int rc = -1;

	if (fl_profile_load(d, x->pid, &p))
		return 1;
	str_id(&st, "");
	value_type(&out, &m, &st, 1, "faults", "count");
	for (int c = 0; c < FL_NCLASSES; c++)
		value_type(&out, &m, &st, 1, fl_class_names[c], "count");
	value_type(&out, &m, &st, 1, "resident", "bytes");
	value_type(&out, &m, &st, 1, "heap", "bytes");
	if ((mapping_of = calloc(p.nnodes + 1, sizeof(uint64_t)))) {
		samples(&out, &m, &sub, &p);
		mappings(&out, &m, &st, &p, mapping_of);
		locations(&out, &m, &sub, &st, &p, mapping_of);
		pb_uint(&out, 9, (uint64_t)x->start_unix * 1000000000u);
		pb_uint(&out, 10, (uint64_t)(d->end_ns - d->start_ns));
		value_type(&out, &m, &st, 11, "faults", "count");
		pb_uint(&out, 12, 1);
		pb_uint(&out, 13, (uint64_t)str_id(&st, "faultline: page faults by the stack that created the memory,"
						     " the region, and the faulting instruction"));
		if (p.at_ns >= 0 && moment_comment(&st, &out, &p))
			out.oom = true;
		pb_uint(&out, 14, (uint64_t)str_id(&st, x->weight == FL_W_RESIDENT ? "resident" : x->weight == FL_W_HEAP ? "heap"
						     : x->class_idx >= 0 ? fl_class_names[x->class_idx] : "faults"));
		/* string_table (field 6) may follow the fields that index it: protobuf fields are unordered */
		rc = out.oom || m.oom || sub.oom || st.out.oom ? -1 : write_gzip(x->out, &out, &st);
	}
	if (rc)
		fprintf(stderr, "faultline: %s: cannot write the profile\n", x->out);
	free(mapping_of);
	free(out.b);
	free(m.b);
	free(sub.b);
	strtab_free(&st);
	fl_profile_free(&p);
	return rc ? 1 : 0;
}
