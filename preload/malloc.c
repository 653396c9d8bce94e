/* SPDX-License-Identifier: MIT */
/*
 * malloc.c - sampled malloc tracking: which code owns the live heap bytes.
 *
 * The malloc family is interposed (malloc, calloc, realloc, reallocarray,
 * free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc; C++
 * new/delete reach them through libstdc++) and passed to the next
 * definition (glibc's, or an allocator preloaded after the shim).
 *
 * Sampling by bytes, as tcmalloc's and jemalloc's heap profilers do: each
 * thread counts down an interval drawn from an exponential distribution of
 * mean `heap_mean` bytes (rounded up to whole bytes); the allocation in which
 * the count reaches zero is sampled, and a fresh interval starts after it.
 * An allocation of n bytes is so sampled with probability 1 - exp(-n/mean),
 * independently of every other, and the collector weighs each sample by
 * n / (1 - exp(-n/mean)): live bytes per call site are estimated without
 * bias, with a variance it can state (docs/heap.md).  Mean 1 records every
 * allocation (exact); mean 0 turns the sampler off.
 *
 * A sampled allocation is sent with its stack (FL_R_ALLOC) and its address
 * goes into a set; free() of an address in the set sends FL_R_FREE before
 * the real free, so the address cannot be handed out again before the
 * collector hears it was freed (one ring per process: ticket order is
 * program order).  The fast path of free() for an unsampled pointer is one
 * load from a 128 KiB array of counters (live samples per hash bucket): no
 * lock, no syscall.  Only a nonzero bucket takes the shard lock of the set.
 *
 * Safety:
 * - dlsym (resolving the next malloc) may itself call calloc: such calls
 *   are served from a static bootstrap buffer; free() ignores its blocks.
 *   So are the allocations of the shim's own start-up (ST_INIT, shim_busy:
 *   dlsym, and ld.so loading the unwinder), which would otherwise take the
 *   first pages of the program's heap and move every allocation of the
 *   program after them, up to a page further (docs/check.md, "faultline's
 *   own footprint"); the buffer is the shim's memory.  When it is full,
 *   they go to the next allocator.
 * - Allocations inside the shim (the unwinder, dlsym, a signal handler
 *   interrupting a sampled call) pass through unsampled (shim_busy); they
 *   are counted in FL_R_HEAP_STATS, as are allocations made before the shim
 *   was on.  A sampled block freed while its own thread holds a shard lock
 *   (a signal handler) cannot be taken out of the set: counted as a lost
 *   free.
 * - fork waits until no thread is changing the set (its gate), so the
 *   child's copy is consistent; the child keeps it (its frees of inherited
 *   blocks are matched).  A record from each side (FL_R_HEAP_FORK) tells the
 *   collector which blocks the child inherited.
 * - errno is saved around everything the shim adds.
 * - Nothing here allocates: the set lives in mmap'd memory (raw syscalls).
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "preload.h"

#define EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

__u64 heap_mean;                        /* sampling mean in bytes; 0 = off, 1 = every allocation */

static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
} next;

/* Bytes this thread may still allocate before the next sample; 0 before
 * its first allocation (tls_primed then tells). */
static SHIM_TLS __u64 tls_left;
static SHIM_TLS int tls_primed;
static SHIM_TLS __u64 tls_rng;
static SHIM_TLS int tls_resolving;      /* this thread is inside dlsym for next.* */
static SHIM_TLS int tls_locked;         /* shard locks this thread holds */

/* Allocations the sampler could not consider, and sampled frees it lost. */
static __u64 unrecorded_count, unrecorded_bytes, lost_frees;

/* ---- bootstrap buffer (dlsym's own calloc) ------------------------------ */

#define BOOT_BYTES (64u << 10)
static char boot_buf[BOOT_BYTES] __attribute__((aligned(64)));
static size_t boot_used;

static int is_boot(const void *p)
{
	return (const char *)p >= boot_buf && (const char *)p < boot_buf + BOOT_BYTES;
}

/* 16-byte header holding the size, so realloc can copy out of it. */
static void *boot_alloc(size_t n)
{
	size_t need = ((n + 15) & ~(size_t)15) + 16;
	size_t off = __atomic_fetch_add(&boot_used, need, __ATOMIC_RELAXED);

	if (n > BOOT_BYTES || off + need > BOOT_BYTES) {
		shim_errno = ENOMEM;
		return NULL;
	}
	*(size_t *)(boot_buf + off) = n;
	return boot_buf + off + 16;  /* zeroed already: .bss, and no block is ever handed out twice */
}

