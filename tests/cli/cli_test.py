#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The `cli` suite: the viewer commands against fixture recordings built
from common/schema.sql plus tests/cli/fixtures/*.sql.

usage: cli_test.py FAULTLINE SCHEMA_SQL FIXTURES_DIR GROUP
GROUP is one of the test_* functions below, without the prefix."""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

FAULTLINE, SCHEMA, FIXTURES, GROUP = sys.argv[1:5]
SCHEMA_VERSION = int(re.search(r"^PRAGMA user_version = (\d+);", open(SCHEMA, encoding="utf-8").read(), re.M).group(1))
FAULTLINE = os.path.abspath(FAULTLINE)  # meson passes it relative to the build dir
TMP = tempfile.mkdtemp(prefix="faultline-cli-")
failures = []


def build(name, fixture=None, extra_sql=""):
    """A recording at TMP/name from the schema, a fixture file and extra SQL."""
    path = os.path.join(TMP, name)
    sql = open(SCHEMA, encoding="utf-8").read()
    if fixture:
        sql += open(os.path.join(FIXTURES, fixture), encoding="utf-8").read()
    con = sqlite3.connect(path)
    con.executescript(sql + extra_sql)
    con.close()
    return name  # faultline runs in TMP: messages name the file as given


def run(*args):
    p = subprocess.run([FAULTLINE, *args], capture_output=True, text=True, cwd=TMP)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def expect(args, rc, lines=(), err=None, absent=()):
    """Runs faultline ARGS: exit status rc, each of lines present (in order), stderr == err."""
    code, out, stderr = run(*args)
    label = " ".join(args)
    check(code == rc, f"{label}: exit {code}, wanted {rc}\n--- stdout\n{out}--- stderr\n{stderr}")
    got = out.splitlines()
    pos = 0
    for line in lines:
        try:
            pos = got.index(line, pos) + 1
        except ValueError:
            check(False, f"{label}: missing line (or out of order):\n  {line!r}\n--- stdout\n{out}")
    for line in absent:
        check(line not in got, f"{label}: unexpected line {line!r}")
    if err is not None:
        check(stderr == err, f"{label}: stderr {stderr!r}, wanted {err!r}")
    return out


def json_of(*args):
    code, out, stderr = run(*args, "--format", "json")
    check(code == 0, f"{' '.join(args)} --format json: exit {code}: {stderr}")
    try:
        return json.loads(out)
    except ValueError as e:
        check(False, f"{' '.join(args)} --format json: not JSON ({e}):\n{out}")
        return None


# ---- report -----------------------------------------------------------------

def test_report():
    tree = build("tree.db", "tree.sql")
    expect(["report", tree], 0, [
        "faultline report: tree.db",
        "command    ./forker --child 'crash me'",
        "started    2023-11-14 22:13:20 UTC, ran 2.500s",
        "host       testhost, kernel 6.1.0-test, page size 4096",
        "fidelity   bpf",
        "exit       exited 0",
        "LOST       channel_dropped: 12 (shim channel full)",
        "LOST       unpublished: 3",
        "processes (2)",
        "  1000    /usr/bin/forker  0.000s-2.500s  exited 0           faults 300 minor, 2 major  ./forker --child 'crash me'",
        "    1001  /usr/bin/forker  0.500s-1.000s  killed by SIGSEGV  faults 50 minor, 0 major   ./forker --child 'crash me'",
        "process 1000 /usr/bin/forker",
        "  calls    mmap 2 (1 failed), brk 1, fork 1, mprotect 1, munmap 1",
        "  faults   major_file 2, anon_new 2048, pagecache 3 (total 2053)",
        "  peak     8.3 MiB mapped at 0.300s; largest regions then:",
        "    7f0000001000-7f0000800000    8.0 MiB  rw-p  anon   2048 faults",
        "        alloc_buffer (alloc.c:42)",
        "        main (main.c:17)",
        "        __libc_start_call_main (libc.so.6+0x271ca)",
        "    555555580000-5555555a1000  132.0 KiB  rw-p  heap                [heap]",
        "        no user stack (seen by the kernel only)",
        "    7ffffffde000-7ffffffff000  132.0 KiB  rw-p  stack               [stack]",
        "        (mapped before start)",
        "process 1001 /usr/bin/forker",
        "  calls    exit 1, mmap 1",
        "  faults   anon_new 256, cow_anon 10 (total 266)",
        "  peak     9.0 MiB mapped at 0.600s; largest regions then:",
        "    7f1000000000-7f1000100000  1.0 MiB  rw-p  anon  256 faults",
        "        child_work (main.c:30)",
        "    555555554000-555555556000  8.0 KiB  r-xp  file              /usr/bin/forker",
        "        (inherited at fork)",
        "messages",
        "  0.100s  [1000]  stack unwinding slow: 2 frames skipped",
        "  1.000s  [-]  pid 1001 killed by SIGSEGV",
    ], err="", absent=["losses     nothing lost", "LOST       bpf_ringbuf: 0"])
    # the fault-total check covers the processes not detailed too: 13 processes, the 10 detailed are the
    # two with RSS then by id; pid 1012 (hidden) has 7 faults the kernel counted and no fault row holds
    extra = "".join(f"INSERT INTO process VALUES ({i}, {999 + i}, 1000, 1, '/bin/true', NULL, 1600000000, 1700000000,"
                    f" 0, NULL, 0, {7 if i == 13 else 0}, 0, 0, 0, 0, 0);" for i in range(3, 14))
    many = build("many.db", "tree.sql", extra)
    expect(["report", many], 0, [
        "3 more processes, smaller at their peak: --pid P shows one, --all every one",
        "MISMATCH   the kernel's fault totals differ from the classified ones in 1 process not shown above"
        " (pid and faults in no class; negative: counted twice): 1012 (+7); --pid P shows one",
    ], err="")
    rep = json_of("report", many)
    check(rep and rep["fault_totals_mismatch"] == [{"pid": 1012, "unclassified": 7}],
          f"report json fault_totals_mismatch: {rep and rep.get('fault_totals_mismatch')}")
    # --top limits the VMAs listed at each peak
    out = expect(["report", tree, "--top", "1"], 0)
    check(out.count("largest regions then") == 2 and "[heap]" not in out, "report --top 1 lists one VMA per process")

    shim = build("shim.db", "shim_run.sql")
    expect(["report", shim], 0, [
        "faultline report: shim.db (recording incomplete)",
        "recording  incomplete: still being written, or the recorder stopped early",
        "command    /bin/true",
        "started    2023-11-14 22:15:00 UTC, recorded so far 0.500s",
        "fidelity   shim: eBPF unavailable (need root or CAP_BPF+CAP_PERFMON)",
        "exit       unknown",
        "LOST       recording_incomplete (faultline stopped before closing the recording: "
        "what came after its last commit is missing)",
        "  2000  /bin/true  0.000s-?  still running when the recording stopped  -  /bin/true",
        "  calls    mmap 1",
        "  peak     76.0 KiB mapped at 0.500s; largest regions then:",
        "    7f2000000000-7f2000010000  64.0 KiB  r--p  file    /etc/ld.so.cache",
        "        0x401000",
        "    7f3000000000-7f3000002000   8.0 KiB  rw-p  anon",
        "        (found by a /proc resync; creator unknown)",
        "messages",
        "  none",
    ], err="")


def test_report_json():
    tree = build("tree.db", "tree.sql")
    d = json_of("report", tree)
    if d is None:
        return
    check(d["complete"] is True and d["lost"] is True, "report json: complete, lost")
    check(d["losses"] == [{"cause": "channel_dropped", "count": 12, "detail": "shim channel full"},
                          {"cause": "unpublished", "count": 3, "detail": None}], f"report json losses {d['losses']}")
    check(d["run"]["argv"] == ["./forker", "--child", "crash me"], "report json run.argv")
    check(d["run"]["duration_ns"] == 2500000000 and d["run"]["exit_status"] == 0, "report json run")
    procs = {p["pid"]: p for p in d["processes"]}
    check(sorted(procs) == [1000, 1001], "report json pids")
    parent, child = procs[1000], procs[1001]
    check(child["parent_id"] == parent["id"] and child["depth"] == 1, "report json tree")
    check(child["exit_signal"] == 11 and child["status"] == "killed by SIGSEGV", "report json child status")
    check(parent["peak"]["mapped"] == 8667136 and parent["peak"]["time_ns"] == 1300000000, "report json peak")
    # row 4 is a PROT_NONE reservation: address space, never listed as memory
    check([v["id"] for v in parent["peak"]["vmas"]] == [5, 6, 2, 1], "report json peak vma order")
    check(parent["peak"]["vmas"][0]["stack_id"] == 1 and parent["peak"]["vmas"][1]["stack_id"] is None,
          "report json peak vma stacks")
    check(parent["faults"]["anon_new"] == 2048 and parent["faults"]["total"] == 2053, "report json faults")
    check({c["kind"]: (c["count"], c["errors"]) for c in parent["calls"]} ==
          {"mmap": (2, 1), "mprotect": (1, 0), "brk": (1, 0), "fork": (1, 0), "munmap": (1, 0)}, "report json calls")
    check([m["text"] for m in d["messages"]] ==
          ["stack unwinding slow: 2 frames skipped", "pid 1001 killed by SIGSEGV"], "report json messages")

    shim = json_of("report", build("shim.db", "shim_run.sql"))
    if shim:
        check(shim["complete"] is False and shim["lost"] is True and
              shim["losses"] == [{"cause": "recording_incomplete"}], "shim json losses")
        check(shim["processes"][0]["faults"] is None, "shim json: no fault rows -> null")


# ---- vmas -------------------------------------------------------------------

def test_vmas():
    tree = build("tree.db", "tree.sql")
    expect(["vmas", tree], 0, [
        "process 1000 /usr/bin/forker: 4 regions (4 VMAs), 276.0 KiB mapped at its end (2.500s); no smaps sample by then",
        "range                      perms  offset    file                  size  kind   resident  faults  created  creator (of its largest piece)",
        "555555554000-555555556000  r-xp   00001000  /usr/bin/forker    8.0 KiB  file          -       5  0.000s   (mapped before start)",
        "555555580000-5555555a1000  rw-p   00000000  [heap]           132.0 KiB  heap          -       -  0.300s   no user stack (seen by the kernel only) [event 4]",
        "7f0000000000-7f0000001000  ---p   00000000                     4.0 KiB  anon          -       -  0.200s   alloc_buffer (alloc.c:42) [event 2]",
        "7ffffffde000-7ffffffff000  rw-p   00000000  [stack]          132.0 KiB  stack         -       -  0.000s   (mapped before start)",
        "",
        "process 1001 /usr/bin/forker: 4 regions (4 VMAs), 9.0 MiB mapped at its end (1.000s); no smaps sample by then",
        "555555554000-555555556000  r-xp   00001000  /usr/bin/forker  8.0 KiB  file         -       -  0.500s   (inherited at fork)",
        "7f0000000000-7f0000001000  ---p   00000000                   4.0 KiB  anon         -       -  0.500s   alloc_buffer (alloc.c:42) [event 1]",
        "7f0000001000-7f0000800000  rw-p   00000000                   8.0 MiB  anon         -      10  0.500s   alloc_buffer (alloc.c:42) [event 1]",
        "7f1000000000-7f1000100000  rw-p   00000000                   1.0 MiB  anon         -     256  0.600s   child_work (main.c:30) [event 7]",
    ], err="")
    at_250ms = [
        "process 1000 /usr/bin/forker: 4 regions (4 VMAs), 8.1 MiB mapped at 0.250s; no smaps sample by then",
        "555555554000-555555556000  r-xp   00001000  /usr/bin/forker    8.0 KiB  file          -       5  0.000s   (mapped before start)",
        "7f0000000000-7f0000001000  ---p   00000000                     4.0 KiB  anon          -       -  0.200s   alloc_buffer (alloc.c:42) [event 2]",
        "7f0000001000-7f0000800000  rw-p   00000000                     8.0 MiB  anon          -    2048  0.200s   alloc_buffer (alloc.c:42) [event 2]",
        "7ffffffde000-7ffffffff000  rw-p   00000000  [stack]          132.0 KiB  stack         -       -  0.000s   (mapped before start)",
    ]
    for spelling in ("250ms", "0.25", "0.25s", "250000us", "250000000ns"):
        out = expect(["vmas", tree, "--pid", "1000", "--at", spelling], 0, at_250ms, err="")
        check(len(out.splitlines()) == 6, f"vmas --at {spelling}: exactly one process")
    # the 8 MiB mapping before the mprotect split it, and the boundary itself
    expect(["vmas", tree, "--pid", "1000", "--at", "0.15"], 0, [
        "7f0000000000-7f0000800000  rw-p   00000000                     8.0 MiB  anon          -       -  0.100s   alloc_buffer (alloc.c:42) [event 1]"])
    expect(["vmas", tree, "--pid", "1000", "--at", "200ms"], 0, [
        "process 1000 /usr/bin/forker: 4 regions (4 VMAs), 8.1 MiB mapped at 0.200s; no smaps sample by then"],
        absent=["7f0000000000-7f0000800000  rw-p   00000000                     8.0 MiB  anon          -       -  0.100s   alloc_buffer (alloc.c:42) [event 1]"])
    # without --pid, only the processes alive then
    out = expect(["vmas", tree, "--at", "1.5s"], 0, ["process 1000 /usr/bin/forker: 5 regions (5 VMAs), 8.3 MiB mapped at 1.500s; no smaps sample by then"])
    check("1001" not in out, "vmas --at 1.5s: pid 1001 had exited")
    expect(["vmas", tree, "--at", "2s"], 0, ["process 1000 /usr/bin/forker: 4 regions (4 VMAs), 276.0 KiB mapped at 2.000s; no smaps sample by then"])
    expect(["vmas", tree, "--pid", "1001", "--at", "2s"], 0,
           ["process 1001 /usr/bin/forker: not alive at 2.000s"])
    expect(["vmas", tree, "--pid", "4242"], 1, err=f"faultline: tree.db: no process with pid 4242\n")


def test_vmas_json():
    tree = build("tree.db", "tree.sql")
    v = json_of("vmas", tree, "--pid", "1000", "--at", "250ms")
    if v is None:
        return
    check([x["id"] for x in v] == [1, 4, 5, 2], f"vmas json ids {[x['id'] for x in v]}")
    five = v[2]
    want = {"id": 5, "proc_id": 1, "pid": 1000, "start": 0x7f0000001000, "end": 0x7f0000800000,
            "size": 0x7ff000, "prot": 3, "flags": 0x22, "perms": "rw-p", "offset": 0, "inode": None,
            "kind": "anon", "path": None, "how": "split", "created_ns": 1200000000, "created_s": 0.2,
            "destroyed_ns": 3000000000, "created_by": 2, "destroyed_by": 6, "parent_id": 3, "origin_id": 3,
            "event_id": 2, "event_kind": "mprotect", "stack_id": 1, "faults": 2048,
            "creator": "alloc_buffer (alloc.c:42)", "resident": None, "region_start": None}
    check(five == want, f"vmas json row:\n{five}\nwanted\n{want}")
    allv = json_of("vmas", tree)
    if allv is not None:
        check([(x["pid"], x["id"]) for x in allv] ==
              [(1000, 1), (1000, 6), (1000, 4), (1000, 2), (1001, 7), (1001, 8), (1001, 9), (1001, 10)],
              "vmas json at end, all processes")
    check(json_of("vmas", tree, "--at", "3s") is not None, "vmas json --at")


# ---- stacks -----------------------------------------------------------------

def test_stacks():
    tree = build("tree.db", "tree.sql")
    frames = [
        "stack 1: 4 frames",
        "  #0  alloc_buffer+0x19            src/alloc.c:42  /usr/bin/forker+0x1189                       aabbcc",
        "  #1  main+0x40                    src/main.c:17   /usr/bin/forker+0x1250                       aabbcc",
        "  #2  __libc_start_call_main+0x7a  -               /usr/lib/x86_64-linux-gnu/libc.so.6+0x271ca  ddeeff",
        "  #3  ??                           -               /usr/lib/x86_64-linux-gnu/libc.so.6+0x2a1ca  ddeeff",
    ]
    out = expect(["stacks", tree, "1"], 0, frames, err="")
    check(out.splitlines() == frames, "stacks 1: exactly the frames")
    expect(["stacks", tree, "--event", "3"], 0,
           ["event 3: mmap in pid 1000 tid 1000 at 0.250s, failed: ENOMEM, source both"] + frames)
    expect(["stacks", tree, "--event", "4"], 0,
           ["event 4: brk in pid 1000 tid 1000 at 0.300s, result 0x5555555a1000, source bpf",
            "no user stack (seen by the kernel only)"])
    expect(["stacks", tree, "9"], 1, err="faultline: tree.db: no stack 9\n")
    expect(["stacks", tree, "--event", "99"], 1, err="faultline: tree.db: no event 99\n")
    expect(["stacks", tree, "x"], 2)
    expect(["stacks", tree], 2)
    s = json_of("stacks", tree, "2")
    if s:
        check(s["stack_id"] == 2 and s["depth"] == 3, "stacks json header")
        check([(f["idx"], f["function"], f["file"], f["line"], f["module"], f["rel_addr"], f["build_id"])
               for f in s["frames"]] ==
              [(0, "child_work", "src/main.c", 30, "/usr/bin/forker", 0x1300, "aabbcc"),
               (1, "main", "src/main.c", 17, "/usr/bin/forker", 0x1250, "aabbcc"),
               (2, "__libc_start_call_main", None, None, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x271ca, "ddeeff")],
              f"stacks json frames {s['frames']}")
    e = json_of("stacks", tree, "--event", "7")
    if e:
        check(e["event"]["kind"] == "mmap" and e["event"]["a1"] == 1048576 and e["stack_id"] == 2
              and len(e["frames"]) == 3, "stacks --event json")


# ---- sql --------------------------------------------------------------------

def test_sql():
    tree = build("tree.db", "tree.sql")
    out = expect(["sql", tree, "SELECT kind, count(*) AS n, sum(errno != 0) AS failed FROM event "
                  "WHERE proc_id = 1 GROUP BY kind ORDER BY kind"], 0, err="")
    check(out.splitlines() == [
        "kind      n  failed",
        "--------  -  ------",
        "brk       1       0",
        "fork      1       0",
        "mmap      2       1",
        "mprotect  1       0",
        "munmap    1       0",
    ], f"sql table:\n{out}")
    rows = json_of("sql", tree, "SELECT id, path, 0.5 AS half, x'00ff' AS b FROM vma WHERE id IN (1, 3) ORDER BY id")
    check(rows == [{"id": 1, "path": "/usr/bin/forker", "half": 0.5, "b": "00ff"},
                   {"id": 3, "path": None, "half": 0.5, "b": "00ff"}], f"sql json {rows}")
    tricky = json_of("sql", tree, "SELECT 'a\"b\\c' || char(10) || char(9) || char(1) || 'é' AS s")
    check(tricky == [{"s": 'a"b\\c\n\t\x01é'}], f"sql json escaping {tricky}")
    expect(["sql", tree, "SELECT * FROM nope"], 1, err="faultline: tree.db: SQL error: no such table: nope\n")

    before = hashlib.sha256(open(os.path.join(TMP, tree), "rb").read()).hexdigest()
    for stmt in ("INSERT INTO message VALUES (9, 1, 1, 'x')", "DELETE FROM loss", "DROP TABLE loss",
                 "UPDATE run SET complete = 0", "CREATE TABLE x (y)", "PRAGMA user_version = 7",
                 "PRAGMA query_only = 0", f"ATTACH '{TMP}/other.db' AS o", f"VACUUM INTO '{TMP}/copy.db'"):
        code, out, err = run("sql", tree, stmt)
        check(code == 1 and err.startswith("faultline: tree.db: "), f"sql {stmt!r}: exit {code}, {err!r}")
    check(not os.path.exists(os.path.join(TMP, "copy.db")), "VACUUM INTO wrote nothing")
    expect(["sql", tree, "SELECT 1; DROP TABLE loss"], 1)
    after = hashlib.sha256(open(os.path.join(TMP, tree), "rb").read()).hexdigest()
    check(before == after, "sql left the recording unchanged")
    expect(["sql", tree, "SELECT count(*) AS n FROM loss"], 0, ["n", "3"])
    expect(["sql", tree], 2)


# ---- bad input --------------------------------------------------------------

def test_bad_input():
    tree = build("tree.db", "tree.sql")
    with open(os.path.join(TMP, "notes.txt"), "w") as f:
        f.write("this is not a database\n" * 200)
    open(os.path.join(TMP, "empty.db"), "w").close()
    data = open(os.path.join(TMP, tree), "rb").read()
    with open(os.path.join(TMP, "half.db"), "wb") as f:
        f.write(data[: len(data) // 2])
    con = sqlite3.connect(os.path.join(TMP, "other.db"))
    con.executescript("PRAGMA application_id = 42; CREATE TABLE t (x);")
    con.close()
    build("newer.db", extra_sql="PRAGMA user_version = 99;")
    build("older.db", extra_sql="PRAGMA user_version = 0;")
    norun = os.path.join(TMP, build("norun.db"))

    cases = [
        ("missing.db", "faultline: missing.db: No such file or directory\n"),
        ("notes.txt", "faultline: notes.txt: not a faultline recording (file is not a database)\n"),
        ("empty.db", "faultline: empty.db: not a faultline recording (application_id 0, expected 1179403340)\n"),
        ("other.db", "faultline: other.db: not a faultline recording (application_id 42, expected 1179403340)\n"),
        ("newer.db", "faultline: newer.db was written by a newer faultline (schema 99, this one reads "
                     f"<= {SCHEMA_VERSION}); upgrade faultline\n"),
        ("older.db", "faultline: older.db: unknown schema version 0 (older than any this faultline reads, "
                     f"1 to {SCHEMA_VERSION})\n"),
        ("norun.db", "faultline: norun.db: the recording has no run row (the recorder stopped before writing it)\n"),
    ]
    for cmd in (["report"], ["vmas"], ["stacks", "--event", "1"], ["sql", "SELECT 1"]):
        for name, err in cases:
            args = [cmd[0], name] + cmd[1:]
            expect(args, 1, err=err)
            check(run(*args)[1] == "", f"{' '.join(args)}: nothing on stdout")
        code, out, err = run(cmd[0], "half.db", *cmd[1:])
        check(code == 1 and err.startswith("faultline: half.db is truncated or corrupt (") and err.count("\n") == 1,
              f"{cmd[0]} half.db: {code} {err!r}")
    check(os.path.exists(norun), "fixture")

    # a page in the middle overwritten: PRAGMA quick_check notices
    bad = bytearray(data)
    page = 4096
    for off in range(page * 3, page * 3 + page, 8):
        bad[off:off + 8] = b"\xde\xad\xbe\xef\xde\xad\xbe\xef"
    with open(os.path.join(TMP, "scribbled.db"), "wb") as f:
        f.write(bad)
    code, out, err = run("report", "scribbled.db")
    check(code == 1 and err.startswith("faultline: scribbled.db is truncated or corrupt ("),
          f"report scribbled.db: {code} {err!r}")

    # usage errors: exit 2, a message and the usage line
    for args in (["report", tree, "--bogus"], ["report"], ["report", tree, "extra"], ["report", tree, "--format", "xml"],
                 ["vmas", tree, "--at", "soon"], ["vmas", tree, "--pid"], ["vmas", tree, "--pid", "-3"],
                 ["stacks", tree, "1", "--nope"], ["sql", tree, "SELECT 1", "--x"], ["report", tree, "--top", "0"]):
        code, out, err = run(*args)
        check(code == 2 and err.startswith("faultline: ") and "\nusage: faultline " in err,
              f"{' '.join(args)}: exit {code}, {err!r}")
    for cmd in ("report", "vmas", "stacks", "sql"):
        code, out, err = run(cmd, "--help")
        check(code == 0 and out.startswith(f"usage: faultline {cmd}"), f"{cmd} --help")


# ---- a recording still being written ------------------------------------------

def test_wal():
    path = os.path.join(TMP, "live.db")
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(open(SCHEMA, encoding="utf-8").read())
    con.executescript(open(os.path.join(FIXTURES, "shim_run.sql"), encoding="utf-8").read())
    con.commit()
    # the writer stays open: the rows are in live.db-wal, not yet in live.db
    check(os.path.getsize(path + "-wal") > 0, "fixture: WAL holds the rows")
    expect(["report", "live.db"], 0, ["faultline report: live.db (recording incomplete)",
                                      "LOST       recording_incomplete (faultline stopped before closing the recording: "
                                      "what came after its last commit is missing)"])
    con.execute("INSERT INTO loss VALUES ('bpf_ringbuf', 5, 'ring buffer full')")
    con.commit()
    expect(["report", "live.db"], 0, ["LOST       bpf_ringbuf: 5 (ring buffer full)"])
    expect(["sql", "live.db", "SELECT count(*) AS n FROM vma"], 0, ["n", "3"])
    con.close()


# ---- regions: vmas, report and why on a merged VMA (fixtures/regions.sql) ------

def test_regions():
    reg = build("regions.db", "regions.sql")
    # the two adjacent mmaps the kernel merged are one region; --pieces lists the rows
    expect(["vmas", reg, "--pid", "3000"], 0, [
        "process 3000 /usr/bin/grower: 4 regions (6 VMAs), 66.1 MiB mapped at its end (2.000s); resident at 0.600s",
        "555555554000-555555556000  r-xp   00001000  /usr/bin/grower    8.0 KiB  file   8.0 KiB       2  0.000s   (mapped before start)",
        "555555600000-555555620000  rw-p   00000000  [heap]           128.0 KiB  heap  96.0 KiB      26  0.400s   main (main.c:5) (and 1 more VMAs)",
        "7f0000000000-7f0000200000  rw-p   00000000                     2.0 MiB  anon   1.2 MiB     320  0.100s   grow_a (grow.c:10) (and 1 more VMAs)",
        "7f1000000000-7f1004000000  ---p   00000000                    64.0 MiB  anon         -       -  0.300s   main (main.c:5) [event 3]",
    ], err="")
    expect(["vmas", reg, "--pid", "3000", "--pieces"], 0, [
        "555555600000-555555610000  rw-p   00000000  [heap]           64.0 KiB  heap   64.0 KiB      16  0.400s   main (main.c:5) [event 4]",
        "555555610000-555555620000  rw-p   00000000  [heap]           64.0 KiB  heap   32.0 KiB      10  0.500s   main (main.c:5) [event 5]",
        "7f0000000000-7f0000100000  rw-p   00000000                    1.0 MiB  anon    1.0 MiB     256  0.100s   grow_a (grow.c:10) [event 1]",
        "7f0000100000-7f0000200000  rw-p   00000000                    1.0 MiB  anon  256.0 KiB      64  0.200s   grow_b (grow.c:20) [event 2]",
    ], err="")
    # before the sample there is none to read resident bytes from
    expect(["vmas", reg, "--pid", "3000", "--at", "0.25"], 0, [
        "process 3000 /usr/bin/grower: 2 regions (3 VMAs), 2.0 MiB mapped at 0.250s; no smaps sample by then",
        "7f0000000000-7f0000200000  rw-p   00000000                   2.0 MiB  anon         -     320  0.100s   grow_a (grow.c:10) (and 1 more VMAs)",
    ], err="")
    rows = json_of("vmas", reg, "--pid", "3000")
    if rows is not None:
        check({r["id"]: (r["resident"], r["region_start"]) for r in rows} ==
              {1: (8192, 0x555555554000), 5: (65536, 0x555555600000), 6: (32768, 0x555555600000),
               2: (1048576, 0x7f0000000000), 3: (262144, 0x7f0000000000), 4: (None, None)},
              f"vmas json resident and region: {rows}")

    # report: the ranking, then per process its regions by resident bytes; --pid filters
    out = expect(["report", reg], 0, [
        "processes by peak RSS",
        "  3000        1.4 MiB at 0.600s     /usr/bin/grower",
        "  3001       48.0 KiB at 0.750s     /usr/bin/grower",
        "processes (2)",
        "process 3000 /usr/bin/grower",
        "  resident 1.4 MiB at 0.600s (smaps); top regions (`faultline why --pid 3000` breaks them down):",
        "    1.    1.2 MiB  92.2%  7f0000000000-7f0000200000 rw-p [anon] (2.0 MiB mapped, 1.2 MiB anon)",
        "          1.0 MiB  80.0%  grow_a (grow.c:10)",
        "        256.0 KiB  20.0%  by 1 other creators",
        "    2.  100.0 KiB   7.2%  555555600000-555555620000 rw-p [heap] (128.0 KiB mapped, 100.0 KiB anon)",
        "         96.0 KiB  96.0%  main (main.c:5) (2 VMAs)",
        "          4.0 KiB   4.0%  (no recorded VMA: the model had not seen its call yet, or the region was too large "
        "to read page by page)",
        "process 3001 /usr/bin/grower",
    ], err="")
    check("7f1000000000-7f1004000000" not in out, "report: the PROT_NONE reservation is never listed as memory")
    # the peak lists regions by mapped size (rows the kernel keeps as one VMA together), --pieces the rows
    expect(["report", reg, "--pid", "3000"], 0, [
        "  peak     66.1 MiB mapped at 0.500s; largest regions then:",
        "    7f0000000000-7f0000200000    2.0 MiB  rw-p  anon  320 faults",
        "        grow_a (grow.c:10) (and 1 more VMAs)",
        "    555555600000-555555620000  128.0 KiB  rw-p  heap  26 faults   [heap]",
        "        main (main.c:5) (and 1 more VMAs)",
    ], err="")
    expect(["report", reg, "--pid", "3000", "--pieces"], 0, [
        "  peak     66.1 MiB mapped at 0.500s; largest VMAs then:",
        "    7f0000000000-7f0000100000   1.0 MiB  rw-p  anon  256 faults",
        "    7f0000100000-7f0000200000   1.0 MiB  rw-p  anon  64 faults",
    ], err="")
    # before any sample, the kernel's merging rule makes the regions: the two brk steps are one heap
    expect(["vmas", reg, "--pid", "3000", "--at", "0.55"], 0, [
        "555555600000-555555620000  rw-p   00000000  [heap]           128.0 KiB  heap         -      26  0.400s   main (main.c:5) (and 1 more VMAs)",
    ], err="")
    out = expect(["report", reg, "--pid", "3001"], 0, ["process 3001 /usr/bin/grower"], err="",
                 absent=["process 3000 /usr/bin/grower", "processes by peak RSS", "processes (2)"])
    expect(["report", reg, "--pid", "4242"], 1, err="faultline report: regions.db: no process with pid 4242\n")
    d = json_of("report", reg)
    if d is not None:
        check([p["pid"] for p in d["processes_by_rss"]] == [3000, 3001], "report json: processes by peak RSS")
        res = d["processes"][0]["resident"]
        check(res["rss"] == 1421312 and [g["rss"] for g in res["regions"]] == [1310720, 102400, 8192] and
              res["regions"][1]["unattributed"] == 4096, f"report json resident: {res}")
    d = json_of("report", reg, "--pid", "3001")
    if d is not None:
        check([p["pid"] for p in d["processes"]] == [3001], "report json --pid")

    # why: the same regions, every creator, adding up to the sample's RSS
    expect(["why", reg], 0, [
        "pid 3000 /usr/bin/grower: 1.4 MiB resident at 0.600s (smaps, high; 4 regions read in 0.00025s)",
        "  1.    1.2 MiB  92.2%  7f0000000000-7f0000200000 rw-p [anon] (2.0 MiB mapped, 1.2 MiB anon)",
        "        1.0 MiB  80.0%  grow_a (grow.c:10)",
        "                        main (main.c:5)",
        "      256.0 KiB  20.0%  grow_b (grow.c:20)",
    ], err="")
    w = json_of("why", reg)
    if w is not None:
        total = sum(r["rss"] for r in w["regions"]) + w["other_regions"]["rss"]
        check(total == w["sample"]["rss"] == 1421312, f"why json adds up: {total}")
        for r in w["regions"]:
            check(sum(c["rss"] for c in r["creators"]) + r["unattributed"] == r["rss"], f"why region adds up: {r}")


# ---- faults --by ----------------------------------------------------------------

def faults_rows(db, *args):
    d = json_of("faults", db, *args)
    return [] if d is None else d["rows"]


def test_faults():
    reg = build("regions.db", "regions.sql")
    expect(["faults", reg, "--by", "process"], 0, [
        "pid   exe              total  anon_new  zero_page  pagecache  cow_anon",
        "3000  /usr/bin/grower    348       344          2          2         0",
        "3001  /usr/bin/grower     14         4          0          0        10",
    ], err="")
    expect(["faults", reg, "--by", "region"], 0, [
        "3000  7f0000000000-7f0000200000  anon                     320       320          0          0         0",
        "3000  555555600000-555555620000  heap  [heap]              26        24          2          0         0",
    ], err="")
    expect(["faults", reg, "--by", "vma"], 0, [
        "3000  7f0000000000-7f0000100000  anon                     256       256          0          0         0",
        "3000  7f0000100000-7f0000200000  anon                      64        64          0          0         0",
    ], err="")
    expect(["faults", reg, "--by", "stack"], 0, [
        "grow_a (grow.c:10) < main (main.c:5)                                   266       256          0          0        10",
        "grow_b (grow.c:20) < main (main.c:5)                                    64        64          0          0         0",
        "main (main.c:5)                                                         26        24          2          0         0",
        "(no user stack: mapped by the kernel, at exec, or before the start)      6         4          0          2         0",
    ], err="")
    # the sites fall 4 short of vma 3's 64 faults: one more row says so, and the columns add up;
    # each site's callers say why the chain ends where it does (docs/faults.md "Callers")
    expect(["faults", reg, "--by", "site"], 0, [
        "faulting instruction  callers                                           total  anon_new  zero_page  pagecache"
        "  cow_anon",
        "grow_a (grow.c:10)    main (main.c:5) < ? (no frame pointer in grower)    256       256          0          0"
        "         0",
        "grow_b (grow.c:20)    main (main.c:5)                                      60        60          0          0"
        "         0",
        "main (main.c:5)       unavailable (no frame pointer in grower)             28        24          2          2"
        "         0",
        "child (main.c:9)      not recorded                                         14         4          0          0"
        "        10",
        "(no site recorded)                                                          4         4          0          0"
        "         0",
    ], err="")
    rows = faults_rows(reg, "--by", "site")
    check([(r["faulting instruction"], r["callers"], r["callers_end"], r["total"]) for r in rows] == [
        ("grow_a (grow.c:10)", "main (main.c:5) < ? (no frame pointer in grower)", "no_frame_pointer", 256),
        ("grow_b (grow.c:20)", "main (main.c:5)", "top", 60),
        ("main (main.c:5)", "unavailable (no frame pointer in grower)", "no_frame_pointer", 28),
        ("child (main.c:9)", "not recorded", None, 14),
        ("(no site recorded)", "", None, 4)], f"faults --by site json: {rows}")
    code, out, err = run("faults", reg, "--by", "site", "--format", "csv")
    check(code == 0 and out.splitlines()[:2] == [
        "faulting instruction,callers,callers_end,total,major_file,major_swap,anon_new,zero_page,pagecache,cow_anon,"
        "cow_zero,cow_file,cow_reuse,write_notify,other,retry,uffd,hugetlb,pfn,spurious,thp",
        "grow_a (grow.c:10),main (main.c:5) < ? (no frame pointer in grower),no_frame_pointer,256,0,0,256,0,0,0,0,0,"
        "0,0,0,0,0,0,0,0,0"], f"faults --by site csv:\n{out}{err}")
    # a recording made before the callers (schema 9, summaries and all) reads them as not recorded
    old = build("sites9.db", "regions.sql", "PRAGMA user_version = 9;")
    con = sqlite3.connect(os.path.join(TMP, old))
    con.executescript("CREATE TABLE f AS SELECT vma_id, proc_id, class, frame_id, count, faultline FROM fault_site;"
                      "DROP TABLE fault_site; ALTER TABLE f RENAME TO fault_site;")
    con.close()
    code, out, err = run("__summarize", old)
    check(code == 0, f"__summarize a schema 9 recording: {err}")
    con = sqlite3.connect(os.path.join(TMP, old))
    con.executescript("DROP TABLE site_summary; CREATE TABLE site_summary (proc_id INTEGER NOT NULL, frame_id INTEGER"
                      " NOT NULL, class TEXT NOT NULL, count INTEGER NOT NULL); UPDATE run SET complete = 1;")
    con.close()
    rows = faults_rows(old, "--by", "site")
    check([(r["faulting instruction"], r["callers"], r["total"]) for r in rows][:2] == [
        ("grow_a (grow.c:10)", "not recorded", 256), ("grow_b (grow.c:20)", "not recorded", 60)],
          f"faults --by site of schema 9: {rows}")
    expect(["faults", reg, "--by", "kind", "--class", "cow_anon"], 0, ["kind  cow_anon", "anon        10"], err="",
           absent=["heap         0"])
    expect(["faults", reg, "--by", "file", "--top", "1"], 0, [
        "file                  total  anon_new  zero_page  pagecache  cow_anon",
        "[anon]                  334       324          0          0        10",
        "(2 more rows: --top)     28        24          2          2         0",
    ], err="")
    # every key adds up to the same totals, per class
    want = {"total": 362, "anon_new": 348, "zero_page": 2, "pagecache": 2, "cow_anon": 10}
    for key in ("process", "region", "vma", "kind", "file", "stack", "site"):
        rows = faults_rows(reg, "--by", key)
        got = {c: sum(r[c] for r in rows) for c in want}
        check(got == want, f"faults --by {key}: sums {got}, wanted {want}")
    rows = faults_rows(reg, "--by", "process", "--pid", "3001")
    check([(r["pid"], r["total"], r["cow_anon"]) for r in rows] == [("3001", 14, 10)], f"faults --pid: {rows}")
    code, out, err = run("faults", reg, "--by", "kind", "--format", "csv")
    check(code == 0 and out.splitlines()[:2] == [
        "kind,total,major_file,major_swap,anon_new,zero_page,pagecache,cow_anon,cow_zero,cow_file,cow_reuse,"
        "write_notify,other,retry,uffd,hugetlb,pfn,spurious,thp",
        "anon,334,0,0,324,0,0,10,0,0,0,0,0,0,0,0,0,0,0"], f"faults csv:\n{out}{err}")
    expect(["faults", reg], 2)
    expect(["faults", reg, "--by", "colour"], 2)
    expect(["faults", reg, "--by", "kind", "--class", "purple"], 2)
    expect(["faults", "missing.db", "--by", "kind"], 1)


# ---- summaries --------------------------------------------------------------------

SUMMARY_TABLES = ("fault_summary", "fault_summary_total", "site_summary", "proc_summary", "call_summary",
                  "region_summary")


def answers(db):
    """What report, faults and why print on db, every format and the options that change the sums."""
    cmds = [["report", db], ["report", db, "--format", "json"], ["report", db, "--all", "--pieces"],
            ["why", db], ["why", db, "--format", "json"], ["html", db, "-o", "-"]]
    for key in ("process", "region", "vma", "kind", "file", "stack", "site"):
        for extra in ([], ["--format", "json"], ["--format", "csv"], ["--top", "1"], ["--class", "anon_new"],
                      ["--class", "cow_anon", "--format", "json"], ["--pid", "3000"]):
            cmds.append(["faults", db, "--by", key, *extra])
    return {" ".join(c): run(*c) for c in cmds}


def test_summaries():
    """The summaries a recording's close writes are a cache: the same answers with them as without
    (a fixture has none until `__summarize`, as an incomplete recording), byte for byte."""
    for fixture in ("regions.sql", "tree.sql"):
        db = build("s.db", fixture)
        without = answers(db)
        code, out, err = run("__summarize", db)
        check(code == 0 and not err, f"__summarize {fixture}: exit {code}: {err}")
        con = sqlite3.connect(os.path.join(TMP, db))
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        con.close()
        check(set(SUMMARY_TABLES) <= have, f"{fixture}: summary tables missing: {set(SUMMARY_TABLES) - have}")
        with_ = answers(db)
        for cmd, got in with_.items():
            check(got == without[cmd], f"{fixture}: {cmd}: differs with the summaries:\n--- without\n"
                  f"{without[cmd][1]}{without[cmd][2]}--- with\n{got[1]}{got[2]}")
        # an incomplete recording's summaries (none: the close never came) are not used, and it still answers
        con = sqlite3.connect(os.path.join(TMP, db))
        con.execute("UPDATE run SET complete = 0")
        con.execute("UPDATE fault_summary SET total = total + 1000")  # a stale cache must not be read
        con.commit()
        con.close()
        got = run("faults", db, "--by", "process")
        check(got == without["faults s.db --by process"],
              f"{fixture}: an incomplete recording's summaries were read:\n{got[1]}{got[2]}")
        os.unlink(os.path.join(TMP, db))


def main():
    fn = globals().get("test_" + GROUP)
    if not fn:
        sys.exit(f"no test group {GROUP!r}")
    try:
        fn()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print(f"{GROUP}: ok")


main()
