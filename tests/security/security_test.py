#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Security tests (docs/security.md): each reproduces an attack or accident
from issue 7 against `faultline record` and asserts the target was not
harmed and the recording says what it lost.  Usage: security_test.py CASE.
Env: FAULTLINE, TARGETS, PRE_TARGETS.  Exit 0 pass, 1 fail, 77 skip."""
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from invariant import check_recording  # noqa: E402 (every recording's totals add up)

FL = os.environ["FAULTLINE"]
TARGETS = os.environ["TARGETS"]
PRE = os.environ["PRE_TARGETS"]
REQUIRE_BPF = os.environ.get("FAULTLINE_REQUIRE_BPF") == "1"


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def record(db, argv, bpf=False, timeout=120, extra=(), explained_by=()):
    cmd = [FL, "record", "--force", "-o", db, *extra] + ([] if bpf else ["--no-bpf"]) + ["--"] + argv
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if bpf and "eBPF unavailable" in p.stderr:
        if REQUIRE_BPF:
            raise AssertionError("eBPF required but unavailable: " + p.stderr.strip())
        raise Skip("eBPF unavailable")
    check_recording(FL, db, explained_by)
    return p


def query(db, sql, *args):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def losses(db):
    return dict(query(db, "SELECT cause, count FROM loss WHERE count > 0"))


def forge(bpf):
    """The target overwrites its channel header (absurd geometry, every ring
    claimed for forged pids) and fills its ring with absurd records.  This
    crashed the root collector (heap overflow in owned_by_claim).  Now
    faultline exits with the target's status and counts the corruption."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "f.db")
        t0 = time.monotonic()
        # its shim then waits once for its forged ring (10 s) and stops
        p = record(db, [os.path.join(PRE, "pre_hostile"), "forge", "300"], bpf=bpf)
        took = time.monotonic() - t0
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        check(p.stdout.startswith("done 300 regions 2"), f"target output: {p.stdout!r}")
        check(took < 60, f"took {took:.1f}s")
        l = losses(db)
        check(l.get("channel_corrupt", 0) > 0, f"corruption counted: {l}")
        # 1023 forged rings each claim 7 dropped records and never said hello:
        # not believed.  The target's own ring did say hello, so its forged
        # count (7) and the record its shim gave up on (1) may be.
        check(l.get("channel_dropped", 0) <= 8, f"forged rings' counts not believed: {l}")
        msgs = [m for (m,) in query(db, "SELECT text FROM message")]
        check(any("record size out of range" in m or "bad frame count" in m for m in msgs),
              f"message says why: {msgs}")
        rep = subprocess.run([FL, "report", db], capture_output=True, text=True, timeout=60)
        check(rep.returncode == 0 and "LOST       channel_corrupt" in rep.stdout, rep.stdout + rep.stderr)


def test_forge_bpf():
    forge(True)


def test_forge_shim():
    forge(False)


def seccomp(how, bpf):
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "s.db")
        plain = subprocess.run([os.path.join(TARGETS, "sec_seccomp"), how], capture_output=True,
                               text=True, timeout=60)
        p = record(db, [os.path.join(TARGETS, "sec_seccomp"), how], bpf=bpf)
        check(plain.stdout == "child status 0\n", f"plain: {plain.stdout!r}")
        check(p.returncode == 0 and p.stdout == plain.stdout,
              f"recorded: exit {p.returncode} {p.stdout!r} {p.stderr}")
        msgs = [m for (m,) in query(db, "SELECT text FROM message")]
        check(any("seccomp filter installed" in m for m in msgs), f"the loss is said: {msgs}")


def test_seccomp_kill():
    """openat -> kill, then fork: the child lived plain but was killed under
    faultline (the shim's fork hook opened the channel)."""
    seccomp("kill", False)
    seccomp("kill", True)


def test_seccomp_errno():
    """openat -> EPERM, then fork: the child survives, and the recording says
    the shim did not follow it (not a child with no paths and no word)."""
    seccomp("errno", False)
    seccomp("errno", True)


