/* SPDX-License-Identifier: MIT */
/*
 * vmas.c - `faultline vmas FILE [--pid P] [--at TIME|end]`: the mappings
 * live at one moment, like /proc/PID/maps, with who created each.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "rows.h"
#include "output.h"
#include "viewer.h"

#define USAGE "vmas FILE [--pid P] [--at TIME|end] [--format json]"

struct vmas_opts {
	struct fl_cli cli;
	bool pid_set, at_end;
	int64_t pid, at;  /* at: nanoseconds after run start */
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
	return 2;
}

/* One /proc/PID/maps-like row plus size, kind, creation time and creator. */
static int vma_row(struct fl_db *d, struct fl_table *t, const struct fl_vma *v)
{
	char range[64], perms[8], offset[32], size[32], created[32], creator[1][512], who[600];

	if (fl_vma_creator(d, v, 1, creator) < 0)
		return -1;
	snprintf(range, sizeof(range), "%08" PRIx64 "-%08" PRIx64, (uint64_t)v->start, (uint64_t)v->end);
	snprintf(offset, sizeof(offset), "%08" PRIx64, (uint64_t)v->offset);
	if (v->event_id.set)
		snprintf(who, sizeof(who), "%s [event %" PRId64 "]", creator[0], v->event_id.v);
	else
		snprintf(who, sizeof(who), "%s", creator[0]);
	return fl_table_add(t, (const char *[]){ range, fl_out_perms(perms, sizeof(perms), v->prot, v->flags),
		offset, v->path ? v->path : "", fl_out_size(size, sizeof(size), v->end - v->start), v->kind,
		fl_out_reltime(created, sizeof(created), v->created_ns - d->start_ns), who });
}

static int print_text(struct fl_db *d, const struct fl_proc *p, int64_t t, bool at_end,
		      const struct fl_vma *v, int n)
{
	struct fl_table tab;
	char when[32], total[32];
	int64_t bytes = 0;
	int rc = 0;

	for (int i = 0; i < n; i++)
		bytes += v[i].end - v[i].start;
	fl_out_reltime(when, sizeof(when), t - d->start_ns);
	printf("process %" PRId64 " %s: %d VMAs, %s mapped at %s%s%s\n", p->pid, p->exe ? p->exe : "?", n,
	       fl_out_size(total, sizeof(total), bytes), at_end ? "its end (" : "", when, at_end ? ")" : "");
	fl_table_init(&tab, 8, 1u << 4);
	for (int i = 0; i < n && !rc; i++)
		rc = vma_row(d, &tab, &v[i]);
	fl_table_print(&tab, stdout, 0);
	fl_table_free(&tab);
	return rc;
}

/* The VMAs of p at the chosen moment, printed. Returns 0, 1 if p was not alive then, or -1. */
static int show_process(struct fl_db *d, struct vmas_opts *o, struct fl_json *j, const struct fl_proc *p,
			bool first)
{
	int64_t t = o->at_end ? fl_proc_end(d, p) : d->start_ns + o->at;
	struct fl_vma *v;
	int n, rc = 0;

	if (!o->at_end && !fl_proc_alive_at(p, t))
		return 1;
	n = fl_vma_select(d, p->id, t, o->at_end, "v.start, v.id", 0, &v);
	if (n < 0)
		return -1;
	if (j) {
		for (int i = 0; i < n; i++)
			fl_vma_json(d, j, &v[i]);
	} else {
		if (!first)
			putchar('\n');
		rc = print_text(d, p, t, o->at_end, v, n);
	}
	fl_vma_free(v, n);
	return rc;
}

int fl_cmd_vmas(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS,
		{ "pid", required_argument, NULL, 'p' }, { "at", required_argument, NULL, 'a' }, { 0 } };
	struct vmas_opts o = { .cli = { .usage = USAGE }, .at_end = true };
	struct fl_proc *procs = NULL;
	struct fl_json j;
	struct fl_db d;
	int rc = fl_cli_parse(&o.cli, argc, argv, ":hp:a:", options, on_option, &o), n, shown = 0, matched = 0;
	char when[32];

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return fl_cli_usage_error(&o.cli, argc - optind ? "too many arguments" : "no recording given");
	if (fl_db_open(&d, argv[optind]))
		return 1;
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
