/* SPDX-License-Identifier: MIT */
/*
 * record.c - `faultline record`: launch the command held, attach BPF to it
 * (or say why not), release it, and run the event loop until every tracked
 * process has exited: shim channel, BPF ring buffer, signals, process exits.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpfdec.h"
#include "consumer.h"
#include "faults.h"
#include "identity.h"
#include "ingest.h"
#include "launch.h"
#include "monotime.h"
#include "procfs.h"
#include "record.h"
#include "shimdec.h"
#include "store.h"
#include "strtab.h"
#if FL_HAVE_BPF
#include "fl_bpf.h"
#endif

/* faultline's own failures exit with this, like env(1) and timeout(1), so they differ from the target's */
#define EXIT_FAULTLINE 125
#define TICK_COMMIT_NS 250000000ULL
#define TICK_SAMPLE_NS 50000000ULL
#define TICK_DRAIN_NS 100000000ULL

struct options {
	const char *output;
	bool force, no_bpf, thp_never;
	const char *user;       /* --user NAME */
	unsigned depth;
	unsigned long long heap_sample; /* mean bytes between heap samples: 0 off, 1 every allocation */
	char **argv;
};

struct recorder {
	struct options opt;
	struct fl_store *store;
	struct fl_channel *chan;
	struct fl_ingest *ingest;
	struct fl_launch launch;
	struct fl_launch_user user; /* who the target runs as, when launch.user */
	int epfd, sigfd;
	bool root_done, stop;
	__u64 root_done_ns;
	bool said_waiting;      /* "waiting for N background processes" was printed */
	bool setup_failed;      /* nothing recorded: the file is discarded */
	int exit_status;        /* the root's, as a shell reports it */
	__u64 last_commit, last_sample, last_drain;
#if FL_HAVE_BPF
	struct fl_bpf *bpf;
	bool bpf_loss_read;         /* bpf_loss holds the kernel side's final losses */
	struct fl_bpf_loss bpf_loss;
	bool unloading;             /* unloader is unloading the kernel side (unload_early) */
	pthread_t unloader;
#endif
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: faultline record [-o FILE] [--force] [--no-bpf] [--depth N] [--thp=never] [--heap-sample SIZE]\n"
		"                        [--user NAME]\n"
		"                        [--] CMD [ARGS...]\n"
		"  -o, --output FILE  recording to write (default faultline.db)\n"
		"  -f, --force        overwrite FILE if it exists\n"
		"  --no-bpf           record with the preload shim only (no per-VMA fault counts)\n"
		"  --depth N          call stack depth, 1..%d (default %d)\n"
		"  --thp=never        run CMD with transparent huge pages off (reproducible fault counts)\n"
		"  --heap-sample SIZE sample one heap allocation per SIZE bytes on average (default 512K;\n"
		"                     suffixes K M G); 1 records every allocation, 0 turns heap tracking off\n"
		"  --user NAME        run CMD as NAME (with its groups, HOME, USER, SHELL); faultline keeps root\n"
		"                     for eBPF.  Under sudo this is the default: CMD runs as the sudo caller\n"
		"faultline exits with CMD's status (128+N if a signal N killed it), or %d if it failed itself.\n",
		FL_MAX_FRAMES, FL_DEFAULT_FRAMES, EXIT_FAULTLINE);
}

