/* SPDX-License-Identifier: MIT */
/*
 * chan_dump - run a command under the shim and print every channel record,
 * one line each, for the preload tests to assert on.
 *
 *   chan_dump [-w WAIT_MS] [-p PAUSE_MS] [-o FILE] SHIM -- CMD ARGS...
 *
 * Creates the channel, runs CMD with LD_PRELOAD=SHIM and FAULTLINE_CHANNEL,
 * polls every 1 ms, retires a pid once it is gone (waitpid for the direct
 * child, a pidfd for every other ring owner), prints the losses and exits
 * with the child's status (128+N for signal N).  The command's own output
 * is untouched; records go to FILE (default stdout).  -p: do not read the
 * channel for the first PAUSE_MS (lets the target fill its ring).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"

#define KIND_NAME_(c, name, value) [FL_K_##c] = #name,
static const char *kinds[FL_K_COUNT] = { FL_KINDS(KIND_NAME_) };

struct tracked {
	__u32 pid;
	int pidfd;
};

static struct fl_channel *chan;
static FILE *out;
static struct tracked tr[4096];
static unsigned ntr;

static void print_rec(void *ctx, const struct fl_rec *r)
{
	(void)ctx;
	switch (r->type) {
	case FL_R_HELLO: {
		const struct fl_hello *h = (const void *)r;
		fprintf(out, "hello pid=%u ppid=%u ring=%d flags=%s%s%s%s abi=%u depth=%u nmappings=%u parent_seq=%llu time=%llu exe=%s\n",
			h->pid, h->ppid, fl_channel_current_ring(chan),
			h->flags ? "" : "none", h->flags & FL_HELLO_FORKED ? "forked" : "",
			h->flags & FL_HELLO_EXECED ? "execed" : "",
			h->flags & FL_HELLO_RESYNC ? "resync" : "",
			h->abi, h->depth, h->nmappings, (unsigned long long)h->parent_seq,
			(unsigned long long)h->time_ns, h->exe);
		break;
	}
	case FL_R_MAPPING: {
		const struct fl_mapping *m = (const void *)r;
		fprintf(out, "mapping pid=%u index=%u ring_pid=%u start=0x%llx end=0x%llx prot=%c%c%c flags=%u off=0x%llx dev=%x:%x inode=%llu path=%s\n",
			m->pid, m->index, fl_channel_current_pid(chan), (unsigned long long)m->start,
			(unsigned long long)m->end, m->prot & 1 ? 'r' : '-', m->prot & 2 ? 'w' : '-',
			m->prot & 4 ? 'x' : '-', m->flags, (unsigned long long)m->offset,
			m->dev_major, m->dev_minor, (unsigned long long)m->inode, m->path);
		break;
	}
	case FL_R_CALL: {
		const struct fl_call_rec *c = (const void *)r;
		const struct fl_call *k = &c->call;
		size_t fixed = sizeof(*c) + 8u * r->nframes;
		fprintf(out, "call pid=%u tid=%u seq=%llu kind=%s", k->pid, k->tid,
			(unsigned long long)k->seq, k->kind < FL_K_COUNT ? kinds[k->kind] : "?");
		for (int i = 0; i < 6; i++)
			fprintf(out, " a%d=0x%llx", i, (unsigned long long)k->args[i]);
		fprintf(out, " result=%lld err=%d nframes=%u frames=", (long long)k->result,
			k->err, r->nframes);
		for (unsigned i = 0; i < r->nframes; i++)
			fprintf(out, "%s0x%llx", i ? "," : "", (unsigned long long)c->frames[i]);
		if (r->size > fixed)
			fprintf(out, " name=%.*s", (int)(r->size - fixed), (const char *)c + fixed);
		fputc('\n', out);
		break;
	}
	case FL_R_NOTE: {
		const struct fl_note *n = (const void *)r;
		fprintf(out, "note pid=%u text=%.*s\n", n->pid, (int)sizeof(n->text), n->text);
		break;
	}
	default:
		fprintf(out, "record type=%u size=%u\n", r->type, r->size);
	}
}

static void retire(__u32 pid)
{
	fl_channel_poll(chan, print_rec, NULL);
	fl_channel_retire(chan, pid, print_rec, NULL);
	fprintf(out, "retire pid=%u\n", pid);
}

/* Track every ring owner we do not know yet; retire those already gone. */
static void track_owners(pid_t child)
{
	__u32 pids[FL_CHAN_RINGS];
	unsigned n = fl_channel_owners(chan, pids, FL_CHAN_RINGS);

	for (unsigned i = 0; i < n; i++) {
		unsigned j;
		if (pids[i] == (__u32)child)
			continue;
		for (j = 0; j < ntr && tr[j].pid != pids[i]; j++)
			;
		if (j < ntr || ntr == sizeof(tr) / sizeof(tr[0]))
			continue;
		int fd = (int)syscall(SYS_pidfd_open, pids[i], 0);
		if (fd < 0) {
			retire(pids[i]);  /* already gone (and reaped) */
			continue;
		}
		tr[ntr].pid = pids[i];
		tr[ntr].pidfd = fd;
		ntr++;
	}
	for (unsigned j = 0; j < ntr;) {
		struct pollfd p = { .fd = tr[j].pidfd, .events = POLLIN };
		if (poll(&p, 1, 0) == 1) {
			retire(tr[j].pid);
			close(tr[j].pidfd);
			tr[j] = tr[--ntr];
		} else {
			j++;
		}
	}
}

