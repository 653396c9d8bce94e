#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The `outputs` suite: `faultline timeline`, `export` and `html`.

usage: outputs_test.py GROUP   (GROUP: one of the test_* functions, without the prefix)
Environment (set by meson): FAULTLINE, SCHEMA (common/schema.sql), FIXTURES
(tests/outputs/fixtures), GOLDEN (tests/outputs/golden), ARTIFACTS (a folder
under build/ for screenshots and npm packages), TARGET (check_cow).
UPDATE_GOLDEN=1 rewrites the golden files from the current output instead of
comparing (review the diff before committing it)."""
import fcntl
import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from invariant import check_recording  # noqa: E402 (every recording's totals add up)

FAULTLINE = os.path.abspath(os.environ["FAULTLINE"])
SCHEMA = os.environ["SCHEMA"]
FIXTURES = os.environ["FIXTURES"]
GOLDEN = os.environ["GOLDEN"]
ARTIFACTS = os.environ.get("ARTIFACTS", tempfile.gettempdir())
TMP = tempfile.mkdtemp(prefix="faultline-outputs-")
CLASSES = ["major_file", "major_swap", "anon_new", "zero_page", "pagecache", "cow_anon", "cow_zero",
           "cow_file", "cow_reuse", "write_notify", "other", "retry", "uffd", "hugetlb", "pfn", "spurious"]
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
    check(rows[1].startswith("0.050000000,0,786432,786432,"), f"timeline csv: the chart starts at the first sample: {rows[1]}")
    check(any(r.split(",")[1:4] == ["10289152", "9764864", "20054016"] for r in rows[1:]), f"timeline csv: no bin holds the peak: {rows}")
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
    # by region: the smaps samples, each region held until its process's next sample
    text = ok("timeline", db, "--by", "region")
    golden("timeline_region.txt", text)
    for line in text.splitlines():
        check(len(line) <= 80, f"timeline --by region: a line is {len(line)} columns wide: {line!r}")
    j = json.loads(ok("timeline", db, "--by", "region", "--format", "json", "--top", "9"))
    check(j["samples"] == 3 and j["peak_bytes"] == 20054016 and j["peak_ns"] == 1100000000,
          f"timeline --by region: {j['samples']} samples, peak {j['peak_bytes']} at {j['peak_ns']}")
    names = {s["name"]: s for s in j["series"]}
    check(names.get("101 anon by child_work", {}).get("at_peak_bytes") == 524288 and
          names.get("100 anon by fill_buffer", {}).get("peak_bytes") == 8388608 and
          names.get("101 [heap]", {}).get("at_peak_bytes") == 262144, f"timeline --by region: series {names.keys()}")
    check(sum(s["at_peak_bytes"] for s in j["series"]) == j["peak_bytes"], "timeline --by region: the series do not add up at the peak")
    for b in range(j["bins"]):
        check(sum(s["bytes"][b] for s in j["series"]) == j["total_bytes"][b], f"timeline --by region: bin {b} does not add up")
    j = json.loads(ok("timeline", db, "--by", "region", "--format", "json", "--top", "3"))
    check([s["name"] for s in j["series"]] == ["100 anon by fill_buffer", "101 anon by fill_buffer", "101 libc.so.6", "other (7 regions)"],
          f"timeline --by region --top 3: {[s['name'] for s in j['series']]}")
    j = json.loads(ok("timeline", db, "--by", "region", "--format", "json", "--pid", "100"))
    check(j["samples"] == 2 and j["peak_bytes"] == 9764864, f"timeline --by region --pid 100: {j['samples']}, {j['peak_bytes']}")
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


# ---- export -------------------------------------------------------------------

FOLDED_LINE = re.compile(r"^[^;\n]+(;[^;\n]+)* [1-9][0-9]*$")


def folded(db, *extra):
    text = ok("export", db, "--format", "folded", "-o", "-", *extra)
    lines = text.splitlines()
    for line in lines:
        check(FOLDED_LINE.match(line), f"folded: malformed line {line!r}")
    stacks = [line.rsplit(" ", 1)[0] for line in lines]
    check(len(stacks) == len(set(stacks)), "folded: the same stack on two lines")
    return text, sum(int(line.rsplit(" ", 1)[1]) for line in lines)


def pprof_total(path, index):
    """The total of sample type `index` as `go tool pprof -top` reads it back."""
    env = dict(os.environ, HOME=TMP, GOCACHE=os.path.join(TMP, "gocache"), GOFLAGS="-mod=mod")
    p = subprocess.run(["go", "tool", "pprof", "-top", "-unit=B", "-sample_index=" + index, path], capture_output=True,
                       text=True, env=env, timeout=120)
    check(p.returncode == 0, f"go tool pprof -top {path}: {p.stderr}")
    m = re.search(r"Total samples = (\d+)B? ", p.stdout + p.stderr) or re.search(r"of (\d+)B? total", p.stdout)
    check(m, f"go tool pprof: no total in\n{p.stdout}{p.stderr}")
    return int(m.group(1)) if m else -1, p.stdout


def check_moment(db, pb, pid=None):
    """Resident and heap bytes (pprof sample types, folded weights) against why --format json and heap_sample."""
    sel = ["--pid", str(pid)] if pid else []
    code, out, _ = run("why", db, "--format", "json", *sel)
    if code != 0:  # no smaps sample: nothing resident to weigh
        _, n = folded(db, "--weight", "resident", *sel)
        check(n == 0, f"folded --weight resident without a sample: {n}")
        return
    w = json.loads(out)
    regions = sum(g["rss"] for g in w["regions"]) + w["other_regions"]["rss"]
    check(regions == w["sample"]["rss"], f"why: regions {regions}, sample {w['sample']['rss']}")
    n, _ = pprof_total(pb, "resident")
    check(n == w["sample"]["rss"], f"pprof resident: {n}, why's {w['sample']['rss']}")
    _, n = folded(db, "--weight", "resident", *sel)
    check(n == w["sample"]["rss"], f"folded --weight resident: {n}, why's {w['sample']['rss']}")
    heap = sql(db, "SELECT coalesce(sum(n), 0) FROM (SELECT CAST(round(sum(h.weight)) AS INTEGER) AS n FROM heap_sample h"
               f" JOIN smaps_sample s ON s.id = {w['sample']['id']} AND h.proc_id = s.proc_id"
               " WHERE h.alloc_ns <= s.time_ns AND (h.free_ns IS NULL OR h.free_ns > s.time_ns) GROUP BY h.fn, h.stack_id)")[0][0]
    n, _ = pprof_total(pb, "heap")
    check(n == heap, f"pprof heap: {n}, heap_sample live then {heap}")
    _, n = folded(db, "--weight", "heap", *sel)
    check(n == heap, f"folded --weight heap: {n}, heap_sample live then {heap}")
    return w, heap


def check_exports(db, classes_nonzero):
    """Every export of db, read back, against the fault table's own sums."""
    sums = dict(zip(CLASSES, sql(db, "SELECT " + ", ".join(f"coalesce(sum({c}), 0)" for c in CLASSES) + " FROM fault")[0]))
    everything = sum(sums.values())
    _, total = folded(db)
    check(total == everything, f"folded: lines sum to {total}, the fault table to {everything}")
    for c in classes_nonzero:
        _, n = folded(db, "--class", c)
        check(n == sums[c], f"folded --class {c}: {n}, the fault table {sums[c]}")
    pb = os.path.join(TMP, db + ".pb.gz")
    ok("export", db, "--format", "pprof", "-o", pb)
    check(open(pb, "rb").read(2) == b"\x1f\x8b", "pprof: not gzip")
    n, top = pprof_total(pb, "faults")
    check(n == everything, f"pprof faults: {n}, the fault table {everything}")
    for c in classes_nonzero:
        n, _ = pprof_total(pb, c)
        check(n == sums[c], f"pprof {c}: {n}, the fault table {sums[c]}")
    check_moment(db, pb)
    trace = os.path.join(TMP, db + ".trace.json")
    ok("export", db, "--format", "perfetto", "-o", trace)
    events = json.load(open(trace, encoding="utf-8"))["traceEvents"]
    procs = sql(db, "SELECT pid, count(*) FROM process GROUP BY pid")
    for pid, _ in procs:
        mine = [e for e in events if e["pid"] == pid]
        check(any(e["ph"] == "M" and e["name"] == "process_name" for e in mine), f"perfetto: pid {pid} has no name")
        check(any(e["ph"] == "X" and e["dur"] >= 0 for e in mine), f"perfetto: pid {pid} has no lifetime slice")
        n_rss = sql(db, f"SELECT count(*) FROM rss r JOIN process p ON p.id = r.proc_id WHERE p.pid = {pid}")[0][0]
        n_end = sql(db, f"SELECT count(*) FROM process WHERE pid = {pid} AND end_ns IS NOT NULL")[0][0]
        got = [e for e in mine if e["ph"] == "C" and e["name"] == "rss bytes"]
        check(len(got) == n_rss + n_end, f"perfetto: pid {pid}: {len(got)} RSS counter events, {n_rss} samples + {n_end} end")
    # a counter track per top region under the pseudo-process 0, each reaching that region's own peak
    regions = json.loads(ok("timeline", db, "--by", "region", "--format", "json", "--top", "8"))  # as perfetto's 8
    tracks = {}
    for e in events:
        if e["ph"] == "C" and e["pid"] == 0:
            tracks.setdefault(e["name"], []).append(e["args"]["bytes"])
    check(set(tracks) == {s["name"] for s in regions["series"] if s["peak_bytes"] > 0},
          f"perfetto: region tracks {sorted(tracks)}, timeline --by region {[s['name'] for s in regions['series']]}")
    for s in regions["series"]:
        if s["name"] in tracks:
            check(max(tracks[s["name"]]) == s["peak_bytes"], f"perfetto: region {s['name']} peaks at {max(tracks[s['name']])}, not {s['peak_bytes']}")
    if sql(db, "SELECT count(*) FROM smaps_sample")[0][0]:
        check(tracks, "perfetto: no region tracks though the recording has smaps samples")
    calls = [e for e in events if e["ph"] == "i"]
    check(len(calls) == sql(db, "SELECT count(*) FROM event")[0][0], f"perfetto: {len(calls)} instant events")
    drained = {}
    for e in events:
        if e["ph"] == "C" and e["name"] == "faults per drain":
            for c, v in e["args"].items():
                drained[c] = drained.get(c, 0) + v
    for c in classes_nonzero:
        check(drained.get(c) == sums[c], f"perfetto: {c} counters sum to {drained.get(c)}, the fault table {sums[c]}")
    return top


