#!/usr/bin/env bash
# Builds the release preset, packs echolab_<version>_<arch>.deb with CPack and checks it:
# its control fields (Depends from dpkg-shlibdeps plus python3), its contents (every shipped
# file, no test or benchmark binary), and the extracted package run from a clean root with
# the source tree hidden (tests/install_test.py --inside: the server, a one-cell
# echolab-bench run, echolab-plot). Nothing is installed into this system.
# One line per check; exit 1 at the first failure. Not in the default test run: it builds
# a release tree.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$(pwd -P)
build=build/release
jobs=${JOBS:-$(nproc)}

pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --preset release >/dev/null || fail "configure the release preset"
cmake --build --preset release -j "$jobs" >/dev/null || fail "build the release preset"
pass "release build in $build"

rm -f "$build"/echolab_*.deb
(cd "$build" && cpack -G DEB >/dev/null) || fail "cpack -G DEB"
debs=("$build"/echolab_*_"$(dpkg --print-architecture)".deb)
[ -f "${debs[0]}" ] || fail "no echolab_<version>_$(dpkg --print-architecture).deb in $build"
deb=${debs[0]}
pass "cpack made $deb"

info=$(dpkg-deb --info "$deb")
depends=$(printf '%s\n' "$info" | sed -n 's/^ Depends: //p')
for needed in 'libboost-program-options[0-9.]*' 'libstdc\+\+6' 'libc6' 'python3'; do
  printf '%s\n' "$depends" | tr ',' '\n' | grep -Eq "^ *${needed}( |$)" \
    || fail "Depends lacks $needed: $depends"
done
pass "Depends: $depends"
printf '%s\n' "$info" | grep -q '^ Recommends: .*python3-matplotlib' || fail "Recommends lacks python3-matplotlib"
printf '%s\n' "$info" | grep -q '^ Maintainer: .' || fail "no Maintainer"
printf '%s\n' "$info" | grep -q '^ Description: .' || fail "no Description"
pass "Recommends python3-matplotlib; Maintainer and Description set"

contents=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|')
expected=(/usr/bin/echolab-server /usr/bin/echolab-loadgen /usr/bin/echolab-bare-client
          /usr/bin/echolab-bench /usr/bin/echolab-compare /usr/bin/echolab-plot
          /usr/share/echolab/echolab-version.json /usr/share/echolab/bench/echolab_home.py
          /usr/share/echolab/bench/runner/main.py /usr/share/echolab/bench/compare/main.py
          /usr/share/echolab/bench/specs/quick.json /usr/share/echolab/plots/echolab_plot/main.py
          /usr/share/echolab/results/schema/bench-cell.schema.json)
for model in iterative fork thread prefork select epoll; do
  expected+=("/usr/libexec/echolab/twin-$model")
done
for path in "${expected[@]}"; do
  printf '%s\n' "$contents" | grep -qxF "$path" || fail "the package lacks $path"
done
pass "contents: all ${#expected[@]} expected files present"
unwanted=$(printf '%s\n' "$contents" | grep -E '_test$|_bench$|_fuzz$|/tests?/|__pycache__|\.pyc$' || true)
[ -z "$unwanted" ] || fail "the package holds test, benchmark or cache files: $unwanted"
pass "contents: no test, micro-benchmark, fuzzer or bytecode files"

scratch=$(mktemp -d /tmp/echolab-deb-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
dpkg-deb -x "$deb" "$scratch/root" || fail "dpkg-deb -x"
mkdir "$scratch/work"
pass "extracted into $scratch/root"
if ! unshare -m --propagation private true 2>/dev/null; then
  echo "skipped: running the extracted package (unshare -m is not permitted here)"
  exit 0
fi
unshare -m --propagation private /usr/bin/python3 "$source_dir/tests/install_test.py" --inside \
  "$source_dir" "$scratch/root/usr" "$scratch/work" || fail "the extracted package, run with the source tree hidden"
pass "the extracted package runs with the source tree hidden"
