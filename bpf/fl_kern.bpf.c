// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * fl_kern.bpf.c - faultline's kernel side.
 *
 *  - follows a process tree (sched_process_fork/exec/exit),
 *  - streams the address-space syscalls of followed processes (sys_enter/exit),
 *  - classifies every page fault per (tgid, VMA) in the kernel
 *    (page_fault_user/kernel at entry, rss_stat + mm_page_alloc during,
 *    perf software events PAGE_FAULTS_MIN/MAJ at completion),
 *  - streams rate-limited RSS samples (rss_stat), the peak never dropped.
 * docs/faults.md explains every choice and cites the kernel functions.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "faultline.h"
#include "fl_kern.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* x86 page fault error code (arch/x86/include/asm/trap_pf.h). */
#define PF_PROT  0x1
#define PF_WRITE 0x2
#define PF_USER  0x4
#define PF_INSTR 0x10
/* include/linux/sched.h, include/linux/mm.h, include/linux/sched/signal.h */
#define FL_PF_EXITING  0x00000004
#define FL_PF_MEMALLOC 0x00000800
/* vm_flags (include/linux/mm.h, 6.18) */
#define FL_VM_SHARED   0x00000008ull
#define FL_VM_UFFD_MISSING 0x00000200ull
#define FL_VM_PFNMAP   0x00000400ull
#define FL_VM_UFFD_WP  0x00001000ull
#define FL_VM_HUGETLB  0x00400000ull
#define FL_VM_MIXEDMAP 0x10000000ull
#define FL_VM_UFFD_MINOR (1ull << 41) /* 37 or 38 before 6.16 (docs/faults.md) */
#define FL_VM_UFFD (FL_VM_UFFD_MISSING | FL_VM_UFFD_WP | FL_VM_UFFD_MINOR)
#define FL_SIGNAL_GROUP_EXIT 0x00000004
#define FL_GFP_MOVABLE 0x08     /* ___GFP_MOVABLE_BIT = 3 */
#define FL_PAGE_SHIFT 12
#define FL_RSS_GAP_NS 1000000ull /* at most one fl_rss per process per ms */

/* Not preallocated: creating preallocated entries took milliseconds of every start, and a run follows a few. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct fl_proc);
} tracked SEC(".maps");

/*
 * Per-thread state lives in the task itself (task storage): the lookup is a
 * pointer in task_struct and a small cache, where a hash keyed by tid cost
 * ~100 ns here, five times per fault and on every syscall exit and page
 * allocation machine-wide.  It goes when the task is freed.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fl_thread);
} threads SEC(".maps");

/* The thread's state, or 0 when it has none (not a tracked process's). */
static __always_inline struct fl_thread *thread_of(struct task_struct *t)
{
	return bpf_task_storage_get(&threads, t, 0, 0);
}

/* The thread's state, made (zeroed) when it has none. */
static __always_inline struct fl_thread *thread_get(struct task_struct *t)
{
	return bpf_task_storage_get(&threads, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/*
 * Fault and site aggregates, double-buffered: programs count into the pair
 * `active` names; the collector flips `active`, waits until no program
 * still counts into the other pair (inflight[], per CPU), then reads and
 * empties it.  So no count is lost to a delete racing with an add, and the
 * maps hold only what happened since the last drain.
 *
 * Preallocated (13 MiB for the four): an entry of a map made with
 * BPF_F_NO_PREALLOC comes from the BPF memory allocator and goes back to it
 * when the drain deletes it, whose per-CPU caches are refilled and trimmed
 * by irq_work, a self-IPI (a VM exit on this VM).  churn makes an entry per
 * mapping: the drain's deletes were 11% of the collector's time (7% in
 * unit_free alone), and on_fault took 1,290-1,330 ns a fault against
 * 1,120-1,170 preallocated; the collector's CPU 0.91 -> 0.83 s (5 runs).
 * Creating them costs ~3 ms more of the start, hence 16,384 entries each,
 * not 65,536 (agg_half below keeps them from filling).
 */
#define FL_AGG_ENTRIES 16384
#define FL_AGG_MAP(name, K, V)                          \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_HASH);        \
		__uint(max_entries, FL_AGG_ENTRIES);    \
		__type(key, K);                         \
		__type(value, V);                       \
	} name SEC(".maps")
FL_AGG_MAP(faults0, struct fl_fault_key, struct fl_fault_counts);
FL_AGG_MAP(faults1, struct fl_fault_key, struct fl_fault_counts);
FL_AGG_MAP(sites0, struct fl_site_key, __u64);
FL_AGG_MAP(sites1, struct fl_site_key, __u64);

/*
 * New entries in each pair since its last drain (faults and sites maps
 * together).  The program whose entry makes agg_half of them asks for an
 * early drain (FL_R_DRAIN), so a burst of new VMAs or sites between two
 * 100 ms drains does not fill the maps.  That keeps them small: a drain
 * walks every bucket (262,144 of them cost 2 ms every 100 ms).  agg_half:
 * the loader's, from the maps' size.
 */
__u64 agg_new[2];
const volatile __u64 agg_half = FL_AGG_ENTRIES / 2;

/*
 * 1 while the collector sleeps in epoll_wait (it sets it, then reads the ring
 * once more; fl_bpf_sleep), else 0.  64 bits: the atomics below need them.
 */
volatile __u64 collector_asleep;
volatile __u32 active;   /* which pair programs count into (written by the collector) */
__u64 ns_next;           /* the next address-space namespace (fl_proc.ns) */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} inflight SEC(".maps");

/* Each CPU's run of faults with one key and site, per pair (fl_kern.h, agg_count). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct fl_fault_run);
} runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fl_cut_key);
	__type(value, struct fl_cuts);
} cuts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FL_LOSS_N);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

static __always_inline void lose_n(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&losses, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void lose(__u32 idx)
{
	lose_n(idx, 1);
}

/* ---- RSS ---------------------------------------------------------------- */

/*
 * Kernel layouts that changed (CO-RE flavors: libbpf matches "x___old" to the
 * kernel's "x"; code under a false bpf_core_*_exists() is removed at load).
 * Linux 6.1 and older: mm->rss_stat is a struct of atomic_long_t count[], and
 * with SPLIT_RSS_COUNTING every task caches its own changes to the mm it runs
 * (task->rss_stat, folded into the mm by sync_mm_rss() every 64 faults,
 * mm/memory.c check_sync_rss_stat).  6.2 made mm->rss_stat percpu_counter[]
 * and dropped the task cache.
 */
struct mm_rss_stat___old {
	atomic_long_t count[4];
};

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
};

struct task_rss_stat___old {
	int events;
	int count[4];
};

struct task_struct___old {
	struct task_rss_stat___old rss_stat;
};

#define FL_RSS_ATOMIC bpf_core_type_exists(struct mm_rss_stat___old)
#define FL_SPLIT_RSS bpf_core_field_exists(struct task_struct___old, rss_stat)
#define FL_RSS_EVENTS_SYNC 66 /* task->rss_stat.events while sync_mm_rss() runs (> TASK_RSS_EVENTS_THRESH + 1) */

/*
 * Value of one mm counter: the percpu_counter's global count, clamped at 0,
 * i.e. get_mm_counter() = percpu_counter_read_positive(), the value the
 * rss_stat tracepoint itself reports (include/trace/events/kmem.h).  The
 * per-CPU deltas (at most percpu_counter_batch each, lib/percpu_counter.c)
 * are not added: the kernel's BTF carries no "percpu" type tag on
 * ->counters, so bpf_per_cpu_ptr() refuses it, and this kernel's kallsyms
 * has no data symbols, so no per-CPU offset (this_cpu_off,
 * __per_cpu_offset) can be resolved either.  docs/faults.md gives the bound.
 */
static __always_inline __u64 pc_sum(struct percpu_counter *pc)
{
	__s64 v = pc->count; /* a BTF pointer: a plain load, not a helper call */

	return v < 0 ? 0 : v;
}

/* 6.1 and older: get_mm_counter() = atomic_long_read(), clamped at 0 as the kernel does. */
static __always_inline __u64 atomic_rss(struct mm_struct *mm, int m)
{
	struct mm_struct___old *o = (void *)mm;
	long v;

	switch (m) {
	case 0: v = BPF_CORE_READ(o, rss_stat.count[0].counter); break;
	case 1: v = BPF_CORE_READ(o, rss_stat.count[1].counter); break;
	case 2: v = BPF_CORE_READ(o, rss_stat.count[2].counter); break;
	default: v = BPF_CORE_READ(o, rss_stat.count[3].counter); break;
	}
	return v < 0 ? 0 : v;
}

static __always_inline __u64 rss_member(struct mm_struct *mm, int m)
{
	if (FL_RSS_ATOMIC)
		return atomic_rss(mm, m);
	switch (m) {
	case 0: return pc_sum(&mm->rss_stat[0]);
	case 1: return pc_sum(&mm->rss_stat[1]);
	case 2: return pc_sum(&mm->rss_stat[2]);
	default: return pc_sum(&mm->rss_stat[3]);
	}
}

/* SPLIT_RSS_COUNTING: the current task's unsynced change of counter m. */
static __always_inline int task_rss(struct task_struct *t, int m)
{
	struct task_struct___old *o = (void *)t;

	switch (m) {
	case 0: return BPF_CORE_READ(o, rss_stat.count[0]);
	case 1: return BPF_CORE_READ(o, rss_stat.count[1]);
	case 2: return BPF_CORE_READ(o, rss_stat.count[2]);
	default: return BPF_CORE_READ(o, rss_stat.count[3]);
	}
}

/* A record of nothing but its type (FL_R_WAKE, FL_R_DRAIN), with a wake-up.  A full ring takes
 * none: the collector, busy reading it, wakes on its timeout or drains at its period anyway. */
static __always_inline void signal_collector(__u32 type)
{
	struct fl_rec *w = bpf_ringbuf_reserve(&events, sizeof(*w), 0);

	if (!w)
		return;
	w->type = type;
	w->nframes = 0;
	w->size = sizeof(*w);
	bpf_ringbuf_submit(w, BPF_RB_FORCE_WAKEUP);
}

/*
 * Every record is submitted without a wake-up, unless the collector sleeps:
 * then one FL_R_WAKE record wakes it, and the one program that cleared the
 * flag sends it.  A wake-up is an irq_work self-IPI, in a VM an exit to the
 * host (~1 us): by default the kernel sends one for each record the
 * collector has caught up with, which is every record while it keeps up
 * (churn: on_sys_exit 1.38 us a call).  No wake-up is lost: the atomic read
 * of the flag after the commit is a full barrier, and the collector sets
 * the flag before it reads the ring a last time (fl_bpf_sleep).
 */
