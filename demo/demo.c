/* SPDX-License-Identifier: MIT */
/*
 * faultline-demo: a small program whose memory has a story to tell.
 *   load_table()     maps a 4 MiB data file and reads it (page-cache faults)
 *   build_index()    mallocs 32 MiB in 256 KiB chunks (glibc mmaps each one) and fills them
 *   reserve_arena()  mmaps a 64 MiB arena but touches only 8 MiB of it
 *   small_objects()  mallocs 20000 small objects (the brk heap grows)
 *   run_worker()     forks a worker that rewrites half the index (copy-on-write)
 *   then frees half the index and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024UL * 1024)
#define CHUNK (256 * 1024UL)
#define NCHUNKS 128

static char *chunks[NCHUNKS];

/*
 * The file is made, mapped and unlinked at once.  Another demo running at the
 * same time (the docs tests record it side by side) holds the name for
 * those few microseconds: wait for it rather than truncate the file it maps.
 * A name left by a demo that died there is taken after a second.
 */
static int create_table(const char *path)
{
	int fd;
	for (int tries = 0; (fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 && errno == EEXIST;
	     tries++) {
		if (tries == 1000)
			unlink(path);
		usleep(1000);
	}
	return fd;
}

static __attribute__((noinline)) unsigned long load_table(const char *path)
{
	int fd = create_table(path);
	if (fd < 0 || ftruncate(fd, 4 * MiB)) {
		perror(path);
		exit(1);
	}
	unlink(path); /* before mmap: the recording names it "(deleted)" every time (after, it raced) */
	const unsigned char *t = mmap(NULL, 4 * MiB, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (t == MAP_FAILED) {
		perror("mmap table");
		exit(1);
	}
	unsigned long sum = 0;
	for (unsigned long off = 0; off < 4 * MiB; off += 4096)
		sum += t[off];
	return sum;
}

static __attribute__((noinline)) void build_index(void)
{
	for (int i = 0; i < NCHUNKS; i++) {
		chunks[i] = malloc(CHUNK);
		if (!chunks[i])
			exit(1);
		memset(chunks[i], i, CHUNK);
	}
}

static __attribute__((noinline)) char *reserve_arena(void)
{
	char *a = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		exit(1);
	for (unsigned long off = 0; off < 8 * MiB; off += 4096)
		a[off] = 1;
	return a;
}

static __attribute__((noinline)) void small_objects(void)
{
	for (int i = 0; i < 20000; i++) {
		char *p = malloc(64 + i % 128);
		if (p)
			p[0] = (char)i; /* kept on purpose: a small leak */
	}
}

static __attribute__((noinline)) void run_worker(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < NCHUNKS / 2; i++)
			for (unsigned long off = 0; off < CHUNK; off += 4096)
				chunks[i][off] = 2;
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
}

int main(void)
{
	unsigned long sum = load_table("/tmp/faultline-demo.table");
	build_index();
	char *arena = reserve_arena();
	small_objects();
	run_worker();
	for (int i = 0; i < NCHUNKS / 2; i++)
		free(chunks[i]);
	printf("demo: table sum %lu, arena at %p, %d index chunks left\n", sum, (void *)arena, NCHUNKS / 2);
	return 0;
}
