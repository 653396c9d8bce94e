/* SPDX-License-Identifier: MIT */
/*
 * stacks.c - `faultline stacks FILE ID` and `faultline stacks FILE --event
 * EID`: every frame of a recorded call stack.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "rows.h"
#include "output.h"
#include "frames.h"
#include "viewer.h"

#define USAGE "stacks FILE ID | stacks FILE --event EID [--format json]"

struct stacks_opts {
	struct fl_cli cli;
	bool by_event;
	int64_t event_id;
};

static int parse_id(const char *s, int64_t *id)
{
	char *end;

	*id = strtoll(s, &end, 10);
	return *s && !*end && *id >= 0 ? 0 : -1;
}

static int on_option(void *ctx, int c, const char *arg)
{
	struct stacks_opts *o = ctx;

	if (c != 'e')
		return 2;
	if (parse_id(arg, &o->event_id))
		return fl_cli_usage_error(&o->cli, "--event wants an event id, not '%s'", arg);
	o->by_event = true;
	return -1;
}

static void frames_text(int64_t stack_id, const struct fl_frame *f, int n)
{
	struct fl_table t;

	printf("stack %" PRId64 ": %d frame%s\n", stack_id, n, n == 1 ? "" : "s");
	fl_table_init(&t, 5, 0);
	for (int i = 0; i < n; i++) {
		char idx[32], func[512], where[512] = "-", module[1024] = "-";

		snprintf(idx, sizeof(idx), "#%" PRId64, f[i].idx);
		if (f[i].file && f[i].has_line)
			snprintf(where, sizeof(where), "%s:%" PRId64, f[i].file, f[i].line);
		else if (f[i].file)
			snprintf(where, sizeof(where), "%s", f[i].file);
		if (f[i].module)
			snprintf(module, sizeof(module), "%s+0x%" PRIx64, f[i].module, (uint64_t)f[i].rel_addr);
		else
			snprintf(module, sizeof(module), "0x%" PRIx64, (uint64_t)f[i].rel_addr);
		fl_table_add(&t, (const char *[]){ idx, fl_frame_function(&f[i], func, sizeof(func)), where, module,
						   f[i].build_id ? f[i].build_id : "-" });
	}
	fl_table_print(&t, stdout, 2);
	fl_table_free(&t);
}

static void frames_json(struct fl_json *j, int64_t stack_id, const struct fl_frame *f, int n)
{
	fl_json_kint(j, "stack_id", stack_id);
	fl_json_kint(j, "depth", n);
	fl_json_key(j, "frames");
	fl_json_open(j, '[');
	for (int i = 0; i < n; i++)
		fl_frame_json(j, &f[i]);
	fl_json_close(j, ']');
}

/* The event's row: printed (text) or written as "event" (JSON); its stack id in *stack. */
static int show_event(struct fl_db *d, struct fl_json *j, int64_t id, struct fl_opt *stack)
{
	/* the first columns by name for the text, then all of them for JSON */
	sqlite3_stmt *st = fl_db_prepare(d, "SELECT kind, pid, tid, time_ns, errno, result, source, stack_id, *"
					    " FROM event WHERE id = ?");
	int rc = st ? (sqlite3_bind_int64(st, 1, id), fl_db_step(d, st)) : -1;
	char when[32], outcome[64];
	int err;

	if (rc == SQLITE_DONE)
		fprintf(stderr, "faultline: %s: no event %" PRId64 "\n", d->path, id);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return -1;
	}
	stack->set = sqlite3_column_type(st, 7) != SQLITE_NULL;
	stack->v = sqlite3_column_int64(st, 7);
	err = sqlite3_column_int(st, 4);
	if (j) {
		fl_json_key(j, "event");
		fl_json_open(j, '{');
		for (int i = 8; i < sqlite3_column_count(st); i++)
			fl_json_kcol(j, sqlite3_column_name(st, i), st, i);
		fl_json_close(j, '}');
	} else {
		if (err)
			snprintf(outcome, sizeof(outcome), "failed: %s", strerrorname_np(err) ?: "errno");
		else if (sqlite3_column_int64(st, 5) < 0)
			snprintf(outcome, sizeof(outcome), "result %lld", (long long)sqlite3_column_int64(st, 5));
		else
			snprintf(outcome, sizeof(outcome), "result %#llx", (unsigned long long)sqlite3_column_int64(st, 5));
		printf("event %" PRId64 ": %s in pid %lld tid %lld at %s, %s, source %s\n", id,
		       sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1),
		       (long long)sqlite3_column_int64(st, 2),
		       fl_out_reltime(when, sizeof(when), sqlite3_column_int64(st, 3) - d->start_ns), outcome,
		       sqlite3_column_text(st, 6));
	}
	sqlite3_finalize(st);
	return 0;
}

static int run(struct fl_db *d, struct stacks_opts *o, int64_t stack_id)
{
	struct fl_opt stack = { true, stack_id };
	struct fl_json j, *jp = NULL;
	struct fl_frame *frames = NULL;
	int n = 0, exists;

	if (o->cli.json) {
		fl_json_init(&j, stdout);
		jp = &j;
		fl_json_open(jp, '{');
	}
	if (o->by_event && show_event(d, jp, o->event_id, &stack))
		return -1;
	if (!stack.set) {
		if (jp) {
			fl_json_key(jp, "stack_id");
			fl_json_null(jp);
			fl_json_close(jp, '}');
		} else {
			printf("no user stack (seen by the kernel only)\n");
		}
		return 0;
	}
	exists = fl_stack_exists(d, stack.v);
	if (exists == 0)
		fprintf(stderr, "faultline: %s: no stack %" PRId64 "\n", d->path, stack.v);
	if (exists <= 0 || (n = fl_stack_load(d, stack.v, 0, &frames)) < 0)
		return -1;
	if (jp) {
		frames_json(jp, stack.v, frames, n);
		fl_json_close(jp, '}');
	} else {
		frames_text(stack.v, frames, n);
	}
	fl_stack_free(frames, n);
	return 0;
}

int fl_cmd_stacks(int argc, char **argv)
{
	static const struct option options[] = { FL_CLI_COMMON_OPTIONS,
		{ "event", required_argument, NULL, 'e' }, { 0 } };
	struct stacks_opts o = { .cli = { .usage = USAGE } };
	int rc = fl_cli_parse(&o.cli, argc, argv, ":he:", options, on_option, &o);
	int want = o.by_event ? 1 : 2;
	int64_t stack_id = 0;
	struct fl_db d;

	if (rc >= 0)
		return rc;
	if (argc - optind != want)
		return fl_cli_usage_error(&o.cli, argc - optind > want ? "too many arguments"
					  : argc - optind == 0 ? "no recording given" : "no stack id given");
	if (!o.by_event && parse_id(argv[optind + 1], &stack_id))
		return fl_cli_usage_error(&o.cli, "a stack id is a number, not '%s'", argv[optind + 1]);
	if (fl_db_open(&d, argv[optind]))
		return 1;
	rc = run(&d, &o, stack_id);
	fl_db_close(&d);
	return rc ? 1 : 0;
}
