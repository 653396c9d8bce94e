/* SPDX-License-Identifier: MIT */
/*
 * faultline.h - the contract: every record that crosses a process or kernel
 * boundary (shim -> collector over the shared-memory channel, BPF -> collector
 * over the BPF ring buffer and maps).
 *
 * Rules: no includes (the includer provides __u8/__u16/__u32/__u64/__s32/__s64:
 * <linux/types.h> in user space, vmlinux.h in BPF), fixed-size fields only,
 * explicit padding, every size checked below.  Bump FL_ABI_VERSION on any
 * change; the collector rejects a shim with another version.
 */
#ifndef FAULTLINE_H
#define FAULTLINE_H

#define FL_ABI_VERSION 10

/* Deepest call stack a shim record can carry (the configured depth is <= this). */
#define FL_MAX_FRAMES 128
/* Default stack depth (FAULTLINE_DEPTH overrides). */
#define FL_DEFAULT_FRAMES 64
/* Longest path carried inline (longer ones are truncated, flagged FL_MAP_TRUNCATED). */
#define FL_PATH_MAX 512

/*
 * The names shared by the records, the store and the viewer, one list each
 * (X-macros): X(CONSTANT, name, ...).  The store writes the names, the
 * schema's CHECK constraints and fault columns list them, and the unit
 * test "names" holds common/schema.sql against these lists.
 */

/* What an address-space call was: X(CONST, name, value).  Stored by name (fl_kind_name()). */
#define FL_KINDS(X)                                                                          \
	X(NONE, none, 0)                                                                     \
	X(MMAP, mmap, 1)                   /* a: addr len prot flags fd off -> result addr */ \
	X(MUNMAP, munmap, 2)               /* a: addr len                   -> 0 */           \
	X(MPROTECT, mprotect, 3)           /* a: addr len prot              -> 0 */           \
	X(PKEY_MPROTECT, pkey_mprotect, 4) /* a: addr len prot pkey         -> 0 */           \
	X(MREMAP, mremap, 5)  /* a: old_addr old_len new_len flags new_addr -> result addr */ \
	X(BRK, brk, 6)        /* a: requested break -> new break (syscall) or 0/-1 (libc) */  \
	X(SBRK, sbrk, 7)                   /* a: increment                  -> old break */   \
	X(MADVISE, madvise, 8)             /* a: addr len advice            -> 0 */           \
	X(FORK, fork, 9)                   /* result: child pid (parent side) */              \
	X(VFORK, vfork, 10)                /* recorded before the call: result unknown (-1) */ \
	X(EXEC, exec, 11)                  /* the process image was replaced */               \
	X(EXIT, exit, 12)                  /* a[0]: exit code, a[1]: signal */                \
	X(DLOPEN, dlopen, 13)  /* a[0]: mode; path: file name; recorded before the call */    \
	X(DLCLOSE, dlclose, 14)            /* a[0]: handle; recorded before the call */       \
	X(SHMAT, shmat, 15)                /* a: shmid addr shmflg size     -> result addr */ \
	X(SHMDT, shmdt, 16)                /* a: addr                       -> 0 */           \
	X(CLONE, clone, 17)                /* a[0]: flags -> child tid/pid (BPF only) */

#define FL_KIND_ENUM_(c, name, value) FL_K_##c = value,
enum fl_kind { FL_KINDS(FL_KIND_ENUM_) FL_K_COUNT };
#undef FL_KIND_ENUM_

/*
 * How a vma row came to be (the store's vma.how): X(CONST, name).
 *   call: made by a call; split: a piece of a row a call changed; remap:
 *   moved by mremap; fork: inherited; snapshot: in the first maps snapshot;
 *   resync: found by a later snapshot; exec: mapped by exec.
 */
#define FL_HOWS(X) X(CALL, call) X(SPLIT, split) X(REMAP, remap) X(FORK, fork) \
	X(SNAPSHOT, snapshot) X(RESYNC, resync) X(EXEC, exec)

#define FL_HOW_ENUM_(c, name) FL_HOW_##c,
enum fl_how { FL_HOWS(FL_HOW_ENUM_) FL_HOW_COUNT };
#undef FL_HOW_ENUM_

