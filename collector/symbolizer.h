/* SPDX-License-Identifier: MIT */
/*
 * symbolizer.h - frames named (function, source line, build ID) with
 * elfutils libdwfl, on a thread of their own while the target runs.
 *
 * The thread first opens the modules nearly every stack has frames in (the
 * C library, the dynamic loader, the shim), while the eBPF programs load:
 * their debug information is the slowest to read.  Then it names each frame
 * it is given as it comes, keeping every module it opened for the next
 * ones, at the lowest priority (it takes a CPU the target leaves).  The
 * recorder takes the names as they are ready (its store is not shared) and
 * names what is left at the end itself, beside the thread: python3's 580
 * frames took 85 ms after the target had ended, named on the recorder's
 * thread.  Where the thread cannot start, frames are named on the caller's
 * thread when their names are taken.
 */
#ifndef FL_SYMBOLIZER_H
#define FL_SYMBOLIZER_H

#include <linux/types.h>
#include <stdbool.h>

#include "faultline.h"

struct fl_symbolizer;

/* A frame's name, as fl_store_frame_symbol takes it. */
struct fl_symbol {
	__s64 frame_id;
	const char *build_id;   /* hex; NULL: none */
	const char *function;   /* demangled; NULL: unknown */
	__u64 offset;           /* into function */
	const char *file;       /* NULL: unknown */
	int line;
};

struct fl_symbolizer *fl_symbolizer_new(void);

/* Stops the thread (the frames not named yet are dropped) and closes every module. */
void fl_symbolizer_free(struct fl_symbolizer *sy);

/*
 * Start the thread: it opens libc, ld.so, the shim and the target's
 * executable (their paths, or NULL) first.  Once, after the target was forked.
 */
void fl_symbolizer_start(struct fl_symbolizer *sy, const char *shim, const char *exe);

/*
 * Name frame_id: file offset rel of the module at path (interned: it must
 * live as long as sy), whose strtab index is module; is_return: a return
 * address (the call before it is named).  0, or -ENOMEM.
 */
int fl_symbolizer_add(struct fl_symbolizer *sy, __s64 frame_id, unsigned module, const char *path, __u64 rel,
		      int is_return);

/*
 * Call fn for every frame named since the last call.  last: after every
 * frame added is named (the thread then ends).  Without the thread, the
 * frames are named here, until stop(ctx) says to stop (stop NULL: never).
 * A module that cannot be read names none of its frames.
 */
void fl_symbolizer_take(struct fl_symbolizer *sy, bool last, bool (*stop)(void *ctx), void *stop_ctx,
			void (*fn)(void *ctx, const struct fl_symbol *s), void *ctx);

/*
 * Does the code at file offset rel of the module at path (strtab index
 * module; is_return: the call before a return address) keep rbp as its
 * frame pointer, CFA = rbp + 16, so that its caller can be found from rbp?
 * FL_CALLERS_DEPTH if it does, else why not.  On the caller's thread.
 */
enum fl_caller_end fl_symbolizer_frame_pointer(struct fl_symbolizer *sy, unsigned module, const char *path,
					       __u64 rel, int is_return);

#endif /* FL_SYMBOLIZER_H */
