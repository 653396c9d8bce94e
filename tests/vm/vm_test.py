#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run faultline's kernel-facing test suites inside a VM booted with a Debian kernel.

Usage: vm_test.py SRCDIR BUILDDIR KERNEL [SUITE...]
  KERNEL  6.1  : Debian 12's own kernel (linux-image-6.1.0-N-cloud-amd64-unsigned)
          6.12 : the newer kernel Debian 12 offers (linux-image-6.12.N+deb12-cloud-amd64-unsigned)
  SUITE   meson suites to run inside (default: bpf e2e); SUITE:REGEX runs only the tests
          of that suite whose name matches

The newest package of that series is fetched with `apt-get download` and cached
in BUILDDIR/vm/.  Only its vmlinuz is used: the guest runs from an initramfs
that holds the build tree at its host path, the Python interpreter running this
script with its standard library, /bin/sh, env, mount, umount, and every shared
library those need (from ldd), so the test commands `meson introspect --tests`
lists run inside unchanged.  The guest boots under qemu-system-x86_64 without
KVM (TCG), runs each test and prints one result line per test on the serial
console; this script parses them.

A guest that stops before every test ran, none having failed, has its console's end printed
and boots once more for the rest (a soft lockup is made a panic; a test that brings the guest
down every time still fails).

Exit 0 all passed, 1 a failure, 77 skipped: the machine cannot run qemu or
fetch the kernel.  With FAULTLINE_REQUIRE_BPF=1 (CI) a skip is a failure.
FAULTLINE_VM_ONLY=REGEX runs only the tests whose name matches, FAULTLINE_DEBUG is
passed on to them, FAULTLINE_VM_KEEP=1 keeps the guest's whole console log on the terminal.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

REQUIRE = os.environ.get("FAULTLINE_REQUIRE_BPF") == "1"
SERIES = {
    "6.1": r"^linux-image-6\.1\.0-([0-9]+)-cloud-amd64-unsigned$",
    "6.12": r"^linux-image-6\.12\.([0-9]+)\+deb12-cloud-amd64-unsigned$",
}
MARK = "@@FLVM"
# A disk (virtio, ext4) for /var/tmp: the tests need a block-backed file system (major faults
# after dropping the page cache, ->page_mkwrite), which tmpfs is not.  Debian's cloud kernels
# build these drivers as modules; in load order.
DISK_MODULES = ["virtio/virtio_ring", "virtio/virtio", "virtio/virtio_pci_modern_dev",
                "virtio/virtio_pci_legacy_dev", "virtio/virtio_pci", "block/virtio_blk"]
TCG_SLOWDOWN = 6  # guest test timeouts are the host's times this (TCG emulates every instruction)


class Skip(Exception):
    pass


