/* SPDX-License-Identifier: MIT */
/*
 * preload.h - what the files of libfaultline-preload.so share.  Nothing here is
 * exported from the library (-fvisibility=hidden, preload.map).
 *
 *   shim.c      the interposers (the hooks) and nothing else
 *   ring.c      the producer side of the channel: attach, init, records, waiting
 *   snapshot.c  /proc/self/maps snapshots: the hello, resync after dlopen
 *   unwind.c    call stacks (libgcc's unwinder) and the fork gate around them
 *   cfi.c       call stacks from unwind rules cached per return address
 *   clock.c     the clock of the records (the vDSO's clock_gettime)
 *   malloc.c    the malloc family: sampled allocations and their frees
 *   exit.c      exit(), _exit(), _Exit(): the wait for a last smaps sample
 *   env.c       faultline's variables out of the program's environment, back into its execs
 *   tailjumps.S hooks that must tail-jump into libc (vfork, dlopen, dlclose)
 *
 * Rules (docs: /work/shared/DESIGN.md, "Rules that keep the target safe"):
 * - Never change the target's behaviour: same results, same errno, no
 *   signals, no output, no fd kept open, never abort.  On any failure the
 *   shim turns itself off (and says so once in a FL_R_NOTE if it has a ring).
 * - No malloc anywhere; nothing the shim does itself goes through the hooked
 *   symbols (raw syscalls), so it cannot recurse.
 * - Reentrancy: a per-thread `shim_busy` count.  A hook entered while the
 *   thread is already inside the shim (the unwinder's or dlsym's own calls,
 *   or a signal handler interrupting the shim) passes the call through
 *   unrecorded, with one exception: an address-space call a signal handler
 *   makes while its thread is inside shim_record is recorded too, nested
 *   (shim_recording_call; ring.c says how its stack is taken); one made in
 *   another busy window is counted (FL_R_NESTED).  A nested producer never
 *   waits for a slot its own thread reserved (it waits only for slots
 *   before it), so the "full ring + nested producer" deadlock cannot happen.
 *
 * Not seen: calls made inside libc itself (malloc's internal __mmap, ld.so),
 * raw syscalls, static binaries.  Children made by raw clone() or _Fork()
 * (no fork() call) inherit this image's ring mapping and cached pid: their
 * calls are recorded into the parent's ring under the parent's pid.  The
 * BPF side sees all of these.
 */
#ifndef FL_PRELOAD_H
#define FL_PRELOAD_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "faultline.h"
#include "channel.h"

#define SHIM_TLS __attribute__((tls_model("initial-exec"))) __thread

enum { ST_UNINIT, ST_INIT, ST_ON, ST_OFF };
/* maps_state: CLEAN, DIRTY (a dlopen/dlclose ran: ld.so mapped or unmapped
 * behind our back), RESYNC (one thread is sending the snapshot). */
enum { MAPS_CLEAN, MAPS_DIRTY, MAPS_RESYNC };

/* ---- state (ring.c) ----------------------------------------------------- */
extern int shim_state;                 /* atomic: ST_* */
extern __u32 shim_pid;                 /* this process image's pid (getpid at init/fork) */
extern __u64 shim_seq;                 /* last call seq handed out (atomic) */
extern char shim_chan_path[256];       /* copy of $FAULTLINE_CHANNEL */
/*
 * shim_busy: nonzero while this thread is inside the shim (hooks entered then
 * pass through).  Positive: doing faultline's work, and the BPF fault
 * programs count this thread's faults as faultline's (faultline.h,
 * FL_SHIM_MARK); negative (biased by SHIM_PROGRAM): running the program's
 * code from inside a hook (the real fork).
 */
extern SHIM_TLS int shim_busy;
#define SHIM_PROGRAM (1 << 24)
extern SHIM_TLS __u32 shim_tls_tid;
extern SHIM_TLS int shim_in_record;    /* this thread is inside shim_record (ring.c) */
extern SHIM_TLS int shim_unwinding;    /* this thread is inside the unwinder (unwind.c) */
extern __u64 shim_nested_lost;         /* calls let through busy (shim_recording_call), not yet said */