static __always_inline void submit(void *r)
{
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	if (__sync_fetch_and_add(&collector_asleep, 0) &&
	    __sync_val_compare_and_swap(&collector_asleep, 1, 0) == 1)
		signal_collector(FL_R_WAKE);
}

static __always_inline void emit_rss(__u32 tgid, __u64 ns, const __u64 *pages, __u64 flags)
{
	struct fl_rss *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		lose(FL_LOSS_RINGBUF);
		return;
	}
	r->h.type = FL_R_RSS;
	r->h.nframes = 0;
	r->h.size = sizeof(*r);
	r->pid = tgid;
	r->pad = 0;
	r->time_ns = ns;
	r->file = pages[0] << FL_PAGE_SHIFT;
	r->anon = pages[1] << FL_PAGE_SHIFT;
	r->swap = pages[2] << FL_PAGE_SHIFT;
	r->shmem = pages[3] << FL_PAGE_SHIFT;
	if (flags)
		bpf_ringbuf_submit(r, flags);
	else
		submit(r);
}

static __always_inline __u64 rss_total(const __u64 *p)
{
	return p[0] + p[1] + p[3];
}

/* A suppressed peak, then the current value if it changed since the last record (flags: the last one's). */
static __always_inline void rss_flush(__u32 tgid, struct fl_proc *p, __u64 now, __u64 flags)
{
	if (p->pend_ns) {
		emit_rss(tgid, p->pend_ns, p->pend, 0);
		if (rss_total(p->pend) > p->peak)
			p->peak = rss_total(p->pend);
		p->pend_ns = 0;
	}
	if (p->dirty) {
		emit_rss(tgid, now, p->rss, flags);
		if (rss_total(p->rss) > p->peak)
			p->peak = rss_total(p->rss);
		p->dirty = 0;
	}
	p->last_emit_ns = now;
}

SEC("tp_btf/rss_stat")
int BPF_PROG(on_rss_stat, struct mm_struct *mm, int member)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p;
	__u64 now, total;

	if (member < 0 || member > 3)
		return 0;
	if ((unsigned long)mm == (unsigned long)cur->mm) {
		struct fl_thread *th = thread_of(cur);

		/* Fault evidence; PF_MEMALLOC: direct reclaim unmapping our own pages. */
		if (th && th->active && !(cur->flags & FL_PF_MEMALLOC)) {
			if (!FL_SPLIT_RSS)
				th->rss_bits |= 1u << member;
			else if (BPF_CORE_READ((struct task_struct___old *)cur, rss_stat.events) >= FL_RSS_EVENTS_SYNC)
				/* sync_mm_rss(): the cache moves into the mm, then is zeroed */
				th->rss_base[member & 3] -= task_rss(cur, member);
			else /* not through the cache (THP: add_mm_counter) */
				th->rss_bits |= 1u << member;
		}
	} else {
		/* Someone else changed this mm (kswapd, process_vm_writev, exit teardown). */
		struct task_struct *o;

		if (!bpf_core_field_exists(mm->owner))
			return 0;
		o = BPF_CORE_READ(mm, owner);
		if (!o || (BPF_CORE_READ(o, flags) & FL_PF_EXITING))
			return 0;
		tgid = BPF_CORE_READ(o, tgid);
	}
	p = bpf_map_lookup_elem(&tracked, &tgid);
	if (!p)
		return 0;

	if (!p->rss_init) {
		p->rss[0] = rss_member(mm, 0);
		p->rss[1] = rss_member(mm, 1);
		p->rss[2] = rss_member(mm, 2);
		p->rss[3] = rss_member(mm, 3);
		p->rss_init = 1;
	} else {
		__u64 v = rss_member(mm, member);

		switch (member) {
		case 0: p->rss[0] = v; break;
		case 1: p->rss[1] = v; break;
		case 2: p->rss[2] = v; break;
		default: p->rss[3] = v; break;
		}
	}
	p->dirty = 1;
	now = bpf_ktime_get_ns();
	total = rss_total(p->rss);
	if (now - p->last_emit_ns >= FL_RSS_GAP_NS) {
		/* A pending peak below the current value adds nothing. */
		if (p->pend_ns && rss_total(p->pend) <= total)
			p->pend_ns = 0;
		rss_flush(tgid, p, now, 0);
	} else if (total > p->peak && (!p->pend_ns || total > rss_total(p->pend))) {
		/* Suppressed, but a new peak: keep it for the next opportunity. */
		p->pend[0] = p->rss[0];
		p->pend[1] = p->rss[1];
		p->pend[2] = p->rss[2];
		p->pend[3] = p->rss[3];
		p->pend_ns = now;
	}
	return 0;
}

/* ---- page faults --------------------------------------------------------- */

/*
 * NUMA hinting faults (do_numa_page) leave no rss trace; task_numa_fault()
 * adds the fault's pages to numa_faults_locality[].  0 without
 * CONFIG_NUMA_BALANCING or while balancing is off (one node).
 */
static __always_inline __u64 numa_faults(struct task_struct *t)
{
	if (!bpf_core_field_exists(t->numa_faults_locality))
		return 0;
	return t->numa_faults_locality[0] + t->numa_faults_locality[1] + t->numa_faults_locality[2];
}

/*
 * Is the current thread inside faultline's shim?  Its busy count sits at a
 * fixed offset from the thread pointer (initial-exec TLS), announced by
 * getpid(FL_SHIM_MARK, offset): faultline.h.  fsbase as the kernel keeps it
 * (arch_prctl, clone's tls); a page of it not present reads as 0.  The
 * target can set this word itself: it can then only make its own faults
 * look like faultline's, which it could fake in other ways too.
 */
static __always_inline __u32 in_shim(const struct fl_proc *p)
{
	struct task_struct *t;
	int busy = 0;

	if (!p->shim_busy)
		return 0;
	t = bpf_get_current_task_btf();
	if (bpf_probe_read_user(&busy, sizeof(busy), (const void *)(t->thread.fsbase + p->shim_busy)))
		return 0;
	return busy > 0;
}

static __always_inline int fault_entry(unsigned long address, struct pt_regs *regs,
				       unsigned long error_code)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_thread *th;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (!p)
		return 0;
	th = thread_get(bpf_get_current_task_btf());
	if (!th)
		return 0; /* counted as FL_LOSS_THREAD at completion */
	th->addr = address;
	th->err = error_code;
	th->ip = regs ? regs->ip : 0;
	th->rss_bits = 0;
	if (FL_SPLIT_RSS) { /* 6.1: the fault's counter moves go to the task cache, no tracepoint */
		struct task_struct *cur = bpf_get_current_task_btf();

		th->rss_base[0] = task_rss(cur, 0);
		th->rss_base[1] = task_rss(cur, 1);
		th->rss_base[2] = task_rss(cur, 2);
		th->rss_base[3] = task_rss(cur, 3);
	}
	th->alloc0 = 0;
	th->allocn = 0;
	th->last_page = 0;
	th->freed = 0;
	th->numa = numa_faults(bpf_get_current_task_btf());
	th->in_shim = in_shim(p);
	th->active = 1;
	return 0;
}

/* Fault entry from user mode (arch/x86/mm/fault.c trace_page_fault_entries). */
SEC("tp_btf/page_fault_user")
int BPF_PROG(on_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	return fault_entry(address, regs, error_code);
}

/* Kernel-mode faults on user addresses (copy_to_user ...) complete as perf events too. */
SEC("tp_btf/page_fault_kernel")
int BPF_PROG(on_fault_kernel, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	if ((long)address < 0)
		return 0;
	return fault_entry(address, regs, error_code);
}

/* Pages allocated inside a fault: a copy (wp_page_copy) vs a reuse; THP. */
/*
 * Write faults racing on one page (two threads writing the same zero page or
 * COW page): the loser either allocated and freed a copy (th->freed), or found
 * the winner's writable PTE and did nothing (handle_pte_fault's pte_same
 * check, or a PTE already writable when it looked), which looks like a
 * wp_page_reuse.  The two differ in what happened to the page before: a
 * wp_page_reuse needs a write-protected PTE, and once a write fault made the
 * page writable only a call that write-protects PTEs (mprotect, fork, a
 * userfaultfd ioctl) or the loss of the PTE (a later fault on the page
 * mapped it again: fault_done clears the slot) makes it write-protected again.
 * So the winner leaves its page and the epoch in a small per-process table
 * (when it allocates its copy, before the PTE changes, and at completion),
 * and a write fault that did nothing on a page made writable in the same
 * epoch is spurious, however late its entry (a vCPU preempted between the
 * MMU's fault and the tracepoint sees the winner already done) or early its
 * completion (before the winner's).  A race of two wp_page_reuse (after a
 * fork) leaves no mark before the winner completes: a loser that completes
 * first is cow_reuse too.  Not seen:
 * ksmd write-protecting a page it then fails to merge, clear_refs (soft
 * dirty); and two pages in one slot at once can make a loser a reuse.
 */
static __always_inline void wp_done(struct fl_proc *p, __u64 addr)
{
	__u32 slot = (addr >> FL_PAGE_SHIFT) & (FL_WP_SLOTS - 1);

	p->wp_page[slot] = addr & ~4095ull;
	p->wp_at[slot] = p->wp_epoch;
}

/* A fault that mapped the page again: its PTE is new, a later write may reuse. */
static __always_inline void wp_forget(struct fl_proc *p, __u64 addr)
{
	__u32 slot = (addr >> FL_PAGE_SHIFT) & (FL_WP_SLOTS - 1);

	if (p->wp_page[slot] == (addr & ~4095ull))
		p->wp_page[slot] = 0;
}

/*
 * wp_page_copy allocates its copy before it installs it: the page is marked
 * from here, so a loser that finds the installed PTE before the winner's
 * completion (fault_done) still sees it marked.
 */
static __always_inline void wp_copying(__u64 addr)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (p)
		wp_done(p, addr);
}

