#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of `faultline record`: run real targets, then check the
recording with exact expectations.  Usage: e2e_test.py CASE (see CASES).
Env: FAULTLINE (the binary), TARGETS (dir of built test targets).
Exit 0 pass, 1 fail, 77 skip."""
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from invariant import check_recording  # noqa: E402

FL = os.environ["FAULTLINE"]
TARGETS = os.environ["TARGETS"]
REQUIRE_BPF = os.environ.get("FAULTLINE_REQUIRE_BPF") == "1"
PAGE = 4096


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def record(db, argv, bpf=False, expect=0, env=None, explained_by=()):
    """Record argv into db; return (status, stdout, stderr).  Every recording's totals must add up
    (tests/invariant.py), short only by the losses named in explained_by."""
    cmd = [FL, "record", "--force", "-o", db] + ([] if bpf else ["--no-bpf"]) + ["--"] + argv
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if bpf and "eBPF unavailable" in p.stderr:
        if REQUIRE_BPF:
            raise AssertionError("eBPF required but unavailable: " + p.stderr.strip())
        raise Skip("eBPF unavailable")
    if expect is not None:
        check(p.returncode == expect, f"{cmd}: exit {p.returncode}, expected {expect}\n{p.stderr}")
    if bpf and PRETEND:
        check_pretended(db)
    check_recording(FL, db, explained_by)
    return p.returncode, p.stdout, p.stderr


# FAULTLINE_PRETEND_MISSING=all (the *_fallback tests): the kernel's newer features are
# treated as absent, so the fallbacks older kernels need run here too.
PRETEND = os.environ.get("FAULTLINE_PRETEND_MISSING")
FALLBACKS = ("exec_vmas", "exit_group_dead", "vma_tree")  # the features a newer kernel can pretend to lack


def check_pretended(db):
    """The recording says the fallbacks ran."""
    states = dict(query(db, "SELECT name, state FROM kernel_feature"))
    for name in FALLBACKS:
        if PRETEND == "all" or name in PRETEND.split(","):
            check(states.get(name) == "replaced", f"{name} not replaced under FAULTLINE_PRETEND_MISSING: {states}")


def query(db, sql, *args):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def target(name):
    return os.path.join(TARGETS, name)


# ---- the VMA model against /proc/self/maps ---------------------------------------------

def parse_maps(path):
    out = []
    for line in open(path):
        f = line.split(None, 5)
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        name = f[5].strip() if len(f) > 5 else ""
        if name in ("[stack]", "[vsyscall]"):
            continue  # the stack grows by faults, not calls; vsyscall is not a VMA of the mm
        prot = (1 if f[1][0] == "r" else 0) | (2 if f[1][1] == "w" else 0) | (4 if f[1][2] == "x" else 0)
        out.append((lo, hi, prot))
    return out


def merged(vmas):
    """Adjacent ranges with the same protection as one (the kernel merges, the model does not)."""
    out = []
    for lo, hi, prot in sorted(vmas):
        if out and out[-1][1] == lo and out[-1][2] == prot:
            out[-1] = (out[-1][0], hi, prot)
        else:
            out.append((lo, hi, prot))
    return out


def model_at(db, pid, t):
    rows = query(db, "SELECT start, end, prot, kind FROM vma WHERE pid=? AND created_ns<=? "
                     "AND (destroyed_ns IS NULL OR destroyed_ns>?)", pid, t, t)
    return [(lo, hi, prot) for lo, hi, prot, kind in rows if kind not in ("stack", "vsyscall")]


def maps_model(bpf):
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "run.db")
        record(db, [target("e2e_maps"), d], bpf=bpf)
        (pid,) = query(db, "SELECT pid FROM process WHERE parent_id IS NULL")[0]
        for k in range(1, 8):
            t = query(db, "SELECT time_ns FROM event WHERE pid=? AND kind='madvise' AND a0=? AND a1=0",
                      pid, k * PAGE)
            check(len(t) == 1, f"checkpoint {k}: {len(t)} marker events: " + repr(query(
                db, "SELECT id, tid, seq, source, stack_id, time_ns FROM event WHERE kind='madvise' AND a1=0")))
            want = merged(parse_maps(os.path.join(d, f"maps.{k}")))
            got = merged(model_at(db, pid, t[0][0]))
            if want != got:
                w, g = set(want), set(got)
                fmt = lambda s: "\n".join(f"  {lo:x}-{hi:x} {prot}" for lo, hi, prot in sorted(s))
                raise AssertionError(f"checkpoint {k}: model differs from /proc/self/maps\n"
                                     f"only in maps:\n{fmt(w - g)}\nonly in model:\n{fmt(g - w)}")


def test_maps_model_shim():
    maps_model(bpf=False)


def test_maps_model_bpf():
    maps_model(bpf=True)


# ---- calls, processes, exit status ----------------------------------------------------------

def calls(db, kind, pid=None, size=4096, shim_stack=False):
    """Calls of kind and size; shim_stack: those with the shim's stack, which in a BPF run means
    the kernel's record matched to the shim's (source 'both'), never a shim record left alone."""
    sql = "SELECT count(*) FROM event WHERE kind=? AND a1=?"
    args = [kind, size]
    if shim_stack and query(db, "SELECT fidelity FROM run")[0][0] == "bpf":
        sql += " AND source='both'"
    if pid is not None:
        sql += " AND pid=?"
        args.append(pid)
    if shim_stack:
        sql += " AND stack_id IS NOT NULL"
    return query(db, sql, *args)[0][0]


def with_db(fn):
    with tempfile.TemporaryDirectory() as d:
        return fn(os.path.join(d, "run.db"))


def threads(bpf):
    def run(db):
        record(db, [target("e2e_calls"), "threads", "8", "4000"], bpf=bpf)
        check(calls(db, "mmap", shim_stack=True) == 4000, f"mmap events: {calls(db, 'mmap', shim_stack=True)}")
        check(calls(db, "munmap", shim_stack=True) == 4000, "munmap events")
        dup = query(db, "SELECT count(*) FROM (SELECT pid, seq FROM event WHERE source!='bpf' "
                        "GROUP BY 1, 2 HAVING count(*) > 1)")[0][0]
        if not bpf:
            check(dup == 0, f"{dup} duplicate shim sequence numbers")
        lost = dict(query(db, "SELECT cause, count FROM loss WHERE count > 0"))
        if PRETEND and (PRETEND == "all" or "vma_tree" in PRETEND.split(",")):
            # without the tree walk (as before 6.1) a fault racing the other threads' mmap/munmap is
            # counted by address, in the bpf_find_vma row (the totals still add up: record())
            lost.pop("bpf_find_vma", None)
        check(not lost, f"losses {lost}")
    with_db(run)


def test_threads_shim():
    threads(False)


def test_threads_bpf():
    threads(True)


def dies(bpf, how, status, sig):
    def run(db):
        record(db, [target("e2e_calls"), how, "25"], bpf=bpf, expect=status)
        check(calls(db, "mmap", shim_stack=True) == 25, f"{calls(db, 'mmap', shim_stack=True)} mmaps, 25 made: " +
              repr(query(db, "SELECT source, stack_id IS NULL, count(*) FROM event WHERE kind='mmap' AND a1=4096 "
                             "GROUP BY 1, 2")) + repr(query(db, "SELECT * FROM loss WHERE count > 0")))
        row = query(db, "SELECT exit_code, exit_signal FROM process WHERE parent_id IS NULL")[0]
        check(row == (None, sig), f"exit row {row}")
        check(query(db, "SELECT exit_status, complete FROM run")[0] == (status, 1), "run row")
    with_db(run)


def test_crash_shim():
    dies(False, "crash", 128 + signal.SIGSEGV, signal.SIGSEGV)


def test_kill_shim():
    dies(False, "kill", 128 + signal.SIGKILL, signal.SIGKILL)


def test_crash_bpf():
    dies(True, "crash", 128 + signal.SIGSEGV, signal.SIGSEGV)


def test_exit_code():
    def run(db):
        record(db, [target("e2e_calls"), "exit", "3"], expect=3)
        check(query(db, "SELECT exit_code FROM process WHERE parent_id IS NULL")[0][0] == 3, "exit_code")
    with_db(run)


def test_closefds():
    def run(db):
        record(db, [target("e2e_calls"), "closefds", "10"])
        check(calls(db, "mmap", shim_stack=True) == 10, "mmaps after closing every fd")
    with_db(run)


def stack(bpf):
    def run(db):
        record(db, [target("e2e_calls"), "stack"], bpf=bpf)
        rows = query(db, "SELECT stack_id FROM event WHERE kind='mmap' AND a1=? AND stack_id IS NOT NULL "
                         "AND source=?", 3 * PAGE, "both" if bpf else "shim")
        check(len(rows) == 1, f"{len(rows)} stacks for the 3-page mmap")
        frames = query(db, "SELECT f.function, f.file, f.line FROM stack_frame s JOIN frame f "
                           "ON f.id = s.frame_id WHERE s.stack_id=? ORDER BY s.idx", rows[0][0])
        names = [f[0] for f in frames[:4]]
        check(names[:4] == ["inner", "middle", "outer", "main"], f"frames {frames[:5]}")
        check(all(f[1] and f[1].endswith("e2e_calls.c") and f[2] > 0 for f in frames[:4]),
              f"file:line {frames[:4]}")
    with_db(run)


def test_stack_shim():
    stack(False)


def test_stack_bpf():
    stack(True)


def fork_exec(bpf):
    def run(db):
        record(db, [target("e2e_calls"), "fork"], bpf=bpf)
        procs = query(db, "SELECT pid, parent_id, exe FROM process ORDER BY id")
        check(len(procs) == 2 and procs[1][1] is not None, f"processes {procs}")
        child = procs[1][0]
        check(procs[1][2].endswith("e2e_calls"), f"child exe {procs[1][2]}")
        check(calls(db, "mmap", pid=child, shim_stack=True) == 3, "child mmaps before exec")
        check(query(db, "SELECT count(*) FROM event WHERE pid=? AND kind='exec'", child)[0][0] == 1,
              "child exec event")
        if bpf:  # the kernel tells every exit status, not only the launched process's
            check(query(db, "SELECT exit_code FROM process WHERE pid=?", child)[0][0] == 7, "child status")
            inherited = query(db, "SELECT count(*) FROM vma WHERE pid=? AND how='fork'", child)[0][0]
            check(inherited > 10, f"{inherited} VMAs inherited at fork")
    with_db(run)


def test_depth():
    """--depth N keeps the N innermost frames."""
    def run(db):
        subprocess.run([FL, "record", "--force", "--no-bpf", "--depth", "2", "-o", db, "--",
                        target("e2e_calls"), "stack"], check=True, capture_output=True)
        rows = query(db, "SELECT f.function FROM event e JOIN stack_frame s ON s.stack_id = e.stack_id "
                         "JOIN frame f ON f.id = s.frame_id WHERE e.kind='mmap' AND e.a1=? ORDER BY s.idx",
                     3 * PAGE)
        check([r[0] for r in rows] == ["inner", "middle"], f"frames {rows}")
        check(query(db, "SELECT stack_depth FROM run")[0][0] == 2, "run.stack_depth")
    with_db(run)


def test_fork_exec_shim():
    fork_exec(False)


def test_fork_exec_bpf():
    fork_exec(True)


def forks(bpf):
    def run(db):
        record(db, [target("e2e_calls"), "forks", "150"], bpf=bpf)
        kids = query(db, "SELECT count(*), count(end_ns), sum(exit_code = 3) FROM process WHERE parent_id IS NOT NULL")[0]
        check(kids[:2] == (150, 150), f"children recorded/ended: {kids}")
        if bpf:
            check(kids[2] == 150, f"children's exit codes: {kids}")
        check(calls(db, "mmap", shim_stack=True) == 150, f"children's mmaps: {calls(db, 'mmap', shim_stack=True)}")
    with_db(run)


def test_forks_shim():
    forks(False)


def test_forks_bpf():
    forks(True)


SUMMARIES = ("fault_summary", "fault_summary_total", "site_summary", "proc_summary", "call_summary",
             "region_summary")


def test_summaries_bpf():
    """The summaries the close writes (the process part on a second thread and connection, copied
    in) are the ones `faultline __summarize` makes from the same rows on one thread, row for row,
    with the same table definitions: 151 processes with calls, faults and regions."""
    def run(db):
        record(db, [target("e2e_calls"), "forks", "150"], bpf=True)
        again = db + ".again"
        shutil.copy(db, again)
        p = subprocess.run([FL, "__summarize", again], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0 and not p.stderr, f"__summarize: {p.returncode} {p.stderr}")
        for t in SUMMARIES:
            made = query(db, "SELECT sql FROM sqlite_schema WHERE name = ?", t)
            check(made and made == query(again, "SELECT sql FROM sqlite_schema WHERE name = ?", t),
                  f"{t}: defined as {made}")
            n = len(query(db, f"SELECT * FROM {t} LIMIT 1")[0])
            order = ", ".join(str(i + 1) for i in range(n))
            rows = query(db, f"SELECT * FROM {t} ORDER BY {order}")
            check(rows and rows == query(again, f"SELECT * FROM {t} ORDER BY {order}"),
                  f"{t}: {len(rows)} rows at close differ from __summarize's")
    with_db(run)


CUT_WORK = """
import mmap
maps = []
for i in range(2500):
    m = mmap.mmap(-1, 3 * 4096)
    for page in range(i % 3 + 1):
        m[page * 4096] = 1
    maps.append(m)
