#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The floors under faultline's overhead: what a recording costs when parts
of its work are taken out, side by side with the plain run and the whole
recording: how low each ratio can go with this design on this machine
(docs/performance.md, "The floors under the ratios").

Two variants are built from this tree in a scratch directory, each with one
part of the work cut out of the source (never of the product: the cuts are
made here, on a copy):

  hooks   the fault-path eBPF programs (page_fault_user/kernel,
          mm_page_alloc/free, rss_stat, the PAGE_FAULTS_MIN/MAJ perf
          events) return at once: the kernel still runs every hook a
          classified fault needs, the programs do nothing
  norows  the collector writes no event and no vma row (eBPF on): what the
          rows of the calls cost it

Columns: plain; faultline; --no-bpf (the shim alone); hooks; norows;
norows --no-bpf (the shim, the rings and the collector's decoding, nothing
stored of the calls).  Each round runs every column once (benchlib.alternate),
medians over the rounds, as a ratio to plain; the first line is each column's
fixed start-up cost (its `true` less plain `true`), which the ratios include.

usage: bench/floors.py [--runs N] [--only WORKLOAD,...]   (bench/peers.py's workloads; default
       touch,cow,churn)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from benchlib import alternate, record_cmd
import peers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FAULT_PROGRAMS = ("int BPF_PROG(on_fault_user,", "int BPF_PROG(on_fault_kernel,", "int BPF_PROG(on_page_alloc,",
                  "int BPF_PROG(on_page_free,", "int BPF_PROG(on_rss_stat,", "int on_fault(struct bpf_perf_event_data *ctx)")

BATCH_FLUSH = "static void batch_flush(struct fl_store *s, struct batch *b)"
NO_CALL_ROWS = ("\tif (b->one == S_EVENT || b->one == S_VMA) { /* bench/floors.py: norows */\n"
                "\t\tb->n = 0;\n\t\tb->ntext = 0;\n\t\treturn;\n\t}\n")


def cut(path, anchor, insert):
    """Insert `insert` after the first '{' that follows anchor's only occurrence in path."""
    with open(path) as f:
        src = f.read()
    if src.count(anchor) != 1:
        sys.exit(f"floors.py: {os.path.relpath(path)} no longer has exactly one '{anchor}': update the cut")
    at = src.index("{", src.index(anchor)) + 1
    with open(path, "w") as f:
        f.write(src[:at] + insert + src[at:])


def cut_hooks(tree):
    for anchor in FAULT_PROGRAMS:
        cut(os.path.join(tree, "bpf", "fl_kern.bpf.c"), anchor, "\n\treturn 0; /* bench/floors.py: hooks */")


def cut_rows(tree):
    cut(os.path.join(tree, "collector", "store.c"), BATCH_FLUSH, "\n" + NO_CALL_ROWS)


def variant(out, name, make_cut):
    """faultline built from a copy of this tree with make_cut applied; its path."""
    tree = os.path.join(out, name)
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard"], capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(tree, rel))
    make_cut(tree)
    build = os.path.join(tree, "build")
    subprocess.run(["meson", "setup", build], cwd=tree, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build, "faultline", "libfaultline-preload.so"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(build, "faultline")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="touch,cow,churn")
    ap.add_argument("--faultline", default=os.path.join(ROOT, "build", "faultline"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        hooks = variant(out, "hooks", cut_hooks)
        norows = variant(out, "norows", cut_rows)
        fl = os.path.abspath(a.faultline)
        db = os.path.join(out, "fl.db")
        cols = {
            "plain": lambda argv: argv,
            "faultline": lambda argv: record_cmd(fl, db) + argv,
            "no-bpf": lambda argv: record_cmd(fl, db, no_bpf=True) + argv,
            "hooks": lambda argv: record_cmd(hooks, db) + argv,
            "norows": lambda argv: record_cmd(norows, db) + argv,
            "norows-no-bpf": lambda argv: record_cmd(norows, db, no_bpf=True) + argv,
        }
        loads = peers.build(out)  # the workloads bench/peers.py times, by the same names
        names = list(cols)[1:]
        # the fixed start-up cost of each column first: `true`, less plain `true`
        m = alternate({c: f(loads["true"]) for c, f in cols.items()}, a.runs, (db,))
        print(f"{a.runs} rounds, medians; ratio = wall time / plain")
        print(f"{'start-up':10} {'ms':>8}" + "".join(f"{(m[c] - m['plain']) * 1000:14.0f} " for c in names))
        print(f"{'workload':10} {'plain s':>8}" + "".join(f"{c:>15}" for c in names))
        for load in a.only.split(","):
            if load not in loads or not shutil.which(loads[load][0]):
                print(f"{load:10} (not available)")
                continue
            m = alternate({c: f(loads[load]) for c, f in cols.items()}, a.runs, (db,))
            print(f"{load:10} {m['plain']:8.3f}" + "".join(f"{m[c] / m['plain']:14.2f}x" for c in names), flush=True)


if __name__ == "__main__":
    sys.exit(main())
