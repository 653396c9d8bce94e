/* SPDX-License-Identifier: MIT */
/*
 * smaps.c - resident memory per region (see smaps.h).
 *
 * When: a process is read at a new RSS high (the kernel's rss_stat tells),
 * when its RSS moved by more than an eighth since the last read, and every
 * 2 s while it changes at all; never sooner than 20 times the last read's
 * cost after it (at most ~5% of a CPU however many VMAs it has: a process
 * with 50,000 VMAs that takes 40 ms to read is read at most every 0.8 s),
 * except a high a quarter above the last read, which may come after 4
 * times its cost (the peak is what `faultline why` explains), and never
 * more often than every 5 ms.  A high that arrives inside that
 * gap waits for the next chance (the next RSS change or the collector's
 * tick), so the sample is taken a little later than the high itself;
 * smaps_sample.rss_stat says what the kernel counted then.
 *
 * At exit (eBPF runs): a process's shim waits, just before the process
 * exits, for one last read, reason 'exit' (preload/exit.c; the handshake is
 * in common/channel.h).  Offered only to a process that has lived 50 times
 * what its latest read cost (at least 20 ms; its shim is told after each
 * read), so that read costs it at most 2% of its life and make -j's short
 * children never wait, and whose read took under 50 ms; the shim gives up
 * after 100 ms (exit_sample says what becomes of that read).  Not the collector's
 * guess of whether anything changed since the last read: the changes just
 * before the exit are exactly the ones whose records it has not read yet.
 * A process that dies by a signal or a raw exit_group has no exit sample:
 * its last sample and the fault counts and frees since stand for its end
 * (the estimate, viewer/estimate.c).
 */
#include <errno.h>
#include <linux/types.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "faultline.h"
#include "monotime.h"
#include "channel.h"
#include "process.h"
#include "smaps.h"
#include "vec.h"

#define MIN_GAP_NS 5000000ull
#define IDLE_GAP_NS 2000000000ull
#define SETTLE_NS 200000000ull
#define COST_FACTOR 20
#define PAGEMAP_MAX_PAGES (1ull << 20) /* 4 GiB of address space: 8 MiB of pagemap */
#define EXIT_COST_FACTOR 50
#define EXIT_MIN_AGE_MS 20

/* The collector thread's CPU time: what a read cost it, however long a loaded machine kept it waiting. */
static __u64 cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* Pages of [start, end) present and present-and-exclusive-anon, and swapped, per recorded row. */
struct piece {
	__u64 start, end;
	__s64 id;
	__u64 present, anon, swapped;
};

#define PFN_MASK ((1ull << 55) - 1)

/*
 * The page frame of the kernel's shared zero page, which a read of
 * untouched anonymous memory maps: pagemap shows it present, smaps' Rss
 * does not count it.  Found by reading a fresh private page of our own
 * (PFNs need CAP_SYS_ADMIN; without, 0 and zero pages count as resident).
 */
static __u64 zero_pfn(void)
{
	static __u64 pfn = ~0ull;
	if (pfn != ~0ull)
		return pfn;
	pfn = 0;
	volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	__u64 e = 0;
	if (p != MAP_FAILED && fd >= 0) {
		(void)p[0]; /* a read fault maps the zero page */
		if (pread(fd, &e, 8, (off_t)((unsigned long)p / 4096 * 8)) == 8 && (e >> 63 & 1))
			pfn = e & PFN_MASK;
	}
	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap((void *)p, 4096);
	return pfn;
}

/* What pagemap says of one page. */
enum { PAGE_ABSENT, PAGE_SHARED, PAGE_ANON, PAGE_SWAPPED };

/*
 * A region of a sample whose pages are split among the model's rows only
 * after the rings were drained once more: the calls that made its VMAs may
 * still have been in them when smaps was read (fl_smaps_drained).
 */
struct fl_smaps_held {
	__s64 sample;
	__u64 start, end;
	__u8 *page;             /* one PAGE_* per page of [start, end) */
};

/*
 * Read the pagemap entries of [start, end) into page[].  Bits
 * (Documentation/admin-guide/mm/pagemap.rst): 63 present, 62 swapped,
 * 61 file-page or shared-anon, 0-54 the page frame.  The zero page is not
 * resident memory (smaps does not count it either).  Returns 0 or -1.
 */
