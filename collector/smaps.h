/* SPDX-License-Identifier: MIT */
/*
 * smaps.h - resident memory per region: /proc/PID/smaps read at chosen
 * moments, and /proc/PID/pagemap to split a region the kernel merged among
 * the recorded VMA rows inside it (schema: smaps_sample, region_rss,
 * piece_rss; docs/schema.md says when samples are taken and what they cost).
 */
#ifndef FL_SMAPS_H
#define FL_SMAPS_H

#include <linux/types.h>
#include <stdbool.h>

struct fl_ingest;
struct proc;

struct fl_smaps_held;

/* When a process is sampled next (struct proc keeps one). */
struct fl_smaps_sched {
	__u64 next_ns;          /* no sample before this: keeps the reading cost bounded */
	__u64 last_ns;          /* the latest sample, 0 = none */
	__u64 last_rss;         /* the RSS the kernel counted at the latest sample */
	__u64 cur;              /* the latest RSS the kernel counted */
	__u64 high;             /* the highest */
	bool want_high;         /* a new high waits for its sample */
	bool settle;            /* read the high once more when the process is quiet (its model caught up) */
	bool due;               /* the RSS moved: look once the rings are drained (fl_smaps_drained) */
	struct fl_smaps_held *held; /* regions of the latest sample whose pages wait for the model */
	size_t nheld, capheld;
	__u64 held_exec_ns;     /* the image they were read in (an exec since drops them) */
	__s64 last_id;          /* the latest sample's row */
	__u32 hinted_ms;        /* the exit_min_age_ms last given to its shim (0: exit samples not offered) */
	__u64 hinted_image;     /* ... to the image exec made then (image_ns; a resync hello after dlopen is the same image) */
	__u64 exit_ns;          /* its shim said it is exiting then and waits for a read (0: not) */
	__u64 exit_read_image;  /* the image whose exit was read: one read per image */
};

/*
 * The kernel counted rss bytes resident for p (rss_stat, or /proc in shim
 * mode).  Only noted: a sample is read by fl_smaps_drained, after the
 * records already in the rings are in the model.
 */
void fl_smaps_on_rss(struct fl_ingest *g, struct proc *p, __u64 rss, __u64 now_ns);

/*
 * The rings were just drained: read the samples the RSS changes noted made
 * due.  Read in the middle of a ring's records (as the RSS record came),
 * a sample saw the VMAs of calls whose records were still waiting behind
 * it as no recorded row's ("no recorded VMA": 3.9 MiB of perl's heap in one
 * run); now only calls made during the read itself can be missed.
 */
void fl_smaps_drained(struct fl_ingest *g, __u64 now_ns);

/*
 * p's shim said (at time t) that p is about to exit and waits (FL_R_EXITING):
 * read at the next drain, whatever the schedule, if its shim was offered it.
 */
void fl_smaps_on_exiting(struct fl_ingest *g, struct proc *p, __u64 t);

/* The recording ends: the regions still held are split among the rows now. */
void fl_smaps_finish(struct fl_ingest *g);

/* The collector's tick: highs that waited for the cost bound, idle processes. */
void fl_smaps_tick(struct fl_ingest *g, __u64 now_ns);

#endif /* FL_SMAPS_H */
