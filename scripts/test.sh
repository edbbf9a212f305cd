#!/usr/bin/env bash
# Runs the whole test suite on a built tree (scripts/setup.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900 "$@"