def test_recording_file():
    """The recording is a finished, private file: not in WAL mode (readable
    with sqlite3 -readonly from a read-only directory, no -wal/-shm left),
    mode 0600, written under a temporary name (nothing at -o while it runs)."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "r.db")
        # one process: a child its shell reaps first would be an honest exit_unknown loss
        p = subprocess.Popen([FL, "record", "--no-bpf", "-o", db, "--", sys.executable, "-c",
                              "import time; time.sleep(0.5); print('hi')"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.2)
        check(not os.path.exists(db), "nothing at the output name while recording")
        tmp = [f for f in os.listdir(d) if f.startswith(".r.db.") and "-" not in f]
        check(len(tmp) == 1, f"one temporary file: {os.listdir(d)}")
        check(os.stat(os.path.join(d, tmp[0])).st_mode & 0o777 == 0o600, "temporary file is 0600")
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0 and out == "hi\n", f"{p.returncode} {out!r} {err}")
        check(sorted(os.listdir(d)) == ["r.db"], f"only the recording is left: {os.listdir(d)}")
        check(os.stat(db).st_mode & 0o777 == 0o600, f"mode {oct(os.stat(db).st_mode)}")
        with open(db, "rb") as f:
            hdr = f.read(20)
        check(hdr[18] == 1 and hdr[19] == 1, f"not WAL mode: file format bytes {hdr[18]} {hdr[19]}")
        os.chmod(db, 0o644)   # let the other user read it; the directory stays read-only
        os.chmod(d, 0o555)
        try:
            env = dict(os.environ)
            # as another user in a directory it cannot write: readable as is
            q = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                                "sqlite3", "-readonly", db, "SELECT count(*) FROM run"],
                               capture_output=True, text=True, env=env) if os.geteuid() == 0 else None
            if q is not None:
                check(q.returncode == 0 and q.stdout.strip() == "1", f"sqlite3 -readonly: {q.stdout} {q.stderr}")
                r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                                    FL, "report", db], capture_output=True, text=True)
                check(r.returncode == 0 and "nothing lost" in r.stdout, f"report read-only: {r.stdout} {r.stderr}")
            check(sorted(os.listdir(d)) == ["r.db"], f"reading left files: {os.listdir(d)}")
        finally:
            os.chmod(d, 0o755)


def test_force_in_progress():
    """--force on a file another faultline is recording neither truncates
    it nor deletes its data: both recordings end complete, and the later
    one to finish is the file at -o."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "r.db")
        slow = subprocess.Popen([FL, "record", "--no-bpf", "-o", db, "--", "sh", "-c", "sleep 1; echo slow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        fast = subprocess.run([FL, "record", "--no-bpf", "--force", "-o", db, "--", "echo", "fast"],
                              capture_output=True, text=True, timeout=60)
        check(fast.returncode == 0, f"fast: {fast.stderr}")
        check(query(db, "SELECT command, complete FROM run") == [("echo", 1)], "fast one in place")
        out, err = slow.communicate(timeout=60)
        # the slow one did not use --force: it does not replace the fast one's file
        check(slow.returncode == 125 and "appeared while recording" in err, f"slow: {slow.returncode} {err}")
        kept = [f for f in os.listdir(d) if f.startswith(".r.db.")]
        check(len(kept) == 1 and query(os.path.join(d, kept[0]), "SELECT command, complete FROM run") ==
              [("sh", 1)], f"the slow recording is kept whole: {kept}")


def test_symlink_output():
    """-o naming a symbolic link (dangling or not) is refused, with or
    without --force, and the link's target is untouched."""
    with tempfile.TemporaryDirectory() as d:
        victim = os.path.join(d, "victim")
        with open(victim, "w") as f:
            f.write("precious")
        for target_, force in ((victim, True), (victim, False), (os.path.join(d, "nowhere"), False)):
            link = os.path.join(d, "link.db")
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target_, link)
            p = subprocess.run([FL, "record", "--no-bpf", "-o", link] + (["--force"] if force else []) +
                               ["--", "true"], capture_output=True, text=True, timeout=60)
            check(p.returncode == 125 and "symbolic link" in p.stderr, f"{target_} {force}: {p.returncode} {p.stderr}")
        check(open(victim).read() == "precious", "the link's target was changed")
        check(not os.path.exists(os.path.join(d, "nowhere")), "a dangling link's target was created")


def test_sudo_owner():
    """Under sudo the recording belongs to the invoking user."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        db = os.path.join(d, "r.db")
        env = dict(os.environ, SUDO_UID="65534", SUDO_GID="65534", SUDO_USER="nobody")
        p = subprocess.run([FL, "record", "--no-bpf", "-o", db, "--", "true"], capture_output=True,
                           text=True, timeout=60, env=env)
        check(p.returncode == 0, p.stderr)
        st = os.stat(db)
        check((st.st_uid, st.st_gid) == (65534, 65534), f"owner {st.st_uid}:{st.st_gid}")


def test_temp_swap():
    """Under sudo the target runs as the user, often in a directory of
    theirs, beside the recording's temporary file.  It swaps that name for
    a link to a file of root's: faultline (root) gave the user the linked
    file at close (chown follows links).  Now nothing outside the recording
    changes owner, and record fails saying the file was replaced."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    with tempfile.TemporaryDirectory() as root_dir, tempfile.TemporaryDirectory() as d:
        victim = os.path.join(root_dir, "secret")
        with open(victim, "w") as f:
            f.write("root's\n")
        os.chmod(victim, 0o600)
        os.chown(d, 65534, 65534)
        db = os.path.join(d, "r.db")
        swap = ("for f in .r.db.*; do case $f in *-wal|*-shm) continue;; esac; "
                f"mv \"$f\" \"$f.kept\" && ln -s {victim} \"$f\"; done")
        env = dict(os.environ, SUDO_UID="65534", SUDO_GID="65534", SUDO_USER="nobody")
        p = subprocess.run([FL, "record", "--no-bpf", "-o", db, "--", "sh", "-c", swap], capture_output=True,
                           text=True, timeout=60, env=env, cwd=d)
        st = os.stat(victim)
        check((st.st_uid, st.st_gid) == (0, 0), f"the linked file now belongs to {st.st_uid}:{st.st_gid}")
        check(p.returncode == 125 and "was moved or replaced while recording" in p.stderr,
              f"exit {p.returncode}: {p.stderr}")
        check(not os.path.exists(db) or os.path.islink(db), "a recording was placed from the swapped name")


def test_options():
    """record's small input errors from issue 7: `-o` without a value names
    the problem; `--output=FILE` works."""
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([FL, "record", "-o"], capture_output=True, text=True, timeout=60)
        check(p.returncode == 2 and "-o needs a file name" in p.stderr, f"-o: {p.returncode} {p.stderr}")
        db = os.path.join(d, "x.db")
        p = subprocess.run([FL, "record", "--no-bpf", "--output=" + db, "--", "true"], capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 0 and os.path.exists(db), f"--output=: {p.returncode} {p.stderr}")