/*
 * One address-space call as it returned.  Produced by the shim (with a
 * stack following it in the channel record) and by BPF at syscall exit.
 * For BPF, `seq` counts calls per process as the kernel saw them; for the
 * shim it is the per-process sequence number of the shim's events.
 */
struct fl_call {
	__u32 kind;     /* enum fl_kind */
	__u32 pid;      /* tgid */
	__u32 tid;
	__s32 err;      /* errno when the call failed, else 0 */
	__u64 time_ns;  /* CLOCK_MONOTONIC when the call returned */
	__u64 seq;
	__u64 args[6];
	__s64 result;
	/*
	 * mmap of a file (BPF only): the file's identity, read from the fd at
	 * syscall entry, because the fd is often closed before the collector
	 * could look at it.  dev is the kernel's encoding (major << 20 | minor).
	 */
	__u64 inode;
	__u32 dev;
	__u32 flags;    /* FL_CALL_FAULTLINE (BPF, ABI 8) */
};
#define FL_CALL_FAULTLINE 1u /* made while the thread was inside faultline's shim (FL_SHIM_MARK) */
#define FL_CALL_NESTED 2u    /* shim (ABI 9): made by a signal handler that interrupted the shim's
                              * unwinder: the stack holds the caller only */
_Static_assert(sizeof(struct fl_call) == 104, "fl_call layout");

/* Record types.  Every record starts with struct fl_rec. */
enum fl_rec_type {
	FL_R_HELLO = 1,   /* shim: a process image started recording (fl_hello) */
	FL_R_MAPPING = 2, /* shim: one line of /proc/self/maps at start (fl_mapping) */
	FL_R_CALL = 3,    /* shim or BPF: fl_call, then nframes __u64 return addresses (shim) */
	FL_R_TASK = 4,    /* BPF: fork/exec/exit of a tracked task (fl_task) */
	FL_R_RSS = 5,     /* BPF: resident memory of a process (fl_rss) */
	FL_R_NOTE = 6,    /* shim: a one-time message, e.g. "stack unwinding disabled" (fl_note) */
	FL_R_VMA = 7,     /* BPF: one VMA of a new image, just before its FL_T_EXEC (fl_vma_rec) */
	FL_R_ALLOC = 8,   /* shim: a sampled heap allocation (fl_alloc_rec), then nframes return addresses */
	FL_R_FREE = 9,    /* shim: a sampled block was freed, or moved by realloc (fl_free_rec) */
	FL_R_HEAP_STATS = 10, /* shim, at exit: what the heap sampler could not see (fl_heap_stats) */
	FL_R_HEAP_FORK = 11, /* shim: a fork, from both sides: the child inherits sampled blocks (fl_heap_fork) */
	FL_R_REAPED = 12, /* shim: the process reaped a child through wait4/waitpid/wait/wait3/waitid (fl_reaped) */
	FL_R_EXEC = 13,   /* shim: the process is about to exec, or its exec failed (fl_exec_rec) */
	FL_R_NESTED = 14, /* shim: calls a signal handler made while its thread was busy in the shim, unrecorded (fl_nested) */
	FL_R_EXITING = 15, /* shim (ABI 10): the process is about to exit and waits for its last smaps read (fl_exiting) */
	FL_R_WAKE = 16,   /* BPF: nothing but a wake-up of the collector sleeping in epoll_wait (fl_rec alone) */
	FL_R_DRAIN = 17,  /* BPF: the aggregate maps are half full, drain them now (fl_rec alone) */
};

struct fl_rec {
	__u16 type;     /* enum fl_rec_type */
	__u16 nframes;  /* FL_R_CALL from the shim: frames following the call */
	__u32 size;     /* bytes of the whole record, this header included */
};
_Static_assert(sizeof(struct fl_rec) == 8, "fl_rec layout");

