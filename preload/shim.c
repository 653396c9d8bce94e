/* SPDX-License-Identifier: MIT */
/*
 * shim.c - libfaultline-preload.so: records every address-space call the
 * target makes through libc (mmap family, brk/sbrk, madvise, fork, vfork,
 * dlopen/dlclose) with its call stack, into this process image's ring of the
 * shared-memory channel (common/channel.h).
 *
 * Rules (docs: /work/shared/DESIGN.md, "Rules that keep the target safe"):
 * - Never change the target's behaviour: same results, same errno, no
 *   signals, no output, no fd kept open, never abort.  On any failure the
 *   shim turns itself off (and says so once in a FL_R_NOTE if it has a ring).
 * - No malloc anywhere; nothing the shim does itself goes through the hooked
 *   symbols (raw syscalls), so it cannot recurse.
 * - Reentrancy: a per-thread `busy` count.  A hook entered while the thread
 *   is already inside the shim (the unwinder's or dlsym's own calls, or a
 *   signal handler interrupting the shim) passes the call through unrecorded.
 *   Consequence: calls from a signal handler that interrupted this thread
 *   while it was recording are not recorded (the BPF ground truth still sees
 *   them).  This also means a nested producer never waits for a slot its own
 *   thread reserved, so the "full ring + nested producer" deadlock cannot
 *   happen.
 * - Stacks: glibc backtrace(), i.e. libgcc's DWARF unwinder, not libunwind:
 *   libunwind keeps a pipe open in the target that it cannot give up (see
 *   "Why not libunwind" at backtrace_frames()).  backtrace() costs no
 *   syscall and no fd once initialized.
 * - Fork safety: the unwinder takes locks (libgcc's object_mutex for
 *   registered frames, the loader lock in dl_iterate_phdr on old glibc)
 *   that another thread may hold when fork() copies the
 *   address space.  Every backtrace() runs inside a gate (`unwinders`
 *   count); the fork hook closes the gate and waits for unwinders to leave
 *   before calling the real fork, so the child never inherits a held lock.
 *   If they do not leave in time (a thread longjmp'd out of a signal handler
 *   that interrupted an unwind), the child records without stacks.
 * - Full ring: producers wait (spin, then 50us sleeps) for space, up to
 *   hdr->wait_ms, then drop the record and count it in the ring's `dropped`.
 *   A slot is only reserved once it is known to be free, so a reservation is
 *   always published promptly and the consumer never waits on a hole left by
 *   a producer that gave up.  While waiting, the collector's liveness is
 *   checked every 100 ms; if it is gone, recording stops for good.
 *
 * - dlopen/dlclose: recorded before the call (tailjumps.S); what ld.so maps is
 *   invisible to the hooks, so the next hooked call sends a RESYNC hello and
 *   a fresh maps snapshot first (resync()).
 *
 * Not seen: calls made inside libc itself (malloc's internal __mmap, ld.so),
 * raw syscalls, static binaries.  Children made by raw clone() or _Fork()
 * (no fork() call) inherit this image's ring mapping and cached pid: their
 * calls are recorded into the parent's ring under the parent's pid.  The
 * BPF side sees all of these.
 */
/* Why: meson builds with -D_FILE_OFFSET_BITS=64, under which glibc's
 * <sys/mman.h> renames mmap to mmap64 (__REDIRECT); we define both. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include <execinfo.h>

#include "faultline.h"
#include "channel.h"

#define EXPORT __attribute__((visibility("default")))
#define TLS __attribute__((tls_model("initial-exec"))) __thread

enum { ST_UNINIT, ST_INIT, ST_ON, ST_OFF };
/* maps_state: CLEAN, DIRTY (a dlopen/dlclose ran: ld.so mapped or unmapped
 * behind our back), RESYNC (one thread is sending the snapshot). */
enum { MAPS_CLEAN, MAPS_DIRTY, MAPS_RESYNC };

/* Frames inside the shim above the hook's caller: record, hook, asm entry, slack. */
#define FRAME_SLACK 16
#define SNAP_MIN (256u << 10)
#define SNAP_MAX (64u << 20)

static int state = ST_UNINIT;          /* atomic: ST_* */
static struct fl_chan_hdr *hdr;        /* the channel header, MAP_SHARED */
static struct fl_ring_desc *desc;      /* our ring's descriptor in hdr */
static struct fl_slot *slots;          /* our ring, MAP_SHARED */
static __u32 self_pid;
static __u64 seq_ctr;                  /* last seq handed out (atomic) */
static unsigned depth = FL_DEFAULT_FRAMES;
static int no_unwind;                  /* stacks disabled (fork child of a busy unwinder) */
static uintptr_t text_lo, text_hi;     /* the shim's executable segment */
static char chan_path[256];            /* copy of $FAULTLINE_CHANNEL */

