/* SPDX-License-Identifier: MIT */
/*
 * cfi.c - call stacks from a cache of unwind rules, one per return address.
 *
 * libgcc's unwinder (unwind.c) finds each frame's FDE, decodes its CIE,
 * runs its call-frame program up to the return address and copies a
 * context of every register: 2-4 us for a stack of a dozen frames, most of
 * the shim's own CPU time in a program making many calls (churn: 0.5 s of
 * 240k stacks).  On x86-64 nearly every frame of compiled code comes out of
 * those programs as one of two shapes: the CFA is rsp + N or rbp + N, the
 * return address is at CFA - 8, and rbp is either untouched or saved at
 * CFA - 8k.  That much is kept per return address, packed in 32 bits; a
 * frame is then two or three loads.  The rule is computed once, from the
 * same FDE libgcc would use, by the same reading of its program (libgcc's
 * unwind-dw2.c execute_cfa_program, down to DW_CFA_restore meaning
 * "unsaved"), and only for code of a module ld.so loaded (_dl_find_object):
 * a JIT's code, and frames registered with __register_frame, can change
 * under the same address without a dlclose.
 *
 * Anything else gives up the whole stack to libgcc (shim_cfi_unwind returns
 * -1): a frame without FDE (JIT code, the signal trampoline), a signal
 * frame, a CFA by expression or in another register, a return address or
 * rbp saved any other way.  So the stack is libgcc's, frame for frame; a
 * developer switch, FAULTLINE_UNWIND_CHECK=1, takes both and counts the
 * differences (tests/e2e: `unwind_check`, on real programs).
 *
 * The cache forgets everything when ld.so's count of objects added or
 * removed moved since the last stack (dl_iterate_phdr's dlpi_adds and
 * dlpi_subs, which libgcc itself watched before _dl_find_object): other code
 * where a module was comes only that way, hooked dlopen or not (glibc's own
 * NSS and iconv modules).  A rule being computed meanwhile is dropped again
 * if the cache's generation moved (cache_add).  A thread's own frames are
 * older than its walk, so a module loaded during it is none of them.
 */
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdbool.h>

#include "preload.h"

/* libgcc's struct dwarf_eh_bases (unwind-dw2-fde.h): _Unwind_Find_FDE fills it. */
struct eh_bases {
	void *tbase, *dbase, *func;
};

static const __u8 *(*find_fde)(void *pc, struct eh_bases *bases);
static int (*find_object)(void *pc, void *result);

/* ---- the rules -------------------------------------------------------------------------- */

/* A rule, packed: bit 0 set (a rule), bit 1 CFA from rbp (else rsp), bit 2 the return
 * address is undefined (the outermost frame), bits 3-7 k: rbp saved at CFA - 8k (0:
 * unsaved), bits 8-31 the CFA's offset from its register. */
#define RULE_VALID 1u
#define RULE_CFA_BP 2u
#define RULE_END 4u
#define RULE_BP_SHIFT 3
#define RULE_OFF_SHIFT 8
#define RULE_OFF_MAX ((1u << (32 - RULE_OFF_SHIFT)) - 1)

/* The DWARF registers that matter here (x86-64 psABI numbering). */
enum { DW_RBP = 6, DW_RSP = 7, DW_RA = 16 };
/* How a register is found, as libgcc says it (REG_UNSAVED, REG_SAVED_OFFSET, ...). */
enum { HOW_UNSAVED, HOW_OFFSET, HOW_UNDEFINED, HOW_OTHER };

struct regs_rule {
	__u8 bp_how, ra_how;
	__s64 bp_off, ra_off;
	__u64 cfa_reg;
	__s64 cfa_off;
	bool cfa_expr;
};

struct cursor {
	const __u8 *p, *end;
	bool bad;
};

static __u8 byte(struct cursor *c)
{
	if (c->p >= c->end) {
		c->bad = true;
		return 0;
	}
	return *c->p++;
}