/*
 * errno without __errno_location, a call into a page of libc the program may
 * never run: its place from the thread pointer, the same in every thread
 * (libc's TLS is static), found by dlvsym(RTLD_NEXT, "errno", GLIBC_PRIVATE)
 * when the shim resolves its functions; 0 until then, or if glibc does not
 * say (then libc's errno).
 */
extern long shim_errno_off;
static inline int *shim_errno_at(void)
{
	return shim_errno_off ? (int *)((char *)__builtin_thread_pointer() + shim_errno_off) : &errno;
}
#define shim_errno (*shim_errno_at())

/* ---- small helpers (raw syscalls: never through a hooked symbol) -------- */
/*
 * A system call as libc's syscall() makes it (-1 and errno on failure), but
 * from the shim's own code: libc's syscall() is a page of libc text, and the
 * shim's first touch of it maps (fault-around) up to 16 pages of libc the
 * program may never run, faults counted as the program's (docs/check.md,
 * "faultline's own footprint").  The handshake syscall (FL_SHIM_MARK) runs
 * before BPF can mark anything, so it must not fault in libc at all.
 */
static inline long shim_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	if (r < 0 && r > -4096) {
		shim_errno = (int)-r;
		return -1;
	}
	return r;
#else
	return syscall(n, a, b, c, d, e, f);
#endif
}
#define SHIM_SC_(n, a, b, c, d, e, f, ...) \
	shim_syscall6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
/* shim_syscall(SYS_x, args...): up to six arguments, as syscall(). */
#define shim_syscall(...) SHIM_SC_(__VA_ARGS__, 0, 0, 0, 0, 0, 0, 0)

static inline long shim_sys_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
	return shim_syscall(SYS_mmap, a, len, prot, flags, fd, off);
}

/* The vDSO's clock_gettime (clock.c), NULL before shim_clock_init or without one. */
extern int (*shim_vdso_gettime)(clockid_t, struct timespec *);
/* Find it (at init, before the first record). */
void shim_clock_init(void);

static inline __u64 shim_now_ns(void)
{
	struct timespec ts;

	if (!shim_vdso_gettime || shim_vdso_gettime(CLOCK_MONOTONIC, &ts))
		shim_syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000u + (__u64)ts.tv_nsec;
}

static inline __u32 shim_tid(void)
{
	/* glibc does not cache gettid(); ask the kernel once per thread. */
	if (!shim_tls_tid)
		shim_tls_tid = (__u32)shim_syscall(SYS_gettid);
	return shim_tls_tid;
}

static inline void shim_short_sleep(void)
{
	struct timespec ts = { 0, 50000 };

	/* Raw syscall: glibc's nanosleep is a cancellation point, and a thread
	 * cancelled inside the shim could leave a reserved slot unpublished. */
	shim_syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
}

/* getenv without libc's getenv (a page of libc text the program may never run, as shim_syscall says). */
static inline const char *shim_getenv(const char *name)
{
	extern char **__environ;

	for (char **e = __environ; e && *e; e++) {
		const char *v = *e, *n = name;

		while (*n && *v == *n)
			v++, n++;
		if (!*n && *v == '=')
			return v + 1;
	}
	return NULL;
}

/*
 * String helpers of the shim's own (built with -fno-tree-loop-distribute-patterns, so that these loops
 * stay loops): libc's strlen, strcspn, memchr... are pages of its text the program may never run, each
 * first touch mapping up to 16 pages by fault-around, and counted as the program's (docs/check.md).
 */
static inline size_t shim_strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

static inline size_t shim_strlen(const char *s)
{
	return shim_strnlen(s, (size_t)-1);
}

