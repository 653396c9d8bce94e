#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what faultline needs to build and test on Debian 12 (run as root).
# Skips apt entirely when everything is already installed.
set -euo pipefail
PKGS=(meson ninja-build pkg-config gcc libc6-dev clang libclang-rt-14-dev llvm bpftool libbpf-dev libelf-dev zlib1g-dev
      libdw-dev libinih-dev libsqlite3-dev sqlite3 python3 binutils
      g++  # libstdc++'s __cxa_demangle demangles C++ symbols; tests/e2e has a C++ target
      libjemalloc2  # tests/heap: an allocator preloaded by the user
      libc6-dbg  # libc's compressed debug file: tests/e2e debug_cache_bpf, source lines of libc frames
      dwz  # tests/e2e debuglink: debug files sharing a dwz alternate file
      debuginfod  # tests/e2e debuglink: a debug file downloaded from a server (debuginfod, debuginfod-find)
      qemu-system-x86  # tests/vm boots Debian kernels
      golang-go chromium nodejs)  # tests/outputs: go tool pprof reads the pprof export; chromium opens the HTML report
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm drives the headless browser (tests/outputs); nodejs from elsewhere may already bring it
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "faultline: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
