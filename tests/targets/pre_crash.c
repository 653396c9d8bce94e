/* SPDX-License-Identifier: MIT */
/* pre_crash segv|kill K: K mmaps of 3 pages, then dies by that signal. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int k = argc > 2 ? atoi(argv[2]) : 10;

	for (int i = 0; i < k; i++)
		mmap(NULL, 0x3000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (argc > 1 && !strcmp(argv[1], "kill"))
		kill(getpid(), SIGKILL);
	*(volatile int *)0 = 1;
	return 0;
}
