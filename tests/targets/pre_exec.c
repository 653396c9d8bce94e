/* SPDX-License-Identifier: MIT */
/* pre_exec [A B]: A mmaps of 2 pages, execve itself as "second B", which maps 10 pages B times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "second")) {
		int b = atoi(argv[2]);
		for (int i = 0; i < b; i++)
			mmap(NULL, 0xa000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("second\n");
		return 0;
	}
	int a = argc > 1 ? atoi(argv[1]) : 3;
	char *b = argc > 2 ? argv[2] : "4";
	for (int i = 0; i < a; i++)
		mmap(NULL, 0x2000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *nargv[] = { argv[0], "second", b, NULL };
	execve("/proc/self/exe", nargv, environ);
	return 127;
}