static size_t boot_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

/* An allocation of the shim's own start-up, by this thread (see Safety
 * above): a block of the bootstrap buffer, or NULL (not one, or it is full). */
static void *init_alloc(size_t n)
{
	int e = shim_errno;
	void *p;

	if (likely(__atomic_load_n(&shim_state, __ATOMIC_RELAXED) != ST_INIT) || shim_busy <= 0)
		return NULL;
	p = boot_alloc(n);
	shim_errno = e;
	return p;
}

/* glibc's own entry points: only if dlsym finds no next malloc at all. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static int libc_posix_memalign(void **out, size_t align, size_t n)
{
	if (align % sizeof(void *) || (align & (align - 1)) || !align)
		return EINVAL;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static void *libc_aligned_alloc(size_t align, size_t n)
{
	return __libc_memalign(align, n);
}

static void resolve(void)
{
	int e = shim_errno;

	tls_resolving++;
#define R(f, fallback) \
	if (!next.f) { \
		void *s = dlsym(RTLD_NEXT, #f); \
		*(void **)&next.f = s ? s : (void *)(fallback); \
	}
	R(free, __libc_free); R(calloc, __libc_calloc); R(realloc, __libc_realloc);
	R(posix_memalign, libc_posix_memalign); R(aligned_alloc, libc_aligned_alloc);
	R(memalign, __libc_memalign); R(valloc, __libc_valloc); R(pvalloc, __libc_pvalloc);
	/* malloc last: it is what the hooks test to know the others are set */
	R(malloc, __libc_malloc);
#undef R
	tls_resolving--;
	shim_errno = e;
}

/* ---- the sampler -------------------------------------------------------- */

static __u64 rng_next(void)
{
	/* xorshift64*: fast and good enough to draw intervals. */
	__u64 x = tls_rng;

	if (unlikely(!x))
		x = ((__u64)shim_tid() * 0x9e3779b97f4a7c15ull) ^ shim_now_ns() ^ (__u64)(uintptr_t)&tls_rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tls_rng = x ? x : 1;
	return x * 0x2545f4914f6cdd1dull;
}

/* Natural log of x > 0 without libm (|error| < 2e-11): x = m * 2^e with m
 * in [0.707, 1.414), ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172. */
static double ln(double x)
{
	union { double d; __u64 u; } v = { .d = x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;

	v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);
	double m = v.d;
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double s = (m - 1) / (m + 1), s2 = s * s;
	double t = s * (2 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9 + s2 * (2.0 / 11))))));
	return t + e * 0.6931471805599453;
}

/* Bytes to the next sample point: ceil(Exp(mean)), at least 1; 0 for mean 1
 * (every allocation, even of 0 bytes) and "never" when off. */
static __u64 next_interval(void)
{
	__u64 mean = __atomic_load_n(&heap_mean, __ATOMIC_RELAXED);

	if (mean <= 1)
		return mean ? 0 : UINT64_MAX;
	double u = ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double x = -ln(u) * (double)mean;
	if (x >= 1.8e19)
		return UINT64_MAX;
	__u64 k = (__u64)x;
	return k < x || !k ? k + 1 : k;
}

/* Is an allocation of n bytes the sampled one?  Called when n reached
 * tls_left (the fast test in the hooks failed). */
static int crossed(size_t n)
{
	if (!tls_primed) {
		/* a thread's first allocation: draw its first interval first */
		tls_primed = 1;
		tls_left = next_interval();
		if (n < tls_left) {
			tls_left -= n;
			return 0;
		}
	}
	tls_left = next_interval();
	return 1;
}

/* ---- the set of sampled addresses --------------------------------------- */

#define FILTER_BITS 15                  /* 32768 counters: 128 KiB */
#define NSHARDS 64
#define SHARD_MIN 256                   /* entries in a new shard table */
#define TOMB 1u                         /* a removed entry's addr */

struct entry {
	__u64 addr;                     /* 0: empty, TOMB: removed */
	__u64 size;
};

struct shard {
	int lock;
	__u32 used;                     /* entries not empty (live + tombstones) */
	__u32 cap;                      /* power of two, 0: no table yet */
	__u32 first;                    /* e is the first table, part of the init mapping */
	struct entry *e;
} __attribute__((aligned(64)));

/* One mapping at init: the filter, then each shard's first table, so the
 * snapshot the shim sends next already holds it.  Only a shard holding
 * more than 3/4 * SHARD_MIN live samples maps a table of its own. */
