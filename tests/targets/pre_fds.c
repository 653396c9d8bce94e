/* SPDX-License-Identifier: MIT */
/*
 * pre_fds N: N mmap+munmap pairs of 3 pages from three call sites, then
 * prints the process's open fds (from /proc/self/fd) with what they are.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) static void site(int which)
{
	void *p = mmap(NULL, 0x3000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, 0x3000))
		abort();
	__asm__ volatile("" ::"r"(which) : "memory");
}

__attribute__((noinline)) static void one(void) { site(1); }
__attribute__((noinline)) static void two(void) { site(2); }
__attribute__((noinline)) static void three(void) { one(); site(3); }

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;
	DIR *d;
	struct dirent *e;

	for (int i = 0; i < n; i++) {
		switch (i % 3) {
		case 0: one(); break;
		case 1: two(); break;
		default: three(); break;
		}
	}
	d = opendir("/proc/self/fd");
	if (!d)
		return 1;
	while ((e = readdir(d))) {
		char path[300], link[256];
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, link, sizeof(link) - 1);
		link[l > 0 ? l : 0] = 0;
		/* pipe:[inode] differs run to run: print the kind only. */
		if (!strncmp(link, "pipe:", 5))
			strcpy(link, "pipe");
		printf("fd %s %s\n", e->d_name, link);
	}
	closedir(d);
	return 0;
}
