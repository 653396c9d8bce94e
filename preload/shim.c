/* SPDX-License-Identifier: MIT */
/*
 * shim.c - libfaultline-preload.so's interposers: every address-space call
 * the target makes through libc (mmap family, brk/sbrk, madvise, shmat/shmdt,
 * fork, vfork, dlopen/dlclose) is passed to the real function and then recorded
 * with its call stack (shim_record, ring.c); the wait family says which child
 * it reaped (FL_R_REAPED), the exec family that an image is about to be
 * replaced (FL_R_EXEC).  The rules every hook follows,
 * and what the shim cannot see, are in preload.h; vfork, dlopen and dlclose
 * enter through tailjumps.S.
 */
/* Why: meson builds with -D_FILE_OFFSET_BITS=64, under which glibc's
 * <sys/mman.h> renames mmap to mmap64 (__REDIRECT); we define both. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include <spawn.h>
#include <stdio.h>

#include "preload.h"

#define EXPORT __attribute__((visibility("default")))

long shim_errno_off;

/* posix_spawn and posix_spawnp: the same arguments (the second a path, or a file name to search) */
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
			char *const[], char *const[]);

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
	void *(*shmat)(int, const void *, int);
	int (*shmdt)(const void *);
	pid_t (*fork)(void);
	pid_t (*vfork)(void);
	pid_t (*wait4)(pid_t, int *, int, struct rusage *);
	int (*system)(const char *);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	spawn_fn posix_spawn;
	spawn_fn posix_spawnp;
	FILE *(*popen)(const char *, const char *);
	void *(*dlopen)(const char *, int);
	int (*dlclose)(void *);
} real;

/* ---- resolving the real functions --------------------------------------- */

/*
 * Tell faultline's BPF programs where this image's threads keep shim_busy
 * (faultline.h, FL_SHIM_MARK): getpid ignores its arguments.  Done before
 * the shim's first piece of work, so that the faults of its own start-up
 * (dlsym, the unwinder's dlopen, the channel, the maps snapshot) are counted
 * as faultline's.  A fork child keeps the image and BPF keeps the offset.
 */
static void announce(void)
{
	static int done;

	if (!done) {
		done = 1;
		shim_syscall(SYS_getpid, FL_SHIM_MARK, (long)((char *)&shim_busy - (char *)__builtin_thread_pointer()));
	}
}

static void resolve(void)
{
	/* dlsym may call malloc (dlerror buffers), and malloc may call mmap:
	 * busy makes those nested calls pass through (raw syscall while
	 * real.mmap is still NULL). */
	shim_busy++;
	announce();
	if (!shim_errno_off) {
		char *e = dlvsym(RTLD_NEXT, "errno", "GLIBC_PRIVATE");
		long off = e ? e - (char *)__builtin_thread_pointer() : 0;
		shim_errno_off = off < 0 && off > -65536 ? off : 0; /* static TLS lies below the thread pointer */
	}
#define R(f) if (!real.f) *(void **)&real.f = dlsym(RTLD_NEXT, #f)
	R(mmap); R(mmap64); R(munmap); R(mprotect); R(pkey_mprotect); R(mremap);
	R(brk); R(sbrk); R(madvise); R(shmat); R(shmdt); R(fork); R(vfork); R(wait4); R(system); R(dlopen); R(dlclose);
	R(execve); R(execvpe); R(fexecve); R(posix_spawn); R(posix_spawnp); R(popen);
#undef R
	shim_busy--;
}

/* ---- initialization ----------------------------------------------------- */

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

