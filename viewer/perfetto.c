/* SPDX-License-Identifier: MIT */
/*
 * perfetto.c - `export --format perfetto`: the Trace Event JSON format that
 * ui.perfetto.dev and chrome://tracing open.  Per process: a slice for its
 * lifetime, a counter track of its resident memory (the kernel's anon, file
 * and shmem counters, every sample), a counter track per top region (its
 * resident bytes at every smaps sample), a counter of the faults of each drain
 * by class, and an instant event for every address-space call with its
 * arguments and the first frames of its stack.  Times are microseconds
 * after the run's start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "measure.h"
#include "output.h"
#include "series.h"

#define STACK_FRAMES 8
#define REGION_TRACKS 8   /* top regions with a counter track each; the rest summed in one */
#define REGIONS_PID 0     /* the pseudo-process holding them (no real process has pid 0) */
#define STR_(x) #x
#define STR(x) STR_(x)

/* Names of a0..a5 by kind (docs/schema.md); kinds not listed show a0..a5. */
static const struct {
	const char *kind;
	const char *arg[6];
} arg_names[] = {
	{ "mmap", { "addr", "len", "prot", "flags", "fd", "offset" } },
	{ "munmap", { "addr", "len" } },
	{ "mprotect", { "addr", "len", "prot" } },
	{ "pkey_mprotect", { "addr", "len", "prot", "pkey" } },
	{ "mremap", { "old_addr", "old_len", "new_len", "flags", "new_addr" } },
	{ "brk", { "requested_break" } },
	{ "sbrk", { "increment" } },
	{ "madvise", { "addr", "len", "advice" } },
	{ "clone", { "flags" } },
	{ "exit", { "code", "signal" } },
	{ "dlopen", { "mode" } },
	{ "dlclose", { "handle" } },
	{ "shmat", { "shmid", "addr", "shmflg" } },
	{ "shmdt", { "addr" } },
};

static double us(const struct fl_db *d, int64_t ns)
{
	return (double)(ns - d->start_ns) / 1e3;
}

/* Every stack's first frames as "f0 (file:line) < f1 < ...", by stack id. */
static char **load_stack_texts(struct fl_db *d, int64_t *nstacks)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT sf.stack_id, coalesce(f.function, replace(f.module, rtrim(f.module, replace(f.module, '/', '')), '')"
		" || printf('+0x%x', f.rel_addr), printf('0x%x', f.rel_addr))"
		" || coalesce(' (' || replace(f.file, rtrim(f.file, replace(f.file, '/', '')), '') || ':' || f.line || ')', ''),"
		" (SELECT coalesce(max(id), 0) FROM stack) FROM stack_frame sf JOIN frame f ON f.id = sf.frame_id"
		" WHERE sf.idx < " STR(STACK_FRAMES) " ORDER BY sf.stack_id, sf.idx");
	char **texts = NULL;
	int rc;

	*nstacks = 0;
	if (!st)
		return NULL;
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		char *joined;

		if (!texts) {
			*nstacks = sqlite3_column_int64(st, 2) + 1;
			if (*nstacks > (int64_t)1 << 28 || !(texts = calloc((size_t)*nstacks, sizeof(char *))))
				break;
		}
		if (id < 0 || id >= *nstacks)
			continue;
		if (asprintf(&joined, "%s%s%s", texts[id] ? texts[id] : "", texts[id] ? " < " : "",
			     (const char *)sqlite3_column_text(st, 1)) < 0)
			break;
		free(texts[id]);
		texts[id] = joined;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		for (int64_t i = 0; texts && i < *nstacks; i++)
			free(texts[i]);
		free(texts);
		return NULL;
	}
	return texts ? texts : calloc(1, sizeof(char *));
}

static void event_head(struct fl_json *j, const char *name, const char *cat, const char *ph, int64_t pid, int64_t tid,
		       double ts)
{
	fl_json_open(j, '{');
	fl_json_kstr(j, "name", name);
	if (cat)
		fl_json_kstr(j, "cat", cat);
	fl_json_kstr(j, "ph", ph);
	fl_json_kint(j, "pid", pid);
	fl_json_kint(j, "tid", tid);
	fl_json_key(j, "ts");
	fl_json_real(j, ts);
}

