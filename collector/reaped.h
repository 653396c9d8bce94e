/* SPDX-License-Identifier: MIT */
/*
 * reaped.h - shim-only mode: how each process ended.  Without BPF a process
 * is faultline's to reap only when it is the launched one or an orphan
 * (faultline is a subreaper).  One its own parent reaps is known by its
 * zombie (read when its pidfd says it exited, if the parent is slower) or
 * by its parent's shim (FL_R_REAPED: the status and the kernel's rusage).
 */
#ifndef FL_REAPED_H
#define FL_REAPED_H

#include "process.h"

/* A reap the shim said (kept until the end: the reaped process's own records may still be unread). */
void fl_reaped_record(struct fl_ingest *g, const struct fl_reaped *r);

/* p's zombie was read: status and final fault totals (faults: minor, major) are the kernel's. */
void fl_reaped_zombie(struct fl_ingest *g, struct proc *p, const __u64 faults[2]);

/*
 * At the end, before the processes still running are ended: each reap said
 * gives its process the exit status it lacked and, when every child it had
 * is accounted for, its own fault totals (its rusage less that of the
 * children it reaped).  Returns how many ended processes still lack either:
 * the exit_unknown loss.
 */
__u64 fl_reaped_finish(struct fl_ingest *g);

#endif /* FL_REAPED_H */
