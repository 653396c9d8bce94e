#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The quick start: install dependencies, build, record the bundled demo program, print its report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
build/faultline record --force -o demo.db -- build/faultline-demo
echo
build/faultline report demo.db
