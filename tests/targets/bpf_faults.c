/* SPDX-License-Identifier: MIT */
/*
 * bpf_faults MODE N [FILE] - workloads with a known number of page faults of
 * one class, for the bpf suite.  Prints to stderr, one line each:
 *   target addr PID 0xADDR      the region the faults hit (per process)
 *   target rusage PID MIN MAJ   getrusage(RUSAGE_SELF) just before exit
 * THP is disabled on every region (MADV_NOHUGEPAGE): one fault per 4 KiB page.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "pages.h"

static void say_addr(void *p)
{
	fprintf(stderr, "target addr %d %p\n", getpid(), p);
}

static void say_rusage(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "target rusage %d %ld %ld\n", getpid(), ru.ru_minflt, ru.ru_majflt);
}

static void touch_write(char *p, long n)
{
	for (long i = 0; i < n; i++)
		((volatile char *)p)[i * PG] = 1;
}

static long touch_read(char *p, long n)
{
	long s = 0;

	for (long i = 0; i < n; i++)
		s += ((volatile char *)p)[i * PG];
	return s;
}

/* A file of n pages, written with write(2) (so it is in the page cache). */
static int make_file(const char *path, long n)
{
	char buf[PG];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	memset(buf, 'x', sizeof(buf));
	for (long i = 0; i < n; i++)
		if (write(fd, buf, PG) != PG) {
			perror("write");
			exit(1);
		}
	return fd;
}

static char *file_map(int fd, long n, int prot, int flags)
{
	char *p = mmap(NULL, n * PG, prot, flags, fd, 0);

	if (p == MAP_FAILED) {
		perror("mmap file");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : 100;
	const char *path = argc > 3 ? argv[3] : "/tmp/faultline-bpf-test";
	char *p;

	if (!strcmp(mode, "anon_write")) {
		p = anon(n);
		say_addr(p);
		touch_write(p, n);
	} else if (!strcmp(mode, "anon_read")) {
		p = anon(n);
		say_addr(p);
		touch_read(p, n);
	} else if (!strcmp(mode, "cow_zero")) {
		p = anon(n);
		say_addr(p);
		touch_read(p, n);
		touch_write(p, n);
	} else if (!strcmp(mode, "cow_anon") || !strcmp(mode, "cow_reuse")) {
		pid_t c;
		cpu_set_t one;

		/*
		 * One CPU for the whole test: a fresh page sits in its CPU's LRU
		 * batch with an extra reference, and wp_can_reuse_anon_folio()
		 * drains only the local CPU's batch; had we migrated, the kernel
		 * would (really) copy instead of reusing (mm/memory.c).
		 */
		CPU_ZERO(&one);
		CPU_SET(sched_getcpu(), &one);
		sched_setaffinity(0, sizeof(one), &one);
		p = anon(n);
		say_addr(p);
		touch_write(p, n);
		c = fork();
		if (c == 0) {
			if (!strcmp(mode, "cow_anon")) {
				say_addr(p);
				touch_write(p, n); /* copies: the parent still maps every page */
			}
			say_rusage();
			_exit(0);
		}
		waitpid(c, NULL, 0);
		if (!strcmp(mode, "cow_reuse"))
			touch_write(p, n); /* the child is gone: one owner left, reused */
	} else if (!strcmp(mode, "cow_file")) {
		int fd = make_file(path, n);

		p = file_map(fd, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		say_addr(p);
		touch_write(p, n);
		close(fd);
		unlink(path);
	} else if (!strcmp(mode, "shared_write")) {
		int fd = make_file(path, n);

		p = file_map(fd, n, PROT_READ | PROT_WRITE, MAP_SHARED);
		say_addr(p);
		touch_write(p, n);
		close(fd);
		unlink(path);
	} else if (!strcmp(mode, "major_file")) {
		int fd = make_file(path, n);

		fsync(fd);
		p = file_map(fd, n, PROT_READ, MAP_SHARED);
		madvise(p, n * PG, MADV_RANDOM);
		posix_fadvise(fd, 0, n * PG, POSIX_FADV_DONTNEED);
		say_addr(p);
		touch_read(p, n);
		close(fd);
		unlink(path);
	} else if (!strcmp(mode, "remap")) {
		/*
		 * n mappings of 8, 16, ... 8n pages ending at one address, each
		 * unmapped untouched, then one of 8(n + 1) pages there, written:
		 * every earlier start lies inside it (test pieces: a munmap forgets
		 * the cuts inside the range it emptied).
		 */
		long last = 8 * (n + 1);
		char *top = anon(last);

		munmap(top, last * PG);
		top += last * PG;
		for (long r = 1; r <= n; r++) {
			char *q = mmap(top - 8 * r * PG, 8 * r * PG, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (q == MAP_FAILED)
				return 3;
			munmap(q, 8 * r * PG);
		}
		p = mmap(top - last * PG, last * PG, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			return 3;
		madvise(p, last * PG, MADV_NOHUGEPAGE);
		say_addr(p);
		touch_write(p, last);
	} else if (!strcmp(mode, "rss")) {
		p = anon(n);
		say_addr(p);
		touch_write(p, n);
		usleep(3000);
		munmap(p, n * PG);
		usleep(3000);
		p = anon(1); /* an rss event after the drop */
		touch_write(p, 1);
	} else {
		fprintf(stderr, "bpf_faults: unknown mode '%s'\n", mode);
		return 2;
	}
	say_rusage();
	return 0;
}
