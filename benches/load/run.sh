#!/usr/bin/env bash
# HTTP load test of `custmap serve` on loopback with wrk: requests per second and p50/p99 latency
# for a cached heatmap (the same request again and again) and an uncached one (every request a
# new segment, so the base is rebuilt). Usage: benches/load/run.sh [CUSTOMERS] [SECONDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
customers="${1:-1000000}"
seconds="${2:-20}"
data="${CUSTMAP_BENCH_DATA:-$target/custmap-bench-data}/load-$customers"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
(cd "$root" && cargo build --release -p custmap)
bin="$target/release/custmap"
[ -f "$data/customers.parquet" ] || "$bin" demo --out "$data" --customers "$customers" --format parquet
port=$((20000 + RANDOM % 20000))
store="$(mktemp -d)"
"$bin" serve "$data" --addr "127.0.0.1:$port" --data-dir "$store" 2>"$store/server.log" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$store"' EXIT
name="$(basename "$data")"
base="http://127.0.0.1:$port/api/v1/datasets/$name/heatmap"
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.5; done
echo "== $customers customers, $(nproc) cores, wrk 2 threads, ${seconds}s each"
first=$(curl -s -o /dev/null -w '%{time_total}' "$base?res=8")
echo "first request (builds the base): ${first}s"
keep="Requests/sec|Latency|50%|99%|requests in|Socket errors|Non-2xx"
echo "-- cached, 16 connections: GET $base?res=8"
wrk -t2 -c16 -d"${seconds}s" --latency "$base?res=8" | grep -E "$keep"
echo "-- uncached, 2 connections: every request a new segment (budget >= N), so the base is rebuilt"
wrk -t2 -c2 -d"${seconds}s" --timeout 10s --latency -s "$here/new_segment.lua" "$base?res=8" | grep -E "$keep"
echo "-- burst: 40 identical + 40 distinct uncached placements at once, /health polled meanwhile"
python3 "$here/burst.py" --customers "$customers" --bin "$bin"
echo "-- mixed: 16 connections for 30 s over heatmaps, attribution, funnel and placements"
python3 "$here/mixed.py" --customers "$customers" --bin "$bin"
