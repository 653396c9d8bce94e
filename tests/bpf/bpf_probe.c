/* SPDX-License-Identifier: MIT */
/*
 * bpf_probe - test harness for the BPF side: run TARGET ARGS... under
 * fl_bpf, follow it and its descendants to their exits, then print what the
 * kernel side reported as text lines (parsed by bpf_test.py):
 *
 *   call KIND pid tid seq err result a0 a1 a2 a3 a4 a5
 *   fork pid tid ppid is_thread
 *   exec pid path
 *   exit pid tid code min maj base_min base_maj gup_min gup_maj
 *   rss pid time_ns anon file shmem swap
 *   fault tgid vm_start vm_end c0..c10 read write exec thp
 *   site tgid cls piece ip count kernel caller0..caller3
 *   loss ringbuf fault_map site_map pending find_vma thread_state
 *   status wait-status-of-root
 *
 * bpf_probe --doctor runs fl_bpf_doctor().
 *
 * Exit 77 when BPF cannot be used (unless FAULTLINE_REQUIRE_BPF=1).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "fl_bpf.h"

struct agg {
	struct fl_fault_key k;
	struct fl_fault_counts c;
};

struct site {
	struct fl_site_key k;
	__u64 n;
};

static struct agg *aggs;
static size_t naggs, capaggs;
static struct site *sites;
static size_t nsites, capsites;
static __u32 live[4096];   /* tgids followed and not yet exited */
static size_t nlive;
static __u32 root;
static int root_exited;

static void *grow(void *p, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 256;
	p = realloc(p, *cap * sz);
	if (!p) {
		perror("realloc");
		exit(1);
	}
	return p;
}

static void on_call(void *ctx, const struct fl_call *c)
{
	(void)ctx;
	printf("call %u %u %u %llu %d %lld %llx %llx %llx %llx %llx %llx\n", c->kind, c->pid,
	       c->tid, (unsigned long long)c->seq, c->err, (long long)c->result,
	       (unsigned long long)c->args[0], (unsigned long long)c->args[1],
	       (unsigned long long)c->args[2], (unsigned long long)c->args[3],
	       (unsigned long long)c->args[4], (unsigned long long)c->args[5]);
}

static void on_task(void *ctx, const struct fl_task *t)
{
	(void)ctx;
	switch (t->kind) {
	case FL_T_FORK:
		printf("fork %u %u %u %u\n", t->pid, t->tid, t->ppid, t->is_thread);
		if (!t->is_thread && nlive < sizeof(live) / sizeof(live[0]))
			live[nlive++] = t->pid;
		break;
	case FL_T_EXEC:
		printf("exec %u %s\n", t->pid, t->path);
		break;
	case FL_T_EXIT:
		printf("exit %u %u %d %llu %llu %llu %llu %llu %llu\n", t->pid, t->tid, t->exit_code,
		       (unsigned long long)t->min_flt, (unsigned long long)t->maj_flt,
		       (unsigned long long)t->base_min_flt, (unsigned long long)t->base_maj_flt,
		       (unsigned long long)t->gup_min_flt, (unsigned long long)t->gup_maj_flt);
		if (t->pid == root)
			root_exited = 1;
		for (size_t i = 0; i < nlive; i++)
			if (live[i] == t->pid)
				live[i] = live[--nlive];
		break;
	}
}

static void on_rss(void *ctx, const struct fl_rss *r)
{
	(void)ctx;
	printf("rss %u %llu %llu %llu %llu %llu\n", r->pid, (unsigned long long)r->time_ns,
	       (unsigned long long)r->anon, (unsigned long long)r->file,
	       (unsigned long long)r->shmem, (unsigned long long)r->swap);
}

static void on_faults(void *ctx, const struct fl_fault_key *k, const struct fl_fault_counts *c)
{
	size_t i;

	(void)ctx;
	/* one line per kernel VMA: the generations and pieces of a key are the collector's business */
	for (i = 0; i < naggs; i++)
		if (aggs[i].k.tgid == k->tgid && aggs[i].k.vm_start == k->vm_start && aggs[i].k.vm_end == k->vm_end &&
		    (k->vm_end || aggs[i].k.piece == k->piece))
			break;
	if (i == naggs) {
		aggs = grow(aggs, &capaggs, naggs, sizeof(*aggs));
		memset(&aggs[naggs], 0, sizeof(aggs[0]));
		aggs[naggs++].k = *k;
	}
	for (int j = 0; j < FL_F_NCLASS; j++)
		aggs[i].c.cls[j] += c->cls[j];
	aggs[i].c.read += c->read;
	aggs[i].c.write += c->write;
	aggs[i].c.exec += c->exec;
	aggs[i].c.thp += c->thp;
}