def log(msg):
    print(f"vm: {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


# ---- the kernel -----------------------------------------------------------------------------

def newest_package(series, cache):
    """Name of the newest package of the series the archive offers, else the newest cached."""
    pat = re.compile(SERIES[series])
    names = []
    try:
        out = run(["apt-cache", "search", "--names-only", SERIES[series]])
        names = [l.split(" ", 1)[0] for l in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        pass
    names = [n for n in names if pat.match(n)]
    if not names:  # no package lists: a cached download will do
        names = [f.split("_", 1)[0] for f in os.listdir(cache) if f.endswith(".deb")]
        names = [n for n in names if pat.match(n)]
    if not names:
        raise Skip(f"no {series} kernel package: apt-cache search finds none (run apt-get update) "
                   f"and none is cached in {cache}")
    return max(names, key=lambda n: int(pat.match(n).group(1)))


def fetch_vmlinuz(series, cache):
    os.makedirs(cache, exist_ok=True)
    pkg = newest_package(series, cache)
    debs = [f for f in os.listdir(cache) if f.startswith(pkg + "_") and f.endswith(".deb")]
    if not debs:
        log(f"downloading {pkg}")
        try:
            run(["apt-get", "download", "-o", "APT::Sandbox::User=root", pkg], cwd=cache)
        except (OSError, subprocess.CalledProcessError) as e:
            raise Skip(f"cannot download {pkg}: {getattr(e, 'stderr', '') or e}")
        debs = [f for f in os.listdir(cache) if f.startswith(pkg + "_") and f.endswith(".deb")]
    deb = os.path.join(cache, sorted(debs)[-1])
    kernel, modules = deb[:-4] + ".vmlinuz", deb[:-4] + ".modules"
    if not os.path.exists(kernel):
        tmp = kernel + ".d"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(modules, ignore_errors=True)
        os.makedirs(tmp)
        os.makedirs(modules)
        # whole directories: a kernel may build some of DISK_MODULES in (tar fails on a missing name)
        want = ["./boot/vmlinuz-*", "./lib/modules/*/kernel/drivers/virtio/*",
                "./lib/modules/*/kernel/drivers/block/virtio_blk.ko*"]
        run(["sh", "-c", f"dpkg-deb --fsys-tarfile '{deb}' | tar -x -C '{tmp}' --wildcards "
             + " ".join(f"'{w}'" for w in want)])
        for d, _, files in os.walk(os.path.join(tmp, "lib")):
            for f in files:
                os.rename(os.path.join(d, f), os.path.join(modules, f))
        boot = os.path.join(tmp, "boot")
        os.rename(os.path.join(boot, os.listdir(boot)[0]), kernel)
        shutil.rmtree(tmp)
    return pkg, kernel, modules


# ---- the initramfs --------------------------------------------------------------------------

class Cpio:
    """A newc cpio archive, written as files are added (parents first)."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.seen = set()
        self.ino = 1

    def _entry(self, name, mode, data=b"", nlink=1):
        name_b = name.lstrip("/").encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.f.write(hdr.encode() + name_b)
        self.f.write(b"\0" * (-(110 + len(name_b)) % 4))
        self.f.write(data)
        self.f.write(b"\0" * (-len(data) % 4))

    def dirs(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in self.seen:
                self.seen.add(d)
                if os.path.islink(d):
                    self.link(d)
                else:
                    self._entry(d, stat.S_IFDIR | 0o755, nlink=2)

    def link(self, path):
        self.dirs(path)
        target = os.readlink(path)
        self.seen.add(path)
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())
        # follow it, so what it names is there too
        real = os.path.normpath(os.path.join(os.path.dirname(path), target))
        self.add(real)

    def add(self, path, data=None, mode=None):
        if path in self.seen:
            return
        self.dirs(path)
        if data is None and os.path.islink(path):
            return self.link(path)
        if data is None and os.path.isdir(path):
            self.seen.add(path)
            self._entry(path, stat.S_IFDIR | 0o755, nlink=2)
            return
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
            mode = os.stat(path).st_mode
        self.seen.add(path)
        self._entry(path, mode, data)

    def add_tree(self, top, skip=()):
        for d, subdirs, files in os.walk(top):
            subdirs[:] = [s for s in subdirs if s not in skip]
            self.add(d)
            for f in files:
                self.add(os.path.join(d, f))

    def close(self):
        self._entry("TRAILER!!!", 0)
        self.f.close()


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def libraries(elfs):
    """Every shared library the ELF files load (ldd), and the dynamic loader."""
    libs = set()
    for i in range(0, len(elfs), 200):  # one ldd for many files: it is a shell script
        try:
            out = subprocess.run(["ldd"] + elfs[i:i + 200], capture_output=True, text=True).stdout
        except OSError:
            continue
        for line in out.splitlines():
            m = re.search(r"(?:=> )?(/\S+) \(0x", line)
            if m:
                libs.add(m.group(1))
    return libs


GUEST_INIT = """#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/flvm/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# no periodic write-back: under TCG a test runs ~50x longer than on the host, long enough for the
# flusher (every 5 s, pages 30 s old) to lock a just-written page a test then faults on: the
# fault retries and counts as major, which on the host never happens within the test
echo 0 > /proc/sys/vm/dirty_writeback_centisecs
"$FLVM_PY" /flvm/disk.py $FLVM_MODULES
# /tmp and /var/tmp stay the initramfs's own (writable) directories until the disk is mounted, so
# a build tree that lives below either (a CI clone in /tmp, say) is not hidden: what the
# initramfs holds in /var/tmp is copied onto the disk before the disk takes its place
mkdir -p /flvm/disk
if mount -t ext4 /dev/vda /flvm/disk; then
    cp -a /var/tmp/. /flvm/disk/ && mount --move /flvm/disk /var/tmp
else
    echo "@@FLVM no disk: /var/tmp is not block-backed"
fi
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
echo "@@FLVM kernel $(cat /proc/sys/kernel/osrelease)"
cd "$FLVM_CWD" && "$FLVM_PY" /flvm/guest.py /flvm/plan.json
echo "@@FLVM end"
echo o > /proc/sysrq-trigger
sleep 10
"""

GUEST_DISK = r"""
# Load the disk's modules (init_module(2): no kmod needed; .ko.xz unpacked here), wait for it.
import ctypes, glob, lzma, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
for name in sys.argv[1:]:
    for path in glob.glob(f"/flvm/modules/{name}.ko*"):
        image = open(path, "rb").read()
        if path.endswith(".xz"):
            image = lzma.decompress(image)
        if libc.syscall(175, ctypes.c_char_p(image), ctypes.c_ulong(len(image)), ctypes.c_char_p(b"")):
            err = ctypes.get_errno()
            if err != 17:  # EEXIST: built in
                print(f"@@FLVM module {name}: {os.strerror(err)}", flush=True)
for _ in range(100):
    if os.path.exists("/dev/vda"):
        break
    time.sleep(0.1)
"""

GUEST_RUN = r"""
import json, os, subprocess, sys, time
plan = json.load(open(sys.argv[1]))
for t in plan:
    env = dict(os.environ, **t["env"])
    t0 = time.time()
    try:
        p = subprocess.run(t["cmd"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=t["timeout"])
        rc, out = p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.stdout or b"").decode(errors="replace")
    res = "OK" if rc == 0 else "SKIP" if rc == 77 else "FAIL"
    if res != "OK":
        for line in out.splitlines()[-int(os.environ.get("FLVM_LINES", "40")):]:
            print("@@FLVM |", t["name"], "|", line, flush=True)
    print("@@FLVM result", t["name"], res, rc, "%.1f" % (time.time() - t0), flush=True)
"""


def selected(t, suites):
    """t is in one of suites ("bpf", or "e2e:REGEX" for the matching tests of e2e)."""
    for want in suites:
        name, _, regex = want.partition(":")
        if any(s.split(":")[-1] == name for s in t["suite"]) and re.search(regex, t["name"]):
            return True
    return False


def plan(builddir, suites, python):
    tests = json.loads(run(["meson", "introspect", "--tests", builddir]))
    only = os.environ.get("FAULTLINE_VM_ONLY")
    out = []
    for t in tests:
        if not selected(t, suites):
            continue
        cmd = list(t["cmd"])
        if os.path.basename(cmd[0]).startswith("python"):
            cmd[0] = python  # pyenv-style shims are shell scripts: run the interpreter itself
        if only and not re.search(only, t["name"]):
            continue
        env = dict(t["env"], FAULTLINE_REQUIRE_BPF="1")
        if os.environ.get("FAULTLINE_DEBUG"):
            env["FAULTLINE_DEBUG"] = os.environ["FAULTLINE_DEBUG"]
        out.append({"name": t["name"], "cmd": cmd, "env": env,
                    "timeout": (t["timeout"] or 30) * TCG_SLOWDOWN})
    return out


def build_initramfs(path, srcdir, builddir, tests, python, modules):
    """The initramfs: the build tree, the interpreter and its stdlib, a shell, libraries."""
    c = Cpio(path)
    for d in ("/proc", "/sys", "/dev", "/tmp", "/root", "/var/tmp"):
        c.add(d)
    stdlib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib']);"
                  "print(sysconfig.get_paths()['platstdlib'])"]).split()
    for d in sorted(set(stdlib)):
        c.add_tree(d, skip={"test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip",
                            "lib2to3", "site-packages", "dist-packages", "config-3.11-x86_64-linux-gnu"})
    c.add_tree(os.path.join(srcdir, "tests"))
    c.add_tree(builddir, skip={"vm", "meson-logs", "meson-private", "meson-info"})
    tools = [python, "/bin/sh"] + [shutil.which(t) or t for t in (
        "sh", "env", "mount", "umount", "cat", "cp", "sleep", "true", "false", "echo", "ls", "rm", "mkdir",
        "head", "tail", "wc", "sort", "dd")]
    busybox = shutil.which("busybox")
    elfs = [os.path.realpath(t) for t in tools if os.path.exists(t)]
    for d, _, files in os.walk(builddir):
        elfs += [os.path.join(d, f) for f in files if is_elf(os.path.join(d, f))]
    for d in stdlib:
        for root, _, files in os.walk(d):
            elfs += [os.path.join(root, f) for f in files if f.endswith(".so")]
    for t in tools:
        if os.path.exists(t):
            c.add(t)
    for lib in sorted(libraries(elfs)):
        c.add(lib)
    if busybox:  # a fallback for any tool the host lacks
        c.add("/flvm/bin/busybox", open(busybox, "rb").read(), stat.S_IFREG | 0o755)
        for applet in ("ls", "head", "tail", "cat", "sleep", "grep", "dmesg", "free", "df"):
            c.add(f"/flvm/bin/{applet}", b"busybox", stat.S_IFLNK | 0o777)
    for f in sorted(os.listdir(modules)):
        c.add(f"/flvm/modules/{f}", open(os.path.join(modules, f), "rb").read(), stat.S_IFREG | 0o644)
    init = GUEST_INIT.replace("$FLVM_MODULES", " ".join(m.split("/")[1] for m in DISK_MODULES)).replace("$FLVM_CWD", builddir).replace("$FLVM_PY", python)
    c.add("/init", init.encode(), stat.S_IFREG | 0o755)
    c.add("/flvm/guest.py", GUEST_RUN.encode(), stat.S_IFREG | 0o644)
    c.add("/flvm/disk.py", GUEST_DISK.encode(), stat.S_IFREG | 0o644)
    c.add("/flvm/plan.json", json.dumps(tests).encode(), stat.S_IFREG | 0o644)
    c.close()


# ---- boot -------------------------------------------------------------------------------------

def host_thp():
    """The host's THP mode, so the guest runs the tests under the same one as the host's run."""
    try:
        return re.search(r"\[(\w+)\]", open("/sys/kernel/mm/transparent_hugepage/enabled").read()).group(1)
    except (OSError, AttributeError):
        return "madvise"


def boot(kernel, initrd, disk, logpath, timeout):
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise Skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    # thread=single: TCG runs the two vCPUs in turn on one host thread.  With a thread per vCPU
    # (QEMU's default) one vCPU could run code the other had just patched from a stale translation:
    # the kernel patches its text by int3 (text_poke_bp) whenever a tracepoint or perf event is
    # attached or detached, and guests died in exactly such patch sites (an int3 Oops at a nop in
    # handle_mm_fault, a CPU spinning at __alloc_pages' jump label, an int3 Oops in
    # sched_clock_cpu at boot).  In turn, a vCPU never runs while the other patches.
    cmd = [qemu, "-machine", "q35", "-accel", "tcg,thread=single", "-cpu", "max", "-smp", "2", "-m", "5120",
           "-kernel", kernel, "-initrd", initrd,
           "-drive", f"file={disk},if=virtio,format=raw,cache=unsafe", "-nographic", "-no-reboot", "-monitor", "none",
           # softlockup_panic: a CPU stuck in the kernel for 20 s ends the guest (and prints where)
           # instead of holding the test until its timeout (see main: the rest run on a new boot)
           "-append", "console=ttyS0 panic=-1 oops=panic softlockup_panic=1 quiet loglevel=4 transparent_hugepage="
           + host_thp()]
    results, seen_kernel = [], None
    with open(logpath, "w") as logf:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        try:
            for raw in p.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                logf.write(line + "\n")
                logf.flush()
                if os.environ.get("FAULTLINE_VM_KEEP") == "1":
                    print(line, flush=True)
                i = line.find(MARK)
                if i >= 0:
                    f = line[i + len(MARK):].strip().split()
                    if f and f[0] == "kernel":
                        seen_kernel = f[1]
                        log(f"guest kernel {seen_kernel}")
                    elif f and f[0] == "result":
                        results.append((f[1], f[2], f[4]))
                        print(f"vm: {f[2]:4} {f[1]} ({f[4]} s)", flush=True)
                    elif f and f[0] == "|":
                        print("    " + line[i + len(MARK) + 3:], flush=True)
                    elif f and f[0] in ("no", "module"):
                        log(line[i + len(MARK):].strip())
                    elif f and f[0] == "end":
                        break
                if time.time() > deadline:
                    log(f"guest still running after {timeout} s: stopped")
                    break
        finally:
            p.kill()
            p.wait()
    return seen_kernel, results


def print_tail(console, missing):
    with open(console, errors="replace") as f:
        tail = f.read().splitlines()[-25:]
    log(f"the guest stopped with {len(missing)} test(s) not run; the end of its console:")
    for line in tail:
        print("    " + line, flush=True)


def main():
    if len(sys.argv) < 4 or sys.argv[3] not in SERIES:
        print(__doc__, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # meson's timeout: stop qemu too (boot's finally)
    srcdir, builddir = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    series = sys.argv[3]
    suites = sys.argv[4:] or ["bpf", "e2e"]
    cache = os.path.join(builddir, "vm")
    python = os.path.realpath(sys.executable)
    try:
        if not shutil.which("qemu-system-x86_64"):
            raise Skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
        t0 = time.time()
        pkg, kernel, modules = fetch_vmlinuz(series, cache)
        tests = plan(builddir, suites, python)
        initrd = os.path.join(cache, f"initramfs-{series}.cpio")
        build_initramfs(initrd, srcdir, builddir, tests, python, modules)
        disk = os.path.join(cache, f"disk-{series}.img")
        with open(disk, "wb") as f:
            f.truncate(1 << 30)  # sparse; room for a build tree that lives below /var/tmp
        run(["mkfs.ext4", "-q", "-F", disk])
        log(f"{pkg}: {len(tests)} tests of {' '.join(suites)}, initramfs "
            f"{os.path.getsize(initrd) >> 20} MiB ({time.time() - t0:.1f} s)")
        t1 = time.time()
        console = os.path.join(cache, f"console-{series}.log")
        guest, results = boot(kernel, initrd, disk, console, timeout=sum(t["timeout"] for t in tests) + 120)
        if not guest:
            # The emulated kernel itself can die before our init runs: with a host thread per vCPU,
            # TCG crashed 6.12 once in its boot-time code patching (an int3 Oops in sched_clock_cpu).
            # That is no test's result; boot once more, and keep the first console log.
            os.replace(console, console + ".1")
            log(f"the guest did not start (console log: {console}.1); booting it again")
            guest, results = boot(kernel, initrd, disk, console, timeout=sum(t["timeout"] for t in tests) + 120)
    except Skip as e:
        print(f"vm: SKIP: {e}", flush=True)
        if REQUIRE:
            print("vm: FAULTLINE_REQUIRE_BPF=1: a kernel test that cannot run is a failure", flush=True)
            return 1
        return 77
    if not guest:
        log(f"the guest did not start; console log: {os.path.join(cache, f'console-{series}.log')}")
        return 1
    missing = {t["name"] for t in tests} - {r[0] for r in results}
    if missing and not [r for r in results if r[1] != "OK"]:
        # The guest stopped before every test ran, none having failed: its console's end says
        # how.  With a host thread per vCPU, TCG crashed guests in the kernel's code patching
        # (see boot); since they run in turn none has, but a guest can still die of what is no
        # test's doing.  The rest run on a new boot, once: a test that brings the guest down
        # every time still fails, with both consoles' ends printed.
        print_tail(console, missing)
        os.replace(console, console + ".1")
        run(["mkfs.ext4", "-q", "-F", disk])
        rest = [t for t in tests if t["name"] in missing]
        build_initramfs(initrd, srcdir, builddir, rest, python, modules)
        guest, more = boot(kernel, initrd, disk, console, timeout=sum(t["timeout"] for t in rest) + 120)
        results += more
        log(f"the rest on a new boot ({guest or 'it did not start'})")
        missing = {t["name"] for t in tests} - {r[0] for r in results}
        if missing:
            print_tail(console, missing)
    bad = [r for r in results if r[1] != "OK"]
    log(f"{guest}: {len(results) - len(bad)} passed, {len(bad)} failed or skipped, "
        f"{len(missing)} not run, in {time.time() - t1:.0f} s")
    for name in sorted(missing):
        log(f"not run: {name}")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
