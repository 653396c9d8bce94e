#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Overhead of `faultline record` as a wall-time ratio against the plain run.

Each workload runs plain and recorded alternately (plain, recorded, plain, ...)
after a warm-up of each, so both see the same machine state: this VM hands idle
memory back to the host after ~2 s and faulting it in again is ~3x slower.
Prints the median of each and the ratio of medians.

usage: bench/bench.py [--runs N] [--only NAME,...] [--no-bpf] [--faultline PATH]
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


def build(out):
    for w in ("touch", "cow", "churn"):
        subprocess.run(["gcc", "-O2", "-pthread", "-o", os.path.join(out, w), os.path.join(HERE, w + ".c")],
                       check=True)
    sql = os.path.join(out, "sq.sql")
    with open(sql, "w") as f:
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);\n"
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<300000)\n"
                "INSERT INTO t SELECT x, x*7919 % 1000003, hex(randomblob(16)) FROM c;\n"
                "CREATE INDEX ta ON t(a);\nSELECT count(*), sum(a) FROM t;\n")
    return {
        "touch": [os.path.join(out, "touch"), "256", "4"],
        "cow": [os.path.join(out, "cow"), "32768", "4"],
        "churn": [os.path.join(out, "churn"), "20000", "4"],
        "sqlite": ["sqlite3", "-init", sql, ":memory:", ".quit"],
    }


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-bpf", action="store_true")
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        loads = build(out)
        db = os.path.join(out, "bench.db")
        rec = [a.faultline, "record", "--force", "-o", db] + (["--no-bpf"] if a.no_bpf else []) + ["--"]
        print(f"{'workload':10} {'plain s':>9} {'faultline s':>12} {'ratio':>7}   ({a.runs} alternating runs, medians)")
        for name, argv in loads.items():
            if a.only and name not in a.only.split(","):
                continue
            timed(argv), timed(rec + argv)  # warm up both
            plain, traced = [], []
            for _ in range(a.runs):
                plain.append(timed(argv))
                traced.append(timed(rec + argv))
            p, t = statistics.median(plain), statistics.median(traced)
            print(f"{name:10} {p:9.3f} {t:12.3f} {t / p:7.2f}x", flush=True)


if __name__ == "__main__":
    sys.exit(main())
