#!/usr/bin/env bash
# Peer comparisons on the same demo-city Parquet files: the heatmap against Python polars +
# polars-h3, order-1 Markov attribution against ChannelAttribution, placement against spopt MCLP.
# Usage: benches/peers/run.sh [SIZES...]   (default: 100k 1M; 10M takes minutes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
data="${CUSTMAP_BENCH_DATA:-$target/custmap-bench-data}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
[ -x "$here/.venv/bin/python" ] || python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
(cd "$root" && cargo build --release -p custmap)
mkdir -p "$data"
[ $# -gt 0 ] || set -- 100k 1M
"$here/.venv/bin/python" "$here/compare_heatmap.py" "$target/release/custmap" "$data" "$@"
"$here/.venv/bin/python" "$here/compare_markov.py" "$target/release/custmap" "$data" "$@"
"$here/.venv/bin/python" "$here/compare_mclp.py" "$target/release/custmap" "$data" "$@"