#define FILTER_BYTES (sizeof(__u32) << FILTER_BITS)
#define INIT_BYTES (FILTER_BYTES + NSHARDS * SHARD_MIN * sizeof(struct entry))

static __u32 *filter;                   /* live samples per bucket (atomic) */
static struct shard shards[NSHARDS];

static __u64 hash(const void *p)
{
	return ((__u64)(uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull;
}

static __u32 *bucket(const void *p)
{
	return &filter[hash(p) >> (64 - FILTER_BITS)];
}

static struct shard *shard_of(const void *p)
{
	return &shards[(hash(p) >> 20) & (NSHARDS - 1)];
}

/* The set's memory: raw syscalls (no hook), each told to the collector as
 * a call of the shim's own (shim mode would not see it otherwise). */
static void *map_zeroed(size_t bytes, void *at)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (at ? MAP_FIXED : 0);
	long a = shim_sys_mmap(at, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);

	if (a < 0 && a > -4096)
		return NULL;
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON)
		shim_record(FL_K_MMAP, a, 0, (__u64)(uintptr_t)at, bytes, PROT_READ | PROT_WRITE, (__u64)flags,
			    (__u64)-1, 0, NULL);
	return (void *)a;
}

static void unmap(void *p, size_t bytes)
{
	shim_syscall(SYS_munmap, p, bytes);
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON)
		shim_record(FL_K_MUNMAP, 0, 0, (__u64)(uintptr_t)p, bytes, 0, 0, 0, 0, NULL);
}

/*
 * A shard's lock: 0 free, 1 held, 2 held with waiters (a futex mutex, as in
 * Drepper's "Futexes Are Tricky"): waiters sleep rather than spin, which
 * would take the CPU the collector needs on a busy machine.
 */
