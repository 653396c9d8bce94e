/* SPDX-License-Identifier: MIT */
/* rows.c - processes and VMAs as the viewer commands read them. */
#include "rows.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"

static struct fl_opt opt_col(sqlite3_stmt *st, int i)
{
	return (struct fl_opt){ sqlite3_column_type(st, i) != SQLITE_NULL, sqlite3_column_int64(st, i) };
}

static char *dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

void fl_json_opt(struct fl_json *j, const char *key, struct fl_opt o)
{
	fl_json_key(j, key);
	if (o.set)
		fl_json_int(j, o.v);
	else
		fl_json_null(j);
}

/* ---- processes --------------------------------------------------------- */

int fl_proc_load(struct fl_db *d, struct fl_proc **out)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT id, pid, start_ns, ppid, parent_id, end_ns, exit_code, exit_signal,"
		" min_flt, maj_flt, shim, exe, argv, min_flt_before, maj_flt_before, min_flt_gup, maj_flt_gup"
		" FROM process ORDER BY start_ns, id");
	struct fl_proc *procs = NULL;
	int n = 0, rc;

	*out = NULL;
	if (!st)
		return -1;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		struct fl_proc *grown = realloc(procs, (size_t)(n + 1) * sizeof(*procs)), *p;

		if (!grown) {
			rc = -1;
			break;
		}
		procs = grown;
		p = &procs[n++];
		p->id = sqlite3_column_int64(st, 0);
		p->pid = sqlite3_column_int64(st, 1);
		p->start_ns = sqlite3_column_int64(st, 2);
		p->ppid = opt_col(st, 3);
		p->parent_id = opt_col(st, 4);
		p->end_ns = opt_col(st, 5);
		p->exit_code = opt_col(st, 6);
		p->exit_signal = opt_col(st, 7);
		p->min_flt = opt_col(st, 8);
		p->maj_flt = opt_col(st, 9);
		p->shim = sqlite3_column_int(st, 10) != 0;
		p->exe = dup_col(st, 11);
		p->argv = dup_col(st, 12);
		p->min_flt_before = opt_col(st, 13);
		p->maj_flt_before = opt_col(st, 14);
		p->min_flt_gup = opt_col(st, 15);
		p->maj_flt_gup = opt_col(st, 16);
	}
	sqlite3_finalize(st);
	if (rc < 0) {
		fl_proc_free(procs, n);
		return -1;
	}
	*out = procs;
	return n;
}

void fl_proc_free(struct fl_proc *p, int n)
{
	for (int i = 0; i < n; i++) {
		free(p[i].exe);
		free(p[i].argv);
	}
	free(p);
}

const char *fl_proc_status(const struct fl_proc *p, char *buf, size_t n)
{
	char sig[32];

	if (p->exit_signal.set && p->exit_signal.v)
		snprintf(buf, n, "killed by %s", fl_out_signal(sig, sizeof(sig), p->exit_signal.v));
	else if (p->exit_code.set)
		snprintf(buf, n, "exited %lld", (long long)p->exit_code.v);
	else if (p->end_ns.set)
		snprintf(buf, n, "ended (status unknown)");
	else
		snprintf(buf, n, "still running when the recording stopped");
	return buf;
}

int64_t fl_proc_end(const struct fl_db *d, const struct fl_proc *p)
{
	return p->end_ns.set ? p->end_ns.v : d->end_ns;
}

bool fl_proc_alive_at(const struct fl_proc *p, int64_t t)
{
	return p->start_ns <= t && (!p->end_ns.set || p->end_ns.v > t);
}

/* ---- VMAs -------------------------------------------------------------- */

/*
 * The creating event is created_by; a piece split off, or inherited at
 * fork, without one of its own shows the event that made its origin row.
 */