"""


def test_summaries_cut_bpf():
    """The region and vma keys of the recording's fault_summary keep the 2000 groups of a process
    with the most faults (summary.h FL_SUM_TOP_GROUPS); fault_summary_total counts them all.  What
    `faults` prints from that equals, byte for byte, what it prints from the rows alone (the
    summaries dropped), in every format and with the options that need every group: python3 making
    2,500 mappings of 1-3 written pages (ties at the cut: many groups have the same total)."""
    def run(db):
        record(db, ["python3", "-c", CUT_WORK], bpf=True)
        pid = query(db, "SELECT pid FROM process WHERE exe LIKE '%python3%' LIMIT 1")[0][0]
        kept = query(db, "SELECT count(*) FROM fault_summary WHERE key = 'vma' AND pid = ?", pid)[0][0]
        groups = query(db, "SELECT groups FROM fault_summary_total WHERE key = 'vma' AND pid = ?", pid)[0][0]
        check(kept == 2000 and groups >= 2500, f"vma groups kept {kept} of {groups}")
        rows = db + ".rows"
        shutil.copy(db, rows)
        con = sqlite3.connect(rows)
        for t in ("fault_summary", "fault_summary_total", "site_summary"):
            con.execute(f"DROP TABLE {t}")
        con.commit()
        con.close()
        for key in ("vma", "region", "process", "kind", "file", "stack"):
            for extra in ([], ["--top", "1"], ["--top", "2000"], ["--top", "2001"], ["--format", "json"],
                          ["--format", "csv"], ["--class", "anon_new"], ["--class", "zero_page", "--top", "3000"],
                          ["--pid", str(pid)], ["--pid", str(pid), "--top", "7"]):
                argv = ["faults", "--by", key] + extra
                cut = subprocess.run([FL, argv[0], db] + argv[1:], capture_output=True, text=True, timeout=120)
                whole = subprocess.run([FL, argv[0], rows] + argv[1:], capture_output=True, text=True, timeout=120)
                check(cut.returncode == 0 and (cut.stdout, cut.stderr) == (whole.stdout, whole.stderr.replace(rows, db)),
                      f"{' '.join(argv)}: from the cut summary:\n{cut.stdout[:2000]}{cut.stderr}\n"
                      f"from the rows:\n{whole.stdout[:2000]}{whole.stderr}")
        os.unlink(rows)
    with_db(run)


def test_spawn():
    def run(db):
        record(db, [target("e2e_calls"), "spawn"])
        procs = query(db, "SELECT exe FROM process WHERE parent_id IS NOT NULL")
        check(len(procs) == 2, f"spawned processes {procs}")
    with_db(run)


def test_output_unchanged():
    def run(db):
        argv = [target("e2e_calls"), "output"]
        plain = subprocess.run(argv, capture_output=True, text=True)
        _, out, err = record(db, argv)
        check((out, err) == (plain.stdout, plain.stderr), f"output changed: {out!r} {err!r}")
    with_db(run)


# ---- faults through the recording ------------------------------------------------------------

def test_static_bpf():
    """A static binary's raw-syscall mapping is in the model, with its faults and no stack."""
    def run(db):
        _, out, _ = record(db, [target("e2e_static"), "300"], bpf=True)
        addr = int(out.strip(), 16)
        rows = query(db, "SELECT v.id, v.kind, e.kind, e.stack_id FROM vma v JOIN event e ON e.id = v.created_by "
                         "WHERE v.start = ? AND v.destroyed_ns IS NULL", addr)
        check(len(rows) == 1 and rows[0][1:] == ("anon", "mmap", None), f"model row {rows}")
        faults = query(db, "SELECT sum(anon_new), sum(reads + writes + execs) FROM fault WHERE vma_id = ?",
                       rows[0][0])[0]
        check(faults == (300, 300), f"faults in the mapping {faults}")
        p = subprocess.run([FL, "report", db], capture_output=True, text=True)
        rep = p.stdout
        check(p.returncode == 0, f"report failed ({p.returncode}): {p.stderr}")
        check("main (e2e_static.c:" in rep and " 300 anon_new" in rep, f"fault site not in the report:\n{rep}")
        check("  rss      peak " in rep, f"no RSS peak in the report:\n{rep}")
    with_db(run)