SEC("tp_btf/mm_page_alloc")
int BPF_PROG(on_page_alloc, struct page *page, unsigned int order, gfp_t gfp, int migratetype)
{
	struct fl_thread *th;

	if (!page || !(gfp & FL_GFP_MOVABLE))
		return 0;
	th = thread_of(bpf_get_current_task_btf());
	if (!th || !th->active)
		return 0;
	if (order)
		th->allocn++;
	else
		th->alloc0++;
	th->last_page = (__u64)page;
	if ((th->err & (PF_WRITE | PF_PROT)) == (PF_WRITE | PF_PROT))
		wp_copying(th->addr);
	return 0;
}

/*
 * A page the fault allocated and freed again: it lost a race.  wp_page_copy,
 * do_anonymous_page, do_cow_fault and the THP paths allocate before they take
 * the page table lock; when the PTE changed meanwhile (another thread fixed
 * it) they put the new folio back (mm/memory.c: !pte_same, vmf_pte_changed).
 */
SEC("tp_btf/mm_page_free")
int BPF_PROG(on_page_free, struct page *page, unsigned int order)
{
	struct fl_thread *th = thread_of(bpf_get_current_task_btf());

	if (th && th->active && th->last_page == (__u64)page)
		th->freed = 1;
	return 0;
}

/* What classify() needs of a VMA. */
struct vma_info {
	__u64 start;
	__u64 end;            /* 0: VMA unknown */
	__u64 flags;
	__u32 anon;           /* vma_is_anonymous(): no vm_ops (a private /dev/zero map has a vm_file) */
	__u32 mkwrite;        /* vm_ops->page_mkwrite or pfn_mkwrite: do_shared_fault notifies */
};

static __always_inline void vma_fill(struct vm_area_struct *vma, struct vma_info *vi)
{
	const struct vm_operations_struct *ops = BPF_CORE_READ(vma, vm_ops);

	vi->start = BPF_CORE_READ(vma, vm_start);
	vi->end = BPF_CORE_READ(vma, vm_end);
	vi->flags = BPF_CORE_READ(vma, vm_flags);
	vi->anon = !ops;
	vi->mkwrite = ops && (BPF_CORE_READ(ops, page_mkwrite) || BPF_CORE_READ(ops, pfn_mkwrite));
}

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, struct vma_info *vi)
{
	vma_fill(vma, vi);
	return 0;
}

/* The loader clears it without a maple tree (before 6.1) or under FAULTLINE_PRETEND_MISSING=vma_tree. */
const volatile __u32 fl_tree_walk = 1;

/* lib/maple_tree.c encoding of a node pointer. */
#define FL_MAPLE_NODE_MASK 255ul
#define FL_MAPLE_TYPE(enode) (((unsigned long)(enode) >> 3) & 15)
#define FL_MAPLE_LEAF_64   1
#define FL_MAPLE_RANGE_64  2
#define FL_MAPLE_ARANGE_64 3
#define FL_MAPLE_DEPTH     8

/*
 * One level of the walk: the slot of node enode (at depth) whose range holds
 * addr, or 0.  A global function, so the verifier checks its search of up to
 * 15 pivots once, not for every level of every path of its callers (it was
 * half of the instructions on_fault and on_sys_exit took to verify).
 */
__noinline __u64 maple_step(__u64 enode, __u64 addr, __u32 depth)
{
	unsigned long type = FL_MAPLE_TYPE(enode), p;
	struct maple_node *node;
	unsigned long *piv;
	void **slot;
	int nslot, i;
	void *next;

	/* The root is tagged MAPLE_ROOT_NODE (2); children carry MAPLE_ENODE_NULL (4). */
	if (enode < 4096 || !(enode & (depth ? 4 : 2)))
		return 0; /* empty or single-entry tree */
	node = (void *)(enode & ~FL_MAPLE_NODE_MASK);
	if (type == FL_MAPLE_ARANGE_64) {
		piv = node->ma64.pivot;
		slot = node->ma64.slot;
		nslot = 10;
	} else if (type == FL_MAPLE_RANGE_64 || type == FL_MAPLE_LEAF_64) {
		piv = node->mr64.pivot;
		slot = node->mr64.slot;
		nslot = 16;
	} else {
		return 0;
	}
	/* The first slot whose pivot (inclusive upper bound) reaches addr; a 0 pivot ends the data. */
	for (i = 0; i < 15; i++) {
		if (i >= nslot - 1)
			break;
		if (bpf_probe_read_kernel(&p, sizeof(p), &piv[i]))
			return 0;
		if (addr <= p || (i && !p))
			break;
	}
	if (bpf_probe_read_kernel(&next, sizeof(next), &slot[i]))
		return 0;
	return (__u64)next;
}

/*
 * The VMA containing addr, read from mm->mm_mt without mmap_lock, as
 * lock_vma_under_rcu() does: maple tree nodes are freed by RCU, and a BPF
 * program runs inside an RCU read section.  The faulting thread still holds
 * the VMA (its per-VMA read lock or mmap_lock) when mm_account_fault() runs,
 * so the VMA itself is stable; the result is checked (vm_mm, range) because
 * a node may be replaced while we read it.  bpf_find_vma() instead takes
 * mmap_read_trylock(), which fails whenever another thread of the process
 * is in mmap/munmap/mprotect.
 */
static __always_inline int vma_walk(struct mm_struct *mm, __u64 addr, struct vma_info *vi)
{
	struct vm_area_struct *vma = 0;
	__u64 enode;

	if (!fl_tree_walk)
		return -1;
	enode = (__u64)BPF_CORE_READ(mm, mm_mt.ma_root);
	for (__u32 depth = 0; depth < FL_MAPLE_DEPTH && enode; depth++) {
		unsigned long type = FL_MAPLE_TYPE(enode);

		enode = maple_step(enode, addr, depth);
		if (type == FL_MAPLE_LEAF_64) {
			vma = (void *)enode;
			break;
		}
	}
	if (!vma || BPF_CORE_READ(vma, vm_mm) != mm)
		return -1;
	vma_fill(vma, vi);
	return addr >= vi->start && addr < vi->end ? 0 : -1;
}

/*
 * The current task's VMA holding addr into *vi: the tree walk first, then
 * bpf_find_vma.  Returns 0, or -1 (vi->end 0) when neither found it.  A
 * global function: the verifier checks it once, not on every path of each
 * caller (the fault program's load took 0.5 s with it inlined).
 */
__noinline int vma_at(__u64 addr, struct vma_info *vi)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct vma_info found = {}; /* bpf_find_vma's context must be on this stack */

	if (!vi)
		return -1;
	if (!vma_walk(task->mm, addr, vi))
		return 0;
	vi->end = 0;
	if (bpf_find_vma(task, addr, vma_cb, &found, 0) || !found.end)
		return -1;
	*vi = found;
	return 0;
}

/*
 * The class of a completed fault (enum fl_fault_class; docs/faults.md has
 * the kernel paths).  known: entry state valid; vi->end == 0: VMA unknown.
 * Evidence: bits = rss counters this thread moved, alloc0 = order-0 movable
 * pages it allocated and kept (a lost race frees its page: spurious), raced =
 * another thread's write fault on the page completed after this one began,
 * numa = task_numa_fault() ran.
 */
static __always_inline __u32 classify(int known, __u64 err, __u32 bits, __u32 alloc0, int spurious,
				      int raced, int numa, int major, const struct vma_info *vi)
{
	int write = err & PF_WRITE, present = err & PF_PROT;
	int anonb = bits & (1u << 1), fileb = bits & (1u << 0);
	int swapb = bits & (1u << 2), shmb = bits & (1u << 3);
	int anon_vma = vi->end ? vi->anon : !(fileb || shmb);

	if (major) {
		/*
		 * VM_FAULT_MAJOR (filemap_fault, shmem_swapin_folio, do_swap_page)
		 * or FAULT_FLAG_TRIED: the evidence says which I/O this thread did.
		 */
		if (swapb || (shmb && !fileb))
			return FL_F_MAJOR_SWAP; /* anon swap-in; shmem swap-in moves shmem only */
		if (fileb || (anonb && !anon_vma))
			return FL_F_MAJOR_FILE; /* mapped after the read; do_cow_fault: anon only */
		if (anonb)
			return FL_F_MAJOR_SWAP;
		return FL_F_RETRY;
	}
	if (!known)
		return FL_F_OTHER;
	if (swapb) /* minor swap-in from the swap cache */
		return FL_F_OTHER;
	if (vi->end && (vi->flags & FL_VM_HUGETLB)) /* hugetlb_fault: no mm counter moves */
		return FL_F_HUGETLB;
	/*
	 * handle_userfault(): the handler thread maps the page (UFFDIO_COPY,
	 * UFFDIO_WRITEPROTECT), then the fault is retried and finds it done.
	 * do_anonymous_page allocates (and frees) a page before it hands a
	 * write fault over, so this test comes before the lost-race one.
	 */
	if (vi->end && (vi->flags & FL_VM_UFFD) && !bits && !alloc0)
		return FL_F_UFFD;
	if (spurious && !bits)
		return FL_F_SPURIOUS;
	if (numa && !bits) /* do_numa_page */
		return FL_F_OTHER;
	if (vi->end) {
		int shared = vi->flags & FL_VM_SHARED;

		if ((vi->flags & (FL_VM_PFNMAP | FL_VM_MIXEDMAP)) && !bits)
			return FL_F_PFN; /* vmf_insert_pfn: no struct page, no rss */
		/*
		 * "Not present" is what the MMU saw.  By the time the kernel
		 * looked, another thread may have mapped the page (or been midway
		 * through a COW: ptep_clear_flush, then the new PTE), and the
		 * fault did nothing: a write that allocated nothing, a file read
		 * that mapped nothing.
		 */
		if (!present) {
			if (vi->anon) /* do_anonymous_page: a write always allocates */
				return anonb ? FL_F_ANON_NEW : (write ? FL_F_SPURIOUS : FL_F_ZERO_PAGE);
			if (write && !shared) /* do_cow_fault */
				return anonb ? FL_F_COW_FILE : FL_F_SPURIOUS;
			if (write) /* do_shared_fault: do_page_mkwrite iff ->page_mkwrite */
				return vi->mkwrite ? FL_F_WRITE_NOTIFY : FL_F_PAGECACHE;
			/* do_read_fault (maybe fault-around) */
			return (fileb || shmb || anonb) ? FL_F_PAGECACHE : FL_F_SPURIOUS;
		}
		if (write) { /* do_wp_page */
			if (shared) /* wp_page_shared / wp_pfn_shared */
				return FL_F_WRITE_NOTIFY;
			if (fileb || shmb) /* wp_page_copy of a page-cache page: dec file or shmem, inc anon */
				return FL_F_COW_FILE;
			if (anonb) /* wp_page_copy of the zero page: inc anon only */
				return FL_F_COW_ZERO;
			if (alloc0) /* wp_page_copy anon -> anon: no counter moves */
				return FL_F_COW_ANON;
			/* wp_page_reuse, unless another thread wrote the page meanwhile */
			return raced ? FL_F_SPURIOUS : FL_F_COW_REUSE;
		}
		return FL_F_OTHER;
	}
	/* VMA unknown: rss and allocation evidence only (docs/faults.md). */
	if (!present) {
		if (fileb || shmb)
			return FL_F_PAGECACHE;
		if (anonb)
			return FL_F_ANON_NEW;
		return write ? FL_F_OTHER : FL_F_ZERO_PAGE;
	}
	if (write) {
		if (fileb || shmb)
			return FL_F_COW_FILE;
		if (anonb)
			return FL_F_COW_ZERO;
		return alloc0 ? FL_F_COW_ANON : FL_F_COW_REUSE;
	}
	return FL_F_OTHER;
}

