/* SPDX-License-Identifier: MIT */
/* matcher.c - shim calls meet their syscalls (see matcher.h). */
#include <stdlib.h>
#include <string.h>

#include "matcher.h"

/*
 * A thread's waiting calls, oldest first.  The BPF side can run far ahead
 * of the shim's (the collector may read a burst of kernel records before
 * the channel), so the queues grow, up to PENDING_MAX.
 */
#define PENDING_MAX 65536
struct queue {
	struct fl_pending *a;
	unsigned n, cap;
};
struct tidq {
	struct queue bpf, shim;
};

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

/*
 * What a BPF syscall and its shim twin agree on: the arguments libc passes
 * through unchanged, and the outcome.  (Not mremap's new_address: glibc
 * reads it only with MREMAP_FIXED, so the register may hold anything.)
 */
static __u64 match_key(const struct fl_call *c)
{
	static const unsigned nargs[FL_K_COUNT] = {
		[FL_K_MMAP] = 6, [FL_K_MUNMAP] = 2, [FL_K_MPROTECT] = 3, [FL_K_PKEY_MPROTECT] = 4,
		[FL_K_MREMAP] = 4, [FL_K_BRK] = 1, [FL_K_MADVISE] = 3, [FL_K_SHMAT] = 3, [FL_K_SHMDT] = 1,
	};
	__u64 a[6], outcome = c->err ? (__u64)-c->err : (__u64)c->result;
	unsigned kind = syscall_kind(c->kind), n = kind < FL_K_COUNT ? nargs[kind] : 0;
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
	if (!q && (q = calloc(1, sizeof(*q))))
		fl_hmap_put(&m->tids, tid, (uintptr_t)q);
	return q;
}

/* Remove the first k entries of q. */
static void drop_front(struct queue *q, unsigned k)
{
	memmove(q->a, q->a + k, (q->n - k) * sizeof(*q->a));
	q->n -= k;
}

/* Append e; at PENDING_MAX the oldest entry gives way (returned in *old, else old->kind = 0). */
static void push(struct queue *q, const struct fl_pending *e, struct fl_pending *old)
{
	old->kind = FL_K_NONE;
	if (q->n == q->cap && q->cap < PENDING_MAX) {
		unsigned cap = q->cap ? q->cap * 2 : 16;
		struct fl_pending *a = realloc(q->a, cap * sizeof(*a));
		if (a) {
			q->a = a;
			q->cap = cap;
		}
	}
	if (q->n == q->cap) {
		if (!q->n)
			return;
		*old = q->a[0];
		drop_front(q, 1);
	}
	q->a[q->n++] = *e;
}

/* Settle a waiting shim call alone, freeing its frames. */
static void settle_shim(struct fl_matcher *m, struct fl_pending *s)
{
	m->settle(m->ctx, NULL, s);
	free((void *)s->frames);
	s->frames = NULL;
}

/*
 * Pair a call with its twin: the oldest waiting entry of the other side with
 * the same kind and key.  One thread's calls are in order on both sides, so
 * the entries before the twin can have no twin any more: the shim does not
 * see glibc's internal syscalls, nor the kernel libc calls that fail early.
 * Those before it are returned to the caller by count in *skipped.
 */
static int take_match(struct queue *q, __u32 kind, __u64 key, struct fl_pending *out, unsigned *skipped)
{
	for (unsigned i = 0; i < q->n; i++) {
		if (q->a[i].kind == kind && q->a[i].key == key) {
			*out = q->a[i];
			*skipped = i;
			memmove(&q->a[i], &q->a[i + 1], (q->n - i - 1) * sizeof(*q->a));
			q->n--;
			return 1;
		}
	}
	return 0;
}

/*
 * A syscall of this thread returned at time t: shim calls older than t that
 * are still waiting will get no twin (the kernel's exit time precedes the
 * shim's timestamp, and one thread's calls are ordered), so settle them.
 */
static void settle_older(struct fl_matcher *m, struct queue *shim, __u64 t)
{
	unsigned k = 0;
	while (k < shim->n && shim->a[k].time_ns < t)
		settle_shim(m, &shim->a[k++]);
	drop_front(shim, k);
}

void fl_matcher_kernel(struct fl_matcher *m, const struct fl_pending *k)
{
	struct tidq *q = tid_queue(m, k->call.tid);
	struct fl_pending s;
	unsigned skipped;
	if (!q) {
		m->settle(m->ctx, k, NULL);
		return;
	}
	if (take_match(&q->shim, k->kind, k->key, &s, &skipped)) {
		m->settle(m->ctx, k, &s);
		free((void *)s.frames);
	} else {
		push(&q->bpf, k, &s);
		if (s.kind) /* the oldest waiting syscall gave way: it keeps no stack */
			m->settle(m->ctx, &s, NULL);
	}
	settle_older(m, &q->shim, k->time_ns);
}

void fl_matcher_shim(struct fl_matcher *m, const struct fl_pending *s)
{
	struct tidq *q = tid_queue(m, s->call.tid);
	if (!q)
		return;
	struct fl_pending k, w = *s, old;
	unsigned skipped;
	if (take_match(&q->bpf, s->kind, s->key, &k, &skipped)) {
		for (unsigned i = 0; i < skipped; i++) /* syscalls the shim never saw: no stack */
			m->settle(m->ctx, &q->bpf.a[i], NULL);
		drop_front(&q->bpf, skipped);
		m->settle(m->ctx, &k, s);
		return;
	}
	__u64 *frames = w.nframes ? malloc(w.nframes * sizeof(__u64)) : NULL;
	if (frames)
		memcpy(frames, s->frames, w.nframes * sizeof(__u64));
	else
		w.nframes = 0;
	w.frames = frames;
	push(&q->shim, &w, &old);
	if (old.kind)
		settle_shim(m, &old);
}

void fl_matcher_flush(struct fl_matcher *m)
{
	for (size_t i = 0; i < m->tids.cap; i++) {
		struct tidq *q = (struct tidq *)m->tids.vals[i];
		if (!q)
			continue;
		for (unsigned k = 0; k < q->shim.n; k++)
			settle_shim(m, &q->shim.a[k]);
		for (unsigned k = 0; k < q->bpf.n; k++)
			m->settle(m->ctx, &q->bpf.a[k], NULL);
		q->shim.n = q->bpf.n = 0;
	}
}

void fl_matcher_free(struct fl_matcher *m)
{
	for (size_t i = 0; i < m->tids.cap; i++) {
		struct tidq *q = (struct tidq *)m->tids.vals[i];
		if (!q)
			continue;
		for (unsigned k = 0; k < q->shim.n; k++)
			free((void *)q->shim.a[k].frames);
		free(q->bpf.a);
		free(q->shim.a);
		free(q);
	}
	fl_hmap_free(&m->tids);
}
