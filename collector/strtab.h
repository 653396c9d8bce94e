/* SPDX-License-Identifier: MIT */
/*
 * strtab.h - interned strings (paths of mapped files): each distinct string
 * is stored once for the whole recording and has a small index, so a
 * module can be named by (index, offset) in one 64-bit key.
 */
#ifndef FL_STRTAB_H
#define FL_STRTAB_H

#include <stddef.h>

/* The interned copy of z (NULL for NULL), valid until fl_strtab_free(). */
const char *fl_strtab_intern(const char *z);
/* Index (>= 1) of a string fl_strtab_intern returned (any other pointer is not allowed); 0 for NULL. */
unsigned fl_strtab_index(const char *interned);
/* The interned string of an index. */
const char *fl_strtab_get(unsigned index);
/* How many strings are interned (indexes are 1..count). */
unsigned fl_strtab_count(void);
void fl_strtab_free(void);

#endif /* FL_STRTAB_H */
