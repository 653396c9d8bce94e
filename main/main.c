/* SPDX-License-Identifier: MIT */
/*
 * main.c - `faultline SUBCOMMAND ...`: `record` is the collector, the rest
 * are read-only viewers of a recording.  Lives apart from both, which
 * know nothing of each other.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "record.h"
#include "store.h"
#include "summary.h"
#include "viewer.h"
#if FL_HAVE_BPF
#include "fl_bpf.h"
#endif

static int cmd_doctor(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: faultline doctor\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "faultline doctor: takes no arguments, not '%s'\nusage: faultline doctor\n", argv[1]);
		return 2;
	}
#if FL_HAVE_BPF
	return fl_bpf_doctor(stdout);
#else
	printf("eBPF support: not built (meson -Dbpf=disabled or missing clang/bpftool/libbpf)\n"
	       "fidelity: shim only - address-space calls with stacks, RSS from /proc; no per-VMA faults\n");
	return 1;
#endif
}

/*
 * `faultline __keep-channel` (not for people): the channel keeper that
 * `record` starts when the target runs as another user (collector/launch.h).
 * Holds fd 3 (the channel) open; says its pid on fd 5 once it runs; exits
 * when fd 4 reaches end of file (the recorder exited).
 */
static int cmd_keep_channel(void)
{
	pid_t self = getpid();
	char c;
	if (write(5, &self, sizeof(self)) != sizeof(self))
		return 1;
	close(5);
	for (;;) {
		ssize_t n = read(4, &c, 1);
		if (n == 0 || (n < 0 && errno != EINTR))
			return 0;
	}
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "record", fl_cmd_record, "record [-o FILE] [--force] [--no-bpf] [--depth N] [--thp=never] [--heap-sample SIZE] -- CMD [ARGS...]" },
	{ "report", fl_cmd_report, "report FILE [--pid P] [--top N] [--all] [--pieces] [--format json]: run, losses, processes by peak RSS,\n"
	  "                  per process its top regions by resident bytes, calls, faults, heap, peak" },
	{ "why", fl_cmd_why, "why FILE [--pid P] [--at peak|end|TIME] [--top N] [--format json]: resident memory by\n"
	  "                  region and creator at the RSS peak (or TIME, or its end), adding up; estimated between samples" },
	{ "vmas", fl_cmd_vmas, "vmas FILE [--pid P] [--at TIME|end] [--pieces] [--format json]: mappings at a moment\n"
	  "                  (regions, or every recorded piece), resident bytes and faults" },
	{ "faults", fl_cmd_faults, "faults FILE --by region|vma|kind|file|site|stack|process [--class C] [--pid P] [--top N]\n"
	  "                  [--format json|csv]: page faults summed by one key, a column per class" },
	{ "stacks", fl_cmd_stacks, "stacks FILE ID [--format json]: a recorded call stack" },
	{ "sql", fl_cmd_sql, "sql FILE 'SELECT ...' [--format json]: read-only query" },
	{ "check", fl_cmd_check, "check [LIMITS] [--limits FILE] [--baseline OLD.db] [--junit FILE] (RUN.db | -- CMD [ARGS...]):\n"
	  "                  fail (exit 1) when a run exceeds its limits; exit 2 on bad input, 3 when the target failed" },
	{ "diff", fl_cmd_diff, "diff A.db B.db [--top N] [--format json]: what grew or shrank, per region and call site" },
	{ "timeline", fl_cmd_timeline, "timeline FILE [--pid P] [--by process|kind] [--top N] [--width COLS] [--format text|json|csv]:\n"
	  "                  resident memory over time, stacked, with the fault rate by class under it" },
	{ "export", fl_cmd_export, "export FILE --format pprof|perfetto|folded|csv -o OUT [--pid P] [--class C] [--table T]:\n"
	  "                  faults by stack for pprof and flame graphs, a Perfetto trace, a table as CSV" },
	{ "html", fl_cmd_html, "html FILE -o OUT.html [--pid P]: one self-contained page: RSS and faults over time, the peak,\n"
	  "                  regions, processes, losses" },
	{ "doctor", cmd_doctor, "doctor: what this machine allows, and the fidelity a run gets" },
};

static void usage(FILE *out)
{
	fprintf(out, "faultline %s - process memory profiler\n\nusage:\n", FL_VERSION);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  faultline %s\n", commands[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("faultline %s\n", FL_VERSION);
		return 0;
	}
	/* SQLite counts every allocation under a global mutex, locked even on a NOMUTEX
	 * connection; nobody here reads the count (the recorder's rows: ~4% of its CPU) */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (!strcmp(argv[1], "__keep-channel"))
		return cmd_keep_channel();
	/* `faultline __summarize FILE` (not for people): what a recording's close writes for its readers,
	 * for a recording built another way (bench/queries.py) */
	if (!strcmp(argv[1], "__summarize"))
		return fl_cmd_summarize(argc - 1, argv + 1);
	/* the recorder summarizes what it wrote for the viewers; neither knows the other */
	fl_store_summarize = fl_summary_store;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "faultline: unknown command '%s' (try 'faultline --help')\n", argv[1]);
	return 2;
}