void shim_init(void)
{
	int expect = ST_UNINIT, saved, ok = 0;
	const char *path;

	/* the handshake first: errno is a call into libc, and its fault is faultline's only once BPF knows
	 * where shim_busy is */
	shim_busy++;
	announce();
	saved = shim_errno;
	if (!__atomic_compare_exchange_n(&shim_state, &expect, ST_INIT, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		shim_busy--;
		return;
	}
	resolve();
	shim_clock_init();
	path = shim_getenv(FL_CHAN_ENV);
	if (path && *path && shim_strlen(path) < sizeof(shim_chan_path)) {
		shim_copy_str(shim_chan_path, sizeof(shim_chan_path), path);
		shim_depth = parse_depth(shim_getenv("FAULTLINE_DEPTH"));
		shim_pid = (__u32)shim_syscall(SYS_getpid);
		shim_tls_tid = 0;
		shim_find_text();
		if (shim_depth)
			shim_unwind_init();
		__u32 flags = 0;
		ok = shim_attach(&flags) == 0;
		if (ok)
			heap_init();  /* before hello: its mapping is in the snapshot */
		if (ok)
			shim_hello(flags, 0, 0);
		if (ok)
			heap_start();
		if (ok && shim_no_unwind && shim_depth)
			shim_note("stack unwinding disabled: the unwinder (libgcc_s) is unavailable");
		if (ok)
			shim_env_hide();
	}
	__atomic_store_n(&shim_state, ok ? ST_ON : ST_OFF, __ATOMIC_RELEASE);
	shim_busy--;
	shim_errno = saved;
}

__attribute__((constructor)) static void ctor(void)
{
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_UNINIT)
		shim_init();
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
		long v = shim_sys_mmap(addr, len, prot, flags, fd, off);
		return (void *)v;
	}
	if (flags & MAP_FIXED)
		shim_guard(U(addr), len);
	if (!shim_recording_call())
		return fn(addr, len, prot, flags, fd, off);
	r = fn(addr, len, prot, flags, fd, off);
	int e = shim_errno;
	shim_record(FL_K_MMAP, (__s64)(intptr_t)r, r == MAP_FAILED ? e : 0,
	       U(addr), len, (__u64)prot, (__u64)flags, (__u64)(__s64)fd, (__u64)off, NULL);
	shim_errno = e;
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
		return (int)shim_syscall(SYS_munmap, addr, len);
	shim_guard(U(addr), len);
	if (!shim_recording_call())
		return real.munmap(addr, len);
	r = real.munmap(addr, len);
	int e = shim_errno;
	shim_record(FL_K_MUNMAP, r, r ? e : 0, U(addr), len, 0, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/* mprotect: record FL_K_MPROTECT after the real call. */
EXPORT int mprotect(void *addr, size_t len, int prot)
{
	int r;

	NEED(mprotect);
	if (!real.mprotect)
		return (int)shim_syscall(SYS_mprotect, addr, len, prot);
	shim_guard(U(addr), len);
	if (!shim_recording_call())
		return real.mprotect(addr, len, prot);
	r = real.mprotect(addr, len, prot);
	int e = shim_errno;
	shim_record(FL_K_MPROTECT, r, r ? e : 0, U(addr), len, (__u64)prot, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/* pkey_mprotect: record FL_K_PKEY_MPROTECT after the real call. */
EXPORT int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	int r;

	NEED(pkey_mprotect);
	if (!real.pkey_mprotect)
		return (int)shim_syscall(SYS_pkey_mprotect, addr, len, prot, pkey);
	shim_guard(U(addr), len);
	if (!shim_recording_call())
		return real.pkey_mprotect(addr, len, prot, pkey);
	r = real.pkey_mprotect(addr, len, prot, pkey);
	int e = shim_errno;
	shim_record(FL_K_PKEY_MPROTECT, r, r ? e : 0, U(addr), len, (__u64)prot,
	       (__u64)(__s64)pkey, 0, 0, NULL);
	shim_errno = e;
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
		return (void *)shim_syscall(SYS_mremap, old, old_len, new_len, flags, naddr);
	shim_guard(U(old), old_len);
	if (flags & MREMAP_FIXED)
		shim_guard(U(naddr), new_len);
	if (!shim_recording_call())
		return real.mremap(old, old_len, new_len, flags, naddr);
	r = real.mremap(old, old_len, new_len, flags, naddr);
	int e = shim_errno;
	shim_record(FL_K_MREMAP, (__s64)(intptr_t)r, r == MAP_FAILED ? e : 0,
	       U(old), old_len, new_len, (__u64)flags, U(naddr), 0, NULL);
	shim_errno = e;
	return r;
}

/* brk: record FL_K_BRK (libc result 0/-1) after the real call. */
EXPORT int brk(void *addr)
{
	int r;

	NEED(brk);
	if (!real.brk) {
		shim_errno = ENOMEM;
		return -1;
	}
	if (!shim_recording_call())
		return real.brk(addr);
	r = real.brk(addr);
	int e = shim_errno;
	shim_record(FL_K_BRK, r, r ? e : 0, U(addr), 0, 0, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/* sbrk: record FL_K_SBRK (result: the old break) after the real call. */
EXPORT void *sbrk(intptr_t inc)
{
	void *r;

	NEED(sbrk);
	if (!real.sbrk) {
		shim_errno = ENOMEM;
		return (void *)-1;
	}
	if (!shim_recording_call())
		return real.sbrk(inc);
	r = real.sbrk(inc);
	int e = shim_errno;
	shim_record(FL_K_SBRK, (__s64)(intptr_t)r, r == (void *)-1 ? e : 0,
	       (__u64)(__s64)inc, 0, 0, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/* madvise: record FL_K_MADVISE after the real call. */
EXPORT int madvise(void *addr, size_t len, int advice)
{
	int r;

	NEED(madvise);
	if (!real.madvise)
		return (int)shim_syscall(SYS_madvise, addr, len, advice);
	shim_guard(U(addr), len);
	if (!shim_recording_call())
		return real.madvise(addr, len, advice);
	r = real.madvise(addr, len, advice);
	int e = shim_errno;
	shim_record(FL_K_MADVISE, r, r ? e : 0, U(addr), len, (__u64)advice, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/* shmat: record FL_K_SHMAT (shmid, addr, shmflg -> the address) after the real call.
 * SHM_REMAP may map over the shim's ring: guarded like MAP_FIXED (the
 * segment's size is unknown here, so any page from addr on counts). */
EXPORT void *shmat(int shmid, const void *addr, int shmflg)
{
	void *r;

	NEED(shmat);
	if (!real.shmat)
		return (void *)shim_syscall(SYS_shmat, shmid, addr, shmflg);
	if (addr && (shmflg & SHM_REMAP))
		shim_guard(U(addr), ~U(addr));
	if (!shim_recording_call())
		return real.shmat(shmid, addr, shmflg);
	r = real.shmat(shmid, addr, shmflg);
	int e = shim_errno;
	shim_record(FL_K_SHMAT, (__s64)(intptr_t)r, r == (void *)-1 ? e : 0, (__u64)shmid, U(addr),
		    (__u64)shmflg, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/* shmdt: record FL_K_SHMDT (addr -> 0) after the real call. */
EXPORT int shmdt(const void *addr)
{
	int r;

	NEED(shmdt);
	if (!real.shmdt)
		return (int)shim_syscall(SYS_shmdt, addr);
	if (!shim_recording_call())
		return real.shmdt(addr);
	r = real.shmdt(addr);
	int e = shim_errno;
	shim_record(FL_K_SHMDT, r, r ? e : 0, U(addr), 0, 0, 0, 0, 0, NULL);
	shim_errno = e;
	return r;
}

/*
 * Has the program installed a seccomp filter?  A filter may kill the process
 * for a syscall the program itself never makes (the fork child's openat of
 * the channel, the maps snapshot), so once one is there (it cannot be
 * removed) the shim makes none of those: fork children and dlopen resyncs
 * go unrecorded, and a note says so.  prctl failing other than with EINVAL
 * (no seccomp in this kernel) is a filter refusing it.
 */
static int sandboxed(void)
{
	static int known;

	if (!__atomic_load_n(&known, __ATOMIC_RELAXED)) {
		long r = shim_syscall(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0);
		if (r == 2 || (r < 0 && shim_errno != EINVAL))
			__atomic_store_n(&known, 1, __ATOMIC_RELAXED);
	}
	return __atomic_load_n(&known, __ATOMIC_RELAXED);
}

/* Say once (per *said) that a seccomp filter keeps the shim from following. */
static void note_sandboxed(int *said, const char *what)
{
	if (!__atomic_exchange_n(said, 1, __ATOMIC_RELAXED))
		shim_note(what);
}

static int said_fork, said_dlopen;

/* The fork child: a new process image with only this thread.  Take a ring
 * of our own; the parent's ring mapping is inherited and must go. */
static void fork_child(__u64 parent_seq, int gated, int stay_off, __u32 ppid)
{
	__u32 flags = FL_HELLO_FORKED;

	if (stay_off) {
		/* No syscall at all: the parent's ring stays mapped, unused. */
		__atomic_store_n(&shim_state, ST_OFF, __ATOMIC_RELEASE);
		return;
	}
	shim_pid = (__u32)shim_syscall(SYS_getpid);
	shim_tls_tid = shim_pid;
	__atomic_store_n(&shim_seq, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&shim_nested_lost, 0, __ATOMIC_RELAXED); /* the parent's to say */
	shim_gate_reset();
	/* The child's HELLO below carries a full snapshot; a RESYNC a parent
	 * thread was sending at fork would never finish here. */
	__atomic_store_n(&shim_maps_state, MAPS_CLEAN, __ATOMIC_RELAXED);
	shim_detach_inherited();
	heap_fork_child();
	if (!gated)
		shim_no_unwind = 1;
	if (shim_attach(&flags) < 0) {
		__atomic_store_n(&shim_state, ST_OFF, __ATOMIC_RELEASE);
		return;
	}
	shim_hello(flags, parent_seq, ppid);
	heap_fork_hello(ppid);
	if (!gated && shim_depth)
		shim_note("stack unwinding disabled in this fork child: a thread was unwinding at fork");
}

/* fork: record FL_K_FORK in the parent; the child takes its own ring. */
EXPORT pid_t fork(void)
{
	int rec, gated = 0, on, e, stay_off;
	__u64 pseq;
	__u32 ppid;
	pid_t pid;

	NEED(fork);
	if (!real.fork) {
		shim_errno = ENOSYS;
		return -1;
	}
	rec = shim_recording();
	on = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON;
	if (!on)
		return real.fork();
	/* busy during the real fork: atfork handlers' calls pass through. */
	shim_busy++;
	e = shim_errno;
	stay_off = sandboxed();
	shim_errno = e;
	if (rec)
		gated = shim_gate_close();
	pseq = __atomic_load_n(&shim_seq, __ATOMIC_RELAXED);
	ppid = shim_pid;
	if (!stay_off)
		heap_fork_prepare();
	/* The real fork is the program's work (glibc's malloc and stdio locks,
	 * its atfork handlers, the copies the child's first writes make): still
	 * busy (their calls pass through), but not faultline's to the BPF fault
	 * count, which takes only busy > 0 (preload.h). */
	shim_busy -= SHIM_PROGRAM;
	pid = real.fork();
	shim_busy += SHIM_PROGRAM;
	e = shim_errno;
	if (pid != 0 && !stay_off)
		heap_fork_parent();
	if (pid == 0) {
		/* Also for a fork nested in the shim (a signal handler): the
		 * child must not write into the parent's ring. */
		fork_child(pseq, gated, stay_off, ppid);
		shim_busy--;
		shim_errno = e;
		return 0;
	}
	if (rec)
		shim_gate_open();
	if (stay_off && pid > 0)
		note_sandboxed(&said_fork, "seccomp filter installed: this process's fork children are not recorded by the shim");
	shim_busy--;
	if (rec)
		shim_record(FL_K_FORK, pid, pid < 0 ? e : 0, 0, 0, 0, 0, 0, 0, NULL);
	shim_errno = e;
	return pid;
}

static pid_t vfork_fail(void)
{
	shim_errno = ENOSYS;
	return -1;
}

/* vfork pre-hook (called by the asm entry in tailjumps.S): record FL_K_VFORK before
 * the call (result -1: unknown; the child registers itself if it execs with
 * the shim).  Returns the function the asm entry jumps to. */
void *fl_shim_vfork_pre(void)
{
	int e = shim_errno;

	NEED(vfork);
	if (shim_recording())
		shim_record(FL_K_VFORK, -1, 0, 0, 0, 0, 0, 0, 0, NULL);
	shim_errno = e;
	if (real.vfork)
		return (void *)real.vfork;
	return real.fork ? (void *)real.fork : (void *)vfork_fail;
}

/* ---- children reaped: wait4, waitpid, wait, wait3, waitid --------------- */

/*
 * In shim-only mode a child its own parent reaps is not faultline's, and once
 * reaped nothing of it is left in /proc.  So the parent's shim says which
 * child it reaped, how it ended and the kernel's fault totals for it
 * (FL_R_REAPED).  Each call reaches the kernel as the program made it, with
 * the program's pointers passed as they are (a bad one still fails with
 * EFAULT; they are read back only after the kernel wrote them); where the
 * program passed none, the hook passes a status and an rusage of its own,
 * which the kernel fills for the returned child only.  Sent even from inside
 * the shim (a SIGCHLD handler interrupting a hook): a record nested in its
 * thread's own emit only waits for slots before the one the outer emit holds.
 *
 * Not seen: glibc's internal waits (pclose(); system() is hooked whole,
 * below), raw syscalls, and children the kernel reaps itself (SIGCHLD
 * ignored): each such child keeps what faultline read of its zombie, or is
 * an exit_unknown loss.
 */
static void send_reaped(pid_t child, int status, const struct rusage *ru)
{
	struct fl_reaped r;
	int e = shim_errno;

	if (child < 0 || !(WIFEXITED(status) || WIFSIGNALED(status)) ||
	    __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON)
		return;
	shim_busy++;
	memset(&r, 0, sizeof(r));
	r.h.type = FL_R_REAPED;
	r.h.size = sizeof(r);
	r.pid = shim_pid;
	r.child = (__u32)child;
	r.status = status;
	r.time_ns = shim_now_ns();
	r.flags = FL_REAPED_RUSAGE;
	r.min_flt = (__u64)ru->ru_minflt;
	r.maj_flt = (__u64)ru->ru_majflt;
	shim_emit(&r, sizeof(r));
	shim_busy--;
	shim_errno = e;
}

/* system()'s reap (FL_REAPED_SYSTEM): its status, span and children's rusage growth. */
static void send_system(int status, const struct rusage *grown, __u64 since)
{
	struct fl_reaped r;

	if (!(WIFEXITED(status) || WIFSIGNALED(status)))
		return;
	shim_busy++;
	memset(&r, 0, sizeof(r));
	r.h.type = FL_R_REAPED;
	r.h.size = sizeof(r);
	r.pid = shim_pid;
	r.status = status;
	r.time_ns = shim_now_ns();
	r.since_ns = since;
	r.flags = FL_REAPED_RUSAGE | FL_REAPED_SYSTEM;
	r.min_flt = (__u64)grown->ru_minflt;
	r.maj_flt = (__u64)grown->ru_majflt;
	shim_emit(&r, sizeof(r));
	shim_busy--;
}

/* wait4: the kernel's wait4 with the program's arguments (its own where the
 * program passed NULL); a reaped child is said (FL_R_REAPED). */
EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	struct rusage own_ru;
	int own_status;
	pid_t r;

	NEED(wait4);
	if (!real.wait4)
		return (pid_t)shim_syscall(SYS_wait4, pid, status, options, ru);
	r = real.wait4(pid, status ? status : &own_status, options, ru ? ru : &own_ru);
	if (r > 0)
		send_reaped(r, status ? *status : own_status, ru ? ru : &own_ru);
	return r;
}

/* waitpid, wait, wait3: glibc makes each a wait4 system call (NULL rusage but wait3's). */
EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	return wait4(pid, status, options, NULL);
}

EXPORT pid_t wait(int *status)
{
	return wait4(-1, status, 0, NULL);
}

EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	return wait4(-1, status, options, ru);
}

/*
 * glibc's system() and popen() spawn their shell with environ, inside libc
 * where no hook sees the exec: environ holds faultline's variables (env.c)
 * for the call.  Another thread changing the environment meanwhile copies
 * them into its own array, which stays: the program then sees them.
 */
extern char **__environ;

/* environ back to the program's array, unless another thread replaced ours meanwhile. */
static void environ_back(char *const *ours, char **mine)
{
	__atomic_compare_exchange_n(&__environ, (char ***)&ours, mine, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static int with_env_system(const char *cmd)
{
	char **mine = __environ;
	SHIM_ENV_EXEC(mine, env);
	int r;

	__environ = (char **)env;
	r = real.system(cmd);
	environ_back(env, mine);
	return r;
}

EXPORT FILE *popen(const char *cmd, const char *type)
{
	NEED(popen);
	if (!real.popen) {
		shim_errno = ENOSYS;
		return NULL;
	}
	char **mine = __environ;
	SHIM_ENV_EXEC(mine, env);
	FILE *f;

	__environ = (char **)env;
	f = real.popen(cmd, type);
	environ_back(env, mine);
	return f;
}

/*
 * system: glibc spawns the shell and reaps it with an internal waitpid.  The
 * hook says the reap as child 0 with the call's time span and how much
 * RUSAGE_CHILDREN grew over it (getrusage: two system calls the program did
 * not make, so not under a seccomp filter); the collector finds the one
 * child that started in that span (reaped.c).
 */
EXPORT int system(const char *cmd)
{
	struct rusage before, after;
	__u64 since = 0;
	int r, said, e;

	NEED(system);
	if (!real.system) {
		shim_errno = ENOSYS;
		return -1;
	}
	e = shim_errno;
	said = cmd && __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON && !sandboxed() &&
	       (__u32)shim_syscall(SYS_getpid) == shim_pid && shim_syscall(SYS_getrusage, RUSAGE_CHILDREN, &before) == 0;
	shim_errno = e;
	if (said)
		since = shim_now_ns();
	r = with_env_system(cmd);
	e = shim_errno;
	if (said && r != -1 && shim_syscall(SYS_getrusage, RUSAGE_CHILDREN, &after) == 0) {
		after.ru_minflt -= before.ru_minflt;
		after.ru_majflt -= before.ru_majflt;
		send_system(r, &after, since);
	}
	shim_errno = e;
	return r;
}

/* A waitid's siginfo as a wait status (exited or killed), or -1. */
static int waitid_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_KILLED:
		return si->si_status & 0x7f;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	}
	return -1;
}

/*
 * waitid: glibc's calls the system call with a NULL rusage (its fifth
 * argument); the hook makes the same call with an rusage of its own.  glibc's
 * waitid is a cancellation point: asynchronous cancellation around the call,
 * as glibc's own cancellable calls do.  WNOWAIT leaves the child a zombie:
 * nothing is said (faultline reads the zombie, or a later reap says it).
 */
EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	struct rusage own_ru;
	siginfo_t own_info;
	siginfo_t *si = info ? info : &own_info;
	int old, e;
	long r;

	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
	r = shim_syscall(SYS_waitid, idtype, id, si, options, &own_ru);
	e = shim_errno;
	pthread_setcanceltype(old, NULL);
	if (r == 0 && !(options & WNOWAIT) && si->si_pid > 0)
		send_reaped(si->si_pid, waitid_status(si), &own_ru);
	shim_errno = e;
	return (int)r;
}

/* ---- exec: execve, execv, execvp, execvpe, execl, execle, execlp, fexecve - */

/*
 * In shim-only mode a new image is known by its shim's hello.  One whose shim
 * cannot say hello (a static binary, LD_PRELOAD or the channel's variable
 * removed, a /proc of its own after `unshare --mount-proc`) would silently
 * continue the old image's row: so the old image says it is about to exec
 * (FL_R_EXEC), and again if the exec failed (the call returned).  Not from a
 * vfork or raw clone child (it shares this image's memory and cached pid but
 * is another process: getpid tells), and not when recording is off.
 * glibc's own execs (posix_spawn, system, popen) run in such children.
 */
static void send_exec(const char *path, int err)
{
	struct fl_exec_rec x;

	shim_busy++;
	memset(&x, 0, sizeof(x));
	x.h.type = FL_R_EXEC;
	x.h.size = sizeof(x);
	x.pid = shim_pid;
	x.err = err;
	x.time_ns = shim_now_ns();
	shim_copy_str(x.path, sizeof(x.path), path);
	shim_emit(&x, sizeof(x));
	shim_busy--;
}

/* Before an exec: 1 when said (then exec_returned must follow a failure). */
static int exec_announce(const char *path)
{
	int e = shim_errno, said;

	said = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON &&
	       (__u32)shim_syscall(SYS_getpid) == shim_pid;
	if (said)
		send_exec(path, 0);
	shim_errno = e;
	return said;
}

/* The exec returned: it failed, and the old image goes on. */
static void exec_returned(int said)
{
	int e = shim_errno;

	if (said)
		send_exec(NULL, e ? e : ENOEXEC);
	shim_errno = e;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	NEED(execve);
	SHIM_ENV_EXEC(envp, env);
	int said = exec_announce(path);
	int r = real.execve ? real.execve(path, argv, env) : (int)shim_syscall(SYS_execve, path, argv, env);
	exec_returned(said);
	return r;
}

/* execv and execvp are execve and execvpe with environ (glibc's are): one hook puts faultline's variables back. */
EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	NEED(execvpe);
	if (!real.execvpe) {
		shim_errno = ENOSYS;
		return -1;
	}
	SHIM_ENV_EXEC(envp, env);
	int said = exec_announce(file);
	int r = real.execvpe(file, argv, env);
	exec_returned(said);
	return r;
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	NEED(fexecve);
	if (!real.fexecve) {
		shim_errno = ENOSYS;
		return -1;
	}
	SHIM_ENV_EXEC(envp, env);
	int said = exec_announce("");
	int r = real.fexecve(fd, argv, env);
	exec_returned(said);
	return r;
}

/* posix_spawn, posix_spawnp: the child's exec is glibc's own; its environment gets faultline's variables here. */
static int spawn(spawn_fn fn, pid_t *pid, const char *name, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (!fn)
		return ENOSYS;
	SHIM_ENV_EXEC(envp, env);
	return fn(pid, name, fa, attr, argv, env);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	NEED(posix_spawn);
	return spawn(real.posix_spawn, pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	NEED(posix_spawnp);
	return spawn(real.posix_spawnp, pid, file, fa, attr, argv, envp);
}

/* execl, execle, execlp: the argument list as an array, as glibc's own do
 * (posix/execl.c), then the array form.  execle's envp follows the NULL. */
#define ARGV_FROM_LIST(arg, ap, argv, envp_out)                              \
	size_t n_ = 1;                                                        \
	va_start(ap, arg);                                                    \
	while (va_arg(ap, const char *))                                      \
		n_++;                                                         \
	va_end(ap);                                                           \
	char *argv[n_ + 1];                                                   \
	argv[0] = (char *)arg;                                                \
	va_start(ap, arg);                                                    \
	for (size_t i_ = 1; i_ <= n_; i_++)                                   \
		argv[i_] = va_arg(ap, char *);                                \
	envp_out;                                                             \
	va_end(ap)

EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_LIST(arg, ap, argv, (void)0);
	return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_LIST(arg, ap, argv, (void)0);
	return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	char **envp;
	ARGV_FROM_LIST(arg, ap, argv, envp = va_arg(ap, char **));
	return execve(path, argv, envp);
}

/* dlopen/dlclose are about to map or unmap where no hook sees it: owe a
 * resync snapshot, unless a seccomp filter could kill the process for the
 * open of /proc/self/maps it takes. */
static void maps_changed(void)
{
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON)
		return;
	shim_busy++;
	if (sandboxed())
		note_sandboxed(&said_dlopen, "seccomp filter installed: mappings made by dlopen/dlclose are not resynced by the shim");
	else
		shim_maps_changed();
	shim_busy--;
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
	int e = shim_errno;

	NEED(dlopen);
	if (shim_recording())
		shim_record(FL_K_DLOPEN, -1, 0, (__u64)(__s64)mode, U(file), 0, 0, 0, 0,
		       file ? file : "");
	maps_changed();
	shim_errno = e;
	return real.dlopen ? (void *)real.dlopen : (void *)dlopen_fail;
}

/* dlclose pre-hook: record FL_K_DLCLOSE (a0 = handle) before the call and
 * mark the maps dirty.  Returns the real dlclose for the asm entry to jump to. */
void *fl_shim_dlclose_pre(void *handle)
{
	int e = shim_errno;

	NEED(dlclose);
	if (shim_recording())
		shim_record(FL_K_DLCLOSE, -1, 0, U(handle), 0, 0, 0, 0, 0, NULL);
	maps_changed();
	shim_errno = e;
	return real.dlclose ? (void *)real.dlclose : (void *)dlclose_fail;
}
