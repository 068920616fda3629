#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit and
# integration) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
