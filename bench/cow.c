/* SPDX-License-Identifier: MIT */
/* cow PAGES ROUNDS: touch PAGES pages, then ROUNDS times fork a child that writes every page. */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)atol(argv[1]) : 32768;
	long rounds = argc > 2 ? atol(argv[2]) : 4;
	char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < n; i++)
		p[i * 4096] = 1;
	for (long r = 0; r < rounds; r++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (size_t i = 0; i < n; i++)
				p[i * 4096] = 2;
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
	}
	return 0;
}
