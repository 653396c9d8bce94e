/* SPDX-License-Identifier: MIT */
/*
 * symtab.c - a module's sized symbols by address (see symtab.h).
 *
 * What libdwfl does (elfutils' dwfl_module_addrsym.c, 0.188): it walks
 * the global symbols in table order, then, only if no sized global
 * contains the address, the local ones.  A named symbol that is not
 * undefined, a section, a file or TLS, starts at or below the address and
 * (if sized) contains it replaces the candidate so far when it starts
 * closer to the address or binds more strongly (global > weak > local).
 * Sizeless symbols (assembly labels) count only when no sized one
 * contains the address, with rules about sections: when one could, we
 * leave the address to libdwfl; when none can (none at or above the end of
 * every symbol below the address), the answer is none, as libdwfl's would
 * be.  Symbols that do not contain the address never change the
 * sized candidate, so folding the same rule over just the containing
 * symbols, in table order, gives the same answer.
 */
#include "symtab.h"

#include <stdbool.h>
#include <stdlib.h>

struct sym {
	GElf_Addr start, end;   /* [start, end), bias applied as libdwfl's addresses are */
	GElf_Addr reach;        /* the largest end of this and every sym sorted before it */
	const char *name;       /* libdwfl's, alive as long as the module */
	int index;              /* in the symbol table: the order libdwfl folds in */
	int bind;               /* libdwfl's binding_value */
};

struct fl_symtab {
	struct sym *globals, *locals;
	size_t nglobals, nlocals;
	GElf_Addr *sizeless;    /* start of every sizeless symbol, sorted */
	size_t nsizeless;
};

static int binding_value(const GElf_Sym *s)
{
	switch (GELF_ST_BIND(s->st_info)) {
	case STB_GLOBAL: return 3;
	case STB_WEAK: return 2;
	case STB_LOCAL: return 1;
	default: return 0;
	}
}

static int by_start(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

static int by_addr(const void *a, const void *b)
{
	GElf_Addr x = *(const GElf_Addr *)a, y = *(const GElf_Addr *)b;

	return (x > y) - (x < y);
}

static void index_reach(struct sym *s, size_t n)
{
	qsort(s, n, sizeof(*s), by_start);
	for (size_t i = 0; i < n; i++)
		s[i].reach = i && s[i - 1].reach > s[i].end ? s[i - 1].reach : s[i].end;
}

struct fl_symtab *fl_symtab_new(Dwfl_Module *mod)
{
	int n = dwfl_module_getsymtab(mod), first_global = dwfl_module_getsymtab_first_global(mod);
	struct fl_symtab *t;

	if (n <= 1 || first_global < 0 || !(t = calloc(1, sizeof(*t))))
		return NULL;
	t->globals = malloc((size_t)n * sizeof(*t->globals));
	t->locals = malloc((size_t)n * sizeof(*t->locals));
	t->sizeless = malloc((size_t)n * sizeof(*t->sizeless));
	if (!t->globals || !t->locals || !t->sizeless) {
		fl_symtab_free(t);
		return NULL;
	}
	for (int i = 1; i < n; i++) {
		GElf_Sym s;
		GElf_Addr value;
		GElf_Word shndx;
		const char *name = dwfl_module_getsym_info(mod, i, &s, &value, &shndx, NULL, NULL);
		bool global = first_global == 0 || i >= first_global;
		int type = GELF_ST_TYPE(s.st_info);

		if (!name || !name[0] || s.st_shndx == SHN_UNDEF || type == STT_SECTION || type == STT_FILE ||
		    type == STT_TLS)
			continue;
		if (!s.st_size) {
			t->sizeless[t->nsizeless++] = value;
			continue;
		}
		struct sym one = { value, value + s.st_size, 0, name, i, binding_value(&s) };
		if (global)
			t->globals[t->nglobals++] = one;
		else
			t->locals[t->nlocals++] = one;
	}
	index_reach(t->globals, t->nglobals);
	index_reach(t->locals, t->nlocals);
	qsort(t->sizeless, t->nsizeless, sizeof(*t->sizeless), by_addr);
	return t;
}

void fl_symtab_free(struct fl_symtab *t)
{
	if (!t)
		return;
	free(t->globals);
	free(t->locals);
	free(t->sizeless);
	free(t);
}

#define MAX_CONTAINING 64 /* more symbols around one address: libdwfl's answer */

static int by_index(const void *a, const void *b)
{
	const struct sym *x = *(const struct sym *const *)a, *y = *(const struct sym *const *)b;

	return (x->index > y->index) - (x->index < y->index);
}

/* How many syms of s[0, n) start at or below addr. */
static size_t upto(const struct sym *s, size_t n, GElf_Addr addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * libdwfl's fold over the syms of s[0, n) that contain addr, in table
 * order; NULL if none does.  *busy: too many contain it to fold here.
 */
static const struct sym *fold(const struct sym *s, size_t n, GElf_Addr addr, bool *busy)
{
	const struct sym *in[MAX_CONTAINING], *best = NULL;
	size_t k = 0;

	/* back while some sym at or before i still reaches past addr */
	for (size_t i = upto(s, n, addr); i-- > 0 && s[i].reach > addr;) {
		if (s[i].end <= addr)
			continue;
		if (k == MAX_CONTAINING) {
			*busy = true;
			return NULL;
		}
		in[k++] = &s[i];
	}
	qsort(in, k, sizeof(*in), by_index);
	for (size_t i = 0; i < k; i++)
		if (!best || best->start < in[i]->start || best->bind < in[i]->bind)
			best = in[i];
	return best;
}

/*
 * Whether libdwfl could name addr by a sizeless symbol when no sized one
 * contains it: only one at or below addr and at or above the end of every
 * symbol below addr (its min_label) can; the end of the globals alone is
 * a lower bound of that.
 */
static bool sizeless_may_name(const struct fl_symtab *t, GElf_Addr addr)
{
	size_t lo = 0, hi = t->nsizeless, g = upto(t->globals, t->nglobals, addr);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->sizeless[mid] <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && (!g || t->sizeless[lo - 1] >= t->globals[g - 1].reach);
}

int fl_symtab_find(const struct fl_symtab *t, GElf_Addr addr, const char **name, GElf_Off *off)
{
	const struct sym *s;
	bool busy = false;

	if (!t)
		return -1;
	s = fold(t->globals, t->nglobals, addr, &busy);
	/* a sizeless global exactly at addr keeps libdwfl from the locals: its rules */
	if (!s && !busy && !bsearch(&addr, t->sizeless, t->nsizeless, sizeof(*t->sizeless), by_addr))
		s = fold(t->locals, t->nlocals, addr, &busy);
	if (s) {
		*name = s->name;
		*off = addr - s->start;
		return 1;
	}
	return busy || sizeless_may_name(t, addr) ? -1 : 0;
}
