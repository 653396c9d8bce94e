/* SPDX-License-Identifier: MIT */
/*
 * e2e_calls MODE [ARGS]: targets with known address-space behaviour for the
 * e2e suite.  Every mapping is one anonymous page unless said otherwise.
 *   threads T N   T threads make N mmaps in all (and munmap each)
 *   crash K       K mmaps, then a SIGSEGV
 *   kill K        K mmaps, then SIGKILL to itself
 *   exit N        exit with status N
 *   stack         outer() -> middle() -> inner() -> mmap, once
 *   fork          fork; the child makes 3 mmaps and execs "e2e_calls exit 7"; the parent waits
 *   spawn         posix_spawn and vfork+exec of "e2e_calls exit 5"
 *   closefds K    close every fd above 2, then K mmaps
 *   many N        N mmap + munmap pairs
 *   output        writes known lines to stdout and stderr
 *   forks N       forks N children at once (each maps a page and exits 3), then reaps them
 */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *self;
static long per_thread;

static void *map1(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(3);
	return p;
}

static void *worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < per_thread; i++)
		munmap(map1(), 4096);
	return NULL;
}

static int threads(int t, long n)
{
	pthread_t tid[64];
	per_thread = n / t;
	for (int i = 0; i < t; i++)
		pthread_create(&tid[i], NULL, worker, NULL);
	for (int i = 0; i < t; i++)
		pthread_join(tid[i], NULL);
	return 0;
}

__attribute__((noinline)) void *inner(void)
{
	void *p = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	__asm__ volatile("" ::: "memory"); /* keep the call from becoming a tail call */
	return p;
}

__attribute__((noinline)) void *middle(void)
{
	void *p = inner();
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) void *outer(void)
{
	void *p = middle();
	__asm__ volatile("" ::: "memory");
	return p;
}

static int wait_status(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int do_fork(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 3; i++)
			map1();
		execl(self, self, "exit", "7", (char *)NULL);
		_exit(99);
	}
	return wait_status(pid) == 7 ? 0 : 1;
}

static int do_spawn(void)
{
	char *argv[] = { (char *)self, "exit", "5", NULL };
	pid_t pid;
	if (posix_spawn(&pid, self, NULL, NULL, argv, environ) || wait_status(pid) != 5)
		return 1;
	pid = vfork();
	if (pid == 0) {
		execve(self, argv, environ);
		_exit(99);
	}
	return wait_status(pid) == 5 ? 0 : 1;
}

int main(int argc, char **argv)
{
	self = argv[0];
	const char *mode = argc > 1 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : 0;
	if (!strcmp(mode, "threads"))
		return threads((int)n, argc > 3 ? atol(argv[3]) : 0);
	if (!strcmp(mode, "crash") || !strcmp(mode, "kill")) {
		for (long i = 0; i < n; i++)
			map1();
		if (mode[0] == 'k')
			kill(getpid(), SIGKILL);
		*(volatile int *)0 = 1;
	}
	if (!strcmp(mode, "exit"))
		return (int)n;
	if (!strcmp(mode, "stack"))
		return outer() == MAP_FAILED;
	if (!strcmp(mode, "fork"))
		return do_fork();
	if (!strcmp(mode, "spawn"))
		return do_spawn();
	if (!strcmp(mode, "closefds")) {
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
		for (long i = 0; i < n; i++)
			map1();
		return 0;
	}
	if (!strcmp(mode, "many")) {
		for (long i = 0; i < n; i++)
			munmap(map1(), 4096);
		return 0;
	}
	if (!strcmp(mode, "forks")) {
		for (long i = 0; i < n; i++)
			if (fork() == 0) {
				map1();
				usleep(20000); /* all alive at once */
				_exit(3);
			}
		for (long i = 0; i < n; i++)
			if (wait(NULL) < 0)
				return 1;
		return 0;
	}
	if (!strcmp(mode, "output")) {
		printf("to stdout\n");
		fprintf(stderr, "to stderr\n");
		return 0;
	}
	return 2;
}
