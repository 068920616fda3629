#!/usr/bin/env bash
# Builds Switchboard with AddressSanitizer and UndefinedBehaviorSanitizer
# (g++) into build-asan/ and runs the tests against it with ctest. Any
# sanitizer report aborts the process that made it, so the test fails; the
# report is in the test's output (an integration test prints its server's log).
#   tools/sanitizer-tests.sh [CTEST ARGS...]    e.g. -R 'unit|integration_sse'
# Without arguments: every test but the fan-out benchmark and test_hostile,
# whose RSS bounds are the Release build's (docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DSB_SANITIZE=address,undefined >/dev/null
# What the tests run; sbbench and log_bench would only add build time.
cmake --build build-asan -j "$(nproc)" --target switchboard sbctl unit_tests

# The integration harness passes these on to every server it starts.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizer/lsan.supp:print_suppressions=0
args=("$@")
((${#args[@]})) || args=(-E '^bench_|^integration_hostile$')
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" "${args[@]}"
