/* SPDX-License-Identifier: MIT */
/* timeit FILE CMD [ARGS...]: run CMD, append "WALL CPU" to FILE (seconds:
 * its wall time from fork to exit, and the user + system CPU time it and
 * its children used), exit with its status.  bench/heap.py puts it between
 * `faultline record` and the workload, so the times are the target's own,
 * without faultline's start-up and end; CPU time is what the shim adds
 * inside the target, and moves far less than wall time when other work
 * shares the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	int st;

	if (argc < 3)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	struct rusage ru;
	if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	FILE *f = fopen(argv[1], "a");
	if (f) {
		fprintf(f, "%.6f %.6f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9,
			(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
		fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