/* "4096", "512K", "1M", "2G" into bytes.  Returns 0, or -1 if it is not a size. */
static int parse_size(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (end == s || *s == '-' || errno)
		return -1;
	if (*end && !end[1])
		shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 :
			*end == 'G' || *end == 'g' ? 30 : 64;
	else if (*end)
		shift = 64;
	if (shift == 64 || v > (~0ULL >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* Parse options up to the command. Returns 0, or the exit status for a usage error. */
static int parse(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .output = "faultline.db", .depth = FL_DEFAULT_FRAMES,
			       .heap_sample = FL_HEAP_MEAN_DEFAULT };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strncmp(a, "--output=", 9) && a[9]) {
			o->output = a + 9;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr, "faultline record: %s needs a file name\n", a);
				usage(stderr);
				return 2;
			}
			o->output = argv[++i];
		} else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
			o->force = true;
		} else if (!strcmp(a, "--no-bpf")) {
			o->no_bpf = true;
		} else if (!strcmp(a, "--thp=never")) {
			o->thp_never = true;
		} else if (!strcmp(a, "--depth") && i + 1 < argc) {
			char *end;
			long d = strtol(argv[++i], &end, 10);
			if (*end || d < 1 || d > FL_MAX_FRAMES) {
				fprintf(stderr, "faultline record: --depth takes 1..%d\n", FL_MAX_FRAMES);
				return 2;
			}
			o->depth = (unsigned)d;
		} else if (!strcmp(a, "--heap-sample") && i + 1 < argc) {
			if (parse_size(argv[++i], &o->heap_sample)) {
				fprintf(stderr, "faultline record: --heap-sample takes a size in bytes (suffix K, M or G), "
					"1 for every allocation or 0 for none, not '%s'\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(a, "--user") || !strncmp(a, "--user=", 7)) {
			o->user = a[6] == '=' ? a + 7 : i + 1 < argc ? argv[++i] : "";
			if (!*o->user) {
				fprintf(stderr, "faultline record: --user needs a user name\n");
				return 2;
			}
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return -1;
		} else {
			fprintf(stderr, "faultline record: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "faultline record: no command given\n");
		usage(stderr);
		return 2;
	}
	o->argv = argv + i;
	return 0;
}

/* ---- BPF ------------------------------------------------------------------------------ */

/* Say once, plainly, that the run has no eBPF and what it still records. Returns the fidelity note. */
static const char *no_bpf(const char *reason, char *why, size_t len)
{
	fprintf(stderr, "faultline: eBPF unavailable (%s); recording address-space calls with the "
			"shim only, no per-VMA page faults - use --no-bpf to silence\n", reason);
	snprintf(why, len, "eBPF unavailable: %s", reason);
	return why;
}

#if FL_HAVE_BPF
static struct recorder *bpf_recorder; /* for the task callback, which must retire rings first */

static void on_bpf_task(void *ctx, const struct fl_task *t)
{
	/* a process's shim records precede its exit: deliver them before the exit ends it */
	if (t->kind == FL_T_EXIT)
		fl_channel_retire(bpf_recorder->chan, t->pid, fl_shimdec_record, ctx);
	fl_bpfdec_task(ctx, t);
}

/* Attach BPF, or say once why not. Returns the fidelity note (NULL: full fidelity). */
static const char *start_bpf(struct recorder *r, char *why, size_t len)
{
	if (r->opt.no_bpf) {
		snprintf(why, len, "--no-bpf: shim only");
		return why;
	}
	struct fl_bpf_ops ops = {
		.ctx = r->ingest, .call = fl_bpfdec_call, .task = on_bpf_task, .rss = fl_bpfdec_rss,
		.vma = fl_bpfdec_vma, .faults = fl_faults_add, .site = fl_faults_add_site,
	};
	char reason[256] = "";
	if (fl_bpf_open(&r->bpf, &ops, reason, sizeof(reason)) < 0) {
		r->bpf = NULL;
		return no_bpf(reason, why, len);
	}
	for (const struct fl_cap *c = fl_bpf_caps(r->bpf); c < fl_bpf_caps(r->bpf) + FL_CAP_N; c++) {
		char how[512];

		snprintf(how, sizeof(how), "%s%s", c->how ? c->how : "",
			 c->pretended ? " (the kernel has it: FAULTLINE_PRETEND_MISSING)" : "");
		fl_store_kernel_feature(r->store, c->name, fl_cap_state_name(c->state), c->what,
					c->how ? how : NULL);
	}
	bpf_recorder = r;
	return NULL;
}

static int bpf_poll(struct recorder *r)
{
	return r->bpf ? fl_bpf_poll(r->bpf) : 0;
}

static bool bpf_on(const struct recorder *r)
{
	return r->bpf != NULL;
}

/*
 * About to sleep in epoll_wait: BPF's records wake the loop from now on.
 * Returns how many came meanwhile (then it must not sleep).
 */
static int bpf_sleep(struct recorder *r)
{
	return r->bpf ? fl_bpf_sleep(r->bpf) : 0;
}

static void bpf_awake(struct recorder *r)
{
	if (r->bpf)
		fl_bpf_awake(r->bpf);
}

static bool bpf_drain_wanted(const struct recorder *r)
{
	return r->bpf && fl_bpf_drain_wanted(r->bpf);
}

/* Wake the loop when BPF writes a record (data 1), instead of polling the ring on a timer. */
static int watch_bpf_ring(struct recorder *r)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
	return r->bpf && epoll_ctl(r->epfd, EPOLL_CTL_ADD, fl_bpf_fd(r->bpf), &ev) ? -errno : 0;
}

/* The kernel side's losses, once nothing more can come from it. */
static void read_bpf_losses(struct recorder *r)
{
	if (r->bpf) {
		fl_bpf_loss(r->bpf, &r->bpf_loss);
		r->bpf_loss_read = true;
	}
}

static void *unload(void *b)
{
	fl_bpf_close(b);
	return NULL;
}

/*
 * Every process ended and the loop read their last records: the kernel side
 * has nothing more to give.  Its losses are read now and it is unloaded on a
 * thread, beside the close's symbolizing and summaries: unregistering each
 * tracepoint rewrites kernel text with IPIs to every CPU, 4-7 ms of `record
 * -- true` on this 2-CPU VM, which now ends ~2.5 ms sooner.  (A recording
 * stopped by a signal keeps it to the end: its live processes' last smaps
 * reads drain their faults.)
 */
static void unload_early(struct recorder *r)
{
	if (!r->bpf || fl_ingest_alive(r->ingest))
		return;
	read_bpf_losses(r);
	r->unloading = !pthread_create(&r->unloader, NULL, unload, r->bpf);
	if (!r->unloading)
		fl_bpf_close(r->bpf);
	r->bpf = NULL;
}

/* Read the fault counts, then the records written before them, then attribute the counts. */
static void bpf_drain(struct recorder *r)
{
	if (!r->bpf)
		return;
	__u64 read_at = fl_mono_ns();
	fl_bpf_drain(r->bpf);
	fl_bpf_poll(r->bpf);
	fl_faults_attribute(r->ingest, read_at, false);
}
#else
static const char *start_bpf(struct recorder *r, char *why, size_t len)
{
	if (r->opt.no_bpf) {
		snprintf(why, len, "--no-bpf: shim only");
		return why;
	}
	return no_bpf("this faultline was built without eBPF support", why, len);
}
static int bpf_poll(struct recorder *r) { (void)r; return 0; }
static int bpf_sleep(struct recorder *r) { (void)r; return 0; }
static void bpf_awake(struct recorder *r) { (void)r; }
static bool bpf_drain_wanted(const struct recorder *r) { (void)r; return false; }
static bool bpf_on(const struct recorder *r) { (void)r; return false; }
static void bpf_drain(struct recorder *r) { (void)r; }
static void unload_early(struct recorder *r) { (void)r; }
#endif

/* ---- the loop ---------------------------------------------------------------------------- */

static void watch_new_processes(struct recorder *r)
{
	pid_t pid;
	while ((pid = fl_ingest_next_watch(r->ingest))) {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0) { /* already gone */
			/* its BPF exit record, with the exit code, was written before it was
			 * reaped: read it first, or the records of its life still unread
			 * would make a second, empty process of that pid */
			bpf_poll(r);
			fl_channel_retire(r->chan, (__u32)pid, fl_shimdec_record, r->ingest);
			fl_ingest_exit(r->ingest, pid, fl_mono_ns(), -1, -1);
			continue;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (__u64)fd << 32 | (__u32)pid };
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev))
			close(fd);
	}
}

