/* SPDX-License-Identifier: MIT */
/*
 * matcher.c - shim calls meet their syscalls (see matcher.h).
 *
 * Every cost is O(1) or O(log n) per call, whatever the input: the queues
 * are ring buffers (push at the back, pop at the front), a matched entry
 * in the middle becomes a tombstone instead of moving the others, a search
 * looks at no more than SCAN_MAX entries, and nothing waits for a process
 * to exit: fl_matcher_expire() settles by time what can no longer match.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "matcher.h"
#include "vec.h"

/*
 * How far from where its twin should be a search looks.  The twins of one
 * thread are in the same order on both sides, but for calls made in signal
 * handlers between a syscall and its shim record: a few entries.
 */
#define SCAN_MAX 64

/* Waiting calls of one side of one thread, oldest first; kind 0: taken (a tombstone). */
struct deque {
	struct fl_pending *a;
	size_t head, n, cap;    /* cap: 0 or a power of two */
};

struct tidq {
	struct deque kernel, shim;
	bool active;            /* in the matcher's active list */
};

static struct fl_pending *at(const struct deque *d, size_t i)
{
	return &d->a[(d->head + i) & (d->cap - 1)];
}

static int push_back(struct deque *d, const struct fl_pending *e)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct fl_pending *a = malloc(cap * sizeof(*a));
		if (!a)
			return -1;
		for (size_t i = 0; i < d->n; i++)
			a[i] = *at(d, i);
		free(d->a);
		d->a = a;
		d->cap = cap;
		d->head = 0;
	}
	d->n++;
	*at(d, d->n - 1) = *e;
	return 0;
}

static void pop_front(struct deque *d)
{
	d->head = (d->head + 1) & (d->cap - 1);
	d->n--;
}

/* Drop the tombstones at the front. */
static void trim(struct deque *d)
{
	while (d->n && at(d, 0)->kind == FL_K_NONE)
		pop_front(d);
}

