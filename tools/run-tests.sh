#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration,
# the JavaScript client's and the demo page's browser test) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# The JavaScript client's dev dependencies (ws, puppeteer-core), exactly as locked.
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
ctest --test-dir build --output-on-failure -j "$(nproc)"