#define VMA_SELECT \
	"SELECT v.id, v.proc_id, v.pid, v.start, v.end, v.prot, v.flags, v.offset, v.created_ns," \
	" v.origin_id, v.inode, v.destroyed_ns, v.created_by, v.destroyed_by, v.parent_id," \
	" (SELECT sum(reads + writes + execs) FROM fault WHERE vma_id = v.id)," \
	" e.id, e.stack_id, v.kind, v.path, v.how, e.kind" \
	" FROM vma v LEFT JOIN event e ON e.id = coalesce(v.created_by," \
	"   CASE WHEN v.how IN ('split', 'fork') THEN" \
	"     (SELECT o.created_by FROM vma o WHERE o.id = v.origin_id AND o.id != v.id) END)" \
	" WHERE "

static void vma_read(sqlite3_stmt *st, struct fl_vma *v)
{
	v->id = sqlite3_column_int64(st, 0);
	v->proc_id = sqlite3_column_int64(st, 1);
	v->pid = sqlite3_column_int64(st, 2);
	v->start = sqlite3_column_int64(st, 3);
	v->end = sqlite3_column_int64(st, 4);
	v->prot = sqlite3_column_int64(st, 5);
	v->flags = sqlite3_column_int64(st, 6);
	v->offset = sqlite3_column_int64(st, 7);
	v->created_ns = sqlite3_column_int64(st, 8);
	v->origin_id = sqlite3_column_int64(st, 9);
	v->inode = opt_col(st, 10);
	v->destroyed_ns = opt_col(st, 11);
	v->created_by = opt_col(st, 12);
	v->destroyed_by = opt_col(st, 13);
	v->parent_id = opt_col(st, 14);
	v->faults = opt_col(st, 15);
	v->event_id = opt_col(st, 16);
	v->stack_id = opt_col(st, 17);
	v->kind = dup_col(st, 18);
	v->path = dup_col(st, 19);
	v->how = dup_col(st, 20);
	v->event_kind = dup_col(st, 21);
}

/* Whether t is in the second half of process proc_id's life (where fewer of its rows end after t than began before). */
static bool late_in_life(struct fl_db *d, int64_t proc_id, int64_t t)
{
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT start_ns, coalesce(end_ns, ?2) FROM process WHERE id = ?1");
	bool late = false;

	if (!st)
		return false;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, d->end_ns);
	if (sqlite3_step(st) == SQLITE_ROW)
		late = t - sqlite3_column_int64(st, 0) > sqlite3_column_int64(st, 1) - t;
	sqlite3_finalize(st);
	return late;
}

int fl_vma_select(struct fl_db *d, int64_t proc_id, int64_t t, bool at_end, const char *order_by,
		  int limit, struct fl_vma **out)
{
	char sql[2048];
	sqlite3_stmt *st;
	struct fl_vma *vmas = NULL;
	int n = 0, rc;

	*out = NULL;
	/*
	 * The rows live at t are those made by t and not gone by then: late in
	 * a long run, the few gone after t (by vma_proc_end) are read, not the
	 * half million made before it.  Either way the same rows.
	 */
	snprintf(sql, sizeof(sql), "%s%s%s ORDER BY %s LIMIT ?3", VMA_SELECT,
		 late_in_life(d, proc_id, t) ?
		 "+v.proc_id = ?1 AND +v.created_ns <= ?2 AND v.id IN (SELECT id FROM vma WHERE proc_id = ?1"
		 " AND destroyed_ns IS NULL UNION ALL SELECT id FROM vma WHERE proc_id = ?1 AND destroyed_ns >= ?2) AND " :
		 "v.proc_id = ?1 AND v.created_ns <= ?2 AND ",
		 at_end ? "(v.destroyed_ns IS NULL OR (v.destroyed_by IS NULL AND v.destroyed_ns >= ?2))"
			: "(v.destroyed_ns IS NULL OR v.destroyed_ns > ?2)",
		 order_by);
	st = fl_db_prepare(d, sql);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, t);
	sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		struct fl_vma *grown = realloc(vmas, (size_t)(n + 1) * sizeof(*vmas));

		if (!grown) {
			rc = -1;
			break;
		}
		vmas = grown;
		vma_read(st, &vmas[n++]);
	}
	sqlite3_finalize(st);
	if (rc < 0) {
		fl_vma_free(vmas, n);
		return -1;
	}
	*out = vmas;
	return n;
}

