/* SPDX-License-Identifier: MIT */
/*
 * vmas.c - `faultline vmas FILE [--pid P] [--at TIME|end] [--pieces]`: the
 * mappings live at one moment, like /proc/PID/maps, with what was resident
 * in each, the faults each took and who created each.
 *
 * By default adjacent rows the kernel keeps as one VMA are one line (a
 * region, as in /proc/PID/maps): rows an smaps sample found in one kernel
 * VMA, or rows that the kernel would merge (same permissions, flags, kind
 * and file, contiguous offsets) and that no sample saw apart.  --pieces
 * lists every recorded row (a piece: one call's part of a region).
 *
 * Resident bytes come from the process's latest smaps sample at or before
 * the moment (docs/schema.md, piece_rss): a row created after that sample
 * shows "-".  Faults are what each row took over its life.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "rows.h"
#include "output.h"
#include "viewer.h"

#define USAGE "vmas FILE [--pid P] [--at TIME|end] [--pieces] [--format json]"

struct vmas_opts {
	struct fl_cli cli;
	bool pid_set, at_end, pieces;
	int64_t pid, at;  /* at: nanoseconds after run start */
};

/* Resident bytes of the rows of one moment, from one smaps sample. */
struct resident {
	int64_t sample_id;  /* 0: no sample at or before the moment */
	int64_t time_ns;
	struct fl_opt *rss;     /* per row: piece_rss.rss (unset: the row was not in the sample) */
	int64_t *region_start;  /* per row: the kernel VMA that held it in the sample (0: none) */
};

static int on_option(void *ctx, int c, const char *arg)
{
	struct vmas_opts *o = ctx;
	char *end;

	if (c == 'p') {
		o->pid = strtoll(arg, &end, 10);
		if (*end || o->pid <= 0)
			return fl_cli_usage_error(&o->cli, "--pid wants a process id, not '%s'", arg);
		o->pid_set = true;
		return -1;
	}
	if (c == 'a') {
		o->at_end = !strcmp(arg, "end");
		if (!o->at_end && fl_out_parse_time(arg, &o->at))
			return fl_cli_usage_error(&o->cli, "--at wants 'end' or a time after the start "
						  "(1.5, 1.5s, 250ms, 100us), not '%s'", arg);
		return -1;
	}
	if (c == 'P') {
		o->pieces = true;
		return -1;
	}
	return 2;
}

/* The latest smaps sample of proc_id at or before t, and each row's bytes in it. */
static int resident_load(struct fl_db *d, int64_t proc_id, int64_t t, const struct fl_vma *v, int n,
			 struct resident *r)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE;

	memset(r, 0, sizeof(*r));
	r->rss = calloc((size_t)n + 1, sizeof(*r->rss));
	r->region_start = calloc((size_t)n + 1, sizeof(*r->region_start));
	if (!r->rss || !r->region_start)
		return -1;
	if (sqlite3_prepare_v2(d->db, "SELECT id, time_ns FROM smaps_sample WHERE proc_id = ?1 AND time_ns <= ?2"
			       " ORDER BY time_ns DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return 0; /* a file older than schema 3: no samples */
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, t);
	if ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		r->sample_id = sqlite3_column_int64(st, 0);
		r->time_ns = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (!r->sample_id)
		return rc < 0 ? -1 : 0;
	if (!(st = fl_db_prepare(d, "SELECT region_start, rss FROM piece_rss WHERE sample_id = ?1 AND vma_id = ?2")))
		return -1;
	sqlite3_bind_int64(st, 1, r->sample_id);
	for (int i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 2, v[i].id);
		if ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
			r->region_start[i] = sqlite3_column_int64(st, 0);
			r->rss[i] = (struct fl_opt){ true, sqlite3_column_int64(st, 1) };
		} else if (rc < 0) {
			break;
		}
	}
	sqlite3_finalize(st);
	return rc < 0 ? -1 : 0;
}

static void resident_free(struct resident *r)
{
	free(r->rss);
	free(r->region_start);
}

/* Whether row b continues row a's region (v sorted by start). */
static bool same_region(const struct fl_vma *a, const struct fl_vma *b, const struct resident *r, int ia, int ib)
{
	if (a->end != b->start)
		return false;
	if (r->region_start[ia] && r->region_start[ib])  /* the kernel said, at the sample */
		return r->region_start[ia] == r->region_start[ib];
	return fl_vma_same_region(a, b);
}

