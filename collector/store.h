/* SPDX-License-Identifier: MIT */
/*
 * store.h - the SQLite writer of a recording.  One transaction is open at a
 * time and committed by fl_store_commit() (the collector calls it on its
 * tick), so rows are batched but never older than a tick on disk.
 *
 * A write error (disk full, I/O error) puts the store in a failed state:
 * every later call is a no-op, the error is kept for the final message, and
 * what was committed before stays a valid recording.
 */
#ifndef FL_STORE_H
#define FL_STORE_H

#include <linux/types.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sqlite3.h>

#include "faultline.h"

struct fl_store;

/* What the recorder knows when it starts. */
struct fl_run_info {
	const char *version;
	char *const *argv;      /* the command, NULL-terminated */
	const char *cwd;
	const char *host;
	const char *kernel;
	long page_size;
	const char *fidelity;   /* "bpf" or "shim" */
	const char *fidelity_note;
	unsigned stack_depth;
	__u64 start_ns;
	__s64 start_unix;
};

/* One vma row as the model writes it, once, when the row's life ends or the run closes. */
struct fl_vma_row {
	__s64 proc_id;
	__u32 pid;
	__u64 start, end, offset, inode;
	__u32 dev;              /* of the file (kernel encoding), 0 if unknown: to find a missing path */
	__u32 prot, flags;
	const char *kind;
	const char *path;
	__u64 created_ns;
	__s64 created_by;       /* event id, 0 = none */
	__s64 parent_id;        /* 0 = none */
	__s64 origin_id;        /* 0 = this row itself */
	enum fl_how how;
	__u64 destroyed_ns;     /* 0: still mapped when the run closed */
	__s64 destroyed_by;     /* event id, 0 = none */
};

/*
 * Start a recording that will be named path (refusing an existing file
 * unless force, and a symbolic link always), with the schema.  It is
 * written under a temporary name beside path (mode 0600) until
 * fl_store_finish.  Returns 0 or -errno; err gets a message for the user.
 */
int fl_store_create(struct fl_store **out, const char *path, bool force, char *err, size_t errlen);

/* Give the finished file to uid:gid (the invoking user under sudo). */
void fl_store_set_owner(struct fl_store *s, uid_t uid, gid_t gid);

/*
 * Commit, leave WAL mode (one self-contained file), close, and rename the
 * file into place.  Returns 0 or the first error (-errno; fl_store_error
 * says what, and where the data is).  The store stays to be freed with
 * fl_store_close.
 */
int fl_store_finish(struct fl_store *s);

/*
 * File rows written without a path (the process was gone before its
 * mappings could be read) get the path resolve() finds for their (dev,
 * inode), if any.  resolve gets all of them at once: n pairs, out[i] NULL
 * when not found.  Call before fl_store_run_end.
 */
void fl_store_fill_paths(struct fl_store *s,
			 void (*resolve)(const __u32 *dev, const __u64 *inode, size_t n, const char **out));

/* faultline failed before recording anything: close and delete the file. */
void fl_store_discard(struct fl_store *s);

/* Free the store. */
void fl_store_close(struct fl_store *s);

/* The first write error, as a message, or NULL. */
const char *fl_store_error(const struct fl_store *s);

/* Commit the open transaction and start the next. */
void fl_store_commit(struct fl_store *s);

void fl_store_run_begin(struct fl_store *s, const struct fl_run_info *ri);
/* The recording is complete: build the indexes, mark the run complete. */
void fl_store_run_end(struct fl_store *s, __u64 end_ns, int exit_status);
/*
 * What fl_store_run_end calls last to summarize the recording for its
 * readers (main.c sets it: the viewer's summary.c, which the collector does
 * not know), path naming it in messages.  file, unless NULL, is a name under
 * which a second, read-only connection finds everything committed in the
 * file itself (nothing of it in the WAL).  It owns its failures: a recording
 * without summaries is still complete.
 */
extern int (*fl_store_summarize)(sqlite3 *db, const char *path, const char *file);
void fl_store_loss(struct fl_store *s, const char *cause, __u64 count, const char *detail);
/* One kernel feature the eBPF side adapts to, and its state in this run (bpf/fl_bpf.h FL_CAPS). */
void fl_store_kernel_feature(struct fl_store *s, const char *name, const char *state,
			     const char *feature, const char *how);
void fl_store_message(struct fl_store *s, __u64 time_ns, __u32 pid, const char *text);

/* Add faults taken before the process became the target (minor, major) to its *_before counts. */
void fl_store_process_prexec(struct fl_store *s, __s64 proc_id, const __u64 faults[2]);

__s64 fl_store_process(struct fl_store *s, __u32 pid, __u32 ppid, __s64 parent_id,
		       const char *exe, __u64 start_ns);
/* The process's image changed (exec); argv NULL when not known. */
void fl_store_process_exe(struct fl_store *s, __s64 proc_id, const char *exe, char *const *argv);
void fl_store_process_shim(struct fl_store *s, __s64 proc_id);
void fl_store_process_end(struct fl_store *s, __s64 proc_id, __u64 end_ns,
			  int exit_code, int exit_signal); /* -1 = unknown */
