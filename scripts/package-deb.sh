#!/usr/bin/env bash
# Builds the release preset, packs echolab_<version>_<arch>.deb with CPack and checks it:
# its control fields (Depends from dpkg-shlibdeps plus python3), its contents (every shipped
# file, no test or benchmark binary), and the extracted package run from a clean root with
# the source tree hidden (tests/install_test.py --inside: the server, a one-cell
# echolab-bench run, echolab-plot). Nothing is installed into this system.
# With --clean-root, also a real install: a minimal Debian 12 root made with mmdebstrap from
# this host's apt sources, `apt-get install ./echolab_*.deb` in it (Depends resolved from the
# archive, nothing else preinstalled), and the same checks run there. That downloads about
# 250 MB and takes minutes.
# One line per check; exit 1 at the first failure. Not in the default test run: it builds
# a release tree.
set -euo pipefail
clean_root=false
case "${1:-}" in
  "") ;;
  --clean-root) clean_root=true ;;
  *) echo "usage: scripts/package-deb.sh [--clean-root]" >&2; exit 2 ;;
esac
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
  $clean_root && fail "--clean-root needs a private mount namespace (root)"
  exit 0
fi
unshare -m --propagation private /usr/bin/python3 "$source_dir/tests/install_test.py" --inside \
  "$source_dir" "$scratch/root/usr" "$scratch/work" || fail "the extracted package, run with the source tree hidden"
pass "the extracted package runs with the source tree hidden"
$clean_root || exit 0

if ! command -v mmdebstrap >/dev/null; then
  [ "$(id -u)" -eq 0 ] || fail "--clean-root needs mmdebstrap (apt-get install mmdebstrap)"
  apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null || fail "apt-get install mmdebstrap"
fi
sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$file" ] && sources+=("$file")
done
clean="$scratch/clean"
mmdebstrap --variant=apt --quiet bookworm "$clean" "${sources[@]}" >/dev/null \
  || fail "mmdebstrap: a minimal Debian 12 root from ${sources[*]:-the default mirror}"
pass "a minimal Debian 12 root in $clean"
cp "$deb" "$clean/tmp/"
cp "$source_dir/tests/install_test.py" "$clean/tmp/install_test.py"
mkdir -p "$clean/tmp/work"
cp /etc/resolv.conf "$clean/etc/resolv.conf"
# In a private mount namespace, so /proc and /dev inside the root vanish with it.
unshare -m --propagation private /bin/sh -c '
  mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev" || exit 1
  chroot "$1" /bin/sh -c "DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/$2 >/tmp/apt-install.log 2>&1" \
    || { tail -5 "$1/tmp/apt-install.log" >&2; exit 1; }
' sh "$clean" "$(basename "$deb")" || fail "apt-get install ./$(basename "$deb") in the clean root"
pass "apt-get installed $(basename "$deb") and its Depends into the clean root"
unshare -m --propagation private /bin/sh -c '
  mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev" || exit 1
  chroot "$1" /usr/bin/python3 /tmp/install_test.py --inside - /usr /tmp/work
' sh "$clean" || fail "the installed package, run in the clean root"
pass "the installed package runs in the clean root"
