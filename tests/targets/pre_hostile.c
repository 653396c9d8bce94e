/* SPDX-License-Identifier: MIT */
/*
 * pre_hostile MODE N: a target that attacks faultline's channel, then makes
 * N mmap/munmap pairs of 13 pages and prints "done N".  It finds the channel
 * as the kernel names it in /proc/self/maps ("memfd:faultline-channel").
 *
 *   unmap    munmap every channel mapping (the shim must stop, not crash)
 *   fixed    MAP_FIXED anonymous memory over every channel mapping
 *   zero     zero the channel header and every ring
 *   forge    write a header with absurd geometry, claim every ring for
 *            forged pids with absurd positions, and fill every slot of the
 *            own ring with absurd records (the root collector must count
 *            it as a loss, not crash: the owned_by_claim overflow)
 *   none     no attack
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct region {
	uintptr_t start, end;
	unsigned long off;
};

static int channel_regions(struct region *r, int max)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f))
		if (strstr(line, "faultline-channel")) {
			sscanf(line, "%lx-%lx %*s %lx", &r[n].start, &r[n].end, &r[n].off);
			n++;
		}
	fclose(f);
	return n;
}

static void forge(struct region *r, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t *w = (uint32_t *)r[i].start;
		size_t words = (r[i].end - r[i].start) / 4;
		if (r[i].off == 0) {
			/* header: magic abi nrings collector_pid claims no_ring ring_offset ring_bytes ... */
			w[2] = 0xffffffffu;                       /* nrings */
			*(uint64_t *)&w[6] = ~0ull;               /* ring_offset */
			*(uint64_t *)&w[8] = ~0ull / 3;           /* ring_bytes */
			for (size_t d = 16; d + 16 <= words; d += 16) {
				w[d] = 2;                         /* OWNED */
				w[d + 1] = (uint32_t)(d * 2654435761u); /* pid */
				*(uint64_t *)&w[d + 2] = ~0ull - d;     /* claim */
				*(uint64_t *)&w[d + 4] = ~0ull / 2;     /* head */
				*(uint64_t *)&w[d + 6] = 12345;         /* tail */
				*(uint64_t *)&w[d + 8] = 7;             /* dropped */
			}
		} else {
			/* a ring: every slot "published" for lap 0, with absurd records */
			for (size_t s = 0; s + 352 <= words; s += 352) {
				*(uint64_t *)&w[s] = 1;              /* seq: published, lap 0 */
				w[s + 2] = 3 | (0xffffu << 16);      /* type CALL, nframes 65535 */
				w[s + 3] = (uint32_t)(s * 7919u);    /* size */
			}
		}
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "none";
	int n = argc > 2 ? atoi(argv[2]) : 100;
	struct region r[8];
	int nr = channel_regions(r, 8);

	for (int i = 0; i < nr; i++) {
		void *p = (void *)r[i].start;
		size_t len = r[i].end - r[i].start;
		if (!strcmp(mode, "unmap"))
			munmap(p, len);
		else if (!strcmp(mode, "fixed"))
			mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		else if (!strcmp(mode, "zero"))
			memset(p, 0, len);
	}
	if (!strcmp(mode, "forge"))
		forge(r, nr);
	for (int i = 0; i < n; i++) {
		void *p = mmap(NULL, 0xd000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || munmap(p, 0xd000))
			return 2;
	}
	printf("done %d regions %d\n", n, nr);
	return 0;
}