static unsigned unwinders;             /* threads inside backtrace() (atomic) */
static int forking;                    /* a fork waits for or runs with the gate closed */
static int maps_state;                 /* MAPS_* (atomic): is a resync snapshot owed? */

static TLS int busy;                   /* >0: this thread is inside the shim */
static TLS __u32 tls_tid;

static struct {
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	void *(*mmap64)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	int (*mprotect)(void *, size_t, int);
	int (*pkey_mprotect)(void *, size_t, int, int);
	void *(*mremap)(void *, size_t, size_t, int, ...);
	int (*brk)(void *);
	void *(*sbrk)(intptr_t);
	int (*madvise)(void *, size_t, int);
	pid_t (*fork)(void);
	pid_t (*vfork)(void);
	void *(*dlopen)(const char *, int);
	int (*dlclose)(void *);
} real;

extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

/* ---- small helpers (raw syscalls: never through a hooked symbol) -------- */

static long sys_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
	return syscall(SYS_mmap, a, len, prot, flags, fd, off);
}

static __u64 now_ns(void)
{
	struct timespec ts;

	/* glibc routes CLOCK_MONOTONIC through the vDSO: no syscall. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000u + (__u64)ts.tv_nsec;
}

static __u32 my_tid(void)
{
	/* glibc does not cache gettid(); ask the kernel once per thread. */
	if (!tls_tid)
		tls_tid = (__u32)syscall(SYS_gettid);
	return tls_tid;
}

static void short_sleep(void)
{
	struct timespec ts = { 0, 50000 };

	/* Raw syscall: glibc's nanosleep is a cancellation point, and a thread
	 * cancelled inside the shim could leave a reserved slot unpublished. */
	syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = 0;
}

/* ---- resolving the real functions --------------------------------------- */

static void resolve(void)
{
	/* dlsym may call malloc (dlerror buffers), and malloc may call mmap:
	 * busy makes those nested calls pass through (raw syscall while
	 * real.mmap is still NULL). */
	busy++;
#define R(f) if (!real.f) *(void **)&real.f = dlsym(RTLD_NEXT, #f)
	R(mmap); R(mmap64); R(munmap); R(mprotect); R(pkey_mprotect); R(mremap);
	R(brk); R(sbrk); R(madvise); R(fork); R(vfork); R(dlopen); R(dlclose);
#undef R
	busy--;
}

/* ---- the ring (producer side of channel.h) ------------------------------ */

struct waiter {
	unsigned spins;
	__u64 start, last_check;
};

/* One step of waiting for the consumer.  Returns 0 when the producer should
 * give up: waited longer than hdr->wait_ms, or the collector is gone. */
