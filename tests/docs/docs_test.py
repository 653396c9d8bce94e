#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The `docs` suite: every example is a test.

Records the bundled demo (build/faultline-demo) once with eBPF, then:
  commands  every `$ faultline ...` line in README.md and docs/*.md runs against
            the demo recording (file names and ids replaced by the demo's) and
            exits 0; the output shown under it has the shape of what it prints
            (numbers, addresses and widths aside), line by line;
  sql       every ```sql block in README.md and docs/*.md runs on the recording;
  figures   the figures the README states about the demo hold, and the queries
            the docs show agree with `why` and `report`.

usage: docs_test.py FAULTLINE DEMO SOURCE_ROOT GROUP   (GROUP: commands, sql, figures, layout)
Exit 0 pass, 1 fail, 77 skip (no eBPF and not required)."""
import glob
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile

FL, DEMO, ROOT, GROUP = sys.argv[1:5]
FL, DEMO = os.path.abspath(FL), os.path.abspath(DEMO)
REQUIRE_BPF = os.environ.get("FAULTLINE_REQUIRE_BPF") == "1"
TMP = tempfile.mkdtemp(prefix="faultline-docs-")
DB = os.path.join(TMP, "demo.db")
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
failures = []

# Commands shown that are not viewer commands over a recording, and where they are tested instead.
NOT_HERE = {
    "record": "records another program (tests/e2e)",
    "check": "records another program against limits (tests/check)",
}


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, cwd=TMP, timeout=120, **kw)


def record_demo():
    p = run([FL, "record", "--force", "-o", DB, "--", DEMO])
    if "eBPF unavailable" in p.stderr:
        if REQUIRE_BPF:
            sys.exit("eBPF required but unavailable: " + p.stderr.strip())
        print("skip: eBPF unavailable")
        sys.exit(77)
    if p.returncode != 0:
        sys.exit(f"recording the demo failed ({p.returncode}): {p.stderr}")


def query(sql, *args):
    con = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def root_pid():
    return query("SELECT pid FROM process ORDER BY start_ns LIMIT 1")[0][0]


# ---- examples in the docs --------------------------------------------------------

def fenced_blocks(path):
    """(language, first line number, lines) of each fenced block."""
    lang, start, lines = None, 0, []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith("```"):
            if lang is None:
                lang, start, lines = line[3:].strip(), n + 1, []
            else:
                yield lang, start, lines
                lang = None
        elif lang is not None:
            lines.append(line)


def commands(lines):
    """(command text, the output lines shown under it) for each `$ faultline` in a block."""
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ faultline "):
            i += 1
            continue
        text = lines[i][2:]
        i += 1
        while True:  # a command continues over lines while a quote is open
            try:
                shlex.split(text, comments=True)
                break
            except ValueError:
                if i >= len(lines):
                    break
                text += "\n" + lines[i]
                i += 1
        out = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        yield text, out


def examples():
    for path in DOCS:
        for lang, start, lines in fenced_blocks(path):
            for text, out in commands(lines):
                yield os.path.relpath(path, ROOT), start, text, out


def demo_args(argv):
    """argv of a shown command with the demo's recording, pid and event in place of the example's."""
    out = []
    for i, a in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if a.endswith(".db"):
            a = DB
        elif prev == "--pid":
            a = str(root_pid())
        elif prev == "--event" or (argv[1] == "stacks" and re.fullmatch(r"\d+", a)):
            a = str(query("SELECT min(id) FROM event WHERE stack_id IS NOT NULL")[0][0])
        elif argv[1] == "sql" and i == 3:
            a = re.sub(r"pid = \d+", f"pid = {root_pid()}", a)
        elif prev == "-o" and a != "-":
            a = os.path.join(TMP, os.path.basename(a))
        out.append(a)
    return out


UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
# Lines about the machine that recorded (its name, kernel and the features it lacks) differ on each,
# and so does the list of fault classes a process took (THP pages, vvar's pfn faults): the figures
# test checks the totals instead.
MACHINE = ("host ", "kernel ", "started ", "  faults   ")


def shape(line):
    """A regex for what a shown output line stands for: numbers, addresses, sizes and times
    vary from run to run, and so do column widths; the words do not."""
    out = []
    for tok in re.split(r"(\s+)", line.strip()):
        if not tok:
            continue
        if tok.isspace():
            out.append(r"\s+")
        elif re.search(r"\d", tok) or "/" in tok or tok.endswith(".db") or tok.rstrip(",;:)") in UNITS:
            # a token with a number in it (a size, time, pid, address, file:line), a size's unit, or a path
            out.append(r"\S+")
        else:
            out.append(re.escape(tok))
    return "^\\s*" + "".join(out) + "\\s*$"


def test_commands():
    record_demo()
    n = 0
    for doc, line, text, shown in examples():
        where = f"{doc}:{line}: {text.splitlines()[0]}"
        argv = shlex.split(text.split("|")[0].split("&&")[0], comments=True)
        if argv[1] in NOT_HERE:
            print(f"not run here: {where}: {NOT_HERE[argv[1]]}")
            continue
        n += 1
        p = run([FL] + demo_args(argv)[1:])
        check(p.returncode == 0, f"{where}: exit {p.returncode}: {p.stderr}")
        check(p.stdout or "-o" in argv, f"{where}: printed nothing")
        got = p.stdout.splitlines()
        if "demo.db" not in argv:
            continue  # output shown from another program's recording: it runs, its lines are not the demo's
        for s in shown:
            if not s.strip() or s.strip() == "..." or s.startswith(MACHINE):
                continue
            rx = re.compile(shape(s))
            check(any(rx.match(g) for g in got), f"{where}: the output shown has a line it does not print:\n  {s}\n"
                  f"--- it printed\n{p.stdout}")
    check(n >= 8, f"only {n} commands found in the docs")
    print(f"{n} commands run")


def sql_blocks():
    for path in DOCS:
        for lang, start, lines in fenced_blocks(path):
            if lang == "sql":
                yield os.path.relpath(path, ROOT), start, "\n".join(lines)
        # `faultline sql FILE "..."` in a shown command is run by test_commands


def test_sql():
    record_demo()
    n = 0
    for doc, line, sql in sql_blocks():
        n += 1
        p = run([FL, "sql", DB, sql.rstrip().rstrip(";")])
        check(p.returncode == 0, f"{doc}:{line}: exit {p.returncode}: {p.stderr}\n{sql}")
    check(n >= 5, f"only {n} SQL examples found")
    print(f"{n} SQL examples run")


# ---- what the docs say about the demo ----------------------------------------------

def fl_json(*args):
    p = run([FL, *args, "--format", "json"])
    check(p.returncode == 0, f"{args}: exit {p.returncode}: {p.stderr}")
    return json.loads(p.stdout) if p.returncode == 0 else None


def test_figures():
    record_demo()
    pid = root_pid()
    rep = fl_json("report", DB)
    procs = {p["pid"]: p for p in rep["processes"]}
    root = procs[pid]
    worker = [p for p in rep["processes"] if p["pid"] != pid]
    check(len(worker) == 1, f"the demo forks one worker: {list(procs)}")
    # "The arena is 64 MiB mapped but only 2048 pages faulted"
    arena = query("SELECT sum(f.reads + f.writes + f.execs) FROM vma v JOIN fault f ON f.vma_id = v.id"
                  " WHERE v.proc_id = (SELECT id FROM process WHERE pid = ?) AND v.end - v.start = 64 << 20", pid)
    check(arena == [(2048,)], f"the arena's faults: {arena}")
    # "The file mapping read 1024 pages with 64 page-cache faults" (fault-around: 16 pages each)
    table = query("SELECT sum(f.pagecache + f.major_file) FROM vma v JOIN fault f ON f.vma_id = v.id"
                  " WHERE v.path LIKE '/tmp/faultline-demo.table%' AND v.pid = ?", pid)
    check(table == [(64,)], f"the table's faults: {table}")
    # "The index chunks took 8192 first-touch faults", "4096 [cow] at run_worker (demo.c:80)"
    sites = {}  # one instruction may be several sites, one per caller chain
    for s in (s for p in rep["processes"] for s in p["fault_sites"] if "frame" in s):
        sites[s["frame"].get("function"), s["class"]] = sites.get((s["frame"].get("function"), s["class"]), 0) + s["count"]
    check(sites.get(("run_worker", "cow_anon")) == 4096, f"run_worker's copy-on-write faults: {sites}")
    check(sites.get(("reserve_arena", "anon_new")) == 2048, f"reserve_arena's first touches: {sites}")
    # the memset's faults can come at several instructions of it (the report lists the top three sites)
    memset = query("SELECT sum(s.count) FROM fault_site s JOIN frame f ON f.id = s.frame_id"
                   " WHERE f.function LIKE '%memset%' AND s.class = 'anon_new'")[0][0]
    check(memset == 8192, f"the index chunks' first touches in memset: {sites}")
    # "The per-process totals add up exactly"
    for p in rep["processes"]:
        check(p["faults"]["totals_match"] is True, f"pid {p['pid']}: the kernel's totals: {p['faults']}")
    # why: the regions add up to the sample, and the sample is the report's resident figure
    w = fl_json("why", DB, "--pid", str(pid), "--top", "1000")
    check(sum(r["rss"] for r in w["regions"]) + w["other_regions"]["rss"] == w["sample"]["rss"],
          "why: regions add up to the sample")
    check(root["resident"]["rss"] == w["sample"]["rss"], "report's resident = why's sample")
    # the README's kind query: what the root process still had mapped at its end, at most its peak
    kinds = {r[0]: r[2] for r in query(README_KIND_SQL.replace("?pid", str(pid)))}  # kind -> KiB
    check(sum(kinds.values()) * 1024 <= root["peak"]["mapped"], f"kind query {kinds} > peak {root['peak']}")
    check(kinds.get("anon", 0) >= 64 << 10, f"kind query: the 64 MiB arena is still mapped: {kinds}")
    # docs/schema.md "still mapped at each process's end": the arena's stack holds 64 MiB in each process
    still = query(SCHEMA_STILL_MAPPED_SQL)
    arena_stack = query("SELECT e.stack_id FROM event e JOIN process p ON p.id = e.proc_id"
                        " WHERE p.pid = ? AND e.kind = 'mmap' AND e.a1 = 64 << 20", pid)[0][0]
    per_proc = sorted(b for p_, s, b in still if s == arena_stack)
    check(per_proc == [64 << 20, 64 << 20], f"still-mapped query: the arena per process: {per_proc}")


README_KIND_SQL = ""
SCHEMA_STILL_MAPPED_SQL = ""


def load_doc_queries():
    global README_KIND_SQL, SCHEMA_STILL_MAPPED_SQL
    for doc, line, text, shown in examples():
        argv = shlex.split(text, comments=True)
        if argv[1] == "sql" and "GROUP BY v.kind" in argv[3]:
            README_KIND_SQL = re.sub(r"v\.pid = \d+", "v.pid = ?pid", argv[3])
    for doc, line, sql in sql_blocks():
        before = open(os.path.join(ROOT, doc), encoding="utf-8").read().splitlines()[max(0, line - 7):line - 2]
        if "still mapped" in " ".join(before):
            SCHEMA_STILL_MAPPED_SQL = sql.rstrip().rstrip(";")
    check("?pid" in README_KIND_SQL, "README: the kind query names the process it looks at (v.pid = N)")
    check(SCHEMA_STILL_MAPPED_SQL, "docs/schema.md: the still-mapped query")


def test_layout():
    """No two source files share a base name (readers, and tools that resolve includes by name, confuse them)."""
    seen = {}
    for d in ("bpf", "collector", "common", "main", "preload", "viewer", "demo", "bench", "fuzz", "tests"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith((".c", ".h", ".cc", ".S")):
                    seen.setdefault(f, []).append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    twice = {f: paths for f, paths in seen.items() if len(paths) > 1}
    check(not twice, f"source files sharing a base name: {twice}")
    print(f"layout: {sum(len(p) for p in seen.values())} source files, every base name once")


def main():
    fn = globals().get("test_" + GROUP)
    if not fn:
        sys.exit(f"no test group {GROUP!r}")
    try:
        if GROUP == "figures":
            load_doc_queries()
        fn()
    finally:
        subprocess.run(["rm", "-rf", TMP])
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print(f"{GROUP}: ok")


main()
