#!/usr/bin/env bash
# Local engine vs a localhost Ballista cluster (custmap's scheduler + 2 executors) on the same
# demo city: wall time of the CLI run and peak memory (max RSS) of every process, for the heatmap
# and the journey reduction (attribution). On one 2-core machine the cluster is not faster; the
# point is how memory per process grows with the data.
# Usage: [CUSTMAP_LOCAL_MAX_GB=22] benches/cluster/run.sh CUSTOMERS [CUSTOMERS ...]
# (the demo city has about 2.44 touchpoints per customer)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release --workspace --all-features)
bin="$target/release/custmap"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

rss() { awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2/1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }
timed() { local log="$1"; shift; /usr/bin/time -v "$@" >"$log.out" 2>"$log"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "| customers | touchpoints | job | engine | wall | client peak | scheduler peak | executor peaks |"
echo "|---|---|---|---|---|---|---|---|"
for n in "$@"; do
  data="${CUSTMAP_BENCH_DATA:-$target/custmap-bench-data}/city-$n"
  [ -f "$data/touchpoints.parquet" ] || "$bin" demo --out "$data" --customers "$n" --format parquet >/dev/null
  tps=$("$root/benches/peers/.venv/bin/python" -c "import pyarrow.parquet as pq; print(pq.ParquetFile('$data/touchpoints.parquet').metadata.num_rows)" 2>/dev/null || echo "?")
  for job in heatmap attribution; do
    case $job in
      heatmap) args=(heatmap "$data" --res 9 --location both --out "$work/out.parquet") ;;
      attribution) args=(attribution "$data" --model markov --out "$work/out.csv") ;;
    esac
    # The local run may be capped (CUSTMAP_LOCAL_MAX_GB) so that running out of memory is a clean
    # failure of that run instead of the kernel's OOM killer.
    cap=unlimited; [ -n "${CUSTMAP_LOCAL_MAX_GB:-}" ] && cap=$((CUSTMAP_LOCAL_MAX_GB * 1024 * 1024))
    if (ulimit -v "$cap"; timed "$work/local.log" "$bin" "${args[@]}" --engine local); then
      echo "| $n | $tps | $job | local | $(wall "$work/local.log") | $(rss "$work/local.log") | | |"
    else
      why="$(grep -m1 -iE 'error|memory|killed' "$work/local.log" | cut -c1-80)"
      echo "| $n | $tps | $job | local | failed after $(wall "$work/local.log"): $why | $(rss "$work/local.log") | | |"
    fi

    sp=$(free_port)
    /usr/bin/time -v "$bin" cluster scheduler --bind "127.0.0.1:$sp" >/dev/null 2>"$work/sched.log" &
    pids+=($!); sched=$!
    execs=()
    for i in 1 2; do
      fp=$(free_port); gp=$(free_port)
      /usr/bin/time -v "$bin" cluster executor --scheduler "127.0.0.1:$sp" --bind "127.0.0.1:$fp" --grpc-port "$gp" \
        --cores 1 --work-dir "$work" >/dev/null 2>"$work/exec$i.log" &
      pids+=($!); execs+=($!)
    done
    sleep 4
    if timed "$work/client.log" "$bin" "${args[@]}" --engine "ballista://127.0.0.1:$sp"; then
      result="$(wall "$work/client.log")"
    else
      result="failed: $(grep -v '^\s' "$work/client.log" | grep error | head -1 | cut -c1-120)"
    fi
    for p in "${execs[@]}" "$sched"; do kill -TERM "$(pgrep -P "$p" || echo "$p")" 2>/dev/null || true; done
    wait "${execs[@]}" "$sched" 2>/dev/null || true
    echo "| $n | $tps | $job | 2 executors | $result | $(rss "$work/client.log") | $(rss "$work/sched.log") | $(rss "$work/exec1.log"), $(rss "$work/exec2.log") |"
  done
done