static int wait_step(struct waiter *w, int may_drop)
{
	if (w->spins < 128) {
		w->spins++;
		__builtin_ia32_pause();
		return 1;
	}
	short_sleep();
	__u64 t = now_ns();
	if (!w->start)
		w->start = w->last_check = t;
	if (t - w->last_check >= 100000000u) {
		w->last_check = t;
		/* Only ESRCH means gone: EPERM is a collector of another uid. */
		if (syscall(SYS_kill, (pid_t)hdr->collector_pid, 0) < 0 && errno == ESRCH) {
			__atomic_store_n(&state, ST_OFF, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return !(may_drop && t - w->start >= (__u64)hdr->wait_ms * 1000000u);
}

/* Copy one record into the ring.  Returns 0, or -1 when it was dropped. */
static int emit(const void *rec, __u32 len)
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
		__u64 t = __atomic_load_n(&d->tail, __ATOMIC_ACQUIRE);
		if (h - t < FL_RING_SLOTS) {
			if (__atomic_compare_exchange_n(&d->head, &h, h + 1, 1,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
			continue;
		}
		if (!wait_step(&w, 1)) {
			__atomic_add_fetch(&d->dropped, 1, __ATOMIC_RELAXED);
			return -1;
		}
		h = __atomic_load_n(&d->head, __ATOMIC_RELAXED);
	}
	struct fl_slot *s = &slots[h & (FL_RING_SLOTS - 1)];
	/* The consumer stores seq (release) before bumping tail with a plain
	 * store, so seeing the new tail may precede seeing seq: check it too. */
	w.spins = 0;
	while (!fl_slot_free(s, h))
		if (!wait_step(&w, 0))
			break;
	memcpy(s->data, rec, len);
	fl_slot_publish(s, h);
	return 0;
}

static void note(const char *text)
{
	struct fl_note n;

	memset(&n, 0, sizeof(n));
	n.h.type = FL_R_NOTE;
	n.h.size = sizeof(n);
	n.pid = self_pid;
	copy_str(n.text, sizeof(n.text), text);
	emit(&n, sizeof(n));
}

/* ---- stacks ------------------------------------------------------------- */

/*
 * Why not libunwind (the design's unwinder): re-measured with libunwind 1.6.2
 * (Debian 12) set up as well as it can be: unw_set_caching_policy(
 * UNW_CACHE_PER_THREAD) at init (the rs-cache then takes no lock, so no
 * sigprocmask on a hit), unw_backtrace() (tdep_trace and its per-thread
 * trace cache), warmed up in the constructor.  Target: 10000 loops, 3 call
 * sites, 26666 mmap/munmap events (strace -f -c):
 *   - steady state: 0 extra syscalls per event, like backtrace();
 *   - each new return address still costs ~2 rt_sigprocmask (dwarf_find_
 *     proc_info runs dl_iterate_phdr under a full signal mask; 168 for the
 *     first 4 stacks here, 40 of them at init), plus mincore + read + write
 *     on the validation pipe whenever a frame needs validation;
 *   - fds: NOT neutral.  tdep_init (run by unw_set_caching_policy, or the
 *     first unwind) calls tdep_init_mem_validate -> open_pipe: a
 *     pipe2(O_CLOEXEC|O_NONBLOCK) kept in a static mem_validate_pipe[2].
 *     The target's first open() then returns 5 instead of 3.
 *   - the pipe cannot be closed: mincore_validate and msync_validate both
 *     end in write_validate(), which read()s mem_validate_pipe[0] and
 *     write()s mem_validate_pipe[1] by number on every validation, and
 *     validation switches on whenever a step falls back from DWARF to the
 *     frame chain (x86_64/Gstep.c sets c->validate: any frame without CFI:
 *     JIT code, asm, code built -fno-asynchronous-unwind-tables).  Closing
 *     the (fstat-verified) pipe after init and then unwinding through such a
 *     frame, the target's fd 3 (a file it had just written "hello" to)
 *     lost 5 bytes to libunwind's read() and its fd 4 got 5 bytes of stack
 *     written into it; had read() failed, open_pipe() would have closed the
 *     target's fds 3 and 4 instead.  No API selects validation without the
 *     pipe (UNW_X86_64_FORCE_MEM_VALIDATE picks mincore or msync only).
 * So libunwind would need a patched or newer build to follow the rules
 * ("no fd the program can trip over"); tests/preload `fds` checks that.
 */

/* Fill frames[] with the stack above the shim, innermost first. */
static unsigned backtrace_frames(__u64 *frames)
{
	void *buf[FL_MAX_FRAMES + FRAME_SLACK];
	unsigned want = depth, i = 0, n = 0;
	int got;

	if (!want || no_unwind)
		return 0;
	/* Enter the fork gate (Dekker style: both sides use seq_cst). */
	for (;;) {
		__atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&forking, __ATOMIC_SEQ_CST))
			break;
		__atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&forking, __ATOMIC_SEQ_CST))
			short_sleep();
	}
	got = backtrace(buf, (int)(want + FRAME_SLACK));
	__atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);

	while (i < (unsigned)(got > 0 ? got : 0) &&
	       (uintptr_t)buf[i] >= text_lo && (uintptr_t)buf[i] < text_hi)
		i++;
	for (; i < (unsigned)got && n < want; i++)
		frames[n++] = (__u64)(uintptr_t)buf[i];
	return n;
}

/* Close the gate before fork.  Returns 1 when no thread is unwinding. */
static int gate_close(void)
{
	int zero = 0;
	__u64 start = 0;

	while (!__atomic_compare_exchange_n(&forking, &zero, 1, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		zero = 0;
		short_sleep();    /* another thread is forking */
	}
	while (__atomic_load_n(&unwinders, __ATOMIC_SEQ_CST)) {
		__u64 t = now_ns();
		if (!start)
			start = t;
		else if (t - start > 500000000u)
			return 0;
		short_sleep();
	}
	return 1;
}

static void gate_open(void)
{
	__atomic_store_n(&forking, 0, __ATOMIC_SEQ_CST);
}

/* ---- records ------------------------------------------------------------ */

static void record(__u32 kind, __s64 result, int err, __u64 a0, __u64 a1, __u64 a2,
		   __u64 a3, __u64 a4, __u64 a5, const char *name)
{
	union {
		struct fl_call_rec r;
		__u8 bytes[sizeof(struct fl_call_rec) + 8 * FL_MAX_FRAMES + FL_NAME_MAX];
	} b;
	struct fl_call *c = &b.r.call;
	__u32 size;

	busy++;
	memset(&b.r, 0, sizeof(b.r));
	c->kind = kind;
	c->pid = self_pid;
	c->tid = my_tid();
	c->err = err;
	c->time_ns = now_ns();
	c->seq = __atomic_add_fetch(&seq_ctr, 1, __ATOMIC_RELAXED);
	c->args[0] = a0; c->args[1] = a1; c->args[2] = a2;
	c->args[3] = a3; c->args[4] = a4; c->args[5] = a5;
	c->result = result;
	b.r.h.type = FL_R_CALL;
	b.r.h.nframes = (__u16)backtrace_frames(b.r.frames);
	size = sizeof(b.r) + 8u * b.r.h.nframes;
	if (name) {
		char *p = (char *)b.bytes + size;
		copy_str(p, FL_NAME_MAX, name);
		size += (__u32)strlen(p) + 1;
	}
	b.r.h.size = size;
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ON)
		emit(&b, size);
	busy--;
}

