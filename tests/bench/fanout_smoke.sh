#!/usr/bin/env bash
# CI's short benchmark: a real node, sbbench's fan-out (publishing on a
# WebSocket and through the API), reconnect-storm and API publish scenarios.
# It checks correctness under load (nothing lost, duplicated or out of order,
# no failed publish: sbbench exits 1 otherwise) and prints the figures
# without asserting on time.
set -euo pipefail
server=$1
bench=$2
config=$3
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$server" --config "$config" --http.port=0 --node.data_dir="$dir/data" \
  --limits.rate_limit=1000000 --limits.rate_limit_burst=1000000 >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  port=$(grep 'listening' "$dir/log" | grep -o 'port=[0-9]*' | head -1 | cut -d= -f2 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start:"; cat "$dir/log"; exit 1; }
"$bench" fanout --port "$port" --secret dev-secret-change-me --subscribers 300 --messages 500 \
  --server-pid "$pid"
"$bench" fanout --port "$port" --secret dev-secret-change-me --subscribers 300 --messages 300 \
  --rate 500 --server-pid "$pid"
"$bench" fanout --port "$port" --secret dev-secret-change-me --subscribers 300 --channels 30 \
  --messages 50 --server-pid "$pid"
"$bench" fanout --port "$port" --secret dev-secret-change-me --api-key dev-api-key --via api \
  --subscribers 300 --channels 3 --messages 200 --server-pid "$pid"
"$bench" replay --port "$port" --secret dev-secret-change-me --subscribers 300 --messages 200 \
  --replay 100
"$bench" publish --port "$port" --api-key dev-api-key --subscribers 8 --seconds 1 \
  --server-pid "$pid"
