#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, runs a benchmark spec
# (default: quick, about 3.5 minutes on 2 cores) and draws its plots.
#   scripts/run.sh                      # quick spec
#   scripts/run.sh --spec full          # any echolab-bench arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"

run_id="$(date -u +%Y%m%dT%H%M%SZ)-run"
bench/echolab-bench --run-id "$run_id" "$@"
plots/echolab-plot "results/$run_id"
echo "report: results/$run_id/figures/report.html"