/* ---- /proc/self/maps snapshot ------------------------------------------- */

static const char *hex(const char *p, const char *end, __u64 *out)
{
	__u64 v = 0;

	for (; p < end; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9') d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
		else break;
		v = v * 16 + d;
	}
	*out = v;
	return p;
}

static const char *dec(const char *p, const char *end, __u64 *out)
{
	__u64 v = 0;

	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (__u64)(*p - '0');
	*out = v;
	return p;
}

/* Parse one maps line: "start-end rwxp offset maj:min inode   path". */
static int parse_line(const char *p, const char *end, struct fl_mapping *m)
{
	__u64 v;

	memset(m, 0, sizeof(*m));
	m->h.type = FL_R_MAPPING;
	m->h.size = sizeof(*m);
	m->pid = self_pid;
	p = hex(p, end, &m->start);
	if (p >= end || *p++ != '-')
		return -1;
	p = hex(p, end, &m->end);
	if (end - p < 6)
		return -1;
	p++;
	m->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	m->flags = p[3] == 's' ? FL_MAP_SHARED : 0;
	p += 5;
	p = hex(p, end, &m->offset) + 1;
	p = hex(p, end, &v) + 1;
	m->dev_major = (__u32)v;
	p = hex(p, end, &v);
	m->dev_minor = (__u32)v;
	while (p < end && *p == ' ')
		p++;
	p = dec(p, end, &m->inode);
	while (p < end && *p == ' ')
		p++;
	size_t n = (size_t)(end - p);
	if (n >= FL_PATH_MAX) {
		n = FL_PATH_MAX - 1;
		m->flags |= FL_MAP_TRUNCATED;
	}
	memcpy(m->path, p, n);
	m->path[n] = 0;
	return 0;
}

/* Walk the lines of buf; emit them when `send`.  The snapshot buffer itself
 * [skip_lo, skip_hi) is cut out of whatever line covers it (the kernel may
 * have merged it with a neighbouring anonymous mapping).  Returns records. */
static __u32 walk_maps(const char *buf, size_t len, uintptr_t skip_lo, uintptr_t skip_hi, int send)
{
	const char *p = buf, *end = buf + len;
	struct fl_mapping m;
	__u32 n = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (parse_line(p, eol, &m) == 0) {
			__u64 s = m.start, e = m.end;
			if (e <= skip_lo || s >= skip_hi) {
				if (send) {
					m.index = n;
					emit(&m, sizeof(m));
				}
				n++;
			} else {
				if (s < skip_lo) {
					m.end = skip_lo;
					if (send) {
						m.index = n;
						emit(&m, sizeof(m));
					}
					n++;
				}
				if (e > skip_hi) {
					m.start = skip_hi;
					m.end = e;
					if (send) {
						m.index = n;
						emit(&m, sizeof(m));
					}
					n++;
				}
			}
		}
		p = eol + 1;
	}
	return n;
}

/* Read /proc/self/maps whole into an anonymous mapping (no malloc).  The
 * kernel's maps seq_file resumes by address between reads (fs/proc/
 * task_mmu.c), so a file read in pieces is still one consistent list only
 * if nothing changes meanwhile; reading it into one buffer keeps the window
 * short.  Returns the length, or -1. */
static long read_maps(char **out, size_t *cap_out)
{
	for (size_t cap = SNAP_MIN; cap <= SNAP_MAX; cap *= 4) {
		long a = sys_mmap(NULL, cap, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (a < 0 && a > -4096)
			return -1;
		char *buf = (char *)a;
		int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			syscall(SYS_munmap, buf, cap);
			return -1;
		}
		size_t len = 0;
		long r = 1;
		while (len < cap && (r = syscall(SYS_read, fd, buf + len, cap - len)) > 0)
			len += (size_t)r;
		syscall(SYS_close, fd);
		if (r == 0) {
			*out = buf;
			*cap_out = cap;
			return (long)len;
		}
		syscall(SYS_munmap, buf, cap);
		if (r < 0)
			return -1;
	}
	return -1;
}

