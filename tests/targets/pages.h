/* SPDX-License-Identifier: MIT */
/* pages.h - what the fault targets share: fresh anonymous pages, one fault per 4 KiB page. */
#ifndef FL_TARGET_PAGES_H
#define FL_TARGET_PAGES_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PG 4096

/* n fresh private anonymous pages, THP off on them (MADV_NOHUGEPAGE); exits on failure. */
static inline char *anon(long n)
{
	char *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	madvise(p, n * PG, MADV_NOHUGEPAGE);
	return p;
}

#endif /* FL_TARGET_PAGES_H */
