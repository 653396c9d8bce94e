#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Per-run CPU time of faultline's BPF programs (the kernel's bpf_stats), which
# a busy machine disturbs far less than wall times.
# usage: bench/progcost.sh FAULTLINE -- CMD [ARGS...]   (root; bpf_stats is restored)
set -euo pipefail
fl=$1; shift; [ "$1" = -- ] && shift
old=$(cat /proc/sys/kernel/bpf_stats_enabled)
trap 'echo "$old" > /proc/sys/kernel/bpf_stats_enabled' EXIT
echo 1 > /proc/sys/kernel/bpf_stats_enabled
db=$(mktemp -u /tmp/progcost.XXXXXX.db)
# sample this recorder's programs (other faultline runs may be loaded) until it exits: they vanish with it
"$fl" record --force -o "$db" -- "$@" >/dev/null 2>&1 &
rec=$!
best=""
while kill -0 "$rec" 2>/dev/null; do
    ids=$(grep -h '^prog_id:' /proc/$rec/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u | tr '\n' ' ' || true)
    cur=$(bpftool prog show -j 2>/dev/null | IDS="$ids" python3 -c '
import json, os, sys
ids = {int(x) for x in os.environ["IDS"].split()}
for p in json.load(sys.stdin):
    if p["id"] in ids and p.get("run_cnt"):
        print("%-16s %10d runs %8.0f ns/run %12d ns" % (p["name"], p["run_cnt"], p["run_time_ns"] / p["run_cnt"], p["run_time_ns"]))' || true)
    [ -n "$cur" ] && best=$cur
    sleep 0.2
done
rm -f "$db" "$db"-*
echo "$best"