static int read_pages(int fd, __u64 start, __u64 end, __u8 *page)
{
	static __u64 buf[4096];
	__u64 zero = zero_pfn();
	size_t k = 0;
	for (__u64 a = start; a < end;) {
		size_t want = (size_t)((end - a) / 4096);
		if (want > 4096)
			want = 4096;
		ssize_t got = pread(fd, buf, want * 8, (off_t)(a / 4096 * 8));
		if (got <= 0)
			return -1;
		for (size_t i = 0; i < (size_t)got / 8; i++, a += 4096, k++) {
			__u64 e = buf[i];
			if (e >> 63 & 1)
				page[k] = zero && (e & PFN_MASK) == zero ? PAGE_ABSENT :
					  e >> 61 & 1 ? PAGE_SHARED : PAGE_ANON;
			else
				page[k] = e >> 62 & 1 ? PAGE_SWAPPED : PAGE_ABSENT;
		}
	}
	return 0;
}

/* The model's rows inside [start, end), clipped to it, into *pc (grown as needed). */
static size_t pieces_of(struct proc *p, __u64 start, __u64 end, struct piece **pc, size_t *cap)
{
	size_t n = 0;
	for (const struct fl_vma *v = fl_vmatree_above(&p->model.vmas, start); v && v->start < end;
	     v = fl_vmatree_next(&p->model.vmas, v)) {
		if (fl_vec_reserve((void **)pc, cap, n + 1, sizeof(**pc)))
			break;
		(*pc)[n++] = (struct piece){ .start = v->start > start ? v->start : start,
					     .end = v->end < end ? v->end : end, .id = v->id };
	}
	return n;
}

/* Split held region h among the rows the model has now; stored. */
static void attribute(struct proc *p, const struct fl_smaps_held *h)
{
	static struct piece *pc;
	static size_t cap;
	size_t n = pieces_of(p, h->start, h->end, &pc, &cap);
	for (size_t i = 0; i < n; i++) {
		for (__u64 a = pc[i].start; a < pc[i].end; a += 4096) {
			__u8 e = h->page[(a - h->start) / 4096];
			pc[i].present += e == PAGE_SHARED || e == PAGE_ANON;
			pc[i].anon += e == PAGE_ANON;
			pc[i].swapped += e == PAGE_SWAPPED;
		}
		if (pc[i].present || pc[i].swapped)
			fl_store_piece_rss(p->ingest->store, h->sample, h->start, pc[i].id, pc[i].present * 4096,
					   pc[i].anon * 4096, pc[i].swapped * 4096, 1);
	}
}

/* Attribute (or, after an exec, drop) the regions p's latest sample holds. */
static void release_held(struct proc *p)
{
	struct fl_smaps_sched *sc = &p->smaps;
	for (size_t i = 0; i < sc->nheld; i++) {
		if (sc->held_exec_ns == p->image_ns)
			attribute(p, &sc->held[i]);
		free(sc->held[i].page);
	}
	sc->nheld = 0;
}

/*
 * The rows of p's model inside region r, each with its resident pages:
 * stored now when one row is the whole region, else its pages are read
 * now and held until the next drain (release_held).
 */
static void store_pieces(struct proc *p, __s64 sample, struct fl_region_rss *r, int *pagemap)
{
	static struct piece *pc;
	static size_t cap;
	size_t n = pieces_of(p, r->start, r->end, &pc, &cap);
	struct fl_smaps_sched *sc = &p->smaps;
	if (n == 1 && pc[0].start == r->start && pc[0].end == r->end) {
		fl_store_piece_rss(p->ingest->store, sample, r->start, pc[0].id, r->rss, r->anon, r->swap, 1);
		return;
	}
	if ((r->end - r->start) / 4096 > PAGEMAP_MAX_PAGES)
		return; /* too large to read page by page: the viewer shows the region as one residual */
	if (*pagemap < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%u/pagemap", p->pid);
		*pagemap = open(path, O_RDONLY | O_CLOEXEC);
		if (*pagemap < 0)
			return;
	}
	struct fl_smaps_held h = { sample, r->start, r->end, malloc((r->end - r->start) / 4096) };
	if (!h.page || read_pages(*pagemap, r->start, r->end, h.page) ||
	    fl_vec_reserve((void **)&sc->held, &sc->capheld, sc->nheld + 1, sizeof(h))) {
		free(h.page);
		return;
	}
	/*
	 * The region's totals from the same read as its pages: smaps was read
	 * a moment before, and a page touched in between would make the rows
	 * hold more than the region.
	 */
	__u64 present = 0, anon = 0, swapped = 0;
	for (size_t i = 0; i < (r->end - r->start) / 4096; i++) {
		present += h.page[i] == PAGE_SHARED || h.page[i] == PAGE_ANON;
		anon += h.page[i] == PAGE_ANON;
		swapped += h.page[i] == PAGE_SWAPPED;
	}
	r->rss = present * 4096;
	r->anon = anon * 4096;
	r->swap = swapped * 4096;
	sc->held[sc->nheld++] = h;
	sc->held_exec_ns = p->image_ns;
	p->ingest->smaps_due = true; /* released at the next drain */
}

