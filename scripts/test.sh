#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install dependencies, build, run every test suite.  Set FAULTLINE_REQUIRE_BPF=1 to make the
# eBPF tests fail instead of skipping where eBPF is unavailable (CI does), WERROR=1 for -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
meson test -C build --print-errorlogs --num-processes 2 "$@"