/* The shim announces a process image: once at start, after fork and after exec. */
struct fl_hello {
	struct fl_rec h;
	__u32 abi;          /* FL_ABI_VERSION */
	__u32 pid;
	__u32 ppid;
	__u32 flags;        /* FL_HELLO_* */
	__u64 time_ns;
	__u64 parent_seq;   /* FL_HELLO_FORKED: the parent's shim seq at the fork */
	__u32 depth;        /* configured stack depth */
	__u32 nmappings;    /* FL_R_MAPPING records that follow */
	char exe[FL_PATH_MAX]; /* /proc/self/exe */
};
#define FL_HELLO_FORKED 1u  /* this image is a fork child (memory copied from ppid) */
#define FL_HELLO_EXECED 2u  /* this image replaced an earlier one of the same pid */
#define FL_HELLO_RESYNC 4u  /* same image: a fresh snapshot of its mappings follows (after dlopen/dlclose) */
_Static_assert(sizeof(struct fl_hello) == 48 + FL_PATH_MAX, "fl_hello layout");

/*
 * "Inside the shim", for the BPF fault programs (ABI 8).  The shim's first
 * act in a new image is getpid(FL_SHIM_MARK, off) (getpid ignores its
 * arguments): off is the address of the shim's per-thread busy count
 * (initial-exec TLS) minus the thread pointer, the same in every thread of
 * the image.  BPF remembers it per process (kept by fork children, dropped
 * at exec) and, at each fault, reads the int at fsbase + off: nonzero means
 * the thread was doing faultline's work, and the fault is counted with
 * fl_fault_key.faultline set.  The handshake is synchronous (a syscall the
 * BPF sys_enter program sees), so it covers the shim's own start-up, which
 * runs long before the collector reads the hello.
 */
#define FL_SHIM_MARK 0x666c2d7368696dull /* "fl-shim" */
/*
 * getpid(FL_SHIM_EXITING) (ABI 10): the shim just sent FL_R_EXITING and
 * waits.  BPF answers with the process's RSS as the kernel counts it now
 * (an FL_R_RSS record), which also wakes a collector asleep on its ring.
 */
#define FL_SHIM_EXITING 0x666c2d65786974ull /* "fl-exit" */

/* One mapping of the initial snapshot (a /proc/self/maps line). */
struct fl_mapping {
	struct fl_rec h;
	__u32 pid;
	__u32 index;        /* 0 .. nmappings-1 */
	__u64 start;
	__u64 end;
	__u64 offset;
	__u64 inode;
	__u32 dev_major;
	__u32 dev_minor;
	__u32 prot;         /* PROT_READ/WRITE/EXEC bits */
	__u32 flags;        /* FL_MAP_* */
	char path[FL_PATH_MAX];
};
#define FL_MAP_SHARED 1u
#define FL_MAP_TRUNCATED 2u /* path did not fit */
_Static_assert(sizeof(struct fl_mapping) == 64 + FL_PATH_MAX, "fl_mapping layout");

/*
 * A shim call record: the call, then h.nframes return addresses (innermost
 * first), then for FL_K_DLOPEN the NUL-terminated file name (at most
 * FL_NAME_MAX bytes) up to h.size.
 */
struct fl_call_rec {
	struct fl_rec h;
	struct fl_call call;
	__u64 frames[];
};
#define FL_NAME_MAX 256
_Static_assert(sizeof(struct fl_call_rec) == 112, "fl_call_rec layout");

struct fl_note {
	struct fl_rec h;
	__u32 pid;
	__u32 pad;
	char text[248];
};
_Static_assert(sizeof(struct fl_note) == 264, "fl_note layout");

/*
 * Heap sampling (preload/malloc.c, docs/heap.md).  Allocations are sampled by
 * bytes: each thread counts down exponentially distributed intervals of
 * mean `mean` bytes, and an allocation of n bytes is sampled with
 * probability 1 - exp(-n/mean) (mean 1: every allocation).
 */
