#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The `outputs` suite: `faultline timeline`, `export` and `html`.

usage: outputs_test.py GROUP   (GROUP: one of the test_* functions, without the prefix)
Environment (set by meson): FAULTLINE, SCHEMA (common/schema.sql), FIXTURES
(tests/outputs/fixtures), GOLDEN (tests/outputs/golden), ARTIFACTS (a folder
under build/ for screenshots and npm packages), TARGET (check_cow).
UPDATE_GOLDEN=1 rewrites the golden files from the current output instead of
comparing (review the diff before committing it)."""
import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
import tempfile

FAULTLINE = os.path.abspath(os.environ["FAULTLINE"])
SCHEMA = os.environ["SCHEMA"]
FIXTURES = os.environ["FIXTURES"]
GOLDEN = os.environ["GOLDEN"]
ARTIFACTS = os.environ.get("ARTIFACTS", tempfile.gettempdir())
TMP = tempfile.mkdtemp(prefix="faultline-outputs-")
CLASSES = ["major_file", "major_swap", "anon_new", "zero_page", "pagecache", "cow_anon", "cow_zero",
           "cow_file", "cow_reuse", "write_notify", "other"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def fixture(name="small.db", sql_file="small.sql", extra_sql=""):
    """A recording at TMP/name from the schema, a fixture file and extra SQL."""
    path = os.path.join(TMP, name)
    if os.path.exists(path):
        os.unlink(path)
    con = sqlite3.connect(path)
    con.executescript(open(SCHEMA, encoding="utf-8").read() +
                      open(os.path.join(FIXTURES, sql_file), encoding="utf-8").read() + extra_sql)
    con.close()
    return name


def run(*args, env=None, cwd=TMP):
    e = dict(os.environ, LC_ALL="C")
    e.pop("NO_COLOR", None)
    e.update(env or {})
    p = subprocess.run([FAULTLINE, *args], capture_output=True, text=True, cwd=cwd, env=e)
    return p.returncode, p.stdout, p.stderr


def ok(*args, **kw):
    code, out, err = run(*args, **kw)
    check(code == 0, f"faultline {' '.join(args)}: exit {code}: {err}")
    return out


def golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    want = open(path, encoding="utf-8").read()
    check(text == want, f"{name}: output differs from the golden file {path}:\n--- got\n{text}--- wanted\n{want}")


def sql(db, query):
    con = sqlite3.connect(os.path.join(TMP, db))
    rows = con.execute(query).fetchall()
    con.close()
    return rows


def in_pty(args, env):
    """Runs faultline ARGS with stdout on a pseudo-terminal; returns what it printed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(TMP)
        os.execve(FAULTLINE, [FAULTLINE, *args], env)
    out = b""
    while True:
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


# ---- timeline -----------------------------------------------------------------

