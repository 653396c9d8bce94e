#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-fault cost of recording, seen from inside the target.

Runs each workload plain and under each faultline binary given,
alternately, after a warm-up, and takes the target's own CPU time (user +
system), as /usr/bin/time reports it from inside the recording
(`faultline record -- /usr/bin/time -f ... TARGET`): the BPF programs run in
the faulting task's context, so their cost is in its system time, while
faultline's start-up, its collector and the other work on a shared machine
are not.  (Before 2026-11-30 /usr/bin/time wrapped `faultline record`
itself and so counted the collector's CPU and its start-up, about 1 us per
fault of touch's 262,144.)  Prints medians and the cost per fault in
microseconds: (recorded - plain) / faults.

usage: bench/faultcost.py [--runs N] FAULTLINE [FAULTLINE...]
"""
import argparse
import os
import statistics
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# workload: (source, argv tail, faults it takes)
LOADS = {
    "touch": ("touch.c", ["256", "4"], 4 * 65536),   # one fresh 256 MiB mmap per round
    "brkheap": ("brkheap.c", ["256", "4"], 4 * 65536),  # the brk heap, merged, 4096 sbrk steps per round
}


def target_time(prefix, argv):
    """The CPU time of argv alone (its own and its children's), run after prefix (a recorder, or nothing)."""
    p = subprocess.run(prefix + ["/usr/bin/time", "-f", "FAULTCOST %e %U %S"] + argv, capture_output=True, text=True,
                       check=True)
    line = [l for l in p.stderr.splitlines() if l.startswith("FAULTCOST ")][-1]
    e, u, s = (float(x) for x in line.split()[1:])
    return u + s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("faultline", nargs="+")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        db = os.path.join(out, "run.db")
        for name, (src, args, faults) in LOADS.items():
            exe = os.path.join(out, name)
            subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, src)], check=True)
            variants = [[]] + [[fl, "record", "--force", "-o", db, "--"] for fl in a.faultline]
            for v in variants:  # warm-up
                target_time(v, [exe] + args)
            times = [[] for _ in variants]
            for _ in range(a.runs):
                for i, v in enumerate(variants):
                    times[i].append(target_time(v, [exe] + args))
            plain = statistics.median(times[0])
            print(f"{name:6} plain {plain:.3f}s cpu", end="")
            for fl, t in zip(a.faultline, times[1:]):
                m = statistics.median(t)
                print(f" | {fl}: {m:.3f}s {m / plain:.2f}x {(m - plain) / faults * 1e6:.2f} us/fault", end="")
            print(f"  ({a.runs} alternating runs, medians; spread {min(times[0]):.2f}-{max(times[0]):.2f}s plain)",
                  flush=True)


if __name__ == "__main__":
    main()