#define FL_HEAP_MEAN_DEFAULT (512u << 10)
enum fl_alloc_fn {
	FL_ALLOC_MALLOC = 1,    /* malloc, C++ new */
	FL_ALLOC_CALLOC = 2,
	FL_ALLOC_REALLOC = 3,   /* realloc, reallocarray: the new block */
	FL_ALLOC_MEMALIGN = 4,  /* posix_memalign, aligned_alloc, memalign, valloc, pvalloc */
};
struct fl_alloc_rec {
	struct fl_rec h;        /* h.nframes return addresses follow */
	__u32 pid;
	__u32 tid;
	__u64 time_ns;
	__u64 addr;             /* the block returned */
	__u64 size;             /* bytes requested */
	__u64 mean;             /* the sampling mean it was drawn with */
	__u32 fn;               /* enum fl_alloc_fn */
	__u32 pad;
	__u64 frames[];
};
_Static_assert(sizeof(struct fl_alloc_rec) == 56, "fl_alloc_rec layout");

struct fl_free_rec {
	struct fl_rec h;
	__u32 pid;
	__u32 tid;
	__u64 time_ns;
	__u64 addr;             /* a block sent in an FL_R_ALLOC, freed or moved by realloc */
	__u64 size;             /* its size as sent */
};
_Static_assert(sizeof(struct fl_free_rec) == 40, "fl_free_rec layout");

struct fl_heap_stats {
	struct fl_rec h;
	__u32 pid;
	__u32 pad;
	__u64 mean;
	__u64 unrecorded_count; /* allocations the sampler could not consider: before the */
	__u64 unrecorded_bytes; /* shim was on, or made inside the shim (unwinder, dlsym) */
	__u64 lost_frees;       /* sampled blocks freed where the shim could not say so */
};
_Static_assert(sizeof(struct fl_heap_stats) == 48, "fl_heap_stats layout");

/*
 * The sampled blocks a fork child inherits.  The parent sends one (ppid 0)
 * just before the real fork, holding every lock of its set of sampled
 * blocks: the blocks its records made live up to there are exactly those in
 * the child's copy of the set.  The child sends one (ppid: its parent) after
 * its hello, with the same fork_id, and owns the parent's blocks as they
 * were at the parent's record.  inherit 0: the child starts with none (the
 * fork came from a signal handler that interrupted the set's lock).
 */
struct fl_heap_fork {
	struct fl_rec h;
	__u32 pid;              /* the sender */
	__u32 ppid;             /* the child's: its parent; the parent's: 0 */
	__u64 fork_id;          /* the parent's count of its forks: pairs the two records */
	__u64 time_ns;
	__u32 inherit;
	__u32 pad;
};
_Static_assert(sizeof(struct fl_heap_fork) == 40, "fl_heap_fork layout");

/*
 * A child the process reaped (ABI 9), sent by the shim's wait hooks after
 * the call returned it: in shim-only mode the child is not faultline's, and
 * once reaped nothing of it is left in /proc.  status is the wait status
 * the kernel gave (exited or killed only: stops, continues and WNOWAIT
 * peeks send nothing); min_flt/maj_flt are the kernel's rusage of the
 * child (RUSAGE_BOTH: its own faults plus those of the children it reaped
 * itself), read by the hook with an rusage of its own when the program
 * passed none.  child is the pid the call returned, in the reaper's PID
 * namespace (0 after the collector could not map it to the host's).
 */
struct fl_reaped {
	struct fl_rec h;
	__u32 pid;          /* the reaper */
	__u32 child;        /* the reaped process */
	__s32 status;       /* as wait(2): (code << 8) | signal */
	__u32 flags;        /* FL_REAPED_* */
	__u64 time_ns;
	__u64 min_flt;      /* FL_REAPED_RUSAGE: ru_minflt */
	__u64 maj_flt;      /* FL_REAPED_RUSAGE: ru_majflt */
	__u64 since_ns;     /* FL_REAPED_SYSTEM: when system() was called */
};
#define FL_REAPED_RUSAGE 1u /* min_flt/maj_flt are the kernel's */
/*
 * system() (glibc reaps its shell with an internal waitpid no hook sees):
 * child 0, the one child the call spawned between since_ns and time_ns;
 * status is system()'s result; min_flt/maj_flt are how much the process's
 * RUSAGE_CHILDREN grew over the call (other threads' reaps included).
 */