static void shard_lock(struct shard *s)
{
	int c = 0;

	if (!__atomic_compare_exchange_n(&s->lock, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		int e = shim_errno;
		for (int spins = 0; spins < 64 && c; spins++) {
			__builtin_ia32_pause();
			c = 0;
			if (__atomic_compare_exchange_n(&s->lock, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				break;
		}
		if (c) {
			if (c != 2)
				c = __atomic_exchange_n(&s->lock, 2, __ATOMIC_ACQUIRE);
			while (c) {
				shim_syscall(SYS_futex, &s->lock, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
				c = __atomic_exchange_n(&s->lock, 2, __ATOMIC_ACQUIRE);
			}
		}
		shim_errno = e;
	}
	tls_locked++;
}

static void shard_unlock(struct shard *s)
{
	tls_locked--;
	if (__atomic_exchange_n(&s->lock, 0, __ATOMIC_RELEASE) == 2) {
		int e = shim_errno;
		shim_syscall(SYS_futex, &s->lock, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		shim_errno = e;
	}
}

static struct entry *probe(struct entry *e, __u32 cap, __u64 addr, int for_insert)
{
	for (__u32 i = (__u32)(hash((void *)(uintptr_t)addr) & (cap - 1));; i = (i + 1) & (cap - 1)) {
		if (e[i].addr == addr || !e[i].addr || (for_insert && e[i].addr == TOMB))
			return &e[i];
	}
}

/* Double the table (or make the first one), dropping tombstones.  0 or -1. */
static int shard_grow(struct shard *s)
{
	__u32 cap = s->cap ? s->cap * 2 : SHARD_MIN, used = 0;
	struct entry *e = map_zeroed(cap * sizeof(*e), NULL);

	if (!e)
		return -1;
	for (__u32 i = 0; i < s->cap; i++)
		if (s->e[i].addr > TOMB) {
			*probe(e, cap, s->e[i].addr, 1) = s->e[i];
			used++;
		}
	if (s->e && !s->first)
		unmap(s->e, s->cap * sizeof(*s->e));
	s->first = 0;
	s->e = e;
	s->cap = cap;
	s->used = used;
	return 0;
}

/*
 * The set's fork gate (as the unwinder's, unwind.c): changing the set and
 * sending the record that says so is one step, and fork waits until no step
 * is under way, so the child's copy of the set holds exactly the blocks the
 * parent's records made live.  (Sending under the shard lock instead cost
 * 3-5x the throughput of --heap-sample 1 with four threads: a thread
 * waiting on a full ring held its shard.)  A step inside a step (a signal
 * handler) and a fork's own thread never wait.
 */
static int set_steps;                   /* steps under way (seq_cst) */
static int set_forking;                 /* a fork waits for them, or runs */
static SHIM_TLS int tls_in_step;

static void step_enter(void)
{
	if (tls_in_step++) {
		__atomic_add_fetch(&set_steps, 1, __ATOMIC_SEQ_CST);
		return;
	}
	for (;;) {
		__atomic_add_fetch(&set_steps, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&set_forking, __ATOMIC_SEQ_CST))
			return;
		__atomic_sub_fetch(&set_steps, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&set_forking, __ATOMIC_SEQ_CST))
			shim_short_sleep();
	}
}

static void step_leave(void)
{
	__atomic_sub_fetch(&set_steps, 1, __ATOMIC_SEQ_CST);
	tls_in_step--;
}

/* Remember a sampled block and send its record (rec, len bytes), in one
 * step.  0, or -1 when there was no memory for it. */
static int set_add(void *p, __u64 size, const void *rec, __u32 len)
{
	struct shard *s = shard_of(p);
	int rc = 0;

	step_enter();
	shard_lock(s);
	if ((s->used + 1) * 4 > s->cap * 3 && shard_grow(s)) {
		rc = -1;
	} else {
		struct entry *e = probe(s->e, s->cap, (__u64)(uintptr_t)p, 1);
		if (e->addr != (__u64)(uintptr_t)p) {
			if (!e->addr)
				s->used++;
			e->addr = (__u64)(uintptr_t)p;
			__atomic_add_fetch(bucket(p), 1, __ATOMIC_RELAXED);
		}
		e->size = size;
	}
	shard_unlock(s);
	if (!rc)
		shim_emit(rec, len);
	step_leave();
	return rc;
}

static void send_free(void *p, __u64 size);

/* Forget p if it was sampled, saying so (FL_R_FREE) in the same step:
 * 1 (and its size) if it was. */
static int set_take(void *p, __u64 *size)
{
	struct shard *s = shard_of(p);
	int found = 0;

	if (tls_locked) {
		/* a signal handler interrupted this thread inside the set */
		__atomic_add_fetch(&lost_frees, 1, __ATOMIC_RELAXED);
		return 0;
	}
	step_enter();
	shard_lock(s);
	if (s->cap) {
		struct entry *e = probe(s->e, s->cap, (__u64)(uintptr_t)p, 0);
		if (e->addr == (__u64)(uintptr_t)p) {
			e->addr = TOMB;
			*size = e->size;
			found = 1;
			__atomic_sub_fetch(bucket(p), 1, __ATOMIC_RELAXED);
		}
	}
	shard_unlock(s);
	if (found)
		send_free(p, *size);
	step_leave();
	return found;
}

/* Each shard starts with its table in the init mapping (none if it failed). */
static void init_shards(void)
{
	for (unsigned i = 0; i < NSHARDS; i++)
		shards[i] = (struct shard){ .first = 1, .cap = filter ? SHARD_MIN : 0,
					    .e = filter ? (struct entry *)((char *)filter + FILTER_BYTES) + i * SHARD_MIN
							: NULL };
	if (!filter)
		__atomic_store_n(&heap_mean, 0, __ATOMIC_RELEASE);
}

static int maybe_sampled(const void *p)
{
	return filter && __atomic_load_n(bucket(p), __ATOMIC_RELAXED);
}

/* ---- records ------------------------------------------------------------ */

union alloc_msg {
	struct fl_alloc_rec r;
	__u8 bytes[sizeof(struct fl_alloc_rec) + 8 * (FL_MAX_FRAMES + SHIM_FRAME_SLACK)];
};

/* The record of a sampled block (frames NULL: the stack above the shim
 * now, taken before any lock).  Returns its size. */
static __u32 alloc_msg(union alloc_msg *m, void *p, size_t n, __u32 fn, const __u64 *frames, unsigned nframes,
		       __u32 tid, __u64 t)
{
#define b (*m)
	memset(&b.r, 0, sizeof(b.r));
	b.r.h.type = FL_R_ALLOC;
	b.r.pid = shim_pid;
	b.r.tid = tid ? tid : shim_tid();
	b.r.time_ns = t ? t : shim_now_ns();
	b.r.addr = (__u64)(uintptr_t)p;
	b.r.size = n;
	b.r.mean = __atomic_load_n(&heap_mean, __ATOMIC_RELAXED);
	b.r.fn = fn;
	if (frames)
		memcpy(b.r.frames, frames, 8u * (b.r.h.nframes = (__u16)nframes));
	else
		b.r.h.nframes = (__u16)shim_backtrace_into(b.r.frames, FL_MAX_FRAMES + SHIM_FRAME_SLACK);
	return b.r.h.size = (__u32)(sizeof(b.r) + 8u * b.r.h.nframes);
#undef b
}

/* Remember the sampled block p and send its record.  0 or -1. */
static int remember(void *p, size_t n, __u32 fn, const __u64 *frames, unsigned nframes, __u32 tid, __u64 t)
{
	union alloc_msg m;
	__u32 len = alloc_msg(&m, p, n, fn, frames, nframes, tid, t);

	return set_add(p, n, &m, len);
}

static void send_free(void *p, __u64 size)
{
	struct fl_free_rec r = {
		.h = { .type = FL_R_FREE, .size = sizeof(r) },
		.pid = shim_pid, .tid = shim_tid(), .time_ns = shim_now_ns(),
		.addr = (__u64)(uintptr_t)p, .size = size,
	};
	shim_emit(&r, sizeof(r));
}

/* ---- the sampled paths (out of line: the hooks stay small) --------------- */

/* Is the shim on for this allocation?  It may still have to start: a
 * library constructor allocating before ours.  Never from ld.so itself
 * (it calls malloc holding the loader lock, mid-relocation) nor before
 * libc set environ: those allocations wait in the early list. */
static int heap_recording(const void *caller)
{
	int s = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE);

	if (likely(s == ST_ON))
		return !shim_busy && heap_mean;
	if (s != ST_UNINIT || shim_busy || !__environ)
		return 0;
	static uintptr_t ld_lo, ld_hi;
	if (!ld_hi) {
		const ElfW(Ehdr) *e = (const ElfW(Ehdr) *)getauxval(AT_BASE);
		const ElfW(Phdr) *ph = e ? (const ElfW(Phdr) *)((const char *)e + e->e_phoff) : NULL;
		for (unsigned i = 0; ph && i < e->e_phnum; i++)
			if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
				ld_lo = (uintptr_t)e + ph[i].p_vaddr;
				ld_hi = ld_lo + ph[i].p_memsz;
			}
		if (!ld_hi)
			ld_hi = 1;
	}
	if ((uintptr_t)caller >= ld_lo && (uintptr_t)caller < ld_hi)
		return 0;
	return shim_recording() && heap_mean;
}

static void count_unrecorded(size_t n)
{
	__atomic_add_fetch(&unrecorded_count, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&unrecorded_bytes, n, __ATOMIC_RELAXED);
}

/* ---- allocations before the shim is on ----------------------------------- */

/*
 * Library constructors, and ld.so itself, allocate before the shim can
 * record (ld.so even holding the loader lock).  Those allocations are kept
 * here (block, size, caller) and, once the shim is on, each is sampled as
 * the sampler would have (probability 1 - exp(-size/mean)) and sent with
 * its caller as a one-frame stack.  Frees before then take them out.
 */
#define EARLY_MAX 256
static struct early {
	__u64 addr, size, caller, time_ns;
	__u32 tid, fn;
} early[EARLY_MAX];
static unsigned early_n;                /* slots taken (atomic) */
static int early_open = 1;              /* cleared once flushed (atomic) */

static void early_add(void *p, size_t n, __u32 fn, const void *caller)
{
	unsigned i = __atomic_fetch_add(&early_n, 1, __ATOMIC_RELAXED);

	if (i >= EARLY_MAX || !__atomic_load_n(&early_open, __ATOMIC_ACQUIRE)) {
		count_unrecorded(n);
		return;
	}
	early[i] = (struct early){ .size = n, .caller = (__u64)(uintptr_t)caller, .time_ns = shim_now_ns(),
				   .tid = shim_tid(), .fn = fn };
	__atomic_store_n(&early[i].addr, (__u64)(uintptr_t)p, __ATOMIC_RELEASE);
}

/* p is freed or moved before the shim is on. */
static void early_forget(const void *p)
{
	unsigned n = __atomic_load_n(&early_n, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n && i < EARLY_MAX; i++)
		if (__atomic_load_n(&early[i].addr, __ATOMIC_ACQUIRE) == (__u64)(uintptr_t)p)
			__atomic_store_n(&early[i].addr, 0, __ATOMIC_RELEASE);
}

/* At init: sample what was allocated before and is still live. */
static void early_flush(void)
{
	__u64 mean = __atomic_load_n(&heap_mean, __ATOMIC_RELAXED);

	__atomic_store_n(&early_open, 0, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < EARLY_MAX && i < __atomic_load_n(&early_n, __ATOMIC_ACQUIRE); i++) {
		struct early e = early[i];
		double u = ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
		/* sampled with probability 1 - exp(-size/mean): -ln(u) < size/mean */
		if (!e.addr || !mean || (mean > 1 && -ln(u) * (double)mean >= (double)e.size))
			continue;
		remember((void *)(uintptr_t)e.addr, e.size, e.fn, &e.caller, 1, e.tid, e.time_ns);
	}
}

/* The allocation p of n bytes took this thread past its sample point. */
static __attribute__((noinline)) void sample_alloc(void *p, size_t n, __u32 fn, const void *caller)
{
	int e = shim_errno;

	if (!heap_recording(caller)) {
		int s = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE);
		if (s == ST_ON && heap_mean) {
			/* inside the shim: a signal handler that interrupted it, or
			 * the unwinder (libgcc's does not allocate once set up) */
			count_unrecorded(n);
			tls_left = next_interval();
		} else if (s == ST_UNINIT || s == ST_INIT) {
			/* before the shim is on: every allocation comes here until
			 * it is, then the thread draws its first interval.  The
			 * shim's own set-up (shim_busy while ST_INIT: dlsym, the
			 * unwinder loading libgcc_s) is faultline's, not the target's. */
			if (p && !shim_busy)
				early_add(p, n, fn, caller);
			tls_primed = 0;
			tls_left = 0;
		} else {
			tls_left = UINT64_MAX;  /* off */
		}
		shim_errno = e;
		return;
	}
	if (p && crossed(n)) {
		shim_busy++;
		if (remember(p, n, fn, NULL, 0, 0, 0))
			count_unrecorded(n);
		shim_busy--;
	}
	shim_errno = e;
}

