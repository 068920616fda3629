#!/usr/bin/env bash
# Installs what is missing, builds, and starts one node on 127.0.0.1:8000
# with configs/dev.json (data under ./data). Extra arguments are passed on,
# e.g. --http.port=8001.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec build/switchboard --config configs/dev.json "$@"