#define FL_REAPED_SYSTEM 2u
_Static_assert(sizeof(struct fl_reaped) == 56, "fl_reaped layout");

/*
 * An exec, from the image it replaces (ABI 9): sent by the shim's exec hooks
 * just before the call (err 0) and again if it returned (err: its errno).
 * In shim-only mode the new image is known by its own hello; one that never
 * says hello (a static binary, LD_PRELOAD or the channel's variable gone, a
 * /proc of its own: `unshare --mount-proc`) is known by this record alone.
 * path is the file as the program named it (execvp: before the PATH search;
 * fexecve: empty).
 */
struct fl_exec_rec {
	struct fl_rec h;
	__u32 pid;
	__s32 err;          /* 0: about to exec; else the exec failed with this errno */
	__u64 time_ns;
	char path[FL_PATH_MAX];
};
_Static_assert(sizeof(struct fl_exec_rec) == 24 + FL_PATH_MAX, "fl_exec_rec layout");

/*
 * Address-space calls the shim let through unrecorded (ABI 9): made by a
 * signal handler that interrupted its thread while the shim was busy outside
 * its record of a call (forking, a maps snapshot, heap sampling, start-up).
 * Sent with the process's next record; with eBPF the kernel's record of each
 * stands without a stack.
 */
struct fl_nested {
	struct fl_rec h;
	__u32 pid;
	__u32 pad;
	__u64 count;
};
_Static_assert(sizeof(struct fl_nested) == 24, "fl_nested layout");

/*
 * The process is about to exit (ABI 10; preload/exit.c): sent from the
 * shim's atexit handler or its _exit/_Exit hook when the collector asked
 * for exit samples (fl_ring_desc.exit_min_age_ms), after which the thread
 * waits, at most FL_EXIT_WAIT_MS, for the collector to read smaps and say
 * so (fl_ring_desc.exit_state).
 */
struct fl_exiting {
	struct fl_rec h;
	__u32 pid;
	__u32 how;          /* FL_EXITING_* */
	__u64 time_ns;
};
#define FL_EXITING_ATEXIT 1u /* exit() or a return from main: the program's atexit handlers have run */
#define FL_EXITING_UNDERSCORE 2u /* _exit() or _Exit() called by the program */
_Static_assert(sizeof(struct fl_exiting) == 24, "fl_exiting layout");

/* BPF: a task lifecycle event of a tracked process. */
enum fl_task_kind { FL_T_FORK = 1, FL_T_EXEC = 2, FL_T_EXIT = 3 };
struct fl_task {
	struct fl_rec h;
	__u32 kind;         /* enum fl_task_kind */
	__u32 pid;          /* tgid of the task (child for FORK) */
	__u32 tid;
	__u32 ppid;         /* FORK: parent tgid */
	__u64 time_ns;
	__s32 exit_code;    /* EXIT: as wait(2) status: (code << 8) | signal */
	__u32 is_thread;    /* FORK: a new thread, not a new process */
	__u64 min_flt;      /* EXIT of the last thread: the kernel's own totals */
	__u64 maj_flt;
	char comm[16];
	char path[256];     /* EXEC: filename */
	/*
	 * EXIT of the last thread (ABI 2): the part of min_flt/maj_flt that no
	 * fault record can explain.  base_*: counted before tracking began (the
	 * root process before fl_bpf_track); gup_*: faults the kernel counted
	 * without a perf event (get_user_pages: exec's argument copy,
	 * MAP_POPULATE, mlock, MADV_POPULATE_*; see docs/faults.md).  Invariant:
	 * sum of fault classes over the process's VMAs
	 *   == (min_flt - base_min_flt - gup_min_flt) + (maj_flt - base_maj_flt - gup_maj_flt).
	 */
	__u64 base_min_flt;
	__u64 base_maj_flt;
	__u64 gup_min_flt;
	__u64 gup_maj_flt;
};
_Static_assert(sizeof(struct fl_task) == 360, "fl_task layout");