def test_dropped_preload_bpf():
    """A descendant the shim cannot follow (a raw execve system call: no hook puts faultline's variables
    back into its environment, preload/env.c) is still followed by the kernel side, without stacks."""
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    code = ("import ctypes, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "argv = (ctypes.c_char_p * 4)(sys.argv[1].encode(), b'closefds', b'7', None)\n"
            "envp = (ctypes.c_char_p * 1)(None)\n"
            "libc.syscall(59, argv[0], argv, envp)\n"
            "sys.exit('execve: %d' % ctypes.get_errno())\n")
    def run(db):
        record(db, [py, "-c", code, target("e2e_calls")], bpf=True, explained_by=("shim_absent",))
        # python (with the shim) execs e2e_calls (without): same process, a new image after the exec
        rows = query(db, "SELECT count(e.id), count(e.stack_id) FROM process p JOIN event e "
                         "ON e.proc_id = p.id AND e.kind = 'mmap' AND e.a1 = 4096 AND e.a2 = 3 "
                         "AND e.time_ns > (SELECT max(time_ns) FROM event WHERE kind = 'exec') "
                         "WHERE p.exe LIKE '%e2e_calls'")
        check(rows == [(7, 0)], f"(mmaps after the exec, with a stack) {rows}")
    with_db(run)


def test_environment():
    """The target's environment is the one it would have without faultline: LD_PRELOAD as the user set
    it (or none), no FAULTLINE_ variable; in its children too, while each image still has the shim, even
    one exec'd with an environment of its own (env -i)."""
    script = "/usr/bin/env; /usr/bin/env -i X=1 /usr/bin/env"
    for preload in ("", "/lib/x86_64-linux-gnu/libm.so.6"):
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAULTLINE_")}
        if preload:
            env["LD_PRELOAD"] = preload
        plain = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env=env).stdout

        def run(db):
            _, out, _ = record(db, ["/bin/sh", "-c", script], bpf=True, env=env)
            check(sorted(out.splitlines()) == sorted(plain.splitlines()),
                  f"LD_PRELOAD={preload!r}: the environment differs from a plain run's:\n"
                  f"{sorted(set(out.splitlines()) ^ set(plain.splitlines()))}")
            procs = query(db, "SELECT exe, shim FROM process")
            check(len(procs) == 3 and all(s == 1 for _, s in procs), f"every image has the shim: {procs}")
        with_db(run)


def test_exec_chain_bpf():
    """Exec after exec (a script that execs its interpreter): each image's own faults, taken before
    its exec record, go to that image's rows even when the next exec came before they were read
    (docs/faults.md, "Exec's own faults"; 2 to 4 of them fit no row before)."""
    chain = 'exec /bin/sh -c "exec /bin/sh -c \\"exec /bin/sh -c true\\""'
    for _ in range(3):
        def run(db):
            record(db, ["/bin/sh", "-c", chain], bpf=True)
            lost = query(db, "SELECT count FROM loss WHERE cause = 'fault_unattributed'")
            check(lost == [(0,)], f"faults that fit no row: {lost}")
            execs = query(db, "SELECT count(*) FROM event WHERE kind = 'exec'")[0][0]
            check(execs >= 4, f"{execs} execs recorded")
        with_db(run)


def test_totals_bpf():
    """Per process: the classified faults plus what no fault event can show equal the kernel's totals."""
    def run(db):
        record(db, [target("e2e_calls"), "fork"], bpf=True)
        rows = query(db, "SELECT p.pid, p.min_flt + p.maj_flt, p.min_flt_before + p.maj_flt_before, "
                         "p.min_flt_gup + p.maj_flt_gup, (SELECT coalesce(sum(reads + writes + execs), 0) "
                         "FROM fault f WHERE f.proc_id = p.id) FROM process p")
        check(len(rows) == 2, f"processes {rows}")
        for pid, kernel, before, gup, classified in rows:
            check(kernel == classified + before + gup,
                  f"pid {pid}: kernel {kernel} != {classified} classified + {before} before + {gup} gup")
        check(query(db, "SELECT coalesce(sum(count), 0) FROM loss")[0][0] == 0, "losses")
    with_db(run)


def test_kernel_features_bpf():
    """The recording lists the kernel features as `doctor` does, and the report says what was replaced."""
    def run(db):
        record(db, ["/bin/true"], bpf=True)
        doctor = subprocess.run([FL, "doctor"], capture_output=True, text=True).stdout
        listed = {}
        for line in doctor.splitlines():
            f = line.split()
            if line.startswith("  ") and len(f) > 2 and f[1] in ("present", "replaced", "missing"):
                listed[f[0]] = f[1]
        rows = dict(query(db, "SELECT name, state FROM kernel_feature"))
        check(len(rows) == 6 and rows == listed, f"recorded {rows}, doctor {listed}")
        rep = subprocess.run([FL, "report", db], capture_output=True, text=True).stdout
        absent = [n for n, st in rows.items() if st != "present"]
        for n in absent:
            check(f"kernel     {n} {rows[n]}: " in rep, f"report does not say {n} {rows[n]}:\n{rep}")
        if not absent:
            check("kernel     every feature faultline uses is present" in rep, f"report:\n{rep}")
    with_db(run)


