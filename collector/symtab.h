/* SPDX-License-Identifier: MIT */
/*
 * symtab.h - a module's symbols sorted by address, for symbolizing many
 * frames of one module.  libdwfl's dwfl_module_addrinfo reads the whole
 * symbol table for every address (node's 100,000 symbols: 3.6 s for 1,300
 * frames); this answers the same in O(log n) and says when it cannot
 * (sizeless assembly labels), so the caller asks libdwfl.
 */
#ifndef FL_SYMTAB_H
#define FL_SYMTAB_H

#include <elfutils/libdwfl.h>

struct fl_symtab;

/* The symbols of mod, indexed; NULL when it has none or memory is short. */
struct fl_symtab *fl_symtab_new(Dwfl_Module *mod);
void fl_symtab_free(struct fl_symtab *t);
/*
 * What dwfl_module_addrinfo(mod, addr, ...) answers: 1 and the symbol's
 * *name and *off = addr - its address; 0 when it names none; -1 when only
 * libdwfl can tell (t may be NULL).
 */
int fl_symtab_find(const struct fl_symtab *t, GElf_Addr addr, const char **name, GElf_Off *off);

#endif /* FL_SYMTAB_H */