int main(int argc, char **argv)
{
	unsigned wait_ms = 10000, pause_ms = 0;
	int opt, status = 0, rc;
	pid_t child;

	out = stdout;
	while ((opt = getopt(argc, argv, "+w:p:o:")) != -1) {
		if (opt == 'p') {
			pause_ms = (unsigned)strtoul(optarg, NULL, 10);
		} else if (opt == 'w') {
			wait_ms = (unsigned)strtoul(optarg, NULL, 10);
		} else if (opt == 'o') {
			out = fopen(optarg, "we");
			if (!out) {
				perror(optarg);
				return 2;
			}
		} else {
			return 2;
		}
	}
	if (optind + 1 >= argc) {
		fprintf(stderr, "usage: chan_dump [-w WAIT_MS] [-p PAUSE_MS] [-o FILE] SHIM -- CMD ARGS...\n");
		return 2;
	}
	const char *shim = argv[optind++];
	if (!strcmp(argv[optind], "--"))
		optind++;
	rc = fl_channel_create(&chan, wait_ms);
	if (rc < 0) {
		fprintf(stderr, "chan_dump: channel: %s\n", strerror(-rc));
		return 2;
	}
	fflush(NULL);
	child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		setenv("LD_PRELOAD", shim, 1);
		setenv(FL_CHAN_ENV, fl_channel_path(chan), 1);
		execvp(argv[optind], argv + optind);
		perror(argv[optind]);
		_exit(127);
	}
	int child_done = 0;
	if (pause_ms) {
		struct timespec ts = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
	for (;;) {
		struct timespec ts = { 0, 1000000 };
		fl_channel_poll(chan, print_rec, NULL);
		track_owners(child);
		if (!child_done && waitpid(child, &status, WNOHANG) == child) {
			child_done = 1;
			retire((__u32)child);
		}
		if (child_done && ntr == 0 && fl_channel_owners(chan, NULL, 0) == 0)
			break;
		nanosleep(&ts, NULL);
	}
	struct fl_channel_loss l;
	fl_channel_loss(chan, &l);
	fprintf(out, "loss dropped=%llu no_ring=%llu unpublished=%llu corrupt=%llu stopped_timeout=%llu stopped_collector=%llu stopped_taken_over=%llu\n",
		(unsigned long long)l.dropped, (unsigned long long)l.no_ring,
		(unsigned long long)l.unpublished, (unsigned long long)l.corrupt,
		(unsigned long long)l.stopped_timeout, (unsigned long long)l.stopped_collector,
		(unsigned long long)l.stopped_taken_over);
	if (l.corrupt_why)
		fprintf(out, "corrupt why=%s\n", l.corrupt_why);
	fflush(out);
	fl_channel_destroy(chan);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
