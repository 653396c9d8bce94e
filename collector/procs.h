/* SPDX-License-Identifier: MIT */
/* procs.h - the process table of a recording: birth, exec and end of each process. */
#ifndef FL_PROCS_H
#define FL_PROCS_H

#include "process.h"

/* The latest process of pid (maybe ended), or NULL. */
struct proc *fl_procs_find(struct fl_ingest *g, __u32 pid);

/* A new process row; a previous process of that pid is over (its pid was reused). */
struct proc *fl_procs_add(struct fl_ingest *g, __u32 pid, __u32 ppid, const char *exe, __u64 t);

/* The live process of pid, created (parent ppid) if the records had not shown it yet. */
struct proc *fl_procs_live(struct fl_ingest *g, __u32 pid, __u32 ppid, __u64 t);

/* p's first exec after t (the image that followed t), 0 if none is known yet. */
__u64 fl_procs_exec_after(const struct proc *p, __u64 t);

/*
 * A time at which VMA row `row` of p was in p's address space, for the code
 * addresses of faults counted in it: FL_MODEL_NOW if it is of p's current
 * image, else the last moment of the image it was of (a fork child's faults
 * before its exec are often read after it).
 */
__u64 fl_procs_row_time(const struct proc *p, __s64 row);

/* p exec'd exe at t (source: who saw it, "shim" or "bpf"): its address space starts empty. */
void fl_procs_exec(struct fl_ingest *g, struct proc *p, __u64 t, const char *exe, const char *source);

/*
 * p's shim snapshot is whole (or p ended before it was): reconcile p's
 * model with it (the shim-mode ground truth of an image's start; in BPF
 * mode it only names files) and keep it as p's latest.
 */
void fl_procs_snapshot(struct fl_ingest *g, struct proc *p);

/* p ended: what it left waiting is settled (-1: exit code / signal unknown). */
void fl_procs_end(struct fl_ingest *g, struct proc *p, __u64 t, int exit_code, int exit_signal);

void fl_procs_free(struct fl_ingest *g);

#endif /* FL_PROCS_H */