/* A watched process (not the root) exited. */
static void on_pidfd(struct recorder *r, __u64 data)
{
	int fd = (int)(data >> 32);
	pid_t pid = (pid_t)(__u32)data;
	int st;
	bpf_poll(r); /* its BPF exit record, with the exit code, was written before the pidfd woke */
	fl_channel_retire(r->chan, (__u32)pid, fl_shimdec_record, r->ingest);
	/* shim mode: not our child, but while its parent has not reaped it, /proc tells how it
	 * ended; once reaped, its parent's shim may have said (FL_R_REAPED, settled at the end) */
	if (!bpf_on(r) && fl_ingest_zombie(r->ingest, pid, &st) == 0) {
		fl_ingest_exit(r->ingest, pid, fl_mono_ns(), WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			       WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	} else {
		fl_ingest_exit(r->ingest, pid, fl_mono_ns(), -1, -1);
	}
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* The process pid, reaped, ended with wait status st. */
static void ended(struct recorder *r, pid_t pid, int st)
{
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1, sig = WIFSIGNALED(st) ? WTERMSIG(st) : -1;
	if (pid == r->launch.pid) {
		r->exit_status = sig >= 0 ? 128 + sig : code;
		r->root_done = true;
		r->root_done_ns = fl_mono_ns();
	}
	fl_ingest_exit(r->ingest, pid, fl_mono_ns(), code, sig);
}

/*
 * Reap our children: the launched process and, faultline being a subreaper
 * (PR_SET_CHILD_SUBREAPER), every descendant orphaned on the way: a daemon,
 * `cmd &` outliving its shell, the middle of a fork-then-exit chain.  Their
 * exit status is the kernel's.  While each is a zombie: its records first
 * (BPF's exit record, the shim's hello that makes it known), then its final
 * fault counts from /proc (shim mode), then the reap.
 */
static void reap(struct recorder *r)
{
	for (;;) {
		siginfo_t si = { 0 };
		int st;
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) || !si.si_pid)
			return;
		bpf_poll(r);
		fl_channel_retire(r->chan, (__u32)si.si_pid, fl_shimdec_record, r->ingest);
		if (si.si_pid != r->launch.pid)
			fl_ingest_orphan(r->ingest, si.si_pid, fl_mono_ns());
		int zst;
		fl_ingest_zombie(r->ingest, si.si_pid, &zst);
		if (waitpid(si.si_pid, &st, WNOHANG) != si.si_pid)
			return;
		ended(r, si.si_pid, st);
	}
}