/* What classify() weighs, in one struct: a global function takes at most five arguments. */
struct evidence {
	__u64 err;
	__u32 known, bits, alloc0, spurious, raced, numa, major, pad;
	struct vma_info vi;
};

/* classify() as a global function: verified once, its branches not multiplied by the caller's. */
__noinline int classify_fault(const struct evidence *e)
{
	__u32 cls;

	if (!e)
		return FL_F_OTHER;
	cls = classify(e->known, e->err, e->bits, e->alloc0, e->spurious, e->raced, e->numa, e->major, &e->vi);
	return cls < FL_F_NCLASS ? cls : FL_F_OTHER;
}

static __always_inline int wp_raced(struct fl_proc *p, __u64 addr)
{
	__u32 slot = (addr >> FL_PAGE_SHIFT) & (FL_WP_SLOTS - 1);

	return p->wp_page[slot] == (addr & ~4095ull) && p->wp_at[slot] == p->wp_epoch;
}

/*
 * Whether the fault mapped a huge folio (THP or mTHP): an order > 0 movable
 * page was allocated and the fault mapped new anon or shmem memory with it.
 * Readahead also allocates large page-cache folios during a fault (ext4,
 * xfs), which a file fault maps by PTEs: not counted.
 */
static __always_inline int mapped_huge(__u32 cls, __u32 allocn, __u32 bits)
{
	if (!allocn)
		return 0;
	if (cls == FL_F_ANON_NEW)
		return 1;
	return (cls == FL_F_PAGECACHE || cls == FL_F_WRITE_NOTIFY) && (bits & (1u << 3));
}

/* ---- where a fault is counted (faultline.h fl_fault_key) ------------------ */

/* Index of the highest set bit of x (x != 0). */
static __always_inline __u32 top_bit(__u64 x)
{
	__u32 r = 0;

	if (x >> 32) { x >>= 32; r += 32; }
	if (x >> 16) { x >>= 16; r += 16; }
	if (x >> 8) { x >>= 8; r += 8; }
	if (x >> 4) { x >>= 4; r += 4; }
	if (x >> 2) { x >>= 2; r += 2; }
	if (x >> 1) r += 1;
	return r;
}

/*
 * The word k & 7 of c, with the mask kept in the program: clang drops it
 * where it can prove k <= 7, and 6.1's verifier cannot, and refuses the load.
 */
static __always_inline __u64 cut_word(const struct fl_cuts *c, __u32 k)
{
	asm volatile("" : "+r"(k));
	return c->w[k & 7];
}

/* The last cut at or below page i of the bucket, or -1. */
static __always_inline int cut_at_or_below(const struct fl_cuts *c, __u32 i)
{
	__u32 w = (i >> 6) & 7, b = i & 63;
	__u64 m = c->w[w] & (b == 63 ? ~0ull : (2ull << b) - 1);

	if (m)
		return (w << 6) + top_bit(m);
	for (int j = 1; j < 8; j++) {
		int k = (int)w - j;

		if (k < 0)
			break;
		if (cut_word(c, k))
			return ((k & 7) << 6) + top_bit(cut_word(c, k));
	}
	return -1;
}

/* The first cut above page i of the bucket, or 512. */
static __always_inline int cut_above(const struct fl_cuts *c, __u32 i)
{
	__u32 w = (i >> 6) & 7, b = i & 63;
	__u64 m = b == 63 ? 0 : c->w[w] & ~((2ull << b) - 1);

	if (m)
		return (w << 6) + top_bit(m & -m);
	for (int j = 1; j < 8; j++) {
		__u32 k = w + j;

		if (k > 7)
			break;
		if (cut_word(c, k))
			return ((k & 7) << 6) + top_bit(cut_word(c, k) & -cut_word(c, k));
	}
	return 512;
}

/*
 * The cuts around page addr in its bucket, packed: (last cut at or below
 * it, + 1: 0 = none) | (first cut above it: 512 = none) << 10.  A global
 * function, so the verifier checks it once instead of on every path of the
 * fault program.
 */
__noinline int cut_span(__u64 ns, __u64 addr)
{
	struct fl_cut_key ck = { .ns = ns, .bucket = addr >> FL_CUT_SHIFT };
	struct fl_cuts *c = bpf_map_lookup_elem(&cuts, &ck);
	__u32 i = (addr >> FL_PAGE_SHIFT) & 511;

	if (!c)
		return 512 << 10;
	return (cut_at_or_below(c, i) + 1) | (cut_above(c, i) << 10);
}

/*
 * The piece of VMA vi holding addr: [lo, hi) inside the VMA and inside
 * addr's 2 MiB bucket, crossed by no cut.  Returns lo; the thread keeps
 * [lo, hi) for its next fault under the same VMA generation.
 */
static __always_inline __u64 piece_of(__u64 ns, __u64 addr, const struct vma_info *vi,
				      struct fl_thread *th, __u64 gen)
{
	__u64 base = addr & ~((1ull << FL_CUT_SHIFT) - 1);
	int span = cut_span(ns, addr), below = span & 1023, above = (span >> 10) & 1023;
	__u64 lo = base + ((__u64)(below ? below - 1 : 0) << FL_PAGE_SHIFT);
	__u64 hi = base + ((__u64)above << FL_PAGE_SHIFT);

	if (lo < vi->start)
		lo = vi->start;
	if (hi > vi->end)
		hi = vi->end;
	if (th && th->v_gen == gen) {
		th->p_lo = lo;
		th->p_hi = hi;
	}
	return lo;
}

/* A call began or ended at addr (rounded down to its page).  Global: verified once. */
__noinline int add_cut(__u64 ns, __u64 addr)
{
	struct fl_cut_key ck = { .ns = ns, .bucket = addr >> FL_CUT_SHIFT };
	__u32 i = (addr >> FL_PAGE_SHIFT) & 511;
	struct fl_cuts *c = bpf_map_lookup_elem(&cuts, &ck);

	if (!c) {
		struct fl_cuts z = {};

		bpf_map_update_elem(&cuts, &ck, &z, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&cuts, &ck);
		if (!c) {
			lose(FL_LOSS_CUTS);
			return 0;
		}
	}
	if (!(c->w[(i >> 6) & 7] & (1ull << (i & 63))))
		__sync_fetch_and_or(&c->w[(i >> 6) & 7], 1ull << (i & 63));
	return 0;
}

/* Both ends of [addr, addr + len), the end rounded up to a page as the kernel does. */
static __always_inline void add_cuts(__u64 ns, __u64 addr, __u64 len)
{
	add_cut(ns, addr);
	add_cut(ns, (addr + len + 4095) & ~4095ull);
}

/*
 * Count into the aggregate pair `active` names, announced in inflight[] so
 * that the collector never empties a map a program still counts into (a
 * store-then-check on both sides: Dekker's).
 */
static __always_inline __u64 *inflight_enter(__u32 *idx)
{
	__u32 i = active & 1;
	__u64 *f = bpf_map_lookup_elem(&inflight, &i);

	if (!f)
		return 0;
	__sync_fetch_and_add(f, 1);
	if ((active & 1) != i) {
		__sync_fetch_and_add(f, -1);
		i ^= 1;
		f = bpf_map_lookup_elem(&inflight, &i);
		if (!f)
			return 0;
		__sync_fetch_and_add(f, 1);
	}
	*idx = i;
	return f;
}

/*
 * Key's entry in map (of pair idx), for the caller to add val to (a run's
 * counts, or its faults at its site); NULL when val went in as a new entry,
 * or when the map had no room (the run's *faults then counted as lost to
 * `loss`).  A new key costs a lookup and an insert, not an insert of zeros
 * and a lookup more.  At agg_half new entries in the pair since its drain,
 * ask for an early one.
 */
static __always_inline void *agg_add(void *map, const void *key, const void *val, __u32 idx, __u32 loss,
				     const __u64 *faults)
{
	void *e = bpf_map_lookup_elem(map, key);

	if (e)
		return e;
	if (!bpf_map_update_elem(map, key, val, BPF_NOEXIST)) {
		if (__sync_fetch_and_add(&agg_new[idx & 1], 1) + 1 == agg_half)
			signal_collector(FL_R_DRAIN);
		return NULL;
	}
	e = bpf_map_lookup_elem(map, key); /* another CPU made it meanwhile, or no room */
	if (!e)
		lose_n(loss, *faults);
	return e;
}

/* A run's counts when it starts (not on the stack: with the caller's, 6.1 allows 512 bytes). */
static const struct fl_fault_counts counts_zero;

/* Whether the fault (k, sk) continues run r: the same key and site (a run without a key: tgid 0). */
static __always_inline int same_run(const struct fl_fault_run *r, const struct fl_fault_key *k,
				    const struct fl_site_key *sk)
{
	const __u64 *a = (const __u64 *)&r->key, *b = (const __u64 *)k;
	const __u64 *x = (const __u64 *)&r->site, *y = (const __u64 *)sk;
	__u64 d = 0;

	for (int i = 0; i < sizeof(*k) / 8; i++)
		d |= a[i] ^ b[i];
	for (int i = 0; i < sizeof(*sk) / 8; i++)
		d |= x[i] ^ y[i];
	return !d && r->key.tgid;
}

/*
 * Room for one map key on the stack (6.1 takes map keys from the stack
 * only, not from a map value or an argument), the fault key's, then the
 * site key's: one buffer, as this frame and fault_done's must fit in 512
 * bytes together (6.1 to 6.12 refused 544).
 */
