/* SPDX-License-Identifier: MIT */
/*
 * why.h - the parts of `faultline why` that `report` prints too, so both
 * say the same thing the same way: processes ranked by peak RSS, and the
 * regions of one smaps sample ranked by resident bytes with who made them.
 */
#ifndef FL_WHY_H
#define FL_WHY_H

#include <stdint.h>

#include "db.h"
#include "output.h"

#define FL_WHY_FRAMES 3  /* the most creator frames a group is told apart by */

/*
 * Processes ranked by peak RSS (the rss table), at most top of them in
 * text (with a "... N more" line); JSON gets all, as the array "processes"
 * (key given).  Returns the number of processes with an RSS record, or -1.
 */
int fl_why_processes(struct fl_db *d, struct fl_json *j, const char *key, int top, int indent);

/* How much of each region to show. */
struct fl_why_view {
	int top;      /* regions shown; the rest are summed in one line */
	int groups;   /* creator groups shown per region (text); the rest summed */
	int frames;   /* frames per creator, 1..FL_WHY_FRAMES */
	int indent;   /* text: spaces before each line */
};

/*
 * The regions of smaps sample sample_id (of process proc_id) ranked by
 * resident bytes, each broken down by the stack that created its pieces,
 * with the part no recorded piece holds shown as such; percentages are of
 * total.  A region holding live sampled heap blocks at the sample is also
 * broken down by allocating site (JSON: its key "heap"; docs/heap.md).
 * JSON: keys "regions" and "other_regions".  Returns 0 or -1.
 */
/*
 * When the live heap blocks of process proc_id (pid) held the most, if not
 * at sample_id: a line saying when, how much against sample_id's, and the
 * `faultline why` that shows that moment, printed only when it is well
 * above (a tenth more and 1 MiB), indented by indent.  JSON: "heap_peak",
 * whenever the process has heap samples.  The RSS peak can fall after the
 * heap's: freed chunks stay resident.
 */
void fl_why_heap_peak(struct fl_db *d, struct fl_json *j, int64_t proc_id, int64_t pid, int64_t sample_id,
		      int indent);

int fl_why_regions(struct fl_db *d, struct fl_json *j, int64_t sample_id, int64_t proc_id, int64_t total,
		   const struct fl_why_view *view);

#endif /* FL_WHY_H */