/* Does faultline still have a child?  After the launched process, that is
 * whether any descendant lives (each one's oldest living ancestor has been
 * reparented to us). */
static bool have_children(void)
{
	siginfo_t si = { 0 };
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* How many children faultline has now (the orphans: background processes). */
static unsigned count_children(void)
{
	char path[64], buf[4096];
	unsigned n = 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	for (char *p = strtok(buf, " \n"); p; p = strtok(NULL, " \n"))
		n++;
	return n;
}

/*
 * SIGINT, SIGQUIT, SIGTERM, SIGHUP: as a shell does with its foreground
 * job.  Ctrl-C at the terminal reaches the whole foreground process group,
 * the target too (the kernel sends it: SI_KERNEL; so does a hangup), so
 * faultline only waits for the target to act on it.  Sent by a process to faultline alone
 * (kill: SI_USER, sigqueue, tgkill), it was meant for the target: passed
 * on.  Once the target is gone, any of them stops waiting for background
 * descendants, and the recording is closed as usual.
 */
static void on_stop_signal(struct recorder *r, const struct signalfd_siginfo *si)
{
	if (r->root_done)
		r->stop = true;
	else if (si->ssi_code != SI_KERNEL)
		kill(r->launch.pid, (int)si->ssi_signo);
}

/* The target exited but descendants live on (a daemon, `cmd &`): say what faultline waits for, once. */
#define WAITING_SAY_NS 300000000ULL
static void say_waiting(struct recorder *r, __u64 now)
{
	unsigned n = fl_ingest_alive(r->ingest);
	if (!r->said_waiting && r->root_done && !n)
		n = count_children(); /* orphans the shim does not speak for */
	if (r->said_waiting || !r->root_done || !n || now - r->root_done_ns < WAITING_SAY_NS)
		return;
	fprintf(stderr, "faultline: %s exited; waiting for %u background process%s; Ctrl-C to stop\n",
		r->opt.argv[0], n, n == 1 ? "" : "es");
	r->said_waiting = true;
}

static void on_signal(struct recorder *r)
{
	struct signalfd_siginfo si;
	while (read(r->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(r);
			break;
		default:
			on_stop_signal(r, &si);
		}
	}
}

/* A process waits at exit for its last smaps read (common/channel.h): stop symbolizing, answer it. */
static bool exit_waiting(void *ctx)
{
	return fl_channel_exit_waiting(((struct recorder *)ctx)->chan);
}

static void tick(struct recorder *r, __u64 now, bool quiet)
{
	if (now - r->last_drain >= TICK_DRAIN_NS || bpf_drain_wanted(r)) {
		bpf_drain(r);
		r->last_drain = now;
	}
	if (now - r->last_sample >= TICK_SAMPLE_NS) {
		fl_ingest_sample(r->ingest, now, quiet);
		r->last_sample = now;
	}
	if (now - r->last_commit >= TICK_COMMIT_NS) {
		/*
		 * Store the names the symbolizer's thread made meanwhile, when
		 * nothing waits for us.  Without that thread the frames are named
		 * here, a process waiting at exit stopping it between frames
		 * (opening a module is one step, up to 100 ms: an exit wait that
		 * falls in it can run out, loss smaps_exit_late).
		 */
		if (quiet)
			fl_ingest_symbolize(r->ingest, exit_waiting, r);
		fl_store_commit(r->store);
		r->last_commit = now;
	}
}

/*
 * How the loop waits after a round.  Not at all while records flow
 * (producers may be waiting on a full ring).  After the first empty round
 * it naps NAP_MS without asking BPF for a wake-up: a target busy with calls
 * has more records by then, and a wake-up costs the target's CPU an irq_work
 * self-IPI, in a VM an exit to the host (churn: ~17k of them, 27 us each,
 * when the loop slept after every round it caught up).  A shim producer
 * meanwhile fills at most NAP_MS of its 512-slot ring.  After an empty nap
 * it sleeps until woken: IDLE_MIN_MS, then twice as long after each empty
 * round, up to a cap.  The channel has no fd to wake us; with BPF every call
 * the shim records is a syscall whose BPF record does (the ring's fd is in
 * the epoll set), so the cap is the fault drain's period there, and the
 * /proc sampling period in shim mode.
 */
#define NAP_MS 1
#define IDLE_MIN_MS 2
struct pace {
	int ms;    /* epoll_wait's timeout */
	bool wake; /* BPF records wake us meanwhile (bpf_sleep) */
};

static struct pace next_pace(const struct recorder *r, bool busy, struct pace last)
{
	int cap = (int)((bpf_on(r) ? TICK_DRAIN_NS : TICK_SAMPLE_NS) / 1000000);
	if (busy)
		return (struct pace){ 0, false };
	if (!last.ms)
		return (struct pace){ NAP_MS, false };
	if (!last.wake)
		return (struct pace){ IDLE_MIN_MS, true };
	return (struct pace){ last.ms * 2 < cap ? last.ms * 2 : cap, true };
}

static void loop(struct recorder *r)
{
	bool busy = false;
	struct pace pace = { 0, false };
	while (!r->stop && !(r->root_done && fl_ingest_alive(r->ingest) == 0 && !have_children())) {
		struct epoll_event ev[16];
		pace = next_pace(r, busy, pace);
		int got = pace.wake ? bpf_sleep(r) : 0;
		int n = epoll_wait(r->epfd, ev, 16, got ? 0 : pace.ms);
		if (pace.wake)
			bpf_awake(r);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == 0)
				on_signal(r);
			else if (ev[i].data.u64 != 1)
				on_pidfd(r, ev[i].data.u64);
		}
		__u64 channel_ns = fl_mono_ns();
		got += fl_channel_poll(r->chan, fl_shimdec_record, r->ingest);
		__u64 ring_ns = fl_mono_ns();
		got += bpf_poll(r);
		fl_ingest_drained(r->ingest, fl_mono_ns());
		fl_channel_exit_release(r->chan); /* a shim waiting at exit that no read answered */
		fl_ingest_settle(r->ingest, channel_ns, ring_ns);
		busy = got > 0;
		if (n > 0) /* woken (BPF record, signal, exit): look again soon */
			pace = (struct pace){ 0, false };
		watch_new_processes(r);
		tick(r, fl_mono_ns(), !busy);
		say_waiting(r, fl_mono_ns());
	}
	fl_channel_poll(r->chan, fl_shimdec_record, r->ingest);
	bpf_poll(r);
	bpf_drain(r);
}

