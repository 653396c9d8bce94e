/* SPDX-License-Identifier: MIT */
/*
 * fl_bpf.h - the collector's view of the kernel side: load and attach the
 * BPF programs, follow a process tree, stream syscall/lifecycle/RSS records,
 * drain the in-kernel fault aggregates.  Records are those of faultline.h.
 */
#ifndef FL_BPF_H
#define FL_BPF_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "faultline.h"

struct fl_bpf;

/* Callbacks, each called from fl_bpf_poll() / fl_bpf_drain() on the caller's thread. */
struct fl_bpf_ops {
	void *ctx;
	void (*call)(void *ctx, const struct fl_call *c);    /* an address-space syscall returned */
	void (*task)(void *ctx, const struct fl_task *t);    /* fork / exec / exit */
	void (*rss)(void *ctx, const struct fl_rss *r);      /* resident memory changed */
	void (*vma)(void *ctx, const struct fl_vma_rec *v);  /* a VMA of a new image, before its exec record */
	void (*faults)(void *ctx, const struct fl_fault_key *k, const struct fl_fault_counts *c);
	void (*site)(void *ctx, const struct fl_site_key *k, __u64 count);
};

/* What the kernel side lost (each must be 0 for an exact run). */
struct fl_bpf_loss {
	__u64 ringbuf;       /* records not written: ring buffer full */
	__u64 fault_map;     /* faults not counted: aggregate map full */
	__u64 site_map;      /* fault sites not counted: site map full */
	__u64 pending;       /* syscalls whose entry could not be remembered */
	__u64 find_vma;      /* not a loss: faults counted by address, VMA unknown (bpf_find_vma busy), key.vm_end == 0 */
	__u64 ia32;          /* 32-bit (ia32) syscalls of followed processes, not recorded */
	__u64 thread_state;  /* faults whose entry state could not be stored (classified as FL_F_OTHER) */
	__u64 cuts;          /* call boundaries not remembered (cuts map full): faults of merged pieces may land on a neighbour */
};

/*
 * Kernel features the BPF side adapts to, probed from the kernel's BTF, one
 * by one (libbpf-tools style): what a kernel lacks is replaced by the next
 * best source, or, for a required one, eBPF is not used and the run says so.
 * X(id, name, what, replacement (NULL: required)).
 */
#define FL_CAPS(X) \
	X(FL_CAP_FIND_VMA, "find_vma", "bpf_find_vma and bpf_loop (5.17): the VMA of every fault", NULL) \
	X(FL_CAP_EXEC_VMAS, "exec_vmas", "the kernel sends each new image's VMAs at exec (task VMA iterator, 6.4)", \
	  "bpf_find_vma walks, at exec, the runs of adjacent VMAs at the image's landmarks " \
	  "(code, data, stack, interpreter, vDSO); a VMA apart from all of them is missed") \
	X(FL_CAP_EXIT_GROUP_DEAD, "exit_group_dead", "sched_process_exit says whether the group died (6.16)", \
	  "signal->live read at the tracepoint; two threads exiting at once are reported once") \
	X(FL_CAP_RSS_PERCPU, "rss_percpu", "mm->rss_stat is percpu_counter[] (6.2)", \
	  "the atomic_long_t rss_stat.count[] of 6.1 and older") \
	X(FL_CAP_RSS_UNSPLIT, "rss_unsplit", "every RSS change reaches the mm at once (6.2)", \
	  "fault classes from the task's own RSS cache (task->rss_stat); the RSS timeline moves when the " \
	  "kernel syncs that cache, every 64 faults per thread, as /proc shows it") \
	X(FL_CAP_VMA_TREE, "vma_tree", "the VMA of a fault read from mm->mm_mt without a lock (maple tree, 6.1)", \
	  "bpf_find_vma alone: its mmap_read_trylock fails while another thread maps or unmaps, and such " \
	  "a fault is counted by address (loss row bpf_find_vma)")