def test_export():
    db = fixture()
    text, _ = folded(db)
    golden("export_folded.txt", text)
    top = check_exports(db, ["anon_new", "pagecache", "major_file", "cow_anon", "zero_page"])
    check("__memset_avx2_unaligned_erms" in top and "fill_buffer" in top, f"pprof -top lacks the functions:\n{top}")
    # locations carry file and line, mappings the build-id
    env = dict(os.environ, HOME=TMP, GOCACHE=os.path.join(TMP, "gocache"))
    p = subprocess.run(["go", "tool", "pprof", "-traces", "-lines", os.path.join(TMP, db + ".pb.gz")],
                       capture_output=True, text=True, env=env)
    check("fill_buffer src/app.c:42" in p.stdout and "main src/app.c:90" in p.stdout, f"pprof -lines:\n{p.stdout}")
    check("Build ID: 0123456789abcdef0123456789abcdef01234567" in p.stdout, f"pprof: no build-id:\n{p.stdout}")
    # --pid keeps one process
    _, n = folded(db, "--pid", "101")
    check(n == 256 + 128 + 4, f"folded --pid 101: {n}")
    # resident and heap bytes at why's moment: 101's sample at 1.1 s, or 100's at 0.5 s (its scratch block freed by then)
    golden("export_folded_resident.txt", ok("export", db, "--format", "folded", "--weight", "resident", "-o", "-"))
    golden("export_folded_heap.txt", ok("export", db, "--format", "folded", "--weight", "heap", "--pid", "100", "-o", "-"))
    pb = os.path.join(TMP, "pid100.pb.gz")
    ok("export", db, "--format", "pprof", "--pid", "100", "-o", pb)
    moment = check_moment(db, pb, 100)
    check(moment and moment[0]["sample"]["rss"] == 9764864 and moment[1] == 65536 + 4096, f"--pid 100: resident, heap {moment and (moment[0]['sample']['rss'], moment[1])}")
    text, n = folded(db, "--weight", "resident")
    check(n == 10289152 and "app (101);__libc_start_call_main;main;fill_buffer;[anon] 8388608" in text and
          "app (101);[no recorded VMA];[heap] 262144" in text, f"folded --weight resident:\n{text}")
    # CSV of every table: the rows and columns the table has, quoted where needed
    import csv
    import io
    for (table,) in sql(db, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        rows = list(csv.reader(io.StringIO(ok("export", db, "--format", "csv", "--table", table, "-o", "-"))))
        cols = [r[1] for r in sql(db, f"PRAGMA table_info({table})")]
        check(rows and rows[0] == cols, f"csv {table}: header {rows[:1]}")
        check(len(rows) - 1 == sql(db, f"SELECT count(*) FROM {table}")[0][0], f"csv {table}: {len(rows) - 1} rows")
    rows = list(csv.reader(io.StringIO(ok("export", db, "--format", "csv", "--table", "process", "-o", "-"))))
    check(rows[1][5] == '["./app","--size","16M"]', f"csv: a quoted field read back as {rows[1][5]!r}")
    # bad input
    for args, want in [(["--format", "svg", "-o", "x"], "--format wants"), (["--format", "pprof"], "-o FILE"),
                       (["--format", "csv", "-o", "-"], "--table"), (["--format", "folded", "--class", "big", "-o", "-"], "--class wants"),
                       (["--format", "folded", "--weight", "rss", "-o", "-"], "--weight wants"),
                       (["--format", "folded", "--weight", "heap", "--class", "anon_new", "-o", "-"], "--class weighs faults")]:
        code, _, err = run("export", db, *args)
        check(code == 2 and want in err, f"export {args}: exit {code}: {err}")
    code, _, err = run("export", db, "--format", "csv", "--table", "nope", "-o", "-")
    check(code == 1 and "no table 'nope'" in err, f"export --table nope: {code} {err}")
    code, _, err = run("export", db, "--format", "pprof", "-o", "/nonexistent/x.pb.gz")
    check(code == 1 and "cannot write" in err, f"export to a bad path: {code} {err}")


class Skip(Exception):
    pass


def record(name, *cmd):
    path = os.path.join(TMP, name)
    p = subprocess.run([FAULTLINE, "record", "--thp=never", "-o", path, "--", *cmd], capture_output=True, text=True,
                       timeout=300)
    if "eBPF unavailable" in p.stderr or sql(name, "SELECT fidelity FROM run")[0][0] != "bpf":
        if os.environ.get("FAULTLINE_REQUIRE_BPF") == "1":
            check(False, "eBPF required but unavailable: " + p.stderr)
            return None
        raise Skip("eBPF unavailable")
    check(p.returncode == 0, f"record {cmd}: exit {p.returncode}: {p.stderr}")
    check_recording(FAULTLINE, path)
    return name


def test_export_recorded():
    """check_cow touches 1000 pages and its child rewrites 300: exact first-touch and COW counts."""
    db = record("cow.db", os.environ["TARGET"], "1000", "300")
    if not db:
        return
    check_exports(db, ["anon_new", "cow_anon", "pagecache"])
    text, _ = folded(db, "--class", "cow_anon")
    cow = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if ";touch_region;" in line)
    check(cow == 300, f"folded --class cow_anon: {cow} faults under touch_region, wanted 300:\n{text}")
    text, _ = folded(db, "--class", "anon_new")
    touched = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if ";touch_region;[anon];" in line)
    check(touched == 1000, f"folded --class anon_new: {touched} first touches in touch_region's mapping, wanted 1000")
    # the real program no one here wrote: sqlite3 building a table
    db = record("sqlite.db", "sqlite3", ":memory:",
                "CREATE TABLE t(a, b); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)"
                " INSERT INTO t SELECT x, randomblob(100) FROM c; SELECT count(*) FROM t;")
    check_exports(db, ["anon_new", "pagecache"])
    text = ok("timeline", db)
    check("peak" in text and "anon_new |" in text, f"timeline of sqlite3:\n{text}")


