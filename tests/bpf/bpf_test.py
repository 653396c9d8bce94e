#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bpf suite driver: bpf_test.py NAME PROBE FAULTS STATIC STORM

Runs a target under bpf_probe and asserts exact fault counts.  Exit 77 when
BPF is unavailable (bpf_probe decides, honouring FAULTLINE_REQUIRE_BPF=1).
"""
import os
import subprocess
import sys

CLASSES = ['major_file', 'major_swap', 'anon_new', 'zero_page', 'pagecache', 'cow_anon',
           'cow_zero', 'cow_file', 'cow_reuse', 'write_notify', 'other']
MAJOR = {'major_file', 'major_swap'}
PG = 4096


class Run:
    def __init__(self, out, err, rc):
        self.rc = rc
        self.calls, self.forks, self.execs, self.exits, self.rss = [], [], [], {}, []
        self.faults, self.sites = [], []
        self.loss = None
        self.status = None
        self.addrs = {}   # pid -> [addr]
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
                                    'cls': dict(zip(CLASSES, c[:11])), 'read': c[11],
                                    'write': c[12], 'exec': c[13], 'thp': c[14]})
            elif f[0] == 'site':
                self.sites.append((int(f[1]), int(f[2]), int(f[3], 16), int(f[4], 16), int(f[5])))
            elif f[0] == 'loss':
                self.loss = dict(zip(['ringbuf', 'fault_map', 'site_map', 'pending', 'find_vma',
                                      'thread_state'], [int(x) for x in f[1:7]]))
            elif f[0] == 'status':
                self.status = int(f[1])
        for line in err.splitlines():
            f = line.split()
            if len(f) >= 4 and f[:2] == ['target', 'addr']:
                self.addrs.setdefault(int(f[2]), []).append(int(f[3], 16))
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


failures = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


def run(probe, *argv):
    p = subprocess.run([probe, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    if p.returncode == 77:
        sys.stderr.write(p.stderr)
        sys.exit(77)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        print('bpf_probe failed: rc %d' % p.returncode)
        sys.exit(1)
    r = Run(p.stdout, p.stderr, p.returncode)
    sys.stderr.write(''.join(l + '\n' for l in p.stderr.splitlines()[:40]))
    return r


def common(r):
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
        check(x['gup_min'] + x['gup_maj'] <= 64,
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


def main():
    name, probe, faults, static, storm = sys.argv[1:6]
    n = 1000
    if name == 'doctor':
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