int fl_vma_get(struct fl_db *d, int64_t proc_id, int64_t id, struct fl_vma *out)
{
	char sql[2048];
	sqlite3_stmt *st;
	int rc;

	/* prepared once per connection: why asks for each of a region's thousand pieces */
	snprintf(sql, sizeof(sql), "%s v.proc_id = ?1 AND v.created_ns <= ?2 AND v.id = ?3", VMA_SELECT);
	if (!d->vma_get && !(d->vma_get = fl_db_prepare(d, sql)))
		return -1;
	st = d->vma_get;
	sqlite3_bind_int64(st, 1, proc_id);
	sqlite3_bind_int64(st, 2, INT64_MAX);
	sqlite3_bind_int64(st, 3, id);
	rc = fl_db_step(d, st);
	if (rc == SQLITE_ROW)
		vma_read(st, out);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc < 0 ? -1 : 0;
}

void fl_vma_free(struct fl_vma *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].kind);
		free(v[i].path);
		free(v[i].how);
		free(v[i].event_kind);
	}
	free(v);
}

/* The next (time, size) of a stream of fl_vma_peak, or false at its end (*rc: SQLITE_DONE or an error). */
static bool next_change(struct fl_db *d, sqlite3_stmt *st, int *rc, int64_t *t, int64_t *size)
{
	if ((*rc = fl_db_step(d, st)) != SQLITE_ROW)
		return false;
	*t = sqlite3_column_int64(st, 0);
	*size = sqlite3_column_int64(st, 1);
	return true;
}

int fl_vma_peak(struct fl_db *d, int64_t proc_id, int64_t *t, int64_t *bytes)
{
	/*
	 * Rows mapped and rows unmapped, each in time order (the indexes
	 * vma_proc_time and vma_proc_end give them sorted), merged: every
	 * change at one instant applies together (a split ends a row and
	 * starts its pieces at the same time), and the earliest highest sum wins.
	 */
	if (!d->vma_mapped)
		d->vma_mapped = fl_db_prepare(d, "SELECT created_ns, end - start FROM vma WHERE proc_id = ? ORDER BY created_ns");
	if (!d->vma_unmapped)
		d->vma_unmapped = fl_db_prepare(d, "SELECT destroyed_ns, end - start FROM vma"
						   " WHERE proc_id = ? AND destroyed_ns IS NOT NULL ORDER BY destroyed_ns");
	sqlite3_stmt *up = d->vma_mapped, *down = d->vma_unmapped;
	int64_t ut = 0, us = 0, dt = 0, ds = 0, total = 0;
	int urc = SQLITE_DONE, drc = SQLITE_DONE, found = 0;
	bool more_up, more_down;

	if (!up || !down)
		return -1;
	sqlite3_bind_int64(up, 1, proc_id);
	sqlite3_bind_int64(down, 1, proc_id);
	more_up = next_change(d, up, &urc, &ut, &us);
	more_down = next_change(d, down, &drc, &dt, &ds);
	while (more_up || more_down) {
		int64_t now = !more_down || (more_up && ut < dt) ? ut : dt;

		while (more_up && ut == now) {
			total += us;
			more_up = next_change(d, up, &urc, &ut, &us);
		}
		while (more_down && dt == now) {
			total -= ds;
			more_down = next_change(d, down, &drc, &dt, &ds);
		}
		if (!found || total > *bytes) {
			*t = now;
			*bytes = total;
			found = 1;
		}
	}
	sqlite3_reset(up);
	sqlite3_reset(down);
	return urc != SQLITE_DONE || drc != SQLITE_DONE ? -1 : found;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool fl_vma_same_region(const struct fl_vma *a, const struct fl_vma *b)
{
	return a->end == b->start && a->prot == b->prot && a->flags == b->flags && !strcmp(a->kind, b->kind) &&
	       same_str(a->path, b->path) && a->inode.set == b->inode.set && a->inode.v == b->inode.v &&
	       (!a->inode.set || a->offset + (a->end - a->start) == b->offset);
}

/* Why a VMA has no creating stack, or NULL if it has one. */
static const char *no_stack_reason(const struct fl_vma *v)
{
	static const struct { const char *how, *reason; } reasons[] = {
		{ "snapshot", "(mapped before start)" },
		{ "resync", "(found by a /proc resync; creator unknown)" },
		{ "exec", "(mapped by exec)" },
		{ "fork", "(inherited at fork)" },
	};

	if (v->event_id.set)
		return v->stack_id.set ? NULL : "no user stack (seen by the kernel only)";
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcmp(v->how, reasons[i].how))
			return reasons[i].reason;
	return "(no creating event recorded)";
}

