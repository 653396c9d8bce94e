/* SPDX-License-Identifier: MIT */
/*
 * ring.c - the producer side of the shared-memory channel (common/channel.h):
 * claiming this process image's ring, and copying records into it.
 *
 * Full ring: producers wait (spin, then block on a futex the collector
 * wakes) for space, up to wait_ms; the first record that waits longer is
 * dropped (counted in the ring's `dropped`) and recording stops for this
 * process image (off_reason says why).  A slot is only reserved once it is
 * known to be free, so a reservation is always published promptly and the
 * consumer never waits on a hole left by a producer that gave up.  While
 * waiting, the kernel is asked whether the collector lives: one that died,
 * was stopped or is a zombie is noticed within FL_COLLECTOR_CHECK_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>

#include "preload.h"

int shim_state = ST_UNINIT;
__u32 shim_pid;
__u64 shim_seq;
char shim_chan_path[256];
SHIM_TLS int shim_busy;
SHIM_TLS __u32 shim_tls_tid;
SHIM_TLS int shim_in_record;
__u64 shim_nested_lost;

static struct fl_chan_hdr *hdr;        /* the channel header, MAP_SHARED */
static struct fl_ring_desc *desc;      /* our ring's descriptor in hdr */
static struct fl_slot *slots;          /* our ring, MAP_SHARED */
static __u64 ring_offset, ring_bytes;  /* channel geometry, copied at attach */
static __u32 nrings;
static __u64 attached_ns;              /* when this image took its ring (its age at exit: shim_exit_wait) */

/* Copied at attach: the target can write the header, so nothing the shim's
 * safety depends on is read from it again. */
static __u32 wait_ms;
static __u32 collector_pid;

/* Stop recording for good, and say why in the ring's descriptor (read by
 * the collector when it retires the ring: one loss row). */
