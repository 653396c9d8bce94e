#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""faultline beside its peers, in one run: wall time of each tool on each
workload, as a ratio to the plain run.

Tools: plain, faultline, perf stat (counting page faults), perf record -e
page-faults -c 1 -g (a sample with a stack for every fault), heaptrack and
bpftrace (counting user page faults per 2 MiB range); a tool that is not
installed is shown as "-".  Workloads: touch, cow, churn, heap, filemap (a
file read through a cold mmap), sqlite3, threads8 (8 threads x 50,000
mmap+munmap), threads64 (64 threads x 5,000), node and java (each building
a few million small objects; these four only when --only names them).  Each round runs every tool once
in turn, each round starting one tool later (benchlib.alternate), after a warm-up round; medians over
the rounds.

The fixed start-up cost of each tool (its median on `true`, less plain
`true`) is printed apart; "net" is the ratio with that cost taken out, the
cost per event of the workload.

--base PATH adds a column "fl-base" for another faultline build (before and
after a change, side by side in the same rounds).

usage: bench/peers.py [--runs N] [--only WORKLOAD,...] [--tools TOOL,...] [--faultline PATH] [--base PATH]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from benchlib import alternate, record_cmd, sqlite_workload

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PF_BT = """BEGIN { @track[cpid] = 1; }
tracepoint:sched:sched_process_fork /@track[args->parent_pid]/ { @track[args->child_pid] = 1; }
tracepoint:exceptions:page_fault_user /@track[pid]/ { @faults[args->address >> 21] = count(); }
END { clear(@track); }
"""


NODE_WORK = "let a = []; for (let i = 0; i < 3e6; i++) a.push({ i, s: 'x' + i }); console.log(a.length)"
JAVA_WORK = """public class Alloc {
    public static void main(String[] args) {
        java.util.ArrayList<int[]> a = new java.util.ArrayList<>();
        for (int i = 0; i < 3000000; i++) a.add(new int[] { i, i + 1 });
        System.out.println(a.size());
    }
}
"""


BY_NAME_ONLY = ("threads8", "threads64", "node", "java")  # minutes per round with every tool


def build(out):
    for w in ("touch", "cow", "churn", "heap", "filemap"):
        subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-pthread", "-o", os.path.join(out, w),
                        os.path.join(HERE, w + ".c")], check=True)
    with open(os.path.join(out, "pf.bt"), "w") as f:
        f.write(PF_BT)
    java = os.path.join(out, "Alloc.java")  # run as a source file: java compiles it in memory
    with open(java, "w") as f:
        f.write(JAVA_WORK)
    data = os.path.join("/var/tmp", "faultline-filemap.dat")
    subprocess.run([os.path.join(out, "filemap"), "64", data], check=True, stdout=subprocess.DEVNULL)
    return {
        "true": ["/bin/true"],
        "touch": [os.path.join(out, "touch"), "256", "4"],
        "cow": [os.path.join(out, "cow"), "32768", "4"],
        "churn": [os.path.join(out, "churn"), "20000", "4"],
        "heap": [os.path.join(out, "heap"), "50000", "3000", "2"],
        "filemap": [os.path.join(out, "filemap"), "64", data],
        "sqlite3": sqlite_workload(out),
        "threads8": [os.path.join(out, "churn"), "50000", "8", "map"],
        "threads64": [os.path.join(out, "churn"), "5000", "64", "map"],
        "node": ["node", "-e", NODE_WORK],
        "java": ["java", "-Xmx512m", java],
    }


def tools(out, faultline, base=None):
    t = {
        "plain": lambda argv: argv,
        "faultline": lambda argv: record_cmd(faultline, os.path.join(out, "fl.db")) + argv,
        "fl-base": lambda argv: record_cmd(base, os.path.join(out, "flb.db")) + argv,
        "perf-stat": lambda argv: ["perf", "stat", "-e", "page-faults", "-o", os.path.join(out, "stat.txt")] + argv,
        "perf-rec": lambda argv: ["perf", "record", "--no-bpf-event", "-q", "-e", "page-faults", "-c", "1", "-g",
                                  "-o", os.path.join(out, "perf.data")] + argv,
        "heaptrack": lambda argv: ["heaptrack", "-r", "-o", os.path.join(out, "ht")] + argv,
        # bpftrace -c wants a path naming one binary (/usr/bin/sqlite3 and /bin/sqlite3 are two to it)
        "bpftrace": lambda argv: ["bpftrace", "-o", os.path.join(out, "bt.txt"), "-c",
                                  " ".join([os.path.realpath(shutil.which(argv[0]) or argv[0])] + argv[1:]),
                                  os.path.join(out, "pf.bt")],
    }
    have = {"perf-stat": "perf", "perf-rec": "perf", "heaptrack": "heaptrack", "bpftrace": "bpftrace"}
    if shutil.which("bpftrace") and not os.path.ismount("/sys/kernel/tracing"):
        # bpftrace finds tracepoints through tracefs
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)
    if not base:
        del t["fl-base"]
    return {name: f for name, f in t.items() if name not in have or shutil.which(have[name])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--tools", default="")
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    ap.add_argument("--base", default="")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        loads = build(out)
        tl = tools(out, os.path.abspath(a.faultline), os.path.abspath(a.base) if a.base else None)
        if a.tools:
            tl = {k: v for k, v in tl.items() if k in ("plain", "fl-base") or k in a.tools.split(",")}
        names = list(tl)
        # every tool's file of its last run, removed before the next (benchlib.timed)
        outputs = [os.path.join(out, f) for f in ("fl.db", "flb.db", "perf.data*", "ht*", "stat.txt", "bt.txt")]
        start = None
        for load, argv in loads.items():
            if load != "true" and (load not in a.only.split(",") if a.only else load in BY_NAME_ONLY):
                continue
            m = alternate({t: tl[t](argv) for t in names}, a.runs, outputs)
            if start is None:  # `true` comes first: each tool's fixed start-up cost
                start = {t: m[t] - m["plain"] for t in names}
                print(f"{a.runs} rounds, medians; ratio = tool / plain wall time; net = ratio without the "
                      "tool's fixed start-up cost")
                print(f"{'start-up':10}" + "".join(f"{t:>16}" for t in names[1:]))
                print(f"{'ms':10}" + "".join(f"{start[t] * 1000:16.0f}" for t in names[1:]))
                print(f"{'workload':10} {'plain s':>8}" + "".join(f"{t + ' ratio/net':>22}" for t in names[1:]))
                continue
            p = m["plain"]
            cells = "".join(f"{m[t] / p:14.2f}x /{(m[t] - start[t]) / p:5.2f}x" for t in names[1:])
            print(f"{load:10} {p:8.3f}{cells}", flush=True)
        wanted = a.tools.split(",") if a.tools else ("perf-stat", "perf-rec", "heaptrack", "bpftrace")
        missing = [t for t in wanted if t not in tl]
        if missing:
            print("not installed: " + ", ".join(missing))


if __name__ == "__main__":
    sys.exit(main())