int fl_vma_creator(struct fl_db *d, const struct fl_vma *v, int nframes, char lines[][512])
{
	const char *reason = no_stack_reason(v);
	struct fl_frame *frames;
	int n;

	if (!reason) {
		n = fl_stack_load(d, v->stack_id.v, nframes, &frames);
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++)
			fl_frame_short(&frames[i], lines[i], sizeof(lines[i]));
		fl_stack_free(frames, n);
		if (n > 0)
			return n;
		reason = "(empty stack)";
	}
	snprintf(lines[0], sizeof(lines[0]), "%s", reason);
	return 1;
}

void fl_vma_json(struct fl_db *d, struct fl_json *j, const struct fl_vma *v)
{
	fl_vma_json_open(d, j, v);
	fl_json_close(j, '}');
}

void fl_vma_json_open(struct fl_db *d, struct fl_json *j, const struct fl_vma *v)
{
	char perms[8], creator[1][512];

	fl_json_open(j, '{');
	fl_json_kint(j, "id", v->id);
	fl_json_kint(j, "proc_id", v->proc_id);
	fl_json_kint(j, "pid", v->pid);
	fl_json_kint(j, "start", v->start);
	fl_json_kint(j, "end", v->end);
	fl_json_kint(j, "size", v->end - v->start);
	fl_json_kint(j, "prot", v->prot);
	fl_json_kint(j, "flags", v->flags);
	fl_json_kstr(j, "perms", fl_out_perms(perms, sizeof(perms), v->prot, v->flags));
	fl_json_kint(j, "offset", v->offset);
	fl_json_opt(j, "inode", v->inode);
	fl_json_kstr(j, "kind", v->kind);
	fl_json_kstr(j, "path", v->path);
	fl_json_kstr(j, "how", v->how);
	fl_json_kint(j, "created_ns", v->created_ns);
	fl_json_key(j, "created_s");
	fl_json_real(j, (double)(v->created_ns - d->start_ns) / 1e9);
	fl_json_opt(j, "destroyed_ns", v->destroyed_ns);
	fl_json_opt(j, "created_by", v->created_by);
	fl_json_opt(j, "destroyed_by", v->destroyed_by);
	fl_json_opt(j, "parent_id", v->parent_id);
	fl_json_kint(j, "origin_id", v->origin_id);
	fl_json_opt(j, "event_id", v->event_id);
	fl_json_kstr(j, "event_kind", v->event_kind);
	fl_json_opt(j, "stack_id", v->stack_id);
	fl_json_opt(j, "faults", v->faults);
	fl_json_kstr(j, "creator", fl_vma_creator(d, v, 1, creator) > 0 ? creator[0] : NULL);
}