union agg_key {
	struct fl_fault_key k;
	struct fl_site_key s;
};

/*
 * Adds run r to the maps of pair idx: its counts to its key's entry, its
 * faults to its site's (site_n, which is also read + write + exec: what a
 * full map loses, either one).
 */
static __always_inline void run_flush(const struct fl_fault_run *r, __u32 idx, union agg_key *b)
{
	const __u64 *from = (const __u64 *)&r->counts;
	struct fl_fault_counts *c;
	__u64 *n, *to;

	b->k = r->key;
	c = idx ? agg_add(&faults1, &b->k, &r->counts, idx, FL_LOSS_FAULT_MAP, &r->site_n)
		: agg_add(&faults0, &b->k, &r->counts, idx, FL_LOSS_FAULT_MAP, &r->site_n);
	if (c) {
		to = (__u64 *)c;
		/* every member but last_ns: the classes, read, write, exec, thp (faultline.h's layout) */
		for (int i = 0; i < sizeof(*c) / 8 - 1; i++)
			if (from[i])
				__sync_fetch_and_add(&to[i], from[i]);
		if (r->counts.last_ns > c->last_ns) /* a later fault of another CPU may have set it */
			c->last_ns = r->counts.last_ns;
	}
	b->s = r->site;
	n = idx ? agg_add(&sites1, &b->s, &r->site_n, idx, FL_LOSS_SITE_MAP, &r->site_n)
		: agg_add(&sites0, &b->s, &r->site_n, idx, FL_LOSS_SITE_MAP, &r->site_n);
	if (n)
		__sync_fetch_and_add(n, r->site_n);
}

/* A fault as count_fault counts it, in one register (agg_count's frame holds fewer spills). */
#define HOW_EXEC (1u << 8)
#define HOW_WRITE (1u << 9)
#define HOW_HUGE (1u << 10)

static __always_inline __u32 fault_how(__u32 cls, __u64 err, __u32 allocn)
{
	return cls | (err & PF_INSTR ? HOW_EXEC : err & PF_WRITE ? HOW_WRITE : 0) | (allocn ? HOW_HUGE : 0);
}

/*
 * One fault into counts c of this CPU's run, plainly: only this program
 * writes it, on this CPU, with preemption off (a perf overflow handler), and
 * the collector reads it only once no program counts into its pair
 * (inflight).  Its class, its access, a huge page (fault_how).
 */
static __always_inline void count_fault(struct fl_fault_counts *c, __u32 how)
{
	__u32 cls = how & 0xff;

	/* bounded again where it is used: clang may check a copy the verifier does not follow */
	asm volatile("" : "+r"(cls));
	if (cls < FL_F_NCLASS)
		c->cls[cls]++;
	if (how & HOW_EXEC)
		c->exec++;
	else if (how & HOW_WRITE)
		c->write++;
	else
		c->read++;
	if (how & HOW_HUGE)
		c->thp++;
	c->last_ns = bpf_ktime_get_ns();
}

/*
 * Count one fault into the pair `active` names, in this CPU's run: the
 * faults in a row with one key and site are counted there, with no hash
 * lookup, until another comes (the run then goes to the maps, and the new
 * fault starts the next run) or the collector drains the pair, which reads
 * every CPU's run.  touch: 511 faults of every 512 in the run; the two map
 * updates were half of this program's time.
 * A global function, verified once (see vma_at).
 */
__noinline int agg_count(const struct fl_fault_key *kp, const struct fl_site_key *skp,
			 __u32 cls, __u64 err, __u32 allocn)
{
	union agg_key b;
	struct fl_fault_run *r;
	__u32 how = fault_how(cls, err, allocn), idx = 0;
	__u64 *f;

	if (!kp || !skp || cls >= FL_F_NCLASS)
		return 0;
	f = inflight_enter(&idx);
	r = bpf_map_lookup_elem(&runs, &idx);
	if (!r) { /* never: a per-CPU array's entry */
		lose(FL_LOSS_FAULT_MAP);
		goto out;
	}
	if (!same_run(r, kp, skp)) {
		if (r->site_n)
			run_flush(r, idx, &b);
		r->key = *kp;
		r->site = *skp;
		r->counts = counts_zero;
		r->site_n = 0;
	}
	count_fault(&r->counts, how);
	r->site_n++;
out:
	if (f)
		__sync_fetch_and_add(f, -1);
	return 0;
}

/* 6.1 (SPLIT_RSS_COUNTING): the counters the fault moved in the task's cache. */
static __always_inline __u32 split_rss_bits(const struct fl_thread *th)
{
	struct task_struct *cur;
	__u32 bits = 0;

	if (!FL_SPLIT_RSS)
		return 0;
	cur = bpf_get_current_task_btf();
	for (int m = 0; m < 4; m++)
		if (task_rss(cur, m) != th->rss_base[m])
			bits |= 1u << m;
	return bits;
}

/*
 * The callers of a fault (fl_site_key.callers): the return addresses of the
 * user stack's frame-pointer chain, from the registers of the fault, or,
 * for one taken in kernel mode, those the syscall saved (then callers[0] is
 * its user pc).  Code built without frame pointers keeps anything in rbp:
 * the walk stops at a frame that is not above the previous one within
 * FL_FRAME_SPAN, which keeps most such garbage out of the site keys; the
 * collector keeps only the frames the unwind tables vouch for.  Four user
 * reads of 16 bytes at most, on stack pages just used.
 */
#define FL_FRAME_SPAN (8ull << 20)
static __always_inline void callers_of(struct bpf_perf_event_data *ctx, int kernel, __u64 *out)
{
	__u64 fp = ctx->regs.bp, sp = ctx->regs.sp, frame[2];

	if (kernel) {
		struct pt_regs *u = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

		fp = u->bp;
		sp = u->sp;
		out[0] = u->ip;
	}
#pragma unroll
	for (int i = 0; i < FL_SITE_CALLERS; i++) {
		if (i == 0 && kernel)
			continue;
		if (fp < sp || fp - sp > FL_FRAME_SPAN || (fp & 7))
			break;
		if (bpf_probe_read_user(frame, sizeof(frame), (const void *)fp))
			break;
		out[i] = frame[1];
		sp = fp + sizeof(frame);
		fp = frame[0];
	}
}

static __always_inline int fault_done(struct bpf_perf_event_data *ctx, int major)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct fl_proc *p;
	struct fl_thread *th;
	struct fl_fault_key k = {};
	struct fl_site_key sk = {};
	struct evidence ev = {};
	struct vma_info *vi = &ev.vi; /* one copy: the stack is at its limit (see p->mm below) */
	__u64 addr = ctx->addr, err = 0, ip = 0, gen, mm;
	__u32 bits = 0, alloc0 = 0, allocn = 0, cls;
	int known = 0, spurious = 0, numa = 0, shim = 0;

	p = bpf_map_lookup_elem(&tracked, &tgid);
	if (!p)
		return 0;
	task = bpf_get_current_task_btf();
	/*
	 * exec switches mm, maps the new image and faults on it (.bss cleared,
	 * the stack written) before its tracepoint (task_exec) runs: such a
	 * fault is the coming image's (fl_fault_key.new_image), and the
	 * thread's cached VMA and piece, of the old mm, say nothing about it.
	 * It gets a generation of its own (top bit set), which no cache entry
	 * of the old mm matches, and the flag goes into the key only at the
	 * end: a branch or an unknown stack slot this early cost the verifier
	 * 24% more instructions.  The stack is at its limit: this frame,
	 * rounded up to 32 bytes, and agg_count's must fit in 512 (6.1 to 6.12
	 * refused 544); llvm-objdump's deepest r10 offset here is 336.
	 */
	mm = (__u64)task->mm; /* read once, before any branch: each read costs the verifier a BTF name search */
	if (!p->mm)
		p->mm = mm; /* tracked from user space: the image it runs now */
	gen = p->vma_gen | (__u64)(p->mm != mm) << 63; /* a new image's own generation (above) */
	th = thread_of(task);
	if (th && th->active && th->addr == addr) {
		known = 1;
		shim = th->in_shim;
		err = th->err;
		ip = th->ip;
		bits = th->rss_bits | split_rss_bits(th);
		alloc0 = th->alloc0;
		allocn = th->allocn;
		spurious = th->freed;
		if (spurious) { /* the freed page is not kept */
			if (alloc0)
				alloc0--;
			else if (allocn)
				allocn--;
		}
		numa = th->numa != numa_faults(task);
	}
	if (!known)
		lose(FL_LOSS_THREAD);

	/*
	 * mm_account_fault() bumped task->min_flt or maj_flt just before us;
	 * what the process's counters hold beyond the faults seen here (and its
	 * counts before tracking) the kernel counted without a perf event: gup.
	 */
	if (major)
		__sync_fetch_and_add(&p->seen_maj, 1);
	else
		__sync_fetch_and_add(&p->seen_min, 1);
	if (th)
		th->active = 0;

	k.tgid = tgid;
	k.gen = (__u32)gen;
	k.faultline = shim;
	if (th && th->v_end && addr >= th->v_start && addr < th->v_end && th->v_gen == gen) {
		/*
		 * The VMA this thread hit last, unchanged since (no call that may
		 * change VMAs began or ended in the process).
		 */
		vi->start = th->v_start;
		vi->end = th->v_end;
		vi->flags = th->v_flags;
		vi->anon = th->v_anon;
		vi->mkwrite = th->v_mkwrite;
	} else {
		vma_at(addr, vi);
		if (vi->end && th) {
			th->v_start = vi->start;
			th->v_end = vi->end;
			th->v_flags = vi->flags;
			th->v_anon = vi->anon;
			th->v_mkwrite = vi->mkwrite;
			th->v_gen = gen;
			th->p_hi = 0;
		}
	}
	if (vi->end) {
		k.vm_start = vi->start;
		k.vm_end = vi->end;
	} else {
		/* Neither the tree walk nor bpf_find_vma found it: count by address. */
		k.vm_start = addr & ~4095ull;
		k.vm_end = 0;
		lose(FL_LOSS_FIND_VMA);
	}
	if (!vi->end)
		k.piece = k.vm_start;
	else if (th && th->v_gen == gen && addr >= th->p_lo && addr < th->p_hi)
		k.piece = th->p_lo;
	else
		k.piece = piece_of(p->ns, addr, vi, th, gen);
	ev.err = err;
	ev.known = known;
	ev.bits = bits;
	ev.alloc0 = alloc0;
	ev.spurious = spurious;
	ev.raced = wp_raced(p, addr);
	ev.numa = numa;
	ev.major = major;
	cls = classify_fault(&ev);
	if (cls >= FL_F_NCLASS) /* the verifier knows nothing of a global function's result */
		cls = FL_F_OTHER;
	if (cls == FL_F_COW_ANON || cls == FL_F_COW_ZERO || cls == FL_F_COW_FILE || cls == FL_F_COW_REUSE)
		wp_done(p, addr);
	else if (cls != FL_F_SPURIOUS)
		wp_forget(p, addr);

	sk.tgid = tgid;
	sk.cls = cls;
	sk.piece = k.piece;
	sk.ip = ip;
	sk.faultline = k.faultline;
	if (known) {
		sk.kernel = !(err & PF_USER);
		if (!(gen >> 63)) /* else the user frames are the old image's execve caller */
			callers_of(ctx, sk.kernel, sk.callers);
	}
	k.new_image = gen >> 63;
	agg_count(&k, &sk, cls, err, mapped_huge(cls, allocn, bits));
	return 0;
}

