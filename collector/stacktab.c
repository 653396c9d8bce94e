/* SPDX-License-Identifier: MIT */
/* stacktab.c - frames, stacks and fault sites (see stacktab.h). */
#include <sys/mman.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "stacktab.h"
#include "strtab.h"
#include "symbolizer.h"
#include "vec.h"

struct frame {
	__s64 id;
	unsigned module;        /* strtab index, 0 = none */
	__u64 rel;              /* file offset in module, or the raw address */
	int is_return;          /* a return address: symbolize the call before it */
	signed char fp[2];      /* keeps_frame_pointer() of it as an instruction [0] and a return address [1], -1 unknown */
};

struct stack {
	__s64 id;
	unsigned n;
	__s64 frames[];
};

struct site {
	__s64 vma_id, proc_id, frame_id, callers_id;
	const char *cls;
	__u64 count;
	int faultline;
	int callers_end;        /* enum fl_caller_end, -1: not walked */
};

struct fl_stacks {
	struct fl_store *store;
	struct fl_symbolizer *names; /* names the frames, on a thread */
	struct fl_hmap frame_by_key;    /* module << 48 | rel -> index + 1 into frames */
	struct frame *frames;
	size_t nframes, capframes;
	struct fl_hmap stack_by_hash;   /* hash of frame ids -> struct stack * */
	struct fl_hmap site_by_key;     /* hash(vma, frame, class) -> index + 1 into sites */
	struct site *sites;
	size_t nsites, capsites;
};

struct fl_stacks *fl_stacks_new(struct fl_store *store)
{
	struct fl_stacks *st = calloc(1, sizeof(*st));
	if (st && !(st->names = fl_symbolizer_new())) {
		free(st);
		return NULL;
	}
	if (st)
		st->store = store;
	return st;
}

void fl_stacks_free(struct fl_stacks *st)
{
	if (!st)
		return;
	fl_symbolizer_free(st->names);
	for (size_t i = 0; i < st->stack_by_hash.cap; i++)
		free((void *)st->stack_by_hash.vals[i]);
	fl_hmap_free(&st->stack_by_hash);
	fl_hmap_free(&st->frame_by_key);
	fl_hmap_free(&st->site_by_key);
	free(st->frames);
	free(st->sites);
	free(st);
}

/* The frame of ip, as mapped at t in m (deduplicated), NULL when out of memory; valid until the next
 * frame is made. */
static struct frame *frame_at(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int is_return)
{
	struct fl_vma ended;
	unsigned module = 0;
	__u64 rel = ip;
	/* a return address may be the first byte after its function's VMA: look up ip - 1 */
	const struct fl_vma *v = fl_model_find_at(m, is_return ? ip - 1 : ip, t, &ended);
	if (v && v->path && v->path[0] == '/') {
		module = fl_strtab_index(v->path);
		rel = ip - v->start + v->offset;
	}
	__u64 key = (__u64)module << 48 | (rel & ((1ULL << 48) - 1));
	size_t i = fl_hmap_get(&st->frame_by_key, key ? key : 1);
	if (i)
		return &st->frames[i - 1];
	if (fl_vec_reserve((void **)&st->frames, &st->capframes, st->nframes + 1, sizeof(*st->frames)))
		return NULL;
	struct frame *f = &st->frames[st->nframes];
	f->id = fl_store_frame(st->store, fl_strtab_get(module), rel);
	f->module = module;
	f->rel = rel;
	f->is_return = is_return;
	f->fp[0] = f->fp[1] = -1;
	if (!f->id)
		return NULL;
	if (module)
		fl_symbolizer_add(st->names, f->id, module, fl_strtab_get(module), rel, is_return);
	fl_hmap_put(&st->frame_by_key, key ? key : 1, ++st->nframes);
	return f;
}

static __s64 frame_of(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int is_return)
{
	const struct frame *f = frame_at(st, m, t, ip, is_return);
	return f ? f->id : 0;
}

__s64 fl_stacks_frame(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip)
{
	return frame_of(st, m, t, ip, 0);
}

/* fl_stacks_intern of addresses as mapped at t. */
static __s64 intern_at(struct fl_stacks *st, const struct fl_model *m, __u64 t, const __u64 *ips, unsigned n)
{
	if (!n)
		return 0;
	__s64 ids[FL_MAX_FRAMES];
	if (n > FL_MAX_FRAMES)
		n = FL_MAX_FRAMES;
	__u64 h = n;
	for (unsigned i = 0; i < n; i++) {
		ids[i] = frame_of(st, m, t, ips[i], 1);
		h = fl_hash64(h ^ (__u64)ids[i]);
	}
	/* probe on: a different stack with the same 64-bit hash takes the next key */
	for (;; h = fl_hash64(h + 1)) {
		struct stack *s = (struct stack *)fl_hmap_get(&st->stack_by_hash, h ? h : 1);
		if (!s)
			break;
		if (s->n == n && !memcmp(s->frames, ids, n * sizeof(ids[0])))
			return s->id;
	}
	struct stack *s = malloc(sizeof(*s) + n * sizeof(ids[0]));
	if (!s)
		return 0;
	s->n = n;
	memcpy(s->frames, ids, n * sizeof(ids[0]));
	s->id = fl_store_stack(st->store, ids, n);
	fl_hmap_put(&st->stack_by_hash, h ? h : 1, (uintptr_t)s);
	return s->id;
}