static void on_site(void *ctx, const struct fl_site_key *k, __u64 n)
{
	size_t i;

	(void)ctx;
	for (i = 0; i < nsites; i++)
		if (!memcmp(&sites[i].k, k, sizeof(*k)))
			break;
	if (i == nsites) {
		sites = grow(sites, &capsites, nsites, sizeof(*sites));
		sites[nsites].k = *k;
		sites[nsites++].n = 0;
	}
	sites[i].n += n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct fl_bpf_ops ops = { .call = on_call, .task = on_task, .rss = on_rss, .faults = on_faults,
				  .site = on_site };
	const char *req = getenv("FAULTLINE_REQUIRE_BPF");
	struct fl_bpf *b;
	struct fl_bpf_loss loss;
	char why[256];
	int pfd[2], rc, status = -1;
	double t0, last_drain = 0;
	pid_t child;

	if (argc < 2) {
		fprintf(stderr, "usage: bpf_probe TARGET [ARGS...]\n");
		return 2;
	}
	if (!strcmp(argv[1], "--doctor"))
		return fl_bpf_doctor(stdout);
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	prctl(PR_SET_CHILD_SUBREAPER, 1); /* reap the whole tree */
	if (pipe(pfd))
		return perror("pipe"), 1;
	child = fork();
	if (child < 0)
		return perror("fork"), 1;
	if (child == 0) {
		char c;

		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			_exit(125);
		close(pfd[0]);
		execv(argv[1], argv + 1);
		perror("execv");
		_exit(127);
	}
	close(pfd[0]);
	root = child;
	live[nlive++] = child;

	rc = fl_bpf_open(&b, &ops, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "bpf_probe: eBPF unavailable: %s\n", why);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return req && !strcmp(req, "1") ? 1 : 77;
	}
	rc = fl_bpf_track(b, child);
	if (rc) {
		fprintf(stderr, "bpf_probe: cannot track %d: %s\n", child, strerror(-rc));
		kill(child, SIGKILL);
		return 1;
	}
	if (write(pfd[1], "g", 1) != 1)
		return perror("write"), 1;
	close(pfd[1]);

	t0 = now_s();
	while (!root_exited || nlive) {
		struct pollfd p = { fl_bpf_fd(b), POLLIN, 0 };
		pid_t w;
		int st;

		poll(&p, 1, 50);
		if (fl_bpf_poll(b) < 0)
			break;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0)
			if (w == child)
				status = st;
		if (now_s() - last_drain > 0.2) {
			fl_bpf_drain(b); /* while faults are counted: exercises the diffing */
			last_drain = now_s();
		}
		if (now_s() - t0 > 120) {
			fprintf(stderr, "bpf_probe: timeout\n");
			break;
		}
	}
	fl_bpf_poll(b);
	fl_bpf_drain(b);
	while (waitpid(-1, &rc, 0) > 0 || errno == EINTR)
		;
	if (status == -1)
		status = rc;
	for (size_t i = 0; i < naggs; i++) {
		const struct agg *a = &aggs[i];

		printf("fault %u %llx %llx", a->k.tgid, (unsigned long long)(a->k.vm_end ? a->k.vm_start : a->k.piece),
		       (unsigned long long)a->k.vm_end);
		for (int j = 0; j < FL_F_NCLASS; j++)
			printf(" %llu", (unsigned long long)a->c.cls[j]);
		printf(" %llu %llu %llu %llu\n", (unsigned long long)a->c.read,
		       (unsigned long long)a->c.write, (unsigned long long)a->c.exec,
		       (unsigned long long)a->c.thp);
	}
	for (size_t i = 0; i < nsites; i++) {
		printf("site %u %u %llx %llx %llu %u", sites[i].k.tgid, sites[i].k.cls,
		       (unsigned long long)sites[i].k.piece, (unsigned long long)sites[i].k.ip,
		       (unsigned long long)sites[i].n, sites[i].k.kernel);
		for (int j = 0; j < FL_SITE_CALLERS; j++)
			printf(" %llx", (unsigned long long)sites[i].k.callers[j]);
		putchar('\n');
	}
	fl_bpf_loss(b, &loss);
	printf("loss %llu %llu %llu %llu %llu %llu\n", (unsigned long long)loss.ringbuf,
	       (unsigned long long)loss.fault_map, (unsigned long long)loss.site_map,
	       (unsigned long long)loss.pending, (unsigned long long)loss.find_vma,
	       (unsigned long long)loss.thread_state);
	printf("status %d\n", status);
	printf("elapsed %.3f\n", now_s() - t0);
	fl_bpf_close(b);
	return 0;
}
