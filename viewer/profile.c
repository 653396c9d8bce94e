/* SPDX-License-Identifier: MIT */
/* profile.c - a recording's faults as weighted stacks (see profile.h). */
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

struct loader {
	struct fl_db *d;
	struct fl_profile *p;
	int *frame_node;        /* frame.id -> node */
	int64_t max_frame;
	int **stacks;           /* stack.id -> node indexes, innermost first, -1 terminated */
	int64_t max_stack;
	int *proc_node;         /* process.id -> its pseudo-frame, -1 if not selected */
	int64_t max_proc;
	int *names;             /* hash of pseudo-frame names -> node, -1 empty */
	size_t nnames;
};

static char *dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

static int add_node(struct fl_profile *p, const struct fl_pnode *n)
{
	if (p->nnodes == p->capnodes) {
		struct fl_pnode *grown = realloc(p->nodes, (p->capnodes = p->capnodes ? 2 * p->capnodes : 256) * sizeof(*grown));

		if (!grown)
			return -1;
		p->nodes = grown;
	}
	p->nodes[p->nnodes] = *n;
	return (int)p->nnodes++;
}

static size_t hash_name(const char *s)
{
	size_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The pseudo-frame called name, made on first use. */
static int pseudo(struct loader *l, const char *name)
{
	size_t i;
	int n;

	if (l->p->nnodes * 2 >= l->nnames) { /* grow and rehash */
		size_t cap = l->nnames ? 2 * l->nnames : 1024;
		int *names = malloc(cap * sizeof(int));

		if (!names)
			return -1;
		memset(names, 0xff, cap * sizeof(int));
		for (size_t k = 0; k < l->nnames; k++)
			if (l->names[k] >= 0)
				for (i = hash_name(l->p->nodes[l->names[k]].name) & (cap - 1); ; i = (i + 1) & (cap - 1))
					if (names[i] < 0) {
						names[i] = l->names[k];
						break;
					}
		free(l->names);
		l->names = names;
		l->nnames = cap;
	}
	for (i = hash_name(name) & (l->nnames - 1); l->names[i] >= 0; i = (i + 1) & (l->nnames - 1))
		if (!strcmp(l->p->nodes[l->names[i]].name, name))
			return l->names[i];
	n = add_node(l->p, &(struct fl_pnode){ .name = strdup(name) });
	if (n >= 0 && !l->p->nodes[n].name)
		return -1;
	return l->names[i] = n;
}

static int *id_index(int64_t max)
{
	int *v = max >= 0 && max < (int64_t)1 << 30 ? malloc((size_t)(max + 1) * sizeof(int)) : NULL;

	if (v)
		memset(v, 0xff, (size_t)(max + 1) * sizeof(int));
	return v;
}

/* Every frame row as a node; a frame without a symbol is named module+offset. */
static int load_frames(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT id, coalesce(function, replace(module, rtrim(module, replace(module, '/', '')), '')"
		" || printf('+0x%x', rel_addr), printf('0x%x', rel_addr)), file, line, module, build_id, rel_addr,"
		" (SELECT coalesce(max(id), 0) FROM frame) FROM frame ORDER BY id");
	int rc;

	if (!st)
		return -1;
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int n;

		if (!l->frame_node && !(l->frame_node = id_index(l->max_frame = sqlite3_column_int64(st, 7))))
			break;
		if (id < 0 || id > l->max_frame)
			continue;
		n = add_node(l->p, &(struct fl_pnode){ .frame_id = id, .name = dup_col(st, 1), .file = dup_col(st, 2),
			.line = sqlite3_column_int64(st, 3), .module = dup_col(st, 4), .build_id = dup_col(st, 5),
			.rel_addr = sqlite3_column_int64(st, 6) });
		if (n < 0)
			break;
		l->frame_node[id] = n;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int load_stacks(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT stack_id, frame_id, (SELECT coalesce(max(id), 0) FROM stack) FROM stack_frame ORDER BY stack_id, idx");
	int rc, len = 0;

	if (!st)
		return -1;
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), f = sqlite3_column_int64(st, 1);
		int *grown;

		if (!l->stacks) {
			l->max_stack = sqlite3_column_int64(st, 2);
			if (l->max_stack >= (int64_t)1 << 28 || !(l->stacks = calloc((size_t)l->max_stack + 1, sizeof(int *))))
				break;
		}
		if (id < 0 || id > l->max_stack || f < 0 || f > l->max_frame || l->frame_node[f] < 0)
			continue;
		for (len = 0; l->stacks[id] && l->stacks[id][len] >= 0; len++)
			;
		if (!(grown = realloc(l->stacks[id], (size_t)(len + 2) * sizeof(int))))
			break;
		grown[len] = l->frame_node[f];
		grown[len + 1] = -1;
		l->stacks[id] = grown;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The selected processes as pseudo-frames "app (100)". */
static int load_procs(struct loader *l)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT id, pid, exe, (SELECT max(id) FROM process) FROM process WHERE ?1 = 0 OR pid = ?1");
	int rc, found = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, l->p->pid);
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		char base[256], name[300];

		if (!l->proc_node && !(l->proc_node = id_index(l->max_proc = sqlite3_column_int64(st, 3))))
			break;
		if (id < 0 || id > l->max_proc)
			continue;
		snprintf(name, sizeof(name), "%s (%lld)", fl_basename((const char *)sqlite3_column_text(st, 2), base,
			 sizeof(base)), (long long)sqlite3_column_int64(st, 1));
		if ((l->proc_node[id] = pseudo(l, name)) < 0)
			break;
		found++;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && !found && l->p->pid) {
		fprintf(stderr, "faultline: %s: no process %lld in this recording\n", l->d->path, (long long)l->p->pid);
		return -2;
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One sample: leaf, region, the creating stack (or what stands for it), process. */
static int add_sample(struct loader *l, int leaf, int region, int64_t stack, int creator, int proc, const int64_t *v)
{
	struct fl_profile *p = l->p;
	int *stk = stack >= 0 && stack <= l->max_stack && l->stacks ? l->stacks[stack] : NULL, n = 0, depth = 0;
	struct fl_psample *s;

	while (stk && stk[depth] >= 0)
		depth++;
	if (p->nsamples == p->capsamples) {
		struct fl_psample *grown = realloc(p->samples, (p->capsamples = p->capsamples ? 2 * p->capsamples : 256) * sizeof(*grown));

		if (!grown)
			return -1;
		p->samples = grown;
	}
	s = &p->samples[p->nsamples];
	if (!(s->frames = malloc((size_t)(depth + 4) * sizeof(int))))
		return -1;
	if (leaf >= 0)
		s->frames[n++] = leaf;
	if (region >= 0)
		s->frames[n++] = region;
	for (int i = 0; i < depth; i++)
		s->frames[n++] = stk[i];
	if (!depth)
		s->frames[n++] = creator;
	s->frames[n++] = proc;
	s->nframes = n;
	memcpy(s->v, v, sizeof(s->v));
	p->nsamples++;
	return 0;
}

static int class_index(const char *name)
{
	for (int c = 0; c < FL_NCLASSES; c++)
		if (name && !strcmp(name, fl_class_names[c]))
			return c;
	return -1;
}

/* What stands for the creating stack when there is none. */
static const char *creator_text(const char *how, bool has_event)
{
	if (has_event)
		return "[no user stack]";
	if (how && !strcmp(how, "exec"))
		return "[mapped by exec]";
	return "[mapped before faultline saw it]";
}

/* "[heap]", "[anon]", "[file /usr/lib/libc.so.6]" into buf. */
static const char *region_text(char *buf, size_t n, const char *kind, const char *path)
{
	if (path && path[0] == '[')
		snprintf(buf, n, "%s", path);
	else
		snprintf(buf, n, "[%s%s%s]", kind ? kind : "?", path ? " " : "", path ? path : "");
	return buf;
}

/* The faults of one VMA row: one sample per fault site, and one for what no site holds. */
static int vma_samples(struct loader *l, sqlite3_stmt *v, sqlite3_stmt *sites, int *site_rc)
{
	int64_t vma = sqlite3_column_int64(v, 0), stack = -1, rest[FL_PVALUES] = { 0 };
	int proc = l->proc_node[sqlite3_column_int64(v, 1)];
	const char *kind = (const char *)sqlite3_column_text(v, 2), *path = (const char *)sqlite3_column_text(v, 3);
	char region_name[4200];
	int region, creator, none;
	bool any = false;

	if (sqlite3_column_type(v, 4) != SQLITE_NULL)
		stack = sqlite3_column_int64(v, 4);
	region = pseudo(l, region_text(region_name, sizeof(region_name), kind, path));
	creator = pseudo(l, creator_text((const char *)sqlite3_column_text(v, 6), sqlite3_column_type(v, 5) != SQLITE_NULL));
	none = pseudo(l, "[no fault site]");
	if (region < 0 || creator < 0 || none < 0)
		return -1;
	for (int c = 0; c < FL_NCLASSES; c++) {
		rest[c] = sqlite3_column_int64(v, 7 + c);
		l->p->total[c] += rest[c];
	}
	/* sites come ordered by vma: skip those of rows without faults, take this row's */
	while (*site_rc == SQLITE_ROW && sqlite3_column_int64(sites, 0) <= vma) {
		int c = class_index((const char *)sqlite3_column_text(sites, 1));
		int64_t f = sqlite3_column_int64(sites, 2), n = sqlite3_column_int64(sites, 3);

		if (sqlite3_column_int64(sites, 0) == vma && c >= 0 && f >= 0 && f <= l->max_frame && l->frame_node[f] >= 0) {
			int64_t w[FL_PVALUES] = { 0 };

			w[c] = n < rest[c] ? n : rest[c]; /* never more than the kernel counted */
			rest[c] -= w[c];
			if (w[c] && add_sample(l, l->frame_node[f], region, stack, creator, proc, w))
				return -1;
		}
		*site_rc = fl_db_step(l->d, sites);
	}
	for (int c = 0; c < FL_NCLASSES; c++)
		any |= rest[c] != 0;
	return any ? add_sample(l, none, region, stack, creator, proc, rest) : 0;
}

static int load_faults(struct loader *l)
{
	char sql[2048] = "SELECT v.id, v.proc_id, o.kind, o.path, e.stack_id, o.created_by, o.how";
	size_t len = strlen(sql);
	sqlite3_stmt *v, *sites = NULL;
	int rc, site_rc;

	for (int c = 0; c < FL_NCLASSES; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", sum(f.%s)", fl_class_names[c]);
	snprintf(sql + len, sizeof(sql) - len,
		 " FROM fault f JOIN vma v ON v.id = f.vma_id JOIN vma o ON o.id = v.origin_id"
		 " LEFT JOIN event e ON e.id = o.created_by GROUP BY v.id ORDER BY v.id");
	if (!(v = fl_db_prepare(l->d, sql)) ||
	    !(sites = fl_db_prepare(l->d, "SELECT vma_id, class, frame_id, sum(count) FROM fault_site"
					  " GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3"))) {
		sqlite3_finalize(v);
		return -1;
	}
	site_rc = fl_db_step(l->d, sites);
	while ((rc = fl_db_step(l->d, v)) == SQLITE_ROW) {
		int64_t proc = sqlite3_column_int64(v, 1);

		if (proc < 0 || proc > l->max_proc || l->proc_node[proc] < 0)
			continue;
		if (vma_samples(l, v, sites, &site_rc)) {
			rc = -1;
			break;
		}
	}
	sqlite3_finalize(v);
	sqlite3_finalize(sites);
	return rc == SQLITE_DONE && site_rc != -1 ? 0 : -1;
}

/* ---- resident and heap bytes at one moment --------------------------------- */

/*
 * The smaps sample `why` explains: of pid's process (else the one with the
 * highest RSS peak that has samples), the one with the most resident bytes,
 * the latest of equal ones (viewer/why.c pick()).  Without samples: the
 * moment of that process's highest RSS.  Sets at_pid, at_ns, sample_id.
 */
static int pick_moment(struct loader *l, int64_t *proc_id)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"WITH cand AS (SELECT p.id, p.pid, (SELECT max(r.anon + r.file + r.shmem) FROM rss r WHERE r.proc_id = p.id)"
		"  AS peak, EXISTS (SELECT 1 FROM smaps_sample s WHERE s.proc_id = p.id) AS sampled FROM process p"
		"  WHERE ?1 = 0 OR p.pid = ?1 ORDER BY sampled DESC, peak DESC, p.id LIMIT 1)"
		" SELECT c.id, c.pid, coalesce((SELECT s.id FROM smaps_sample s WHERE s.proc_id = c.id"
		"  ORDER BY s.rss DESC, s.time_ns DESC LIMIT 1), -1),"
		" coalesce((SELECT s.time_ns FROM smaps_sample s WHERE s.proc_id = c.id ORDER BY s.rss DESC, s.time_ns DESC"
		"  LIMIT 1), (SELECT r.time_ns FROM rss r WHERE r.proc_id = c.id ORDER BY r.anon + r.file + r.shmem DESC,"
		"  r.time_ns LIMIT 1)) FROM cand c");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, l->p->pid);
	rc = fl_db_step(l->d, st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 3) != SQLITE_NULL) {
		*proc_id = sqlite3_column_int64(st, 0);
		l->p->at_pid = sqlite3_column_int64(st, 1);
		l->p->sample_id = sqlite3_column_int64(st, 2);
		l->p->at_ns = sqlite3_column_int64(st, 3) - l->d->start_ns;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int add_value(struct loader *l, int leaf, int region, int64_t stack, int creator, int proc, int which, int64_t n)
{
	int64_t v[FL_PVALUES] = { 0 };

	if (n <= 0)
		return 0;
	v[which] = n;
	l->p->total[which] += n;
	return add_sample(l, leaf, region, stack, creator, proc, v);
}

/* Resident bytes of the sample: each recorded piece under its creating stack, each region's rest apart. */
static int load_resident(struct loader *l, int proc)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT r.start, r.path, r.rss, pr.rss, o.kind, o.path, e.stack_id, o.created_by, o.how, r.shared"
		" FROM region_rss r LEFT JOIN piece_rss pr ON pr.sample_id = r.sample_id AND pr.region_start = r.start"
		" LEFT JOIN vma v ON v.id = pr.vma_id LEFT JOIN vma o ON o.id = v.origin_id"
		" LEFT JOIN event e ON e.id = o.created_by WHERE r.sample_id = ?1 ORDER BY r.start, pr.vma_id");
	int64_t start = -1, rest = 0;
	int rc, none = pseudo(l, "[no recorded VMA]"), region = -1;
	char name[4200];

	if (!st || none < 0)
		return -1;
	sqlite3_bind_int64(st, 1, l->p->sample_id);
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		const char *path = (const char *)sqlite3_column_text(st, 1);

		if (sqlite3_column_int64(st, 0) != start) { /* a new region: the last one's rest first */
			if (add_value(l, -1, region, -1, none, proc, FL_PV_RESIDENT, rest))
				break;
			start = sqlite3_column_int64(st, 0);
			rest = sqlite3_column_int64(st, 2);
			region = pseudo(l, region_text(name, sizeof(name), path ? "file" : sqlite3_column_int(st, 9) ? "anon shared"
							: "anon", path));
			if (region < 0)
				break;
		}
		if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
			int64_t n = sqlite3_column_int64(st, 3) < rest ? sqlite3_column_int64(st, 3) : rest;
			int piece = pseudo(l, region_text(name, sizeof(name), (const char *)sqlite3_column_text(st, 4),
							  (const char *)sqlite3_column_text(st, 5)));
			int creator = pseudo(l, creator_text((const char *)sqlite3_column_text(st, 8),
							     sqlite3_column_type(st, 7) != SQLITE_NULL));

			rest -= n;
			if (piece < 0 || creator < 0 ||
			    add_value(l, -1, piece, sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 6),
				      creator, proc, FL_PV_RESIDENT, n))
				break;
		}
	}
	if (rc == SQLITE_DONE && add_value(l, -1, region, -1, none, proc, FL_PV_RESIDENT, rest))
		rc = -1;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The sampled heap blocks live at the moment, by allocating stack under the allocating function. */