/* Publish HELLO and the maps snapshot.  Returns 0 or -1. */
static int hello(__u32 flags, __u64 parent_seq)
{
	struct fl_hello hl;
	char *buf;
	size_t cap;
	long len = read_maps(&buf, &cap);

	memset(&hl, 0, sizeof(hl));
	hl.h.type = FL_R_HELLO;
	hl.h.size = sizeof(hl);
	hl.abi = FL_ABI_VERSION;
	hl.pid = self_pid;
	hl.ppid = (__u32)syscall(SYS_getppid);
	hl.flags = flags;
	hl.time_ns = now_ns();
	hl.parent_seq = parent_seq;
	hl.depth = no_unwind ? 0 : depth;
	long n = syscall(SYS_readlink, "/proc/self/exe", hl.exe, sizeof(hl.exe) - 1);
	hl.exe[n > 0 ? n : 0] = 0;
	if (len >= 0)
		hl.nmappings = walk_maps(buf, (size_t)len, (uintptr_t)buf, (uintptr_t)buf + cap, 0);
	emit(&hl, sizeof(hl));
	if (len < 0) {
		note("maps snapshot failed: initial mappings unknown");
		return -1;
	}
	walk_maps(buf, (size_t)len, (uintptr_t)buf, (uintptr_t)buf + cap, 1);
	syscall(SYS_munmap, buf, cap);
	return 0;
}

/* ---- attaching to the channel ------------------------------------------- */

/* Claim and map a ring, then say hello.  In a fork child the header is
 * inherited (MAP_SHARED mappings survive fork) and only the ring is new.
 * Returns 0, or -1 when the shim must stay off. */
static int attach(__u32 flags, __u64 parent_seq)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, chan_path, O_RDWR | O_CLOEXEC);
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
		a = sys_mmap(NULL, FL_CHAN_HDR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (a < 0 && a > -4096)
			goto fail;
		hdr = (struct fl_chan_hdr *)a;
		if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != FL_CHAN_MAGIC ||
		    hdr->abi != FL_ABI_VERSION || hdr->nrings == 0 ||
		    hdr->nrings > FL_CHAN_RINGS || hdr->ring_bytes < FL_CHAN_RING_BYTES ||
		    hdr->ring_offset < FL_CHAN_HDR_BYTES || hdr->ring_offset % 4096 ||
		    hdr->ring_bytes % 4096) {
			syscall(SYS_munmap, hdr, FL_CHAN_HDR_BYTES);
			hdr = NULL;
			goto fail;
		}
	}
	/* A ring already owned by our pid belongs to the image we replaced:
	 * execve keeps the pid (fs/exec.c de_thread makes the exec'ing thread
	 * the leader). */
	if (!(flags & FL_HELLO_FORKED))
		for (__u32 i = 0; i < hdr->nrings; i++)
			if (__atomic_load_n(&hdr->rings[i].state, __ATOMIC_ACQUIRE) == FL_RING_OWNED &&
			    hdr->rings[i].pid == self_pid)
				flags |= FL_HELLO_EXECED;
	idx = fl_chan_claim(hdr, self_pid);
	if (idx < 0)
		goto fail;
	a = sys_mmap(NULL, FL_CHAN_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		     fd, (off_t)(hdr->ring_offset + (__u64)idx * hdr->ring_bytes));
	if (a < 0 && a > -4096) {
		fl_ring_reset(&hdr->rings[idx]);
		goto fail;
	}
	/* The target may close every fd (close_range(3, ~0U)): keep none. */
	syscall(SYS_close, fd);
	slots = (struct fl_slot *)a;
	desc = &hdr->rings[idx];
	hello(flags, parent_seq);
	return 0;
fail:
	syscall(SYS_close, fd);
	return -1;
}

/* ---- resync after dlopen/dlclose ---------------------------------------- */

/* ld.so maps and unmaps with its own internal syscalls, which no hook sees;
 * so dlopen/dlclose only mark the maps dirty, and the next hooked call of any
 * thread first sends HELLO(FL_HELLO_RESYNC) and a fresh snapshot.  Exactly
 * one thread sends it (DIRTY -> RESYNC by CAS); the others wait until it is
 * out, so a call they make afterwards is both missing from the snapshot and
 * recorded after it.  A call already past recording() when the dlopen ran
 * can still land on either side of the snapshot (BPF mode orders those). */
