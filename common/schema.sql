-- SPDX-License-Identifier: MIT
-- faultline store, schema version 10 (PRAGMA user_version; the build turns
-- it into FL_SCHEMA_VERSION in the generated schema.h).  Documented in
-- docs/schema.md.
-- Times are CLOCK_MONOTONIC nanoseconds (run.start_ns is the origin a viewer
-- subtracts); addresses and sizes are bytes; prot is PROT_READ=1 | PROT_WRITE=2
-- | PROT_EXEC=4; flags are the mmap(2) MAP_* bits as the call passed them.
-- The CREATE INDEX lines run when the recording ends (run.complete = 1).
-- The names in event.kind, vma.how, fault_site.class and the fault columns
-- (and fault_site.callers_end) are common/faultline.h's lists (FL_KINDS,
-- FL_HOWS, FL_FAULT_CLASSES, FL_CALLER_ENDS); the
-- unit test "names" holds this file against them.
-- Version 2 added the CHECK constraints (and 'remap' to vma.how's list).
-- They are written as OR chains, not `x IN (list)`: SQLite builds an
-- ephemeral table for an IN list every time an INSERT runs, which made
-- four fifths of the cost of writing an event row (11 us -> 2.5 us).
-- Version 3 added the resident-memory samples; version 4 kernel_feature;
-- version 5 the heap_sample table; version 6 the fault classes retry, uffd,
-- hugetlb, pfn, spurious; version 7 the faultline flag of event, fault and fault_site;
-- version 8 the summaries; version 9 smaps_sample.held_ns; version 10 the
-- callers of fault_site.
-- The summaries (fault_summary, site_summary, proc_summary, call_summary) are
-- not made here: viewer/summary.c writes them when the recording closes, in
-- the transaction that sets run.complete (docs/schema.md "Summaries").
PRAGMA application_id = 1179403340; -- 'FLTL'
PRAGMA user_version = 10;

-- One row: the recording itself.
CREATE TABLE run (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    version       TEXT NOT NULL,     -- faultline version that recorded
    command       TEXT NOT NULL,     -- argv[0] as given
    argv          TEXT NOT NULL,     -- JSON array
    cwd           TEXT,
    host          TEXT,
    kernel        TEXT,              -- uname -r
    page_size     INTEGER NOT NULL,
    fidelity      TEXT NOT NULL,     -- 'bpf' (kernel ground truth) or 'shim' (preload only)
    fidelity_note TEXT,              -- why the run has less than full fidelity, else NULL
    stack_depth   INTEGER NOT NULL,
    start_ns      INTEGER NOT NULL,  -- CLOCK_MONOTONIC at launch
    end_ns        INTEGER,           -- when the last tracked process ended
    start_unix    INTEGER NOT NULL,  -- wall clock at launch, seconds since the epoch
    exit_status   INTEGER,           -- what `faultline record` exited with: code, or 128+signal
    complete      INTEGER NOT NULL DEFAULT 0 -- 1 once the recording was closed cleanly
);

-- The kernel features the eBPF side adapts to (bpf/fl_bpf.h FL_CAPS), as this
-- run had them; no rows in a run without eBPF.  docs/faults.md, "Kernels".
CREATE TABLE kernel_feature (
    name    TEXT PRIMARY KEY,  -- 'find_vma', 'exec_vmas', 'exit_group_dead', 'rss_percpu', 'rss_unsplit'
    state   TEXT NOT NULL CHECK (state IN ('present', 'replaced', 'missing')),
    feature TEXT NOT NULL,     -- what the kernel offers when present
    how     TEXT               -- replaced: by what; missing: what is lost; present: NULL
);

-- Anything lost or degraded, one row per cause; every report prints these.
CREATE TABLE loss (
    cause   TEXT PRIMARY KEY,  -- 'channel_dropped', 'no_ring', 'unpublished', 'bpf_ringbuf', ...
    count   INTEGER NOT NULL,
    detail  TEXT
);

-- One-time messages (warnings said once), in time order.
CREATE TABLE message (
    id      INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    pid     INTEGER,
    text    TEXT NOT NULL
);

-- One row per process (pid lifetime; exec keeps the row and updates exe).
CREATE TABLE process (
    id          INTEGER PRIMARY KEY,
    pid         INTEGER NOT NULL,
    ppid        INTEGER,
    parent_id   INTEGER REFERENCES process(id),
    exe         TEXT,              -- the latest image
    argv        TEXT,              -- JSON array when known
    start_ns    INTEGER NOT NULL,
    end_ns      INTEGER,
    exit_code   INTEGER,           -- exit(2) status when it exited normally
    exit_signal INTEGER,           -- the signal that killed it
    shim        INTEGER NOT NULL DEFAULT 0, -- 1 if the preload shim ran in it
    min_flt     INTEGER,           -- the kernel's own totals at exit (what getrusage/proc show)
    maj_flt     INTEGER,
    -- the parts of min_flt/maj_flt no fault row can hold (eBPF runs):
    min_flt_before INTEGER,        -- counted before the target's image ran: before tracking began,
                                   -- or by faultline's launched child between fork and exec
    maj_flt_before INTEGER,
    min_flt_gup    INTEGER,        -- faults the kernel took for get_user_pages (exec's argument copy,
    maj_flt_gup    INTEGER         -- MAP_POPULATE, mlock, MADV_POPULATE_*): no perf event fires
);
CREATE INDEX process_pid ON process(pid);

-- Every address-space call seen, by the shim and/or by BPF.
CREATE TABLE event (
    id       INTEGER PRIMARY KEY,
    proc_id  INTEGER NOT NULL REFERENCES process(id),
    pid      INTEGER NOT NULL,
    tid      INTEGER NOT NULL,
    time_ns  INTEGER NOT NULL,
    seq      INTEGER,              -- per-process sequence of the source
    kind     TEXT NOT NULL         -- FL_KINDS; 'unknown': a kind this version does not know
             CHECK (kind = 'none' OR kind = 'mmap' OR kind = 'munmap' OR kind = 'mprotect'
                    OR kind = 'pkey_mprotect' OR kind = 'mremap' OR kind = 'brk' OR kind = 'sbrk'
                    OR kind = 'madvise' OR kind = 'fork' OR kind = 'vfork' OR kind = 'exec' OR kind = 'exit'
                    OR kind = 'dlopen' OR kind = 'dlclose' OR kind = 'shmat' OR kind = 'shmdt'
                    OR kind = 'clone' OR kind = 'unknown'),
    a0 INTEGER, a1 INTEGER, a2 INTEGER, a3 INTEGER, a4 INTEGER, a5 INTEGER, -- arguments (see docs/schema.md)
    result   INTEGER,
    errno    INTEGER NOT NULL DEFAULT 0,
    source   TEXT NOT NULL,        -- 'shim', 'bpf', or 'both' (a BPF call matched to a shim stack)
    path     TEXT,                 -- the file mapped (mmap of an fd), or dlopen's name
    stack_id INTEGER REFERENCES stack(id), -- NULL: no user stack was seen for this call
    faultline INTEGER NOT NULL DEFAULT 0 -- 1: made inside faultline's shim (BPF saw its mark)
);
CREATE INDEX event_proc_time ON event(proc_id, time_ns);

-- Deduplicated call stacks; frames innermost first.
CREATE TABLE stack (
    id    INTEGER PRIMARY KEY,
    depth INTEGER NOT NULL
);
CREATE TABLE stack_frame (
    stack_id INTEGER NOT NULL REFERENCES stack(id),
    idx      INTEGER NOT NULL,     -- 0 = innermost (the intercepted call's caller)
    frame_id INTEGER NOT NULL REFERENCES frame(id),
    PRIMARY KEY (stack_id, idx)
) WITHOUT ROWID;

-- Deduplicated code locations, symbolized once before the recording ends.
-- Identity is (module, rel_addr): stable across processes and ASLR.
CREATE TABLE frame (
    id        INTEGER PRIMARY KEY,
    module    TEXT,                -- path of the mapped file, NULL if not file-backed
    build_id  TEXT,                -- hex GNU build-id of the module
    rel_addr  INTEGER NOT NULL,    -- file offset in module (or the raw address without one)
    function  TEXT,                -- demangled where possible; NULL if unknown
    func_off  INTEGER,             -- byte offset into function
    file      TEXT,                -- source file, where debug info exists
    line      INTEGER,
    UNIQUE (module, rel_addr)
);

-- Mappings.  A call that changes part of a mapping ends that row and starts
-- new ones (parent_id); origin_id is the row the creating call made, kept by
-- every piece split from it (a stable identity for "who made this memory").
CREATE TABLE vma (
    id           INTEGER PRIMARY KEY,
    proc_id      INTEGER NOT NULL REFERENCES process(id),
    pid          INTEGER NOT NULL,
    start        INTEGER NOT NULL,
    end          INTEGER NOT NULL,
    prot         INTEGER NOT NULL,
    flags        INTEGER NOT NULL, -- MAP_SHARED=1 / MAP_PRIVATE=2 | MAP_ANONYMOUS=0x20 | ...
    kind         TEXT NOT NULL,    -- anon heap stack file shm vdso vvar vsyscall faultline other
    path         TEXT,
    offset       INTEGER NOT NULL DEFAULT 0,
    inode        INTEGER,
    created_ns   INTEGER NOT NULL,
    destroyed_ns INTEGER,          -- NULL: still mapped when the process ended/recording stopped
    created_by   INTEGER REFERENCES event(id), -- NULL: found in the initial snapshot or a resync
    destroyed_by INTEGER REFERENCES event(id),
    parent_id    INTEGER REFERENCES vma(id),   -- split from, or inherited at fork from
    origin_id    INTEGER NOT NULL,             -- the row the creating call made (itself if so)
    how          TEXT NOT NULL     -- FL_HOWS (see common/faultline.h)
                 CHECK (how = 'call' OR how = 'split' OR how = 'remap' OR how = 'fork' OR how = 'snapshot'
                        OR how = 'resync' OR how = 'exec')
);
CREATE INDEX vma_proc_time ON vma(proc_id, created_ns);
CREATE INDEX vma_proc_end ON vma(proc_id, destroyed_ns);
CREATE INDEX vma_origin ON vma(origin_id);

-- Page faults per VMA and time bucket (eBPF runs only).  Classes as in
-- docs/faults.md; reads+writes+execs = the bucket's total.
CREATE TABLE fault (
    vma_id       INTEGER NOT NULL REFERENCES vma(id),
    proc_id      INTEGER NOT NULL REFERENCES process(id),
    time_ns      INTEGER NOT NULL, -- end of the bucket
    major_file   INTEGER NOT NULL DEFAULT 0,
    major_swap   INTEGER NOT NULL DEFAULT 0,
    anon_new     INTEGER NOT NULL DEFAULT 0,
    zero_page    INTEGER NOT NULL DEFAULT 0,
    pagecache    INTEGER NOT NULL DEFAULT 0,
    cow_anon     INTEGER NOT NULL DEFAULT 0,
    cow_zero     INTEGER NOT NULL DEFAULT 0,
    cow_file     INTEGER NOT NULL DEFAULT 0,
    cow_reuse    INTEGER NOT NULL DEFAULT 0,
    write_notify INTEGER NOT NULL DEFAULT 0,
    other        INTEGER NOT NULL DEFAULT 0,
    retry        INTEGER NOT NULL DEFAULT 0,
    uffd         INTEGER NOT NULL DEFAULT 0,
    hugetlb      INTEGER NOT NULL DEFAULT 0,
    pfn          INTEGER NOT NULL DEFAULT 0,
    spurious     INTEGER NOT NULL DEFAULT 0,
    reads        INTEGER NOT NULL DEFAULT 0,
    writes       INTEGER NOT NULL DEFAULT 0,
    execs        INTEGER NOT NULL DEFAULT 0,
    thp          INTEGER NOT NULL DEFAULT 0,
    faultline    INTEGER NOT NULL DEFAULT 0 -- 1: taken while the thread was inside faultline's shim
);
CREATE INDEX fault_vma ON fault(vma_id);
CREATE INDEX fault_proc ON fault(proc_id, time_ns);

-- Faulting instructions per VMA, class and caller chain (eBPF runs only).
CREATE TABLE fault_site (
    vma_id   INTEGER NOT NULL REFERENCES vma(id),
    proc_id  INTEGER NOT NULL REFERENCES process(id),
    class    TEXT NOT NULL         -- column name of fault, e.g. 'anon_new'
             CHECK (class = 'major_file' OR class = 'major_swap' OR class = 'anon_new'
                    OR class = 'zero_page' OR class = 'pagecache' OR class = 'cow_anon'
                    OR class = 'cow_zero' OR class = 'cow_file' OR class = 'cow_reuse'
                    OR class = 'write_notify' OR class = 'other' OR class = 'retry' OR class = 'uffd'
                    OR class = 'hugetlb' OR class = 'pfn' OR class = 'spurious'),
    frame_id INTEGER NOT NULL REFERENCES frame(id),
    count    INTEGER NOT NULL,
    faultline INTEGER NOT NULL DEFAULT 0, -- as in fault
    callers_id INTEGER REFERENCES stack(id), -- the calls that led to frame_id, innermost first; NULL: none known
    callers_end TEXT               -- why the chain ends there (docs/faults.md "Callers"); NULL: not walked
             CHECK (callers_end = 'depth' OR callers_end = 'top' OR callers_end = 'no_frame_pointer'
                    OR callers_end = 'no_unwind_info' OR callers_end = 'not_code')
);
CREATE INDEX fault_site_vma ON fault_site(vma_id);

-- Resident memory per process over time, bytes.
CREATE TABLE rss (
    proc_id INTEGER NOT NULL REFERENCES process(id),
    time_ns INTEGER NOT NULL,
    anon    INTEGER NOT NULL,
    file    INTEGER NOT NULL,
    shmem   INTEGER NOT NULL,
    swap    INTEGER NOT NULL,
    source  TEXT NOT NULL          -- 'bpf' (rss_stat) or 'proc' (/proc/PID/status sample)
);
CREATE INDEX rss_proc_time ON rss(proc_id, time_ns);

-- Resident memory per region, sampled from /proc/PID/smaps (docs/schema.md
-- "Resident memory per region"): when a process reaches a new RSS high,
-- while its RSS moves, and rarely when idle, at a bounded cost.
CREATE TABLE smaps_sample (
    id       INTEGER PRIMARY KEY,
    proc_id  INTEGER NOT NULL REFERENCES process(id),
    time_ns  INTEGER NOT NULL,     -- when the read began
    reason   TEXT NOT NULL,        -- 'high' (a new RSS high), 'settled' (that high again, quiet), 'change', 'idle',
                                   -- 'exit' (just before the process exited, while it waited: docs/schema.md)
    cost_ns  INTEGER NOT NULL,     -- what reading smaps (and pagemap) took
    regions  INTEGER NOT NULL,     -- kernel VMAs read
    rss      INTEGER NOT NULL,     -- bytes, the sum over the regions
    pss      INTEGER NOT NULL,
    anon     INTEGER NOT NULL,
    swap     INTEGER NOT NULL,
    rss_stat INTEGER,              -- the process's RSS (anon+file+shmem) the kernel counted just before
    held_ns  INTEGER               -- 'exit': how long the process waited for this read (NULL otherwise)
);
CREATE INDEX smaps_sample_proc ON smaps_sample(proc_id, time_ns);

-- One kernel VMA (a region: what the kernel keeps as one VMA) of a sample,
-- when anything of it was resident or swapped.
CREATE TABLE region_rss (
    sample_id     INTEGER NOT NULL REFERENCES smaps_sample(id),
    start         INTEGER NOT NULL,
    end           INTEGER NOT NULL,
    prot          INTEGER NOT NULL,
    shared        INTEGER NOT NULL,  -- 1: a shared mapping
    path          TEXT,              -- as smaps names it ([heap], [stack], a file), NULL if anonymous
    rss           INTEGER NOT NULL,  -- bytes: Rss, Pss, Anonymous, Swap, Private_Dirty
    pss           INTEGER NOT NULL,
    anon          INTEGER NOT NULL,
    swap          INTEGER NOT NULL,
    private_dirty INTEGER NOT NULL
);
CREATE INDEX region_rss_sample ON region_rss(sample_id);

-- The recorded VMA rows (pieces) inside a region of a sample and their
-- resident bytes: the region's own figures when one row covers it, else
-- counted page by page from /proc/PID/pagemap (exact = 1 either way; 0: an
-- estimate from fault counts because the region was too large to read).
CREATE TABLE piece_rss (
    sample_id INTEGER NOT NULL REFERENCES smaps_sample(id),
    region_start INTEGER NOT NULL,
    vma_id    INTEGER NOT NULL REFERENCES vma(id),
    rss       INTEGER NOT NULL,
    anon      INTEGER NOT NULL,    -- of rss, pages mapped by this process alone (not file, not shared)
    swap      INTEGER NOT NULL,
    exact     INTEGER NOT NULL
);
CREATE INDEX piece_rss_sample ON piece_rss(sample_id);
CREATE INDEX piece_rss_vma ON piece_rss(vma_id);
-- Sampled heap allocations (preload/malloc.c; docs/heap.md), one row per
-- sampled block, written when it is freed or its process ends.  Allocations
-- are sampled by bytes with mean `mean` (--heap-sample): a block of size bytes is
-- sampled with probability p = 1 - exp(-size/mean), so weight = size / p
-- estimates the bytes it stands for without bias (weight = size when every
-- allocation is recorded).  Which region holds a block is found by address
-- in the vma table at the time of interest.
CREATE TABLE heap_sample (
    id       INTEGER PRIMARY KEY,
    proc_id  INTEGER NOT NULL REFERENCES process(id),
    tid      INTEGER NOT NULL,
    addr     INTEGER NOT NULL,
    size     INTEGER NOT NULL,     -- bytes requested
    weight   REAL NOT NULL,        -- bytes this sample stands for
    mean     INTEGER NOT NULL,     -- the sampling mean it was drawn with (1: every allocation)
    fn       TEXT NOT NULL         -- the function that returned the block
             CHECK (fn = 'malloc' OR fn = 'calloc' OR fn = 'realloc' OR fn = 'memalign'),
    alloc_ns INTEGER NOT NULL,
    free_ns  INTEGER,              -- NULL: still live when its process image ended
    end_how  TEXT NOT NULL         -- how it ended: free, exit (live to its end), exec, lost (its
             CHECK (end_how = 'free' OR end_how = 'exit' OR end_how = 'exec' OR end_how = 'lost'), -- address was sampled again, no free seen)
    stack_id INTEGER REFERENCES stack(id)
);
CREATE INDEX heap_sample_proc ON heap_sample(proc_id, alloc_ns);
