#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Is the collector linear in its input?  Recorded wall time per event as the
input grows: glibc-internal mmaps (blocks: malloc/free of 256 KiB blocks, each
an mmap and a munmap only the kernel reports) from 10k to 1M, and live
mappings (maps: one-page mmaps kept alive) from 1k to 100k.  Plain and
recorded runs alternate after a warm-up; medians.  Flat "rec us/event" and
"added us/event" columns mean linear.

usage: bench/linear.py [--runs N] [--only blocks,maps] [--no-bpf] [--faultline PATH]
"""
import argparse
import os
import subprocess
import sys
import tempfile

from benchlib import alternate, record_cmd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = {"blocks": [10_000, 100_000, 1_000_000], "maps": [1_000, 10_000, 100_000]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-bpf", action="store_true")
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        db = os.path.join(out, "linear.db")
        rec = record_cmd(a.faultline, db, a.no_bpf)
        print(f"{'workload':8} {'events':>9} {'plain s':>8} {'faultline s':>12} {'rec us/event':>13} "
              f"{'added us/event':>15}   ({a.runs} alternating runs, medians)")
        for name, sizes in SIZES.items():
            if a.only and name not in a.only.split(","):
                continue
            exe = os.path.join(out, name)
            subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, name + ".c")], check=True)
            for n in sizes:
                argv = [exe, str(n)]
                m = alternate({"plain": argv, "faultline": rec + argv}, a.runs, (db,))
                p, t = m["plain"], m["faultline"]
                events = 2 * n if name == "blocks" else n  # blocks: an mmap and a munmap each
                print(f"{name:8} {events:9} {p:8.3f} {t:12.3f} {t / events * 1e6:13.2f} "
                      f"{(t - p) / events * 1e6:15.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
