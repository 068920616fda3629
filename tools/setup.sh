#!/usr/bin/env bash
# Installs the Debian 12 packages Switchboard needs (only those missing) and
# builds it (Release) into build/. Used by run-node.sh and run-tests.sh.
# `tools/setup.sh fuzz` installs what tools/fuzz.sh needs too (clang and its
# libFuzzer runtime) and builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build ccache libcaf-dev libboost-dev librocksdb-dev
          nlohmann-json3-dev doctest-dev libssl-dev openssl python3-websockets)
fuzz=false
if [ "${1:-}" = fuzz ]; then
  fuzz=true
  packages+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
$fuzz && exit 0

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