static __u64 uleb(struct cursor *c)
{
	__u64 v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		__u8 b = byte(c);
		v |= (__u64)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static __s64 sleb(struct cursor *c)
{
	__u64 v = 0;
	unsigned shift = 0;
	__u8 b;
	do {
		b = byte(c);
		v |= (__u64)(b & 0x7f) << shift;
		shift += 7;
	} while ((b & 0x80) && shift < 64 && !c->bad);
	if ((b & 0x80))
		c->bad = true;
	if (shift < 64 && (b & 0x40))
		v |= ~0ull << shift;
	return (__s64)v;
}

static __u64 fixed(struct cursor *c, unsigned n)
{
	__u64 v = 0;
	if ((size_t)(c->end - c->p) < n) {
		c->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (__u64)c->p[i] << (8 * i);
	c->p += n;
	return v;
}

/* Steps over a pointer of encoding enc (DW_EH_PE_*); its value is not needed here. */
static void skip_encoded(struct cursor *c, __u8 enc)
{
	if (enc == 0xff)        /* DW_EH_PE_omit */
		return;
	switch (enc & 0x0f) {
	case 0x00: case 0x04: case 0x0c: fixed(c, 8); return; /* absptr, udata8, sdata8 */
	case 0x01: uleb(c); return;
	case 0x09: sleb(c); return;
	case 0x02: case 0x0a: fixed(c, 2); return;
	case 0x03: case 0x0b: fixed(c, 4); return;
	default: c->bad = true; /* DW_EH_PE_aligned and the like: not here */
	}
}

static void set_how(struct regs_rule *r, __u64 reg, __u8 how, __s64 off)
{
	if (reg == DW_RBP) {
		r->bp_how = how;
		r->bp_off = off;
	} else if (reg == DW_RA) {
		r->ra_how = how;
		r->ra_off = off;
	} else if (reg == DW_RSP && how != HOW_UNSAVED) {
		r->cfa_expr = true; /* a rule for rsp itself: not a shape this file knows */
	}
}

#define STATE_DEPTH 8

struct program {
	__u64 code_align;
	__s64 data_align;
	__u64 loc, target; /* the program runs while loc < target (the return address) */
	struct regs_rule stack[STATE_DEPTH];
	unsigned depth;
};

/* One call-frame program, as libgcc's execute_cfa_program reads it.  False: not a shape for the cache. */
static bool run_program(struct cursor *c, struct program *pg, struct regs_rule *r)
{
	while (c->p < c->end && pg->loc < pg->target && !c->bad) {
		__u8 op = byte(c);
		__u64 reg, a;

		switch (op >> 6) {
		case 1: pg->loc += (op & 0x3f) * pg->code_align; continue;           /* advance_loc */
		case 2: set_how(r, op & 0x3f, HOW_OFFSET, (__s64)uleb(c) * pg->data_align); continue; /* offset */
		case 3: set_how(r, op & 0x3f, HOW_UNSAVED, 0); continue;              /* restore: unsaved */
		}
		switch (op) {
		case 0x00: break;                                                      /* nop */
		case 0x02: pg->loc += fixed(c, 1) * pg->code_align; break;            /* advance_loc1 */
		case 0x03: pg->loc += fixed(c, 2) * pg->code_align; break;            /* advance_loc2 */
		case 0x04: pg->loc += fixed(c, 4) * pg->code_align; break;            /* advance_loc4 */
		case 0x05: reg = uleb(c); set_how(r, reg, HOW_OFFSET, (__s64)uleb(c) * pg->data_align); break;
		case 0x06: case 0x08: set_how(r, uleb(c), HOW_UNSAVED, 0); break;     /* restore_ext, same_value */
		case 0x07: set_how(r, uleb(c), HOW_UNDEFINED, 0); break;
		case 0x09: reg = uleb(c); uleb(c); set_how(r, reg, HOW_OTHER, 0); break; /* register */
		case 0x0a:                                                             /* remember_state */
			if (pg->depth == STATE_DEPTH)
				return false;
			pg->stack[pg->depth++] = *r;
			break;
		case 0x0b:                                                             /* restore_state (the CFA too) */
			if (!pg->depth)
				return false;
			*r = pg->stack[--pg->depth];
			break;
		case 0x0c: r->cfa_reg = uleb(c); r->cfa_off = (__s64)uleb(c); r->cfa_expr = false; break;
		case 0x0d: r->cfa_reg = uleb(c); r->cfa_expr = false; break;
		case 0x0e: r->cfa_off = (__s64)uleb(c); break;
		case 0x0f:                                                             /* def_cfa_expression */
			a = uleb(c);
			if (a > (__u64)(c->end - c->p))
				return false;
			c->p += a;
			r->cfa_expr = true;
			break;
		case 0x10: case 0x16:                                                  /* expression, val_expression */
			reg = uleb(c);
			a = uleb(c);
			if (a > (__u64)(c->end - c->p))
				return false;
			c->p += a;
			set_how(r, reg, HOW_OTHER, 0);
			break;
		case 0x11: reg = uleb(c); set_how(r, reg, HOW_OFFSET, sleb(c) * pg->data_align); break;
		case 0x12: r->cfa_reg = uleb(c); r->cfa_off = sleb(c) * pg->data_align; r->cfa_expr = false; break;
		case 0x13: r->cfa_off = sleb(c) * pg->data_align; break;
		case 0x14: reg = uleb(c); uleb(c); set_how(r, reg, HOW_OTHER, 0); break; /* val_offset */
		case 0x15: reg = uleb(c); sleb(c); set_how(r, reg, HOW_OTHER, 0); break; /* val_offset_sf */
		case 0x2e: uleb(c); break;                                             /* GNU_args_size */
		case 0x2f: reg = uleb(c); set_how(r, reg, HOW_OFFSET, -(__s64)uleb(c) * pg->data_align); break;
		default: return false; /* set_loc, and what libgcc knows of other machines */
		}
	}
	return !c->bad;
}

/* The packed rule of a frame whose FDE is fde, returning to ra; 0: not a shape for the cache. */
static __u32 rule_of_fde(const __u8 *fde, __u64 func, __u64 ra)
{
	struct cursor f = { fde, fde + 8, false }, c;
	__u64 len = fixed(&f, 4), cie_off;
	const __u8 *cie, *aug;
	__u8 fde_enc = 0, version;
	bool z = false;
	struct program pg = { .loc = func, .target = ra };
	struct regs_rule r = { 0 };

	if (f.bad || !len || len >= 0xfffffff0u)
		return 0;
	f.end = fde + 4 + len;
	cie_off = fixed(&f, 4);
	cie = fde + 4 - cie_off;
	c = (struct cursor){ cie, cie + 8, false };
	len = fixed(&c, 4);
	if (c.bad || !len || len >= 0xfffffff0u || fixed(&c, 4) != 0)
		return 0;
	c.end = cie + 4 + len;
	version = byte(&c);
	if (version != 1 && version != 3)
		return 0;
	aug = c.p;
	while (byte(&c) && !c.bad)
		;
	pg.code_align = uleb(&c);
	pg.data_align = sleb(&c);
	if ((version == 1 ? byte(&c) : uleb(&c)) != DW_RA || c.bad)
		return 0;
	if (*aug == 'z') {
		__u64 n = uleb(&c);
		const __u8 *data_end = c.p + n;

		z = true;
		if (n > (__u64)(c.end - c.p))
			return 0;
		for (const __u8 *a = aug + 1; *a; a++) {
			if (*a == 'R')
				fde_enc = byte(&c);
			else if (*a == 'P')
				skip_encoded(&c, byte(&c));
			else if (*a == 'L')
				byte(&c);
			else
				return 0; /* 'S' (a signal frame), and others: libgcc's */
		}
		if (c.bad)
			return 0;
		c.p = data_end;
	} else if (*aug) {
		return 0;
	}
	if (!run_program(&c, &pg, &r))
		return 0;
	skip_encoded(&f, fde_enc);        /* pc_begin: func, as _Unwind_Find_FDE decoded it */
	skip_encoded(&f, fde_enc & 0x0f); /* pc_range */
	if (z)
		f.p += uleb(&f);
	if (f.bad || f.p > f.end || !run_program(&f, &pg, &r))
		return 0;
	if (r.ra_how == HOW_UNDEFINED)
		return RULE_VALID | RULE_END;
	if (r.cfa_expr || (r.cfa_reg != DW_RSP && r.cfa_reg != DW_RBP) || r.cfa_off < 0 ||
	    (__u64)r.cfa_off > RULE_OFF_MAX || r.ra_how != HOW_OFFSET || r.ra_off != -8)
		return 0;
	__u32 rule = RULE_VALID | (r.cfa_reg == DW_RBP ? RULE_CFA_BP : 0) | (__u32)r.cfa_off << RULE_OFF_SHIFT;
	if (r.bp_how == HOW_UNSAVED)
		return rule;
	if (r.bp_how != HOW_OFFSET || r.bp_off >= 0 || (-r.bp_off) % 8 || -r.bp_off / 8 > 31)
		return 0;
	return rule | (__u32)(-r.bp_off / 8) << RULE_BP_SHIFT;
}

/* ---- the cache ----------------------------------------------------------------------------- */

/*
 * Open addressing, shared by the threads without a lock: keys[i] is a return
 * address, published (release) after its rules[i] is written; a slot is taken
 * by a compare-and-swap from 0 to the address with CLAIMED set.  96 KiB of
 * .bss, touched as it fills.  When it is full a rule is computed every time.
 */
#define CACHE_SLOTS 8192
#define CACHE_PROBES 8
#define CLAIMED (1ull << 63)

static __u64 keys[CACHE_SLOTS];
static __u32 rules[CACHE_SLOTS];
static unsigned generation;

static unsigned slot_of(__u64 ra)
{
	return (unsigned)((ra * 0x9e3779b97f4a7c15ull) >> 51) & (CACHE_SLOTS - 1);
}

static __u32 cache_find(__u64 ra)
{
	unsigned s = slot_of(ra);

	for (unsigned i = 0; i < CACHE_PROBES; i++, s = (s + 1) & (CACHE_SLOTS - 1)) {
		__u64 k = __atomic_load_n(&keys[s], __ATOMIC_ACQUIRE);
		if (k == ra) {
			__u32 rule = __atomic_load_n(&rules[s], __ATOMIC_RELAXED);
			/* the slot may have been forgotten and taken again meanwhile */
			return __atomic_load_n(&keys[s], __ATOMIC_ACQUIRE) == ra ? rule : 0;
		}
		if (!k)
			return 0;
	}
	return 0;
}

/* Keeps ra's rule, computed from the modules as they were at generation gen. */
static void cache_add(__u64 ra, __u32 rule, unsigned gen)
{
	unsigned s = slot_of(ra);

	for (unsigned i = 0; i < CACHE_PROBES; i++, s = (s + 1) & (CACHE_SLOTS - 1)) {
		__u64 zero = 0;
		if (!__atomic_compare_exchange_n(&keys[s], &zero, ra | CLAIMED, false, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&rules[s], rule, __ATOMIC_RELAXED);
		__atomic_store_n(&keys[s], ra, __ATOMIC_SEQ_CST);
		/* a dlopen or dlclose began since the rule was read: it may be of code now gone */
		if (__atomic_load_n(&generation, __ATOMIC_SEQ_CST) != gen) {
			__u64 mine = ra;
			__atomic_compare_exchange_n(&keys[s], &mine, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		}
		return;
	}
}

static void cache_forget(void)
{
	__atomic_add_fetch(&generation, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (__atomic_load_n(&keys[i], __ATOMIC_RELAXED))
			__atomic_store_n(&keys[i], 0, __ATOMIC_RELAXED);
}

/* ld.so's counts of objects added and removed, as the cache last saw them. */
static unsigned long long seen_adds, seen_subs;

static int loader_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *counts = arg;

	if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
		return -1;
	counts[0] = info->dlpi_adds;
	counts[1] = info->dlpi_subs;
	return 1; /* the first object says it: stop */
}

/* Forget the rules if ld.so loaded or unloaded anything since the last stack; false: no counts. */
static bool cache_current(void)
{
	unsigned long long counts[2];

	if (dl_iterate_phdr(loader_counts, counts) != 1)
		return false;
	if (counts[0] != __atomic_load_n(&seen_adds, __ATOMIC_ACQUIRE) ||
	    counts[1] != __atomic_load_n(&seen_subs, __ATOMIC_ACQUIRE)) {
		cache_forget();
		__atomic_store_n(&seen_adds, counts[0], __ATOMIC_RELEASE);
		__atomic_store_n(&seen_subs, counts[1], __ATOMIC_RELEASE);
	}
	return true;
}

/* The rule for the frame that returns to ra; 0: none (libgcc's job). */
static __u32 rule_of(__u64 ra)
{
	__u32 rule = cache_find(ra);
	struct dl_find_object where;
	struct eh_bases bases;
	const __u8 *fde;

	if (rule)
		return rule;
	unsigned gen = __atomic_load_n(&generation, __ATOMIC_SEQ_CST);
	if (find_object((void *)(ra - 1), &where) != 0 || !(fde = find_fde((void *)(ra - 1), &bases)))
		return 0;
	rule = rule_of_fde(fde, (__u64)bases.func, ra);
	if (rule)
		cache_add(ra, rule, gen);
	return rule;
}

/* ---- the walk ------------------------------------------------------------------------------ */

void shim_cfi_init(void *libgcc)
{
	*(void **)&find_fde = dlsym(libgcc, "_Unwind_Find_FDE");
	*(void **)&find_object = dlsym(RTLD_DEFAULT, "_dl_find_object"); /* glibc >= 2.35 */
}

/*
 * The return addresses above the caller's frame into frames[0..room), as
 * unwind.c's one_frame() takes them from libgcc (the same stop on a frame
 * that repeats itself, the same NULL after the outermost frame, whose
 * return address is undefined or reads 0); -1 if a frame is not for the
 * cache.  Built with frame
 * pointers (meson.build): this frame's rbp holds the caller's rbp, and its
 * return address and the caller's rsp are just above.
 */
__attribute__((noinline)) int shim_cfi_unwind(void **frames, int room)
{
	__u64 *fp = __builtin_frame_address(0);
	__u64 pc = fp[1], sp = (__u64)(fp + 2), bp = fp[0], last_sp = 0;
	int n = -1;

	if (!find_fde || !find_object || !cache_current())
		return -1;
	for (;;) {
		__u32 rule = 0;

		if (pc && !(rule = rule_of(pc)))
			return -1;
		if (n >= 0) {
			frames[n] = (void *)pc;
			if (n > 0 && frames[n - 1] == frames[n] && sp == last_sp)
				return n;
			last_sp = sp;
		}
		if (++n == room || !pc)
			return n;
		if (rule & RULE_END) {
			pc = 0; /* libgcc's uw_update_context: the next frame is a NULL, the last */
			continue;
		}
		__u64 cfa = ((rule & RULE_CFA_BP) ? bp : sp) + (rule >> RULE_OFF_SHIFT);
		unsigned k = (rule >> RULE_BP_SHIFT) & 31;
		if (cfa <= sp)
			return -1; /* not a stack going up: libgcc's to judge */
		if (k)
			bp = ((const __u64 *)cfa)[-(int)k];
		pc = ((const __u64 *)cfa)[-1];
		sp = cfa;
	}
}
