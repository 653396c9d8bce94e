#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_channel (fuzz/corpus/channel): records as
the shim sends them (layouts from common/faultline.h), in the harness's
input format (see fuzz/fuzz_channel.c).  usage: fuzz/make_corpus.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "channel")
PATH_MAX, NAME_MAX = 512, 256


def rec(typ, body, nframes=0):
    return struct.pack("<HHI", typ, nframes, 8 + len(body)) + body


def hello(pid=1, nmap=2, flags=0, exe=b"/bin/true"):
    return rec(1, struct.pack("<IIIIQQII", 4, pid, 0, flags, 1000, 0, 64, nmap) + exe.ljust(PATH_MAX, b"\0"))


def mapping(i, start, end, prot=5, path=b"/bin/true"):
    return rec(2, struct.pack("<IIQQQQIIII", 1, i, start, end, 0, 42, 8, 1, prot, 0) + path.ljust(PATH_MAX, b"\0"))


def call(kind, args, result, frames=(), name=b"", seq=1):
    body = struct.pack("<IIIiQQ6QqQII", kind, 1, 1, 0, 2000 + seq, seq, *args, result, 0, 0, 0)
    body += b"".join(struct.pack("<Q", f) for f in frames) + name
    return rec(3, body, len(frames))


def note(text):
    return rec(6, struct.pack("<II", 1, 0) + text.ljust(248, b"\0"))


def records(*rs, patch=True):
    return bytes([2 if patch else 0]) + b"".join(struct.pack("<H", len(r)) + r for r in rs)


SEEDS = {
    "hello_maps_calls": records(hello(), mapping(0, 0x400000, 0x401000), mapping(1, 0x7f0000000000, 0x7f0000021000, 3, b""),
                                call(1, (0, 0x3000, 3, 0x22, 2**64 - 1, 0), 0x7f0000100000, (0x401234, 0x401400)),
                                call(2, (0x7f0000100000, 0x3000, 0, 0, 0, 0), 0, (0x401250,), seq=2)),
    "dlopen_name": records(hello(nmap=0), call(13, (2, 0x1000, 0, 0, 0, 0), -1, (0x401000,), b"libm.so.6\0")),
    "fork_note": records(hello(nmap=0), call(9, (0,) * 6, 1234), note(b"stack unwinding disabled")),
    "mremap_brk": records(hello(nmap=0), call(5, (0x7f0000100000, 0x3000, 0x6000, 1, 0, 0), 0x7f0000200000),
                          call(6, (0x602000, 0, 0, 0, 0, 0), 0, seq=2), call(7, (4096, 0, 0, 0, 0, 0), 0x601000, seq=3)),
    "bad_sizes": records(rec(3, b"\0" * 10, 200), rec(1, b"\0" * 4), rec(9, b"x" * 30), patch=False),
    "raw_desc": bytes([1]) + struct.pack("<IIQQQQIIIIQ", 2, 1, 5, 2**63, 12345, 7, 0, 0, 9, 0, 0) +
                struct.pack("<Q", 1) + rec(3, b"\xff" * 200, 65535),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