__s64 fl_stacks_intern(struct fl_stacks *st, const struct fl_model *m, const __u64 *ips, unsigned n)
{
	return intern_at(st, m, FL_MODEL_NOW, ips, n);
}

void fl_stacks_add_site(struct fl_stacks *st, __s64 vma_id, __s64 proc_id, const char *cls,
			__s64 frame_id, __u64 count, int faultline, __s64 callers_id, int callers_end)
{
	__u64 h = fl_hash64(fl_hash64(fl_hash64((__u64)vma_id) ^ (__u64)frame_id) ^ (__u64)callers_id) ^
		  (uintptr_t)cls ^ (__u64)!!faultline ^ (__u64)(callers_end + 1) << 1;
	for (;; h = fl_hash64(h + 1)) {
		size_t i = fl_hmap_get(&st->site_by_key, h ? h : 1);
		if (!i)
			break;
		struct site *s = &st->sites[i - 1];
		if (s->vma_id == vma_id && s->frame_id == frame_id && s->cls == cls && s->faultline == !!faultline &&
		    s->callers_id == callers_id && s->callers_end == callers_end) {
			s->count += count;
			return;
		}
	}
	if (fl_vec_reserve((void **)&st->sites, &st->capsites, st->nsites + 1, sizeof(*st->sites)))
		return;
	st->sites[st->nsites] = (struct site){ vma_id, proc_id, frame_id, callers_id, cls, count, !!faultline,
					       callers_end };
	fl_hmap_put(&st->site_by_key, h ? h : 1, ++st->nsites);
}

/* ---- callers of fault sites ------------------------------------------------------- */

/* fl_symbolizer_frame_pointer of f (is_return: as a return address), asked once. */
static enum fl_caller_end keeps_frame_pointer(struct fl_stacks *st, struct frame *f, int is_return)
{
	if (f->fp[is_return] < 0)
		f->fp[is_return] = (signed char)(f->module ? fl_symbolizer_frame_pointer(st->names, f->module,
								fl_strtab_get(f->module), f->rel, is_return)
							   : FL_CALLERS_NO_UNWIND_INFO);
	return (enum fl_caller_end)f->fp[is_return];
}

/* Was addr in executable memory of m at t? */
static bool is_code(const struct fl_model *m, __u64 t, __u64 addr)
{
	struct fl_vma ended;
	const struct fl_vma *v = fl_model_find_at(m, addr, t, &ended);
	return v && (v->prot & PROT_EXEC);
}

__s64 fl_stacks_callers(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int kernel,
			const __u64 *callers, enum fl_caller_end *end)
{
	__u64 kept[FL_SITE_CALLERS];
	unsigned n = 0, i = 0;
	struct frame *f = frame_at(st, m, t, ip, 0);
	int is_return = 0;

	if (kernel) {
		/* callers[0] is the user pc the syscall saved: no frame vouches for it, the kernel does */
		if (!callers[0] || !is_code(m, t, callers[0] - 1)) {
			*end = FL_CALLERS_NOT_CODE;
			return 0;
		}
		kept[n++] = callers[i++];
		f = frame_at(st, m, t, kept[0], 1);
		is_return = 1;
	}
	for (;;) {
		*end = f ? keeps_frame_pointer(st, f, is_return) : FL_CALLERS_NO_UNWIND_INFO;
		if (*end != FL_CALLERS_DEPTH || i == FL_SITE_CALLERS)
			break;
		if (!callers[i]) {
			*end = FL_CALLERS_TOP;
			break;
		}
		if (!is_code(m, t, callers[i] - 1)) {
			*end = FL_CALLERS_NOT_CODE;
			break;
		}
		kept[n++] = callers[i++];
		f = frame_at(st, m, t, kept[n - 1], 1);
		is_return = 1;
	}
	return intern_at(st, m, t, kept, n);
}

void fl_stacks_prewarm(struct fl_stacks *st, const char *shim, const char *exe)
{
	fl_symbolizer_start(st->names, shim, exe);
}

static void store_name(void *ctx, const struct fl_symbol *s)
{
	struct fl_stacks *st = ctx;
	fl_store_frame_symbol(st->store, s->frame_id, s->build_id, s->function, s->offset, s->file, s->line);
}

void fl_stacks_symbolize(struct fl_stacks *st, bool (*stop)(void *ctx), void *ctx)
{
	fl_symbolizer_take(st->names, false, stop, ctx, store_name, st);
}

void fl_stacks_finish(struct fl_stacks *st)
{
	for (size_t i = 0; i < st->nsites; i++) {
		const struct site *s = &st->sites[i];
		fl_store_fault_site(st->store, s->vma_id, s->proc_id, s->cls, s->frame_id, s->count, s->faultline,
				    s->callers_id, s->callers_end >= 0 ? fl_caller_end_name((unsigned)s->callers_end) : NULL);
	}
	st->nsites = 0;
	fl_symbolizer_take(st->names, true, NULL, NULL, store_name, st);
}