/* ---- setup and teardown ------------------------------------------------------------------ */

static int setup_loop(struct recorder *r, sigset_t *orig)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &mask, orig))
		return -errno;
	r->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->sigfd < 0 || r->epfd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	return epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->sigfd, &ev) ? -errno : 0;
}

static void record_losses(struct recorder *r)
{
	struct fl_channel_loss cl;
	fl_channel_loss(r->chan, &cl);
	fl_store_loss(r->store, "channel_dropped", cl.dropped,
		      "shim records dropped after waiting for a full ring");
	fl_store_loss(r->store, "no_ring", cl.no_ring, "process images that found no free channel ring");
	fl_store_loss(r->store, "unpublished", cl.unpublished,
		      "shim records reserved but never published (the writer died mid-record)");
	fl_store_loss(r->store, "channel_corrupt", cl.corrupt,
		      "shim records or ring state that failed the collector's checks (written over by the target)");
	if (cl.corrupt_why)
		fl_store_message(r->store, 0, 0, cl.corrupt_why);
	fl_store_loss(r->store, "channel_unidentified", cl.unidentified,
		      "shim records of a ring whose claimed owner the kernel does not know as a process of the "
		      "recorded tree (not read, not believed)");
	fl_store_loss(r->store, "shim_stopped_timeout", cl.stopped_timeout,
		      "processes whose shim stopped recording: a record waited too long for a full ring");
	fl_store_loss(r->store, "shim_stopped_collector", cl.stopped_collector,
		      "processes whose shim stopped recording: the collector looked dead or stopped");
	fl_store_loss(r->store, "shim_stopped_taken_over", cl.stopped_taken_over,
		      "processes whose shim stopped recording: the program unmapped or remapped its ring");
#if FL_HAVE_BPF
	read_bpf_losses(r);
	if (r->bpf_loss_read) {
		const struct fl_bpf_loss bl = r->bpf_loss;
		fl_store_loss(r->store, "bpf_ringbuf", bl.ringbuf, "BPF records not written: ring buffer full");
		fl_store_loss(r->store, "bpf_fault_map", bl.fault_map, "faults not counted: aggregate map full");
		fl_store_loss(r->store, "bpf_site_map", bl.site_map, "fault sites not counted: site map full");
		fl_store_loss(r->store, "bpf_pending", bl.pending, "syscalls whose entry could not be kept");
		fl_store_loss(r->store, "bpf_ia32", bl.ia32, "32-bit (ia32) system calls: not recorded, "
			      "the VMA model misses what they mapped");
		fl_store_loss(r->store, "bpf_find_vma", bl.find_vma,
			      "faults counted by address: the VMA could not be read (classes from rss evidence only)");
		fl_store_loss(r->store, "bpf_cuts", bl.cuts,
			      "call boundaries not remembered (map full): faults may land on a merged neighbour");
	}
#endif
}