def complete(db):
    return query(db, "SELECT complete FROM run") == [(1,)]


def test_sigint_alone():
    """SIGINT sent to faultline alone (kill, not the terminal) is passed on
    to the target, as a shell passes it to its foreground job: the target
    dies of it, faultline closes the recording and exits 130."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "i.db")
        p = subprocess.Popen([FL, "record", "--no-bpf", "-o", db, "--", "sleep", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        check(time.monotonic() - t0 < 5, "SIGINT to faultline alone was ignored")
        check(p.returncode == 130, f"exit {p.returncode}: {err}")
        check(complete(db), "recording closed cleanly")
        check(query(db, "SELECT exit_signal FROM process WHERE parent_id IS NULL OR parent_id = 0") == [(2,)],
              "the target died of SIGINT")


def test_ctrl_c():
    """Ctrl-C at a terminal reaches the foreground process group: the target
    dies of it (once: faultline does not pass on a second one), faultline
    closes the recording and exits 130."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "c.db")
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(FL, [FL, "record", "--no-bpf", "-o", db, "--", "sh", "-c",
                          "trap 'echo got INT; exit 7' INT; echo ready; while :; do sleep 0.05; done"])
        buf = b""
        t0 = time.monotonic()
        while b"ready" not in buf and time.monotonic() - t0 < 20:
            buf += os.read(fd, 100)
        os.write(fd, b"\x03")
        while True:
            try:
                chunk = os.read(fd, 100)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        _, st = os.waitpid(pid, 0)
        check(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 7, f"status {st}: {buf!r}")
        check(buf.count(b"got INT") == 1, f"the target got one SIGINT: {buf!r}")
        check(complete(db), "recording closed cleanly")


