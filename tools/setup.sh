#!/usr/bin/env bash
# Installs the Debian 12 packages Switchboard needs (only those missing) and
# builds it (Release) into build/. Used by run-node.sh and run-tests.sh.
# `tools/setup.sh fuzz` installs what tools/fuzz.sh needs too (clang and its
# libFuzzer runtime) and builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Django and Channels: the Python client's Django layer and its tests
# (clients/python). nodejs, chromium and the emoji font: the JavaScript
# client's tests and the demo page's browser test (clients/js).
packages=(g++ cmake ninja-build ccache libcaf-dev libboost-dev librocksdb-dev
          nlohmann-json3-dev doctest-dev libssl-dev openssl python3-websockets
          python3-django python3-django-channels python3-djangorestframework-simplejwt
          nodejs chromium fonts-noto-color-emoji)
fuzz=false
if [ "${1:-}" = fuzz ]; then
  fuzz=true
  packages+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's npm, unless npm came with another nodejs build (NodeSource's has it).
command -v npm >/dev/null || missing+=(npm)
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
