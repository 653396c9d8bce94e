/* SPDX-License-Identifier: MIT */
/* heap: malloc/free of mixed sizes, as an allocator-heavy program does.
 * Exercises: mmap/munmap and brk done INSIDE glibc malloc (via __mmap/__brk, which a
 *            plain LD_PRELOAD mmap/brk interposer never sees), plus malloc-level tracing.
 * Phase 1 (brk heap), P times: keep S small blocks (16..1024 B) live, so the main arena
 *   grows with brk, then free them all (the top is trimmed back with brk).
 * Phase 2 (mixed): R rounds; each round mallocs+frees 64 small/medium blocks
 *   (16 B..64 KiB) and one large block (256 KiB..1 MiB, above the mmap threshold,
 *   pinned at 128 KiB with mallopt so glibc's dynamic threshold cannot move it);
 *   every page of the large block is written.
 * Usage: heap [S=100000] [R=6000] [P=4]
 * Expected (defaults): malloc calls = P*(S+1) + 65*R = 790004; glibc-internal mmap and
 *   munmap ~6000 each (R large blocks + the P `keep` arrays: strace saw 6003 beyond the
 *   loader's 9); brk ~4.6k calls (grow + trim; strace saw 4593); minor faults ~ R*~160
 *   for the large blocks (~0.96M) + the brk heap: ~1.01M in all (perf stat: 1012757). */
#include <malloc.h>
#include <string.h>
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

static unsigned long rng = 88172645463325252UL;
static unsigned long next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(int argc, char **argv)
{
    long s = arg(argc, argv, 1, 100000), rounds = arg(argc, argv, 2, 6000);
    long phases = arg(argc, argv, 3, 4);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    for (long ph = 0; ph < phases; ph++) {
        char **keep = malloc(s * sizeof *keep);
        if (!keep) DIE("malloc");
        for (long i = 0; i < s; i++) {
            size_t sz = 16 + next() % 1009;
            if (!(keep[i] = malloc(sz))) DIE("malloc");
            keep[i][0] = (char)i;
        }
        for (long i = 0; i < s; i++)
            free(keep[i]);
        free(keep);
    }
    for (long r = 0; r < rounds; r++) {
        char *small[64];
        for (int k = 0; k < 64; k++) {
            size_t sz = (k & 7) == 7 ? 4096 + next() % (60 << 10) : 16 + next() % 1009;
            if (!(small[k] = malloc(sz))) DIE("malloc");
            small[k][0] = (char)k;
        }
        size_t big = (256 << 10) + next() % (768 << 10);
        char *b = malloc(big);
        if (!b) DIE("malloc");
        for (size_t off = 0; off < big; off += PAGE)
            b[off] = 1;
        sink += b[big / 2];
        free(b);
        for (int k = 0; k < 64; k++)
            free(small[k]);
    }
    return 0;
}