# ---- html ---------------------------------------------------------------------

PLAYWRIGHT = "playwright-core@1.65.1"


def browser_driver():
    """playwright-core from the npm registry, installed once under build/ (never a browser download)."""
    prefix = os.path.join(ARTIFACTS, "node")
    os.makedirs(prefix, exist_ok=True)
    with open(os.path.join(prefix, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the html tests run in parallel: one installs, the other waits
        if not os.path.isfile(os.path.join(prefix, "node_modules", "playwright-core", "package.json")):
            p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", prefix, PLAYWRIGHT],
                               capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
            check(p.returncode == 0, f"npm install {PLAYWRIGHT}: {p.stderr}")
    return os.path.join(prefix, "node_modules")


def open_page(html, shot):
    """What headless Chromium shows of the page (html_check.js)."""
    p = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "html_check.js"), html, shot],
                       capture_output=True, text=True, timeout=180, env=dict(os.environ, NODE_PATH=browser_driver()))
    if not check(p.returncode == 0, f"html_check.js {html}: {p.stderr}"):
        return None
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    check(seen["errors"] == [], f"{html}: console errors {seen['errors']}")
    check(seen["requests"] == [], f"{html}: the page asked the network for {seen['requests']}")
    check(os.path.getsize(shot) > 10000, f"{shot}: no screenshot")
    return seen


