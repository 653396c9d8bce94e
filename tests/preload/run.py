#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Preload suite driver: run.py TEST CHAN_DUMP SHIM TARGET_DIR PRELOAD_MAP.

Each test runs a target from tests/targets/ under chan_dump (which prints
every channel record) and asserts exact numbers on the records.  Exit 0 on
success, 1 on failure, 77 when the test cannot run here.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

TEST, DUMP, SHIM, TDIR, MAPFILE = sys.argv[1:6]
DUMP, SHIM = os.path.abspath(DUMP), os.path.abspath(SHIM)


def target(name):
    return os.path.join(TDIR, name)


def fail(msg):
    print('FAIL:', msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# Fields whose value runs to the end of the line (may hold spaces).
TAIL = {'hello': 'exe', 'mapping': 'path', 'call': 'name', 'note': 'text'}


def parse(line):
    typ, _, rest = line.partition(' ')
    rec = {'type': typ}
    tail = TAIL.get(typ)
    if tail and (' %s=' % tail in ' ' + rest):
        i = (' ' + rest).index(' %s=' % tail)
        rec[tail] = (' ' + rest)[i + len(tail) + 2:]
        rest = (' ' + rest)[:i]
    for kv in rest.split():
        k, _, v = kv.partition('=')
        rec[k] = v
    return rec


def num(v):
    return int(v, 0)


def run_dump(args, env=None, opts=(), timeout=100):
    """Run args under the shim.  Returns (CompletedProcess, records)."""
    with tempfile.NamedTemporaryFile('r', suffix='.dump') as f:
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([DUMP, '-o', f.name, *opts, SHIM, '--', *args], env=e,
                           capture_output=True, text=True, timeout=timeout)
        recs = [parse(l) for l in f.read().splitlines() if l]
    return p, recs


def run_plain(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(args, env=e, capture_output=True, text=True, timeout=60)
    return p


def calls(recs, pid=None, kind=None, a1=None):
    out = [r for r in recs if r['type'] == 'call']
    if pid is not None:
        out = [r for r in out if num(r['pid']) == pid]
    if kind is not None:
        out = [r for r in out if r['kind'] == kind]
    if a1 is not None:
        out = [r for r in out if num(r['a1']) == a1]
    return out


def hellos(recs):
    return [r for r in recs if r['type'] == 'hello']


def loss(recs):
    l = [r for r in recs if r['type'] == 'loss']
    check(len(l) == 1, 'one loss line')
    return {k: num(v) for k, v in l[0].items() if k != 'type'}


NO_LOSS = {'dropped': 0, 'no_ring': 0, 'unpublished': 0, 'corrupt': 0, 'stopped_timeout': 0,
           'stopped_collector': 0, 'stopped_taken_over': 0}


def no_loss(recs):
    check(loss(recs) == NO_LOSS, 'no loss: %s' % loss(recs))


def root_pid(recs):
    h = hellos(recs)
    check(h, 'a hello')
    return num(h[0]['pid'])


def snapshots(recs, pid):
    """pid's hellos in ring order, each as (hello, [its mappings])."""
    out = []
    for r in recs:
        if r['type'] == 'hello' and num(r['pid']) == pid:
            out.append((r, []))
        elif r['type'] == 'mapping' and num(r['ring_pid']) == pid:
            check(out, 'mapping before any hello: %s' % r)
            out[-1][1].append(r)
    return out


def check_mappings(recs):
    """Each hello is followed (in its ring) by exactly nmappings mappings,
    which carry the hello's pid and index 0 .. nmappings-1."""
    pids = {num(r['pid']) for r in hellos(recs)}
    check({num(r['ring_pid']) for r in recs if r['type'] == 'mapping'} <= pids,
          'mappings only in rings that said hello')
    for pid in pids:
        for h, maps in snapshots(recs, pid):
            n = num(h['nmappings'])
            check(n > 0 and len(maps) == n, 'pid %d: %d mappings, hello says %d' % (pid, len(maps), n))
            check([num(m['pid']) for m in maps] == [pid] * n, 'pid %d: mapping pid fields' % pid)
            check([num(m['index']) for m in maps] == list(range(n)), 'pid %d: mapping indexes' % pid)
            starts = [num(m['start']) for m in maps]
            check(starts == sorted(starts), 'pid %d: mappings in address order' % pid)


# ---- tests ------------------------------------------------------------------

def t_exports():
    text = open(MAPFILE).read()
    body = re.search(r'global:(.*?)local:', text, re.S).group(1)
    want = {s.strip() for s in body.replace('\n', ' ').split(';') if s.strip()}
    out = subprocess.run(['nm', '-D', '--defined-only', SHIM], capture_output=True,
                         text=True, check=True).stdout
    got = {l.split()[-1].split('@')[0] for l in out.splitlines() if l.strip()}
    check(got == want, 'exported %s, want %s' % (sorted(got), sorted(want)))


def t_threads():
    n, each = 8, 250
    p, recs = run_dump([target('pre_threads'), str(n), str(each)])
    check(p.returncode == 0 and p.stdout == 'done\n', 'target ran: %r' % p.stdout)
    pid = root_pid(recs)
    mm = calls(recs, pid, 'mmap', 0x7000)
    mu = calls(recs, pid, 'munmap', 0x7000)
    check(len(mm) == n * each, 'mmap records %d, want %d' % (len(mm), n * each))
    check(len(mu) == n * each, 'munmap records %d, want %d' % (len(mu), n * each))
    seqs = [num(r['seq']) for r in calls(recs, pid)]
    check(len(seqs) == len(set(seqs)), 'seq numbers unique')
    tids = {r['tid'] for r in mm}
    check(len(tids) == n and str(pid) not in tids, 'one tid per thread: %s' % tids)
    check(all(num(r['err']) == 0 and num(r['result']) > 0 for r in mm), 'results')
    check_mappings(recs)
    no_loss(recs)


def t_errno():
    plain = run_plain([target('pre_errno')])
    p, recs = run_dump([target('pre_errno')])
    check(p.stdout == plain.stdout and p.returncode == plain.returncode,
          'same output:\n%s\nvs\n%s' % (p.stdout, plain.stdout))
    check('errno=9' in plain.stdout and 'errno=12' in plain.stdout, plain.stdout)
    pid = root_pid(recs)
    bad = [r for r in calls(recs, pid, 'mmap') if num(r['a4']) == 9999]
    check(len(bad) == 1 and num(bad[0]['err']) == 9 and num(bad[0]['result']) == -1,
          'bad fd record: %s' % bad)
    huge = calls(recs, pid, 'mmap', 1 << 62)
    check(len(huge) == 1 and num(huge[0]['err']) == 12 and num(huge[0]['result']) == -1,
          'huge record: %s' % huge)
    check([num(r['err']) for r in calls(recs, pid, 'munmap')] == [22], 'munmap EINVAL')
    check([num(r['err']) for r in calls(recs, pid, 'madvise')] == [22], 'madvise EINVAL')
    ok = [r for r in calls(recs, pid, 'mmap', 4096) if num(r['result']) != -1]
    check(len(ok) == 1 and num(ok[0]['err']) == 0, 'successful mmap: err 0')
    no_loss(recs)


# pre_all: the calls its parent image makes, by kind.
PRE_ALL = {'mmap': 3, 'mprotect': 1, 'pkey_mprotect': 1, 'madvise': 1, 'mremap': 2,
           'munmap': 3, 'sbrk': 4, 'brk': 1, 'fork': 1, 'vfork': 1, 'dlopen': 2,
           'dlclose': 1}


def t_identical():
    plain = run_plain([target('pre_all')])
    p, recs = run_dump([target('pre_all')])
    check(plain.returncode == 7, 'plain exit 7: %d' % plain.returncode)
    check(p.returncode == plain.returncode, 'exit %d vs %d' % (p.returncode, plain.returncode))
    check(p.stdout == plain.stdout, 'stdout differs:\n%s\n---\n%s' % (p.stdout, plain.stdout))
    check(p.stderr == plain.stderr, 'stderr differs: %r vs %r' % (p.stderr, plain.stderr))
    check('handler own=1' in p.stdout and 'handler ran=1' in p.stdout and
          'mask same=1' in p.stdout, 'signals untouched')
    pid = root_pid(recs)
    got = collections.Counter(r['kind'] for r in calls(recs, pid))
    check(got == collections.Counter(PRE_ALL), 'kinds %s, want %s' % (dict(got), PRE_ALL))
    fk = calls(recs, pid, 'fork')[0]
    child = num(fk['result'])
    ch = [h for h in hellos(recs) if num(h['pid']) == child]
    check(len(ch) == 1 and ch[0]['flags'] == 'forked' and num(ch[0]['ppid']) == pid,
          'fork child hello: %s' % ch)
    check(num(ch[0]['parent_seq']) < num(fk['seq']), 'parent_seq precedes the fork record')
    check(len(calls(recs, child, 'mmap')) == 1, 'fork child: one mmap')
    dl = calls(recs, pid, 'dlopen')
    check([r.get('name') for r in dl] == ['libm.so.6', 'libdoes-not-exist.so.9'], 'dlopen names')
    rm = calls(recs, pid, 'mremap')
    check(num(rm[1]['a4']) != 0 and num(rm[0]['a4']) == 0, 'mremap new_address only with FIXED')
    check_mappings(recs)
    no_loss(recs)


def crash(mode, sig):
    k = 17
    p, recs = run_dump([target('pre_crash'), mode, str(k)])
    check(p.returncode == 128 + sig, 'died by signal %d: rc %d' % (sig, p.returncode))
    pid = root_pid(recs)
    n = len(calls(recs, pid, 'mmap', 0x3000))
    check(n == k, '%d records, want %d' % (n, k))
    no_loss(recs)


def t_crash_segv():
    crash('segv', 11)


def t_crash_kill():
    crash('kill', 9)


def t_closefds():
    m = 12
    p, recs = run_dump([target('pre_closefds'), str(m)])
    check(p.returncode == 0 and p.stdout == 'closed and mapped\n', 'target ran')
    pid = root_pid(recs)
    check(len(calls(recs, pid, 'mmap', 0x9000)) == m, 'mmaps after close_range')
    check(len(calls(recs, pid, 'munmap', 0x9000)) == m, 'munmaps after close_range')
    no_loss(recs)


def t_forkmt():
    forks, m = 50, 5
    p, recs = run_dump([target('pre_forkmt'), str(forks), str(m)], timeout=100)
    check(p.returncode == 0 and p.stdout == 'forks=%d bad=0\n' % forks,
          'target ran: %d %r' % (p.returncode, p.stdout))
    pid = root_pid(recs)
    kids = [h for h in hellos(recs) if num(h['pid']) != pid]
    check(len(kids) == forks, '%d child hellos, want %d' % (len(kids), forks))
    fk = calls(recs, pid, 'fork')
    check(sorted(num(r['result']) for r in fk) == sorted(num(h['pid']) for h in kids),
          'fork records name the children')
    for h in kids:
        c = num(h['pid'])
        check(h['flags'] == 'forked' and num(h['ppid']) == pid, 'child hello %s' % h)
        mine = calls(recs, c)
        check(len(mine) == m and all(num(r['a1']) == 0x6000 for r in mine),
              'child %d: %d calls, want %d mmaps' % (c, len(mine), m))
        check(sorted(num(r['seq']) for r in mine) == list(range(1, m + 1)),
              'child seq restarts at 1')
    check(len({(h['pid'], h['ring']) for h in kids}) == forks, 'a ring per child')
    check_mappings(recs)
    no_loss(recs)


def t_spawn():
    m = 4
    p, recs = run_dump([target('pre_spawn'), str(m)])
    check(p.returncode == 0 and p.stdout == 'vfork=0 spawn=0\n', 'target ran: %r' % p.stdout)
    pid = root_pid(recs)
    check(len(calls(recs, pid, 'vfork')) == 1, 'vfork recorded in the parent')
    kids = [h for h in hellos(recs) if num(h['pid']) != pid]
    check(len(kids) == 2, 'two child images registered: %s' % kids)
    for h in kids:
        c = num(h['pid'])
        check(h['flags'] == 'none' and num(h['ppid']) == pid, 'child hello %s' % h)
        check(len(calls(recs, c, 'mmap', 0x8000)) == m, 'child %d calls' % c)
    no_loss(recs)


def t_exec():
    a, b = 3, 4
    p, recs = run_dump([target('pre_exec'), str(a), str(b)])
    check(p.returncode == 0 and p.stdout == 'second\n', 'target ran: %r' % p.stdout)
    pid = root_pid(recs)
    mine = [(i, r) for i, r in enumerate(recs)
            if r['type'] in ('hello', 'call') and num(r['pid']) == pid]
    seq = [(r['type'], r.get('flags'), r.get('a1')) for _, r in mine]
    want = ([('hello', 'none', None)] + [('call', None, '0x2000')] * a +
            [('hello', 'execed', None)] + [('call', None, '0xa000')] * b)
    check(seq == want, 'record order:\n%s\nwant\n%s' % (seq, want))
    check_mappings(recs)
    no_loss(recs)


def t_dlopen():
    exe = target('pre_dlopen')
    dyn = subprocess.run(['readelf', '-d', exe], capture_output=True, text=True).stdout
    check('RUNPATH' in dyn and '$ORIGIN' in dyn, 'target has DT_RUNPATH=$ORIGIN:\n' + dyn)
    plain = run_plain([exe], env={'LD_LIBRARY_PATH': ''})
    check(plain.stdout == 'answer=42\ndlclose=0\n', 'plain: %r' % plain.stdout)
    # The library is found from the RUNPATH of the caller only: run from
    # elsewhere so the cwd cannot help.
    p, recs = run_dump([exe], env={'LD_LIBRARY_PATH': ''})
    check(p.stdout == plain.stdout and p.returncode == 0, 'under shim: %r' % p.stdout)
    pid = root_pid(recs)
    dl = calls(recs, pid, 'dlopen')
    check(len(dl) == 1 and dl[0].get('name') == 'libpre_dlib.so', 'dlopen record %s' % dl)
    check(num(dl[0]['a0']) == 2, 'mode RTLD_NOW')
    check(len(calls(recs, pid, 'dlclose')) == 1, 'dlclose record')
    check(int(dl[0]['nframes']) >= 1, 'dlopen has a stack')
    check_mappings(recs)
    no_loss(recs)


def t_resync():
    """A dlopen/dlclose is followed, before the next hooked call, by a RESYNC
    hello and a full snapshot (ld.so's own mappings are invisible to hooks)."""
    exe = target('pre_dlopen')
    p, recs = run_dump([exe], env={'LD_LIBRARY_PATH': ''})
    check(p.returncode == 0 and p.stdout == 'answer=42\ndlclose=0\n', 'target ran: %r' % p.stdout)
    pid = root_pid(recs)
    mine = [r for r in recs if r['type'] in ('hello', 'call') and num(r['pid']) == pid]
    seq = [(r['type'], r.get('flags') or r.get('kind'), r.get('a1')) for r in mine]
    want = [('hello', 'none', None),
            ('call', 'dlopen', None), ('hello', 'resync', None),
            ('call', 'mmap', '0xd000'), ('call', 'munmap', '0xd000'),
            ('call', 'dlclose', None), ('hello', 'resync', None),
            ('call', 'mmap', '0xe000'), ('call', 'munmap', '0xe000')]
    check([(t, k, a if t == 'call' and k in ('mmap', 'munmap') else None) for t, k, a in seq] == want,
          'record order:\n%s\nwant\n%s' % (seq, want))
    snaps = snapshots(recs, pid)
    check(len(snaps) == 3, 'three snapshots')
    start, opened, closed = snaps
    for h in (opened[0], closed[0]):
        check(h['exe'] == start[0]['exe'] and h['ppid'] == start[0]['ppid'] and
              h['abi'] == start[0]['abi'] and num(h['parent_seq']) == 0, 'resync hello %s' % h)
    check(num(start[0]['time']) < num(opened[0]['time']) < num(closed[0]['time']), 'hello times')
    lib = os.path.join(os.path.realpath(TDIR), 'libpre_dlib.so')

    def has_lib(maps):
        return [m for m in maps if m.get('path') == lib]
    check(not has_lib(start[1]), 'library not mapped at start')
    check(len(has_lib(opened[1])) >= 2 and any(m['prot'] == 'r-x' for m in has_lib(opened[1])),
          'library mapped after dlopen: %s' % [m.get('path') for m in opened[1]])
    check(not has_lib(closed[1]), 'library gone after dlclose')
    # The mmap that follows the snapshot is not in it.
    mm = calls(recs, pid, 'mmap', 0xd000)[0]
    addr = num(mm['result'])
    check(not [m for m in opened[1] if num(m['start']) <= addr < num(m['end']) and
               num(m['end']) - num(m['start']) == 0xd000], 'snapshot taken before the mmap')
    check_mappings(recs)
    no_loss(recs)


def t_resync_mt():
    """Threads keep mapping while main dlopens/dlcloses K times: exactly one
    resync snapshot per dlopen/dlclose, each complete, every call kept."""
    n, k = 4, 25
    p, recs = run_dump([target('pre_dlthreads'), str(n), str(k)], env={'LD_LIBRARY_PATH': ''})
    check(p.returncode == 0 and p.stdout.startswith('maps='), 'target ran: %r' % p.stdout)
    pid = root_pid(recs)
    maps = int(p.stdout.split('=')[1])
    got = len(calls(recs, pid, 'mmap', 0x5000))
    check(got == maps and len(calls(recs, pid, 'munmap', 0x5000)) == maps,
          'worker calls: %d recorded, %d made' % (got, maps))
    check(len(calls(recs, pid, 'dlopen')) == k and len(calls(recs, pid, 'dlclose')) == k,
          'dl calls')
    order = [r['kind'] if r['type'] == 'call' else r['flags'] for r in recs
             if (r['type'] == 'call' and r['kind'] in ('dlopen', 'dlclose') or
                 r['type'] == 'hello') and num(r['pid']) == pid]
    check(order == ['none'] + ['dlopen', 'resync', 'dlclose', 'resync'] * k,
          'each dl call followed by exactly one resync: %s' % order)
    check_mappings(recs)
    no_loss(recs)


def symbols(exe):
    out = subprocess.run(['nm', '-S', exe], capture_output=True, text=True, check=True).stdout
    syms = {}
    for l in out.splitlines():
        f = l.split()
        if len(f) == 4:
            syms[f[3]] = (int(f[0], 16), int(f[1], 16))
    return syms


def stack_frames(env):
    exe = target('pre_stack')
    p, recs = run_dump([exe], env=env)
    check(p.returncode == 0, 'target ran')
    addrs = dict(kv.split('=') for kv in p.stdout.split())
    syms = symbols(exe)
    bias = int(addrs['a'], 16) - syms['pre_stack_a'][0]
    rng = {}
    for f in 'abc':
        start, size = syms['pre_stack_' + f]
        rng[f] = (start + bias, start + bias + size)
        check(rng[f][0] == int(addrs[f], 16), 'symbol %s matches' % f)
    pid = root_pid(recs)
    mm = calls(recs, pid, 'mmap', 0xb000)
    check(len(mm) == 1, 'one mmap record')
    frames = [int(x, 16) for x in mm[0]['frames'].split(',') if x]
    check(len(frames) == int(mm[0]['nframes']), 'frames listed')
    where = []
    for fr in frames:
        name = next((f for f, (lo, hi) in rng.items() if lo < fr <= hi), None)
        where.append(name)
    return frames, where


def t_stack():
    frames, where = stack_frames({})
    check(where[:3] == ['c', 'b', 'a'], 'innermost frames c, b, a: %s' % where)
    check(len(frames) > 3, 'frames continue past a (main, libc): %d' % len(frames))


def t_depth():
    frames, where = stack_frames({'FAULTLINE_DEPTH': '2'})
    check(len(frames) == 2 and where == ['c', 'b'], 'depth 2: %s' % where)


def t_ringfull():
    n = 3000
    # Lossless: the collector reads nothing for 400 ms; producers wait.
    p, recs = run_dump([target('pre_ringfull'), str(n)], opts=['-p', '400'])
    check(p.returncode == 0, 'target ran')
    pid = root_pid(recs)
    got = len(calls(recs, pid, 'mmap', 0xc000)) + len(calls(recs, pid, 'munmap', 0xc000))
    check(got == 2 * n, 'lossless: %d of %d' % (got, 2 * n))
    no_loss(recs)
    # wait_ms = 1: the first record that waits too long is dropped and
    # recording stops in that process (one wait, not one per record): the
    # calls delivered are the first ones, in order, and the loss says why.
    p, recs = run_dump([target('pre_ringfull'), str(n)], opts=['-p', '400', '-w', '1'])
    check(p.returncode == 0 and p.stdout == 'done %d\n' % n, 'target ran')
    pid = root_pid(recs)
    got = calls(recs, pid, None, 0xc000)
    l = loss(recs)
    check(l['dropped'] == 1 and l['stopped_timeout'] == 1, 'stopped once: %s' % l)
    check(0 < len(got) < 2 * n, 'some calls delivered: %d' % len(got))
    seqs = [num(r['seq']) for r in got]
    check(seqs == list(range(seqs[0], seqs[0] + len(got))), 'delivered calls are consecutive')
    check(l['unpublished'] == 0 and l['corrupt'] == 0, 'no holes')


def t_fds():
    """The shim keeps no fd in the target: after 3000 recorded calls from
    three call sites (every stack unwound), /proc/self/fd is the same."""
    n = 3000
    plain = run_plain([target('pre_fds'), str(n)])
    p, recs = run_dump([target('pre_fds'), str(n)])
    check(plain.returncode == 0 and p.returncode == 0, 'target ran')
    check(p.stdout == plain.stdout, 'fd set differs:\n%s\nvs plain\n%s' % (p.stdout, plain.stdout))
    pid = root_pid(recs)
    mm = calls(recs, pid, 'mmap', 0x3000)
    check(len(mm) == n + n // 3 and all(num(r['nframes']) > 0 for r in mm), 'calls with stacks')
    no_loss(recs)


def t_nochannel():
    plain = run_plain([target('pre_all')])
    for env in ({'LD_PRELOAD': SHIM},
                {'LD_PRELOAD': SHIM, 'FAULTLINE_CHANNEL': '/nonexistent/x'},
                {'LD_PRELOAD': SHIM, 'FAULTLINE_CHANNEL': '/dev/zero'}):
        p = run_plain([target('pre_all')], env=env)
        check((p.stdout, p.stderr, p.returncode) == (plain.stdout, plain.stderr, plain.returncode),
              'identical with %s:\n%s' % (env, p.stdout))


def t_hostile():
    """A target that unmaps, maps over or zeroes the shim's channel memory
    is not crashed or hung by the shim: same output and status as plain,
    and the shim says why it stopped (or, zeroed, times out once)."""
    n = 2000
    for mode, opts, reason in (('unmap', [], 'stopped_taken_over'),
                               ('fixed', [], 'stopped_taken_over'),
                               ('zero', ['-w', '300'], None)):
        plain = run_plain([target('pre_hostile'), mode, str(n)])
        p, recs = run_dump([target('pre_hostile'), mode, str(n)], opts=opts, timeout=60)
        check(plain.returncode == 0 and p.returncode == 0 and p.stdout.startswith('done %d' % n),
              '%s: target ran: %d %r %r' % (mode, p.returncode, p.stdout, p.stderr))
        l = loss(recs)
        if reason:
            check(l[reason] == 1, '%s: %s == 1: %s' % (mode, reason, l))
            # nothing after the attack was recorded: the shim stopped before the call
            check(len(calls(recs, root_pid(recs), 'mmap', 0xd000)) == 0, '%s: no call after' % mode)


def _stop_collector_midway(how):
    """Run pre_ringfull under chan_dump (which waits 400 ms before reading and
    would let a producer wait 60 s); `how` the collector once the ring is
    full.  Returns (seconds until the target printed, chan_dump process)."""
    import select
    import signal
    import time
    f = tempfile.NamedTemporaryFile('r', suffix='.dump')
    p = subprocess.Popen([DUMP, '-o', f.name, '-p', '400', '-w', '60000', SHIM, '--',
                          target('pre_ringfull'), '3000'], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGSTOP if how == 'stop' else signal.SIGKILL)
    r, _, _ = select.select([p.stdout], [], [], 20)
    line = p.stdout.readline() if r else ''
    took = time.monotonic() - t0
    return took, line, p, f


def t_collector_stopped():
    """A stopped collector (SIGSTOP) is noticed: the target finishes at
    once instead of waiting 60 s per record, and the loss says why."""
    import signal
    took, line, p, f = _stop_collector_midway('stop')
    os.kill(p.pid, signal.SIGCONT)
    p.wait(60)
    recs = [parse(l) for l in f.read().splitlines() if l]
    check(line == 'done 3000\n', 'target finished while the collector was stopped: %r' % line)
    check(took < 5, 'target finished %.2fs after the stop' % took)
    l = loss(recs)
    check(l['stopped_collector'] == 1 and l['dropped'] == 1, 'one stop, one drop: %s' % l)


def t_collector_zombie():
    """A collector killed but not reaped (a zombie: kill(pid, 0) still
    succeeds) is noticed the same way."""
    took, line, p, f = _stop_collector_midway('kill')
    check(line == 'done 3000\n', 'target finished while the collector was a zombie: %r' % line)
    check(took < 5, 'target finished %.2fs after the kill' % took)
    p.wait(60)


if __name__ == '__main__':
    fn = globals().get('t_' + TEST)
    if not fn:
        fail('no test ' + TEST)
    fn()
    print('ok', TEST)
