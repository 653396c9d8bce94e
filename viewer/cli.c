/* SPDX-License-Identifier: MIT */
/* cli.c - the option handling every viewer command shares. */
#include "cli.h"
#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fl_cli_usage_error(const struct fl_cli *cli, const char *fmt, ...)
{
	va_list ap;

	fputs("faultline: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: faultline %s\n", cli->usage);
	return 2;
}

int fl_cli_parse(struct fl_cli *cli, int argc, char **argv, const char *shortopts,
		 const struct option *longopts, int (*on_option)(void *ctx, int c, const char *arg),
		 void *ctx)
{
	int c, rc;

	optind = 0; /* glibc: restart scanning from argv[1] */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'F':
			cli->json = !strcmp(optarg, "json");
			cli->csv = cli->csv_ok && !strcmp(optarg, "csv");
			if (!cli->json && !cli->csv && strcmp(optarg, "text"))
				return fl_cli_usage_error(cli, "unknown format '%s' (text, json%s)", optarg,
							  cli->csv_ok ? " or csv" : "");
			break;
		case 'h':
			printf("usage: faultline %s\n", cli->usage);
			return 0;
		case ':':
			return fl_cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
		case '?':
			if (optopt)
				return fl_cli_usage_error(cli, "unknown option '-%c'", optopt);
			return fl_cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
		default:
			rc = on_option ? on_option(ctx, c, optarg) : 2;
			if (rc >= 0)
				return rc;
		}
	}
	return -1;
}

int fl_cli_open_recording(const struct fl_cli *cli, int argc, char **argv, struct fl_db *d)
{
	if (argc - optind != 1)
		return fl_cli_usage_error(cli, argc - optind ? "too many arguments" : "no recording given");
	return fl_db_open(d, argv[optind]) ? 1 : -1;
}
