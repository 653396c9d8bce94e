/* SPDX-License-Identifier: MIT */
/*
 * viewer.h - read-only queries over a recording.  Each command takes its
 * argv with argv[0] the subcommand name, prints to stdout, and returns the
 * process exit status: 0 ok, 1 error (message on stderr), 2 usage.
 */
#ifndef FL_VIEWER_H
#define FL_VIEWER_H

#include <stdint.h>
#include <stdio.h>

struct fl_db;

int fl_cmd_report(int argc, char **argv);
int fl_cmd_vmas(int argc, char **argv);
int fl_cmd_why(int argc, char **argv);
/* `why --format json` at the highest peak (of pid, 0: any) into out, for `html`: 0, 1 no sample, -1 error. */
int fl_why_json(struct fl_db *d, int64_t pid, int top, FILE *out);
int fl_cmd_faults(int argc, char **argv);
int fl_cmd_stacks(int argc, char **argv);
int fl_cmd_sql(int argc, char **argv);
/* check exits 0 pass, 1 a limit exceeded, 2 usage or input error, 3 the target failed. */
int fl_cmd_check(int argc, char **argv);
int fl_cmd_diff(int argc, char **argv);
/* Charts and files other tools open (viewer/timeline.c, export.c, html.c). */
int fl_cmd_timeline(int argc, char **argv);
int fl_cmd_export(int argc, char **argv);
int fl_cmd_html(int argc, char **argv);

#endif /* FL_VIEWER_H */
