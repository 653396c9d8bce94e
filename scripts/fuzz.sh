#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer harnesses in fuzz/ with clang (ASan + UBSan) and run each for a fixed time
# budget on its corpus (fuzz/corpus/NAME).  A meson test (suite fuzz) runs it on every change.
#   scripts/fuzz.sh BUILD_DIR [SECONDS]    (default 30; the corpus in the repo is not modified)
# A crash leaves its input as BUILD_DIR/fuzz/crash-*; reproduce with BUILD_DIR/fuzz/fuzz_channel FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "$1")
secs=${2:-30}
out="$build/fuzz"
mkdir -p "$out/new"
# the collector's sources as meson lists them, but the loop and the launcher (the harness is the loop)
mapfile -t collector < <(sed -n "/^collector_sources = files(/,/)/p" collector/meson.build |
                         grep -o "'[a-z_0-9]*\.c'" | tr -d "'" | grep -vx -e record.c -e launch.c)
src=(fuzz/fuzz_channel.c "${collector[@]/#/collector/}")
bin="$out/fuzz_channel"
if [ ! -x "$bin" ] || [ -n "$(find fuzz collector common -newer "$bin" -name '*.[ch]' | head -1)" ]; then
    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
          -Icommon -Icollector -I"$build/common" -I"$build" "${src[@]}" -o "$bin" \
          $(pkg-config --cflags --libs sqlite3 libdw libelf zlib) -lpthread
fi
# -max_len: the raw mode covers a descriptor and a few slots; new inputs go to a scratch dir
"$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="$out/" "$out/new" fuzz/corpus/channel
