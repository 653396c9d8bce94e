/* SPDX-License-Identifier: MIT */
/* calls.h - settled calls of a process become event rows, with the stack the shim saw. */
#ifndef FL_CALLS_H
#define FL_CALLS_H

#include "matcher.h"

/*
 * An fl_settle_fn (ctx: the struct proc): a kernel call is written in the
 * row it reserved, with its twin's stack if it has one ("both", else
 * "bpf"); a shim call alone is a new row ("shim").
 */
void fl_calls_settle(void *proc, const struct fl_pending *kernel, const struct fl_pending *shim);

#endif /* FL_CALLS_H */
