/* SPDX-License-Identifier: MIT */
/* frames.h - loading and printing recorded call stacks (stack, stack_frame, frame). */
#ifndef FL_FRAMES_H
#define FL_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "output.h"

struct fl_frame {
	int64_t idx, frame_id, rel_addr, func_off, line;
	bool has_func_off, has_line;
	char *module, *build_id, *function, *file;  /* NULL when unknown */
};

/*
 * Loads the frames of stack_id, innermost first, at most max (0: all).
 * Returns the count (0 for an unknown or empty stack), or -1 (printed).
 */
int fl_stack_load(struct fl_db *d, int64_t stack_id, int max, struct fl_frame **out);
void fl_stack_free(struct fl_frame *frames, int n);
/* Loads one frame by id: returns 1, 0 (no such frame) or -1 (printed); free with fl_stack_free(f, 1). */
int fl_frame_load(struct fl_db *d, int64_t frame_id, struct fl_frame **out);
/* Whether a stack row with this id exists: 1, 0, or -1 (printed). */
int fl_stack_exists(struct fl_db *d, int64_t stack_id);

/* "function (file:line)", "function (libc.so.6+0x2a1ca)" or "libc.so.6+0x2a1ca". */
const char *fl_frame_short(const struct fl_frame *f, char *buf, size_t n);
/* "function+0x1a", "function" or "??". */
const char *fl_frame_function(const struct fl_frame *f, char *buf, size_t n);
/*
 * The callers of a fault site (fault_site.callers_id and callers_end, ""
 * when not walked) as malloc'd text, "f1 < f2 < f3" (at most max frames,
 * 0: all), saying why the chain ends where it does unless that is the depth
 * kept or the first frame of the thread: "... < ? (no frame pointer in
 * libc.so.6)", "unavailable (no frame pointer in libc.so.6)".  NULL on
 * error (printed).
 */
char *fl_callers_label(struct fl_db *d, int64_t site_frame, int64_t callers_id, const char *end, int max);
/* The frame as a JSON object. */
void fl_frame_json(struct fl_json *j, const struct fl_frame *f);

#endif /* FL_FRAMES_H */