/* "7f..-7f.. rw-p 00000000 00:00 0   [heap]" into r; 0 if the line is a VMA header. */
static int parse_header(const char *line, struct fl_region_rss *r)
{
	unsigned long long lo, hi;
	char perms[8];
	int off = 0;
	if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &lo, &hi, perms, &off) < 3 || !off)
		return -1;
	memset(r, 0, sizeof(*r));
	r->start = lo;
	r->end = hi;
	r->prot = (perms[0] == 'r' ? 1 : 0) | (perms[1] == 'w' ? 2 : 0) | (perms[2] == 'x' ? 4 : 0);
	r->shared = perms[3] == 's';
	snprintf(r->path, sizeof(r->path), "%s", line + off);
	r->path[strcspn(r->path, "\n")] = 0;
	return 0;
}

/* "Rss:  123 kB" into the matching field of r. */
static void parse_field(const char *line, struct fl_region_rss *r)
{
	static const struct { const char *name; size_t off; } fields[] = {
		{ "Rss:", offsetof(struct fl_region_rss, rss) },
		{ "Pss:", offsetof(struct fl_region_rss, pss) },
		{ "Anonymous:", offsetof(struct fl_region_rss, anon) },
		{ "Swap:", offsetof(struct fl_region_rss, swap) },
		{ "Private_Dirty:", offsetof(struct fl_region_rss, private_dirty) },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t n = strlen(fields[i].name);
		if (!strncmp(line, fields[i].name, n)) {
			*(__u64 *)((char *)r + fields[i].off) = strtoull(line + n, NULL, 10) * 1024;
			return;
		}
	}
}

static void offer_exit(struct proc *p, __u64 cost_ns);

/*
 * Does pid still have its address space?  statm reads all zeros once the
 * exiting task let go of its mm (kernel/exit.c exit_mm, fs/proc
 * proc_pid_statm), and a reader of smaps then gets a torn-down one or none.
 */
