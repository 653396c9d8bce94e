/* SPDX-License-Identifier: MIT */
/* faults.c - fault counts and sites to VMA rows (see faults.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"
#include "hmap.h"
#include "procs.h"
#include "vec.h"

/*
 * Fault counts are held until fl_faults_attribute(): the VMA a count
 * belongs to may have been made by a syscall whose record was still in the
 * ring buffer when the counts were read.  Counts of an exec's new image
 * (fl_fault_key.new_image) can be read before its record is even written:
 * they wait for it, across reads, as long as their process runs.
 */
struct fl_held_fault {
	struct fl_fault_key k;
	struct fl_fault_counts c;
	__s64 vma, proc_id;     /* the row it landed on (0: none), set by fl_faults_attribute() */
	bool waits;             /* for its exec's record: kept for the next attribution */
};

struct fl_held_site {
	struct fl_site_key k;
	__u64 count;
};

void fl_faults_free(struct fl_ingest *g)
{
	struct fl_faults *f = &g->faults;
	free(f->held);
	free(f->sites);
	memset(f, 0, sizeof(*f));
}

/* Append size bytes at item to a growable array. Returns 0 or -1. */
static int hold(void **a, size_t *n, size_t *cap, const void *item, size_t size)
{
	if (fl_vec_reserve(a, cap, *n + 1, size))
		return -1;
	memcpy((char *)*a + (*n)++ * size, item, size);
	return 0;
}

static __u64 total(const struct fl_fault_counts *c)
{
	__u64 n = 0;
	for (int i = 0; i < FL_F_NCLASS; i++)
		n += c->cls[i];
	return n;
}

void fl_faults_add(void *ctx, const struct fl_fault_key *k, const struct fl_fault_counts *c)
{
	struct fl_faults *f = &((struct fl_ingest *)ctx)->faults;
	struct fl_held_fault h = { *k, *c, 0, 0, false };
	if (hold((void **)&f->held, &f->nheld, &f->capheld, &h, sizeof(h)))
		f->unattributed += total(c);
}

void fl_faults_add_site(void *ctx, const struct fl_site_key *k, __u64 count)
{
	struct fl_faults *f = &((struct fl_ingest *)ctx)->faults;
	struct fl_held_site h = { *k, count };
	hold((void **)&f->sites, &f->nsites, &f->capsites, &h, sizeof(h));
}

/*
 * When the faults of h happened, as the model's times go: a new image's are
 * its exec's (the first exec record after them: exec after exec, as a shell
 * script that execs its interpreter does, can replace that image before the
 * counts are read), once that record is read; 0 while it is not.
 */
static __u64 model_time(const struct proc *p, const struct fl_held_fault *h)
{
	return h->k.new_image ? fl_procs_exec_after(p, h->c.last_ns) : h->c.last_ns;
}

/* The row h's counts belong to (h->vma, 0 if none: then they are accounted elsewhere, or wait). */
static void attribute_fault(struct fl_ingest *g, struct fl_held_fault *h, bool last)
{
	const struct fl_fault_key *k = &h->k;
	const struct fl_fault_counts *c = &h->c;
	struct proc *p = fl_procs_find(g, k->tgid);
	__u64 t = p ? model_time(p, h) : 0;
	/*
	 * The row that held the key's piece when its faults happened (one VMA
	 * generation: one layout, named by the latest fault's time).  vm_end 0:
	 * BPF could not look the VMA up; piece is then the faulting page.
	 */
	h->vma = t ? fl_model_attribute(&p->model, k->piece, k->vm_end ? k->vm_end : k->piece + 1, t) : 0;
	h->waits = false;
	if (h->vma) {
		h->proc_id = p->id;
		if (k->vm_end)
			fl_model_grow_stack(&p->model, k->vm_start, k->vm_end);
		return;
	}
	if (p && !t && !p->ended && !last) {
		h->waits = true; /* its exec's record is still to come */
		return;
	}
	if (p && !k->new_image && c->last_ns < p->exec_ns) {
		/* the launched child before it became the target: faultline's own image, no VMA of the run */
		for (int i = 0; i < FL_F_NCLASS; i++)
			p->prexec[FL_F_IS_MAJOR(i)] += c->cls[i];
		return;
	}
	g->faults.unattributed += total(c);
	if (getenv("FAULTLINE_DEBUG"))
		fprintf(stderr, "faultline: faults of pid %u at %llx in %llx-%llx (latest at %llu%s) fit no VMA\n",
			k->tgid, (unsigned long long)k->piece, (unsigned long long)k->vm_start,
			(unsigned long long)k->vm_end, (unsigned long long)c->last_ns,
			k->new_image ? ", in an exec" : "");
}

static int by_vma(const void *a, const void *b)
{
	const struct fl_held_fault *x = a, *y = b;
	if (x->vma != y->vma)
		return (x->vma > y->vma) - (x->vma < y->vma);
	return (x->k.faultline > y->k.faultline) - (x->k.faultline < y->k.faultline);
}

/*
 * One fault row per VMA row, drain and side (the program's, faultline's): a
 * key is per piece, generation and 2 MiB bucket, so one row's counts of one
 * drain may come in many keys.
 */
