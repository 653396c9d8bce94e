/* SPDX-License-Identifier: MIT */
/* pre_spawn [M]: vfork+exec and posix_spawn of itself as "child M"; a child maps 8 pages M times. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "child")) {
		int m = atoi(argv[2]);
		for (int i = 0; i < m; i++)
			mmap(NULL, 0x8000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return 0;
	}
	const char *m = argc > 1 ? argv[1] : "4";
	char *cargv[] = { argv[0], "child", (char *)m, NULL };
	int st1 = -1, st2 = -1;
	pid_t pid = vfork();
	if (pid == 0) {
		execve("/proc/self/exe", cargv, environ);
		_exit(127);
	}
	waitpid(pid, &st1, 0);
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, cargv, environ) == 0)
		waitpid(pid, &st2, 0);
	printf("vfork=%d spawn=%d\n", st1, st2);
	return 0;
}