static void resync(void)
{
	__u64 start = 0;
	int s;

	while ((s = __atomic_load_n(&maps_state, __ATOMIC_ACQUIRE)) != MAPS_CLEAN) {
		if (s == MAPS_DIRTY) {
			if (!__atomic_compare_exchange_n(&maps_state, &s, MAPS_RESYNC, 0,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;
			busy++;
			hello(FL_HELLO_RESYNC, 0);
			busy--;
			/* A dlopen meanwhile left DIRTY: the next call sends again. */
			s = MAPS_RESYNC;
			__atomic_compare_exchange_n(&maps_state, &s, MAPS_CLEAN, 0,
						    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
			return;
		}
		/* Another thread is sending it.  Bounded: a sender that
		 * longjmp'd out of a signal handler never finishes; take over. */
		__u64 t = now_ns();
		if (!start) {
			start = t;
		} else if (t - start > 500000000u) {
			__atomic_compare_exchange_n(&maps_state, &s, MAPS_DIRTY, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
			start = 0;
			continue;
		}
		short_sleep();
	}
}

/* dlopen/dlclose are about to change the mappings where no hook sees it. */
static void maps_changed(void)
{
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ON)
		__atomic_store_n(&maps_state, MAPS_DIRTY, __ATOMIC_RELEASE);
}

/* Where our own code lives, to drop the shim's frames from stacks. */
static void find_text(void)
{
	const ElfW(Ehdr) *e = &__ehdr_start;
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)e + e->e_phoff);
	uintptr_t base = (uintptr_t)e, min_vaddr = UINTPTR_MAX;

	for (unsigned i = 0; i < e->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < min_vaddr)
			min_vaddr = ph[i].p_vaddr;
	for (unsigned i = 0; i < e->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
			text_lo = base + ph[i].p_vaddr - min_vaddr;
			text_hi = text_lo + ph[i].p_memsz;
		}
}

/* Make the unwinder ready now, under busy, while nothing else runs.
 * glibc's backtrace() dlopens libgcc_s at its first call (malloc, the
 * loader lock: debug/backtrace.c, misc/unwind-link.c); later calls take no
 * lock and make no syscall (libgcc >= 12 finds FDEs with glibc's
 * lock-free _dl_find_object). */
static void unwind_init(void)
{
	void *buf[4];

	if (backtrace(buf, 4) <= 0)
		no_unwind = 1;
}

static unsigned parse_depth(const char *s)
{
	unsigned v = 0;

	if (!s || !*s)
		return FL_DEFAULT_FRAMES;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > FL_MAX_FRAMES)
			return FL_DEFAULT_FRAMES;
		v = v * 10 + (unsigned)(*s - '0');
	}
	return v > FL_MAX_FRAMES ? FL_MAX_FRAMES : v;
}

static void init(void)
{
	int expect = ST_UNINIT, saved = errno, ok = 0;
	const char *path;

	if (!__atomic_compare_exchange_n(&state, &expect, ST_INIT, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	busy++;
	resolve();
	path = getenv(FL_CHAN_ENV);
	if (path && *path && strlen(path) < sizeof(chan_path)) {
		copy_str(chan_path, sizeof(chan_path), path);
		depth = parse_depth(getenv("FAULTLINE_DEPTH"));
		self_pid = (__u32)syscall(SYS_getpid);
		tls_tid = 0;
		find_text();
		if (depth)
			unwind_init();
		ok = attach(0, 0) == 0;
		if (ok && no_unwind && depth)
			note("stack unwinding disabled: the unwinder (libgcc_s) is unavailable");
	}
	__atomic_store_n(&state, ok ? ST_ON : ST_OFF, __ATOMIC_RELEASE);
	busy--;
	errno = saved;
}

__attribute__((constructor)) static void ctor(void)
{
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_UNINIT)
		init();
}

/* Should this call be recorded?  Initializes lazily (a hook can run before
 * our constructor, from another library's constructor).  Called before the
 * real call, so a resync snapshot owed after dlopen/dlclose goes out first
 * and never contains the call the record that follows describes. */
static inline int recording(void)
{
	int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);

	if (__builtin_expect(s == ST_ON, 1)) {
		if (busy)
			return 0;
		if (__builtin_expect(__atomic_load_n(&maps_state, __ATOMIC_RELAXED) != MAPS_CLEAN, 0))
			resync();
		return 1;
	}
	if (s == ST_UNINIT && !busy)
		init();
	return __atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ON && !busy;
}

/* ---- the hooks ---------------------------------------------------------- */

#define U(x) ((__u64)(uintptr_t)(x))
#define NEED(f) do { if (__builtin_expect(!real.f, 0)) resolve(); } while (0)