/* The kernel's fault totals of a process; before/gup NULL when unknown (shim runs). */
void fl_store_process_faults(struct fl_store *s, __s64 proc_id, __u64 min_flt, __u64 maj_flt,
			     const __u64 before[2], const __u64 gup[2]);

/* An address-space call; returns its event id. */
__s64 fl_store_event(struct fl_store *s, __s64 proc_id, const struct fl_call *c,
		     const char *source, const char *path, __s64 stack_id);
/*
 * The id the next event will have, to write it later with
 * fl_store_event_at() (a kernel call waiting for its stack).
 */
__s64 fl_store_event_reserve(struct fl_store *s);
__s64 fl_store_event_at(struct fl_store *s, __s64 id, __s64 proc_id, const struct fl_call *c,
			const char *source, const char *path, __s64 stack_id);

/*
 * VMA rows: an id is given when a row starts (rows and fault counts name
 * it at once); the row is written once, complete, when it ends.  One
 * INSERT per row and no UPDATE: a mapping's life costs one statement.
 */
__s64 fl_store_vma_id(struct fl_store *s);
/* The latest id given (0: none yet). */
__s64 fl_store_vma_last(const struct fl_store *s);
void fl_store_vma(struct fl_store *s, __s64 id, const struct fl_vma_row *r);

/* Frames and stacks: the caller deduplicates; these only insert. */
__s64 fl_store_frame(struct fl_store *s, const char *module, __u64 rel_addr);
__s64 fl_store_stack(struct fl_store *s, const __s64 *frame_ids, unsigned n);
void fl_store_frame_symbol(struct fl_store *s, __s64 frame_id, const char *build_id,
			   const char *function, __u64 func_off, const char *file, int line);

/* faultline: the faults were taken inside faultline's shim (fl_fault_key.faultline). */
void fl_store_fault(struct fl_store *s, __s64 vma_id, __s64 proc_id, __u64 time_ns,
		    const struct fl_fault_counts *c, int faultline);
/* callers_id: the stack of its callers (0: none known); callers_end: FL_CALLER_ENDS's name, NULL if no walk. */
void fl_store_fault_site(struct fl_store *s, __s64 vma_id, __s64 proc_id, const char *cls,
			 __s64 frame_id, __u64 count, int faultline, __s64 callers_id, const char *callers_end);
void fl_store_rss(struct fl_store *s, __s64 proc_id, __u64 time_ns, __u64 anon, __u64 file,
		  __u64 shmem, __u64 swap, const char *source);

/* One smaps sample of a process (schema: smaps_sample). */
struct fl_smaps_row {
	__s64 proc_id;
	__u64 time_ns, cost_ns, regions;
	const char *reason;
	__u64 rss, pss, anon, swap;
	__u64 rss_stat;         /* 0: not known */
};
/* One region (kernel VMA) of a sample (schema: region_rss); bytes. */
struct fl_region_rss {
	__u64 start, end;
	__u32 prot;
	int shared;
	char path[512];         /* "" if anonymous */
	__u64 rss, pss, anon, swap, private_dirty;
};
/* Returns the sample's id (0 on error). */
__s64 fl_store_smaps_sample(struct fl_store *s, const struct fl_smaps_row *r);
/* The sample's totals and cost, once its read is done. */
void fl_store_smaps_totals(struct fl_store *s, __s64 id, const struct fl_smaps_row *r);
/* An exit sample: how long its process waited for it. */
void fl_store_smaps_held(struct fl_store *s, __s64 id, __u64 held_ns);
/* Take a sample back, with its regions and pieces (an exit read that may have raced with the exit). */
void fl_store_smaps_drop(struct fl_store *s, __s64 id);
void fl_store_region_rss(struct fl_store *s, __s64 sample_id, const struct fl_region_rss *r);
void fl_store_piece_rss(struct fl_store *s, __s64 sample_id, __u64 region_start, __s64 vma_id, __u64 rss,
			__u64 anon, __u64 swap, int exact);

/* Column name of a fault class in the fault table. */
const char *fl_fault_class_name(unsigned cls);
/* FL_CALLER_ENDS's name of end, NULL if out of range. */
const char *fl_caller_end_name(unsigned end);
/* Name of an enum fl_kind as stored in event.kind. */
const char *fl_kind_name(unsigned kind);
/* The name of an enum fl_how (vma.how). */
const char *fl_how_name(unsigned how);

/* One sampled heap block, written when it ended (heapblocks.c). */
struct fl_heap_row {
	__s64 proc_id;
	__u32 tid;
	__u64 addr, size;
	double weight;          /* bytes it stands for */
	__u64 mean;             /* the sampling mean it was drawn with */
	const char *fn;         /* malloc calloc realloc memalign */
	__u64 alloc_ns;
	__u64 free_ns;          /* 0: still live when its image ended */
	const char *end_how;    /* free exit exec lost */
	__s64 stack_id;         /* 0: none */
};
void fl_store_heap_sample(struct fl_store *s, const struct fl_heap_row *r);

#endif /* FL_STORE_H */
