/* SPDX-License-Identifier: MIT */
/*
 * sec_sigmmap N: N mmap + munmap pairs of one page, while a timer signal
 * (ITIMER_PROF, as often as the kernel fires it) runs a handler that makes
 * its own mmap + munmap pair of HANDLER_BYTES: signal-handler calls interleave with the thread's own,
 * some of them between a call and the shim's record of it.  Prints
 * "main N handler H": 2 * (N + H) address-space calls in all.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

/* 7 pages: a size neither the main loop nor ld.so uses, so a test can tell them apart */
#define HANDLER_BYTES (7 * 4096)

static volatile sig_atomic_t handled;

static void on_timer(int sig)
{
	(void)sig;
	void *p = mmap(NULL, HANDLER_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, HANDLER_BYTES))
		abort();
	handled++;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPROF, &sa, NULL);
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	setitimer(ITIMER_PROF, &it, NULL);
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || munmap(p, 4096))
			abort();
	}
	/* Blocked first, then stopped: a signal already pending when the timer
	 * stops would otherwise run its handler (and its mmap) after `handled`
	 * was read; blocked, it is never delivered. */
	sigset_t prof;
	sigemptyset(&prof);
	sigaddset(&prof, SIGPROF);
	sigprocmask(SIG_BLOCK, &prof, NULL);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_PROF, &off, NULL);
	int ran = (int)handled;
	printf("main %ld handler %d\n", n, ran);
	return 0;
}
