#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) into
# build-fuzz/ and runs each for SECONDS (default 60), one after the other.
#   tools/fuzz.sh [SECONDS] [TARGET...]     targets: ws_codec wire jwt http config
# Each starts from its seed corpus in tests/fuzz/corpus/TARGET and keeps
# what it finds new in build-fuzz/corpus/TARGET. A crash, leak, sanitizer
# report or timeout fails the script; the input that caused it is saved as
# build-fuzz/artifacts/TARGET-crash-* (replay: build-fuzz/tests/fuzz/fuzz_TARGET FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(ws_codec wire jwt http config)

tools/setup.sh fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DSB_FUZZ=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-fuzz -j "$(nproc)"

# The largest input each parser takes from a client: a WebSocket message
# (http.max_frame_bytes' default), a token within the 16 KiB header limit,
# a request with a body, a config file.
declare -A max_len=([ws_codec]=66000 [wire]=65536 [jwt]=16384 [http]=65536 [config]=65536)

mkdir -p build-fuzz/artifacts
failed=()
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "fuzz.sh: unknown target '$t'" >&2; exit 2; }
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/fuzz_$t.log"
  rc=0
  "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$t-" \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  corpus=$(find "build-fuzz/corpus/$t" -type f | wc -l)
  if ((rc)); then
    failed+=("$t")
    echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; log $log:"
    grep -m1 -E 'ERROR: |runtime error|deadly signal|Timeout|out-of-memory' "$log" || true
    grep -m12 -E '^ +#[0-9]+ ' "$log" | cut -c1-240 || true
    grep -E '^SUMMARY|Test unit written' "$log" || true
  else
    echo "fuzz $t: ${execs:-?} executions in ${seconds} s, no crash (corpus: $corpus new inputs)"
  fi
done
((${#failed[@]} == 0)) || { echo "fuzz.sh: findings in: ${failed[*]}"; exit 1; }