/* The fast test: n bytes do not reach this thread's sample point. */
#define SKIP(n) likely((n) < tls_left && (tls_left -= (n), 1))

static __attribute__((noinline)) void sample_free(void *p)
{
	int e = shim_errno;
	__u64 size;

	shim_busy++;
	set_take(p, &size);
	shim_busy--;
	shim_errno = e;
}

/* ---- the hooks ---------------------------------------------------------- */

#define NEED() do { if (unlikely(!next.malloc)) resolve(); } while (0)

/*
 * Call the next allocator.  Before the shim is on, as inside the shim: the
 * hooks the allocator itself calls must not start the shim.  jemalloc's
 * first allocation mmaps under its init lock; the shim starting in that mmap
 * hook loads libgcc_s for the unwinder, which allocates, and waits on the
 * same lock forever.  Those early calls are in the shim's first snapshot.
 */
#define NEXT(call) \
	(likely(__atomic_load_n(&shim_state, __ATOMIC_RELAXED) == ST_ON) ? (call) : \
	 ({ shim_busy++; __typeof__(call) r_ = (call); shim_busy--; r_; }))

EXPORT void *malloc(size_t n)
{
	if (unlikely(!next.malloc)) {
		if (tls_resolving)
			return boot_alloc(n);
		resolve();
	}
	void *p = init_alloc(n);
	if (unlikely(p))
		return p;
	p = NEXT(next.malloc(n));
	if (SKIP(n))
		return p;
	sample_alloc(p, n, FL_ALLOC_MALLOC, __builtin_return_address(0));
	return p;
}

