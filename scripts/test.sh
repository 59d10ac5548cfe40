#!/usr/bin/env bash
# The test command: installs what is missing, builds the debug preset with warnings as
# errors, and runs every test that is not behind a flag (soak and long fuzz runs are:
# ECHOLAB_LONG_TESTS=1 includes them). Extra arguments go to ctest (e.g. -R stream).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

preset=ci
jobs=$(nproc)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"

exclude=(-LE 'soak|fuzz-long')
if [ "${ECHOLAB_LONG_TESTS:-0}" = 1 ]; then
  exclude=()
fi
ctest --preset "$preset" -j "$jobs" "${exclude[@]}" "$@"
