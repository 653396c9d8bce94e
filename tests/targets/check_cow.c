/* SPDX-License-Identifier: MIT */
/*
 * check_cow.c - a workload with known numbers for `faultline check`:
 * check_cow TOUCH COW [major]
 * maps TOUCH anonymous pages in touch_region() and writes each (TOUCH
 * anon_new faults), forks, and the child rewrites the first COW of them
 * (COW cow_anon faults in the child).  With "major", the parent first reads
 * one page of a file it dropped from the page cache (a major fault).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static __attribute__((noinline)) char *touch_region(long pages)
{
	char *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(2);
	for (long i = 0; i < pages; i++)
		p[i * PAGE] = 1;
	return p;
}

static __attribute__((noinline)) void cow_pages(char *p, long pages)
{
	for (long i = 0; i < pages; i++)
		p[i * PAGE] = 2;
}

static int read_uncached(void)
{
	char path[] = "/tmp/check_cow.XXXXXX", buf[PAGE] = { 1 };
	int fd = mkstemp(path);
	volatile char *m;

	if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) || fsync(fd))
		return -1;
	unlink(path);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	m = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	return m[0] == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	long touch = argc > 1 ? atol(argv[1]) : 0, cow = argc > 2 ? atol(argv[2]) : 0;
	char *p;
	pid_t pid;
	int status;

	if (argc > 3 && !strcmp(argv[3], "major") && read_uncached())
		return 2;
	p = touch_region(touch);
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		cow_pages(p, cow < touch ? cow : touch);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 2;
	return 0;
}