static const char *opt_size(char *buf, size_t n, struct fl_opt o)
{
	return o.set ? fl_out_size(buf, n, o.v) : "-";
}

static const char *opt_count(char *buf, size_t n, struct fl_opt o)
{
	if (!o.set)
		return "-";
	snprintf(buf, n, "%lld", (long long)o.v);
	return buf;
}

/*
 * One /proc/PID/maps-like line for rows v[0..n) (one row, or the pieces of
 * a region): range, perms, offset, file, size, kind, resident, faults,
 * created, and the creator of its largest resident (else largest) piece.
 */
static int vma_line(struct fl_db *d, struct fl_table *t, const struct fl_vma *v, int n, const struct fl_opt *rss)
{
	char range[64], perms[8], offset[32], size[32], res[32], faults[32], when[32], creator[1][512], who[600];
	struct fl_opt resident = { 0 }, nfaults = { 0 };
	int64_t created = v[0].created_ns;
	int big = 0;

	for (int i = 0; i < n; i++) {
		created = v[i].created_ns < created ? v[i].created_ns : created;
		if (rss[i].set)
			resident = (struct fl_opt){ true, resident.v + rss[i].v };
		if (v[i].faults.set)
			nfaults = (struct fl_opt){ true, nfaults.v + v[i].faults.v };
		if ((rss[i].set ? rss[i].v : -1) > (rss[big].set ? rss[big].v : -1) ||
		    (!rss[big].set && !rss[i].set && v[i].end - v[i].start > v[big].end - v[big].start))
			big = i;
	}
	if (fl_vma_creator(d, &v[big], 1, creator) < 0)
		return -1;
	snprintf(range, sizeof(range), "%08" PRIx64 "-%08" PRIx64, (uint64_t)v[0].start, (uint64_t)v[n - 1].end);
	snprintf(offset, sizeof(offset), "%08" PRIx64, (uint64_t)v[0].offset);
	snprintf(who, sizeof(who), "%s", creator[0]);
	if (n > 1)
		snprintf(who + strlen(who), sizeof(who) - strlen(who), " (and %d more VMAs)", n - 1);
	else if (v[0].event_id.set)
		snprintf(who + strlen(who), sizeof(who) - strlen(who), " [event %" PRId64 "]", v[0].event_id.v);
	return fl_table_add(t, (const char *[]){ range, fl_out_perms(perms, sizeof(perms), v[0].prot, v[0].flags),
		offset, v[0].path ? v[0].path : "", fl_out_size(size, sizeof(size), v[n - 1].end - v[0].start), v[0].kind,
		opt_size(res, sizeof(res), resident), opt_count(faults, sizeof(faults), nfaults),
		fl_out_reltime(when, sizeof(when), created - d->start_ns), who });
}

static int print_text(struct fl_db *d, const struct fl_proc *p, int64_t t, bool at_end, bool pieces,
		      const struct fl_vma *v, int n, const struct resident *r)
{
	struct fl_table tab;
	char when[32], total[32], sample[64] = "no smaps sample by then";
	int64_t bytes = 0;
	int rc = 0, nregions = 0;

	for (int i = 0; i < n; i++) {
		bytes += v[i].end - v[i].start;
		nregions += i == 0 || !same_region(&v[i - 1], &v[i], r, i - 1, i);
	}
	if (r->sample_id)
		fl_out_reltime(sample + snprintf(sample, sizeof(sample), "resident at "), sizeof(sample) - 12,
			       r->time_ns - d->start_ns);
	fl_out_reltime(when, sizeof(when), t - d->start_ns);
	printf("process %" PRId64 " %s: %d regions (%d VMAs), %s mapped at %s%s%s; %s\n", p->pid,
	       p->exe ? p->exe : "?", nregions, n, fl_out_size(total, sizeof(total), bytes),
	       at_end ? "its end (" : "", when, at_end ? ")" : "", sample);
	fl_table_init(&tab, 10, 1u << 4 | 1u << 6 | 1u << 7);
	fl_table_add(&tab, (const char *[]){ "range", "perms", "offset", "file", "size", "kind", "resident", "faults",
					     "created", pieces ? "creator" : "creator (of its largest piece)" });
	for (int i = 0, k; i < n && !rc; i = k) {
		for (k = i + 1; !pieces && k < n && same_region(&v[k - 1], &v[k], r, k - 1, k); k++)
			;
		if (pieces)
			k = i + 1;
		rc = vma_line(d, &tab, &v[i], k - i, &r->rss[i]);
	}
	fl_table_print(&tab, stdout, 0);
	fl_table_free(&tab);
	return rc;
}