static void *mmap_common(void *(*fn)(void *, size_t, int, int, int, off_t),
			 void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *r;

	if (!fn) {
		/* Only while dlsym itself runs (see resolve()). */
		long v = sys_mmap(addr, len, prot, flags, fd, off);
		return (void *)v;
	}
	if (!recording())
		return fn(addr, len, prot, flags, fd, off);
	r = fn(addr, len, prot, flags, fd, off);
	int e = errno;
	record(FL_K_MMAP, (__s64)(intptr_t)r, r == MAP_FAILED ? e : 0,
	       U(addr), len, (__u64)prot, (__u64)flags, (__u64)(__s64)fd, (__u64)off, NULL);
	errno = e;
	return r;
}

/* mmap: record FL_K_MMAP after the real call. */
EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	NEED(mmap);
	return mmap_common(real.mmap, addr, len, prot, flags, fd, off);
}

/* mmap64: the same function as mmap on LP64 (glibc aliases them). */
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	NEED(mmap64);
	return mmap_common(real.mmap64 ? real.mmap64 : real.mmap, addr, len, prot, flags, fd, off);
}

/* munmap: record FL_K_MUNMAP after the real call. */
EXPORT int munmap(void *addr, size_t len)
{
	int r;

	NEED(munmap);
	if (!real.munmap)
		return (int)syscall(SYS_munmap, addr, len);
	if (!recording())
		return real.munmap(addr, len);
	r = real.munmap(addr, len);
	int e = errno;
	record(FL_K_MUNMAP, r, r ? e : 0, U(addr), len, 0, 0, 0, 0, NULL);
	errno = e;
	return r;
}

/* mprotect: record FL_K_MPROTECT after the real call. */
EXPORT int mprotect(void *addr, size_t len, int prot)
{
	int r;

	NEED(mprotect);
	if (!real.mprotect)
		return (int)syscall(SYS_mprotect, addr, len, prot);
	if (!recording())
		return real.mprotect(addr, len, prot);
	r = real.mprotect(addr, len, prot);
	int e = errno;
	record(FL_K_MPROTECT, r, r ? e : 0, U(addr), len, (__u64)prot, 0, 0, 0, NULL);
	errno = e;
	return r;
}

/* pkey_mprotect: record FL_K_PKEY_MPROTECT after the real call. */
EXPORT int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	int r;

	NEED(pkey_mprotect);
	if (!real.pkey_mprotect)
		return (int)syscall(SYS_pkey_mprotect, addr, len, prot, pkey);
	if (!recording())
		return real.pkey_mprotect(addr, len, prot, pkey);
	r = real.pkey_mprotect(addr, len, prot, pkey);
	int e = errno;
	record(FL_K_PKEY_MPROTECT, r, r ? e : 0, U(addr), len, (__u64)prot,
	       (__u64)(__s64)pkey, 0, 0, NULL);
	errno = e;
	return r;
}

/* mremap: record FL_K_MREMAP after the real call.  new_address is read only
 * with MREMAP_FIXED, the only case where the caller must pass it. */
EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *naddr = NULL, *r;

	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		naddr = va_arg(ap, void *);
		va_end(ap);
	}
	NEED(mremap);
	if (!real.mremap)
		return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, naddr);
	if (!recording())
		return real.mremap(old, old_len, new_len, flags, naddr);
	r = real.mremap(old, old_len, new_len, flags, naddr);
	int e = errno;
	record(FL_K_MREMAP, (__s64)(intptr_t)r, r == MAP_FAILED ? e : 0,
	       U(old), old_len, new_len, (__u64)flags, U(naddr), 0, NULL);
	errno = e;
	return r;
}

/* brk: record FL_K_BRK (libc result 0/-1) after the real call. */
EXPORT int brk(void *addr)
{
	int r;

	NEED(brk);
	if (!real.brk) {
		errno = ENOMEM;
		return -1;
	}
	if (!recording())
		return real.brk(addr);
	r = real.brk(addr);
	int e = errno;
	record(FL_K_BRK, r, r ? e : 0, U(addr), 0, 0, 0, 0, 0, NULL);
	errno = e;
	return r;
}

/* sbrk: record FL_K_SBRK (result: the old break) after the real call. */
EXPORT void *sbrk(intptr_t inc)
{
	void *r;

	NEED(sbrk);
	if (!real.sbrk) {
		errno = ENOMEM;
		return (void *)-1;
	}
	if (!recording())
		return real.sbrk(inc);
	r = real.sbrk(inc);
	int e = errno;
	record(FL_K_SBRK, (__s64)(intptr_t)r, r == (void *)-1 ? e : 0,
	       (__u64)(__s64)inc, 0, 0, 0, 0, 0, NULL);
	errno = e;
	return r;
}