/* Names, lifetimes (X slices) of the selected processes. */
static int processes(struct fl_db *d, struct fl_json *j, int64_t pid)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT pid, exe, start_ns, coalesce(end_ns, (SELECT end_ns FROM run)), exit_code, exit_signal, ppid"
		" FROM process WHERE ?1 = 0 OR pid = ?1 ORDER BY start_ns, id");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, pid);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		char base[256], name[300];
		int64_t p = sqlite3_column_int64(st, 0);

		fl_basename((const char *)sqlite3_column_text(st, 1), base, sizeof(base));
		snprintf(name, sizeof(name), "%s (%lld)", base, (long long)p);
		fl_json_open(j, '{');
		fl_json_kstr(j, "name", "process_name");
		fl_json_kstr(j, "ph", "M");
		fl_json_kint(j, "pid", p);
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		fl_json_kstr(j, "name", name);
		fl_json_close(j, '}');
		fl_json_close(j, '}');
		event_head(j, base, "process", "X", p, p, us(d, sqlite3_column_int64(st, 2)));
		fl_json_key(j, "dur");
		fl_json_real(j, (double)(sqlite3_column_int64(st, 3) - sqlite3_column_int64(st, 2)) / 1e3);
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		fl_json_kcol(j, "exe", st, 1);
		fl_json_kcol(j, "ppid", st, 6);
		fl_json_kcol(j, "exit_code", st, 4);
		fl_json_kcol(j, "exit_signal", st, 5);
		fl_json_close(j, '}');
		fl_json_close(j, '}');
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Resident memory per process: every sample, and zero when the process ended. */
static int rss_counters(struct fl_db *d, struct fl_json *j, int64_t pid)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT p.pid, r.time_ns, r.anon, r.file, r.shmem FROM rss r JOIN process p ON p.id = r.proc_id"
		" WHERE ?1 = 0 OR p.pid = ?1"
		" UNION ALL SELECT pid, end_ns, 0, 0, 0 FROM process WHERE end_ns IS NOT NULL AND (?1 = 0 OR pid = ?1)"
		" ORDER BY 2");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, pid);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		event_head(j, "rss bytes", NULL, "C", sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 0),
			   us(d, sqlite3_column_int64(st, 1)));
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		for (int c = 0; c < FL_RSS_PARTS; c++)
			fl_json_kcol(j, fl_rss_part_names[c], st, 2 + c);
		fl_json_close(j, '}');
		fl_json_close(j, '}');
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Resident memory of the top regions (series.h, FL_BY_REGION: ranked by
 * their bytes at the peak, the rest summed as "other"), a counter track
 * each, at every smaps sample and end, under one pseudo-process: a region
 * series belongs to one process but "other" can span several.
 */
static int region_counters(struct fl_db *d, struct fl_json *j, const struct fl_export *x)
{
	struct fl_timeline t;

	if (fl_timeline_load(d, FL_BY_REGION, x->pid, 1, x->top > 0 ? x->top + 1 : REGION_TRACKS + 1, &t))
		return -1;
	if (t.nchanges) {
		fl_json_open(j, '{');
		fl_json_kstr(j, "name", "process_name");
		fl_json_kstr(j, "ph", "M");
		fl_json_kint(j, "pid", REGIONS_PID);
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		fl_json_kstr(j, "name", "resident by region (smaps samples)");
		fl_json_close(j, '}');
		fl_json_close(j, '}');
	}
	for (size_t i = 0; i < t.nchanges; i++) {
		event_head(j, t.series[t.changes[i].series].name, NULL, "C", REGIONS_PID, REGIONS_PID,
			   (double)t.changes[i].t / 1e3);
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		fl_json_kint(j, "bytes", t.changes[i].bytes);
		fl_json_close(j, '}');
		fl_json_close(j, '}');
	}
	fl_timeline_free(&t);
	return 0;
}

