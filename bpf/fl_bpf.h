/* SPDX-License-Identifier: MIT */
/*
 * fl_bpf.h - the collector's view of the kernel side: load and attach the
 * BPF programs, follow a process tree, stream syscall/lifecycle/RSS records,
 * drain the in-kernel fault aggregates.  Records are those of faultline.h.
 */
#ifndef FL_BPF_H
#define FL_BPF_H

#include <linux/types.h>
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
	__u64 thread_state;  /* faults whose entry state could not be stored (classified as FL_F_OTHER) */
	__u64 cuts;          /* call boundaries not remembered (cuts map full): faults of merged pieces may land on a neighbour */
};

/*
 * Load and attach everything.  Returns 0, or -errno with a one-line reason
 * for the user in why ("need CAP_BPF and CAP_PERFMON (run as root)", ...).
 */
int fl_bpf_open(struct fl_bpf **out, const struct fl_bpf_ops *ops, char *why, size_t whylen);

/* Start tracking pid and every descendant it will have. Returns 0 or -errno. */
int fl_bpf_track(struct fl_bpf *b, __u32 pid);

/* An fd that becomes readable when records are waiting (for epoll). */
int fl_bpf_fd(struct fl_bpf *b);

/* Consume waiting records without blocking. Returns how many, or -errno. */
int fl_bpf_poll(struct fl_bpf *b);

/*
 * Read and empty the fault aggregates (ops->faults, ops->site: counts since
 * the last drain). Returns entries read or -errno.
 */
int fl_bpf_drain(struct fl_bpf *b);

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
