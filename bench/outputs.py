#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How long `timeline`, `export` and `html` take on a large recording.

usage: bench/outputs.py [--faultline build/faultline] [--events 1000000] [--runs 3] [--db PATH]

Builds a synthetic recording (schema.sql + generated rows: EVENTS mmap/munmap
calls with stacks, a VMA row per mmap, RSS samples every 10 calls, a fault row
per mapping) in a temporary folder (or at --db PATH, kept and reused: building
a million calls takes minutes) with the summaries a recording's close writes,
then times each command (median of RUNS,
after one warm-up) and prints the output sizes.  CPU seconds are the steadier
figure on a shared machine; the load average is printed with them."""
import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(path, events):
    con = sqlite3.connect(path)
    con.executescript(open(os.path.join(ROOT, "common", "schema.sql"), encoding="utf-8").read())
    start, step = 10**9, 1000  # a call every microsecond
    end = start + events * step
    con.execute("INSERT INTO run VALUES (1, '0.1.0', './big', '[\"./big\"]', '/tmp', 'h', 'k', 4096, 'bpf', NULL, 64,"
                " ?, ?, 1700000000, 0, 1)", (start, end))
    for p in range(4):
        con.execute("INSERT INTO process VALUES (?, ?, NULL, NULL, '/opt/big', NULL, ?, ?, 0, NULL, 1, 0, 0, 0, 0, 0, 0)",
                    (p + 1, 1000 + p, start, end))
    con.executemany("INSERT INTO frame VALUES (?, '/opt/big', 'ab', ?, ?, 0, 'big.c', ?)",
                    [(f, f * 16, f"fn{f}", f) for f in range(1, 201)])
    con.executemany("INSERT INTO stack VALUES (?, 4)", [(s,) for s in range(1, 101)])
    con.executemany("INSERT INTO stack_frame VALUES (?, ?, ?)",
                    [(s, i, (s * 7 + i * 13) % 200 + 1) for s in range(1, 101) for i in range(4)])
    half = events // 2

    def rows_events():
        for i in range(half):
            p = i % 4 + 1
            t = start + 2 * i * step
            yield (2 * i + 1, p, 1000 + p - 1, 1000 + p - 1, t, i, "mmap", 0, 65536, 3, 0x22, -1, 0, 0x7f0000000000 + i * 65536,
                   0, "both", None, i % 100 + 1, 0)
            yield (2 * i + 2, p, 1000 + p - 1, 1000 + p - 1, t + step, i, "munmap", 0x7f0000000000 + i * 65536, 65536,
                   None, None, None, None, 0, 0, "both", None, i % 100 + 1, 0)
    con.executemany("INSERT INTO event VALUES (" + ",".join("?" * 19) + ")", rows_events())
    con.executemany("INSERT INTO vma VALUES (?, ?, ?, ?, ?, 3, 34, 'anon', NULL, 0, NULL, ?, ?, ?, ?, NULL, ?, 'call')",
                    ((i + 1, i % 4 + 1, 1000 + i % 4, 0x7f0000000000 + i * 65536, 0x7f0000010000 + i * 65536,
                      start + 2 * i * step, start + (2 * i + 1) * step, 2 * i + 1, 2 * i + 2, i + 1) for i in range(half)))
    con.executemany("INSERT INTO fault (vma_id, proc_id, time_ns, anon_new, writes) VALUES (?, ?, ?, 16, 16)",
                    ((i + 1, i % 4 + 1, start + 2 * i * step + 500) for i in range(half)))
    con.executemany("INSERT INTO rss VALUES (?, ?, ?, 4096, 0, 0, 'bpf')",
                    ((i % 4 + 1, start + i * 10 * step, (i % 1000) * 65536) for i in range(events // 10)))
    add_smaps(con, events, start, step)
    con.commit()
    con.close()


def add_smaps(con, events, start, step):
    """1000 smaps samples of 20 regions each ([heap], libc, 18 anonymous ones with a recorded piece)."""
    half = events // 2
    for k in range(1000):
        t, sid, first = start + k * (events // 1000) * step, k + 1, k * (half // 1000)
        p = first % 4 + 1  # the process of the VMA rows first, first + 4, ... (row i is process i % 4 + 1's)
        anon = [(0x7f0000000000 + (first + 4 * r) * 65536, first + 4 * r + 1) for r in range(18)]
        rows = [(sid, 0x555555560000, 0x555555600000, 3, 0, "[heap]", 262144 + k * 4096),
                (sid, 0x7f7000000000, 0x7f7000200000, 5, 0, "/usr/lib/libc.so.6", 1040384)]
        rows += [(sid, a, a + 65536, 3, 0, None, 65536) for a, _ in anon]
        total = sum(r[6] for r in rows)
        con.execute("INSERT INTO smaps_sample VALUES (?, ?, ?, 'change', 100000, 20, ?, ?, ?, 0, ?, NULL)",
                    (sid, p, t, total, total, total - 1040384, total))
        con.executemany("INSERT INTO region_rss VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)", [r + (r[6],) for r in rows])
        con.executemany("INSERT INTO piece_rss VALUES (?, ?, ?, 65536, 65536, 0, 1)", [(sid, a, v) for a, v in anon])


def timed(cmd, runs):
    """Median wall and CPU (user + sys) seconds: on a shared machine the CPU time is the steadier one."""
    subprocess.run(cmd, check=True, capture_output=True)
    wall, cpu = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        subprocess.run(cmd, check=True, capture_output=True)
        wall.append(time.monotonic() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", help="the recording to use, built there first if missing")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = a.db or os.path.join(tmp, "big.db")
        t = time.monotonic()
        if not os.path.exists(db):
            build(db, a.events)
            # the summaries a recording's close writes (viewer/summary.c), by the same code
            subprocess.run([a.faultline, "__summarize", db], check=True)
        print(f"recording: {a.events} calls, {a.events // 2} VMA rows and fault rows, {a.events // 10} RSS samples"
              f" ({os.path.getsize(db) >> 20} MiB, ready in {time.monotonic() - t:.1f}s)")
        print("load average: %.1f %.1f %.1f on %d CPUs" % (*os.getloadavg(), os.cpu_count()))
        fl = a.faultline
        cmds = {
            "timeline": [fl, "timeline", db],
            "timeline --format json": [fl, "timeline", db, "--format", "json"],
            "export folded": [fl, "export", db, "--format", "folded", "-o", os.path.join(tmp, "f.txt")],
            "export pprof": [fl, "export", db, "--format", "pprof", "-o", os.path.join(tmp, "p.pb.gz")],
            "export perfetto": [fl, "export", db, "--format", "perfetto", "-o", os.path.join(tmp, "t.json")],
            "export csv --table event": [fl, "export", db, "--format", "csv", "--table", "event", "-o", os.path.join(tmp, "e.csv")],
            "timeline --by region": [fl, "timeline", db, "--by", "region"],
            "html": [fl, "html", db, "-o", os.path.join(tmp, "r.html")],
        }
        print(f"{'command':28} {'wall s':>8} {'cpu s':>7}  output")
        for name, cmd in cmds.items():
            wall, cpu = timed(cmd, a.runs)
            out = cmd[-1] if "-o" in cmd else None
            size = f"{os.path.getsize(out) / 1e6:.1f} MB" if out else ""
            print(f"{name:28} {wall:8.2f} {cpu:7.2f}  {size}")


if __name__ == "__main__":
    main()