def background(bpf):
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "b.db")
        cmd = [FL, "record", "-o", db] + ([] if bpf else ["--no-bpf"]) + [
            "--", "sh", "-c", "sleep 30 >/dev/null 2>&1 & sleep 30 >/dev/null 2>&1 & echo started"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            t0 = time.monotonic()
            while "waiting" not in line and time.monotonic() - t0 < 20:
                line = p.stderr.readline()
                if bpf and "eBPF unavailable" in line:
                    p.kill()
                    if REQUIRE_BPF:
                        raise AssertionError(line)
                    raise Skip(line)
            check("sh exited; waiting for 2 background processes; Ctrl-C to stop" in line, f"said: {line!r}")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
            check(p.returncode == 0 and out == "started\n", f"exit {p.returncode} {out!r} {err}")
            check(complete(db), "recording closed cleanly")
        finally:
            if p.poll() is None:
                p.kill()
            for (pid,) in query(db, "SELECT pid FROM process WHERE exe LIKE '%sleep'") if os.path.exists(db) else []:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_background():
    """Descendants outliving the target: faultline says what it waits for,
    and Ctrl-C (SIGINT) then stops it with the recording complete."""
    background(False)
    background(True)


def tiny_recording(d):
    db = os.path.join(d, "t.db")
    p = record(db, ["true"])
    check(p.returncode == 0, p.stderr)
    return db


def test_report_bad_time():
    """run.start_unix out of any calendar's range: report says so, no crash."""
    with tempfile.TemporaryDirectory() as d:
        db = tiny_recording(d)
        con = sqlite3.connect(db)
        con.execute("UPDATE run SET start_unix = 9000000000000000000")
        con.commit()
        con.close()
        r = subprocess.run([FL, "report", db], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "out of range" in r.stdout, f"{r.returncode} {r.stdout} {r.stderr}")


def test_sql_comment():
    """A query starting with an SQL comment is a query, not an option; so
    is anything after `--`."""
    with tempfile.TemporaryDirectory() as d:
        db = tiny_recording(d)
        for args in (["--format", "json", db, "-- the run\nSELECT 41 + 1 AS n"],
                     [db, "--format=json", "--", "--x\nSELECT 41 + 1 AS n"]):
            r = subprocess.run([FL, "sql"] + args, capture_output=True, text=True, timeout=60)
            check(r.returncode == 0 and '"n": 42' in r.stdout.replace('":42', '": 42'),
                  f"{args}: {r.returncode} {r.stdout} {r.stderr}")


def test_doctor_junk():
    r = subprocess.run([FL, "doctor", "junk"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "junk" in r.stderr, f"{r.returncode} {r.stderr}")


def test_shim_absent():
    """A target that drops privileges cannot open the root collector's
    channel: its calls are still recorded by BPF but have no stacks, and
    every report says so (a loss row naming the process)."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "a.db")
        os.chmod(d, 0o777)
        p = record(db, ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        "sh", "-c", "echo hi"], bpf=True)
        check(p.returncode == 0 and p.stdout == "hi\n", f"{p.returncode} {p.stdout!r} {p.stderr}")
        check(losses(db).get("shim_absent") == 1, f"losses {losses(db)}")
        rep = subprocess.run([FL, "report", db], capture_output=True, text=True, timeout=60)
        check("LOST       shim_absent: 1" in rep.stdout, rep.stdout)
        msgs = [m for (m,) in query(db, "SELECT text FROM message")]
        check(any("dash" in m or "/sh" in m for m in msgs if "never reached" in m), f"named: {msgs}")


E2E_CALLS = os.path.join(os.environ.get("E2E_TARGETS", os.path.join(os.path.dirname(TARGETS), "e2e")), "e2e_calls")


def host_pids_only(db, cmd):
    """Every process row is under its host pid: none says 1 (the namespace's
    init), each pid's parent chain in the recording leads to the root."""
    rows = query(db, "SELECT pid, ppid, argv FROM process")
    check(rows and all(pid != 1 for pid, _, _ in rows), f"{cmd}: a pid-namespace pid was believed: {rows}")
    init = open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode(errors="replace")
    check(all(init not in (argv or "") for _, _, argv in rows), f"{cmd}: host init's argv was read: {rows}")
    return rows


def test_pid_namespace():
    """`record -- unshare --pid --fork [--mount-proc] CMD`: the shim's hello
    says pid 1; the collector once watched the host's init and never
    exited.  Now the ring owner is identified by the kernel (its NSpid and
    the ring it maps): processes are filed under their host pids, calls in
    the namespace keep their stacks (their tids mapped too), and faultline
    exits with CMD's status."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "n.db")
            p = record(db, ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", "echo $$; exit 3"],
                       bpf=bpf, timeout=60)
            check(p.returncode == 3 and p.stdout == "1\n", f"bpf={bpf}: {p.returncode} {p.stdout!r} {p.stderr}")
            rows = host_pids_only(db, "mount-proc")
            check(len(rows) >= 2, f"the namespace's init is recorded: {rows}")
            # with its own /proc the exec'd sh cannot open the channel: said, not hidden (shim only:
            # the image before it said it was about to exec, FL_R_EXEC)
            check(losses(db).get("shim_absent", 0) == 1, f"bpf={bpf}: losses {losses(db)}")
            msgs = [m for (m,) in query(db, "SELECT text FROM message") if "never reached" in m]
            # named, unless the namespace's init (it claims pid 1) was gone before its ring could be
            # identified: then its records are channel_unidentified and its parent's reap names no image
            gone = not bpf and losses(db).get("channel_unidentified", 0) > 0
            check(len(msgs) == 1 and ("sh)" in msgs[0] or gone and "(?)" in msgs[0]), f"bpf={bpf}: named: {msgs}")
            db = os.path.join(d, "t.db")
            p = record(db, ["unshare", "--pid", "--fork", E2E_CALLS, "threads", "3", "300"], bpf=bpf, timeout=60)
            check(p.returncode == 0, f"bpf={bpf}: {p.returncode} {p.stderr}")
            host_pids_only(db, "threads")
            n = query(db, "SELECT count(*), count(DISTINCT e.tid) FROM event e JOIN process p ON p.id = e.proc_id "
                          "WHERE p.exe LIKE '%e2e_calls' AND e.kind = 'mmap' AND e.a1 = 4096 "
                          "AND e.stack_id IS NOT NULL")[0]
            check(n[0] == 300 and (n[1] == 3 or not bpf), f"bpf={bpf}: mmaps with stacks, threads: {n}")
            check(losses(db).get("channel_unidentified", 0) == 0, f"losses {losses(db)}")


def test_pid_namespace_setuid():
    """A target in a PID namespace at another uid (shim-only, no BPF): it
    announces pid 1.  The root collector once copied the host init's argv
    and maps into the recording; now nothing outside the tree is read."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        db = os.path.join(d, "u.db")
        p = record(db, ["unshare", "--pid", "--fork", "setpriv", "--reuid", "65534", "--regid", "65534",
                        "--clear-groups", "sh", "-c", "echo $$"], timeout=60)
        check(p.returncode == 0 and p.stdout == "1\n", f"{p.returncode} {p.stdout!r} {p.stderr}")
        rows = host_pids_only(db, "setuid")
        check(any("setpriv" in (argv or "") for _, _, argv in rows), f"the namespace's init is recorded: {rows}")


CHAIN = """
import os, time
for i in range(5):
    if os.fork():
        os._exit(10 + i)    # the parent leaves at once: its child is an orphan
time.sleep(0.3)
os._exit(20)
"""


def test_orphan_chain():
    """Shim only: a chain of fork-then-exit.  Once 1 of 6 processes was
    recorded and faultline returned with the first; as a subreaper it
    follows every descendant until the last exits, with each one's exit
    status (the kernel's, from waitid) and its fault totals."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "c.db")
        t0 = time.monotonic()
        p = record(db, [sys.executable, "-c", CHAIN])
        check(p.returncode == 10, f"exit {p.returncode}: {p.stderr}")
        check(time.monotonic() - t0 >= 0.3, "faultline returned before the last descendant")
        rows = query(db, "SELECT exit_code, min_flt FROM process ORDER BY start_ns")
        check(sorted(c for c, _ in rows) == [10, 11, 12, 13, 14, 20], f"all 6, each with its status: {rows}")
        check(all(m and m > 0 for _, m in rows), f"fault totals: {rows}")
        check(losses(db).get("exit_unknown", 0) == 0, f"losses {losses(db)}")


def test_exit_unknown():
    """Shim only: children their parent reaps are not faultline's; the
    parent's shim says each reap (40 children, wait(NULL)): every one has
    its status and totals; so does system()'s shell.  Reaps no shim sees
    (pclose(), SIGCHLD ignored: 4 processes) leave a process without them
    only when faultline missed its zombie too, and each such process is an
    exit_unknown loss that report prints, never a silent "status unknown"."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "e.db")
        p = record(db, [E2E_CALLS, "forks", "40"])
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        rows = query(db, "SELECT exit_code, min_flt FROM process WHERE ppid = (SELECT pid FROM process ORDER BY id LIMIT 1)")
        check(len(rows) == 40 and all(c == 3 and m and m > 0 for c, m in rows), f"40 children, status 3: {rows}")
        check(losses(db).get("exit_unknown", 0) == 0, f"losses {losses(db)}")

        p = record(db, [os.path.join(TARGETS, "sec_reap"), "unseen"])
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        rows = query(db, "SELECT exit_code, exit_signal, min_flt FROM process "
                         "WHERE ppid = (SELECT pid FROM process ORDER BY id LIMIT 1) ORDER BY start_ns")
        check(len(rows) == 5, f"sh of system(), sh of popen(), 3 children: {rows}")
        # system(): glibc's own wait, but the hook knows the one child it spawned
        check(rows[0][0] == 3 and rows[0][2], f"system()'s shell: {rows[0]}")
        rows = [r[:2] for r in rows]
        check(all(c in (None, 3, 4, 5) and s is None for c, s in rows), f"statuses read from zombies: {rows}")
        unknown = sum(c is None for c, _ in rows)
        check(losses(db).get("exit_unknown", 0) == unknown, f"each one without is a loss: {losses(db)} {unknown}")
        if unknown:
            rep = subprocess.run([FL, "report", db], capture_output=True, text=True, timeout=60)
            check(f"LOST       exit_unknown: {unknown}" in rep.stdout, rep.stdout)


def reaped_lines(out):
    """sec_reap's lines: pid -> (ppid, exit_code, exit_signal, min_flt, maj_flt), None for -1."""
    rows = {}
    for line in out.splitlines():
        pid, ppid, code, sig, mn, mj = (int(x) for x in line.split())
        rows[pid] = (ppid, None if code < 0 else code, None if sig < 0 else sig, mn, mj)
    return rows


def own_faults(rows):
    """A child's own fault totals: its rusage less that of the children it reaped."""
    own = {}
    for pid, (_, code, sig, mn, mj) in rows.items():
        kids = [r for r in rows.values() if r[0] == pid]
        own[pid] = (code, sig, mn - sum(r[3] for r in kids), mj - sum(r[4] for r in kids))
    return own


def test_reaped():
    """Shim only: every way glibc reaps a child (wait, waitpid, wait3, wait4,
    waitid by pid, by pidfd, after a WNOWAIT peek; killed by a signal; a
    child that reaps its own child).  Each child's exit status and fault
    totals are the kernel's: what the parent got from the kernel (rusage) in
    the same run, less what its own reaped children got.  The children's
    writes to their parent's pages are copy-on-write faults: at least as many
    as pages written, with and without faultline."""
    target = [os.path.join(TARGETS, "sec_reap"), "variants"]
    plain = subprocess.run(target, capture_output=True, text=True, timeout=60)
    check(plain.returncode == 0, f"plain run: {plain.returncode} {plain.stderr}")
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "r.db")
        p = record(db, target)
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        printed = reaped_lines(p.stdout)
        check(len(printed) == 10, f"10 children: {p.stdout}")
        want = own_faults(printed)
        got = {pid: (c, s, mn, mj) for pid, c, s, mn, mj in query(
            db, "SELECT pid, exit_code, exit_signal, min_flt, maj_flt FROM process WHERE pid IN (%s)"
            % ",".join(map(str, printed)))}
        check(got == want, f"recorded {got}\nkernel's {want}")
        check(losses(db).get("exit_unknown", 0) == 0, f"losses {losses(db)}")
        # copy-on-write: the nth child wrote 5n pages (the killed one 40, the middle one 50, its child 45)
        pages = [5, 10, 15, 20, 25, 30, 35, 40, 50, 45]
        for run in (own_faults(reaped_lines(plain.stdout)), want):
            check(all(f[2] >= n for f, n in zip(run.values(), pages)), f"COW faults {run}")


def test_fork_exec():
    """Children that exec /bin/true at once, their parent waiting for each
    (heap's fork test once saw shim_absent and fault_unattributed there, and
    dropped its exec'd child).  The cause was not the exec: a child gone before
    faultline watched it was ended before its kernel records were read, and
    those records made a second, empty process of its pid.  Now, BPF and shim
    only: one row per process, each with its shim, its image, status 0, and
    nothing lost."""
    n = 40
    for bpf in (True, False):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "x.db")
            p = record(db, [os.path.join(TARGETS, "sec_reap"), "exec", str(n)], bpf=bpf)
            check(p.returncode == 0, f"bpf={bpf}: exit {p.returncode}: {p.stderr}")
            rows = query(db, "SELECT pid, exe, shim, exit_code FROM process")
            check(len(rows) == n + 1 and len({r[0] for r in rows}) == n + 1, f"bpf={bpf}: one row each: {rows}")
            kids = [r for r in rows if r[1] and r[1].endswith("/true")]
            check(len(kids) == n and all(s == 1 and c == 0 for _, _, s, c in kids), f"bpf={bpf}: {rows}")
            check(not losses(db), f"bpf={bpf}: losses {losses(db)}")


