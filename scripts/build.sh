#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configure (once) and build faultline into build/.  WERROR=1 makes warnings errors.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
    args=(--buildtype=debugoptimized)
    [ "${WERROR:-0}" = 1 ] && args+=(--werror)
    meson setup build "${args[@]}" >/dev/null
fi
ninja -C build >/dev/null