static inline int shim_starts(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static inline void shim_copy_bytes(char *dst, const char *src, size_t n)
{
	while (n--)
		*dst++ = *src++;
}

static inline void shim_copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? shim_strnlen(src, cap - 1) : 0;

	shim_copy_bytes(dst, src ? src : "", n);
	dst[n] = 0;
}

/* v's digits in base 10 or 16 at dst, which has room for 20 (no snprintf in the shim); returns how many. */
static inline unsigned shim_format_u64(char *dst, __u64 v, unsigned base)
{
	char digits[20];
	unsigned n = 0, i = 0;

	do
		digits[n++] = "0123456789abcdef"[v % base];
	while ((v /= base) && n < sizeof(digits));
	while (n)
		dst[i++] = digits[--n];
	return i;
}

/* ---- faultline's variables (env.c) -------------------------------------- */
/* Take LD_PRELOAD's shim entry and the FAULTLINE_* variables out of environ (shim_init, recording on). */
void shim_env_hide(void);
/* The entries an exec's environment needs (0: pass envp as it is: nothing hidden, or too large), and in
 * *preload_size the bytes of its LD_PRELOAD entry. */
#define SHIM_ENV_MAX 4096           /* entries of the stack array at most */
#define SHIM_ENV_PRELOAD_MAX 16384  /* bytes of the LD_PRELOAD entry at most */
size_t shim_env_exec_size(char *const envp[], size_t *preload_size);
char *const *shim_env_exec(char *const envp[], char **out, char *preload);
/*
 * env, the environment an exec must be given: envp with faultline's
 * variables back in, built on the caller's stack (a vfork child shares its
 * parent's memory: nothing may be mapped), or envp itself.
 */
#define SHIM_ENV_EXEC(envp, env)                                                  \
	size_t env_pre_n_ = 1, env_n_ = shim_env_exec_size(envp, &env_pre_n_);    \
	char *env_arr_[env_n_ ? env_n_ : 1];                                      \
	char env_pre_[env_pre_n_];                                                \
	char *const *env = env_n_ ? shim_env_exec(envp, env_arr_, env_pre_) : (envp)

/* ---- the library's entry (shim.c) --------------------------------------- */
/* Initialize once: resolve, read the environment, attach, say hello. */
void shim_init(void);

/* ---- the channel, producer side (ring.c) -------------------------------- */
/*
 * Map the channel (the header once per address space) and claim a ring.
 * Adds FL_HELLO_EXECED to *flags when an earlier image of this pid owns a
 * ring.  Returns 0, or -1 when the shim must stay off.  The caller says
 * hello next (shim_hello).
 */
int shim_attach(__u32 *flags);
/* In a fork child: unmap the parent's ring, inherited with the address space. */
void shim_detach_inherited(void);
/* Copy one record into this image's ring.  0, or -1 when dropped. */
int shim_emit(const void *rec, __u32 len);
/* The process is about to exit (how: FL_EXITING_*): wait, bounded, for the
 * collector's last smaps read if it asked for one (exit.c says when). */
void shim_exit_wait(__u32 how);
/* The program is about to change [addr, addr+len): if that is the shim's
 * channel memory, recording stops first (FL_OFF_TAKEN_OVER). */
void shim_guard(__u64 addr, __u64 len);
/* A one-time message to the collector. */
void shim_note(const char *text);
/* Record one call (after it returned), with the caller's stack. */
void shim_record(__u32 kind, __s64 result, int err, __u64 a0, __u64 a1, __u64 a2,
		 __u64 a3, __u64 a4, __u64 a5, const char *name);

/* ---- maps snapshots (snapshot.c) ---------------------------------------- */
extern int shim_maps_state;            /* MAPS_* (atomic): is a resync snapshot owed? */
/* Publish HELLO and the maps snapshot.  ppid: the parent's pid when the
 * caller knows it (a fork child), else 0 (asked of the kernel).  Returns 0 or -1. */
int shim_hello(__u32 flags, __u64 parent_seq, __u32 ppid);
/* Send the snapshot owed after dlopen/dlclose (or wait for whoever sends it). */
void shim_resync(void);
/* dlopen/dlclose are about to change the mappings where no hook sees it. */
void shim_maps_changed(void);

