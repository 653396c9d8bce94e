/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the VMA model (collector/model.c) against a real store:
 * each operation's resulting VMA set, and the rows it wrote (parent,
 * origin, how, destroyed_by).  Usage: test_model DIR (for the scratch DB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model.h"
#include "store.h"
#include "strtab.h"
#include "check.h"

/* The model is exactly these ranges "start-end:prot ..." */
static void expect(const struct fl_model *m, const char *want, int line)
{
	char got[1024] = "";
	size_t len = 0;
	for (const struct fl_vma *v = fl_vmatree_first(&m->vmas); v; v = fl_vmatree_next(&m->vmas, v))
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%llx-%llx:%u", len ? " " : "",
					(unsigned long long)v->start, (unsigned long long)v->end, v->prot);
	if (strcmp(got, want)) {
		fprintf(stderr, "FAIL line %d: model\n  got  %s\n  want %s\n", line, got, want);
		failures++;
	}
}
#define EXPECT(m, want) expect(m, want, __LINE__)

/* The i-th VMA of m in address order. */
static const struct fl_vma *nth(const struct fl_model *m, unsigned i)
{
	const struct fl_vma *v = fl_vmatree_first(&m->vmas);
	while (v && i--)
		v = fl_vmatree_next(&m->vmas, v);
	return v;
}

static struct fl_vma anon(__u64 start, __u64 end, __u32 prot)
{
	return (struct fl_vma){ .start = start, .end = end, .prot = prot, .kind = "anon",
				.flags = MAP_PRIVATE | MAP_ANONYMOUS };
}

static struct fl_change at(struct fl_store *s, __u64 t, __s64 event, enum fl_how how)
{
	return (struct fl_change){ .store = s, .proc_id = 1, .pid = 100, .time_ns = t, .event_id = event,
				   .how = how };
}

/*
 * Random maps, unmaps and mprotects against a page array: the set stays
 * sorted, never overlapping, and maps each page as the array says.
 */
static void random_ops(struct fl_store *s)
{
	enum { PAGES = 512, OPS = 20000 };
	unsigned char want[PAGES] = { 0 }; /* 0: unmapped, else prot + 1 */
	struct fl_model m = { 0 };
	unsigned seed = 12345;
	for (int op = 0; op < OPS; op++) {
		seed = seed * 1103515245 + 12345;
		unsigned a = (seed >> 8) % PAGES, len = 1 + (seed >> 20) % 16, kind = (seed >> 4) % 3;
		unsigned b = a + len > PAGES ? PAGES : a + len, prot = (seed >> 12) % 4;
		struct fl_change c = at(s, (__u64)op, op + 1, FL_HOW_CALL);
		if (kind == 0) {
			struct fl_vma v = anon(a * 4096ull, b * 4096ull, prot);
			fl_model_map(&m, &c, &v);
		} else if (kind == 1) {
			fl_model_unmap(&m, &c, a * 4096ull, b * 4096ull);
		} else {
			fl_model_protect(&m, &c, a * 4096ull, b * 4096ull, prot);
		}
		for (unsigned i = a; i < b; i++)
			want[i] = kind == 0 ? (unsigned char)(prot + 1) : kind == 1 ? 0 : want[i] ? (unsigned char)(prot + 1) : 0;
	}
	unsigned char got[PAGES] = { 0 };
	__u64 last_end = 0;
	size_t n = 0;
	for (const struct fl_vma *v = fl_vmatree_first(&m.vmas); v; v = fl_vmatree_next(&m.vmas, v), n++) {
		CHECK(v->start >= last_end && v->end > v->start, "sorted, non-overlapping at %llx",
		      (unsigned long long)v->start);
		last_end = v->end;
		for (__u64 pg = v->start / 4096; pg < v->end / 4096 && pg < PAGES; pg++)
			got[pg] = (unsigned char)(v->prot + 1);
	}
	CHECK(n == m.vmas.n, "count %zu, walked %zu", m.vmas.n, n);
	CHECK(memcmp(got, want, PAGES) == 0, "random operations: the model maps what the page array says");
	fl_model_free(&m);
}