static void store_faults(struct fl_ingest *g, struct fl_held_fault *h, size_t n)
{
	qsort(h, n, sizeof(*h), by_vma);
	for (size_t i = 0; i < n;) {
		struct fl_fault_counts sum = h[i].c;
		size_t j = i + 1;
		if (!h[i].vma) {
			i++;
			continue;
		}
		for (; j < n && h[j].vma == h[i].vma && h[j].k.faultline == h[i].k.faultline; j++) {
			for (int c = 0; c < FL_F_NCLASS; c++)
				sum.cls[c] += h[j].c.cls[c];
			sum.read += h[j].c.read;
			sum.write += h[j].c.write;
			sum.exec += h[j].c.exec;
			sum.thp += h[j].c.thp;
			if (h[j].c.last_ns > sum.last_ns)
				sum.last_ns = h[j].c.last_ns;
		}
		fl_store_fault(g->store, h[i].vma, h[i].proc_id, sum.last_ns, &sum, h[i].k.faultline);
		i = j;
	}
}

static __u64 piece_hash(__u32 tgid, __u64 piece, __u32 faultline)
{
	return fl_hash64(fl_hash64(piece) ^ tgid ^ (__u64)!!faultline << 32);
}

/*
 * The held faults of this drain by (process, piece, side), the latest of
 * each: a site's faults are among them, so it goes to their row, even when
 * that row ended before the counts were read.
 */
static void index_pieces(struct fl_hmap *by_piece, const struct fl_held_fault *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!h[i].vma && !h[i].waits)
			continue;
		for (__u64 key = piece_hash(h[i].k.tgid, h[i].k.piece, h[i].k.faultline);; key = fl_hash64(key + 1)) {
			size_t j = fl_hmap_get(by_piece, key ? key : 1);
			const struct fl_held_fault *o = j ? &h[j - 1] : NULL;
			if (o && (o->k.tgid != h[i].k.tgid || o->k.piece != h[i].k.piece ||
				  o->k.faultline != h[i].k.faultline))
				continue;
			if (!o || o->c.last_ns < h[i].c.last_ns)
				fl_hmap_put(by_piece, key ? key : 1, i + 1);
			break;
		}
	}
}

/*
 * The row the faults of the site's piece went to this drain, else the
 * latest that holds the piece; -1 while those faults wait.
 */
static __s64 site_row(struct fl_ingest *g, const struct fl_hmap *by_piece, struct proc *p, const struct fl_site_key *k)
{
	for (__u64 key = piece_hash(k->tgid, k->piece, k->faultline);; key = fl_hash64(key + 1)) {
		size_t j = fl_hmap_get(by_piece, key ? key : 1);
		const struct fl_held_fault *o = j ? &g->faults.held[j - 1] : NULL;
		if (!o)
			break;
		if (o->k.tgid == k->tgid && o->k.piece == k->piece && o->k.faultline == k->faultline)
			return o->waits ? -1 : o->vma;
	}
	return fl_model_attribute(&p->model, k->piece, k->piece + 1, (__u64)-1);
}

/* Store the site h on its row.  Returns false when it waits with its faults. */
static bool attribute_site(struct fl_ingest *g, const struct fl_hmap *by_piece, const struct fl_held_site *h)
{
	const struct fl_site_key *k = &h->k;
	struct proc *p = fl_procs_find(g, k->tgid);
	__s64 vma = p ? site_row(g, by_piece, p, k) : 0;
	if (vma < 0)
		return false;
	__u64 t = vma ? fl_procs_row_time(p, vma) : FL_MODEL_NOW;
	__s64 frame = vma ? fl_stacks_frame(g->stacks, &p->model, t, k->ip) : 0;
	enum fl_caller_end end;
	__s64 callers = frame ? fl_stacks_callers(g->stacks, &p->model, t, k->ip, k->kernel, k->callers, &end) : 0;
	if (frame)
		fl_stacks_add_site(g->stacks, vma, p->id, fl_fault_class_name(k->cls), frame, h->count, k->faultline,
				   callers, (int)end);
	else if (getenv("FAULTLINE_DEBUG"))
		fprintf(stderr, "faultline: %llu fault(s) of pid %u at ip %llx in piece %llx: no site (VMA row %lld)\n",
			(unsigned long long)h->count, k->tgid, (unsigned long long)k->ip, (unsigned long long)k->piece,
			(long long)vma);
	return true;
}

void fl_faults_attribute(struct fl_ingest *g, __u64 read_ns, bool last)
{
	struct fl_faults *f = &g->faults;
	for (size_t i = 0; i < f->nheld; i++)
		attribute_fault(g, &f->held[i], last);
	store_faults(g, f->held, f->nheld);
	struct fl_hmap by_piece = { 0 };
	index_pieces(&by_piece, f->held, f->nheld);
	size_t nsites = 0;
	for (size_t i = 0; i < f->nsites; i++)
		if (!attribute_site(g, &by_piece, &f->sites[i]))
			f->sites[nsites++] = f->sites[i];
	fl_hmap_free(&by_piece);
	size_t nheld = 0;
	for (size_t i = 0; i < f->nheld; i++)
		if (f->held[i].waits)
			f->held[nheld++] = f->held[i];
	f->nheld = nheld;
	f->nsites = nsites;
	/*
	 * The next counts are for faults after this read: rows that ended
	 * before it cannot get them (a millisecond of margin for the clocks
	 * of the record and of this read).  Counts that wait may still need
	 * any row: nothing is forgotten while they do.
	 */
	for (size_t i = 0; i < g->nall && !nheld; i++)
		fl_model_prune_dead(&g->all[i]->model, f->last_attribution);
	f->last_attribution = read_ns > 1000000 ? read_ns - 1000000 : 0;
}