def check_why(db, name, seen):
    """The page's breakdown at the peak, row by row, against `faultline why --format json`."""
    code, out, err = run("why", db, "--format", "json")
    if code != 0:
        check(seen["why_none"] and "no resident-memory sample" in err, f"{name}: why failed ({err}) but the page shows a breakdown")
        return None
    w = json.loads(out)
    want = []
    for g in w["regions"]:
        want.append({"kind": "region", "rank": g["rank"], "bytes": g["rss"]})
        want += [{"kind": "creator", "rank": g["rank"], "bytes": c["rss"]} for c in g["creators"]]
        if g["unattributed"]:
            want.append({"kind": "unattributed", "rank": g["rank"], "bytes": g["unattributed"]})
        if g.get("heap"):  # the same bytes by allocating site, then what the pages hold beyond the live blocks
            h = g["heap"]
            want.append({"kind": "heap", "rank": g["rank"], "bytes": round(h["live"])})
            want += [{"kind": "heapsite", "rank": g["rank"], "bytes": round(s["live"])} for s in h["sites"]]
            want.append({"kind": "heapsite", "rank": g["rank"], "bytes": round(h["not_in_live_blocks"])})
    if w["other_regions"]["count"]:
        want.append({"kind": "other", "rank": None, "bytes": w["other_regions"]["rss"]})
    got = [{k: r[k] for k in ("kind", "rank", "bytes")} for r in seen["why_rows"]]
    check(got == want, f"{name}: the page's breakdown at the peak differs from why --format json:\n{got}\n{want}")
    check(int(seen["why_sum"]) == w["sample"]["rss"], f"{name}: the breakdown adds up to {seen['why_sum']}, why's sample {w['sample']['rss']}")
    stacks = [" < ".join(c["stack"]) for g in w["regions"] for c in g["creators"]]
    shown = [r["text"] for r in seen["why_rows"] if r["kind"] == "creator"]
    check(all(t.startswith(s) for t, s in zip(shown, stacks)), f"{name}: creators {shown}, why says {stacks}")
    return w