/*
 * Attached per CPU to PERF_COUNT_SW_PAGE_FAULTS_MIN (cookie 0) and _MAJ
 * (cookie 1), sample_period 1 (mm_account_fault).  One program for both:
 * the kernel verifies it once.
 */
SEC("perf_event")
int on_fault(struct bpf_perf_event_data *ctx)
{
	return fault_done(ctx, bpf_get_attach_cookie(ctx) != 0);
}

/* ---- lifecycle ----------------------------------------------------------- */

static __always_inline struct fl_task *task_rec(__u32 kind, struct task_struct *t)
{
	struct fl_task *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		lose(FL_LOSS_RINGBUF);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->h.type = FL_R_TASK;
	r->h.size = sizeof(*r);
	r->kind = kind;
	r->pid = BPF_CORE_READ(t, tgid);
	r->tid = BPF_CORE_READ(t, pid);
	r->ppid = BPF_CORE_READ(t, real_parent, tgid);
	r->time_ns = bpf_ktime_get_ns();
	BPF_CORE_READ_STR_INTO(&r->comm, t, comm);
	return r;
}

/* The initial state of a forked process (too large for the BPF stack). */
static const struct fl_proc proc_new;

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct fl_proc *pp = bpf_map_lookup_elem(&tracked, &ptgid), *np;
	struct fl_task *r;

	if (!pp)
		return 0;
	if (!thread_get(child))
		lose(FL_LOSS_THREAD);
	if (ctgid != ptgid && bpf_map_update_elem(&tracked, &ctgid, &proc_new, BPF_ANY))
		lose(FL_LOSS_THREAD);
	if (ctgid != ptgid) {
		/* The child's address space is a copy: it shares the parent's cuts (extra ones only split keys). */
		np = bpf_map_lookup_elem(&tracked, &ctgid);
		if (np) {
			np->ns = pp->ns;
			np->ns_shared = 1;
			pp->ns_shared = 1;
			np->shim_busy = pp->shim_busy; /* the same image, its TLS layout too */
			np->mm = (__u64)BPF_CORE_READ(child, mm); /* a helper, not a BTF access: cheaper to verify */
		}
	}
	r = task_rec(FL_T_FORK, child);
	if (!r)
		return 0;
	r->ppid = ptgid;
	r->is_thread = ctgid == ptgid;
	submit(r);
	return 0;
}

/*
 * The task VMA iterator's kfuncs (6.4+), called through placeholder ids the
 * loader replaces with the kernel's BTF ids of these functions (loader.c
 * patch_kfuncs), as libbpf does for `extern ... __ksym`.  Declared as
 * externs, they would make libbpf parse the kernel's whole BTF at every
 * start (~20 ms) to find three ids that are known once per boot.  Only
 * on_exec_vmas calls them; the loader loads it where the iterator exists.
 */
static int (*const bpf_iter_task_vma_new)(struct bpf_iter_task_vma *it, struct task_struct *task, __u64 addr) =
	(void *)(FL_KFUNC_PLACEHOLDER + FL_KF_ITER_TASK_VMA_NEW);
static struct vm_area_struct *(*const bpf_iter_task_vma_next)(struct bpf_iter_task_vma *it) =
	(void *)(FL_KFUNC_PLACEHOLDER + FL_KF_ITER_TASK_VMA_NEXT);
static void (*const bpf_iter_task_vma_destroy)(struct bpf_iter_task_vma *it) =
	(void *)(FL_KFUNC_PLACEHOLDER + FL_KF_ITER_TASK_VMA_DESTROY);

/*
 * Send every VMA of t's new image (FL_R_VMA).  exec maps them without a
 * syscall; reading /proc/PID/maps later races with short-lived processes.
 * The exec'ing task is the only thread left and holds no mmap_lock here,
 * so the iterator's mmap_read_trylock succeeds.
 */
/* The image's landmarks the VMA flags are derived from. */
struct image {
	__u32 tgid;
	__u64 start_stack, start_brk, brk;
};

/* One FL_R_VMA record. Returns 0, or -1 when the ring buffer is full. */
static __always_inline int emit_vma(struct vm_area_struct *vma, const struct image *im)
{
	struct fl_vma_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	struct file *f;
	__u64 fl;

	if (!r) {
		lose(FL_LOSS_RINGBUF);
		return -1;
	}
	fl = BPF_CORE_READ(vma, vm_flags);
	f = BPF_CORE_READ(vma, vm_file);
	r->h.type = FL_R_VMA;
	r->h.nframes = 0;
	r->h.size = sizeof(*r);
	r->pid = im->tgid;
	r->start = BPF_CORE_READ(vma, vm_start);
	r->end = BPF_CORE_READ(vma, vm_end);
	r->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	r->inode = f ? BPF_CORE_READ(f, f_inode, i_ino) : 0;
	r->dev = f ? BPF_CORE_READ(f, f_inode, i_sb, s_dev) : 0;
	r->pad = 0;
	r->flags = (fl & 1 ? FL_VMA_READ : 0) | (fl & 2 ? FL_VMA_WRITE : 0) | (fl & 4 ? FL_VMA_EXEC : 0) |
		   (fl & FL_VM_SHARED ? FL_VMA_SHARED : 0) |
		   (r->start <= im->start_stack && im->start_stack < r->end ? FL_VMA_STACK : 0) |
		   (!f && r->start >= im->start_brk && r->end <= im->brk && im->brk > im->start_brk ?
		    FL_VMA_HEAP : 0) |
		   (!f && BPF_CORE_READ(vma, vm_ops) ? FL_VMA_SPECIAL : 0);
	submit(r);
	return 0;
}

/*
 * The programs that run once per process (exec, exit) read pointer fields
 * with BPF_CORE_READ, a helper call, not a direct load: since 6.3 every
 * direct load of a pointer field through a trusted pointer makes the
 * verifier search the kernel's 130k BTF types by name, up to three names
 * per visit (btf_nested_type_is_trusted), which cost on_exec_vmas and
 * on_exit 2.5-3 ms each at every start (6.18).  Once per process, the
 * helper costs nothing that matters; the per-fault programs keep direct
 * loads, read once before any branch.
 */
static __always_inline void image_of(struct task_struct *t, __u32 tgid, struct image *im)
{
	struct mm_struct *mm = BPF_CORE_READ(t, mm);

	im->tgid = tgid;
	im->start_stack = BPF_CORE_READ(mm, start_stack);
	im->start_brk = BPF_CORE_READ(mm, start_brk);
	im->brk = BPF_CORE_READ(mm, brk);
}

static __always_inline void send_exec_vmas(struct task_struct *t, __u32 tgid)
{
	struct bpf_iter_task_vma it;
	struct vm_area_struct *vma;
	struct image im;

	image_of(t, tgid, &im);
	/* no counter in the loop: the iterator ends it, and a counter would make the verifier walk every lap */
	bpf_iter_task_vma_new(&it, t, 0);
	while ((vma = bpf_iter_task_vma_next(&it)))
		if (emit_vma(vma, &im))
			break;
	bpf_iter_task_vma_destroy(&it);
}

/*
 * Without the iterator (before 6.4): the VMAs exec left, found with
 * bpf_find_vma (5.17) from the addresses exec records (mm->start_code,
 * start_data, start_stack, the interpreter's base and the vDSO from the
 * saved auxiliary vector), each walked down to the first VMA of its run of
 * adjacent VMAs, then up, sent in address order.  exec maps every segment of
 * an ELF image next to the previous one, so these runs are the whole image;
 * a VMA beyond a gap would be missed (docs/faults.md, "Kernels").
 */
#define FL_SEEDS 6
#define FL_RUN_MAX 64
#define FL_AT_BASE 7
#define FL_AT_SYSINFO_EHDR 33

struct walk {
	struct task_struct *t;
	struct image im;
	__u64 addr;          /* the address looked up */
	__u64 start, end;    /* the VMA holding it (end 0: none) */
	__u64 sent_end;      /* every VMA below was sent */
	int emit;
	int full;            /* ring buffer full: stop */
	__u64 seed[FL_SEEDS]; /* the landmarks, in address order */
};

static long walk_vma(struct task_struct *task, struct vm_area_struct *vma, struct walk *w)
{
	w->start = vma->vm_start;
	w->end = vma->vm_end;
	if (w->emit && emit_vma(vma, &w->im))
		w->full = 1;
	return 0;
}

static __always_inline int walk_find(struct walk *w, __u64 addr, int emit)
{
	w->addr = addr;
	w->end = 0;
	w->emit = emit;
	if (bpf_find_vma(w->t, addr, walk_vma, w, 0) || !w->end)
		return -1;
	return 0;
}

/* Down from w->addr: w->start becomes the first VMA of the run. */
static long walk_down(__u64 i, struct walk *w)
{
	__u64 lo = w->start;

	if (lo <= w->sent_end || lo == 0 || walk_find(w, lo - 1, 0)) {
		w->start = lo;
		return 1;
	}
	return 0;
}

/* Up from w->addr, sending each VMA. */
static long walk_up(__u64 i, struct walk *w)
{
	if (w->full || walk_find(w, w->addr, 1))
		return 1;
	w->sent_end = w->end;
	w->addr = w->end;
	return 0;
}

/*
 * The run of VMAs around seed i.  A loop callback rather than an unrolled
 * loop: unrolled, the verifier walked each seed's two inner loops apart
 * (0.5M instructions, 1.6 s to load on 6.18).
 */