static void run_info(struct recorder *r, const char *note, __u64 start)
{
	static char host[256], cwd[4096];
	static struct utsname un;
	gethostname(host, sizeof(host) - 1);
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = 0;
	uname(&un);
	struct fl_run_info ri = {
		.version = FL_VERSION, .argv = r->opt.argv, .cwd = cwd, .host = host, .kernel = un.release,
		.page_size = sysconf(_SC_PAGESIZE), .fidelity = note ? "shim" : "bpf", .fidelity_note = note,
		.stack_depth = r->opt.depth, .start_ns = start, .start_unix = time(NULL),
	};
	fl_store_run_begin(r->store, &ri);
}

static void teardown(struct recorder *r)
{
	fl_channel_destroy(r->chan);
#if FL_HAVE_BPF
	if (r->unloading)
		pthread_join(r->unloader, NULL);
	if (r->bpf)
		fl_bpf_close(r->bpf);
#endif
	fl_ingest_free(r->ingest);
	fl_strtab_free();
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->sigfd >= 0)
		close(r->sigfd);
}

/* faultline could not start recording: the file is worth nothing. */
static int setup_failed(struct recorder *r)
{
	r->setup_failed = true;
	return EXIT_FAULTLINE;
}

/* ---- identity: the channel's ring owners as the kernel knows them (identity.h) ---------- */

