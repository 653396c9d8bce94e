/* SPDX-License-Identifier: MIT */
/*
 * exit.c - a last smaps sample just before the process exits.
 *
 * Once the kernel reports an exit the address space is gone, and holding
 * the process back from outside (a stop signal, ptrace's exit stop) would
 * change what its parent sees.  From inside it is the program's own time:
 * the shim asks the collector to read smaps now and waits for it, bounded
 * (shim_exit_wait in ring.c; the handshake is in common/channel.h).
 *
 *  - exit() and a return from main: an atexit handler registered by this
 *    file's constructor.  It runs after every handler the program (or a
 *    library initialized after the shim) registered later, so their frees
 *    are in the sample; what runs after it (stdio's flush, the destructors
 *    of shared libraries, _dl_fini) is not.
 *  - _exit() and _Exit() called by the program: hooked here.  glibc's own
 *    exit() reaches the system call without them.
 *  - Not seen: a fatal signal, a raw exit_group system call, a static
 *    binary.  There the last sample and the fault counts and frees since
 *    (the estimate, docs/schema.md) stand for the end.
 *
 * Whether it waits at all is the collector's call (fl_ring_desc
 * exit_min_age_ms: only processes that lived 50 times what reading them
 * costs), so a process's exit status, errno and signals are never touched,
 * and make -j's short children pay nothing but a clock read.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include "preload.h"

#define EXPORT __attribute__((visibility("default")))

/* Resolved in the constructor: a vfork child must not run dlsym (it would
 * take the parent's loader locks in shared memory). */
static void (*real_exit)(int);

static void at_exit(void)
{
	int e = shim_errno;

	shim_exit_wait(FL_EXITING_ATEXIT);
	shim_errno = e;
}

/* Busy: what dlsym allocates is faultline's, not the program's (malloc.c passes it through).  Not
 * atexit: its first write to libc's list of exit handlers copies a page the program writes right
 * after anyway (__libc_start_main registers ld.so's destructor there), a fault BPF would count as
 * faultline's (docs/check.md, "faultline's own footprint"). */
__attribute__((constructor)) static void exit_init(void)
{
	shim_busy++;
	*(void **)&real_exit = dlsym(RTLD_NEXT, "_exit");
	shim_busy--;
	atexit(at_exit);
}

/* _exit and _Exit: the wait, then the real call (a raw exit_group if it was not found). */
static __attribute__((noreturn)) void exit_now(int status)
{
	int e = shim_errno;

	shim_exit_wait(FL_EXITING_UNDERSCORE);
	shim_errno = e;
	if (real_exit)
		real_exit(status);
	for (;;)
		shim_syscall(SYS_exit_group, status);
}

EXPORT __attribute__((noreturn)) void _exit(int status)
{
	exit_now(status);
}

EXPORT __attribute__((noreturn)) void _Exit(int status)
{
	exit_now(status);
}