static long walk_seed(__u64 i, struct walk *w)
{
	__u64 seed;

	if (i >= FL_SEEDS || w->full)
		return 1;
	seed = w->seed[i];
	if (!seed || seed < w->sent_end || walk_find(w, seed, 0))
		return 0;
	bpf_loop(FL_RUN_MAX, walk_down, w, 0);
	w->addr = w->start;
	bpf_loop(FL_RUN_MAX, walk_up, w, 0);
	return 0;
}

static __always_inline void walk_exec_vmas(struct task_struct *t, __u32 tgid)
{
	struct mm_struct *mm = BPF_CORE_READ(t, mm);
	struct walk w = { .t = t };
	__u64 seed[FL_SEEDS] = {};

	image_of(t, tgid, &w.im);
	seed[0] = BPF_CORE_READ(mm, start_code);
	seed[1] = BPF_CORE_READ(mm, start_data);
	seed[2] = w.im.start_stack;
	for (int i = 0; i + 1 < 48; i += 2) { /* saved_auxv: (type, value) pairs up to AT_NULL */
		__u64 type = BPF_CORE_READ(mm, saved_auxv[i]), val = BPF_CORE_READ(mm, saved_auxv[i + 1]);

		if (type == 0)
			break;
		if (type == FL_AT_BASE)
			seed[3] = val;
		else if (type == FL_AT_SYSINFO_EHDR)
			seed[4] = val;
	}
	seed[5] = BPF_CORE_READ(mm, arg_start);
	/* in address order, so the records are (the collector takes a lower start as a new list) */
	for (int i = 0; i < FL_SEEDS; i++)
		for (int j = 0; j + 1 < FL_SEEDS - i; j++)
			if (seed[j] > seed[j + 1]) {
				__u64 x = seed[j];

				seed[j] = seed[j + 1];
				seed[j + 1] = x;
			}
	for (int i = 0; i < FL_SEEDS; i++)
		w.seed[i] = seed[i];
	bpf_loop(FL_SEEDS, walk_seed, &w, 0);
}

static __always_inline int task_exec(struct task_struct *t, struct linux_binprm *bprm,
				     int with_vmas)
{
	__u32 tgid = t->tgid;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);
	struct fl_task *r;

	if (!p)
		return 0;
	p->rss_init = 0; /* a new mm */
	p->mm = (__u64)BPF_CORE_READ(t, mm);
	p->shim_busy = 0; /* a new image: its shim (if any) announces itself again */
	p->ns = __sync_fetch_and_add(&ns_next, 1) + 1; /* its cuts start empty */
	p->ns_shared = 0;
	__sync_fetch_and_add(&p->vma_gen, 1);
	/* A non-leader thread that exec'ed (de_thread) keeps its task, so its state too. */
	if (with_vmas)
		send_exec_vmas(t, tgid);
	else
		walk_exec_vmas(t, tgid);
	r = task_rec(FL_T_EXEC, t);
	if (!r)
		return 0;
	bpf_probe_read_kernel_str(&r->path, sizeof(r->path), BPF_CORE_READ(bprm, filename));
	submit(r);
	return 0;
}

/* Exactly one of the two is loaded (loader.c): with the task VMA iterator (6.4+) or without. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_vmas, struct task_struct *t, pid_t old_pid, struct linux_binprm *bprm)
{
	return task_exec(t, bprm, 1);
}

/* Without: the VMAs are found from the image's landmarks (walk_exec_vmas). */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *t, pid_t old_pid, struct linux_binprm *bprm)
{
	return task_exec(t, bprm, 0);
}

struct sum_ctx {
	struct list_head *head;
	struct list_head *pos;
	__u64 min;
	__u64 maj;
};

/* One thread of the exiting group: its counts. */
static long sum_thread(__u64 i, struct sum_ctx *s)
{
	struct list_head *pos = s->pos;
	struct task_struct *t;

	if (!pos || pos == s->head)
		return 1;
	t = (void *)pos - bpf_core_field_offset(struct task_struct, thread_node);
	s->min += BPF_CORE_READ(t, min_flt);
	s->maj += BPF_CORE_READ(t, maj_flt);
	s->pos = BPF_CORE_READ(pos, next);
	return 0;
}

/* The faults the kernel counted that no perf event showed (gup), never below 0. */
static __always_inline __u64 unseen(__u64 total, __u64 before, __u64 seen)
{
	return total > before + seen ? total - before - seen : 0;
}

static __always_inline int task_exit(struct task_struct *t, bool group_dead)
{
	__u32 tgid = t->tgid;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);
	struct signal_struct *sig;
	struct sum_ctx s = {};
	struct fl_task *r;
	__u64 now;

	if (!p)
		return 0;
	bpf_task_storage_delete(&threads, t);
	/* on_exit_live: two threads exiting together may both see live == 0; one reports */
	if (!group_dead || __sync_fetch_and_add(&p->exit_claim, 1))
		return 0;

	/*
	 * What /proc/PID/stat and getrusage(RUSAGE_SELF) report for the group
	 * (fs/proc/array.c do_task_stat, kernel/sys.c getrusage): the counts
	 * folded from released threads (__exit_signal) plus every thread still
	 * on signal->thread_head, this one included.
	 */
	sig = BPF_CORE_READ(t, signal); /* a helper, not a direct load: see image_of */
	s.min = BPF_CORE_READ(sig, min_flt);
	s.maj = BPF_CORE_READ(sig, maj_flt);
	s.head = &sig->thread_head;
	s.pos = BPF_CORE_READ(sig, thread_head.next);
	bpf_loop(65536, sum_thread, &s, 0);

	now = bpf_ktime_get_ns();
	rss_flush(tgid, p, now, 0);

	r = task_rec(FL_T_EXIT, t);
	if (r) {
		/* wait_task_zombie(): the group exit code if the group was killed/exit_group'ed. */
		if (BPF_CORE_READ(sig, flags) & FL_SIGNAL_GROUP_EXIT)
			r->exit_code = BPF_CORE_READ(sig, group_exit_code);
		else
			r->exit_code = t->exit_code;
		r->min_flt = s.min;
		r->maj_flt = s.maj;
		r->base_min_flt = p->base_min;
		r->base_maj_flt = p->base_maj;
		r->gup_min_flt = unseen(s.min, p->base_min, p->seen_min);
		r->gup_maj_flt = unseen(s.maj, p->base_maj, p->seen_maj);
		r->time_ns = now;
		submit(r);
	}
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

/* Exactly one of the two is loaded (loader.c): the tracepoint has group_dead since 6.16. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *t, bool group_dead)
{
	return task_exit(t, group_dead);
}

/*
 * Before 6.16: do_exit() decremented signal->live before the tracepoint
 * (kernel/exit.c: group_dead = atomic_dec_and_test(&tsk->signal->live)).
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit_live, struct task_struct *t)
{
	return task_exit(t, BPF_CORE_READ(t, signal, live.counter) == 0);
}

/* ---- address-space syscalls (x86-64 numbers) ----------------------------- */

static __always_inline __u32 sc_kind(long id)
{
	switch (id) {
	case 9: return FL_K_MMAP;
	case 10: return FL_K_MPROTECT;
	case 11: return FL_K_MUNMAP;
	case 12: return FL_K_BRK;
	case 25: return FL_K_MREMAP;
	case 28: return FL_K_MADVISE;
	case 30: return FL_K_SHMAT;
	case 67: return FL_K_SHMDT;
	case 329: return FL_K_PKEY_MPROTECT;
	default: return FL_K_NONE;
	}
}

/* Arguments each kind defines (faultline.h); the rest are zeroed. */
static __always_inline int sc_nargs(__u32 kind)
{
	switch (kind) {
	case FL_K_MMAP: return 6;
	case FL_K_MREMAP: return 5;
	case FL_K_PKEY_MPROTECT: return 4;
	case FL_K_MPROTECT: case FL_K_MADVISE: case FL_K_SHMAT: return 3;
	case FL_K_MUNMAP: return 2;
	default: return 1;
	}
}

/* Calls that may create, remove, split or change VMAs besides the recorded ones. */
static __always_inline int sc_vma_other(long id)
{
	switch (id) {
	case 149: case 150: case 151: case 152: case 325: /* mlock munlock mlockall munlockall mlock2 */
	case 216: /* remap_file_pages */
	case 157: /* prctl (PR_SET_VMA) */
	case 16:  /* ioctl (userfaultfd registration) */
	case 462: /* mseal */
	case 31:  /* shmctl (IPC_RMID) */
		return 1;
	default:
		return 0;
	}
}

/* The calling process's per-thread VMA caches go stale (fault_done). */
static __always_inline void vma_changed(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (p)
		__sync_fetch_and_add(&p->vma_gen, 1);
}

/*
 * Calls that can write-protect PTEs of the caller's process (wp_raced):
 * mprotect, pkey_mprotect, fork (copy_present_pte write-protects the
 * parent's COW pages; not a thread's clone), ioctl (UFFDIO_WRITEPROTECT).
 * Counted when they begin, before they change a PTE.
 */
static __always_inline int sc_write_protects(long id, __u64 arg0)
{
	switch (id) {
	case 10: case 329: case 57: case 435: case 16:
		return 1;
	case 56: /* clone */
		return !(arg0 & 0x100 /* CLONE_VM */);
	default:
		return 0;
	}
}

static __always_inline void wp_epoch_call(long id, __u64 arg0)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p;

	if (!sc_write_protects(id, arg0) || !(p = bpf_map_lookup_elem(&tracked, &tgid)))
		return;
	__sync_fetch_and_add(&p->wp_epoch, 1);
}

/*
 * The file behind fd in the current task (inode and device), for a file
 * mmap: the fd may be closed before the collector could resolve it.
 * Walks task->files->fdt->fd[fd] as fget() would, without the reference.
 */
static __always_inline void file_identity(int fd, __u64 *inode, __u32 *dev)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file *f = NULL;
	struct file **fds;

	*inode = 0;
	*dev = 0;
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return;
	*inode = BPF_CORE_READ(f, f_inode, i_ino);
	*dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
}

/*
 * Boundaries a call may create, known before it runs (faultline.h
 * fl_fault_key): the range it unmaps, protects or moves, the break it
 * moves from, the address a MAP_FIXED mmap replaces.  Recorded before the
 * kernel changes anything, so no fault of the new layout misses them.
 */