enum fl_cap_id {
#define FL_CAP_ENUM(id, name, what, repl) id,
	FL_CAPS(FL_CAP_ENUM)
#undef FL_CAP_ENUM
	FL_CAP_N
};

enum fl_cap_state { FL_CAP_PRESENT, FL_CAP_REPLACED, FL_CAP_MISSING };

struct fl_cap {
	const char *name;        /* "exec_vmas" ... */
	const char *what;        /* the feature */
	enum fl_cap_state state;
	const char *how;         /* replaced: by what; missing: what is lost; present: NULL */
	int pretended;           /* missing only because FAULTLINE_PRETEND_MISSING says so */
};

/* "present", "replaced", "missing". */
const char *fl_cap_state_name(enum fl_cap_state s);

/*
 * Probe the running kernel (its BTF) for every FL_CAPS entry into caps[FL_CAP_N].
 * FAULTLINE_PRETEND_MISSING=name,name,... (or "all") treats those features as
 * absent, so the fallbacks run on a kernel that has everything (tests).
 * Returns 0, or -errno when the kernel's BTF cannot be read.
 */
int fl_bpf_probe(struct fl_cap caps[FL_CAP_N]);

/*
 * From now on, libbpf loads SEC("tp_btf/...") programs in this process with
 * the BTF ids of the boot's facts (the probe's, above, which must have run),
 * without parsing the kernel's BTF.  fl_bpf_open does it; so must any other
 * loader of fl_kern.bpf.o (bench/verifycost.c).  Returns 0 or -errno.
 */
int fl_bpf_use_boot_ids(void);

/*
 * Load and attach everything.  Returns 0, or -errno with a one-line reason
 * for the user in why ("need CAP_BPF and CAP_PERFMON (run as root)", ...).
 */
int fl_bpf_open(struct fl_bpf **out, const struct fl_bpf_ops *ops, char *why, size_t whylen);

/* One line (two when replaced or missing) for `doctor`. */
void fl_bpf_print_cap(FILE *out, const struct fl_cap *c);

/* The capabilities this instance was loaded with (FL_CAP_N entries). */
const struct fl_cap *fl_bpf_caps(struct fl_bpf *b);

/* Start tracking pid and every descendant it will have. Returns 0 or -errno. */
int fl_bpf_track(struct fl_bpf *b, __u32 pid);

/* An fd that becomes readable when records are waiting (for epoll). */
int fl_bpf_fd(struct fl_bpf *b);

/* Consume waiting records without blocking. Returns how many, or -errno. */
int fl_bpf_poll(struct fl_bpf *b);

/*
 * Records do not wake the collector while it is awake (fl_kern.bpf.c,
 * submit()).  Before it sleeps in epoll_wait: fl_bpf_sleep() says so to the
 * programs and consumes what came meanwhile; when it returns more than 0,
 * do not sleep.  After: fl_bpf_awake().
 */
int fl_bpf_sleep(struct fl_bpf *b);
void fl_bpf_awake(struct fl_bpf *b);

/*
 * Read and empty the fault aggregates (ops->faults, ops->site: counts since
 * the last drain). Returns entries read or -errno.
 */
int fl_bpf_drain(struct fl_bpf *b);

/* Whether the maps filled to half since the last drain (a record said so): drain now, not at the period. */
bool fl_bpf_drain_wanted(const struct fl_bpf *b);

/* Kernel-side losses so far. */
void fl_bpf_loss(struct fl_bpf *b, struct fl_bpf_loss *out);

void fl_bpf_close(struct fl_bpf *b);

/*
 * `faultline doctor`: print one line per requirement (capabilities, BTF,
 * tracefs, perf software events, helpers) and the fidelity a run will get.
 * Returns 0 when a run gets full fidelity, 1 otherwise.
 */
int fl_bpf_doctor(FILE *out);

#endif /* FL_BPF_H */