EXPORT void free(void *p)
{
	if (!p || unlikely(is_boot(p)))
		return;
	if (unlikely(maybe_sampled(p)))
		sample_free(p);
	else if (unlikely(__atomic_load_n(&early_n, __ATOMIC_RELAXED)) && __atomic_load_n(&early_open, __ATOMIC_RELAXED))
		early_forget(p);
	NEED();
	next.free(p);
}

EXPORT void *calloc(size_t k, size_t size)
{
	size_t n;

	if (unlikely(!next.malloc)) {
		if (tls_resolving)
			return __builtin_mul_overflow(k, size, &n) ? NULL : boot_alloc(n);
		resolve();
	}
	void *p = __builtin_mul_overflow(k, size, &n) ? NULL : init_alloc(n);
	if (unlikely(p))
		return p;
	p = NEXT(next.calloc(k, size));
	if (__builtin_mul_overflow(k, size, &n) || SKIP(n))
		return p;
	sample_alloc(p, n, FL_ALLOC_CALLOC, __builtin_return_address(0));
	return p;
}

/* A sampled block realloc is about to move or free: say so first, like
 * free().  Returns its size, 0 if it was not sampled. */
static __u64 realloc_leaves(void *p)
{
	__u64 size = 0;
	int e = shim_errno;

	if (p && __atomic_load_n(&early_open, __ATOMIC_RELAXED))
		early_forget(p);
	if (!p || !maybe_sampled(p))
		return 0;
	shim_busy++;
	if (!set_take(p, &size))
		size = 0;
	shim_busy--;
	shim_errno = e;
	return size;
}

