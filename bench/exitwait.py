#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What exit samples cost: many short children of a real program, plain and recorded.

Each workload is run plain, recorded, and recorded with FAULTLINE_EXIT_SAMPLES=0 (no process waits
at exit), in alternating rounds after a warm-up (bench/benchlib.py); the medians and their ratios are
printed, then, from the last recording, how many processes waited at exit and for how long in all
(smaps_sample.held_ns) against how many processes there were.

usage: bench/exitwait.py [--runs N] [--faultline PATH] [--children N] [--only NAME]
"""
import argparse
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import alternate, record_cmd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workloads(n):
    return {
        # python3 children live ~20-40 ms: around the age from which an exit wait is offered
        "sh loop: python3 -c": ["sh", "-c", f"for i in $(seq {n}); do python3 -c 'x = bytearray(4 << 20)'; done"],
        # sqlite3 children live a few ms: younger than any offer
        "sh loop: sqlite3": ["sh", "-c", f"for i in $(seq {n}); do sqlite3 :memory: 'select 1' >/dev/null; done"],
        "make -j2: python3": ["make", "-j2", "-f", "-"],
        # children that live 0.3 s and hold 64 MiB: old enough that each waits at exit
        "sh loop: python3 0.3s": ["sh", "-c", f"for i in $(seq {max(n // 4, 1)}); do python3 -c "
                                  "'import time; x = bytearray(64 << 20); time.sleep(0.3)'; done"],
    }


MAKEFILE = "\n".join(["all: " + " ".join(f"t{i}" for i in range(40))] +
                     [f"t{i}:\n\t@python3 -c 'x = bytearray(4 << 20)'" for i in range(40)]) + "\n"


def waits(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        procs = con.execute("SELECT count(*) FROM process").fetchone()[0]
        n, total, most = con.execute("SELECT count(*), coalesce(sum(held_ns), 0), coalesce(max(held_ns), 0)"
                                     " FROM smaps_sample WHERE reason = 'exit'").fetchone()
        return procs, n, total / 1e6, most / 1e6
    finally:
        con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--children", type=int, default=40)
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    ap.add_argument("--only", help="run the workloads whose name contains this")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        mk = os.path.join(out, "Makefile")
        with open(mk, "w") as f:
            f.write(MAKEFILE)
        db, db0 = os.path.join(out, "on.db"), os.path.join(out, "off.db")
        print(f"{'workload':22} {'plain':>8} {'recorded':>9} {'no exit':>8} {'rec/plain':>9} {'exit cost':>9}"
              f"  procs  waited  held total  held max")
        for name, argv in workloads(a.children).items():
            if a.only and a.only not in name:
                continue
            if argv[0] == "make":
                argv = ["make", "-j2", "-f", mk]
            off = ["env", "FAULTLINE_EXIT_SAMPLES=0"] + record_cmd(a.faultline, db0) + argv
            m = alternate({"plain": argv, "on": record_cmd(a.faultline, db) + argv, "off": off}, a.runs, (db, db0))
            procs, n, total, most = waits(db)
            print(f"{name:22} {m['plain']:8.3f} {m['on']:9.3f} {m['off']:8.3f} {m['on'] / m['plain']:9.2f}"
                  f" {m['on'] / m['off']:9.3f}  {procs:5}  {n:6}  {total:7.1f} ms  {most:6.1f} ms")


if __name__ == "__main__":
    main()
