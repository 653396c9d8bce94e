#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install dependencies, build, run every test suite.  Set FAULTLINE_REQUIRE_BPF=1 to make the
# eBPF tests fail instead of skipping where eBPF is unavailable (CI does), WERROR=1 for -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
# one plain closing line, whatever the runner printed above
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
n = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    r = json.loads(line).get("result", "")
    key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
    n[key] += 1
print(f"{n['OK']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
PY
exit $status
