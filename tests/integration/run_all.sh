#!/bin/sh
# Runs every integration test file against a switchboard binary.
#   tests/integration/run_all.sh [path/to/switchboard]
# Exit status is non-zero if any file failed.
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${SWITCHBOARD_BIN:-$here/../../build/switchboard}}
status=0
for t in "$here"/test_*.py; do
  echo "=== $(basename "$t")"
  /usr/bin/python3 "$t" "$bin" || status=1
done
exit $status
