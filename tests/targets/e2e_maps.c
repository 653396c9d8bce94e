/* SPDX-License-Identifier: MIT */
/*
 * e2e_maps DIR: changes its address space in every way the VMA model
 * follows, and at each checkpoint K copies /proc/self/maps to DIR/maps.K,
 * then makes the marker call madvise(K * 4096, 0, MADV_NORMAL) (a no-op the
 * recording shows with a0 = K * 4096) so the test can ask the model for
 * the same moment.  No malloc after start: the copy uses raw read/write.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096UL

static const char *dir;
static char buf[1 << 20];

static void checkpoint(int k)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/maps.%d", dir, k);
	int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n, len = 0;
	while (in >= 0 && (n = read(in, buf + len, sizeof(buf) - (size_t)len)) > 0)
		len += n;
	if (in < 0 || out < 0 || write(out, buf, (size_t)len) != len)
		exit(2);
	close(in);
	close(out);
	madvise((void *)(k * PG), 0, MADV_NORMAL);
}

static char *map(void *addr, size_t pages, int prot, int flags)
{
	char *p = mmap(addr, pages * PG, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(3);
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	dir = argv[1];
	checkpoint(1);

	/* split by munmap and by mprotect of a sub-range */
	char *a = map(NULL, 32, PROT_READ | PROT_WRITE, 0);
	munmap(a + 4 * PG, 2 * PG);
	mprotect(a + 10 * PG, 4 * PG, PROT_READ);
	mprotect(a + 20 * PG, 12 * PG, PROT_NONE);
	checkpoint(2);

	/* mremap: shrink, grow in place or move, move to a fixed place */
	char *b = map(NULL, 16, PROT_READ | PROT_WRITE, 0);
	b = mremap(b, 16 * PG, 8 * PG, 0);
	char *c = mremap(b, 8 * PG, 64 * PG, MREMAP_MAYMOVE);
	char *hole = map(NULL, 24, PROT_NONE, 0);
	munmap(hole, 24 * PG);
	char *d = mremap(c, 64 * PG, 24 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	if (c == MAP_FAILED || d != hole)
		return 4;
	checkpoint(3);

	/* MAP_FIXED over the middle of an existing mapping, and a file mapping */
	char *e = map(NULL, 16, PROT_READ, 0);
	map(e + 4 * PG, 4, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_FIXED);
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	void *f = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return 5;
	checkpoint(4);

	/* the program break: grow, then shrink */
	sbrk(64 * PG);
	sbrk(-16 * (long)PG);
	checkpoint(5);

	/* a raw syscall no shim sees, then a library loaded by ld.so */
	syscall(SYS_mmap, NULL, 8 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *lib = dlopen("libz.so.1", RTLD_NOW);
	checkpoint(6);
	if (lib)
		dlclose(lib);
	checkpoint(7);
	return 0;
}
