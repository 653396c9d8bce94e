#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How fast do the query commands answer on a large recording?  Builds a
recording of --calls address-space calls and --faults page faults from
common/schema.sql (recording a real program that large takes minutes here:
40 GiB of page touches), shaped like a malloc-heavy run: one process whose
calls are mmap/munmap pairs of 256 KiB blocks, each block one vma row with
its faults in 2 fault rows (drains), a fault site per row, RSS samples, and
smaps samples that split a merged region among 1000 pieces, then the
summaries a recording's close writes (`faultline __summarize`).  Then times
`report`, `why`, `vmas` and `faults --by` on it (one warm-up, medians of
--runs).  The goal (issue 9, criterion 10) is under 200 ms each.

usage: bench/queries.py [--calls N] [--faults N] [--runs N] [--faultline PATH] [--keep FILE]
"""
import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLOCK = 256 * 1024


def build(path, calls, faults):
    """The recording: calls/2 blocks mapped and unmapped one after another."""
    blocks = calls // 2
    per_row = max(1, faults // (blocks * 2))
    con = sqlite3.connect(path)
    con.executescript(open(os.path.join(ROOT, "common", "schema.sql"), encoding="utf-8").read())
    t0 = 1_000_000_000
    con.executescript(f"""
    INSERT INTO run VALUES (1, '0.1.0', './blocks', '["./blocks"]', '/tmp', 'bench', '6.1', 4096, 'bpf', NULL,
      64, {t0}, {t0 + blocks * 2000 + 1000}, 1700000000, 0, 1);
    INSERT INTO process VALUES (1, 4000, 1, NULL, '/usr/bin/blocks', '["./blocks"]', {t0},
      {t0 + blocks * 2000 + 1000}, 0, NULL, 1, {per_row * 2 * blocks}, 0, 0, 0, 0, 0);
    INSERT INTO frame VALUES (1, '/usr/bin/blocks', 'ab', 4096, 'alloc_block', 16, 'blocks.c', 10);
    INSERT INTO frame VALUES (2, '/usr/bin/blocks', 'ab', 8192, 'main', 32, 'blocks.c', 20);
    INSERT INTO stack VALUES (1, 2);
    INSERT INTO stack_frame VALUES (1, 0, 1), (1, 1, 2);
    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < {blocks})
    INSERT INTO event (id, proc_id, pid, tid, time_ns, seq, kind, a0, a1, a2, a3, a4, a5, result, errno, source,
                       stack_id)
    SELECT 2 * i + 1, 1, 4000, 4000, {t0} + i * 2000, 2 * i + 1, 'mmap', 0, {BLOCK}, 3, 34, -1, 0,
           140000000000000 + (i % 1000) * {BLOCK}, 0, 'both', 1 FROM b
    UNION ALL
    SELECT 2 * i + 2, 1, 4000, 4000, {t0} + i * 2000 + 1000, 2 * i + 2, 'munmap',
           140000000000000 + (i % 1000) * {BLOCK}, {BLOCK}, NULL, NULL, NULL, NULL, 0, 0, 'bpf', NULL FROM b;
    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < {blocks})
    INSERT INTO vma SELECT i + 1, 1, 4000, 140000000000000 + (i % 1000) * {BLOCK},
           140000000000000 + (i % 1000 + 1) * {BLOCK}, 3, 34, 'anon', NULL, 0, NULL, {t0} + i * 2000,
           CASE WHEN i < {blocks} - 1000 THEN {t0} + i * 2000 + 1000 END,
           2 * i + 1, CASE WHEN i < {blocks} - 1000 THEN 2 * i + 2 END, NULL, i + 1, 'call' FROM b;
    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < {blocks * 2})
    INSERT INTO fault (vma_id, proc_id, time_ns, anon_new, writes)
    SELECT i / 2 + 1, 1, {t0} + (i / 2) * 2000 + 100 * (i % 2), {per_row}, {per_row} FROM b;
    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < {blocks})
    INSERT INTO fault_site (vma_id, proc_id, class, frame_id, count) SELECT i + 1, 1, 'anon_new', 1, {per_row * 2} FROM b;
    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < 5000)
    INSERT INTO rss SELECT 1, {t0} + i * {max(1, blocks * 2000 // 5000)}, (i % 1000) * {BLOCK}, 4096, 0, 0, 'bpf' FROM b;
    """)
    # 20 smaps samples of the 1000 live blocks: one merged region of 1000 pieces
    for s in range(1, 21):
        t = t0 + blocks * 2000 - 1000 * 2000 + s
        con.execute("INSERT INTO smaps_sample VALUES (?, 1, ?, 'high', 1000000, 1, ?, ?, ?, 0, ?, NULL)",
                    (s, t, 1000 * BLOCK, 1000 * BLOCK, 1000 * BLOCK, 1000 * BLOCK))
        con.execute("INSERT INTO region_rss VALUES (?, 140000000000000, ?, 3, 0, NULL, ?, ?, ?, 0, ?)",
                    (s, 140000000000000 + 1000 * BLOCK, *([1000 * BLOCK] * 4)))
        con.executemany("INSERT INTO piece_rss VALUES (?, 140000000000000, ?, ?, ?, 0, 1)",
                        [(s, blocks - 1000 + k + 1, BLOCK, BLOCK) for k in range(1000)])
    con.commit()
    # the indexes a finished recording has (the schema's CREATE INDEX lines ran above)
    con.close()
    return blocks * 2 * per_row


def summarize(faultline, path):
    """The summaries a recording's close writes (viewer/summary.c), by the same code: seconds of CPU."""
    return timed([faultline, "__summarize", path])[1]


def timed(argv):
    """(wall, CPU) seconds of one run: on a shared, loaded machine the CPU time is the steadier figure."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        sys.exit(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--faults", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    ap.add_argument("--keep", help="build the recording here and keep it")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        db = a.keep or os.path.join(out, "big.db")
        if os.path.exists(db):
            os.unlink(db)
        t = time.perf_counter()
        nfaults = build(db, a.calls, a.faults)
        built = time.perf_counter() - t
        size = os.path.getsize(db) >> 20
        cpu = summarize(a.faultline, db)
        print(f"recording: {a.calls} calls, {nfaults} faults, {size} MiB, built in {built:.1f}s; "
              f"summarized as at its close in {cpu:.1f}s of CPU (+{(os.path.getsize(db) >> 20) - size} MiB)")
        cmds = {
            "report": ["report", db],
            "why": ["why", db],
            "vmas": ["vmas", db],
            "faults --by process": ["faults", db, "--by", "process"],
            "faults --by kind": ["faults", db, "--by", "kind"],
            "faults --by region": ["faults", db, "--by", "region"],
            "faults --by stack": ["faults", db, "--by", "stack"],
            "faults --by site": ["faults", db, "--by", "site"],
        }
        print(f"{'command':22} {'wall s':>8} {'cpu s':>8}  goal 0.200 s  ({a.runs} runs after a warm-up, medians;"
              f" load average {os.getloadavg()[0]:.1f})")
        for name, args in cmds.items():
            argv = [a.faultline] + args
            timed(argv)
            runs = [timed(argv) for _ in range(a.runs)]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"{name:22} {wall:8.3f} {cpu:8.3f}  {'ok' if cpu < 0.2 else 'SLOW'}")


main()
