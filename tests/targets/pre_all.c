/* SPDX-License-Identifier: MIT */
/*
 * pre_all: every hooked call once (or a known number of times), printing
 * only what must not change under the shim: results relative to each
 * other, errno, the signal handler and mask, the set of open fds.  Exits 7.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
	(void)sig;
	got++;
}

static void print_fds(const char *when)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	printf("fds %s:", when);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			printf(" %s", e->d_name);
	printf("\n");
	if (d)
		closedir(d);
}

int main(void)
{
	struct sigaction sa, now;
	sigset_t mask0, mask1;
	long pg = sysconf(_SC_PAGESIZE);
	int r, st;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	memset(&mask0, 0, sizeof(mask0));
	memset(&mask1, 0, sizeof(mask1));
	sigprocmask(SIG_SETMASK, NULL, &mask0);
	print_fds("start");

	errno = 777;
	char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap ok=%d errno=%d\n", p != MAP_FAILED, errno);
	char *q = mmap64(NULL, 2 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap64 ok=%d\n", q != MAP_FAILED);
	printf("mprotect=%d\n", mprotect(p, pg, PROT_READ));
	errno = 0;
	r = pkey_mprotect(p, pg, PROT_READ | PROT_WRITE, -1);
	printf("pkey_mprotect=%d errno=%d\n", r, r ? errno : 0);
	printf("madvise=%d\n", madvise(p, 3 * pg, MADV_DONTNEED));
	char *p2 = mremap(p, 3 * pg, 6 * pg, MREMAP_MAYMOVE);
	printf("mremap ok=%d\n", p2 != MAP_FAILED);
	char *fixed = mmap(NULL, 8 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p3 = mremap(p2, 6 * pg, 6 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, fixed + pg);
	printf("mremap fixed at=%d\n", p3 == fixed + pg);
	printf("munmap=%d %d %d\n", munmap(q, 2 * pg), munmap(fixed, 8 * pg), munmap(p2, pg) /* already gone: 0 */);

	char *b0 = sbrk(0);
	char *b1 = sbrk(pg);
	char *b2 = sbrk(-pg);
	printf("sbrk same=%d grown=%d\n", b0 == b1, b2 == b1 + pg);
	printf("brk=%d at=%d\n", brk(b0), sbrk(0) == b0);

	pid_t pid = fork();
	if (pid == 0) {
		mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		_exit(3);
	}
	waitpid(pid, &st, 0);
	printf("fork child exit=%d\n", WEXITSTATUS(st));
	pid = vfork();
	if (pid == 0)
		_exit(4);
	waitpid(pid, &st, 0);
	printf("vfork child exit=%d\n", WEXITSTATUS(st));

	void *h = dlopen("libm.so.6", RTLD_NOW);
	double (*cosf_)(double) = h ? (double (*)(double))dlsym(h, "cos") : NULL;
	double c0 = cosf_ ? cosf_(0) : -1;
	printf("dlopen ok=%d cos0=%g\n", h != NULL, c0);
	printf("dlclose=%d\n", h ? dlclose(h) : -1);
	h = dlopen("libdoes-not-exist.so.9", RTLD_NOW);
	printf("dlopen missing=%d err=%s\n", h == NULL, h ? "" : dlerror());

	sigaction(SIGUSR1, NULL, &now);
	printf("handler own=%d\n", now.sa_handler == on_usr1);
	raise(SIGUSR1);
	printf("handler ran=%d\n", (int)got);
	sigprocmask(SIG_SETMASK, NULL, &mask1);
	printf("mask same=%d\n", memcmp(&mask0, &mask1, sizeof(mask0)) == 0);
	print_fds("end");
	fprintf(stderr, "stderr line\n");
	return 7;
}