static int load_heap(struct loader *l, int64_t proc_id, int proc)
{
	sqlite3_stmt *st = fl_db_prepare(l->d,
		"SELECT fn, stack_id, CAST(round(sum(weight)) AS INTEGER) FROM heap_sample WHERE proc_id = ?1"
		" AND alloc_ns <= ?2 AND (free_ns IS NULL OR free_ns > ?2) GROUP BY 1, 2 ORDER BY 1, 2");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, l->p->at_ns + l->d->start_ns);
	while ((rc = fl_db_step(l->d, st)) == SQLITE_ROW) {
		char leaf_name[64];
		int leaf, creator;

		snprintf(leaf_name, sizeof(leaf_name), "[%s]", sqlite3_column_text(st, 0));
		leaf = pseudo(l, leaf_name);
		creator = pseudo(l, "[no user stack]");
		if (leaf < 0 || creator < 0 ||
		    add_value(l, leaf, -1, sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1),
			      creator, proc, FL_PV_HEAP, sqlite3_column_int64(st, 2))) {
			rc = -1;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Whether the recording has the table (resident samples came with schema 3, heap samples with 5). */
static bool has_table(struct fl_db *d, const char *name)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
	bool yes;

	if (!st)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	yes = fl_db_step(d, st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

static int load_moment(struct loader *l)
{
	int64_t proc_id = -1;

	if (!has_table(l->d, "smaps_sample") || pick_moment(l, &proc_id))
		return has_table(l->d, "smaps_sample") ? -1 : 0;
	if (proc_id < 0 || proc_id > l->max_proc || l->proc_node[proc_id] < 0)
		return 0;
	if (l->p->sample_id >= 0 && load_resident(l, l->proc_node[proc_id]))
		return -1;
	return has_table(l->d, "heap_sample") ? load_heap(l, proc_id, l->proc_node[proc_id]) : 0;
}

int fl_profile_load(struct fl_db *d, int64_t pid, struct fl_profile *p)
{
	struct loader l = { .d = d, .p = p, .max_frame = -1, .max_stack = -1, .max_proc = -1 };
	int rc;

	*p = (struct fl_profile){ .pid = pid, .at_pid = -1, .at_ns = -1, .sample_id = -1 };
	rc = load_frames(&l);
	if (!rc)
		rc = load_stacks(&l);
	if (!rc)
		rc = load_procs(&l);
	if (!rc && l.proc_node)
		rc = load_faults(&l) || load_moment(&l);
	for (int64_t i = 0; l.stacks && i <= l.max_stack; i++)
		free(l.stacks[i]);
	free(l.stacks);
	free(l.frame_node);
	free(l.proc_node);
	free(l.names);
	if (rc) {
		if (rc != -2)
			fprintf(stderr, "faultline: %s: cannot read the faults and their stacks\n", d->path);
		fl_profile_free(p);
		return -1;
	}
	return 0;
}

void fl_profile_free(struct fl_profile *p)
{
	for (size_t i = 0; i < p->nnodes; i++) {
		free(p->nodes[i].name);
		free(p->nodes[i].file);
		free(p->nodes[i].module);
		free(p->nodes[i].build_id);
	}
	for (size_t i = 0; i < p->nsamples; i++)
		free(p->samples[i].frames);
	free(p->nodes);
	free(p->samples);
	*p = (struct fl_profile){ 0 };
}