def test_ia32_bpf():
    """32-bit system calls (int $0x80) are not misread as x86-64 ones: said as a loss, none recorded."""
    def run(db):
        # the faults in what mmap2 mapped have no VMA in the model: counted, by the loss row
        _, out, _ = record(db, [target("e2e_ia32")], bpf=True, explained_by=("fault_unattributed",))
        if out.startswith("noia32"):
            raise Skip(f"this kernel has no ia32 emulation ({out.strip()})")
        lost = query(db, "SELECT count FROM loss WHERE cause = 'bpf_ia32'")
        check(lost == [(3,)], f"bpf_ia32 loss {lost}, expected 3 (link, unlink, mmap2)")
        bogus = query(db, "SELECT kind, errno, source FROM event WHERE errno = 14")
        check(bogus == [], f"ia32 calls recorded as x86-64 ones: {bogus}")
        rep = subprocess.run([FL, "report", db], capture_output=True, text=True).stdout
        check("LOST       bpf_ia32: 3" in rep, f"report does not say the ia32 calls:\n{rep}")
    with_db(run)


def row_faults(db, exe, since=0):
    """The VMA rows of the process running exe created at or after since:
    (start, end, prot, how, anon_new, zero_page, total faults)."""
    rows = query(db, "SELECT v.start, v.end, v.prot, v.how, coalesce(sum(f.anon_new), 0), "
                     "coalesce(sum(f.zero_page), 0), coalesce(sum(f.reads + f.writes + f.execs), 0) "
                     "FROM vma v JOIN process p ON p.id = v.proc_id LEFT JOIN fault f ON f.vma_id = v.id "
                     "WHERE p.exe LIKE ? AND v.created_ns >= ? GROUP BY v.id ORDER BY v.start, v.created_ns",
                 "%" + exe, since)
    return rows


def test_merged_bpf():
    """Faults land on the row that held the address, whatever the kernel merged (exact counts)."""
    def run(db):
        _, out, _ = record(db, [target("e2e_merge")], bpf=True)
        addr = {f[0]: [int(x, 16) for x in f[1:]] for f in (line.split() for line in out.splitlines())}
        # rows made from the first mmap of the test on (ld.so and libc may have used these addresses before)
        first = query(db, "SELECT min(e.time_ns) FROM event e WHERE e.kind = 'mmap' AND e.a1 = 8 << 20")[0][0]
        rows = row_faults(db, "e2e_merge", first)
        def at(start, end, prot=3, how=None):
            got = [r[4:] for r in rows if r[0] == start and r[1] == end and r[2] == prot and (how is None or r[3] == how)]
            check(len(got) == 1, f"one row {start:x}-{end:x} prot {prot} how {how}: {got}")
            return list(got[0])
        a, b = addr["adjacent"]
        check(b == a + (4 << 20), "adjacent mappings")
        check(at(a, b) == [1024, 0, 1024], f"first of two merged mmaps: {at(a, b)}")
        check(at(b, b + (4 << 20)) == [64, 0, 64], f"second of two merged mmaps: {at(b, b + (4 << 20))}")

        base, = addr["brk"]
        steps = [i % 5 + 1 for i in range(100)]
        heap = [r for r in rows if base <= r[0] < base + sum(steps) * PAGE]
        check(len(heap) == 100, f"one heap row per sbrk step: {len(heap)}")
        lo = base
        for i, r in enumerate(heap):
            touched = min(i % 3 + 1, steps[i])
            check((r[0], r[1]) == (lo, lo + steps[i] * PAGE), f"step {i}: {r[0]:x}-{r[1]:x}")
            check(list(r[4:]) == [touched, 0, touched], f"step {i}: {r[4:]}, expected {touched} first touches")
            lo += steps[i] * PAGE

        m, = addr["split"]
        P = PAGE
        check(at(m, m + 64 * P, how="call") == [8, 0, 8], f"before the split: {at(m, m + 64 * P, how='call')}")
        check(at(m, m + 16 * P, how="split") == [6, 0, 6], f"left piece: {at(m, m + 16 * P, how='split')}")
        check(at(m + 16 * P, m + 32 * P, prot=1) == [0, 4, 4], f"read-only middle: {at(m + 16 * P, m + 32 * P, prot=1)}")
        check(at(m + 16 * P, m + 32 * P, prot=3) == [4, 0, 4], f"middle merged back: {at(m + 16 * P, m + 32 * P, prot=3)}")
        check(at(m + 32 * P, m + 64 * P, how="split") == [9, 0, 9], f"right piece: {at(m + 32 * P, m + 64 * P, how='split')}")
        check(query(db, "SELECT coalesce(sum(count), 0) FROM loss")[0][0] == 0,
              f"losses {query(db, 'SELECT * FROM loss WHERE count > 0')}")
    with_db(run)


def why_json(db, *args):
    import json
    p = subprocess.run([FL, "why", db, "--format", "json", "--top", "1000"] + list(args),
                       capture_output=True, text=True)
    check(p.returncode == 0, f"why: {p.returncode} {p.stderr}")
    return json.loads(p.stdout)


def test_why_bpf():
    """`why` at the peak: regions from smaps, split among the recorded pieces page by page, adding up exactly."""
    def run(db):
        _, out, _ = record(db, [target("e2e_merge"), "hold"], bpf=True)
        addr = {f[0]: [int(x, 16) for x in f[1:]] for f in (line.split() for line in out.splitlines())}
        w = why_json(db)
        check(w["sample"]["rss"] == sum(r["rss"] for r in w["regions"]) + w["other_regions"]["rss"],
              "regions add up to the sample")
        for r in w["regions"]:
            check(sum(c["rss"] for c in r["creators"]) + r["unattributed"] == r["rss"], f"region adds up: {r}")
            check(r["unattributed"] >= 0, f"pages counted twice or the zero page counted: {r}")
        a, b = addr["adjacent"]
        merged = [r for r in w["regions"] if r["start"] <= a < r["end"]]
        check(len(merged) == 1 and merged[0]["end"] >= b + (4 << 20), f"one kernel region for both mmaps: {merged}")
        check(merged[0]["unattributed"] == 0, f"all of the region on recorded rows: {merged[0]}")
        check(sum(c["rss"] for c in merged[0]["creators"] if c["pieces"] == 2) == 1088 * PAGE,
              f"the two mmaps' resident bytes: {merged[0]}")
        # the same call site made both (one line of the target), so why groups them; the pieces stay apart
        got = query(db, "SELECT v.start, pr.rss FROM piece_rss pr JOIN vma v ON v.id = pr.vma_id "
                        "WHERE v.start IN (?, ?) AND pr.sample_id = ?", a, b, w["sample"]["id"])
        check(sorted(got) == [(a, 1024 * PAGE), (b, 64 * PAGE)], f"page by page: {got}")
        base, = addr["brk"]
        heap = [r for r in w["regions"] if r["start"] <= base < r["end"]]
        touched = sum(min(i % 3 + 1, i % 5 + 1) for i in range(100))
        check(len(heap) == 1 and heap[0]["unattributed"] == 0, f"one heap region, all of it on recorded rows: {heap}")
        steps = [c for c in heap[0]["creators"] if c["pieces"] == 100]
        check(len(steps) == 1 and steps[0]["rss"] == touched * PAGE,
              f"the 100 sbrk steps (one call site) hold the {touched} pages touched: {heap[0]['creators']}")
    with_db(run)


