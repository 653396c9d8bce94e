#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bpf suite driver: bpf_test.py NAME PROBE FAULTS STATIC STORM EDGE

Runs a target under bpf_probe and asserts exact fault counts per class.
Exit 77 when BPF is unavailable (bpf_probe decides, honouring
FAULTLINE_REQUIRE_BPF=1) or, for an edge case, when the machine lacks what
it needs (swap, hugetlb pages, KSM, userfaultfd): then the reason is
printed, and under FAULTLINE_REQUIRE_BPF=1 such a skip fails unless the
test is named in FAULTLINE_SKIP_OK (comma-separated), the named exception.
Machine-wide settings a case changes are restored whatever happens.
"""
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from invariant import check_recording  # noqa: E402

CLASSES = ['major_file', 'major_swap', 'anon_new', 'zero_page', 'pagecache', 'cow_anon',
           'cow_zero', 'cow_file', 'cow_reuse', 'write_notify', 'other', 'retry', 'uffd',
           'hugetlb', 'pfn', 'spurious']
MAJOR = {'major_file', 'major_swap', 'retry'}
PG = 4096


class Run:
    def __init__(self, out, err, rc):
        self.rc = rc
        self.calls, self.forks, self.execs, self.exits, self.rss = [], [], [], {}, []
        self.faults, self.sites = [], []
        self.loss = None
        self.status = None
        self.addrs = {}   # pid -> [addr]
        self.regions = {}  # name -> (pid, addr, len)
        self.notes = {}    # (pid, key) -> value
        self.rusage = {}  # pid -> (min, maj)
        self.target_time = None
        for line in out.splitlines():
            f = line.split()
            if not f:
                continue
            if f[0] == 'call':
                self.calls.append({'kind': int(f[1]), 'pid': int(f[2]), 'tid': int(f[3]),
                                   'seq': int(f[4]), 'err': int(f[5]), 'result': int(f[6]),
                                   'args': [int(x, 16) for x in f[7:13]]})
            elif f[0] == 'fork':
                self.forks.append(tuple(int(x) for x in f[1:5]))
            elif f[0] == 'exec':
                self.execs.append((int(f[1]), f[2] if len(f) > 2 else ''))
            elif f[0] == 'exit':
                v = [int(x) for x in f[1:10]]
                self.exits[v[0]] = dict(zip(['pid', 'tid', 'code', 'min', 'maj', 'base_min',
                                             'base_maj', 'gup_min', 'gup_maj'], v))
            elif f[0] == 'rss':
                v = [int(x) for x in f[1:7]]
                self.rss.append(dict(zip(['pid', 'time', 'anon', 'file', 'shmem', 'swap'], v)))
            elif f[0] == 'fault':
                c = [int(x) for x in f[4:]]
                self.faults.append({'tgid': int(f[1]), 'start': int(f[2], 16),
                                    'end': int(f[3], 16),
                                    'cls': dict(zip(CLASSES, c[:len(CLASSES)])),
                                    'read': c[-4], 'write': c[-3], 'exec': c[-2], 'thp': c[-1]})
            elif f[0] == 'site':
                self.sites.append((int(f[1]), int(f[2]), int(f[3], 16), int(f[4], 16), int(f[5]), int(f[6]),
                                   [int(x, 16) for x in f[7:]]))
            elif f[0] == 'loss':
                self.loss = dict(zip(['ringbuf', 'fault_map', 'site_map', 'pending', 'find_vma',
                                      'thread_state'], [int(x) for x in f[1:7]]))
            elif f[0] == 'status':
                self.status = int(f[1])
        for line in err.splitlines():
            f = line.split()
            if len(f) >= 4 and f[:2] == ['target', 'addr']:
                self.addrs.setdefault(int(f[2]), []).append(int(f[3], 16))
            elif len(f) >= 6 and f[:2] == ['target', 'region']:
                self.regions[f[3]] = (int(f[2]), int(f[4], 16), int(f[5]))
            elif len(f) >= 5 and f[:2] == ['target', 'note']:
                self.notes[f[3]] = int(f[4])
            elif len(f) >= 5 and f[:2] == ['target', 'rusage']:
                self.rusage[int(f[2])] = (int(f[3]), int(f[4]))
            elif len(f) >= 3 and f[:2] == ['target', 'time']:
                self.target_time = float(f[2])

    def region(self, pid, addr, length=0):
        """Class counts summed over the VMAs of pid that contained addr, plus
        the faults counted by address (vm_end 0: bpf_find_vma was busy) that
        fall in [addr, addr + length)."""
        tot = {c: 0 for c in CLASSES}
        tot.update(read=0, write=0, exec=0, thp=0)
        for e in self.faults:
            if e['tgid'] != pid:
                continue
            if (e['end'] and e['start'] <= addr < e['end']) or \
               (not e['end'] and addr <= e['start'] < addr + length):
                for c in CLASSES:
                    tot[c] += e['cls'][c]
                for c in ('read', 'write', 'exec', 'thp'):
                    tot[c] += e[c]
        return tot

    def inside(self, pid, addr, length):
        """Class counts of the VMAs that begin inside [addr, addr + length): a
        region the target mapped, not an earlier VMA whose addresses it reuses."""
        tot = {c: 0 for c in CLASSES}
        tot.update(read=0, write=0, exec=0, thp=0)
        for e in self.faults:
            if e['tgid'] == pid and addr <= e['start'] < addr + length:
                for c in CLASSES:
                    tot[c] += e['cls'][c]
                for c in ('read', 'write', 'exec', 'thp'):
                    tot[c] += e[c]
        return tot


failures = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


TEST = None  # the running test's name


# Cases a kernel older than the version named cannot run: their skip is a
# named exception even under FAULTLINE_REQUIRE_BPF (docs/faults.md, "Kernels").
NEWER = {'mthp': ((6, 8), 'multi-size THP (hugepages-<size>kB) arrived in 6.8')}


def skip(why):
    """The machine lacks something this test needs: exit 77, or fail under REQUIRE_BPF."""
    print('skip %s: %s' % (TEST, why))
    allowed = os.environ.get('FAULTLINE_SKIP_OK', '').split(',')
    if TEST in NEWER and not kernel_at_least(*NEWER[TEST][0]):
        print('named exception: %s' % NEWER[TEST][1])
        sys.exit(77)
    if os.environ.get('FAULTLINE_REQUIRE_BPF') == '1' and TEST not in allowed:
        print('FAIL: FAULTLINE_REQUIRE_BPF=1 and %s is not in FAULTLINE_SKIP_OK' % TEST)
        sys.exit(1)
    sys.exit(77)


def run(probe, *argv):
    p = subprocess.run([probe, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    if p.returncode == 77:
        sys.stderr.write(p.stderr)
        sys.exit(77)
    lack = [l for l in p.stderr.splitlines() if 'this machine lacks' in l]
    if lack:
        skip(lack[0])
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        print('bpf_probe failed: rc %d' % p.returncode)
        sys.exit(1)
    r = Run(p.stdout, p.stderr, p.returncode)
    sys.stderr.write(''.join(l + '\n' for l in p.stderr.splitlines()[:40]))
    return r


def common(r, gup_max=64):
    """What every run must satisfy: no loss, clean exit, totals = the kernel's."""
    # find_vma is not a loss: those faults are counted, keyed by address.
    check(r.loss is not None and not any(v for k, v in r.loss.items() if k != 'find_vma'),
          'no loss: %s' % r.loss)
    check(r.status == 0, 'root exited 0 (status %s)' % r.status)
    check(len(r.exits) >= 1, 'exit records: %d' % len(r.exits))
    for pid, x in r.exits.items():
        mn = sum(e['cls'][c] for e in r.faults if e['tgid'] == pid for c in CLASSES
                 if c not in MAJOR)
        mj = sum(e['cls'][c] for e in r.faults if e['tgid'] == pid for c in MAJOR)
        check(mn == x['min'] - x['base_min'] - x['gup_min'],
              'pid %d minor: classes %d == min %d - base %d - gup %d'
              % (pid, mn, x['min'], x['base_min'], x['gup_min']))
        check(mj == x['maj'] - x['base_maj'] - x['gup_maj'],
              'pid %d major: classes %d == maj %d - base %d - gup %d'
              % (pid, mj, x['maj'], x['base_maj'], x['gup_maj']))
        check(x['gup_min'] + x['gup_maj'] <= gup_max,
              'pid %d: faults without a perf event (get_user_pages) small: %d'
              % (pid, x['gup_min'] + x['gup_maj']))
        if pid in r.rusage:
            rmin, rmaj = r.rusage[pid]
            check(rmin <= x['min'] <= rmin + 64 and rmaj <= x['maj'] <= rmaj + 4,
                  'pid %d: exit totals %d/%d vs getrusage before exit %d/%d'
                  % (pid, x['min'], x['maj'], rmin, rmaj))


