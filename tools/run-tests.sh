#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration,
# the client libraries' and the demo page's browser test) with ctest; then
# each fuzzer for 30 s (tools/fuzz.sh) and the tests against an ASan + UBSan
# build (tools/sanitizer-tests.sh). Also what CI runs; the parts' times are
# in docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."

timed() {
  local start=$SECONDS
  "$@"
  echo "run-tests: '$*' took $((SECONDS - start)) s"
}

timed tools/setup.sh
# The JavaScript client's dev dependencies (ws, puppeteer-core), exactly as locked.
timed bash -c 'cd clients/js && npm ci --no-audit --no-fund --loglevel=error'
timed ctest --test-dir build --output-on-failure -j "$(nproc)"
timed tools/fuzz.sh 30
timed tools/sanitizer-tests.sh
