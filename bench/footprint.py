#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""faultline's own footprint in the target, against plain runs.

For each workload: the page faults of a plain run as `perf stat` counts them (every process of the
command), then the same command recorded (THP off in both; medians of N runs of each, alternating), with
  - the kernel's total for the recorded processes (min_flt + maj_flt: faultline's footprint in),
  - the program's own faults as `faultline check` counts them (faultline's footprint out),
  - what faultline classified as its own.
The last column, own minus plain (the difference of the means, and its standard error), is what the
footprint rules leave in.  With --per-process, the
same per process: each counted fault of the plain runs from `perf record -c 1` (processes named by
their last command, in the order they started), against each recorded process's own faults.

usage: bench/footprint.py [--runs N] [--faultline PATH] [--per-process]
"""
import argparse
import collections
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQL = ("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
       "SELECT x + 1 FROM c WHERE x < 20000) INSERT INTO t SELECT x, hex(randomblob(16)) FROM c; "
       "SELECT count(*), sum(length(b)) FROM t;")
WORKLOADS = {
    "true": ["/usr/bin/true"],
    "echo": ["/usr/bin/echo", "hello"],
    "bash pipeline": ["/usr/bin/bash", "-c", "seq 2000 | sort -r | wc -l"],
    "sqlite3": ["/usr/bin/sqlite3", ":memory:", SQL],
}


def perf_faults(argv):
    """perf stat's count of the plain command (all its processes), THP off as `record --thp=never`
    runs it: perf itself runs under the prctl (inherited), and counts only the command it execs."""
    p = subprocess.run(["python3", "-c", "import ctypes, os, sys; ctypes.CDLL(None).prctl(41, 1, 0, 0, 0); "
                        "os.execv(sys.argv[1], sys.argv[1:])", shutil.which("perf") or "perf", "stat", "-x,",
                        "-e", "minor-faults,major-faults", "--"] + argv, capture_output=True, text=True, check=True)
    n = 0
    for line in p.stderr.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[2] in ("minor-faults", "major-faults"):
            n += int(f[0])
    return n


def named(counts, comm_of, order):
    """{"seq": n, "sort": n, ...}: per process, by its last command (with #2... for repeats)."""
    seen, out = collections.Counter(), {}
    for pid in order:
        seen[comm_of[pid]] += 1
        out[comm_of[pid] + (f"#{seen[comm_of[pid]]}" if seen[comm_of[pid]] > 1 else "")] = counts[pid]
    return out


def perf_faults_per_process(argv, tmp):
    """Each fault the kernel counted (perf record of every minor and major fault event), per process."""
    data = os.path.join(tmp, "perf.data")
    subprocess.run(["python3", "-c", "import ctypes, os, sys; ctypes.CDLL(None).prctl(41, 1, 0, 0, 0); "
                    "os.execv(sys.argv[1], sys.argv[1:])", shutil.which("perf") or "perf", "record", "-q", "-c", "1",
                    "-e", "minor-faults", "-e", "major-faults", "-o", data, "--"] + argv,
                   capture_output=True, check=True)
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid"], capture_output=True, text=True,
                         check=True).stdout
    counts, comm_of, order = collections.Counter(), {}, []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 2 and f[1].isdigit():
            pid = int(f[1])
            if pid not in comm_of:
                order.append(pid)
            counts[pid] += 1
            comm_of[pid] = f[0]
    return named(counts, comm_of, order)


def own_per_process(db):
    """Each recorded process's own faults (the close-time summary, the rules `check` applies)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT p.id, p.exe, s.own_minor + s.own_major FROM process p JOIN proc_summary s"
                       " ON s.proc_id = p.id ORDER BY p.start_ns, p.id").fetchall()
    con.close()
    return named({i: n for i, _, n in rows}, {i: os.path.basename(e or "?")[:15] for i, e, _ in rows},
                 [i for i, _, _ in rows])


def per_process(fl, runs, tmp):
    print(f"{'workload':14} {'process':10} {'plain':>6} {'own':>6} {'own-plain':>9}")
    for name, argv in WORKLOADS.items():
        plains, owns = [], []
        for _ in range(runs):  # alternating
            plains.append(perf_faults_per_process(argv, tmp))
            db = os.path.join(tmp, "p.db")
            subprocess.run([fl, "record", "--force", "--thp=never", "-o", db, "--"] + argv, capture_output=True,
                           check=True)
            owns.append(own_per_process(db))
        for proc in owns[0]:
            plain = statistics.median(p.get(proc, 0) for p in plains)
            own = statistics.median(o.get(proc, 0) for o in owns)
            print(f"{name:14} {proc:10} {plain:6.0f} {own:6.0f} {own - plain:+9.0f}")


def recorded(fl, argv, tmp):
    db = os.path.join(tmp, "r.db")
    subprocess.run([fl, "record", "--force", "--thp=never", "-o", db, "--"] + argv, capture_output=True, check=True)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    kernel, before, gup = con.execute("SELECT sum(min_flt + maj_flt), sum(min_flt_before + maj_flt_before),"
                                      " sum(min_flt_gup + maj_flt_gup) FROM process").fetchone()
    con.close()
    p = subprocess.run([fl, "check", "--format", "json", "--max-minor", "1000000000", "--max-major", "1000000000",
                        db], capture_output=True, text=True)
    doc = json.loads(p.stdout)
    own = sum(r["measured"] for r in doc["limits"])
    fp = doc["faultline_footprint"]
    return kernel, kernel - before - gup, own, fp["minor"] + fp["major"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    ap.add_argument("--per-process", action="store_true")
    a = ap.parse_args()
    if a.per_process:
        with tempfile.TemporaryDirectory() as tmp:
            per_process(a.faultline, a.runs, tmp)
        return 0
    print(f"{'workload':14} {'plain':>7} {'kernel':>7} {'classified':>10} {'own':>6} {'faultline':>9} {'own-plain (mean, se)':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in WORKLOADS.items():
            plains, runs = [], []
            for _ in range(a.runs):  # alternating plain and recorded runs
                plains.append(perf_faults(argv))
                runs.append(recorded(a.faultline, argv, tmp))
            plain = statistics.median(plains)
            kernel, classified, own, fl = (statistics.median(r[i] for r in runs) for i in range(4))
            # own - plain as the difference of the means, with its standard error: a median of a few runs of a
            # program whose count varies by +-6 (the pipeline) moves by more than the bound it is held to
            owns = [r[2] for r in runs]
            diff = statistics.mean(owns) - statistics.mean(plains)
            se = (statistics.variance(owns) / len(owns) + statistics.variance(plains) / len(plains)) ** 0.5 \
                if a.runs > 1 else 0
            print(f"{name:14} {plain:7.0f} {kernel:7.0f} {classified:10.0f} {own:6.0f} {fl:9.0f} {diff:+6.1f} ±{se:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
