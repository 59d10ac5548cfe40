#!/bin/sh
# Runs robustness tests of an existing build against the server of another preset's build
# (a ctest can only use its own build's binaries; the tests honour ECHOLAB_SERVER_BIN).
#   tests/robustness/run_in_preset.sh PRESET TEST_BUILD_DIR [ctest args...]
#   e.g. tests/robustness/run_in_preset.sh fortify build/debug -R robustness_fd_limits_test
# PRESET is configured and its echolab-server built in $ECHOLAB_PRESET_BUILD_DIR
# (default build/PRESET), then ctest runs in TEST_BUILD_DIR with ECHOLAB_SERVER_BIN set.
# The LD_PRELOAD shim test sets ASAN_OPTIONS=verify_asan_link_order=0 for ASan servers.
set -eu
preset=${1:?usage: run_in_preset.sh PRESET TEST_BUILD_DIR [ctest args...]}
test_build=${2:?usage: run_in_preset.sh PRESET TEST_BUILD_DIR [ctest args...]}
shift 2
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
preset_build=${ECHOLAB_PRESET_BUILD_DIR:-$source_dir/build/$preset}
cd "$source_dir"
cmake --preset "$preset" -B "$preset_build" >/dev/null
cmake --build "$preset_build" --target echolab-server -j "$(nproc)"
ECHOLAB_SERVER_BIN="$preset_build/servers/echolab-server" \
  ctest --test-dir "$test_build" -L robustness -LE soak --output-on-failure "$@"