EXEC_PY = """
import os, sys
try:
    os.execv("/nonexistent/program", ["x"])       # fails: the image goes on
except OSError:
    pass
os.execv(sys.executable, [sys.executable, "-c", "import os; os.execv(%r, [%r, '5'])" % (sys.argv[1], sys.argv[1])])
"""


def test_exec_unseen():
    """An exec'd image whose shim never says hello (a static binary): with
    BPF the kernel's exec record shows it; shim only it once continued the
    old image's row silently.  Now the image before it says it is about to
    exec (and again if the exec failed), and every image no shim spoke for
    is a shim_absent loss: the final exec of a static binary, and a vfork
    child of sh that exec'd one (known only by its parent's reap), in both
    modes; a failed exec and an exec into a shimmed python3 are no loss."""
    static = os.path.join(os.path.dirname(TARGETS), "e2e", "e2e_static")
    # Known, not this test's: with eBPF, 2 faults of a static image exec'd by python3 are
    # sometimes (2 runs in 10 under load, main's build too) outside every recorded VMA.
    known = ("fault_unattributed",)
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "x.db")
            p = record(db, ["sh", "-c", f"{static} 10 >/dev/null; exec {static} 5 >/dev/null"], bpf=bpf,
                       explained_by=known if bpf else ())
            check(p.returncode == 0, f"bpf={bpf}: exit {p.returncode}: {p.stderr}")
            rows = query(db, "SELECT exe, exit_code FROM process ORDER BY start_ns")
            check(len(rows) == 2 and rows[0] == (static, 0) and rows[1][1] == 0, f"bpf={bpf}: {rows}")
            lost = {c: n for c, n in losses(db).items() if not bpf or c not in known}
            check(lost == {"shim_absent": 2}, f"bpf={bpf}: losses {losses(db)}")
            p = record(db, ["/usr/bin/python3", "-c", EXEC_PY, static], bpf=bpf, explained_by=known if bpf else ())
            check(p.returncode == 0, f"bpf={bpf}: exit {p.returncode}: {p.stderr}")
            rows = query(db, "SELECT exe, exit_code FROM process")
            check(len(rows) == 1 and rows[0] == (static, 0), f"bpf={bpf}: {rows}")
            execs = query(db, "SELECT count(*) FROM event WHERE kind = 'exec'")[0][0]
            # (the kernel also sees the launch's exec of python3)
            check(execs == 2 + bpf, f"bpf={bpf}: python3, then the static binary: {execs} execs")
            lost = {c: n for c, n in losses(db).items() if not bpf or c not in known}
            check(lost == {"shim_absent": 1}, f"bpf={bpf}: losses {losses(db)}")