static __u32 ident_ring(void *ctx, __u32 claimed, __u64 ino, __u64 offset)
{
	return fl_identify(((struct recorder *)ctx)->launch.pid, claimed, ino, offset);
}

static __u32 ident_tid(void *ctx, __u32 host, __u32 ns_tid)
{
	(void)ctx;
	return fl_identify_tid(host, ns_tid);
}

static __u32 ident_parent(void *ctx, __u32 host)
{
	(void)ctx;
	return fl_identify_parent(host);
}

static void exit_hint(void *ctx, __u32 pid, __u32 min_age_ms)
{
	fl_channel_exit_hint(((struct recorder *)ctx)->chan, pid, min_age_ms);
}

static void drain_faults(void *ctx)
{
	struct recorder *r = ctx;
	bpf_drain(r);
	r->last_drain = fl_mono_ns();
}

static int exit_done(void *ctx, __u32 pid)
{
	return fl_channel_exit_done(((struct recorder *)ctx)->chan, pid);
}

/* Everything after the store exists. Returns the exit status. */
static int record(struct recorder *r)
{
	char why[300], shimbuf[4096];
	sigset_t orig;
	__u64 start = fl_mono_ns();
	const char *shim = fl_launch_find_shim(shimbuf, sizeof(shimbuf));
	fl_procfs_know_file(shim, NULL);
	fl_procfs_know_own_files();
	int rc = fl_channel_create(&r->chan, 10000);
	if (!rc) {
		/* what /proc/PID/maps calls it (memfd_create's name): kind faultline (fl_model_kind) */
		fl_procfs_know_file(fl_channel_path(r->chan), "/memfd:faultline-channel (deleted)");
		struct fl_channel_identity id = { ident_ring, ident_tid, ident_parent, r };
		fl_channel_set_identity(r->chan, &id);
		rc = setup_loop(r, &orig);
	}
	if (rc) {
		fprintf(stderr, "faultline: cannot set up recording: %s\n", strerror(-rc));
		return setup_failed(r);
	}
	char err[300], keeper_path[64];
	const char *channel = fl_channel_path(r->chan);
	int as_user = fl_launch_user(r->opt.user, &r->user, err, sizeof(err));
	if (as_user < 0) {
		fprintf(stderr, "faultline: %s\n", err);
		return setup_failed(r);
	}
	if (as_user) {
		r->launch.user = &r->user;
		if ((rc = fl_launch_keeper(&r->user, fl_channel_fd(r->chan), keeper_path, sizeof(keeper_path)))) {
			fprintf(stderr, "faultline: cannot share the channel with %s: %s\n", r->user.name, strerror(-rc));
			return setup_failed(r);
		}
		channel = keeper_path;
	}
	char **env = fl_launch_env(shim, channel, r->opt.depth, r->opt.heap_sample, r->launch.user);
	/* Orphaned descendants become ours, so none is lost when its parent exits (shim mode has no
	 * other way to follow them) and each one's exit status comes from the kernel. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		fprintf(stderr, "faultline: prctl(PR_SET_CHILD_SUBREAPER): %s\n", strerror(errno));
	/* --thp=never: the flag lives in the mm, which the forked child copies and exec keeps
	 * (MMF_DISABLE_THP, kernel/sys.c prctl_set_thp_disable); ours is cleared again below. */
	if (r->opt.thp_never && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) {
		fprintf(stderr, "faultline: --thp=never: prctl(PR_SET_THP_DISABLE): %s\n", strerror(errno));
		return setup_failed(r);
	}
	rc = env ? fl_launch_start(&r->launch, r->opt.argv, env, &orig) : -ENOMEM;
	fl_launch_env_free(env); /* the child has its copy */
	if (r->opt.thp_never)
		prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	if (rc) {
		fprintf(stderr, "faultline: cannot start %s: %s\n", r->opt.argv[0], strerror(-rc));
		return setup_failed(r);
	}
	r->ingest = fl_ingest_new(r->store);
	if (r->ingest)
		fl_ingest_prewarm(r->ingest, shim, r->launch.path); /* on a thread, while the eBPF programs load */
	const char *note = r->ingest ? start_bpf(r, why, sizeof(why)) : "out of memory";
	if (!r->ingest) {
		fprintf(stderr, "faultline: out of memory\n");
		return setup_failed(r);
	}
	if (!note)
		fl_ingest_use_bpf(r->ingest);
	/* FAULTLINE_EXIT_SAMPLES=0: none (bench/exitwait.py measures what they cost); =all: every process */
	const char *exits = getenv("FAULTLINE_EXIT_SAMPLES");
	if (!exits || strcmp(exits, "0"))
		fl_ingest_set_exit_channel(r->ingest, exit_hint, exit_done, r, exits && !strcmp(exits, "all"));
	if (!note)
		fl_ingest_set_fault_drain(r->ingest, drain_faults, r);
#if FL_HAVE_BPF
	if (r->bpf && ((rc = fl_bpf_track(r->bpf, (__u32)r->launch.pid)) < 0 || (rc = watch_bpf_ring(r)) < 0)) {
		fprintf(stderr, "faultline: cannot track pid %d with eBPF: %s\n", r->launch.pid, strerror(-rc));
		return setup_failed(r);
	}
#endif
	if (!shim) {
		fprintf(stderr, "faultline: libfaultline-preload.so not found (set FAULTLINE_PRELOAD); "
				"recording without call stacks\n");
		fl_store_message(r->store, start, 0, "preload shim not found: no call stacks");
	}
	run_info(r, note, start);
	fl_ingest_root(r->ingest, r->launch.pid, fl_strtab_intern(r->launch.path), r->opt.argv, start);
	fl_store_commit(r->store); /* the run row on disk first: whatever happens next, the file is a recording */
	if ((rc = fl_launch_release(&r->launch))) {
		fprintf(stderr, "faultline: cannot execute %s: %s\n", r->launch.path, strerror(-rc));
		waitpid(r->launch.pid, NULL, 0);
		r->exit_status = rc == -ENOENT ? 127 : 126;
		fl_ingest_exit(r->ingest, r->launch.pid, fl_mono_ns(), r->exit_status, -1);
	} else {
		loop(r);
	}
	unload_early(r);
	fl_ingest_finish(r->ingest, fl_mono_ns());
	record_losses(r);
	/* the run ended when its last process did, not when symbolizing and indexing ended */
	fl_store_run_end(r->store, fl_ingest_end_ns(r->ingest), r->exit_status);
	return r->exit_status;
}