def test_timeline():
    db = fixture()
    text = ok("timeline", db)
    golden("timeline.txt", text)
    golden("timeline_kind_pid.txt", ok("timeline", db, "--by", "kind", "--pid", "101"))
    for line in text.splitlines():
        check(len(line) <= 80, f"timeline: a line is {len(line)} columns wide: {line!r}")
    wide = ok("timeline", db, "--width", "120")
    for line in wide.splitlines():
        check(len(line) <= 120, f"timeline --width 120: a line is {len(line)} columns wide: {line!r}")
    check(max(len(line) for line in wide.splitlines()) > 100, "timeline --width 120: the chart did not widen")
    check("\033[" not in text, "timeline: colour escapes on a pipe")
    # the peak is the peak of the summed RSS, exact: 100 at 9.3125 MiB and 101 at 9.8125 MiB, at 1.1 s
    j = json.loads(ok("timeline", db, "--format", "json"))
    check(j["peak_bytes"] == 20054016 and j["peak_ns"] == 1100000000, f"timeline json peak: {j['peak_bytes']} at {j['peak_ns']}")
    check(max(j["total_bytes"]) == j["peak_bytes"], "timeline json: the bins lost the peak")
    for b in range(j["bins"]):
        check(sum(s["bytes"][b] for s in j["series"]) == j["total_bytes"][b], f"timeline json: bin {b} does not add up")
    for c in CLASSES:
        want = sql(db, f"SELECT coalesce(sum({c}), 0) FROM fault")[0][0]
        check(j["faults"][c]["total"] == want == sum(j["faults"][c]["per_bin"]), f"timeline json: {c} total")
    # CSV: the same bins
    rows = ok("timeline", db, "--format", "csv", "--bins", "8").splitlines()
    check(rows[0] == "time_s,101 app,100 app,total," + ",".join(CLASSES), f"timeline csv header: {rows[0]}")
    check(len(rows) == 9, f"timeline csv: {len(rows) - 1} rows for 8 bins")
    check(rows[5].startswith("1.000000000,10289152,9764864,20054016,"), f"timeline csv: the bin of the peak: {rows[5]}")
    anon = sum(int(r.split(",")[3 + 1 + CLASSES.index("anon_new")]) for r in rows[1:])
    check(anon == 2048 + 128, f"timeline csv: anon_new sums to {anon}")
    # --top 1 names the largest at the peak and groups the rest; one left over keeps its name
    three = fixture("three.db", extra_sql="INSERT INTO process VALUES (3, 102, 100, 1, '/bin/sh', NULL, 10900000000,"
                    " 11000000000, 0, NULL, 0, 10, 0, 0, 0, 0, 0); INSERT INTO rss VALUES (3, 10950000000, 4096, 0, 0, 0, 'proc');")
    j = json.loads(ok("timeline", three, "--format", "json", "--top", "1"))
    check([s["name"] for s in j["series"]] == ["101 app", "other (2 processes)"], f"timeline --top 1: {[s['name'] for s in j['series']]}")
    check(j["series"][1]["at_peak_bytes"] == 9764864, f"timeline --top 1: other at the peak {j['series'][1]['at_peak_bytes']}")
    j = json.loads(ok("timeline", db, "--format", "json", "--top", "1"))
    check([s["name"] for s in j["series"]] == ["101 app", "100 app"], f"timeline --top 1 of 2: {[s['name'] for s in j['series']]}")
    # bad input: clear errors, exit 2 for usage, 1 for a recording that cannot be read
    code, _, err = run("timeline", db, "--by", "color")
    check(code == 2 and "--by wants" in err, f"timeline --by color: {code} {err}")
    code, _, err = run("timeline", db, "--pid", "7")
    check(code == 1 and "no process 7" in err, f"timeline --pid 7: {code} {err}")
    code, _, err = run("timeline", "missing.db")
    check(code == 1 and "missing.db" in err, f"timeline missing.db: {code} {err}")
    # a shim-only recording says faults were not recorded; a loss is printed
    shim = fixture("shim.db", extra_sql="UPDATE run SET fidelity = 'shim'; DELETE FROM fault; DELETE FROM fault_site;"
                   "INSERT INTO loss VALUES ('channel_dropped', 3, NULL);")
    text = ok("timeline", shim)
    check("faults     not recorded" in text, "timeline on a shim run: no 'not recorded' line")
    check("LOST       channel_dropped 3" in text, "timeline: the loss is not printed")


def test_timeline_tty():
    db = fixture()
    base = {"PATH": os.environ.get("PATH", ""), "TERM": "xterm"}
    colour = in_pty(["timeline", db], dict(base, LC_ALL="C"))
    check("\033[32m#\033[0m" in colour, "timeline on a terminal: no colour")
    plain = in_pty(["timeline", db], dict(base, LC_ALL="C", NO_COLOR="1"))
    check("\033[" not in plain and "#" in plain, "timeline with NO_COLOR: colour escapes")
    utf8 = in_pty(["timeline", db], dict(base, LC_ALL="C.UTF-8"))
    check("\u2588" in utf8 and "\033[32m" in utf8, "timeline on a UTF-8 terminal: no block characters")


if __name__ == "__main__":
    globals()["test_" + sys.argv[1]]()
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
