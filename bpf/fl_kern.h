/* SPDX-License-Identifier: MIT */
/*
 * fl_kern.h - state shared by the BPF programs (fl_kern.bpf.c) and their
 * loader (loader.c) through maps.  Not part of the collector contract
 * (that is common/faultline.h).  Same rules: no includes, fixed sizes.
 */
#ifndef FL_KERN_H
#define FL_KERN_H

/*
 * The kfuncs the programs call, each through the placeholder helper id
 * FL_KFUNC_PLACEHOLDER + its index, which the loader replaces with the
 * kernel's BTF id of the function (loader.c patch_kfuncs).
 */
#define FL_KFUNCS(X) \
	X(FL_KF_ITER_TASK_VMA_NEW, "bpf_iter_task_vma_new") \
	X(FL_KF_ITER_TASK_VMA_NEXT, "bpf_iter_task_vma_next") \
	X(FL_KF_ITER_TASK_VMA_DESTROY, "bpf_iter_task_vma_destroy")
enum fl_kfunc {
#define FL_KF_ENUM(id, name) id,
	FL_KFUNCS(FL_KF_ENUM)
#undef FL_KF_ENUM
	FL_KF_N
};
#define FL_KFUNC_PLACEHOLDER 0x7f5f0000

/* Indices of the `losses` array map. */
enum fl_loss_idx {
	FL_LOSS_RINGBUF = 0,  /* ring buffer reserve failed */
	FL_LOSS_FAULT_MAP,    /* fault aggregate map full */
	FL_LOSS_SITE_MAP,     /* fault site map full */
	FL_LOSS_PENDING,      /* syscall entry not remembered */
	FL_LOSS_FIND_VMA,     /* bpf_find_vma busy: fault counted by address */
	FL_LOSS_THREAD,       /* per-thread/per-process state map full, or fault without entry state */
	FL_LOSS_CUTS,         /* call boundary not remembered (cuts map full): pieces may merge */
	FL_LOSS_IA32,         /* 32-bit (ia32) syscalls of a followed process: not recorded */
	FL_LOSS_N
};

#define FL_WP_SLOTS 16

/*
 * runs[pair] on each CPU: the faults it counted in a row under one key and
 * one site, summed here, and added to the pair's maps when the key or the
 * site changes, or read by the collector when it drains the pair.  key.tgid
 * 0: no run; site_n 0: nothing counted in it yet.
 */
struct fl_fault_run {
	struct fl_fault_key key;
	struct fl_site_key site;
	struct fl_fault_counts counts;
	__u64 site_n;
};

/* tracked[tgid]: a followed process. */
struct fl_proc {
	__u64 seq;            /* syscall records emitted (next fl_call.seq) */
	__u64 base_min;       /* min_flt/maj_flt of the process when tracking began */
	__u64 base_maj;
	__u64 seen_min;       /* faults the perf events saw (the rest of min_flt/maj_flt beyond base is gup) */
	__u64 seen_maj;
	__u64 rss[4];         /* exact pages by MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES */
	__u64 last_emit_ns;   /* last fl_rss record */
	__u64 peak;           /* largest file+anon+shmem emitted (pages) */
	__u64 pend_ns;        /* a suppressed new peak waits in pend[] (0: none) */
	__u64 pend[4];
	__u32 rss_init;       /* rss[] filled for the current mm */
	__u32 dirty;          /* rss[] changed since the last record */
	__u64 vma_gen;        /* bumped around every call that may change VMAs */
	__u64 ns;             /* address-space namespace of cuts[]: new at exec, shared with fork children */
	__u64 ns_shared;      /* 1: a fork shared ns with another process (its munmaps clear no cuts) */
	__u64 exit_claim;     /* the group's exit was reported (on_exit_live may see it twice) */
	__s64 shim_busy;      /* the shim's busy count: offset from the thread pointer (0: no shim; FL_SHIM_MARK) */
	__u64 mm;             /* the mm of the image recorded last (0: not yet known); another one is an exec's, unrecorded */
	/*
	 * Write faults that made a present page writable (a COW), by page, and
	 * the epoch they did it in: bumped when a call that can write-protect
	 * the process's PTEs begins (wp_epoch_call).  A later write fault that
	 * finds nothing to do on such a page in the same epoch lost a race
	 * (fault_done, wp_raced).
	 */
	__u64 wp_epoch;
	__u64 wp_page[FL_WP_SLOTS];
	__u64 wp_at[FL_WP_SLOTS]; /* wp_epoch when wp_page[] was written */
};

/*
 * cuts[{ns, addr >> 21}]: the page boundaries inside one 2 MiB bucket where
 * an address-space call began or ended (bit i: page i of the bucket).  The
 * collector's model splits rows only at such boundaries, so a fault's
 * piece (faultline.h fl_fault_key) is found from the bits at or below it.
 * A stale bit only splits a key in two; a munmap clears those strictly
 * inside the range it emptied (clear_cuts in fl_kern.bpf.c).
 */
#define FL_CUT_SHIFT 21
struct fl_cut_key {
	__u64 ns;
	__u64 bucket;
};
struct fl_cuts {
	__u64 w[8];           /* 512 pages */
};

/* threads[tid]: per-thread state of a followed process. */
struct fl_thread {
	__u64 addr;           /* fault in progress: address, x86 error code, user ip */
	__u64 err;
	__u64 ip;
	__u32 active;         /* a fault entered and has not completed */
	__u32 rss_bits;       /* 1 << MM_* of every rss counter the fault moved */
	__u32 alloc0;         /* movable order-0 pages allocated during the fault */
	__u32 allocn;         /* movable order>0 pages (THP/mTHP) */
	__u64 last_page;      /* the fault's latest movable allocation (struct page *) */
	__u32 freed;          /* ... freed again before the fault completed: it lost a race */
	__u32 in_shim;        /* the fault began while the thread was inside the shim */
	__u64 numa;           /* task->numa_faults_locality[] sum at entry (NUMA hinting) */
	__u32 sc_nr;          /* syscall number + 1 while one is in progress, else 0 */
	__u32 pad;
	__u64 sc_args[6];
	__u64 sc_inode;       /* mmap of a file: the file's inode and device, from the fd at entry */
	__u32 sc_dev;
	__u32 sc_in_shim;     /* the call was made from inside the shim */
	__u64 sc_gen;         /* fl_proc.vma_gen just after this call's entry bumped it */
	__u64 v_start;        /* the VMA this thread faulted in last (v_end 0: none) */
	__u64 v_end;
	__u64 v_flags;
	__u32 v_anon;         /* vma_is_anonymous(): no vm_ops */
	__u32 v_mkwrite;
	__u64 v_gen;          /* fl_proc.vma_gen when it was looked up */
	__u64 p_lo;           /* the piece of that VMA this thread faulted in last: [p_lo, p_hi) */
	__u64 p_hi;
	__s32 rss_base[4];    /* 6.1 (SPLIT_RSS_COUNTING): task->rss_stat.count[] at fault entry */
};

#endif /* FL_KERN_H */