def test_why_race_bpf():
    """Every smaps sample taken while mmaps were still in the ring splits its regions among all the
    rows: the pages are held until the rings were drained past the read.  Read as the RSS record came
    (before), the rest of a burst's calls were behind it and their memory showed as no row's."""
    def run(db):
        _, out, _ = record(db, [target("e2e_merge"), "bursts"], bpf=True)
        lo, hi = (int(x, 16) for x in out.split()[1:3])
        samples = query(db, "SELECT s.id FROM smaps_sample s JOIN process p ON p.id = s.proc_id"
                            " WHERE p.exe LIKE '%e2e_merge'")
        check(len(samples) >= 3, f"samples taken while it mapped: {samples}")
        rows = query(db, "SELECT r.sample_id, r.start, r.rss, (SELECT coalesce(sum(pr.rss), 0) FROM piece_rss pr"
                         " WHERE pr.sample_id = r.sample_id AND pr.region_start = r.start)"
                         " FROM region_rss r WHERE r.start < ? AND r.end > ?", hi, lo)
        check(len(rows) >= 3, f"regions of the bursts sampled: {rows}")
        bad = [r for r in rows if r[2] != r[3]]
        check(not bad, f"regions not wholly on rows (sample, start, rss, on rows): {bad}")
    with_db(run)


EXIT_N, EXIT_M = 512, 128   # e2e_exit: pages written, then the first half freed and EXIT_M of it written again