PROGRAMS_PY = """
import os, subprocess
for code in (0, 3, 5):
    c = subprocess.Popen(["sh", "-c", "exit %d" % code])
    pid, st, ru = os.wait4(c.pid, 0)
    print(pid, os.waitstatus_to_exitcode(st), ru.ru_minflt, ru.ru_majflt)
"""


def test_reaped_programs():
    """Shim only, programs no one here wrote: make -j2, a shell pipeline,
    python3's subprocess, perl's system(), python3's os.system() (glibc's
    system(), which reaps with a wait no hook sees).  Every process ends with its
    status, none is a loss; python3 reads each child's rusage with
    os.wait4, and the recording holds exactly those totals."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "m.db")
        with open(os.path.join(d, "Makefile"), "w") as f:
            f.write("all: a b c d\na b c d:\n\t@sh -c 'exit 0' && echo $@ > $@\n")
        cases = [
            (["make", "-j2", "-s", "-C", d], 0, None),
            (["sh", "-c", "seq 1000 | sort -r | head -3 | tail -1; exit 7"], 7, None),
            (["/usr/bin/python3", "-c", PROGRAMS_PY], 0, None),
            (["perl", "-e", "system('sh', '-c', 'exit 3'); exit($? >> 8)"], 3, None),
            (["/usr/bin/python3", "-c", "import os, sys; sys.exit(os.system('exit 6') >> 8)"], 6, None),
        ]
        for argv, code, _ in cases:
            p = record(db, argv)
            check(p.returncode == code, f"{argv}: exit {p.returncode}: {p.stderr}")
            rows = query(db, "SELECT pid, exit_code, exit_signal, min_flt, maj_flt FROM process")
            check(len(rows) >= 2, f"{argv}: children {rows}")
            check(all((c is not None or s is not None) and mn is not None for _, c, s, mn, _ in rows),
                  f"{argv}: every status and total: {rows}")
            check(losses(db).get("exit_unknown", 0) == 0, f"{argv}: losses {losses(db)}")
            if argv[0] == "/usr/bin/python3":
                got = {pid: (c, mn, mj) for pid, c, _, mn, mj in rows}
                for line in p.stdout.splitlines():
                    pid, c, mn, mj = (int(x) for x in line.split())
                    check(got.get(pid) == (c, mn, mj), f"python3's child {pid}: {got.get(pid)} vs the kernel's {(c, mn, mj)}")


SHM = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
for i in range(3):
    sid = libc.shmget(0, 65536, 0o1600)      # IPC_PRIVATE, IPC_CREAT | 0600
    a = libc.shmat(sid, None, 0)
    ctypes.memset(a, 1, 65536)
    assert libc.shmdt(ctypes.c_void_p(a)) == 0
    libc.shmctl(sid, 0, None)                # IPC_RMID
print("ok")
"""


def test_shmat_shim():
    """shmat and shmdt go through the shim: recorded with their stacks in
    shim-only mode, and lending them to the kernel's records with BPF."""
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "s.db")
            p = record(db, ["/usr/bin/python3", "-c", SHM], bpf=bpf)
            check(p.returncode == 0 and p.stdout == "ok\n", f"{p.returncode} {p.stdout!r} {p.stderr}")
            rows = dict(((k, n)) for k, n in query(
                db, "SELECT kind, count(*) FROM event WHERE kind IN ('shmat', 'shmdt') AND stack_id IS NOT NULL "
                    "AND source = ? GROUP BY kind", "both" if bpf else "shim"))
            check(rows == {"shmat": 3, "shmdt": 3}, f"bpf={bpf}: {rows}")


