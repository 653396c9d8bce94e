/* SPDX-License-Identifier: MIT */
/*
 * pre_forkmt FORKS M: 4 threads map and unmap in a loop while main forks
 * FORKS times; each child maps 6 pages M times and _exits.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *spinner(void *arg)
{
	(void)arg;
	while (!stop) {
		void *p = mmap(NULL, 0x4000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 0x4000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 50, m = argc > 2 ? atoi(argv[2]) : 5, bad = 0;
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, spinner, NULL);
	for (int i = 0; i < forks; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (int j = 0; j < m; j++)
				mmap(NULL, 0x6000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			_exit(0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	}
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("forks=%d bad=%d\n", forks, bad);
	return bad != 0;
}