def check_page(db, name):
    """The page of db against the recording's own numbers and the text commands'."""
    html = os.path.join(TMP, name + ".html")
    ok("html", db, "-o", html)
    seen = open_page(html, os.path.join(ARTIFACTS, name + ".png"))
    if not seen:
        return None
    tl = json.loads(ok("timeline", db, "--format", "json"))
    faults = sql(db, "SELECT " + " + ".join(f"coalesce(sum({c}), 0)" for c in CLASSES) + " FROM fault")[0][0]
    check(int(seen["peak_bytes"]) == tl["peak_bytes"], f"{name}: page peak {seen['peak_bytes']}, timeline {tl['peak_bytes']}")
    check(int(seen["peak_sum"]) == tl["peak_bytes"], f"{name}: the peak breakdown adds up to {seen['peak_sum']}, not {tl['peak_bytes']}")
    check(int(seen["total_faults"]) == faults, f"{name}: page faults {seen['total_faults']}, the fault table {faults}")
    check(seen["rss_nonempty"] >= 1, f"{name}: the RSS chart drew nothing")
    check(seen["fault_bars"] >= 1, f"{name}: the fault chart drew nothing")
    check(seen["kind_paths"] == ["anon", "file", "shmem"], f"{name}: by kind drew {seen['kind_paths']}")
    check(seen["tree_items"] == sql(db, "SELECT count(*) FROM process")[0][0], f"{name}: {seen['tree_items']} processes in the tree")
    check_why(db, name, seen)
    regions = json.loads(ok("timeline", db, "--by", "region", "--format", "json", "--top", "7"))  # the page's 8 series
    check(seen["region_paths"] == [s["name"] for s in regions["series"]],
          f"{name}: by region drew {seen['region_paths']}, timeline says {[s['name'] for s in regions['series']]}")
    labels = seen["sorted_label"]
    check(labels == sorted(labels), f"{name}: sorting by region did not sort: {labels[:5]}")
    return seen


