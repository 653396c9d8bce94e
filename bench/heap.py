#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cost of heap tracking (sampled malloc, preload/malloc.c), as ratios against the plain run.

Two workloads: sqlite3 inserting a million rows (and building an index) in an
in-memory database, and `allocs`, a malloc-heavy C++ program (bench/allocs.cpp).
Each runs plain and under `faultline record` with --heap-sample 0 (heap
tracking off), the default mean (512 KiB) and --heap-sample 1 (every
allocation), in alternation (plain, off, default, [exact], plain, ...) after a
warm-up of each.  Two times per run:

  target   the workload's own wall time, fork to exit (bench/timeit.c between
           faultline and the workload): what the program feels;
  cpu      the workload's user + system CPU time: what the shim adds inside
           it, and far steadier than wall time on a busy machine;
  command  the whole command, faultline's start-up (BPF load) and end
           (symbolization) included.

Prints the medians and the ratios to plain; "default/off" is what heap
tracking itself adds to a recording.  Also prints unwind_cost: what one stack
costs with each unwinder (docs/heap.md).

usage: bench/heap.py [--runs N] [--exact-runs N] [--only sqlite,allocs] [--rows N] [--no-bpf]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def build(out, rows):
    subprocess.run(["g++", "-O2", "-g", "-o", os.path.join(out, "allocs"), os.path.join(HERE, "allocs.cpp")],
                   check=True)
    subprocess.run(["gcc", "-O2", "-o", os.path.join(out, "timeit"), os.path.join(HERE, "timeit.c")], check=True)
    subprocess.run(["gcc", "-O2", "-fno-omit-frame-pointer", "-o", os.path.join(out, "unwind_cost"),
                    os.path.join(HERE, "unwind_cost.c"), "-ldl"], check=True)
    sql = os.path.join(out, "sq.sql")
    with open(sql, "w") as f:
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);\n"
                f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<{rows})\n"
                "INSERT INTO t SELECT x, x*7919 % 1000003, hex(randomblob(16)) FROM c;\n"
                "CREATE INDEX ta ON t(a);\nSELECT count(*), sum(a) FROM t;\n")
    return {
        "sqlite": ["sqlite3", "-init", sql, ":memory:", ".quit"],
        "allocs": [os.path.join(out, "allocs"), "400000"],
    }


def timed(pre, argv, timeit, tfile):
    """(target wall, target cpu, command wall) seconds of argv run under pre (a faultline command, or [])."""
    if os.path.exists(tfile):
        os.unlink(tfile)
    t = time.perf_counter()
    subprocess.run(pre + [timeit, tfile] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    total = time.perf_counter() - t
    with open(tfile) as f:
        wall, cpu = f.read().split()[:2]
    return float(wall), float(cpu), total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--exact-runs", type=int, default=1)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-bpf", action="store_true")
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        loads = build(out, a.rows)
        timeit, tfile, db = os.path.join(out, "timeit"), os.path.join(out, "t"), os.path.join(out, "bench.db")
        rec = [a.faultline, "record", "--force", "-o", db] + (["--no-bpf"] if a.no_bpf else [])
        modes = {"plain": [], "off": rec + ["--heap-sample", "0", "--"], "default": rec + ["--"],
                 "exact": rec + ["--heap-sample", "1", "--"]}
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
              f"{a.runs} alternating runs ({a.exact_runs} for exact), medians")
        print(f"{'workload':9} {'mode':8} {'target s':>9} {'ratio':>7} {'cpu s':>8} {'ratio':>7} "
              f"{'command s':>10} {'ratio':>7}")
        for name, argv in loads.items():
            if a.only and name not in a.only.split(","):
                continue
            runs = {m: [] for m in modes}
            for m, pre in modes.items():  # warm-up
                if m != "exact":
                    timed(pre, argv, timeit, tfile)
            for i in range(a.runs):
                for m, pre in modes.items():
                    if m != "exact" or i < a.exact_runs:
                        runs[m].append(timed(pre, argv, timeit, tfile))
            med = {m: [statistics.median(r[k] for r in v) for k in range(3)] for m, v in runs.items() if v}
            for m, (tt, tu, tc) in med.items():
                p = med["plain"]
                print(f"{name:9} {m:8} {tt:9.3f} {tt / p[0]:6.2f}x {tu:8.3f} {tu / p[1]:6.2f}x "
                      f"{tc:10.3f} {tc / p[2]:6.2f}x")
            d, o = med["default"], med["off"]
            print(f"{name:9} {'default/off':>18} {d[0] / o[0]:6.2f}x {'':8} {d[1] / o[1]:6.2f}x "
                  f"{'':10} {d[2] / o[2]:6.2f}x", flush=True)
        print("\nunwind_cost (CPU time per stack; bench/unwind_cost.c):")
        for depth in ("8", "24"):
            sys.stdout.write(subprocess.run([os.path.join(out, "unwind_cost"), depth, "20000"],
                                            capture_output=True, text=True).stdout)


if __name__ == "__main__":
    sys.exit(main())