int fl_cmd_record(int argc, char **argv)
{
	struct recorder r = { .epfd = -1, .sigfd = -1 };
	char err[512];
	int rc = parse(argc, argv, &r.opt);
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = fl_launch_resolve(r.opt.argv[0], r.launch.path, sizeof(r.launch.path), err, sizeof(err)))) {
		fprintf(stderr, "faultline: %s\n", err);
		return rc == -EACCES ? 126 : 127;
	}
	if ((rc = fl_store_create(&r.store, r.opt.output, r.opt.force, err, sizeof(err)))) {
		fprintf(stderr, "faultline: %s\n", err);
		return EXIT_FAULTLINE;
	}
	/* Under sudo the recording is the invoking user's (it holds their argv,
	 * paths and host name, so it is 0600). */
	const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
	if (geteuid() == 0 && su && sg && *su && *sg)
		fl_store_set_owner(r.store, (uid_t)strtoul(su, NULL, 10), (gid_t)strtoul(sg, NULL, 10));
	int status = record(&r);
	teardown(&r);
	if (r.setup_failed) {
		fl_store_discard(r.store);
		return status;
	}
	if (fl_store_finish(r.store)) {
		/* the target's status is not ours to report as success: the recording failed */
		fprintf(stderr, "faultline: recording failed: %s; %s exited with status %d\n",
			fl_store_error(r.store), r.opt.argv[0], status);
		status = EXIT_FAULTLINE;
	}
	fl_store_close(r.store);
	return status;
}
