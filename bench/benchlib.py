# SPDX-License-Identifier: MIT
"""What the bench scripts share: timing a command, alternating rounds of
several commands after a warm-up, and the sqlite3 workload.

Why alternate: this VM hands idle memory back to the host after about 2 s
and faulting it in again is about 3x slower, so a plain run and a recorded
run compare only when taken side by side; each round runs every command
once, and the medians over the rounds are what the scripts print.
"""
import glob
import os
import statistics
import subprocess
import time


def timed(argv, outputs=()):
    """Wall seconds of one run of argv (output discarded; a failure raises).
    The files the glob patterns in outputs match are removed first, untimed:
    a tool writing over its last run's file pays for freeing it (a 115 MB
    recording replaced: 0.1-0.3 s of threads8's close, in rename), which is
    not the cost of recording."""
    for pattern in outputs:
        for path in glob.glob(pattern):
            os.unlink(path)
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def alternate(cmds, runs, outputs=()):
    """{name: argv} -> {name: median wall seconds}: one warm-up round, then
    `runs` rounds each running every command once, each round starting one
    command later: a command always run right after the same other one (a
    recording after the plain run, say) took that place's cost every time
    (2026-11-30: touch read 1.52x recorded against 1.37x for the build run
    after it, and 734 against 764 ms timed alternately apart)."""
    for argv in cmds.values():
        timed(argv, outputs)
    names = list(cmds)
    walls = {name: [] for name in cmds}
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            walls[name].append(timed(cmds[name], outputs))
    return {name: statistics.median(v) for name, v in walls.items()}


def record_cmd(faultline, db, no_bpf=False):
    """The `faultline record` prefix that writes db (replacing it)."""
    return [faultline, "record", "--force", "-o", db] + (["--no-bpf"] if no_bpf else []) + ["--"]


def sqlite_workload(out, rows=300000):
    """argv of sqlite3 building a `rows`-row table and an index in memory."""
    sql = os.path.join(out, "sq.sql")
    with open(sql, "w") as f:
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);\n"
                f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<{rows})\n"
                "INSERT INTO t SELECT x, x*7919 % 1000003, hex(randomblob(16)) FROM c;\n"
                "CREATE INDEX ta ON t(a);\nSELECT count(*), sum(a) FROM t;\n")
    return ["sqlite3", "-init", sql, ":memory:", ".quit"]