static bool mm_attached(__u32 pid)
{
	char path[64];
	unsigned long size = 0;
	snprintf(path, sizeof(path), "/proc/%u/statm", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	if (fscanf(f, "%lu", &size) != 1)
		size = 0;
	fclose(f);
	return size > 0;
}

/*
 * Read p's smaps now; store the sample, its regions and their pieces.
 * Returns 0 or -errno.  Stamped when the read begins, not when the round
 * of samples began (the fault drain before it, other processes' reads): a
 * call or fault after the stamp is taken as after the sample (estimate.c).
 */
static int sample(struct proc *p, const char *reason)
{
	__u64 now_ns = fl_mono_ns(), cpu0 = cpu_ns();
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%u/smaps", p->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	struct fl_store *s = p->ingest->store;
	struct fl_smaps_row row = { .proc_id = p->id, .time_ns = now_ns, .reason = reason,
				    .rss_stat = p->smaps.cur };
	/* the sample row first, so regions can name it; its totals are set when the read is done */
	__s64 id = fl_store_smaps_sample(s, &row);
	size_t held_before = p->smaps.nheld;
	struct fl_region_rss r;
	bool have = false;
	int pagemap = -1;
	__u64 shown_end = 0;
	for (;;) {
		bool eof = !fgets(line, sizeof(line), f);
		struct fl_region_rss next;
		if (eof || parse_header(line, &next) == 0) {
			/*
			 * smaps is read a buffer at a time and each read resumes
			 * at the end of the last VMA shown: a VMA that grew in
			 * between (a heap growing by brk) is shown again, from the
			 * same start.  The first showing stands; a later one would
			 * count the region twice.
			 */
			if (have && r.start < shown_end)
				have = false;
			if (have) {
				bool kept = id && (r.rss || r.swap);
				shown_end = r.end;
				if (kept) /* first: a region read page by page takes its totals from that read */
					store_pieces(p, id, &r, &pagemap);
				row.regions++;
				row.rss += r.rss;
				row.pss += r.pss;
				row.anon += r.anon;
				row.swap += r.swap;
				if (kept)
					fl_store_region_rss(s, id, &r);
			}
			if (eof)
				break;
			r = next;
			have = true;
		} else if (have) {
			parse_field(line, &r);
		}
	}
	fclose(f);
	if (pagemap >= 0)
		close(pagemap);
	if (!mm_attached(p->pid)) {
		/* it exited during the read: what was read may be torn down (a killed process read as 2 pages) */
		while (p->smaps.nheld > held_before)
			free(p->smaps.held[--p->smaps.nheld].page);
		if (id)
			fl_store_smaps_drop(s, id);
		return -ESRCH;
	}
	row.cost_ns = fl_mono_ns() - now_ns;
	if (id)
		fl_store_smaps_totals(s, id, &row);
	struct fl_smaps_sched *sc = &p->smaps;
	sc->last_ns = now_ns;
	sc->last_rss = sc->cur;
	sc->last_id = id;
	sc->next_ns = now_ns + (row.cost_ns * COST_FACTOR > MIN_GAP_NS ? row.cost_ns * COST_FACTOR : MIN_GAP_NS);
	offer_exit(p, cpu_ns() - cpu0);
	return 0;
}

/*
 * Tell p's shim from what age on it may wait at exit for a last read: 50
 * times what this read cost (CPU time: wall time on a loaded machine says
 * more about the load than about the process), at least 20 ms (eBPF runs
 * only: ingest.h); never (0) when this read took over half the 100 ms the
 * shim waits at most: the exit read would most likely come too late.
 * FAULTLINE_EXIT_SAMPLES=all: from any age, whatever the read cost.
 */
static void offer_exit(struct proc *p, __u64 cost_ns)
{
	struct fl_ingest *g = p->ingest;
	__u64 ms = cost_ns * EXIT_COST_FACTOR / 1000000 + 1;
	struct fl_smaps_sched *sc = &p->smaps;
	/* its current image's shim has a ring (it said hello since the exec) */
	if (!g->bpf_mode || !g->exit_hint || !p->shim || p->hello_ns < p->image_ns)
		return;
	if (ms < EXIT_MIN_AGE_MS)
		ms = EXIT_MIN_AGE_MS;
	if (ms > UINT32_MAX || cost_ns * 2 > FL_EXIT_WAIT_MS * 1000000ull)
		ms = 0;
	if (g->exit_every)
		ms = 1; /* 0 would be none */
	if (sc->hinted_ms != (__u32)ms || sc->hinted_image != p->image_ns) {
		sc->hinted_ms = (__u32)ms;
		sc->hinted_image = p->image_ns;
		g->exit_hint(g->exit_ctx, p->pid, (__u32)ms);
	}
}

/*
 * Around a read: the fault counts so far into rows of their own (eBPF: the
 * collector drains its fault map, ingest.h) before it, unless the round's
 * last read already did, and again right after it.  So the faults before
 * a sample, those during its read (stamped before the read ended) and those
 * after it are in separate rows, and the estimate between samples adds only
 * the later ones (viewer/estimate.c).  Records read meanwhile may have ended
 * p: then false, no read.
 */
static bool drain_faults(struct proc *p, bool after)
{
	struct fl_ingest *g = p->ingest;
	if (g->drain_faults && (after || !g->faults_drained)) {
		g->faults_drained = true;
		g->drain_faults(g->drain_ctx);
	}
	return !p->ended;
}


/*
 * p waits at exit: read it now, split its regions among the rows at once
 * (the thread that would change them waits; the rings were just drained),
 * and answer.  A shim that stopped waiting before the answer (100 ms: a
 * loaded machine, a collector busy symbolizing) went on exiting during the
 * read: the read stands if the process still had its address space after
 * it (sample() checks; it was read whole, a little later than asked), else
 * it is thrown away (counted: its end is then the estimate, as for a
 * killed process).
 */
static void exit_sample(struct proc *p)
{
	struct fl_ingest *g = p->ingest;
	struct fl_smaps_sched *sc = &p->smaps;
	__u64 asked = sc->exit_ns;
	sc->exit_ns = 0;
	sc->exit_read_image = p->image_ns;
	sc->last_id = 0;
	drain_faults(p, false);
	int rc = sample(p, "exit");
	drain_faults(p, true);
	release_held(p);
	bool waited = g->exit_done && g->exit_done(g->exit_ctx, p->pid);
	if (rc || !sc->last_id) {
		g->exit_late++;
		return;
	}
	__u64 held = fl_mono_ns() - asked;
	if (!waited || held > FL_EXIT_WAIT_MS * 1000000ull)
		held = FL_EXIT_WAIT_MS * 1000000ull; /* it stopped waiting then */
	fl_store_smaps_held(g->store, sc->last_id, held);
}

static void maybe_sample(struct proc *p, __u64 now_ns, bool tick)
{
	struct fl_smaps_sched *sc = &p->smaps;
	if (sc->exit_ns && !p->ended) {
		exit_sample(p);
		return;
	}
	if (sc->exit_ns)
		p->ingest->exit_late++; /* the kernel's exit record came first: it stopped waiting */
	sc->exit_ns = 0;
	/* the first process before its exec is faultline's own launcher (without eBPF no exec is seen:
	 * the shim's hello says the target runs) */
	if (p->ended || (!p->exec_ns && !p->shim && p == p->ingest->all[0]))
		return;
	/* a much higher high: sooner (the gap was 20 costs; 4 of them will do) */
	bool steep = sc->want_high && sc->cur > sc->last_rss + sc->last_rss / 4 &&
		     now_ns >= sc->last_ns + (sc->next_ns - sc->last_ns) / 5;
	if (now_ns < sc->next_ns && !steep)
		return;
	__u64 moved = sc->cur > sc->last_rss ? sc->cur - sc->last_rss : sc->last_rss - sc->cur;
	const char *reason = NULL;
	if (sc->want_high)
		reason = "high";
	else if (moved > sc->last_rss / 8 + (1u << 20))
		reason = "change";
	else if (tick && moved && now_ns - sc->last_ns >= IDLE_GAP_NS)
		reason = "idle";
	else if (tick && sc->settle && !moved && now_ns - sc->last_ns >= SETTLE_NS)
		reason = "settled";
	if (!reason)
		return;
	/*
	 * A read races with the calls still in the ring: memory mapped since the
	 * last record read is in no recorded row yet.  So a high is read once
	 * more when the process has been quiet a while.
	 */
	sc->settle = !strcmp(reason, "high");
	sc->want_high = false;
	if (!drain_faults(p, false))
		return;
	if (sample(p, reason))
		sc->next_ns = now_ns + IDLE_GAP_NS; /* gone or unreadable: do not retry on every change */
	drain_faults(p, true);
}

void fl_smaps_on_rss(struct fl_ingest *g, struct proc *p, __u64 rss, __u64 now_ns)
{
	(void)now_ns;
	struct fl_smaps_sched *sc = &p->smaps;
	sc->cur = rss;
	if (rss > sc->high) {
		sc->high = rss;
		sc->want_high = true;
	}
	sc->due = true;
	g->smaps_due = true;
}

void fl_smaps_on_exiting(struct fl_ingest *g, struct proc *p, __u64 t)
{
	struct fl_smaps_sched *sc = &p->smaps;
	/* only if offered, and once: a target that sent these at will would set the cost of reading it */
	if (!sc->hinted_ms || sc->hinted_image != p->image_ns || sc->exit_read_image == p->image_ns)
		return;
	if (p->ended) { /* read from its ring once it was gone: it waited in vain */
		g->exit_late++;
		return;
	}
	sc->exit_ns = t ? t : 1;
	sc->due = true;
	g->smaps_due = true;
}

void fl_smaps_drained(struct fl_ingest *g, __u64 now_ns)
{
	if (!g->smaps_due)
		return;
	g->smaps_due = false;
	g->faults_drained = false;
	for (size_t i = 0; i < g->nall; i++) {
		struct proc *p = g->all[i];
		release_held(p);
		if (p->smaps.due) {
			p->smaps.due = false;
			maybe_sample(p, now_ns, false);
		}
	}
}

void fl_smaps_finish(struct fl_ingest *g)
{
	for (size_t i = 0; i < g->nall; i++) {
		release_held(g->all[i]);
		free(g->all[i]->smaps.held);
		g->all[i]->smaps.held = NULL;
		g->all[i]->smaps.capheld = 0;
	}
}

void fl_smaps_tick(struct fl_ingest *g, __u64 now_ns)
{
	g->faults_drained = false;
	for (size_t i = 0; i < g->nall; i++)
		maybe_sample(g->all[i], now_ns, true);
}