WHO = """id -u; id -g; id -G; echo "HOME=$HOME USER=$USER"; env | grep -c '^SUDO_' || true; touch f
C=$(tr '\\0' '\\n' < /proc/$$/environ | sed -n 's/^FAULTLINE_CHANNEL=//p')
K=${C#/proc/}; K=${K%%/*}; ls /proc/$K/fd | tr '\\n' ' '; echo"""


def as_user(extra, env):
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        db = os.path.join(d, "u.db")
        cmd = [FL, "record", "-o", db, *extra, "--", "sh", "-c", WHO]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=d, env=dict(os.environ, **env))
        if "eBPF unavailable" in p.stderr and REQUIRE_BPF:
            raise AssertionError(p.stderr)
        check(p.returncode == 0, f"{extra} {env}: exit {p.returncode}: {p.stderr}")
        lines = p.stdout.splitlines()
        check(lines[:3] == ["65534", "65534", "65534"], f"the target runs as nobody:nogroup: {lines}")
        check(lines[3] == "HOME=/nonexistent USER=nobody" and lines[4] == "0", f"nobody's environment: {lines}")
        # the keeper holding the channel for nobody holds nothing else of root's
        check(lines[5].split() == ["0", "1", "2", "3", "4"], f"the keeper's fds: {lines[5]}")
        st = os.stat(os.path.join(d, "f"))
        check((st.st_uid, st.st_gid) == (65534, 65534), f"f belongs to {st.st_uid}:{st.st_gid}")
        check(losses(db).get("shim_absent", 0) == 0, f"the shim reached the channel: {losses(db)}")
        check(query(db, "SELECT count(*) FROM process WHERE shim = 0")[0][0] == 0, "every process has the shim")
        return os.stat(db)


def test_sudo_target():
    """Under sudo (SUDO_UID/SUDO_GID, root), the target runs as the caller,
    with its groups and environment (SUDO_* gone); the shim still reaches
    the root collector's channel (through a keeper running as the caller);
    faultline keeps root for eBPF; the recording is the caller's."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    env = {"SUDO_UID": "65534", "SUDO_GID": "65534", "SUDO_USER": "nobody", "SUDO_COMMAND": "/bin/sh"}
    st = as_user(["--no-bpf"], env)
    check((st.st_uid, st.st_gid) == (65534, 65534), f"recording owner {st.st_uid}:{st.st_gid}")
    as_user([], env)


def test_user_option():
    """--user NAME: the same, without sudo."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    as_user(["--user", "nobody"], {})
    as_user(["--user=65534", "--no-bpf"], {})
    p = subprocess.run([FL, "record", "--user", "no-such-user-here", "--", "true"], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 125 and "no such user" in p.stderr, f"{p.returncode} {p.stderr}")


def test_channel_truncate():
    """The target opens its channel read-write: truncating it once killed
    the root collector with SIGBUS.  The memfd is sealed at its size."""
    script = ("import os, mmap\n"
              "env = dict(v.split(b'=', 1) for v in open('/proc/self/environ', 'rb').read().split(b'\\0') if b'=' in v)\n"
              "fd = os.open(env[b'FAULTLINE_CHANNEL'], os.O_RDWR)  # hidden from os.environ: the initial one\n"
              "try:\n    os.ftruncate(fd, 0)\nexcept OSError as e:\n    print('refused', e.errno)\n"
              "for i in range(200):\n    mmap.mmap(-1, 4096).close()\n"
              "print('done')\n")
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "t.db")
            p = record(db, ["/usr/bin/python3", "-c", script], bpf=bpf)
            check(p.returncode == 0 and p.stdout == "refused 1\ndone\n", f"{p.returncode} {p.stdout!r} {p.stderr}")
            check(complete(db), "recording complete")


def test_signal_matching():
    """A timer signal's handler maps and unmaps while the thread does 30,000
    mmap/munmap pairs (issue 7: 105,266 real mmaps reported as 117,099).
    strace -f -c, run under faultline, counts the target's calls after its
    exec; faultline's counts for the same process must equal them, every
    main-loop call must carry its stack, and no call is stored twice."""
    n = 30000
    with tempfile.TemporaryDirectory() as d:
        db, st = os.path.join(d, "s.db"), os.path.join(d, "strace.txt")
        p = record(db, ["strace", "-f", "-qq", "-c", "-o", st, "-e", "trace=mmap,munmap",
                        os.path.join(TARGETS, "sec_sigmmap"), str(n)], bpf=True, timeout=300)
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        handled = int(p.stdout.split()[3])
        strace = {}
        for line in open(st):
            f = line.split()
            if len(f) >= 5 and f[-1] in ("mmap", "munmap"):
                strace[f[-1]] = int(f[3])
        sel = ("WITH p AS (SELECT id FROM process WHERE exe LIKE '%sec_sigmmap'), "
               "x AS (SELECT max(time_ns) t FROM event WHERE kind = 'exec' AND proc_id IN (SELECT id FROM p)), "
               "h AS (SELECT 28672 len) "  # the handler's size; a library's segment may share it: anonymous only
               "SELECT kind, count(*), sum(a1 = 4096 AND stack_id IS NOT NULL), sum(a1 = h.len AND anon), "
               "sum(a1 = h.len AND anon AND stack_id IS NOT NULL), sum(source = 'shim') "
               "FROM (SELECT *, kind = 'munmap' OR a3 & 32 != 0 AS anon FROM event), h "
               "WHERE proc_id IN (SELECT id FROM p) AND kind IN ('mmap', 'munmap') "
               "AND time_ns > (SELECT t FROM x) GROUP BY kind")
        got = {k: rest for k, *rest in query(db, sel)}
        print(f"strace {strace}; faultline (count, main with stack, handler, handler with stack, "
              f"shim only) {got}; handler ran {handled} times")
        for kind in ("mmap", "munmap"):
            total, main_stacked, hcalls, hstacked, shim_only = got[kind]
            check(total == strace[kind], f"{kind}: faultline {total}, strace {strace[kind]}")
            check(main_stacked == n, f"{kind}: main-loop calls with a stack {main_stacked} of {n}")
            check(hcalls == handled, f"{kind}: handler calls {hcalls}, the handler ran {handled} times")
            check(shim_only == 0, f"{kind}: {shim_only} calls stored twice")