static void *realloc_common(void *p, size_t n, __u32 fn, const void *caller)
{
	if (unlikely(is_boot(p))) {
		void *q = malloc(n);
		if (q)
			memcpy(q, p, boot_size(p) < n ? boot_size(p) : n);
		return q;
	}
	if (unlikely(!p)) {
		void *q = init_alloc(n);
		if (q)
			return q;
	}
	__u64 was = realloc_leaves(p);
	void *q = NEXT(next.realloc(p, n));
	if (!q && n && was) {
		/* failed: p is still there, and still the sampled block it was */
		int e = shim_errno;
		shim_busy++;
		remember(p, was, fn, NULL, 0, 0, 0);
		shim_busy--;
		shim_errno = e;
	}
	if (!q || SKIP(n))
		return q;
	sample_alloc(q, n, fn, caller);
	return q;
}

EXPORT void *realloc(void *p, size_t n)
{
	if (unlikely(!next.malloc)) {
		if (tls_resolving && (!p || is_boot(p))) {
			void *q = boot_alloc(n);
			if (q && p)
				memcpy(q, p, boot_size(p) < n ? boot_size(p) : n);
			return q;
		}
		resolve();
	}
	return realloc_common(p, n, FL_ALLOC_REALLOC, __builtin_return_address(0));
}

/* glibc's reallocarray calls its internal realloc, which no hook sees. */
EXPORT void *reallocarray(void *p, size_t k, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(k, size, &n)) {
		shim_errno = ENOMEM;
		return NULL;
	}
	NEED();
	return realloc_common(p, n, FL_ALLOC_REALLOC, __builtin_return_address(0));
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	NEED();
	int rc = NEXT(next.posix_memalign(out, align, n));
	if (rc || SKIP(n))
		return rc;
	sample_alloc(*out, n, FL_ALLOC_MEMALIGN, __builtin_return_address(0));
	return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	NEED();
	void *p = NEXT(next.aligned_alloc(align, n));
	if (SKIP(n))
		return p;
	sample_alloc(p, n, FL_ALLOC_MEMALIGN, __builtin_return_address(0));
	return p;
}

EXPORT void *memalign(size_t align, size_t n)
{
	NEED();
	void *p = NEXT(next.memalign(align, n));
	if (SKIP(n))
		return p;
	sample_alloc(p, n, FL_ALLOC_MEMALIGN, __builtin_return_address(0));
	return p;
}

EXPORT void *valloc(size_t n)
{
	NEED();
	void *p = NEXT(next.valloc(n));
	if (SKIP(n))
		return p;
	sample_alloc(p, n, FL_ALLOC_MEMALIGN, __builtin_return_address(0));
	return p;
}

EXPORT void *pvalloc(size_t n)
{
	NEED();
	void *p = NEXT(next.pvalloc(n));
	if (SKIP(n))
		return p;
	sample_alloc(p, n, FL_ALLOC_MEMALIGN, __builtin_return_address(0));
	return p;
}

/* ---- lifecycle ---------------------------------------------------------- */

static __u64 parse_size(const char *s, __u64 dflt)
{
	__u64 v = 0;

	if (!s || !*s)
		return dflt;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > UINT64_MAX / 10)
			return dflt;
		v = v * 10 + (__u64)(*s - '0');
	}
	return *s ? dflt : v;
}

/* Say so when some other malloc comes before ours: a program linking its
 * own allocator statically, or one preloaded ahead of the shim.  Its
 * allocations never reach these hooks. */
extern void *heap_own_malloc(size_t) __attribute__((alias("malloc"), visibility("hidden"), copy(malloc)));

static void check_interposed(void)
{
	void *first = dlsym(RTLD_DEFAULT, "malloc");
	Dl_info info;
	char text[200];

	/* our own definition by a hidden alias: `malloc` here would resolve
	 * through the GOT to whichever definition comes first */
	if (!first || first == (void *)heap_own_malloc)
		return;
	const char *who = dladdr(first, &info) && info.dli_fname && *info.dli_fname ? info.dli_fname : "the program";
	memcpy(text, "heap sampling sees no allocation: malloc is defined by ", 55);
	shim_copy_str(text + 55, sizeof(text) - 55, who);
	shim_note(text);
}