/* The rows as JSON: every column, plus the row's resident bytes and the kernel VMA that held it in the sample. */
static void print_json(struct fl_db *d, struct fl_json *j, const struct fl_vma *v, int n, const struct resident *r)
{
	for (int i = 0; i < n; i++) {
		fl_vma_json_open(d, j, &v[i]);
		fl_json_opt(j, "resident", r->rss[i]);
		fl_json_opt(j, "region_start", (struct fl_opt){ r->region_start[i] != 0, r->region_start[i] });
		fl_json_close(j, '}');
	}
}

/* The VMAs of p at the chosen moment, printed. Returns 0, 1 if p was not alive then, or -1. */
static int show_process(struct fl_db *d, struct vmas_opts *o, struct fl_json *j, const struct fl_proc *p,
			bool first)
{
	int64_t t = o->at_end ? fl_proc_end(d, p) : d->start_ns + o->at;
	struct resident r;
	struct fl_vma *v;
	int n, rc = 0;

	if (!o->at_end && !fl_proc_alive_at(p, t))
		return 1;
	n = fl_vma_select(d, p->id, t, o->at_end, "v.start, v.id", 0, &v);
	if (n < 0)
		return -1;
	if (resident_load(d, p->id, t, v, n, &r)) {
		rc = -1;
	} else if (j) {
		print_json(d, j, v, n, &r);
	} else {
		if (!first)
			putchar('\n');
		rc = print_text(d, p, t, o->at_end, o->pieces, v, n, &r);
	}
	resident_free(&r);
	fl_vma_free(v, n);
	return rc;
}
int fl_cmd_vmas(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS,
		{ "pid", required_argument, NULL, 'p' }, { "at", required_argument, NULL, 'a' },
		{ "pieces", no_argument, NULL, 'P' }, { 0 } };
	struct vmas_opts o = { .cli = { .usage = USAGE }, .at_end = true };
	struct fl_proc *procs = NULL;
	struct fl_json j;
	struct fl_db d;
	int rc = fl_cli_parse(&o.cli, argc, argv, ":hp:a:", options, on_option, &o), n, shown = 0, matched = 0;
	char when[32];

	if (rc >= 0)
		return rc;
	if ((rc = fl_cli_open_recording(&o.cli, argc, argv, &d)) >= 0)
		return rc;
	n = fl_proc_load(&d, &procs);
	rc = n < 0 ? -1 : 0;
	for (int i = 0; i < n; i++)
		matched += !o.pid_set || procs[i].pid == o.pid;
	if (rc == 0 && !matched && o.pid_set) {
		fprintf(stderr, "faultline: %s: no process with pid %" PRId64 "\n", d.path, o.pid);
		rc = -1;
	}
	if (o.cli.json && rc == 0) {
		fl_json_init(&j, stdout);
		fl_json_open(&j, '[');
	}
	for (int i = 0; i < n && rc >= 0; i++) {
		if (o.pid_set && procs[i].pid != o.pid)
			continue;
		rc = show_process(&d, &o, o.cli.json ? &j : NULL, &procs[i], shown == 0);
		shown += rc == 0;
		if (rc == 1 && o.pid_set && !o.cli.json)
			printf("process %" PRId64 " %s: not alive at %s\n", procs[i].pid, procs[i].exe ? procs[i].exe : "?",
			       fl_out_reltime(when, sizeof(when), o.at));
		rc = rc < 0 ? -1 : 0;
	}
	if (o.cli.json && rc == 0)
		fl_json_close(&j, ']');
	fl_proc_free(procs, n > 0 ? n : 0);
	fl_db_close(&d);
	return rc ? 1 : 0;
}