static void stop(__u32 reason)
{
	__u32 none = FL_OFF_NONE;

	__atomic_store_n(&shim_state, ST_OFF, __ATOMIC_RELEASE);
	if (desc)
		__atomic_compare_exchange_n(&desc->off_reason, &none, reason, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

struct waiter {
	unsigned spins;
	__u64 start, last_kill;
};

/* "/proc/<collector pid>/stat", made at attach (no snprintf in the shim). */
static char collector_stat[32];

static void make_stat_path(__u32 pid)
{
	char *p = collector_stat;

	memcpy(p, "/proc/", 6);
	p += 6;
	p += shim_format_u64(p, pid, 10);
	memcpy(p, "/stat", 6);
}

/* The collector's state letter from /proc/PID/stat ("pid (comm) S ..."; comm
 * may hold ')' so the last one counts), or 0 when it cannot be read. */
static char collector_state(void)
{
	char buf[256];
	int fd = (int)shim_syscall(SYS_openat, AT_FDCWD, collector_stat, O_RDONLY | O_CLOEXEC);
	long n;

	if (fd < 0)
		return 0;
	n = shim_syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	shim_syscall(SYS_close, fd);
	if (n <= 0)
		return 0;
	for (long i = n - 1; i > 0; i--)
		if (buf[i] == ')')
			return i + 2 < n ? buf[i + 2] : 0;
	return 0;
}

/*
 * Is the collector still there?  The kernel is asked when a wait begins and
 * then once per FL_COLLECTOR_CHECK_MS: the state letter in
 * /proc/PID/stat first (a zombie or stopped is final), kill(0) when /proc
 * cannot tell (ESRCH: gone).  In that order because a target in its own pid
 * namespace (unshare --pid --fork) sees the host's /proc but gets ESRCH
 * from kill() for a collector outside it.  Alive, however slow (a loaded
 * machine can keep it off the CPU), keeps the producer waiting, up to
 * wait_ms.  Asked only while a producer waits, so an idle recording costs
 * nothing (the heartbeat thread this replaced woke the collector every 10 ms).
 */
static int collector_alive(struct waiter *w, __u64 now)
{
	char st;

	if (w->last_kill && now - w->last_kill < FL_COLLECTOR_CHECK_MS * 1000000ull)
		return 1;
	w->last_kill = now;
	st = collector_state();
	if (st)
		return !(st == 'Z' || st == 'X' || st == 'x' || st == 'T' || st == 't');
	return !(shim_syscall(SYS_kill, (pid_t)collector_pid, 0) < 0 && shim_errno == ESRCH);
}

/*
 * One step of waiting for the consumer to free room in ring d; `seen` is
 * d->wake read before the caller last found the ring full.  Returns 0 when
 * the producer must give up (recording is then off: the reason is stored).
 * Why a futex, not sleeps: 64 threads polling a full ring every 50 us kept
 * both cores busy and starved the collector that would drain it (40 s for
 * what took 0.96 s plain); blocked in the kernel they cost nothing, and the
 * collector wakes them when it frees slots.  The 10 ms timeout bounds the
 * wait even when no wake comes (a collector without wakes, a lost one).
 */
static int wait_step(struct waiter *w, struct fl_ring_desc *d, __u32 seen)
{
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON)
		return 0;   /* another thread gave up */
	if (w->spins < 64) {
		w->spins++;
		__builtin_ia32_pause();
		return 1;
	}
	__u64 t = shim_now_ns();
	if (!w->start)
		w->start = t;
	if (!collector_alive(w, t)) {
		stop(FL_OFF_COLLECTOR_GONE);
		return 0;
	}
	if (t - w->start >= (__u64)wait_ms * 1000000u) {
		stop(FL_OFF_TIMEOUT);
		return 0;
	}
	struct timespec ts = { 0, FL_WAIT_STEP_MS * 1000000l };
	__atomic_add_fetch(&d->waiters, 1, __ATOMIC_SEQ_CST);
	/* Non-private: the collector wakes it from another process.  If the
	 * futex is refused (a seccomp filter), fall back to a short sleep. */
	if (shim_syscall(SYS_futex, &d->wake, FUTEX_WAIT, seen, &ts, NULL, 0) < 0 &&
	    shim_errno != EAGAIN && shim_errno != ETIMEDOUT && shim_errno != EINTR)
		shim_short_sleep();
	__atomic_sub_fetch(&d->waiters, 1, __ATOMIC_SEQ_CST);
	return 1;
}

/* Copy one record into the ring.  Returns 0, or -1 when it was dropped.
 * Every wait is bounded by wait_ms: the first one that runs out stops
 * recording in this process, so a stalled collector costs the target one
 * wait_ms, never one per record. */
int shim_emit(const void *rec, __u32 len)
{
	struct fl_ring_desc *d = desc;
	struct waiter w = { 0, 0, 0 };
	__u64 h;

	if (!d || len > FL_SLOT_DATA)
		return -1;
	h = __atomic_load_n(&d->head, __ATOMIC_RELAXED);
	/* Reserve ticket h only once its slot is free (tail > h - N), unlike
	 * fl_ring_ticket(): a producer that gives up then never leaves a hole
	 * the consumer would wait on forever. */
	for (;;) {
		__u32 seen = __atomic_load_n(&d->wake, __ATOMIC_SEQ_CST);
		__u64 t = __atomic_load_n(&d->tail, __ATOMIC_ACQUIRE);
		if (h - t < FL_RING_SLOTS) {
			if (__atomic_compare_exchange_n(&d->head, &h, h + 1, 1,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
			continue;
		}
		if (!wait_step(&w, d, seen)) {
			__atomic_add_fetch(&d->dropped, 1, __ATOMIC_RELAXED);
			return -1;
		}
		h = __atomic_load_n(&d->head, __ATOMIC_RELAXED);
	}
	struct fl_slot *s = &slots[h & (FL_RING_SLOTS - 1)];
	/* The consumer stores seq (release) before bumping tail with a plain
	 * store, so seeing the new tail may precede seeing seq: check it too.
	 * Bounded as well: a slot whose seq never comes right (the program
	 * wrote over the ring) is published anyway, and the collector's checks
	 * turn what it finds there into a counted loss. */
	for (;;) {
		__u32 seen = __atomic_load_n(&d->wake, __ATOMIC_SEQ_CST);
		if (fl_slot_free(s, h) || !wait_step(&w, d, seen))
			break;
	}
	memcpy(s->data, rec, len);
	fl_slot_publish(s, h);
	return 0;
}

void shim_note(const char *text)
{
	struct fl_note n;

	memset(&n, 0, sizeof(n));
	n.h.type = FL_R_NOTE;
	n.h.size = sizeof(n);
	n.pid = shim_pid;
	shim_copy_str(n.text, sizeof(n.text), text);
	shim_emit(&n, sizeof(n));
}

/* Say the calls let through unrecorded since the last time (shim_recording_call). */
static void send_nested_lost(void)
{
	struct fl_nested n;

	if (!__atomic_load_n(&shim_nested_lost, __ATOMIC_RELAXED))
		return;
	memset(&n, 0, sizeof(n));
	n.h.type = FL_R_NESTED;
	n.h.size = sizeof(n);
	n.pid = shim_pid;
	n.count = __atomic_exchange_n(&shim_nested_lost, 0, __ATOMIC_RELAXED);
	if (n.count)
		shim_emit(&n, sizeof(n));
}

/*
 * A record may nest: a signal handler's call made while this thread is
 * inside shim_record is recorded too (shim_recording_call).  Its stack is
 * unwound as any other unless the handler interrupted the unwinder itself,
 * which is not known to be reentrant (libgcc's registered-frame lock): then
 * it holds the hook's caller only, from the shim's frame pointers, and the
 * call says so (FL_CALL_NESTED; counted as a loss by the collector).
 */
void shim_record(__u32 kind, __s64 result, int err, __u64 a0, __u64 a1, __u64 a2,
		 __u64 a3, __u64 a4, __u64 a5, const char *name)
{
	union {
		struct fl_call_rec r;
		__u8 bytes[sizeof(struct fl_call_rec) + 8 * FL_MAX_FRAMES + FL_NAME_MAX];
	} b;
	struct fl_call *c = &b.r.call;
	__u32 size;
	int nested = shim_in_record;

	shim_busy++;
	shim_in_record++;
	memset(&b.r, 0, sizeof(b.r));
	c->kind = kind;
	c->pid = shim_pid;
	c->tid = shim_tid();
	c->err = err;
	c->time_ns = shim_now_ns();
	c->seq = __atomic_add_fetch(&shim_seq, 1, __ATOMIC_RELAXED);
	c->args[0] = a0; c->args[1] = a1; c->args[2] = a2;
	c->args[3] = a3; c->args[4] = a4; c->args[5] = a5;
	c->result = result;
	b.r.h.type = FL_R_CALL;
	if (nested && shim_unwinding) {
		c->flags = FL_CALL_NESTED;
		b.r.h.nframes = (__u16)(shim_depth ? shim_caller(b.r.frames) : 0);
	} else {
		/* in place: the name's room (written after) holds the unwinder's slack */
		b.r.h.nframes = (__u16)shim_backtrace_into(b.r.frames, (sizeof(b) - sizeof(b.r)) / 8u);
	}
	size = sizeof(b.r) + 8u * b.r.h.nframes;
	if (name) {
		char *p = (char *)b.bytes + size;
		shim_copy_str(p, FL_NAME_MAX, name);
		size += (__u32)shim_strlen(p) + 1;
	}
	b.r.h.size = size;
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON) {
		shim_emit(&b, size);
		if (!nested)
			send_nested_lost();
	}
	shim_in_record--;
	shim_busy--;
}

/* In a fork child the header is inherited (MAP_SHARED mappings survive
 * fork) and only the ring is new. */
int shim_attach(__u32 *flags)
{
	int fd = (int)shim_syscall(SYS_openat, AT_FDCWD, shim_chan_path, O_RDWR | O_CLOEXEC);
	long a;
	int idx;

	if (fd < 0)
		return -1;
	if (!hdr) {
		/*
		 * No MAP_POPULATE here or below: populating is get_user_pages,
		 * which the kernel counts in the target's min_flt (one per page,
		 * 176 for a ring) with no fault event.  Touched lazily, only the
		 * pages used fault, visibly, in the faultline VMA.
		 */
		a = shim_sys_mmap(NULL, FL_CHAN_HDR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (a < 0 && a > -4096)
			goto fail;
		hdr = (struct fl_chan_hdr *)a;
		if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != FL_CHAN_MAGIC ||
		    hdr->abi != FL_ABI_VERSION || hdr->nrings == 0 ||
		    hdr->nrings > FL_CHAN_RINGS || hdr->ring_bytes < FL_CHAN_RING_BYTES ||
		    hdr->ring_offset < FL_CHAN_HDR_BYTES || hdr->ring_offset % 4096 ||
		    hdr->ring_bytes % 4096) {
			shim_syscall(SYS_munmap, hdr, FL_CHAN_HDR_BYTES);
			hdr = NULL;
			goto fail;
		}
		wait_ms = hdr->wait_ms;
		collector_pid = hdr->collector_pid;
		make_stat_path(collector_pid);
		ring_offset = hdr->ring_offset;
		ring_bytes = hdr->ring_bytes;
		nrings = hdr->nrings;
	}
	/* A ring already owned by our pid belongs to the image we replaced:
	 * execve keeps the pid (fs/exec.c de_thread makes the exec'ing thread
	 * the leader).  Only rings below hdr->high were ever claimed: scanning
	 * all 1024 descriptors faulted in 16 header pages in every process. */
	__u32 high = __atomic_load_n(&hdr->high, __ATOMIC_ACQUIRE);
	if (!(*flags & FL_HELLO_FORKED))
		for (__u32 i = 0; i < nrings && i < high; i++)
			if (__atomic_load_n(&hdr->rings[i].state, __ATOMIC_ACQUIRE) == FL_RING_OWNED &&
			    hdr->rings[i].pid == shim_pid)
				*flags |= FL_HELLO_EXECED;
	idx = fl_chan_claim(hdr, nrings, shim_pid);
	if (idx < 0)
		goto fail;
	a = shim_sys_mmap(NULL, FL_CHAN_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fd, (off_t)(ring_offset + (__u64)idx * ring_bytes));
	if (a < 0 && a > -4096) {
		fl_ring_reset(&hdr->rings[idx]);
		goto fail;
	}
	/* The target may close every fd (close_range(3, ~0U)): keep none. */
	shim_syscall(SYS_close, fd);
	slots = (struct fl_slot *)a;
	desc = &hdr->rings[idx];
	attached_ns = shim_now_ns();
	return 0;
fail:
	shim_syscall(SYS_close, fd);
	return -1;
}


/*
 * The process is about to exit (preload/exit.c): if the collector asked for
 * an exit sample and this image has lived long enough for its cost
 * (exit_min_age_ms, which the collector sets from what reading this process
 * cost: channel.h), say so and wait, at most FL_EXIT_WAIT_MS, for the read.
 * The age is checked first with the vDSO clock, so a short-lived process
 * (make -j's thousands) pays no system call here.  Never in a vfork child (it
 * shares this image's memory and cached pid but is another process), never
 * when the thread is inside the shim (a signal handler calling _exit), never
 * once recording is off (the collector gone, the ring taken over).  errno
 * is the caller's to keep (exit.c).  The collector's state is not asked
 * (/proc reads a seccomp filter may punish): a collector that died unseen
 * costs each offered process one bounded wait.  The system calls made here
 * are getpid and futex only, which every libc program makes.
 */
void shim_exit_wait(__u32 how)
{
	struct fl_ring_desc *d = desc;
	struct fl_exiting x;
	__u32 age_ms;
	__u64 start;

	if (!d || shim_busy || __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON)
		return;
	age_ms = __atomic_load_n(&d->exit_min_age_ms, __ATOMIC_RELAXED);
	start = shim_now_ns();
	if (!age_ms || start - attached_ns < (__u64)age_ms * 1000000u || (__u32)shim_syscall(SYS_getpid) != shim_pid)
		return;
	shim_busy++;
	__atomic_store_n(&d->exit_state, FL_EXIT_WAITING, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&hdr->exits, 1, __ATOMIC_SEQ_CST);
	memset(&x, 0, sizeof(x));
	x.h.type = FL_R_EXITING;
	x.h.size = sizeof(x);
	x.pid = shim_pid;
	x.how = how;
	x.time_ns = start;
	if (shim_emit(&x, sizeof(x)) == 0) {
		/* BPF answers with the RSS now, and that record wakes the collector (faultline.h) */
		shim_syscall(SYS_getpid, FL_SHIM_EXITING, 0);
		for (;;) {
			__u32 st = __atomic_load_n(&d->exit_state, __ATOMIC_SEQ_CST);
			__u64 waited = shim_now_ns() - start;
			if (st != FL_EXIT_WAITING)
				break;
			if (waited >= FL_EXIT_WAIT_MS * 1000000ull) {
				__u32 expect = FL_EXIT_WAITING;
				if (__atomic_compare_exchange_n(&d->exit_state, &expect, FL_EXIT_LATE, 0,
								__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
					break;
				continue;
			}
			struct timespec ts = { 0, (long)(FL_EXIT_WAIT_MS * 1000000ull - waited) };
			/* non-private: the collector wakes it from another process */
			if (shim_syscall(SYS_futex, &d->exit_state, FUTEX_WAIT, FL_EXIT_WAITING, &ts, NULL, 0) < 0 &&
			    shim_errno != EAGAIN && shim_errno != ETIMEDOUT && shim_errno != EINTR)
				shim_short_sleep();
		}
	}
	shim_busy--;
}

void shim_detach_inherited(void)
{
	if (slots)
		shim_syscall(SYS_munmap, slots, FL_CHAN_RING_BYTES);
	slots = NULL;
	desc = NULL;
}

static int overlaps(__u64 addr, __u64 len, const void *p, __u64 size)
{
	__u64 lo = (__u64)(uintptr_t)p;

	return p && addr < lo + size && lo < addr + len;
}

/*
 * A munmap, mremap, mprotect, madvise or MAP_FIXED mmap of the program is
 * about to change [addr, addr + len).  If that is the shim's own channel
 * memory (a program that unmaps everything it did not map, or maps over it),
 * stop recording first: writing into a ring that is gone would crash the
 * program, and one that was mapped over would corrupt the program's data.
 */
void shim_guard(__u64 addr, __u64 len)
{
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON)
		return;
	if (overlaps(addr, len, hdr, FL_CHAN_HDR_BYTES) ||
	    overlaps(addr, len, slots, FL_CHAN_RING_BYTES))
		stop(FL_OFF_TAKEN_OVER);
}