/* ---- stacks (unwind.c) -------------------------------------------------- */
extern unsigned shim_depth;            /* configured stack depth (0: no stacks) */
extern int shim_no_unwind;             /* stacks disabled (fork child of a busy unwinder) */
/* Where the shim's own code is, to drop its frames from stacks. */
void shim_find_text(void);
/* Make the unwinder ready (at init, under shim_busy). */
void shim_unwind_init(void);
/* Call stacks by cached rules (cfi.c): the return addresses above the
 * caller's frame, as libgcc's unwinder gives them, or -1 where they do not
 * serve (then libgcc's).  init: after libgcc_s is loaded (its handle). */
void shim_cfi_init(void *libgcc);
int shim_cfi_unwind(void **frames, int room);
/* Frames inside the shim above the hook's caller: record, hook, asm entry, slack. */
#define SHIM_FRAME_SLACK 16
/* The hook's caller, from the shim's own frame pointers (async-signal-safe,
 * no unwinder): 1 frame, or 0. */
unsigned shim_caller(__u64 *frame);
/* Fill frames[] with the stack above the shim, innermost first; returns how many. */
unsigned shim_backtrace(__u64 *frames);
/* The same, unwinding in place: frames has room for room entries (the depth
 * plus SHIM_FRAME_SLACK; fewer frames are kept if it has less). */
unsigned shim_backtrace_into(__u64 *frames, unsigned room);
/* The fork gate: close before fork (1: no thread is unwinding), open after. */
int shim_gate_close(void);
void shim_gate_open(void);
/* In a fork child: no thread is unwinding (the others are gone). */
void shim_gate_reset(void);

/* ---- heap sampling (malloc.c) ------------------------------------------- */
extern __u64 heap_mean;                /* sampling mean in bytes; 0 = off, 1 = every allocation */
/* At init, once attached and before hello: read FAULTLINE_HEAP_SAMPLE, map the sampled set. */
void heap_init(void);
/* After hello: sample what was allocated before the shim was on. */
void heap_start(void);
/* fork (the shim on, shim_busy): before the real fork, close the sampled
 * set's gate (no thread changing it) and say so; after it, open it in the
 * parent, let the child keep its copy, and after the child's hello say
 * which fork it is (FL_R_HEAP_FORK). */
void heap_fork_prepare(void);
void heap_fork_parent(void);
void heap_fork_child(void);
void heap_fork_hello(__u32 ppid);

/*
 * Should this call be recorded?  Initializes lazily (a hook can run before
 * the constructor, from another library's constructor).  Called before the
 * real call, so a resync snapshot owed after dlopen/dlclose goes out first
 * and never contains the call the record that follows describes.
 */
static inline int shim_recording(void)
{
	int s = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE);

	if (__builtin_expect(s == ST_ON, 1)) {
		if (shim_busy)
			return 0;
		if (__builtin_expect(__atomic_load_n(&shim_maps_state, __ATOMIC_RELAXED) != MAPS_CLEAN, 0))
			shim_resync();
		return 1;
	}
	if (s == ST_UNINIT && !shim_busy)
		shim_init();
	return __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON && !shim_busy;
}

/*
 * Should this address-space call be recorded?  As shim_recording(), and also
 * when a signal handler made it while its thread was inside shim_record: the
 * record nests (ring.c takes its stack; a nested emit never waits for the
 * slot the outer one holds).  In other busy windows (fork, a snapshot, heap
 * sampling, start-up) the call passes unrecorded and is counted.
 */
static inline int shim_recording_call(void)
{
	if (shim_recording())
		return 1;
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON || shim_busy <= 0)
		return 0;
	if (shim_in_record)
		return 1;
	__atomic_add_fetch(&shim_nested_lost, 1, __ATOMIC_RELAXED);
	return 0;
}

#endif /* FL_PRELOAD_H */