/* madvise: record FL_K_MADVISE after the real call. */
EXPORT int madvise(void *addr, size_t len, int advice)
{
	int r;

	NEED(madvise);
	if (!real.madvise)
		return (int)syscall(SYS_madvise, addr, len, advice);
	if (!recording())
		return real.madvise(addr, len, advice);
	r = real.madvise(addr, len, advice);
	int e = errno;
	record(FL_K_MADVISE, r, r ? e : 0, U(addr), len, (__u64)advice, 0, 0, 0, NULL);
	errno = e;
	return r;
}

/* The fork child: a new process image with only this thread.  Take a ring
 * of our own; the parent's ring mapping is inherited and must go. */
static void fork_child(__u64 parent_seq, int gated)
{
	self_pid = (__u32)syscall(SYS_getpid);
	tls_tid = self_pid;
	__atomic_store_n(&seq_ctr, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&unwinders, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&forking, 0, __ATOMIC_RELAXED);
	/* The child's HELLO below carries a full snapshot; a RESYNC a parent
	 * thread was sending at fork would never finish here. */
	__atomic_store_n(&maps_state, MAPS_CLEAN, __ATOMIC_RELAXED);
	if (slots)
		syscall(SYS_munmap, slots, FL_CHAN_RING_BYTES);
	slots = NULL;
	desc = NULL;
	if (!gated)
		no_unwind = 1;
	if (attach(FL_HELLO_FORKED, parent_seq) < 0) {
		__atomic_store_n(&state, ST_OFF, __ATOMIC_RELEASE);
		return;
	}
	if (!gated && depth)
		note("stack unwinding disabled in this fork child: a thread was unwinding at fork");
}

/* fork: record FL_K_FORK in the parent; the child takes its own ring. */
EXPORT pid_t fork(void)
{
	int rec, gated = 0, on, e;
	__u64 pseq;
	pid_t pid;

	NEED(fork);
	if (!real.fork) {
		errno = ENOSYS;
		return -1;
	}
	rec = recording();
	on = __atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ON;
	if (!on)
		return real.fork();
	/* busy during the real fork: atfork handlers' calls pass through. */
	busy++;
	if (rec)
		gated = gate_close();
	pseq = __atomic_load_n(&seq_ctr, __ATOMIC_RELAXED);
	pid = real.fork();
	e = errno;
	if (pid == 0) {
		/* Also for a fork nested in the shim (a signal handler): the
		 * child must not write into the parent's ring. */
		fork_child(pseq, gated);
		busy--;
		errno = e;
		return 0;
	}
	if (rec)
		gate_open();
	busy--;
	if (rec)
		record(FL_K_FORK, pid, pid < 0 ? e : 0, 0, 0, 0, 0, 0, 0, NULL);
	errno = e;
	return pid;
}

static pid_t vfork_fail(void)
{
	errno = ENOSYS;
	return -1;
}

/* vfork pre-hook (called by the asm entry in tailjumps.S): record FL_K_VFORK before
 * the call (result -1: unknown; the child registers itself if it execs with
 * the shim).  Returns the function the asm entry jumps to. */
void *fl_shim_vfork_pre(void)
{
	int e = errno;

	NEED(vfork);
	if (recording())
		record(FL_K_VFORK, -1, 0, 0, 0, 0, 0, 0, 0, NULL);
	errno = e;
	if (real.vfork)
		return (void *)real.vfork;
	return real.fork ? (void *)real.fork : (void *)vfork_fail;
}

static void *dlopen_fail(const char *file, int mode)
{
	(void)file;
	(void)mode;
	return NULL;
}

static int dlclose_fail(void *h)
{
	(void)h;
	return -1;
}

/* dlopen pre-hook: record FL_K_DLOPEN (a0 = mode, the file name after the
 * frames) before the call and mark the maps dirty (a resync follows at the
 * next hooked call).  Returns the real dlopen for the asm entry to jump to. */
void *fl_shim_dlopen_pre(const char *file, int mode)
{
	int e = errno;

	NEED(dlopen);
	if (recording())
		record(FL_K_DLOPEN, -1, 0, (__u64)(__s64)mode, U(file), 0, 0, 0, 0,
		       file ? file : "");
	maps_changed();
	errno = e;
	return real.dlopen ? (void *)real.dlopen : (void *)dlopen_fail;
}

/* dlclose pre-hook: record FL_K_DLCLOSE (a0 = handle) before the call and
 * mark the maps dirty.  Returns the real dlclose for the asm entry to jump to. */
void *fl_shim_dlclose_pre(void *handle)
{
	int e = errno;

	NEED(dlclose);
	if (recording())
		record(FL_K_DLCLOSE, -1, 0, U(handle), 0, 0, 0, 0, 0, NULL);
	maps_changed();
	errno = e;
	return real.dlclose ? (void *)real.dlclose : (void *)dlclose_fail;
}