int main(int argc, char **argv)
{
	char path[4096], err[256];
	struct fl_store *s;
	snprintf(path, sizeof(path), "%s/test_model.db", argc > 1 ? argv[1] : ".");
	if (fl_store_create(&s, path, true, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct fl_model m = { 0 }, child = { 0 };
	const __u32 RW = PROT_READ | PROT_WRITE, R = PROT_READ;

	struct fl_change c = at(s, 10, 1, FL_HOW_CALL);
	struct fl_vma v = anon(0x10000, 0x20000, RW);
	fl_model_map(&m, &c, &v);
	EXPECT(&m, "10000-20000:3");
	__s64 first = nth(&m, 0)->id;
	CHECK(nth(&m, 0)->origin_id == first && nth(&m, 0)->created_by == 1, "a call's row is its own origin");

	c = at(s, 20, 2, FL_HOW_CALL); /* partial munmap: the row ends, two pieces keep its origin */
	fl_model_unmap(&m, &c, 0x14000, 0x16000);
	EXPECT(&m, "10000-14000:3 16000-20000:3");
	CHECK(nth(&m, 0)->origin_id == first && nth(&m, 1)->origin_id == first, "pieces keep the origin");
	CHECK(nth(&m, 0)->created_by == 1, "pieces keep the creating call");

	c = at(s, 30, 3, FL_HOW_CALL); /* mprotect of a sub-range splits in three */
	fl_model_protect(&m, &c, 0x18000, 0x1a000, R);
	EXPECT(&m, "10000-14000:3 16000-18000:3 18000-1a000:1 1a000-20000:3");

	c = at(s, 40, 4, FL_HOW_CALL); /* MAP_FIXED over the middle of two VMAs */
	v = anon(0x12000, 0x17000, R);
	fl_model_map(&m, &c, &v);
	EXPECT(&m, "10000-12000:3 12000-17000:1 17000-18000:3 18000-1a000:1 1a000-20000:3");
	__s64 fixed = nth(&m, 1)->id;

	c = at(s, 50, 5, FL_HOW_CALL); /* mremap moves and grows: same origin, parent = the source */
	fl_model_remap(&m, &c, 0x12000, 0x5000, 0x40000, 0x8000, MREMAP_MAYMOVE);
	EXPECT(&m, "10000-12000:3 17000-18000:3 18000-1a000:1 1a000-20000:3 40000-48000:1");
	CHECK(nth(&m, 4)->origin_id == fixed && nth(&m, 4)->created_by == 5, "a moved VMA keeps its origin");

	c = at(s, 60, 6, FL_HOW_CALL); /* shrink in place */
	fl_model_remap(&m, &c, 0x40000, 0x8000, 0x40000, 0x2000, 0);
	EXPECT(&m, "10000-12000:3 17000-18000:3 18000-1a000:1 1a000-20000:3 40000-42000:1");

	c = at(s, 70, 0, FL_HOW_FORK);
	fl_model_fork(&child, &m, &c);
	EXPECT(&child, "10000-12000:3 17000-18000:3 18000-1a000:1 1a000-20000:3 40000-42000:1");
	CHECK(nth(&child, 0)->id != nth(&m, 0)->id && nth(&child, 0)->origin_id == nth(&m, 0)->origin_id, "fork rows link");

	/* resync: a range the snapshot lacks goes, one it adds comes, a changed prot is replaced */
	struct fl_vma snap[] = { anon(0x10000, 0x12000, RW), anon(0x17000, 0x1a000, R),
				 anon(0x1a000, 0x20000, RW), anon(0x50000, 0x51000, RW) };
	c = at(s, 80, 0, FL_HOW_RESYNC);
	fl_model_resync(&m, &c, snap, 4);
	EXPECT(&m, "10000-12000:3 17000-18000:1 18000-1a000:1 1a000-20000:3 50000-51000:3");

	/* fault attribution: live row at the time, else the row that ended after it */
	__s64 live = fl_model_find(&m, 0x50000)->id;
	CHECK(fl_model_attribute(&m, 0x50000, 0x51000, 85) == live, "live row");
	CHECK(fl_model_attribute(&m, 0x14000, 0x16000, 15) == first, "ended row, at its time");
	CHECK(fl_model_attribute(&m, 0x14000, 0x16000, 25) == 0, "nothing mapped there then");
	fl_model_prune_dead(&m, 1000);
	CHECK(fl_model_attribute(&m, 0x14000, 0x16000, 15) == 0, "pruned");

	c = at(s, 90, 0, FL_HOW_EXEC);
	fl_model_clear(&m, &c);
	CHECK(m.vmas.n == 0, "exec clears");

	random_ops(s);

	fl_store_run_end(s, 100, 0); /* builds the indexes too */
	CHECK(fl_store_error(s) == NULL, "store error: %s", fl_store_error(s));
	CHECK(fl_store_finish(s) == 0, "finish");
	fl_store_close(s);
	fl_model_free(&m);
	fl_model_free(&child);
	fl_strtab_free();
	printf("%s\n", failures ? "FAIL" : "PASS test_model");
	return failures ? 1 : 0;
}
