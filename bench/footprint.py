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

With --regions WORKLOAD, the same per process and region group (each plain fault's address placed in the
mapping perf saw it in, against `check`'s count for that process and region): most regions count the
same in every run, so a difference there is the footprint, and the rows that differ say where.

usage: bench/footprint.py [--runs N] [--faultline PATH] [--per-process | --regions WORKLOAD]
"""
import argparse
import collections
import json
import os
import re
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


def plain_regions(argv, tmp):
    """{(process, group): faults} of a plain run: each fault's address (perf record -d) placed in the
    mapping perf saw it in (a fork child starts with its parent's, an exec with none); group: a
    file's base name, "anon" (heap included), "stack", "vdso" or "vvar"."""
    data = os.path.join(tmp, "regions.data")
    subprocess.run(["python3", "-c", "import ctypes, os, sys; ctypes.CDLL(None).prctl(41, 1, 0, 0, 0); "
                    "os.execv(sys.argv[1], sys.argv[1:])", shutil.which("perf") or "perf", "record", "-q", "-d",
                    "-c", "1", "-e", "minor-faults", "-e", "major-faults", "-o", data, "--"] + argv,
                   capture_output=True, check=True)
    out = subprocess.run(["perf", "script", "-i", data, "--show-mmap-events", "--show-task-events", "-F",
                          "comm,pid,event,addr"], capture_output=True, text=True, check=True).stdout
    maps, comm, counts = collections.defaultdict(list), {}, collections.Counter()
    for line in out.splitlines():
        m = re.search(r"PERF_RECORD_MMAP2? (\d+)/\d+: \[(0x[0-9a-f]+)\((0x[0-9a-f]+)\).*\]: \S+ (.*)$", line)
        if m:
            name = m.group(4).strip()
            group = "anon" if name.startswith("//anon") or not name else os.path.basename(name).strip("[]")
            maps[int(m.group(1))].append((int(m.group(2), 16), int(m.group(3), 16), group))
            continue
        m = re.search(r"PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):", line)
        if m and m.group(1) == m.group(2):
            maps[int(m.group(1))] = list(maps[int(m.group(3))])
            continue
        m = re.search(r"PERF_RECORD_COMM exec: (\S+):(\d+)/", line)
        if m:
            comm[int(m.group(2))] = m.group(1)
            maps[int(m.group(2))] = []
            continue
        f = line.split()
        if len(f) >= 4 and f[2].endswith("faults:") and f[1].isdigit():
            pid, addr = int(f[1]), int(f[3], 16)
            group = next((g for s, n, g in reversed(maps[pid]) if s <= addr < s + n),
                         "stack" if addr >= 0x7ff000000000 else "anon")
            counts[(pid, "stack" if group == "stack" else group)] += 1
    return collections.Counter({(comm.get(pid, "?"), g): n for (pid, g), n in counts.items() if pid in comm})


def own_regions(fl, db, keys, tmp):
    """The recording's own faults per (process, group) of keys, as `check` counts them."""
    kinds = {"anon": ["anon", "heap"], "stack": ["stack"], "vdso": ["vdso"], "vvar": ["vvar"]}
    lines, names = [], {}
    for i, (proc, group) in enumerate(sorted(keys)):
        for k, sel in enumerate(("kind = " + x for x in kinds[group]) if group in kinds else ["path = */" + group]):
            lines += [f"[r{i}.{k}]", f"exe = */{proc}", sel, "max-minor = 1000000000", "max-major = 1000000000"]
            names[f"r{i}.{k}"] = (proc, group)
    path = os.path.join(tmp, "regions.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([fl, "check", "--format", "json", "--limits", path, db], capture_output=True, text=True)
    got = collections.Counter()
    for r in json.loads(p.stdout)["limits"]:
        if r.get("check") in names:
            got[names[r["check"]]] += r["measured"]
    return got


def regions(fl, name, runs, tmp):
    """Per process and region group: plain against own, alternating; the rows that differ."""
    argv = WORKLOADS[name]
    plains, owns = [], []
    for _ in range(runs):
        plains.append(plain_regions(argv, tmp))
        db = os.path.join(tmp, "g.db")
        subprocess.run([fl, "record", "--force", "--thp=never", "-o", db, "--"] + argv, capture_output=True,
                       check=True)
        owns.append(own_regions(fl, db, set().union(*plains), tmp))
    print(f"{'process':10} {'region':28} {'plain':>6} {'own':>6} {'diff':>6}  (medians of {runs}; every run)")
    for key in sorted(set().union(*plains)):
        a = [c[key] for c in plains]
        b = [c[key] for c in owns]
        if statistics.median(a) != statistics.median(b):
            print(f"{key[0]:10} {key[1]:28} {statistics.median(a):6.1f} {statistics.median(b):6.1f} "
                  f"{statistics.median(b) - statistics.median(a):+6.1f}  {sorted(a)} {sorted(b)}")


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
    ap.add_argument("--regions", metavar="WORKLOAD", choices=list(WORKLOADS),
                    help="per process and region group (perf record -d), the rows whose medians differ")
    a = ap.parse_args()
    if a.regions:
        with tempfile.TemporaryDirectory() as tmp:
            regions(a.faultline, a.regions, a.runs, tmp)
        return 0
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