/* Faults per process and drain, one counter per class the run has any of. */
static int fault_counters(struct fl_db *d, struct fl_json *j, int64_t pid)
{
	char sql[2048] = "SELECT p.pid, f.time_ns", totals[1024] = "SELECT 0";
	size_t len = strlen(sql), tlen = strlen(totals);
	bool any[FL_NCLASSES];
	sqlite3_stmt *st;
	int rc;

	for (int c = 0; c < FL_NCLASSES; c++) {
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", sum(f.%s)", fl_class_names[c]);
		tlen += (size_t)snprintf(totals + tlen, sizeof(totals) - tlen, ", sum(%s) > 0", fl_class_names[c]);
	}
	snprintf(sql + len, sizeof(sql) - len, " FROM fault f JOIN process p ON p.id = f.proc_id"
		 " WHERE ?1 = 0 OR p.pid = ?1 GROUP BY f.proc_id, f.time_ns ORDER BY f.time_ns");
	snprintf(totals + tlen, sizeof(totals) - tlen, " FROM fault");
	if (!(st = fl_db_prepare(d, totals)))
		return -1;
	rc = fl_db_step(d, st);
	for (int c = 0; c < FL_NCLASSES; c++)
		any[c] = rc == SQLITE_ROW && sqlite3_column_int(st, 1 + c);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW || !(st = fl_db_prepare(d, sql)))
		return -1;
	sqlite3_bind_int64(st, 1, pid);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		event_head(j, "faults per drain", NULL, "C", sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 0),
			   us(d, sqlite3_column_int64(st, 1)));
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		for (int c = 0; c < FL_NCLASSES; c++)
			if (any[c])
				fl_json_kcol(j, fl_class_names[c], st, 2 + c);
		fl_json_close(j, '}');
		fl_json_close(j, '}');
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void call_args(struct fl_json *j, sqlite3_stmt *st, const char *kind)
{
	const char *const *names = NULL;
	char hex[32];

	for (size_t k = 0; k < sizeof(arg_names) / sizeof(arg_names[0]); k++)
		if (!strcmp(kind, arg_names[k].kind))
			names = arg_names[k].arg;
	for (int a = 0; a < 6; a++) {
		char generic[8];

		if (sqlite3_column_type(st, 5 + a) == SQLITE_NULL || (names && !names[a]))
			continue;
		snprintf(generic, sizeof(generic), "a%d", a);
		fl_json_kcol(j, names ? names[a] : generic, st, 5 + a);
	}
	if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)sqlite3_column_int64(st, 11));
		fl_json_kstr(j, "result", hex);
	}
	if (sqlite3_column_int(st, 12))
		fl_json_kcol(j, "errno", st, 12);
	if (sqlite3_column_type(st, 13) != SQLITE_NULL)
		fl_json_kcol(j, "path", st, 13);
	fl_json_kcol(j, "source", st, 14);
}

/* Every address-space call as an instant event on its thread. */
static int calls(struct fl_db *d, struct fl_json *j, int64_t pid)
{
	sqlite3_stmt *st = fl_db_prepare(d,
		"SELECT pid, tid, time_ns, kind, id, a0, a1, a2, a3, a4, a5, result, errno, path, source, stack_id"
		" FROM event WHERE ?1 = 0 OR pid = ?1 ORDER BY time_ns, id");
	int64_t nstacks;
	char **stacks = load_stack_texts(d, &nstacks);
	int rc = -1;

	if (!st || !stacks)
		goto out;
	sqlite3_bind_int64(st, 1, pid);
	while ((rc = fl_db_step(d, st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 3);
		int64_t stack = sqlite3_column_type(st, 15) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 15);

		event_head(j, kind ? kind : "?", "call", "i", sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
			   us(d, sqlite3_column_int64(st, 2)));
		fl_json_kstr(j, "s", "t");
		fl_json_key(j, "args");
		fl_json_open(j, '{');
		fl_json_kcol(j, "event", st, 4);
		call_args(j, st, kind ? kind : "");
		fl_json_kstr(j, "stack", stack >= 0 && stack < nstacks && stacks[stack] ? stacks[stack]
							 : "no user stack (seen by the kernel only)");
		fl_json_close(j, '}');
		fl_json_close(j, '}');
	}
	rc = rc == SQLITE_DONE ? 0 : -1;
out:
	for (int64_t i = 0; stacks && i < nstacks; i++)
		free(stacks[i]);
	free(stacks);
	sqlite3_finalize(st);
	return rc;
}

int fl_export_perfetto(struct fl_db *d, const struct fl_export *x)
{
	FILE *f = strcmp(x->out, "-") ? fopen(x->out, "w") : stdout;
	struct fl_json j;
	int rc;

	if (!f) {
		fprintf(stderr, "faultline: cannot write %s: %m\n", x->out);
		return 1;
	}
	fl_json_init(&j, f);
	j.compact = true;
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "displayTimeUnit", "ms");
	fl_json_key(&j, "otherData");
	fl_json_open(&j, '{');
	fl_json_kstr(&j, "producer", "faultline " FL_VERSION);
	fl_json_kstr(&j, "recording", d->path);
	fl_json_close(&j, '}');
	fl_json_key(&j, "traceEvents");
	fl_json_open(&j, '[');
	rc = processes(d, &j, x->pid) || rss_counters(d, &j, x->pid) || region_counters(d, &j, x) ||
	     fault_counters(d, &j, x->pid) ||
	     calls(d, &j, x->pid);
	fl_json_close(&j, ']');
	fl_json_close(&j, '}');
	if (ferror(f) || (f == stdout ? fflush(f) : fclose(f)))
		rc = -1;
	if (rc)
		fprintf(stderr, "faultline: %s: cannot write the trace\n", x->out);
	return rc ? 1 : 0;
}