/*
 * BPF: a VMA as exec left it (binary, interpreter, stack, vdso): what exec
 * maps is no syscall, and by the time the collector could read
 * /proc/PID/maps a short-lived process may be gone.  Sent for each VMA
 * right before the FL_T_EXEC record of that image.
 */
struct fl_vma_rec {
	struct fl_rec h;
	__u32 pid;
	__u32 flags;        /* FL_VMA_* */
	__u64 start;
	__u64 end;
	__u64 pgoff;        /* file offset, in pages */
	__u64 inode;        /* 0: anonymous */
	__u32 dev;          /* kernel encoding (major << 20 | minor) */
	__u32 pad;
};
#define FL_VMA_READ 1u
#define FL_VMA_WRITE 2u
#define FL_VMA_EXEC 4u
#define FL_VMA_SHARED 8u
#define FL_VMA_STACK 16u    /* holds mm->start_stack */
#define FL_VMA_HEAP 32u     /* the brk area */
#define FL_VMA_SPECIAL 64u  /* kernel-provided (vdso, vvar): anonymous with vm_ops */
_Static_assert(sizeof(struct fl_vma_rec) == 56, "fl_vma_rec layout");

/* BPF: resident memory of a process, from the rss_stat tracepoint (bytes). */
struct fl_rss {
	struct fl_rec h;
	__u32 pid;
	__u32 pad;
	__u64 time_ns;
	__u64 anon;
	__u64 file;
	__u64 shmem;
	__u64 swap;
};
_Static_assert(sizeof(struct fl_rss) == 56, "fl_rss layout");

/*
 * Page fault classes (see docs/faults.md for the kernel paths behind each).
 * Counted per (tgid, VMA) in a BPF hash map; the collector drains it.
 */
#define FL_FAULT_CLASSES(X)                                                                      \
	X(MAJOR_FILE, major_file)     /* file page not in the page cache: read from disk */        \
	X(MAJOR_SWAP, major_swap)     /* anon page swapped out: swap-in */                         \
	X(ANON_NEW, anon_new)         /* first touch (write) of an anon page: new zeroed page */   \
	X(ZERO_PAGE, zero_page)       /* first touch (read) of an anon page: shared zero page */   \
	X(PAGECACHE, pagecache)       /* file page found in the page cache and mapped */           \
	X(COW_ANON, cow_anon)         /* write to an anon page shared (after fork): copied */      \
	X(COW_ZERO, cow_zero)         /* write to the zero page: new page */                       \
	X(COW_FILE, cow_file)         /* write to a private file page: copied to anon */           \
	X(COW_REUSE, cow_reuse)       /* write to a present anon page with one owner: reused */    \
	X(WRITE_NOTIFY, write_notify) /* write to a shared mapping's clean page: made writable */  \
	X(OTHER, other)               /* anything else: swap-cache hit, NUMA hinting, ... */       \
	X(RETRY, retry)               /* major only because the fault was retried: no I/O by it */ \
	X(UFFD, uffd)                 /* handed to userfaultfd, resolved by the handler thread */  \
	X(HUGETLB, hugetlb)           /* hugetlbfs page mapped (MAP_HUGETLB, hugetlbfs files) */   \
	X(PFN, pfn)                   /* pfn inserted, no struct page, no rss (vvar, devices) */   \
	X(SPURIOUS, spurious)         /* lost a race: another thread had already fixed the PTE */

#define FL_FAULT_ENUM_(c, name) FL_F_##c,
enum fl_fault_class { FL_FAULT_CLASSES(FL_FAULT_ENUM_) FL_F_NCLASS };
#undef FL_FAULT_ENUM_

/* The classes the kernel counts in maj_flt; every other class is in min_flt. */
#define FL_F_IS_MAJOR(c) ((c) == FL_F_MAJOR_FILE || (c) == FL_F_MAJOR_SWAP || (c) == FL_F_RETRY)