def exit_run(db, how):
    """Record e2e_exit ending by `how`; return its mapping's address and its process row.  Exit
    samples are offered whatever a read costs (FAULTLINE_EXIT_SAMPLES=all: on a loaded machine one
    50 ms read left it too young for the default rule).  A process whose exit read came after its
    100 ms wait (the recording's message says so) is recorded again, up to three times in all; so
    is one with a sample read while the M pages were being written again: it holds some of them,
    and a fault during a read may be seen by it or not (viewer/estimate.c), so an estimate from it
    can be short by the pages written during the read (seen once on a loaded machine, 32 of 128)."""
    env = dict(os.environ, FAULTLINE_EXIT_SAMPLES="all")
    for attempt in range(3):
        _, out, _ = record(db, [target("e2e_exit"), how, str(EXIT_N), str(EXIT_M)], bpf=True,
                           expect=137 if how == "kill" else 0, env=env)
        addr = int(out.split()[1], 16)
        late = query(db, "SELECT text FROM message WHERE text LIKE '%stopped waiting at exit%'")
        during = query(db, "SELECT s.id, pr.rss FROM smaps_sample s JOIN piece_rss pr ON pr.sample_id = s.id"
                           " JOIN vma v ON v.id = pr.vma_id WHERE v.start = ? AND s.reason != 'exit'"
                           " AND s.time_ns > (SELECT max(time_ns) FROM event e WHERE e.proc_id = s.proc_id"
                           "                  AND e.kind = 'madvise')"
                           " AND pr.rss > ? AND pr.rss < ?", addr, EXIT_N // 2 * PAGE, (EXIT_N // 2 + EXIT_M) * PAGE)
        if not late and not during:
            break
        print(f"attempt {attempt + 1}: {'late exit read' if late else f'samples read during the writes: {during}'}")
    proc, = query(db, "SELECT id FROM process WHERE exe LIKE '%e2e_exit'")
    return addr, proc[0]


def test_exit_sample_bpf():
    """Just before a process exits (exit(), a return from main, _exit(), _Exit()) its shim waits for one
    last smaps read, reason 'exit': it holds exactly the pages resident then (N/2 + M of the mapping),
    though the RSS made no new high after the earlier samples."""
    def run(db):
        for how in ("exit", "return", "_exit", "_Exit"):
            addr, proc = exit_run(db, how)
            last = query(db, "SELECT id, reason, held_ns, rss_stat FROM smaps_sample WHERE proc_id = ?"
                             " ORDER BY time_ns DESC LIMIT 1", proc)
            check(last and last[0][1] == "exit", f"{how}: the last sample is the exit's: {last}")
            sid, _, held, rss_stat = last[0]
            check(held is not None and 0 < held <= 100_000_000, f"{how}: held {held} ns, within the 100 ms bound")
            got = query(db, "SELECT pr.rss, pr.exact FROM piece_rss pr JOIN vma v ON v.id = pr.vma_id"
                            " WHERE pr.sample_id = ? AND v.start = ?", sid, addr)
            check(got == [((EXIT_N // 2 + EXIT_M) * PAGE, 1)], f"{how}: the mapping's pages at exit: {got}")
            peak = query(db, "SELECT max(anon + file + shmem) FROM rss WHERE proc_id = ?", proc)[0][0]
            check(rss_stat < peak, f"{how}: no new RSS high at the end ({rss_stat} < {peak})")
    with_db(run)


def estimate_row(w, addr):
    rows = [r for r in w["estimate"]["rows"] if r["start"] == addr]
    check(len(rows) == 1, f"the mapping's row in the estimate: {w['estimate']}")
    return rows[0]


def test_exit_killed_bpf():
    """A process killed by SIGKILL has no exit sample (its shim never ran): `why --at end` says it shows an
    estimate, from the last sample (N pages then), + M first touches - N/2 freed by MADV_DONTNEED = N/2 + M
    exactly, and the kernel's RSS counter at the exit beside it."""
    def run(db):
        addr, proc = exit_run(db, "kill")
        samples = query(db, "SELECT id, reason FROM smaps_sample WHERE proc_id = ? ORDER BY time_ns", proc)
        check(samples and "exit" not in [r[1] for r in samples], f"no exit sample of a killed process: {samples}")
        pid = query(db, "SELECT pid FROM process WHERE id = ?", proc)[0][0]
        w = why_json(db, "--pid", str(pid), "--at", "end")
        check(w["moment"]["kind"] == "estimate", f"marked an estimate: {w['moment']}")
        e = w["estimate"]
        check(e["from_sample"] == samples[-1][0] == w["sample"]["id"], f"from the last sample: {e['from_sample']}")
        r = estimate_row(w, addr)
        P = PAGE
        # from the sample after the N writes (usually): N - N/2 + M; a high noted late can bring a
        # sample between the free and the end, with fewer faults and no free after it
        check(r["rss"] == (EXIT_N // 2 + EXIT_M) * P and r["sampled"] + r["added"] - r["freed"] == r["rss"],
              f"N - N/2 + M: {r}")
        kernel = query(db, "SELECT anon + file + shmem FROM rss WHERE proc_id = ? ORDER BY time_ns DESC LIMIT 1", proc)
        check(e["kernel_rss"] == kernel[0][0] and e["residual"] == e["kernel_rss"] - e["rss"],
              f"the kernel's counter at the end beside it: {e['kernel_rss']} {e['residual']} {kernel}")
        check(abs(e["residual"]) < (1 << 20), f"the estimate within 1 MiB of the kernel's count: {e['residual']}")
    with_db(run)


def test_exit_estimate_bpf():
    """Between samples `why --at TIME` estimates, and the estimate just before the exit sample equals what
    that sample measured for the mapping; `--at end` of a process with an exit sample is that sample."""
    def run(db):
        addr, proc = exit_run(db, "exit")
        pid = query(db, "SELECT pid FROM process WHERE id = ?", proc)[0][0]
        (sid, t), = query(db, "SELECT id, time_ns - (SELECT start_ns FROM run) FROM smaps_sample"
                              " WHERE proc_id = ? AND reason = 'exit'", proc)
        w = why_json(db, "--pid", str(pid), "--at", "end")
        check(w["moment"]["kind"] == "sample" and w["sample"]["id"] == sid and "estimate" not in w,
              f"--at end is the exit sample: {w['moment']}")
        w = why_json(db, "--pid", str(pid), "--at", f"{t - 1}ns")
        check(w["moment"]["kind"] == "estimate" and w["estimate"]["from_sample"] != sid, f"an estimate: {w['moment']}")
        measured = query(db, "SELECT pr.rss FROM piece_rss pr JOIN vma v ON v.id = pr.vma_id"
                             " WHERE pr.sample_id = ? AND v.start = ?", sid, addr)
        check(estimate_row(w, addr)["rss"] == measured[0][0] == (EXIT_N // 2 + EXIT_M) * PAGE,
              f"estimated {estimate_row(w, addr)} vs measured {measured}")
    with_db(run)


def test_paths_bpf():
    """Nothing unknown hidden: short-lived processes' file mappings get their path (glibc maps the
    locale files with its own mmap, which only the kernel reports, and the process is gone before
    the collector can read /proc); run.end_ns is when the last process ended."""
    def run(db):
        record(db, ["sh", "-c", "echo hi; /bin/echo hi | cat"], bpf=True)
        rows = query(db, "SELECT count(*), sum(path IS NULL) FROM vma WHERE kind = 'file' AND inode IS NOT NULL")
        check(rows[0][0] > 50 and rows[0][1] == 0, f"file rows without a path: {rows}")
        locale = query(db, "SELECT count(DISTINCT path) FROM vma WHERE path LIKE '/usr/lib/locale/%'")[0][0]
        check(locale > 0 or not os.path.isdir("/usr/lib/locale"), "the locale files are named")
        end, last = query(db, "SELECT end_ns, (SELECT max(end_ns) FROM process) FROM run")[0]
        check(end == last, f"run.end_ns {end} is the last process's end {last}")
        # a path read late from /proc/PID/fd/N once named the file the program opened next on that fd
        named = query(db, "SELECT DISTINCT path, inode FROM vma WHERE kind = 'file' AND inode IS NOT NULL"
                          " AND path NOT LIKE '% (deleted)'")
        wrong = [(p, i) for p, i in named if os.path.exists(p) and os.stat(p).st_ino != i]
        check(not wrong, f"rows named for another file (path, inode): {wrong}")
    with_db(run)


def frames(db):
    """(module file name, offset) -> (function, offset in it, source file, line) of every frame."""
    return {(os.path.basename(m or ""), r): (f, o, fi, l) for m, r, f, o, fi, l in
            query(db, "SELECT module, rel_addr, function, func_off, file, line FROM frame")}


def test_debug_cache_bpf():
    """libc's debug file, compressed by the distribution, is kept decompressed by build ID in
    /var/cache/faultline/debug (collector/debugcache.c): made by the first recording, read by the
    next, not believed when damaged or writable by others (and made again); the frames are symbolized
    the same in every case, libc's with source lines."""
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    note = subprocess.run(["readelf", "-n", libc], capture_output=True, text=True).stdout
    bid = [l.split()[-1] for l in note.splitlines() if "Build ID" in l]
    src = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[0][:2], bid[0][2:]) if bid else ""
    if not os.path.exists(src):
        raise Skip("no debug file for libc (libc6-dbg, scripts/deps.sh)")
    cached = "/var/cache/faultline/debug/%s.debug" % bid[0]
    env = dict(os.environ, FAULTLINE_DEBUG="1")

    def run(db, what):
        _, _, err = record(db, [target("e2e_calls"), "threads", "4", "500"], bpf=True, env=env)
        got = frames(db)
        lines = [k for k, v in got.items() if k[0] == "libc.so.6" and v[2] and v[3]]
        check(len(lines) >= 3, f"{what}: libc frames with source lines: {lines}")
        return got, ("debug file of %s: %s" % (libc, cached)) in err

    def sections(path):
        out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
        return [l.split()[1] for l in out.splitlines() if l.strip().startswith("[") and " C " in l]

    def same(a, b, what):
        diff = [(k, a[k], b[k]) for k in set(a) & set(b) if a[k] != b[k]]
        check(len(set(a) & set(b)) > 20 and not diff, f"{what}: frames symbolized differently: {diff[:5]}")

    def go(db):
        if os.path.exists(cached):
            os.unlink(cached)
        first, used = run(db, "made")
        check(not used and os.path.exists(cached), f"made: {cached} written by the first recording")
        st = os.stat(cached)
        check(st.st_uid == 0 and st.st_mode & 0o777 == 0o644 and os.stat(os.path.dirname(cached)).st_mode & 0o777 == 0o700,
              "made: root's, 0644, in a 0700 directory")
        check(sections(src) and not sections(cached), f"made: compressed sections {sections(src)} -> {sections(cached)}")
        again, used = run(db, "cached")
        check(used, "cached: the second recording reads the copy")
        same(first, again, "cached")
        os.chmod(cached, 0o664)
        writable, used = run(db, "writable")
        check(not used, "writable by its group: not read")
        same(first, writable, "writable")
        check(os.stat(cached).st_mode & 0o777 == 0o644, "writable: made again, root's alone")
        with open(cached, "r+b") as f:
            f.truncate(4096)
        damaged, used = run(db, "damaged")
        check(not used, "damaged (cut at 4 KiB): not read")
        same(first, damaged, "damaged")
        check(os.path.getsize(cached) == st.st_size, "damaged: made again")
        again, used = run(db, "made again")
        check(used, "made again: read")
        same(first, again, "made again")
        os.unlink(cached)
    with_db(go)


def debuginfod_serves(d, served, exe, run):
    """run(env) with DEBUGINFOD_URLS naming a debuginfod server of the directory served (on a free
    port, its cache in d), once the server answers for exe's build ID; run's result."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen(["debuginfod", "-F", served, "-p", str(port), "-d", os.path.join(d, "debuginfod.db")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = dict(os.environ, DEBUGINFOD_URLS=f"http://127.0.0.1:{port}",
                   DEBUGINFOD_CACHE_PATH=os.path.join(d, "debuginfod-cache"))
        for i in range(100):  # the server scans the directory first; a miss is cached: a cache per probe
            probe = dict(env, DEBUGINFOD_CACHE_PATH=os.path.join(d, f"probe-cache-{i}"))
            if subprocess.run(["debuginfod-find", "debuginfo", exe], env=probe, capture_output=True).returncode == 0:
                break
            srv.poll()
            check(srv.returncode is None, "debuginfod started")
            time.sleep(0.1)
        else:
            check(False, "debuginfod served the debug file within 10 s")
        return run(env)
    finally:
        srv.kill()
        srv.wait()


def test_debuglink():
    """A program whose debug information was split off (objcopy --only-keep-debug, strip
    --strip-debug, --add-gnu-debuglink) is symbolized with source lines wherever libdw's standard
    search would find its debug file, without libdebuginfod (collector/debugfind.c): beside it, in
    its .debug/, under /usr/lib/debug by its directory and by a tail of it; a program without a
    build ID by the link's CRC.  A debug file of another build ID, or whose CRC differs, is not
    used.  libdebuginfod is loaded only where DEBUGINFOD_URLS names a server.  A dwz alternate file
    is found beside its debug files (opened by faultline, non-blocking), and a FIFO put in its
    place holds nothing."""
    tools = [shutil.which(t) for t in ("gcc", "objcopy", "strip")]
    if not all(tools):
        raise Skip("gcc and binutils needed (scripts/deps.sh)")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "targets", "e2e_calls.c")

    def build(exe, build_id=True, opt="-O1"):
        subprocess.run(["gcc", "-g", opt, "-o", exe, src, "-lpthread"] +
                       ([] if build_id else ["-Wl,--build-id=none"]), check=True)
        debug = exe + ".debug"
        subprocess.run(["objcopy", "--only-keep-debug", exe, debug], check=True)
        subprocess.run(["strip", "--strip-debug", exe], check=True)
        subprocess.run(["objcopy", "--add-gnu-debuglink=" + debug, exe], check=True)
        return debug

    def lines(d, exe, what, env=None):
        db = os.path.join(d, "run.db")
        _, _, err = record(db, [exe, "threads", "2", "50"], env=env)
        n = query(db, "SELECT count(*), count(CASE WHEN file LIKE '%e2e_calls.c' AND line > 0 THEN 1 END)"
                      " FROM frame WHERE module = ?", exe)[0]
        check(n[0] > 0, f"{what}: frames in {exe}: {n}")
        return n[1], err

    with tempfile.TemporaryDirectory() as d:
        # /usr/lib/debug/<the directory, then a tail of it>/ needs the directory's name unique
        top = os.path.join(d, "a", "b")
        os.makedirs(top)
        exe = os.path.join(top, "prog")
        debug = build(exe)
        got, err = lines(d, exe, "beside", dict(os.environ, LD_DEBUG="files"))
        check(got > 0, "beside the program: source lines")
        check("libdebuginfod" not in err, "libdebuginfod loaded though DEBUGINFOD_URLS names no server")
        server = dict(os.environ, DEBUGINFOD_URLS="http://127.0.0.1:9")
        _, err = lines(d, exe, "debuginfod", dict(server, LD_DEBUG="files"))
        check("libdebuginfod" in err, "with a server named, libdebuginfod is loaded to ask it")
        # with a server named too, a FIFO in the debug file's place holds nothing (libdw's own
        # search, which ran before asking the server, waited in its open() for ever)
        os.rename(debug, debug + ".real")
        os.mkfifo(debug)
        try:
            p = subprocess.run([FL, "record", "--force", "--no-bpf", "-o", os.path.join(d, "f.db"), "--", exe,
                                "threads", "2", "50"], capture_output=True, text=True, timeout=60, env=server)
            check(p.returncode == 0, f"a FIFO for the debug file, a server named: recorded ({p.returncode})")
        except subprocess.TimeoutExpired:
            subprocess.run(["pkill", "-9", "-f", os.path.join(d, "f.db")])
            check(False, "a FIFO for the debug file held the recorder (a debuginfod server named)")
        os.unlink(debug)
        if shutil.which("debuginfod") and shutil.which("debuginfod-find"):
            served = os.path.join(d, "served")
            os.makedirs(served)
            os.rename(debug + ".real", os.path.join(served, "prog.debug"))
            check(lines(d, exe, "no debug file")[0] == 0, "its debug file gone: no source lines")
            check(debuginfod_serves(d, served, exe, lambda env: lines(d, exe, "downloaded", env)[0]) > 0,
                  "the debug file found nowhere here, downloaded by build ID: source lines")
            os.rename(os.path.join(served, "prog.debug"), debug)
        else:
            os.rename(debug + ".real", debug)
        os.makedirs(os.path.join(top, ".debug"))
        moved = os.path.join(top, ".debug", "prog.debug")
        os.rename(debug, moved)
        check(lines(d, exe, ".debug/")[0] > 0, "in the program's .debug/: source lines")
        if os.geteuid() == 0:
            for under in (top.lstrip("/"), "b"):
                dest = os.path.join("/usr/lib/debug", under)
                os.makedirs(dest, exist_ok=True)
                os.rename(moved, os.path.join(dest, "prog.debug"))
                try:
                    check(lines(d, exe, "/usr/lib/debug/" + under)[0] > 0, f"under /usr/lib/debug/{under}: lines")
                finally:
                    os.rename(os.path.join(dest, "prog.debug"), moved)
                    os.removedirs(dest)
        other = os.path.join(d, "other")
        build(other, opt="-O2")
        os.rename(other + ".debug", moved)   # the same name, another build ID (another build)
        check(lines(d, exe, "another build ID")[0] == 0, "a debug file of another build ID: not used")
        nobid = os.path.join(top, "nobid")
        ndebug = build(nobid, build_id=False)
        check(lines(d, nobid, "CRC")[0] > 0, "no build ID, the link's CRC matches: source lines")
        with open(ndebug, "r+b") as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0xff]))
        check(lines(d, nobid, "CRC differs")[0] == 0, "no build ID, the CRC differs: not used")
        # dwz: two debug files share an alternate file their .gnu_debugaltlink names (beside them);
        # a target can put a FIFO there, and libdw's own search waited in open() for ever
        if shutil.which("dwz"):
            dz = os.path.join(d, "dz")
            os.makedirs(dz)
            pa, pb = os.path.join(dz, "pa"), os.path.join(dz, "pb")
            da, db_ = build(pa), build(pb, opt="-O2")
            subprocess.run(["dwz", "-m", "alt.debug", "-M", "alt.debug", da, db_], check=True, cwd=dz)
            alt = os.path.join(dz, "alt.debug")
            check(lines(d, pa, "dwz")[0] > 0, "a dwz'd debug file, its alternate file beside it: source lines")
            err = subprocess.run(["strace", "-f", "-e", "trace=openat", "-o", os.path.join(d, "st"), FL, "record",
                                  "--force", "--no-bpf", "-o", os.path.join(d, "s.db"), "--", pa, "threads", "2",
                                  "50"], capture_output=True, text=True).returncode if shutil.which("strace") else None
            if err is not None:
                with open(os.path.join(d, "st")) as f:
                    opened = [l for l in f if alt in l and "O_NONBLOCK" in l and "ENOENT" not in l]
                check(opened, "the alternate file opened by faultline, non-blocking")
            os.rename(alt, alt + ".real")
            os.mkfifo(alt)
            try:
                p = subprocess.run([FL, "record", "--force", "--no-bpf", "-o", os.path.join(d, "f.db"), "--", pa,
                                    "threads", "2", "50"], capture_output=True, text=True, timeout=60)
                check(p.returncode == 0, f"a FIFO for the alternate file: recorded ({p.returncode})")
            except subprocess.TimeoutExpired:
                subprocess.run(["pkill", "-9", "-f", os.path.join(d, "f.db")])
                check(False, "a FIFO for the alternate file held the recorder")


def test_demangle_bpf():
    """C++ frames are stored demangled (libstdc++'s __cxa_demangle)."""
    def run(db):
        record(db, [target("e2e_cxx")], bpf=True)
        names = {r[0] for r in query(db, "SELECT function FROM frame WHERE function IS NOT NULL")}
        check("grow::Pool::take(unsigned long)" in names, f"demangled member function: {sorted(names)[:40]}")
        check("int* grow::fill<int>(unsigned long)" in names, f"demangled template: {sorted(names)[:40]}")
        check(not [n for n in names if n.startswith("_Z")], f"mangled names left: {[n for n in names if n.startswith('_Z')]}")
        rows = query(db, "SELECT f.function FROM vma v JOIN event e ON e.id = v.created_by JOIN stack_frame sf"
                         " ON sf.stack_id = e.stack_id AND sf.idx = 0 JOIN frame f ON f.id = sf.frame_id"
                         " WHERE v.end - v.start = 64 * 4096 AND v.kind = 'anon'")
        check(rows == [("grow::Pool::take(unsigned long)",)], f"the 64-page mapping's creator: {rows}")
    with_db(run)


def test_stack_growth_bpf():
    """The stack grows by faults, with no call: the [stack] row grows with it, so its first-touch
    faults fit in its pages (before, a 132 KiB row held 4 MiB of faults)."""
    def run(db):
        record(db, [target("e2e_stack")], bpf=True)
        rows = query(db, "SELECT v.end - v.start, (SELECT sum(anon_new) FROM fault WHERE vma_id = v.id)"
                         " FROM vma v WHERE v.kind = 'stack'")
        check(len(rows) == 1, f"one stack row: {rows}")
        size, first = rows[0]
        check(size >= (4 << 20) + 64 * 1024, f"the stack row spans the 4 MiB the target grew it by: {size}")
        check(1024 <= first <= size // PAGE, f"first touches {first} fit in the row's {size // PAGE} pages")
        lost = query(db, "SELECT count FROM loss WHERE cause = 'fault_unattributed'")
        check(lost == [(0,)], f"no fault outside the model: {lost}")
    with_db(run)


def unwind_checked(db, argv, heap_sample=None):
    """Record argv with FAULTLINE_UNWIND_CHECK=1: the shim takes every stack by its cached rules
    and by libgcc's unwinder and says at each process's exit how many differed.  Returns the
    stacks by rule and by libgcc, summed over the processes."""
    env = dict(os.environ, FAULTLINE_UNWIND_CHECK="1")
    cmd = [FL, "record", "--force", "-o", db] + (["--heap-sample", heap_sample] if heap_sample else []) + ["--"] + argv
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    check(p.returncode == 0, f"{argv[0]}: exit {p.returncode}\n{p.stderr[-2000:]}")
    lines = [line for line in p.stderr.splitlines() if line.startswith("faultline: unwind check:")]
    bad = [line for line in lines if "stacks by rule" not in line]
    check(not bad, f"{argv[0]}: stacks differed from libgcc's: {bad[:5]}")
    totals = [0, 0, 0]
    for line in lines:
        words = line.replace(",", "").split()
        for i, key in enumerate(("rule", "libgcc", "differed")):
            totals[i] += int(words[words.index(key) + 1])
    check(lines and totals[2] == 0, f"{argv[0]}: {len(lines)} processes told, {totals[2]} stacks differed")
    return totals[0], totals[1]


def test_unwind_check():
    """Stacks by cached rules (preload/cfi.c) are libgcc's, frame for frame: on a library unloaded
    and another of other frame sizes loaded at its address (a rule kept across would read the
    wrong slot: the rules are forgotten), and on programs nobody here wrote, every malloc's stack
    in exact heap mode."""
    def run(db):
        libs = [os.path.join(TARGETS, f"libe2e_unwind_{v}.so") for v in "ab"]
        by_rule, _ = unwind_checked(db, [target("e2e_unwind")] + libs)
        check(by_rule >= 2, f"the two mappings from lib_map were unwound by rule: {by_rule}")
        out = subprocess.run([target("e2e_unwind")] + libs, capture_output=True, text=True).stdout.split()
        check(len(out) == 2 and out[0] == out[1], f"the second library loaded where the first was: {out}")
        src = os.path.join(os.path.dirname(db), "t.cc")  # templates: deep stacks in cc1plus
        with open(src, "w") as f:
            f.write('#include <map>\n#include <string>\n'
                    'int main() { std::map<std::string, int> m; m["a"] = 1; return (int)m.size(); }\n')
        programs = [["python3", "-c", "import json, decimal, hashlib; print(len(json.dumps(list(range(20000)))))"],
                    ["perl", "-e", 'my %h; $h{$_} = "x" x ($_ % 50) for 1..20000; print scalar(keys %h), "\n"'],
                    ["bash", "-c", "for i in 1 2 3; do echo $i | sed s/1/2/ | sort >/dev/null; done"],
                    ["g++", "-O1", "-fsyntax-only", src]]
        for argv in programs:
            if not shutil.which(argv[0]):
                raise Skip(f"{argv[0]} not installed (scripts/deps.sh installs it)")
        for argv in programs:
            by_rule, _ = unwind_checked(db, argv, heap_sample="1")
            check(by_rule > 100, f"{argv[0]}: stacks by rule: {by_rule}")
    with_db(run)


def test_why_shim():
    """Without eBPF too, the target itself is sampled (the launcher before its exec is not): the
    shim's hello says the target runs, as eBPF's exec record would."""
    def run(db):
        record(db, [target("e2e_merge"), "hold"])
        n = query(db, "SELECT count(*) FROM smaps_sample s JOIN process p ON p.id = s.proc_id"
                      " WHERE p.parent_id IS NULL")[0][0]
        check(n > 0, "the root process has resident-memory samples")
        w = why_json(db)
        check(w["sample"]["rss"] == sum(r["rss"] for r in w["regions"]) + w["other_regions"]["rss"],
              "regions add up to the sample")
    with_db(run)


def test_fds_unchanged():
    """The target starts with the same open fds as without faultline (every fd of ours is CLOEXEC)."""
    def run(db):
        argv = ["/bin/sh", "-c", "ls /proc/$$/fd"]
        plain = subprocess.run(argv, capture_output=True, text=True)
        for bpf in (False, True):
            _, out, _ = record(db, argv, bpf=bpf)
            check(out == plain.stdout, f"fds differ (bpf={bpf}): {out!r} vs {plain.stdout!r}")
    with_db(run)


# ---- bad input ------------------------------------------------------------------------------

def test_bad_input():
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "run.db")
        run = lambda *a: subprocess.run([FL, "record", *a], capture_output=True, text=True, timeout=60)
        p = run("-o", db)
        check(p.returncode == 2 and "no command" in p.stderr, f"no command: {p.returncode} {p.stderr}")
        p = run("-o", db, "--", "no-such-command-xyz")
        check(p.returncode == 127 and "command not found" in p.stderr, f"missing: {p.stderr}")
        check(not os.path.exists(db), "a database was created for a missing command")
        open(os.path.join(d, "noexec"), "w").close()
        p = run("-o", db, "--", os.path.join(d, "noexec"))
        check(p.returncode == 126 and "permission denied" in p.stderr, f"not executable: {p.stderr}")
        with open(db, "w") as f:
            f.write("precious")
        p = run("-o", db, "--", "true")
        check(p.returncode == 125 and "--force" in p.stderr, f"existing output: {p.returncode} {p.stderr}")
        check(open(db).read() == "precious", "existing output was changed")
        p = run("-o", os.path.join(d, "no", "such", "dir.db"), "--", "true")
        check(p.returncode == 125 and "cannot write" in p.stderr, f"unwritable: {p.stderr}")
        p = run("-o", d, "--force", "--", "true")
        check(p.returncode == 125, f"directory as output: {p.returncode}")
        p = run("--depth", "0", "--", "true")
        check(p.returncode == 2, "bad depth")


def test_disk_full():
    if os.geteuid() != 0:
        raise Skip("needs root to mount a small tmpfs")
    with tempfile.TemporaryDirectory() as d:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "none", d]).returncode:
            raise Skip("cannot mount tmpfs")
        try:
            db = os.path.join(d, "run.db")
            p = subprocess.run([FL, "record", "--no-bpf", "-o", db, "--", target("e2e_calls"), "many", "20000"],
                               capture_output=True, text=True, timeout=120)
            # faultline's own recording failed: it says so and exits 125,
            # naming the target's status (0), not pretending all went well
            check(p.returncode == 125, f"a failed recording exits 125: {p.returncode}")
            check("disk full" in p.stderr and "exited with status 0" in p.stderr, f"no clear message: {p.stderr}")
            r = subprocess.run([FL, "report", db], capture_output=True, text=True)
            check(r.returncode == 0 and "e2e_calls" in r.stdout, f"the partial recording must stay readable: {r.stderr}")
            check("LOST       recording_incomplete" in r.stdout and "nothing lost" not in r.stdout,
                  f"the report says it is incomplete: {r.stdout}")
        finally:
            subprocess.run(["umount", d])


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    case = sys.argv[1]
    try:
        CASES[case]()
    except Skip as e:
        print(f"SKIP {case}: {e}")
        sys.exit(77)
    except AssertionError as e:
        print(f"FAIL {case}: {e}")
        sys.exit(1)
    print(f"PASS {case}")
