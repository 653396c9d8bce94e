/* SPDX-License-Identifier: MIT */
/* cli.h - the option handling every viewer command shares. */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <getopt.h>
#include <stdbool.h>

struct fl_cli {
	const char *usage;  /* "report FILE [--format json]" */
	bool json;          /* --format json */
	bool csv_ok;        /* the command also takes --format csv */
	bool csv;           /* --format csv */
};

/* Long options every command accepts; put them in each command's table. */
#define FL_CLI_COMMON_OPTIONS \
	{ "format", required_argument, NULL, 'F' }, \
	{ "help", no_argument, NULL, 'h' }

/*
 * Parses argv (argv[0] the subcommand) with getopt_long; handles the common
 * options and getopt's errors, and passes the command's own options to
 * on_option.  Positional arguments are left in argv[optind..argc).
 * Returns -1 to go on, or the exit status to return (0 after --help, 2 on
 * a usage error).
 */
int fl_cli_parse(struct fl_cli *cli, int argc, char **argv, const char *shortopts,
		 const struct option *longopts, int (*on_option)(void *ctx, int c, const char *arg),
		 void *ctx);
/*
 * After fl_cli_parse, for the commands that read one recording: exactly one
 * positional argument, opened into d.  Returns -1 to go on, or the exit
 * status to return (2: no or too many arguments, 1: not readable).
 */
struct fl_db;
int fl_cli_open_recording(const struct fl_cli *cli, int argc, char **argv, struct fl_db *d);
/* Prints "faultline CMD: message" and the usage line to stderr; returns 2. */
int fl_cli_usage_error(const struct fl_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* FL_CLI_H */