/*
 * Where a fault is counted.  The kernel merges adjacent compatible VMAs
 * (anonymous mmaps with equal flags, brk extensions, pieces re-merged after
 * mprotect) that the collector's model keeps apart, one row per creating
 * call; `piece` tells them apart.  It is the start of the part of the VMA
 * that no call boundary crosses: max(vm_start, the 2 MiB bucket of the
 * address, the last boundary of an address-space call at or below the
 * address), so the model row holding `piece` held the faulting address.
 * `gen` is the process's VMA generation (bumped around every call that may
 * change VMAs): faults of one key all saw one layout, which their latest
 * time (fl_fault_counts.last_ns) names.  `new_image`: the fault hit an
 * address space exec had switched to before its record was written (exec
 * maps the image, clears its .bss and writes its stack first): its rows
 * are the ones that record makes, whatever the fault's time says.
 */
struct fl_fault_key {
	__u32 tgid;
	__u32 gen;          /* low bits of the process's VMA generation at the fault */
	__u64 vm_start;     /* the kernel VMA hit, as it was at fault time */
	__u64 vm_end;       /* 0: VMA unknown (bpf_find_vma busy), piece is the faulting page */
	__u64 piece;        /* vm_start <= piece <= address, no call boundary in (piece, address] */
	__u32 faultline;    /* 1: taken while the thread was inside the shim (FL_SHIM_MARK) */
	__u32 new_image;    /* 1: in the mm of an exec whose record is still to come */
};
_Static_assert(sizeof(struct fl_fault_key) == 40, "fl_fault_key layout");

struct fl_fault_counts {
	__u64 cls[FL_F_NCLASS]; /* by class */
	__u64 read;             /* by access */
	__u64 write;
	__u64 exec;
	__u64 thp;              /* faults that mapped a huge (THP/mTHP) page */
	__u64 last_ns;          /* time of the latest fault counted */
};
_Static_assert(sizeof(struct fl_fault_counts) == 8 * (FL_F_NCLASS + 5), "fl_fault_counts layout");

/* Return addresses a fault site keeps: a short chain, one walk per fault (docs/faults.md "Callers"). */
#define FL_SITE_CALLERS 4

/*
 * Faulting instruction addresses and their callers, per VMA piece hit (see
 * fl_fault_key.piece).  callers[] is what the user stack's frame-pointer
 * chain held, innermost first, 0 past the end of the walk: code built
 * without frame pointers makes it garbage after some frame, which the
 * collector finds from the unwind tables and cuts (FL_CALLER_ENDS).
 */
struct fl_site_key {
	__u32 tgid;
	__u32 cls;          /* enum fl_fault_class */
	__u64 piece;        /* as in fl_fault_key: the model row holding it held the address */
	__u64 ip;           /* instruction pointer at the fault (the kernel's when kernel is 1) */
	__u32 faultline;    /* as in fl_fault_key */
	__u32 kernel;       /* 1: taken in kernel mode (copy_to_user ...): callers[0] is the syscall's user pc */
	__u64 callers[FL_SITE_CALLERS];
};
_Static_assert(sizeof(struct fl_site_key) == 32 + 8 * FL_SITE_CALLERS, "fl_site_key layout");

/*
 * How a fault site's caller chain ends (the store's fault_site.callers_end):
 *   depth: FL_SITE_CALLERS callers, each vouched for; there are more
 *   top: the frame-pointer chain ended (the thread's first frame)
 *   no_frame_pointer: the last frame (the site itself when there is no
 *     caller) keeps no frame pointer at that instruction (built without, a
 *     leaf function, a prologue): its caller cannot be known from the chain
 *   no_unwind_info: no unwind table covers the last frame (JIT or
 *     anonymous code, an unreadable file): whether it keeps one is unknown
 *   not_code: the next return address is in no executable mapping
 */
#define FL_CALLER_ENDS(X) X(DEPTH, depth) X(TOP, top) X(NO_FRAME_POINTER, no_frame_pointer) \
	X(NO_UNWIND_INFO, no_unwind_info) X(NOT_CODE, not_code)

#define FL_CALLER_END_ENUM_(c, name) FL_CALLERS_##c,
enum fl_caller_end { FL_CALLER_ENDS(FL_CALLER_END_ENUM_) FL_CALLERS_NEND };
#undef FL_CALLER_END_ENUM_

#endif /* FAULTLINE_H */
