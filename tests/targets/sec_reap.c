/* SPDX-License-Identifier: MIT */
/*
 * sec_reap.c - children reaped by their own parent, every way glibc offers
 * (security/reaped).  Each child writes pages its parent touched before the
 * fork (copy-on-write faults, as the kernel's `cow` selftest does) and exits
 * with a status of its own.  For each child the parent prints
 *   pid ppid exit_code exit_signal min_flt maj_flt
 * with the kernel's rusage of it: the parent's RUSAGE_CHILDREN before and
 * after the reap (one thread: nothing else adds to it), which for a child
 * that reaped children of its own includes theirs.
 *
 *   variants   wait, waitpid, wait3, wait4, waitid (P_PID, P_PIDFD, after a
 *              WNOWAIT peek), a child killed by SIGTERM, and a child that
 *              reaps a grandchild
 *   unseen     reaps no shim sees: system(), popen/pclose, SIGCHLD ignored
 *   exec N     N children one after the other, each execs /bin/true at once
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 64
static char *buf;

static void children_faults(long f[2])
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	f[0] = ru.ru_minflt;
	f[1] = ru.ru_majflt;
}

/* A child: write n of the parent's pages (n copies), exit with code. */
static pid_t child(int n, int code)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++)
			buf[i * 4096] = 2;
		_exit(code);
	}
	return pid;
}

static void print(pid_t pid, int st, const long before[2])
{
	long after[2];
	children_faults(after);
	printf("%d %d %d %d %ld %ld\n", (int)pid, (int)getpid(), WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	       WIFSIGNALED(st) ? WTERMSIG(st) : -1, after[0] - before[0], after[1] - before[1]);
	fflush(stdout);
}

static int fail(const char *what)
{
	fprintf(stderr, "sec_reap: %s: %s\n", what, strerror(errno));
	return 1;
}

static int siginfo_status(const siginfo_t *si)
{
	return si->si_code == CLD_EXITED ? (si->si_status & 0xff) << 8 : si->si_status & 0x7f;
}

static int variants(void)
{
	long b[2];
	int st;
	struct rusage ru;
	siginfo_t si;
	pid_t pid;

	children_faults(b); pid = child(5, 10);
	if (wait(&st) != pid) return fail("wait");
	print(pid, st, b);
	children_faults(b); pid = child(10, 11);
	if (waitpid(pid, &st, 0) != pid) return fail("waitpid");
	print(pid, st, b);
	children_faults(b); pid = child(15, 12);
	if (wait3(&st, 0, &ru) != pid) return fail("wait3");
	print(pid, st, b);
	children_faults(b); pid = child(20, 13);
	if (wait4(pid, &st, 0, &ru) != pid) return fail("wait4");
	if (ru.ru_minflt < 20) return fail("wait4's rusage");
	print(pid, st, b);
	children_faults(b); pid = child(25, 14);
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED) || si.si_pid != pid) return fail("waitid");
	print(pid, siginfo_status(&si), b);
	children_faults(b); pid = child(30, 15);
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0 || waitid(P_PIDFD, (id_t)fd, &si, WEXITED) || si.si_pid != pid) return fail("waitid P_PIDFD");
	close(fd);
	print(pid, siginfo_status(&si), b);
	children_faults(b); pid = child(35, 16);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) || si.si_pid != pid) return fail("waitid WNOWAIT");
	usleep(50000); /* the peek leaves a zombie: faultline may read it meanwhile, or not */
	if (waitpid(pid, &st, 0) != pid) return fail("waitpid after the peek");
	print(pid, st, b);
	/* killed: by SIGTERM, before it exits */
	children_faults(b);
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 40; i++)
			buf[i * 4096] = 2;
		raise(SIGTERM);
		_exit(99);
	}
	if (waitpid(pid, &st, 0) != pid) return fail("waitpid (killed)");
	print(pid, st, b);
	/* a child that reaps its own child: its rusage holds the grandchild's */
	children_faults(b);
	pid = fork();
	if (pid == 0) {
		long gb[2];
		children_faults(gb);
		pid_t g = child(45, 17);
		if (waitpid(g, &st, 0) != g) _exit(fail("waitpid (grandchild)"));
		print(g, st, gb);
		for (int i = 0; i < 50; i++)
			buf[i * 4096] = 3;
		_exit(18);
	}
	if (waitpid(pid, &st, 0) != pid) return fail("waitpid (middle)");
	print(pid, st, b);
	return 0;
}

static int unseen(void)
{
	int st = system("exit 3");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 3) return fail("system");
	FILE *f = popen("exit 4", "r");
	if (!f || pclose(f) != 4 << 8) return fail("pclose");
	signal(SIGCHLD, SIG_IGN); /* the kernel reaps them: wait has no one */
	for (int i = 0; i < 3; i++)
		child(5, 5);
	if (wait(&st) != -1 || errno != ECHILD) return fail("wait with SIGCHLD ignored");
	return 0;
}

static int exec_true(int n)
{
	for (int i = 0; i < n; i++) {
		int st;
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			return fail("fork, exec /bin/true");
	}
	return 0;
}

int main(int argc, char **argv)
{
	buf = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) return fail("mmap");
	memset(buf, 1, PAGES * 4096);
	if (argc == 2 && !strcmp(argv[1], "variants"))
		return variants();
	if (argc == 2 && !strcmp(argv[1], "unseen"))
		return unseen();
	if (argc == 3 && !strcmp(argv[1], "exec"))
		return exec_true(atoi(argv[2]));
	fprintf(stderr, "usage: sec_reap variants|unseen|exec N\n");
	return 2;
}