void heap_init(void)
{
	__u64 mean = parse_size(shim_getenv("FAULTLINE_HEAP_SAMPLE"), FL_HEAP_MEAN_DEFAULT);

	NEED();
	if (mean && !filter && !(filter = map_zeroed(INIT_BYTES, NULL)))
		mean = 0;
	init_shards();
	__atomic_store_n(&heap_mean, mean, __ATOMIC_RELEASE);
}

void heap_start(void)
{
	if (__atomic_load_n(&heap_mean, __ATOMIC_RELAXED))
		check_interposed();
	early_flush();
}

/* ---- fork: the child inherits the live sampled blocks -------------------- */

static __u64 fork_count;                /* forks of this image (atomic) */
static __u64 fork_id;                   /* the fork under way: its number, as the child sees it */
static int fork_inherit;                /* it closed the set's gate: the child keeps the set */

static void send_fork(__u32 ppid, int inherit)
{
	struct fl_heap_fork r = {
		.h = { .type = FL_R_HEAP_FORK, .size = sizeof(r) },
		.pid = shim_pid, .ppid = ppid, .fork_id = fork_id, .time_ns = shim_now_ns(), .inherit = (__u32)inherit,
	};
	shim_emit(&r, sizeof(r));
}

/*
 * Before the real fork (the shim on, shim_busy): close the set's gate and
 * wait for the steps under way, so every block in the set has had its
 * record sent and no thread holds a shard lock, then say so.  A fork from
 * a signal handler that interrupted this thread inside a step cannot wait
 * for it: that child starts with an empty set.
 */
void heap_fork_prepare(void)
{
	fork_inherit = 0;
	fork_id = 0;
	if (!filter || !__atomic_load_n(&heap_mean, __ATOMIC_RELAXED))
		return;
	fork_id = __atomic_add_fetch(&fork_count, 1, __ATOMIC_RELAXED);
	if (!tls_in_step && !tls_locked) {
		int zero = 0;
		while (!__atomic_compare_exchange_n(&set_forking, &zero, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			zero = 0;
			shim_short_sleep();    /* another thread is forking */
		}
		while (__atomic_load_n(&set_steps, __ATOMIC_SEQ_CST))
			shim_short_sleep();
		fork_inherit = 1;
	}
	tls_in_step++;                  /* this thread's signal handlers never wait for the gate */
	send_fork(0, fork_inherit);
}

void heap_fork_parent(void)
{
	if (!fork_id)
		return;
	tls_in_step--;
	if (fork_inherit)
		__atomic_store_n(&set_forking, 0, __ATOMIC_SEQ_CST);
}

/* In the child, before its hello. */
void heap_fork_child(void)
{
	unrecorded_count = unrecorded_bytes = lost_frees = 0;
	/* only this thread is left: no step is under way, no fork */
	set_steps = set_forking = 0;
	tls_in_step = 0;
	tls_locked = 0;
	if (fork_inherit)
		return;                 /* the copy is whole, no lock held */
	/* Empty set, fresh locks: a lock held by a thread that fork did not
	 * copy would never be released.  MAP_FIXED replaces the pages at once. */
	for (unsigned i = 0; i < NSHARDS; i++)
		if (shards[i].e && !shards[i].first)
			shim_syscall(SYS_munmap, shards[i].e, shards[i].cap * sizeof(struct entry));
	if (filter) {
		/* the same range, fresh zero pages: nothing for the snapshot to learn */
		long a = shim_sys_mmap(filter, INIT_BYTES, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		if (a < 0 && a > -4096)
			filter = NULL;
	}
	init_shards();
}

/* In the child, after its hello: which of the parent's forks it is. */
void heap_fork_hello(__u32 ppid)
{
	if (fork_id && __atomic_load_n(&heap_mean, __ATOMIC_RELAXED))
		send_fork(ppid, fork_inherit);
}

/* At exit: what the sampler could not see, for the collector's loss rows. */
__attribute__((destructor)) static void heap_stats(void)
{
	struct fl_heap_stats r = { .h = { .type = FL_R_HEAP_STATS, .size = sizeof(r) } };

	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) != ST_ON || !heap_mean)
		return;
	r.pid = shim_pid;
	r.mean = heap_mean;
	r.unrecorded_count = __atomic_load_n(&unrecorded_count, __ATOMIC_RELAXED);
	r.unrecorded_bytes = __atomic_load_n(&unrecorded_bytes, __ATOMIC_RELAXED);
	r.lost_frees = __atomic_load_n(&lost_frees, __ATOMIC_RELAXED);
	shim_busy++;
	shim_emit(&r, sizeof(r));
	shim_busy--;
}
