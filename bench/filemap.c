/* SPDX-License-Identifier: MIT */
/* filemap: read-only file mmap read from cold page cache.
 * Exercises: major page faults (page-cache misses that need disk I/O).
 * The file (default /var/tmp/filemap.dat, on disk, not tmpfs) is created once if absent or
 * of the wrong size; every run then fsyncs it, drops it from the page cache with
 * posix_fadvise(POSIX_FADV_DONTNEED), mmaps it PROT_READ and reads one byte per page.
 * Usage: filemap [MiB=256] [path] [rand]   ("rand" = MADV_RANDOM: no readahead)
 * Expected: MiB*256 pages read (65536). Without "rand", kernel readahead
 *   (read_ahead_kb=8192 on the bench machine) and fault-around (16 pages) make far fewer
 *   faults than pages, and most faults minor; with "rand" about one major fault per page. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096UL
#define DIE(msg) do { perror(msg); exit(1); } while (0)
/* Keeps the compiler from dropping reads and writes. */
static volatile unsigned long sink;
static inline long arg(int argc, char **argv, int i, long def)
{
    return argc > i ? atol(argv[i]) : def;
}

int main(int argc, char **argv)
{
    size_t len = (size_t)arg(argc, argv, 1, 256) << 20;
    const char *path = argc > 2 ? argv[2] : "/var/tmp/filemap.dat";
    int rnd = argc > 3 && !strcmp(argv[3], "rand");
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) DIE("open");
    if (fstat(fd, &st)) DIE("fstat");
    if ((size_t)st.st_size != len) {
        static char buf[1 << 20];
        if (ftruncate(fd, 0)) DIE("ftruncate");
        for (size_t off = 0; off < len; off += sizeof buf) {
            memset(buf, (int)(off >> 20) | 1, sizeof buf);
            if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) DIE("write");
        }
    }
    if (fsync(fd)) DIE("fsync");
    if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) DIE("fadvise");
    char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) DIE("mmap");
    if (rnd && madvise(p, len, MADV_RANDOM)) DIE("madvise");
    unsigned long sum = 0;
    for (size_t off = 0; off < len; off += PAGE)
        sum += (unsigned char)p[off];
    sink = sum;
    munmap(p, len);
    close(fd);
    return 0;
}
