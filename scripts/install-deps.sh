#!/usr/bin/env bash
# Installs the Debian 12 packages echolab needs, only those missing. Idempotent; needs root
# (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake git pkg-config
  libboost-program-options-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark-tools
  liburing-dev zlib1g-dev
  openmpi-bin libopenmpi-dev
  libhdrhistogram-java default-jre-headless
  socat netcat-openbsd sockperf iproute2 procps
  python3 python3-matplotlib python3-jsonschema
  clang libclang-rt-14-dev valgrind
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: missing packages (${missing[*]}) and not root; install them or run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
