#!/usr/bin/env bash
# The test command: installs what is missing, builds the debug preset with warnings as
# errors and runs every test that is not behind a flag, then builds the libFuzzer harnesses
# with clang and gives each a short run. ECHOLAB_LONG_TESTS=1 adds the soak and long fuzz
# runs. Extra arguments go to the main ctest (e.g. -R stream).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
long=${ECHOLAB_LONG_TESTS:-0}

cmake --preset ci >/dev/null
cmake --build --preset ci -j "$jobs"
if [ "$long" = 1 ]; then
  ctest --preset ci -j "$jobs" "$@"
else
  ctest --preset ci -j "$jobs" -LE 'soak|fuzz-long' "$@"
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs" --target fuzzers
if [ "$long" = 1 ]; then
  ctest --preset fuzz -L 'fuzz'
else
  ctest --preset fuzz -L '^fuzz$'
fi