def test_signal_in_shim():
    """A timer handler that maps and unmaps while its thread is inside a
    shim hook (the timer counts CPU time, most of which the hooks spend
    unwinding).  Such calls once went unrecorded in shim-only mode and
    stackless with BPF, uncounted.  Now each is recorded with its stack,
    the handler's frame first; when the handler interrupted the unwinder,
    the stack is the caller only (shim_nested_caller, a loss every report
    prints); one made while the shim was busy elsewhere (fork, snapshot) is
    counted (shim_nested_unrecorded).  Shim only and with BPF: handler calls
    recorded + unrecorded == 2 per handler run."""
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "g.db")
            p = record(db, [os.path.join(TARGETS, "sec_sigmmap"), "20000"], bpf=bpf, timeout=300)
            check(p.returncode == 0, f"bpf={bpf}: exit {p.returncode}: {p.stderr}")
            handled = int(p.stdout.split()[3])
            rows = query(db, "SELECT e.stack_id IS NOT NULL, (SELECT count(*) FROM stack_frame sf WHERE "
                             "sf.stack_id = e.stack_id), (SELECT f.function FROM stack_frame sf JOIN frame f "
                             "ON f.id = sf.frame_id WHERE sf.stack_id = e.stack_id AND sf.idx = 0) "
                             "FROM event e JOIN process p ON p.id = e.proc_id WHERE p.exe LIKE '%sec_sigmmap' "
                             "AND e.kind IN ('mmap', 'munmap') AND e.a1 = 28672 "
                             "AND (e.kind = 'munmap' OR e.a3 & 32 != 0)")
            lost = losses(db)
            unrecorded, caller_only = lost.get("shim_nested_unrecorded", 0), lost.get("shim_nested_caller", 0)
            stacked = [r for r in rows if r[0]]
            print(f"bpf={bpf}: handler ran {handled}; calls {len(rows)}, with a stack {len(stacked)}, "
                  f"caller only {caller_only}, unrecorded {unrecorded}")
            check(handled > 0, "the timer fired")
            check(len(rows) == 2 * handled - (0 if bpf else unrecorded), f"bpf={bpf}: handler calls {len(rows)}")
            check(len(stacked) == 2 * handled - unrecorded, f"bpf={bpf}: with a stack {len(stacked)}")
            check(all(fn == "on_timer" for _, _, fn in stacked), f"bpf={bpf}: the handler's frame first")
            check(sum(n == 1 for _, n, _ in stacked) == caller_only, f"bpf={bpf}: caller-only stacks vs {lost}")
            if caller_only:
                rep = subprocess.run([FL, "report", db], capture_output=True, text=True, timeout=60)
                check(f"LOST       shim_nested_caller: {caller_only}" in rep.stdout, rep.stdout)


STACK_BOUND = 3584   # bytes: what docs/security.md states a hook may use at most


def test_stack_use():
    """Each hook's stack use, measured (the painted stack of a thread whose
    stack the target allocated): at most STACK_BOUND, as stated."""
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "k.db")
            p = record(db, [os.path.join(TARGETS, "sec_stack"), "measure"], bpf=bpf,
                       extra=("--heap-sample", "1"))
            check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
            use = {k: int(v) for k, v in (line.split() for line in p.stdout.splitlines())}
            print(f"bpf={bpf}: stack use per hook: {use}")
            check(len(use) == 6 and all(v <= STACK_BOUND for v in use.values()), f"over {STACK_BOUND}: {use}")


def test_stack_left():
    """A thread with 3.5 KiB of stack left (a guard page below) calls mmap,
    munmap, mprotect, madvise, mremap, malloc, shmat: it crashed only under
    faultline (the shim needed 4.5 KiB)."""
    plain = subprocess.run([os.path.join(TARGETS, "sec_stack"), "left", str(STACK_BOUND)], capture_output=True,
                           text=True, timeout=60)
    check(plain.returncode == 0 and plain.stdout == "ok\n", f"plain: {plain.returncode}")
    for bpf in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "k.db")
            p = record(db, [os.path.join(TARGETS, "sec_stack"), "left", str(STACK_BOUND)], bpf=bpf,
                       extra=("--heap-sample", "1"))
            check(p.returncode == 0 and p.stdout == "ok\n", f"bpf={bpf}: exit {p.returncode} {p.stdout!r}")


if __name__ == "__main__":
    fn = globals().get("test_" + sys.argv[1])
    if not fn:
        print("no such case", sys.argv[1])
        sys.exit(1)
    try:
        fn()
    except Skip as e:
        print("SKIP:", e)
        sys.exit(77)
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
    print("ok", sys.argv[1])