static __always_inline void enter_cuts(struct fl_proc *p, __u32 kind, const __u64 *a)
{
	switch (kind) {
	case FL_K_MUNMAP: case FL_K_MPROTECT: case FL_K_PKEY_MPROTECT: case FL_K_MREMAP:
		add_cuts(p->ns, a[0], a[1]);
		break;
	case FL_K_MMAP:
		if (a[3] & (0x10 | 0x100000)) /* MAP_FIXED, MAP_FIXED_NOREPLACE */
			add_cuts(p->ns, a[0], a[1]);
		break;
	case FL_K_BRK: {
		struct task_struct *t = bpf_get_current_task_btf();

		add_cut(p->ns, (BPF_CORE_READ(t, mm, brk) + 4095) & ~4095ull);
		break;
	}
	}
}

/*
 * A munmap emptied [a, a + len): the cuts strictly inside it separate
 * nothing any more, and left there they cut the pieces of whatever is
 * mapped there next.  An allocator that maps blocks of varying sizes at
 * one place piles them up: pieces of a page or two, a new map entry and a
 * cut_span() for nearly every fault (bench/heap.c: on_fault 1.2 us against
 * 0.5).  The bits of one bucket at a time; an emptied range of more than
 * FL_CLEAR_BUCKETS buckets (8 GiB) keeps the rest (a stale cut only splits
 * a key).  The ends stay: they bound the neighbours.
 */
#define FL_CLEAR_BUCKETS 4096
struct clear_ctx {
	__u64 ns;
	__u64 first, last;   /* pages whose cut bits go: [first, last] */
};

static long clear_bucket(__u64 i, struct clear_ctx *x)
{
	__u64 bucket = (x->first >> (FL_CUT_SHIFT - FL_PAGE_SHIFT)) + i;
	__u64 base = bucket << (FL_CUT_SHIFT - FL_PAGE_SHIFT);
	struct fl_cut_key ck = { .ns = x->ns, .bucket = bucket };
	struct fl_cuts *c;

	if (base > x->last)
		return 1;
	c = bpf_map_lookup_elem(&cuts, &ck);
	if (!c)
		return 0;
	for (int k = 0; k < 8; k++) {
		__u64 lo = base + k * 64, hi = lo + 63, mask = ~0ull;

		if (hi < x->first || lo > x->last)
			continue;
		if (x->first > lo)
			mask &= ~0ull << (x->first - lo);
		if (x->last < hi)
			mask &= ~0ull >> (hi - x->last);
		__sync_fetch_and_and(&c->w[k], ~mask);
	}
	return 0;
}

static __always_inline void clear_cuts(__u64 ns, __u64 addr, __u64 len)
{
	struct clear_ctx x = { .ns = ns, .first = (addr >> FL_PAGE_SHIFT) + 1,
			       .last = ((addr + len + 4095) >> FL_PAGE_SHIFT) - 1 };
	__u64 n;

	if (x.first > x.last)
		return;
	n = (x.last >> (FL_CUT_SHIFT - FL_PAGE_SHIFT)) - (x.first >> (FL_CUT_SHIFT - FL_PAGE_SHIFT)) + 1;
	bpf_loop(n < FL_CLEAR_BUCKETS ? n : FL_CLEAR_BUCKETS, clear_bucket, &x, 0);
}

/*
 * Boundaries known when the call returns: where mmap, mremap, shmat put
 * memory, the new break; and what a munmap emptied, when no other call of
 * the process began or ended meanwhile (alone): else a mapping another
 * thread just made there could lose its cuts.  Not in cuts a fork shares
 * (ns_shared): the other process still has its memory there.
 */
static __always_inline void exit_cuts(struct fl_proc *p, __u32 kind, const __u64 *a, long ret, __u64 shm_size,
				      bool alone)
{
	if (ret < 0 && ret >= -4095)
		return;
	switch (kind) {
	case FL_K_MUNMAP:
		if (alone && !p->ns_shared)
			clear_cuts(p->ns, a[0], a[1]);
		break;
	case FL_K_MMAP:
		add_cuts(p->ns, ret, a[1]);
		break;
	case FL_K_MREMAP:
		add_cuts(p->ns, ret, a[2]);
		break;
	case FL_K_BRK:
		add_cut(p->ns, ((__u64)ret + 4095) & ~4095ull);
		break;
	case FL_K_SHMAT:
		add_cuts(p->ns, ret, shm_size);
		break;
	}
}

/*
 * A 32-bit system call (ia32 task, or int $0x80 from a 64-bit one): its
 * numbers are not x86-64's (9 is link, 11 execve).  arch/x86/include/asm/
 * thread_info.h: TS_COMPAT is set while one runs.
 */
#define FL_TS_COMPAT 0x0002

static __always_inline int in_compat_syscall(void)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return t->thread_info.status & FL_TS_COMPAT;
}

/* Not recorded, said as a loss; it may have changed VMAs. */
static __always_inline void compat_call(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (p) {
		__sync_fetch_and_add(&p->vma_gen, 1);
		lose(FL_LOSS_IA32);
	}
}

/* The shim's getpid(FL_SHIM_MARK, offset of its busy count): faultline.h. */
static __always_inline void shim_announced(__s64 off)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (p)
		p->shim_busy = off;
}

/*
 * The shim's getpid(FL_SHIM_EXITING): the process waits at exit for its last
 * smaps read (faultline.h).  Its RSS now, as a record: the kernel's count
 * to compare that read with, and the wake-up of a collector asleep on this
 * ring (it would otherwise sleep up to 100 ms while the process waits).
 */
static __always_inline void shim_exiting(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fl_proc *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (p && p->rss_init) {
		/* forced: the default wakes the reader only if it had read everything before */
		p->dirty = 1;
		rss_flush(tgid, p, bpf_ktime_get_ns(), BPF_RB_FORCE_WAKEUP);
	}
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	__u64 gen;
	__u32 tgid, kind = sc_kind(id);
	struct fl_thread *th;
	struct fl_proc *p;
	int n;

	if (in_compat_syscall()) {
		compat_call();
		return 0;
	}
	wp_epoch_call(id, regs->di);
	if (kind == FL_K_NONE) {
		if (id == 39 /* getpid */ && regs->di == FL_SHIM_MARK)
			shim_announced((__s64)regs->si);
		else if (id == 39 && regs->di == FL_SHIM_EXITING)
			shim_exiting();
		else if (sc_vma_other(id))
			vma_changed();
		return 0;
	}
	tgid = bpf_get_current_pid_tgid() >> 32;
	p = bpf_map_lookup_elem(&tracked, &tgid);
	if (!p)
		return 0;
	gen = __sync_fetch_and_add(&p->vma_gen, 1) + 1;
	th = thread_get(bpf_get_current_task_btf());
	if (!th) {
		lose(FL_LOSS_PENDING);
		return 0;
	}
	th->sc_gen = gen;
	n = sc_nargs(kind);
	th->sc_args[0] = regs->di;
	th->sc_args[1] = n > 1 ? regs->si : 0;
	th->sc_args[2] = n > 2 ? regs->dx : 0;
	th->sc_args[3] = n > 3 ? regs->r10 : 0;
	th->sc_args[4] = n > 4 ? regs->r8 : 0;
	th->sc_args[5] = n > 5 ? regs->r9 : 0;
	th->sc_nr = id + 1;
	th->sc_in_shim = in_shim(p);
	th->sc_inode = 0;
	th->sc_dev = 0;
	enter_cuts(p, kind, th->sc_args);
	if (kind == FL_K_MMAP && !(th->sc_args[3] & 0x20 /* MAP_ANONYMOUS */))
		file_identity((int)th->sc_args[4], &th->sc_inode, &th->sc_dev);
	return 0;
}

/*
 * The size of the VMA shmat just made at addr: the collector cannot ask the
 * segment later (IPC_RMID right after shmat is the usual idiom).  The tree
 * walk first, as for faults: bpf_find_vma's trylock fails while another
 * thread maps or unmaps.  0: neither found it.
 */
static __always_inline __u64 shm_size_at(struct task_struct *task, __u64 addr)
{
	struct vma_info vi = {};

	if (vma_at(addr, &vi))
		return 0;
	return vi.end - vi.start;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt, tgid = pt >> 32, kind;
	struct fl_thread *th = thread_of(bpf_get_current_task_btf());
	struct fl_call_rec *r;
	struct fl_proc *p;
	__u64 now, shm_size = 0;
	long id;

	if (!th)
		return 0;
	if (!th->sc_nr) {
		if (sc_vma_other(regs->orig_ax))
			vma_changed();
		return 0;
	}
	id = (long)th->sc_nr - 1;
	th->sc_nr = 0;
	kind = sc_kind(id);
	p = bpf_map_lookup_elem(&tracked, &tgid);
	if (!p || kind == FL_K_NONE)
		return 0;
	if (kind == FL_K_SHMAT && !(ret >= -4095 && ret <= -1))
		shm_size = shm_size_at(bpf_get_current_task_btf(), (__u64)ret);
	exit_cuts(p, kind, th->sc_args, ret, shm_size, p->vma_gen == th->sc_gen);
	/*
	 * The call's time, then the generation bump: a fault keyed with the new
	 * generation is later than the time the collector changes its model at.
	 */
	now = bpf_ktime_get_ns();
	__sync_fetch_and_add(&p->vma_gen, 1);
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		lose(FL_LOSS_RINGBUF);
		return 0;
	}
	r->h.type = FL_R_CALL;
	r->h.nframes = 0;
	r->h.size = sizeof(*r);
	r->call.kind = kind;
	r->call.pid = tgid;
	r->call.tid = tid;
	r->call.err = (ret >= -4095 && ret <= -1) ? (__s32)-ret : 0;
	r->call.time_ns = now;
	r->call.seq = __sync_fetch_and_add(&p->seq, 1);
	r->call.args[0] = th->sc_args[0];
	r->call.args[1] = th->sc_args[1];
	r->call.args[2] = th->sc_args[2];
	r->call.args[3] = kind == FL_K_SHMAT ? shm_size : th->sc_args[3]; /* shmat: size of the segment */
	r->call.args[4] = th->sc_args[4];
	r->call.args[5] = th->sc_args[5];
	r->call.result = ret;
	r->call.inode = th->sc_inode;
	r->call.dev = th->sc_dev;
	r->call.flags = th->sc_in_shim ? FL_CALL_FAULTLINE : 0;
	submit(r);
	return 0;
}