/* Index of the first entry of d later than t (d is in time order), by bisection. */
static size_t first_after(const struct deque *d, __u64 t)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (at(d, mid)->time_ns <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void fl_matcher_init(struct fl_matcher *m, fl_settle_fn settle, void *ctx)
{
	memset(m, 0, sizeof(*m));
	m->settle = settle;
	m->ctx = ctx;
}

/* Which syscall a shim call is, for matching (libc sbrk is the brk syscall). */
static __u32 syscall_kind(__u32 kind)
{
	return kind == FL_K_SBRK ? FL_K_BRK : kind;
}

/* Arguments that a call and its twin agree on, by syscall kind; 0: the kernel reports no such call. */
static const unsigned match_args[FL_K_COUNT] = {
	[FL_K_MMAP] = 6, [FL_K_MUNMAP] = 2, [FL_K_MPROTECT] = 3, [FL_K_PKEY_MPROTECT] = 4,
	[FL_K_MREMAP] = 4, [FL_K_BRK] = 1, [FL_K_MADVISE] = 3, [FL_K_SHMAT] = 3, [FL_K_SHMDT] = 1,
};

/*
 * What a BPF syscall and its shim twin agree on: the arguments libc passes
 * through unchanged, and the outcome.  (Not mremap's new_address: glibc
 * reads it only with MREMAP_FIXED, so the register may hold anything.)
 */
static __u64 match_key(const struct fl_call *c)
{
	__u64 a[6], outcome = c->err ? (__u64)-c->err : (__u64)c->result;
	unsigned kind = syscall_kind(c->kind), n = kind < FL_K_COUNT ? match_args[kind] : 0;
	memcpy(a, c->args, sizeof(a));
	if (c->kind == FL_K_SBRK) {
		/* sbrk(incr) is brk(old + incr); both report the break asked for */
		a[0] = (__u64)c->result + c->args[0];
		outcome = a[0];
	} else if (kind == FL_K_BRK) {
		outcome = a[0]; /* libc's brk returns 0, the syscall the new break */
	}
	__u64 h = fl_hash64(kind ^ (outcome << 8));
	for (unsigned i = 0; i < n; i++)
		h = fl_hash64(h ^ a[i]);
	return h;
}

struct fl_pending fl_pending_of(const struct fl_call *c)
{
	return (struct fl_pending){ .kind = syscall_kind(c->kind), .key = match_key(c), .time_ns = c->time_ns,
				    .call = *c };
}

static struct tidq *tid_queue(struct fl_matcher *m, __u32 tid)
{
	struct tidq *q = (struct tidq *)fl_hmap_get(&m->tids, tid);
	if (!q && (q = calloc(1, sizeof(*q))) && fl_hmap_put(&m->tids, tid, (uintptr_t)q)) {
		free(q);
		q = NULL;
	}
	return q;
}

/* q has waiting calls: make sure fl_matcher_expire() visits it. */
static void activate(struct fl_matcher *m, struct tidq *q)
{
	if (q->active || fl_vec_reserve((void **)&m->active, &m->capactive, m->nactive + 1, sizeof(*m->active)))
		return;
	m->active[m->nactive++] = q;
	q->active = true;
}

static void settle_kernel(struct fl_matcher *m, struct fl_pending *k)
{
	m->settle(m->ctx, k, NULL);
	k->kind = FL_K_NONE;
}

/* Settle a waiting shim call alone, freeing its frames. */
static void settle_shim(struct fl_matcher *m, struct fl_pending *s)
{
	m->settle(m->ctx, NULL, s);
	free((void *)s->frames);
	s->frames = NULL;
	s->kind = FL_K_NONE;
}

static bool twins(const struct fl_pending *a, const struct fl_pending *b)
{
	return a->kind == b->kind && a->key == b->key;
}

void fl_matcher_kernel(struct fl_matcher *m, const struct fl_pending *k)
{
	struct tidq *q = tid_queue(m, k->call.tid);
	if (!q) {
		m->settle(m->ctx, k, NULL);
		return;
	}
	/* shim calls older than this syscall get no twin: it would have come before */
	struct deque *shim = &q->shim;
	for (trim(shim); shim->n && at(shim, 0)->time_ns < k->time_ns; trim(shim))
		settle_shim(m, at(shim, 0));
	/* its twin is the oldest with the same key (a later one: a call in a signal handler) */
	for (size_t i = 0; i < shim->n && i < SCAN_MAX; i++) {
		struct fl_pending *s = at(shim, i);
		if (twins(s, k)) {
			m->settle(m->ctx, k, s);
			free((void *)s->frames);
			s->kind = FL_K_NONE;
			trim(shim);
			return;
		}
	}
	if (push_back(&q->kernel, k))
		m->settle(m->ctx, k, NULL);
	else
		activate(m, q);
}

void fl_matcher_shim(struct fl_matcher *m, const struct fl_pending *s)
{
	if (s->kind >= FL_K_COUNT || !match_args[s->kind]) { /* fork, dlopen, ...: no syscall to wait for */
		m->settle(m->ctx, NULL, s);
		return;
	}
	struct tidq *q = tid_queue(m, s->call.tid);
	if (!q) {
		m->settle(m->ctx, NULL, s);
		return;
	}
	/*
	 * Its twin returned before it: the newest such syscall with the same
	 * key (older ones with that key were glibc's own calls, whose records
	 * the shim never sends).  Those stay until they expire: a shim record
	 * of an interrupted call may still come for one of them.
	 */
	struct deque *kernel = &q->kernel;
	size_t end = first_after(kernel, s->time_ns);
	for (size_t i = end, seen = 0; i-- > 0 && seen < SCAN_MAX; seen++) {
		struct fl_pending *k = at(kernel, i);
		if (twins(k, s)) {
			m->settle(m->ctx, k, s);
			k->kind = FL_K_NONE;
			trim(kernel);
			return;
		}
	}
	struct fl_pending w = *s;
	__u64 *frames = w.nframes ? malloc(w.nframes * sizeof(__u64)) : NULL;
	if (frames)
		memcpy(frames, s->frames, w.nframes * sizeof(__u64));
	else
		w.nframes = 0;
	w.frames = frames;
	if (push_back(&q->shim, &w)) {
		m->settle(m->ctx, NULL, s);
		free(frames);
	} else {
		activate(m, q);
	}
}

/* Settle the entries of d older than t alone (all of them when t is ~0). */
static void expire_side(struct fl_matcher *m, struct deque *d, __u64 t, bool shim_side)
{
	for (trim(d); d->n && at(d, 0)->time_ns < t; trim(d)) {
		if (shim_side)
			settle_shim(m, at(d, 0));
		else
			settle_kernel(m, at(d, 0));
	}
}

void fl_matcher_expire(struct fl_matcher *m, __u64 channel_ns, __u64 ring_ns)
{
	size_t keep = 0;
	for (size_t i = 0; i < m->nactive; i++) {
		struct tidq *q = m->active[i];
		expire_side(m, &q->kernel, channel_ns, false);
		expire_side(m, &q->shim, ring_ns, true);
		q->active = q->kernel.n || q->shim.n;
		if (q->active)
			m->active[keep++] = q;
	}
	m->nactive = keep;
}

void fl_matcher_flush(struct fl_matcher *m)
{
	fl_matcher_expire(m, ~0ull, ~0ull);
}

void fl_matcher_free(struct fl_matcher *m)
{
	for (size_t i = 0; i < m->tids.cap; i++) {
		struct tidq *q = (struct tidq *)m->tids.vals[i];
		if (!q)
			continue;
		for (size_t k = 0; k < q->shim.n; k++)
			free((void *)at(&q->shim, k)->frames);
		free(q->kernel.a);
		free(q->shim.a);
		free(q);
	}
	fl_hmap_free(&m->tids);
	free(m->active);
	m->active = NULL;
	m->nactive = m->capactive = 0;
}
