/* SPDX-License-Identifier: MIT */
/*
 * process.h - what the collector keeps per traced process, and the state
 * of one recording's ingest (types only; procs.h has the table's functions).
 *
 * The ingest is layered (no file calls one above it):
 *   ingest.c              the whole: made, sampled, finished    (top)
 *   shimdec.c, bpfdec.c   decode records
 *   faults.c              attributes fault counts to VMA rows
 *   smaps.c               resident memory per region, sampled
 *   procs.c               the process table: birth, snapshot, exec, end
 *   shimmaps.c, matcher.c a shim maps snapshot being assembled; shim calls
 *                         meeting their syscalls
 *   calls.c               writes settled calls as event rows
 *   heapblocks.c          sampled heap blocks, live per process, to heap_sample rows
 *   model.c               the VMA model; it owns every change to itself
 *   stacktab.c, store.c   stacks and frames; the SQLite writer   (ground)
 *   symbolizer.c          names frames (libdw) on its own thread, below stacktab.c
 */
#ifndef FL_PROCESS_H
#define FL_PROCESS_H

#include <linux/types.h>
#include <stdbool.h>
#include <sys/types.h>

#include "heapblocks.h"
#include "hmap.h"
#include "matcher.h"
#include "model.h"
#include "shimmaps.h"
#include "smaps.h"
#include "stacktab.h"
#include "store.h"

/* An exec: the rows of the image it started have ids from row0 on (ids only grow). */
struct fl_image {
	__s64 row0;
	__u64 exec_ns;
};

struct proc {
	struct fl_ingest *ingest;   /* the recording it belongs to */
	__u32 pid, ppid;
	__s64 id;
	const char *exe;        /* interned */
	__u64 exec_ns;          /* its first exec, 0 if none */
	bool exec_unseen;       /* BPF mode: its maps after exec could not be read (it was gone) */
	__u64 image_ns;         /* its latest exec */
	struct fl_image *images; /* each exec, oldest first: what its VMA rows' ids and times were */
	size_t nimages, capimages;
	__u64 prexec[2];        /* minor, major faults before that exec (faultline's launcher) */
	struct fl_model model;
	bool ended, shim;
	__u64 hello_ns;         /* its latest image's shim said hello then (0: never) */
	__u64 first_hello_ns;   /* its first hello (0: never) */
	__u64 exec_try_ns;      /* shim mode: it said it was about to exec (FL_R_EXEC), no hello since */
	const char *exec_try_path; /* interned: the file it named */
	struct fl_vma *exec_vmas; /* BPF: the VMAs of an image whose exec record comes next */
	size_t nexec_vmas, capexec_vmas;
	struct fl_shimmaps snap;  /* shim: the HELLO snapshot being received, and the latest whole one */
	struct fl_matcher matcher; /* BPF mode: shim calls waiting for their syscall and vice versa */
	struct fl_smaps_sched smaps; /* when its resident memory per region is read next */
	/* Shim-only mode: how it ended, as far as faultline could learn (reaped.c). */
	struct proc *parent;    /* the recorded process it was forked from, if any */
	__u64 end_ns;
	bool status_known;      /* its exit status is stored */
	bool faults_final;      /* its stored min_flt/maj_flt are its totals at exit */
	bool by_faultline;      /* faultline reaped it (the launched process, or an orphan) */
	__u32 reaper;           /* FL_R_REAPED: the process whose wait returned it (0: none said so) */
	int reaped_status;
	bool ru_known;          /* ru is the kernel's (a system() reap overlapping another is not) */
	__u64 ru[2];            /* FL_R_REAPED: rusage minor, major (its own + children it reaped) */
	__u64 reaped_ru[2];     /* the rusage of the children it reaped itself, summed */
};

/* A reap a shim said, and the process whose ring said it. */
struct fl_reap {
	struct fl_reaped r;
	struct proc *reaper;
};

/* BPF fault counts held until fl_faults_attribute() (faults.c). */
struct fl_faults {
	struct fl_held_fault *held; /* read from BPF, not yet attributed */
	size_t nheld, capheld;
	struct fl_held_site *sites;
	size_t nsites, capsites;
	__u64 unattributed;     /* faults counted in a range no VMA of the model held */
	__u64 last_attribution; /* when the counts last attributed were read, less a margin */
};

struct fl_ingest {
	struct fl_store *store;
	bool bpf_mode;
	bool smaps_due;         /* some process's smaps.due is set */
	struct fl_hmap by_pid;  /* pid -> struct proc * (the latest of that pid) */
	struct proc **all;
	size_t nall, capall;
	unsigned alive;
	__u64 last_end_ns;      /* when the latest process to end ended: the run's end */
	struct fl_stacks *stacks;
	struct fl_heap *heap;   /* sampled heap blocks (heapblocks.c) */
	struct fl_faults faults;
	__u64 last_settle;      /* when the matchers last expired calls */
	__u64 nested_caller_only; /* shim calls from a signal handler inside the unwinder: caller-only stacks */
	__u64 nested_lost;      /* shim calls from a signal handler while the shim was busy: unrecorded */
	struct fl_reap *reaps;  /* shim mode: reaps the shims said, settled at the end (reaped.c) */
	size_t nreaps, capreaps;
	/* The exit sample's handshake with the channel (consumer.h; record.c sets them, NULL: none). */
	void (*exit_hint)(void *ctx, __u32 pid, __u32 min_age_ms);
	bool exit_every;        /* FAULTLINE_EXIT_SAMPLES=all: offered whatever a read costs */
	int (*exit_done)(void *ctx, __u32 pid);
	void *exit_ctx;
	void (*drain_faults)(void *ctx); /* eBPF: drain the fault counts now (before an smaps read) */
	void *drain_ctx;
	bool faults_drained;    /* this round of samples drained them already */
	__u64 exit_late;        /* exit reads thrown away: the shim had stopped waiting */
	pid_t *watch;           /* new processes whose exit the loop must watch */
	size_t nwatch, capwatch;
};

/* Who is changing p's model, for the rows written. */
static inline struct fl_change fl_proc_change(const struct proc *p, __u64 t, __s64 event_id, enum fl_how how)
{
	return (struct fl_change){ .store = p->ingest->store, .proc_id = p->id, .pid = p->pid, .time_ns = t,
				   .event_id = event_id, .how = how };
}

#endif /* FL_PROCESS_H */