def only(tot, expect, n, what):
    """tot has exactly `expect` (class -> count) and nothing in other classes."""
    got = {c: tot[c] for c in CLASSES if tot[c]}
    check(got == expect, '%s: %s == %s (N=%d)' % (what, got, expect, n))


# ---- machine-wide settings, restored whatever happens ----------------------

def write_setting(path, value):
    with open(path, 'w') as f:
        f.write(value)


@contextlib.contextmanager
def machine_settings_lock():
    """One test at a time changes machine-wide settings, across test runs
    (two worktrees' suites at once): otherwise the second saves the first's
    value as "old" and restores it after the first restored the real one
    (KSM was left running for hours that way)."""
    import fcntl
    lockdir = '/run/lock' if os.path.isdir('/run/lock') else '/tmp'  # the VM's initramfs has no /run/lock
    with open(os.path.join(lockdir, 'faultline-test-settings'), 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def setting(path, value):
    """path holds value for the duration (THP-style "a [b] c" files: the bracketed one)."""
    try:
        old = open(path).read().strip()
    except OSError as e:
        skip('no %s (%s)' % (path, e.strerror))
    if '[' in old:
        old = old[old.index('[') + 1:old.index(']')]
    try:
        write_setting(path, value)
    except OSError as e:
        skip('cannot set %s to %s (%s)' % (path, value, e.strerror))
    try:
        yield
    finally:
        write_setting(path, old)


@contextlib.contextmanager
def zram_swap(mib=256):
    """Swap on /dev/zram0 for the duration (the device must be free)."""
    dev = '/sys/block/zram0'
    if not os.path.exists(dev):
        try:
            subprocess.run(['modprobe', 'zram'], stderr=subprocess.DEVNULL)
        except OSError:
            pass  # no modprobe (the VM test's initramfs)
    if not os.path.exists(dev):
        skip('no zram device (CONFIG_ZRAM)')
    if int(open(dev + '/disksize').read()) != 0:
        skip('/dev/zram0 is in use')
    try:
        write_setting(dev + '/disksize', '%dM' % mib)
        subprocess.run(['mkswap', '/dev/zram0'], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(['swapon', '/dev/zram0'], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        subprocess.run(['swapoff', '/dev/zram0'], stderr=subprocess.DEVNULL)
        write_setting(dev + '/reset', '1')
        skip('cannot swap on zram: %s' % e)
    try:
        yield
    finally:
        subprocess.run(['swapoff', '/dev/zram0'])
        write_setting(dev + '/reset', '1')


def kernel_at_least(major, minor):
    v = os.uname().release.split('.')
    return (int(v[0]), int(''.join(c for c in v[1] if c.isdigit()) or 0)) >= (major, minor)


# ---- the kernel's edge cases (issue 13): region -> exact counts per class ---
#
# Each case: bpf_edge MODE N [FILE], the settings it needs, and for each
# region the target names the exact class counts (plus 'thp' where the
# fault mapped a huge folio).  docs/faults.md explains every number.
# UFFD_RETRY: on kernels where a userfaultfd fault under the per-VMA lock is
# retried as minor (6.6+), a user-mode uffd fault is `uffd`; before, the
# retry under mmap_lock set FAULT_FLAG_TRIED and counted it major (`retry`).
PAGES = 64
VDSO = 'VDSO'  # the vdso's size decides


def edge_cases():
    uffd_user = 'uffd' if kernel_at_least(6, 6) else 'retry'
    thp = '/sys/kernel/mm/transparent_hugepage/'
    ksm = '/sys/kernel/mm/ksm/'
    return {
        'tmpfs_private': (['tmpfs_private', PAGES], [], {
            'tmpfs': {'pagecache': PAGES // 16, 'cow_file': PAGES}}),
        'faultaround_file': (['faultaround_file', PAGES, 'FILE'], [], {
            'file': {'pagecache': PAGES // 16}}),
        'devzero': (['devzero', PAGES], [], {
            'devzero': {'anon_new': PAGES // 2, 'zero_page': PAGES // 2}}),
        'vdso': (['vdso'], [], {'vdso': {'pagecache': VDSO}, 'vvar': {'pfn': 1}}),
        'shared_anon': (['shared_anon', PAGES], [], {
            'shared_anon': {'pagecache': PAGES}, 'memfd': {'pagecache': PAGES}}),
        'dontneed': (['dontneed', PAGES], [], {
            'anon': {'anon_new': 2 * PAGES, 'zero_page': PAGES}}),
        'free': (['free', PAGES], [], {'anon': {'anon_new': 2 * PAGES}}),
        'populate': (['populate', PAGES], [], {
            'populate': {}, 'mlock': {}, 'populate_write': {}, 'populate_read': {}}),
        'stack': (['stack', PAGES], [], {'stack': {'anon_new': PAGES}}),
        'segv': (['segv', PAGES], [], {'prot_none': {}, 'guard': {}}),
        'thp': (['thp', 2], [(thp + 'enabled', 'madvise')], {
            'thp': {'anon_new': 2, 'thp': 2}, 'huge_zero': {'zero_page': 2},
            'thp_child': {'cow_anon': 2}}),
        'mthp': (['mthp', 16], [(thp + 'enabled', 'madvise'),
                                (thp + 'hugepages-64kB/enabled', 'madvise')], {
            'mthp': {'anon_new': 16, 'thp': 16}}),
        'collapse': (['collapse'], [], {'collapse': {'anon_new': 512}}),
        'hugetlb': (['hugetlb'], [('/proc/sys/vm/nr_hugepages', '2')], {
            'hugetlb': {'hugetlb': 2}}),
        'ksm': (['ksm', 16], [(ksm + 'pages_to_scan', '20000'), (ksm + 'sleep_millisecs', '1'),
                              (ksm + 'run', '1')], {
            'ksm': {'anon_new': 16, 'cow_anon': 16}}),
        'swap_cow_file': (['swap_cow_file', PAGES, 'FILE'], ['zram'], {
            'cowfile': {'cow_file': PAGES, 'major_swap': PAGES}}),
        'swap_anon': (['swap_anon', PAGES], ['zram'], {
            'swapin': {'anon_new': PAGES, 'major_swap': PAGES},
            'shared_swap': {'anon_new': PAGES, 'major_swap': 'MAJ', 'other': 'PAGES-MAJ'},
            'swapcache': {'other': PAGES}}),
        'uffd_copy': (['uffd_copy', 8], [], {'uffd': {uffd_user: 8}}),
        'uffd_kernel': (['uffd_kernel', 8, 'FILE'], [], {'uffd': {'retry': 8}}),
        'uffd_wp': (['uffd_wp', 8], [], {'uffd': {'anon_new': 8, uffd_user: 8}}),
        'map_churn': (['map_churn', 4096, 'FILE'], [], {
            'private': {'cow_file': 4096}, 'shared': {'write_notify': 4096}}),
        'shm_rmid': (['shm_rmid', 4], [], {'shm': {'pagecache': 4}}),
    }


def expected(want, notes, length):
    """The class counts a region must hold (and its thp count), with the
    counts only the kernel knows filled in: the vdso's size, swap readahead's
    majors (rusage)."""
    want = dict(want)
    thp = want.pop('thp', 0)
    maj = notes.get('shared_swap_majors', 0)
    want = {c: {VDSO: length // PG, 'MAJ': maj, 'PAGES-MAJ': PAGES - maj}.get(v, v)
            for c, v in want.items() if v != 'PAGES-MAJ' or maj < PAGES}
    return want, thp


def edge(name, probe, target):
    argv, settings, expect = edge_cases()[name]
    argv = [str(a) if a != 'FILE' else '/var/tmp/faultline-edge-%s-%d' % (name, os.getpid())
            for a in argv]
    with contextlib.ExitStack() as stack:
        if settings:
            stack.enter_context(machine_settings_lock())
        for s in settings:
            stack.enter_context(zram_swap() if s == 'zram' else setting(*s))
        r = run(probe, target, *argv)
        if FAULTLINE:
            recorded(name, [target, *argv], expect)
    common(r, gup_max=64 + (4 * PAGES if name == 'populate' else 0))
    if name == 'map_churn' and CHURN_BY_ADDRESS:
        tot = {reg: {c: v for c, v in r.inside(*r.regions[reg]).items() if v and c in CLASSES}
               for reg in ('private', 'shared')}
        print('map_churn: %s, find_vma %d' % (tot, r.loss['find_vma']))
        by_address(tot, r.loss['find_vma'], 4096, name)
        return r
    for region, want in expect.items():
        check(region in r.regions, 'region %s reported' % region)
        if region not in r.regions:
            continue
        pid, addr, length = r.regions[region]
        want, thp = expected(want, r.notes, length)
        tot = r.inside(pid, addr, length)
        only(tot, want, length // PG, '%s %s' % (name, region))
        check(tot['thp'] == thp, '%s %s: thp %d == %d' % (name, region, tot['thp'], thp))
    return r


FAULTLINE = os.environ.get('FAULTLINE')  # the faultline binary: each edge case is recorded too
# Regions whose counts a recording cannot show as bpf_probe does: the stack
# region is part of the one [stack] row (which holds the process's other stack
# faults too); vvar's page is mapped in the child by fork, which copies
# PFN-map PTEs, once the shim's clock_gettime() read it in the parent.
NOT_RECORDED = {('stack', 'stack'), ('vdso', 'vvar')}


def region_classes(con, pid, addr, length, all_classes=False):
    """Class counts (and thp) of a recording's VMA rows of pid inside [addr, addr + length); all_classes:
    every class with its count, else only those with faults."""
    # not a mapping faultline's shim made: its buffer for /proc/self/maps, touched and unmapped before
    # the target ran, may have lain where the kernel put the region later
    row = con.execute('SELECT %s, coalesce(sum(f.thp), 0) FROM vma v JOIN fault f ON f.vma_id = v.id'
                      ' WHERE v.pid = ? AND v.start >= ? AND v.end <= ?'
                      ' AND NOT EXISTS (SELECT 1 FROM event e WHERE e.id = v.created_by AND e.faultline)'
                      % ', '.join('coalesce(sum(f.%s), 0)' % c for c in CLASSES),
                      (pid, addr, addr + length)).fetchone()
    tot = dict(zip(CLASSES + ['thp'], row))
    return tot if all_classes else {c: tot[c] for c in CLASSES if tot[c]}


def recorded(name, argv, expect):
    """The same case through `faultline record`: the collector's VMA model
    (shmat's size, mappings it learns only from the kernel) keeps every
    region's counts exact, and the recording's totals add up."""
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, 'run.db')
        p = subprocess.run([FAULTLINE, 'record', '--force', '-o', db, '--', *argv],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        check(p.returncode == 0, 'record %s: exit %d: %s' % (name, p.returncode, p.stderr[-2000:]))
        if p.returncode != 0:
            return
        r = Run('', p.stderr, 0)
        con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
        try:
            lost = dict(con.execute('SELECT cause, count FROM loss WHERE count > 0').fetchall())
            if name == 'map_churn' and CHURN_BY_ADDRESS:
                check(set(lost) <= {'bpf_find_vma'}, 'record %s: no other loss: %s' % (name, lost))
                by_address({reg: region_classes(con, *r.regions[reg]) for reg in ('private', 'shared')},
                           lost.get('bpf_find_vma', 0), 4096, 'record ' + name)
                expect = {}
            else:
                check(not lost, 'record %s: no loss: %s' % (name, lost))
            for region, want in expect.items():
                if (name, region) in NOT_RECORDED:
                    continue
                if region not in r.regions:
                    check(False, 'record %s: region %s reported' % (name, region))
                    continue
                pid, addr, length = r.regions[region]
                want, thp = expected(want, r.notes, length)
                tot = region_classes(con, pid, addr, length, all_classes=True)
                only(tot, want, length // PG, 'record %s %s' % (name, region))
                check(tot['thp'] == thp, 'record %s %s: thp %d == %d' % (name, region, tot['thp'], thp))
        finally:
            con.close()
        try:
            check_recording(FAULTLINE, db)
        except AssertionError as e:
            check(False, str(e))


# Before 6.3 the maple tree is not in RCU mode: a shared-file write fault, which
# released mmap_lock before it completed (fault_dirty_shared_page balances dirty
# pages without it: VM_FAULT_COMPLETED), may find the tree rewritten under the
# lockless walk and bpf_find_vma's trylock failing (docs/faults.md, "Kernels").
CHURN_BY_ADDRESS = not kernel_at_least(6, 3)


def by_address(tot, k, n, what):
    """map_churn's regions when k faults were counted by address (the
    bpf_find_vma loss): classed from rss evidence, a private file write
    looks like anon_new, a shared one like pagecache; exactly those are k."""
    priv, shared = tot['private'], tot['shared']
    check(set(priv) <= {'cow_file', 'anon_new'} and sum(priv.values()) == n,
          '%s private: cow_file + anon_new (by address) == %d: %s' % (what, n, priv))
    check(set(shared) <= {'write_notify', 'pagecache'} and sum(shared.values()) == n,
          '%s shared: write_notify + pagecache (by address) == %d: %s' % (what, n, shared))
    check(priv.get('anon_new', 0) + shared.get('pagecache', 0) == k,
          '%s: the faults classed by address are the loss row: %d + %d == %d'
          % (what, priv.get('anon_new', 0), shared.get('pagecache', 0), k))


def edge_extra(name, r):
    """What a case checks beyond the class counts."""
    if name == 'map_churn':
        check(r.notes.get('churn_rounds', 0) > 0, 'the other thread mapped and unmapped meanwhile')
        if not CHURN_BY_ADDRESS:
            check(r.loss['find_vma'] == 0, 'every fault found its VMA (find_vma %d)' % r.loss['find_vma'])
    elif name == 'segv':
        check(r.notes.get('segv') == 2 * PAGES, 'every access trapped: %s' % r.notes.get('segv'))
    elif name == 'populate':
        (x,) = [x for pid, x in r.exits.items() if pid == r.regions['populate'][0]]
        check(4 * PAGES <= x['gup_min'] <= 4 * PAGES + 64,
              'faults by get_user_pages: gup_min %d >= %d' % (x['gup_min'], 4 * PAGES))
    elif name == 'collapse':
        check(r.notes.get('collapse_rc') == 0, 'MADV_COLLAPSE succeeded: %s' % r.notes.get('collapse_rc'))


def race(probe, target):
    """Two threads COW the same zero pages: one copy per page wins, the loser's is freed."""
    per_round = 1024
    r = run(probe, target, 'race_cow_zero', str(per_round))
    common(r)
    pid, addr, length = r.regions['race']
    tot = r.inside(pid, addr, length)
    got = {c: tot[c] for c in CLASSES if tot[c]}
    n = per_round * r.notes.get('race_rounds', 0)
    print('race: %s in %d round(s)' % (got, r.notes.get('race_rounds', 0)))
    check(tot['zero_page'] == n and tot['cow_zero'] == n,
          'race: zero_page %d == cow_zero %d == %d (one copy kept per page)'
          % (tot['zero_page'], tot['cow_zero'], n))
    rest = set(got) - {'zero_page', 'cow_zero', 'spurious'}
    check(not rest, 'race: the losers are spurious, not %s' % rest)
    losers = r.notes.get('race_faults', -1) - n
    check(losers > 0, 'race: the threads collided (%d faults beyond one per page)' % losers)
    check(tot['spurious'] == losers,
          'race: spurious %d == the kernel\'s extra faults %d' % (tot['spurious'], losers))


def find_vma_loss(target):
    """Without the lockless tree walk (FAULTLINE_PRETEND_MISSING=vma_tree, as
    before 6.1), bpf_find_vma's trylock fails while the other thread of
    map_churn maps and unmaps: those faults are counted by address, classed
    from rss evidence only (a private file write looks like anon_new, a
    shared one like pagecache), and exactly they are the bpf_find_vma loss
    row, which the report prints; the totals still add up."""
    n = 4096
    path = '/var/tmp/faultline-edge-fv-%d' % os.getpid()
    env = dict(os.environ, FAULTLINE_PRETEND_MISSING='vma_tree')
    for attempt in range(6):
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, 'run.db')
            p = subprocess.run([FAULTLINE, 'record', '--force', '-o', db, '--', target, 'map_churn', str(n), path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600, env=env)
            check(p.returncode == 0, 'record: exit %d: %s' % (p.returncode, p.stderr[-2000:]))
            if p.returncode:
                return
            r = Run('', p.stderr, 0)
            con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
            try:
                feat = con.execute("SELECT state FROM kernel_feature WHERE name = 'vma_tree'").fetchall()
                lost = dict(con.execute('SELECT cause, count FROM loss WHERE count > 0').fetchall())
                tot = {reg: region_classes(con, *r.regions[reg]) for reg in ('private', 'shared')}
            finally:
                con.close()
            k = lost.get('bpf_find_vma', 0)
            print('attempt %d: losses %s, private %s, shared %s' % (attempt, lost, tot['private'], tot['shared']))
            if k == 0 and attempt < 5:
                continue  # the threads did not collide this time
            report = subprocess.run([FAULTLINE, 'report', db], stdout=subprocess.PIPE, text=True).stdout
            check(feat == [('replaced',)], 'vma_tree recorded as replaced: %s' % feat)
            check(k > 0, 'faults counted by address: bpf_find_vma %d > 0' % k)
            check(set(lost) == {'bpf_find_vma'}, 'no other loss: %s' % lost)
            check('LOST       bpf_find_vma: %d ' % k in report, 'the report prints the loss row:\n%s' % report)
            by_address(tot, k, n, 'find_vma_loss')
            try:
                check_recording(FAULTLINE, db)
            except AssertionError as e:
                check(False, str(e))
            return


def readahead(probe, target):
    """Readahead into large page-cache folios maps by PTEs: no THP."""
    n = 2048
    path = '/var/tmp/faultline-edge-ra-%d' % os.getpid()
    r = run(probe, target, 'readahead', str(n), path)
    common(r)
    pid, addr, length = r.regions['file']
    tot = r.inside(pid, addr, length)
    got = {c: tot[c] for c in CLASSES if tot[c]}
    print('readahead: %s thp %d' % (got, tot['thp']))
    check(set(got) <= {'major_file', 'pagecache'} and got.get('major_file', 0) >= 1,
          'readahead: file classes only, some major: %s' % got)
    check(tot['thp'] == 0, 'readahead: thp %d == 0' % tot['thp'])


def record_json(argv, env=None):
    """`faultline record` argv into a temporary recording; returns (db, tmpdir, stderr), db None on failure."""
    d = tempfile.mkdtemp()
    db = os.path.join(d, 'run.db')
    p = subprocess.run([FAULTLINE, 'record', '--force', '-o', db, '--', *argv], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=600, env=env)
    check(p.returncode == 0, 'record %s: exit %d: %s' % (argv[0], p.returncode, p.stderr[-2000:]))
    return (db if p.returncode == 0 else None), d, p.stderr


def viewer(*argv):
    p = subprocess.run([FAULTLINE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, '%s: exit %d: %s' % (' '.join(argv[:3]), p.returncode, p.stderr))
    return p.stdout


def site_rows(db):
    return json.loads(viewer('faults', db, '--by', 'site', '--format', 'json'))['rows']


def caller_sites(target, mode='leaf'):
    """One faulting instruction (touch's store, frame pointers kept) reached
    from fill_a (300 pages) and from fill_b (200 pages): two sites with their
    own chains and exact counts; glibc's memset (a leaf, no frame pointer) of
    300 pages: its callers are unavailable, and said so.  mode 'forkexec': the
    same two sites in a fork child that then execs /bin/true (their code was
    the old image's: named all the same)."""
    a, b = 300, 200
    db, d, err = record_json([target, str(a), str(b), mode])
    if not db:
        return
    try:
        rows = site_rows(db)
        touch = sorted(((r['callers'], r['total'], r['anon_new'], r['callers_end']) for r in rows
                        if r['faulting instruction'].startswith('touch (bpf_sites.c:')), key=lambda x: -x[1])
        print('touch sites: %s' % touch)
        check(len(touch) == 2, 'touch: two sites (one per caller): %s' % touch)
        for (callers, total, anon, end), (fill, n) in zip(touch, (('fill_a', a), ('fill_b', b))):
            check(total == n and anon == n, '%s -> touch: %d anon_new faults == %d' % (fill, anon, n))
            check(callers.startswith('%s (bpf_sites.c:' % fill) and ' < main (bpf_sites.c:' in callers,
                  'the chain is %s < main: %s' % (fill, callers))
            # past main, glibc's __libc_start_call_main: Debian builds it without frame pointers
            check(end in ('no_frame_pointer', 'depth', 'top'), '%s: the chain ends plainly: %s' % (fill, end))
            if end == 'no_frame_pointer':
                check(callers.endswith(' < ? (no frame pointer in libc.so.6)'), 'the cut is said: %s' % callers)
        if mode == 'forkexec':
            con = sqlite3.connect(db)
            unnamed = con.execute("SELECT count(*) FROM fault_site s JOIN frame f ON f.id = s.frame_id"
                                  " JOIN vma v ON v.id = s.vma_id WHERE f.module IS NULL AND v.kind = 'anon'"
                                  " AND f.rel_addr BETWEEN 0 AND 0x7fffffffffff").fetchone()[0]
            con.close()
            check(unnamed == 0, 'forkexec: every user-space site in anonymous memory has its module: %d without' %
                  unnamed)
            check_recording(FAULTLINE, db)
            return
        memset = [(r['callers'], r['total'], r['callers_end']) for r in rows
                  if 'memset' in r['faulting instruction'] and r['anon_new']]
        print('memset sites: %s' % memset)
        check(sum(m[1] for m in memset) == a, 'memset: %d faults == %d' % (sum(m[1] for m in memset), a))
        check(all(m[0] == 'unavailable (no frame pointer in libc.so.6)' and m[2] == 'no_frame_pointer'
                  for m in memset), 'memset: callers unavailable, and why: %s' % memset)
        check(not [r for r in rows if r['faulting instruction'] == '(no site recorded)'],
              'every fault has its site: %s' % [r for r in rows if r['faulting instruction'] == '(no site recorded)'])
        text = viewer('faults', db, '--by', 'site')
        check('fill_a (bpf_sites.c:' in text and 'unavailable (no frame pointer in libc.so.6)' in text,
              'faults --by site text shows chains:\n%s' % text)
        report = viewer('report', db)
        check('callers fill_a (bpf_sites.c:' in report, 'the report shows the callers:\n%s' % report)
        check_recording(FAULTLINE, db)
    except AssertionError as e:
        check(False, str(e))
    finally:
        shutil.rmtree(d)


# x86-64 instructions that end where a return address points: call rel32, call r/m (ff /2), syscall
def after_call(code):
    if len(code) >= 5 and code[-5] == 0xe8:
        return True
    if code[-2:] == b'\x0f\x05':
        return True
    return any(len(code) >= k and code[-k] == 0xff and (code[-k + 1] >> 3) & 7 == 2 for k in range(2, 8))


def sites_real(argv):
    """A program no one here wrote, built without frame pointers: every
    site's chain is cut and marked where the unwind tables say the frame
    pointer chain no longer holds, and every caller kept is a return address
    (the instruction before it is a call in the file), not garbage."""
    db, d, err = record_json(argv)
    if not db:
        return
    try:
        con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
        ends = dict(con.execute('SELECT coalesce(callers_end, \'NULL\'), sum(count) FROM fault_site GROUP BY 1'))
        frames = con.execute('SELECT DISTINCT f.module, f.rel_addr FROM fault_site s'
                             ' JOIN stack_frame sf ON sf.stack_id = s.callers_id JOIN frame f ON f.id = sf.frame_id'
                             ).fetchall()
        con.close()
        print('%s: sites by chain end %s, %d distinct callers' % (argv[0], ends, len(frames)))
        check('NULL' not in ends, 'every site was walked: %s' % ends)
        check(ends.get('no_frame_pointer', 0) > 0, 'chains cut for want of frame pointers: %s' % ends)
        bad = []
        for module, rel in frames:
            code = b''
            if module:
                with open(module, 'rb') as f:
                    f.seek(max(rel - 7, 0))
                    code = f.read(min(rel, 7))
            if not after_call(code):
                bad.append((module, hex(rel), code.hex()))
        check(frames and not bad, '%s: every caller kept follows a call: %d of %d do not: %s'
              % (argv[0], len(bad), len(frames), bad[:10]))
        text = viewer('faults', db, '--by', 'site', '--top', '10')
        print(text)
        check('unavailable (no frame pointer in ' in text, 'the cut is said:\n%s' % text)
    except AssertionError as e:
        check(False, str(e))
    finally:
        shutil.rmtree(d)


def site_map_full(probe, target):
    """Site maps with room for 4 sites (FAULTLINE_SITE_MAP_ENTRIES): every
    fault the kernel side could not count at a site is the site_map loss,
    exactly (sites + loss == faults), and the report prints the loss row."""
    env = dict(os.environ, FAULTLINE_SITE_MAP_ENTRIES='4')
    p = subprocess.run([probe, target, '300', '200', 'leaf'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120, env=env)
    r = Run(p.stdout, p.stderr, p.returncode)
    check(p.returncode == 0 and r.loss is not None, 'probe: exit %d: %s' % (p.returncode, p.stderr[-2000:]))
    if r.loss is None:
        return
    faults = sum(sum(e['cls'].values()) for e in r.faults)
    counted = sum(s[4] for s in r.sites)
    print('probe: %d faults, %d at sites, site_map loss %d' % (faults, counted, r.loss['site_map']))
    check(r.loss['site_map'] > 0, 'the site maps filled: loss %d' % r.loss['site_map'])
    check(counted + r.loss['site_map'] == faults,
          'sites %d + loss %d == faults %d' % (counted, r.loss['site_map'], faults))
    db, d, err = record_json([target, '300', '200', 'leaf'], env=env)
    if not db:
        return
    try:
        con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
        lost = dict(con.execute('SELECT cause, count FROM loss WHERE count > 0').fetchall())
        con.close()
        k = lost.get('bpf_site_map', 0)
        check(k > 0 and set(lost) == {'bpf_site_map'}, 'record: the site map loss alone: %s' % lost)
        report = viewer('report', db)
        check('LOST       bpf_site_map: %d (fault sites not counted: site map full)' % k in report,
              'the report prints the loss row:\n%s' % report)
        rows = site_rows(db)
        residual = [r['total'] for r in rows if r['faulting instruction'] == '(no site recorded)']
        check(residual and residual[0] > 0, 'faults --by site: the faults with no site are a row: %s' % residual)
        check_recording(FAULTLINE, db)
    except AssertionError as e:
        check(False, str(e))
    finally:
        shutil.rmtree(d)

def core_btf(faults):
    """The CO-RE relocations against the per-boot minimal BTF (bpf/bootcache.c): made by the
    first start, used by the next, dropped and made again when it is damaged or not root's
    alone, and in every case the same exact counts."""
    if not any(os.access(t, os.X_OK) for t in ('/usr/sbin/bpftool', '/usr/bin/bpftool', '/usr/local/sbin/bpftool')):
        skip('bpftool not installed: the loader uses the kernel\'s BTF, as before')
    n = 1000
    cache = '/run/faultline'
    for f in os.listdir(cache) if os.path.isdir(cache) else []:
        if f.startswith('core-'):
            os.unlink(os.path.join(cache, f))

    def once(what):
        env = dict(os.environ, FAULTLINE_DEBUG='1')
        db, d, err = record_json([faults, 'anon_write', str(n), '/var/tmp/faultline-core-btf'], env)
        used = [l.split()[-1] for l in err.splitlines() if l.startswith('faultline: CO-RE relocations against ')]
        if db:
            r = Run('', err, 0)
            (pid, [addr]), = r.addrs.items()
            con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
            lost = dict(con.execute('SELECT cause, count FROM loss WHERE count > 0').fetchall())
            # the row of the target's mapping (an earlier one whose addresses it reused is not it)
            row = con.execute('SELECT sum(f.anon_new), sum(%s) FROM vma v JOIN fault f ON f.vma_id = v.id'
                              ' WHERE v.pid = ? AND v.start <= ? AND ? < v.end' % ' + '.join('f.' + c for c in CLASSES),
                              (pid, addr, addr)).fetchone()
            check(row == (n, n), '%s: %s == (%d, %d) first touches, all of them anon_new' % (what, row, n, n))
            check(not lost, '%s: no loss: %s' % (what, lost))
            con.close()
        shutil.rmtree(d)
        return used

    used = once('made')
    check(len(used) == 1 and used[0].startswith(cache + '/core-'), 'made: relocated against %s' % used)
    if not used:
        return
    path = used[0]
    st = os.stat(path)
    check(st.st_uid == 0 and st.st_mode & 0o777 == 0o644 and 0 < st.st_size < 1 << 20,
          'made: %s root\'s, 0644, %d bytes' % (path, st.st_size))
    check(once('cached') == [path] and os.stat(path).st_mtime_ns == st.st_mtime_ns, 'cached: the same file, kept')
    with open(path, 'r+b') as f:
        f.write(b'\0' * 64)                       # damaged: libbpf cannot parse it
    check(once('damaged') == [path] and not os.path.exists(path), 'damaged: tried, then dropped')
    check(once('made again') == [path], 'made again')
    os.chmod(path, 0o666)                        # not root's alone: not believed, made again
    check(once('writable') == [path] and os.stat(path).st_mode & 0o777 == 0o644, 'writable: made again')


def boot_facts(faults):
    """The kernel's BTF ids the loader hands the kernel itself (bpf/loader.c prepare_tp_btf,
    patch_kfuncs), kept per boot in /run/faultline/btf-facts-v2: the first start parses the
    kernel's BTF and writes them down, the next ones read them and parse nothing; a damaged or
    writable file is not believed and made again.  Each run: the exact first touches, and the
    VMAs exec left sent through the iterator's kfuncs."""
    n = 1000
    path = '/run/faultline/btf-facts-v2'
    if os.path.exists(path):
        os.unlink(path)

    def once(what):
        env = dict(os.environ, FAULTLINE_DEBUG='1')
        db, d, err = record_json([faults, 'anon_write', str(n), '/var/tmp/faultline-boot-facts'], env)
        # faultline's own word for it, or libbpf's (it read the kernel's BTF itself before)
        parsed = "faultline: the kernel's BTF read" in err or 'libbpf: loading kernel BTF' in err
        if db:
            r = Run('', err, 0)
            (pid, [addr]), = r.addrs.items()
            con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
            row = con.execute('SELECT sum(f.anon_new), sum(%s) FROM vma v JOIN fault f ON f.vma_id = v.id'
                              ' WHERE v.pid = ? AND v.start <= ? AND ? < v.end' % ' + '.join('f.' + c for c in CLASSES),
                              (pid, addr, addr)).fetchone()
            check(row == (n, n), '%s: %s == (%d, %d) first touches, all of them anon_new' % (what, row, n, n))
            exec_vmas = con.execute("SELECT count(*) FROM vma WHERE pid = ? AND how = 'exec'", (pid,)).fetchone()[0]
            check(exec_vmas >= 5, '%s: %d VMAs of the image at exec (code, data, stack, ld.so, vDSO)' % (what, exec_vmas))
            con.close()
        shutil.rmtree(d)
        return parsed

    check(once('made') and os.path.exists(path), 'made: the kernel\'s BTF parsed once, the facts written')
    st = os.stat(path)
    check(st.st_uid == 0 and st.st_mode & 0o777 == 0o644, 'made: %s root\'s, 0644' % path)
    with open(path) as f:
        good = f.read()
    check(not once('cached') and os.stat(path).st_mtime_ns == st.st_mtime_ns,
          'cached: the kernel\'s BTF not parsed, the file kept')
    with open(path, 'w') as f:
        f.write(good.splitlines()[0] + '\n1\n')   # damaged: too few facts
    check(once('damaged') and open(path).read() == good, 'damaged: not believed, made again')
    os.chmod(path, 0o666)                         # not root's alone: not believed, made again
    check(once('writable') and os.stat(path).st_mode & 0o777 == 0o644, 'writable: made again')


def real(probe, argv):
    """A program no one here wrote: the totals hold."""
    r = run(probe, *argv)
    common(r, gup_max=4096)
    check(len(r.exits) >= 1 and sum(sum(e['cls'].values()) for e in r.faults) > 0,
          '%s: faults classified' % argv[0])


def main():
    global TEST
    name, probe, faults, static, storm, edge_bin, sites_bin = sys.argv[1:8]
    TEST = name
    n = 1000
    if name in edge_cases():
        edge_extra(name, edge(name, probe, edge_bin))
    elif name == 'race_cow_zero':
        race(probe, edge_bin)
    elif name == 'readahead':
        readahead(probe, edge_bin)
    elif name == 'find_vma_loss':
        find_vma_loss(edge_bin)
    elif name == 'sites':
        caller_sites(sites_bin)
    elif name == 'sites_forkexec':
        caller_sites(sites_bin, 'forkexec')
    elif name == 'sites_python':
        sites_real([sys.executable, '-c', 'import json; d = [dict(i=i, s=str(i) * 10) for i in range(100000)];'
                    'print(len(json.dumps(d)))'])
    elif name == 'site_map_full':
        site_map_full(probe, sites_bin)
    elif name == 'core_btf':
        core_btf(faults)
    elif name == 'boot_facts':
        boot_facts(faults)
    elif name == 'exec_true':
        real(probe, ['/bin/true'])
    elif name == 'python':
        real(probe, [sys.executable, '-c',
                     'import sqlite3, json; d = [dict(i=i, s=str(i) * 10) for i in range(200000)];'
                     'c = sqlite3.connect(":memory:"); c.execute("create table t(a)");'
                     'c.executemany("insert into t values(?)", [(json.dumps(x),) for x in d])'])
    elif name == 'doctor':
        p = subprocess.run([probe, '--doctor'], stdout=subprocess.PIPE, text=True)
        print(p.stdout)
        if p.returncode != 0 and os.environ.get('FAULTLINE_REQUIRE_BPF') != '1':
            sys.exit(77)
        check(p.returncode == 0 and 'fidelity: full' in p.stdout, 'doctor: full fidelity')
    elif name in ('anon_new', 'zero_page', 'cow_zero', 'cow_file', 'write_notify', 'major_file'):
        mode = {'anon_new': 'anon_write', 'zero_page': 'anon_read',
                'write_notify': 'shared_write'}.get(name, name)
        path = '/var/tmp/faultline-bpf-%s-%d' % (name, os.getpid())
        r = run(probe, faults, mode, str(n), path)
        common(r)
        root = r.execs[0][0] if r.execs else None
        (pid, [addr]), = r.addrs.items()
        tot = r.region(pid, addr, n * PG)
        expect = {'anon_new': {'anon_new': n}, 'zero_page': {'zero_page': n},
                  'cow_zero': {'zero_page': n, 'cow_zero': n}, 'cow_file': {'cow_file': n},
                  'write_notify': {'write_notify': n}, 'major_file': {'major_file': n}}[name]
        only(tot, expect, n, name)
        check(tot['thp'] == 0, 'no THP faults')
        check(root == pid, 'exec record for the root')
        if name == 'anon_new':
            check(tot['write'] == n and tot['read'] == 0, 'access split: %d writes' % tot['write'])
            # sites are keyed by piece (the mapping's 2 MiB buckets), so count the ips
            sites = [s for s in r.sites if s[0] == pid and addr <= s[2] < addr + n * PG and s[1] == 2]
            ips = {s[3] for s in sites}
            check(sum(s[4] for s in sites) == n and len(ips) <= 2,
                  'fault sites: %d faults at %d ip(s)' % (sum(s[4] for s in sites), len(ips)))
        if name == 'zero_page':
            check(tot['read'] == n, 'access split: %d reads' % tot['read'])
    elif name == 'pieces':
        # faults are keyed by piece: the part of the VMA no call boundary crosses, inside one 2 MiB
        # bucket.  20 mappings of growing size, unmapped, left 20 boundaries inside the last one;
        # each munmap forgets those inside what it emptied, so one stale boundary is left (the
        # last munmap's start: the ends of an emptied range stay, they bound its neighbours)
        rounds = 20
        r = run(probe, faults, 'remap', str(rounds))
        common(r)
        (pid, [addr]), = r.addrs.items()
        length = 8 * (rounds + 1) * PG
        sites = [s for s in r.sites if s[0] == pid and addr <= s[2] < addr + length and s[1] == 2]
        pieces = {s[2] for s in sites}
        buckets = (addr + length - 1) // (2 << 20) - addr // (2 << 20) + 1
        check(sum(s[4] for s in sites) == 8 * (rounds + 1),
              'first touches: %d of %d' % (sum(s[4] for s in sites), 8 * (rounds + 1)))
        check(len(pieces) <= buckets + 1,
              '%d pieces in %d bucket(s): %s' % (len(pieces), buckets, sorted('%x' % x for x in pieces)))
    elif name in ('cow_anon', 'cow_reuse', 'totals'):
        mode = 'cow_reuse' if name == 'cow_reuse' else 'cow_anon'
        r = run(probe, faults, mode, str(n))
        common(r)
        parent = r.execs[0][0]
        addr = r.addrs[parent][0]
        procs = [f for f in r.forks if not f[3]]
        check(len(procs) == 1 and procs[0][2] == parent, 'one fork record: %s' % procs)
        child = procs[0][0] if procs else -1
        check(child in r.exits and parent in r.exits, 'exit records for parent and child')
        if name == 'cow_reuse':
            only(r.region(parent, addr, n * PG), {'anon_new': n, 'cow_reuse': n}, n, 'parent')
            only(r.region(child, addr, n * PG), {}, n, 'child (did not touch)')
        else:
            only(r.region(parent, addr, n * PG), {'anon_new': n}, n, 'parent (no COW)')
            only(r.region(child, addr, n * PG), {'cow_anon': n}, n, 'child')
        if name == 'totals':
            for pid in (parent, child):
                x = r.exits.get(pid)
                check(x is not None and pid in r.rusage, 'pid %d: exit + rusage' % pid)
    elif name == 'static':
        r = run(probe, static, str(n))
        common(r)
        (pid, [addr]), = r.addrs.items()
        check(r.execs and r.execs[0][1].endswith('bpf_static'), 'exec of the static binary')
        mm = [c for c in r.calls if c['kind'] == 1 and c['result'] == addr]
        check(len(mm) == 1 and mm[0]['args'][1] == n * PG and mm[0]['pid'] == pid,
              'raw mmap syscall recorded: %s' % mm)
        check(any(c['kind'] == 8 and c['args'][0] == addr for c in r.calls), 'madvise recorded')
        check(any(c['kind'] == 6 for c in r.calls), 'brk recorded (static glibc)')
        seqs = [c['seq'] for c in r.calls if c['pid'] == pid]
        check(seqs == list(range(len(seqs))), 'per-process seq 0..%d' % (len(seqs) - 1))
        only(r.region(pid, addr, n * PG), {'anon_new': n}, n, 'static anon')
    elif name == 'storm':
        threads, mib = 4, 1024
        r = run(probe, storm, str(threads), str(mib))
        common(r)
        (pid, addrs), = r.addrs.items()
        check(len(addrs) == threads, '%d regions' % len(addrs))
        size = mib << 20
        keys = {(e['start'], e['end']) for e in r.faults if e['tgid'] == pid and any(
            (e['end'] and e['start'] <= a < e['end']) or (not e['end'] and a <= e['start'] < a + size)
            for a in addrs)}
        total = sum(e['cls']['anon_new'] for e in r.faults
                    if e['tgid'] == pid and (e['start'], e['end']) in keys)
        other = sum(e['cls'][c] for e in r.faults
                    if e['tgid'] == pid and (e['start'], e['end']) in keys
                    for c in CLASSES if c != 'anon_new')
        print('storm: %d fault(s) counted by address (bpf_find_vma busy)' % r.loss['find_vma'])
        check(total == threads * mib * 256, 'storm: anon_new %d == %d' % (total, threads * mib * 256))
        check(other == 0, 'storm: no other class in the regions (%d)' % other)
        print('storm: target time %.3f s' % (r.target_time or -1))
    elif name == 'rss':
        n = 10000
        r = run(probe, faults, 'rss', str(n))
        common(r)
        (pid, [addr]), = r.addrs.items()
        s = [x for x in r.rss if x['pid'] == pid]
        check(len(s) >= 2, '%d rss samples' % len(s))
        peak = max(x['anon'] for x in s)
        # Samples are percpu_counter_read_positive() values: each CPU may hold
        # up to percpu_counter_batch pages not yet folded (docs/faults.md).
        ncpu = os.cpu_count()
        slack = ncpu * max(32, 2 * ncpu)
        check(peak >= (n - slack) * PG, 'peak anon %d >= %d - %d pages' % (peak // PG, n, slack))
        check(s[-1]['anon'] <= peak - (n - 2 * slack) * PG,
              'last sample after munmap: %d pages (peak %d)' % (s[-1]['anon'] // PG, peak // PG))
        times = [x['time'] for x in s]
        check(times == sorted(times), 'samples in time order')
        close = sum(1 for a, b in zip(times, times[1:]) if b - a < 1000000)
        check(close <= len(s) // 2 + 1, 'rate limit: %d of %d gaps < 1 ms (pending peaks only)'
              % (close, len(s)))
    else:
        print('unknown test', name)
        sys.exit(2)
    if failures:
        print('%d check(s) failed' % len(failures))
        sys.exit(1)


if __name__ == '__main__':
    main()
