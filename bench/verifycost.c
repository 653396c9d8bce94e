// SPDX-License-Identifier: MIT
/*
 * verifycost - what the kernel's verifier spends on each of faultline's BPF
 * programs: each is loaded alone (its maps too), timed, and the verifier's
 * own statistics (log level 4: instructions processed, states) are printed.
 * The start-up cost of `faultline record` is mostly this (bench/peers.py).
 *
 * build: cc -O2 -I build/bpf -I common -I bpf bench/verifycost.c bpf/loader.c bpf/bootcache.c -lbpf -o verifycost
 * usage: verifycost [RUNS]   (root)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "fl_bpf.h"
#include "fl_kern.skel.h"

static int quiet(enum libbpf_print_level l, const char *f, va_list ap)
{
	(void)l; (void)f; (void)ap;
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Load only the program named want ("" = none: the maps alone). Returns ms, or -1. */
static double load_one(const char *want, long *insns, long *states)
{
	static char log[1 << 20];
	struct fl_kern *skel = fl_kern__open();
	struct bpf_program *p;
	double t0, t;
	char *s;
	int err;

	if (!skel)
		return -1;
	bpf_object__for_each_program(p, skel->obj) {
		int me = !strcmp(bpf_program__name(p), want);

		bpf_program__set_autoload(p, me);
		if (me) {
			log[0] = 0;
			bpf_program__set_log_buf(p, log, sizeof(log));
			bpf_program__set_log_level(p, 4);
		}
	}
	t0 = now_ms();
	err = fl_kern__load(skel);
	t = now_ms() - t0;
	fl_kern__destroy(skel);
	if (err)
		return -1;
	*insns = (s = strstr(log, "processed ")) ? strtol(s + 10, NULL, 10) : 0;
	*states = (s = strstr(log, "total_states ")) ? strtol(s + 13, NULL, 10) : 0;
	return t;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 3;
	struct fl_kern *skel;
	struct bpf_program *p;
	const char *names[64];
	int n = 0;
	double base = 1e9, sum = 0;
	long insns, states;

	struct fl_cap caps[FL_CAP_N];

	libbpf_set_print(quiet);
	if (fl_bpf_probe(caps) || fl_bpf_use_boot_ids()) /* loaded as faultline loads them (loader.c) */
		return 1;
	skel = fl_kern__open();
	if (!skel)
		return 1;
	bpf_object__for_each_program(p, skel->obj)
		if (n < 64)
			names[n++] = strdup(bpf_program__name(p));
	fl_kern__destroy(skel);
	for (int r = 0; r < runs; r++) {
		double t = load_one("", &insns, &states);

		if (t >= 0 && t < base)
			base = t;
	}
	printf("%-16s %9s %10s %8s   (best of %d, maps alone %.1f ms)\n", "program", "verify ms", "insns", "states",
	       runs, base);
	for (int i = 0; i < n; i++) {
		double best = 1e9;

		for (int r = 0; r < runs; r++) {
			double t = load_one(names[i], &insns, &states);

			if (t >= 0 && t < best)
				best = t;
		}
		if (best == 1e9) {
			printf("%-16s   refused\n", names[i]);
			continue;
		}
		printf("%-16s %9.1f %10ld %8ld\n", names[i], best - base, insns, states);
		sum += best - base;
	}
	printf("%-16s %9.1f\n", "sum", sum);
	return 0;
}