def test_html():
    db = fixture()
    seen = check_page(db, "report_small")
    if seen:
        check(int(seen["region_total"]) == 2452 and seen["region_rows"] == 6, f"html regions: {seen['region_total']}, {seen['region_rows']} rows")
        check(seen["first_region"] == "anon by fill_buffer < main < __libc_start_call_main", f"html: most faulted region {seen['first_region']}")
        check(seen["lost"].startswith("Nothing lost"), f"html: losses {seen['lost']}")
        check(seen["why_sum"] == "10289152" and len(seen["why_rows"]) == 13, f"html: the breakdown at the peak {seen['why_sum']}, {len(seen['why_rows'])} rows")
    # hostile strings in the recording stay text, and a loss is shown
    evil = '/tmp/</script><script>document.title="owned"</script><b>x'
    bad = fixture("evil.db", extra_sql=f"UPDATE vma SET path = '{evil}' WHERE id = 3;"
                  f"UPDATE region_rss SET path = '{evil}' WHERE sample_id = 3 AND start = {0x7f7000000000};"
                  "INSERT INTO loss VALUES ('channel_dropped', 7, 'ring full');")
    html = os.path.join(TMP, "evil.html")
    ok("html", bad, "-o", html)
    check(open(html, encoding="utf-8").read().count("</script>") == 3, "html: a path closed a data script")
    seen = open_page(html, os.path.join(ARTIFACTS, "report_evil.png"))
    if seen:
        check("channel_dropped 7 (ring full)" in seen["lost"], f"html: the loss is not shown: {seen['lost']}")
        check(any(evil in label for label in seen["sorted_label"]), f"html: the hostile path is not shown as text: {seen['sorted_label']}")
        check(any(evil in r["text"] for r in seen["why_rows"]), f"html: the hostile region path is not shown as text: {seen['why_rows']}")
        check_why(bad, "evil", seen)
    # without resident-memory samples the page says so, and why agrees
    bare = fixture("bare.db", extra_sql="DELETE FROM piece_rss; DELETE FROM region_rss; DELETE FROM smaps_sample;")
    html = os.path.join(TMP, "bare.html")
    ok("html", bare, "-o", html)
    seen = open_page(html, os.path.join(ARTIFACTS, "report_bare.png"))
    if seen:
        check(seen["why_none"] and not seen["why_rows"], f"html without samples: {seen['why_rows']}")
        check_why(bare, "bare", seen)
    code, _, err = run("html", db)
    check(code == 2 and "-o FILE.html" in err, f"html without -o: {code} {err}")


def test_html_recorded():
    db = record("cow.db", os.environ["TARGET"], "1000", "300")
    if not db:
        return
    seen = check_page(db, "report_check_cow")
    if seen:
        fl = sum(r[0] for r in sql(db, "SELECT " + " + ".join(f"coalesce(sum({c}), 0)" for c in CLASSES) + " FROM fault"))
        check(int(seen["region_total"]) <= fl, f"html: regions' own faults {seen['region_total']} above the table's {fl}")
    # a program no one here wrote, allocating through a wrapper: its heap sites on the page, row by row
    # _exit: perl's own exit frees the strings, and a largest smaps sample in that teardown had few
    # live (tests/heap perl_wrapper)
    db = record("perl.db", "perl", "-e", 'use POSIX (); $| = 1; my @a; push @a, "x" x 100 for 1..200000;'
                ' print scalar(@a), "\\n"; POSIX::_exit(0)')
    seen = check_page(db, "report_perl") if db else None
    if seen:
        sites = [r["text"] for r in seen["why_rows"] if r["kind"] == "heapsite"]
        check(any(" via Perl_safesysmalloc (" in t for t in sites), f"html: perl's heap sites {sites}")


if __name__ == "__main__":
    try:
        globals()["test_" + sys.argv[1]]()
    except Skip as e:
        print("SKIP:", e)
        sys.exit(77)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
