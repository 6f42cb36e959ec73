"""Runs the heatmap job in custmap and in Python polars + polars-h3 on the same Parquet files,
checks the answers agree, then times both (median of runs after a warm-up) and prints ratios.

Usage: python compare_heatmap.py CUSTMAP_BINARY DATA_ROOT [SIZES...]   (sizes: 100k 1M 10M)
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import polars as pl

HERE = os.path.dirname(os.path.abspath(__file__))
SEGMENT = "budget >= 3000000 AND desired_area_sqm >= 120"
SIZES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
RUNS = int(os.environ.get("RUNS", "3"))


def timed(cmd):
    """Wall seconds, CPU seconds and the in-process seconds a peer script reports."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        out, err = p.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The peer script reports its own in-process time (without interpreter start and imports).
    inner = [float(t.split("=")[1]) for t in out.decode().split() if t.startswith("seconds=")]
    return wall, cpu, inner[0] if inner else wall


def peak_rss(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def ensure_city(binary, root, size):
    d = os.path.join(root, f"city-{size}")
    if not os.path.exists(os.path.join(d, "truth.json")):
        subprocess.run([binary, "demo", "--out", d, "--customers", str(SIZES[size]), "--format", "parquet"], check=True)
    return d


def check_agreement(ours_csv, peer_csv):
    a = pl.read_csv(ours_csv).sort("hex_id")
    b = pl.read_csv(peer_csv).sort("hex_id")
    assert a["hex_id"].to_list() == b["hex_id"].to_list(), "cell sets differ"
    for c in ["customers", "prospects", "buyers", "deals"]:
        assert (a[c] == b[c]).all(), f"{c} differs"
    for c in ["revenue", "purchasing_power"]:
        rel = ((a[c] - b[c]).abs() / b[c].abs().clip(lower_bound=1)).max()
        assert rel < 1e-9, f"{c} differs by {rel}"
    return a.height


def main():
    binary, root = sys.argv[1], sys.argv[2]
    sizes = sys.argv[3:] or ["100k", "1M"]
    rows = []
    for size in sizes:
        d = ensure_city(binary, root, size)
        ours_csv, peer_csv = os.path.join(root, f"ours-{size}.csv"), os.path.join(root, f"peer-{size}.csv")
        ours = [binary, "heatmap", d, "--res", "9", "--location", "work", "--where", SEGMENT, "--k", "1", "--out", ours_csv]
        peer = [sys.executable, os.path.join(HERE, "heatmap_polars_h3.py"), d, "9", peer_csv]
        timed(ours), timed(peer)  # warm-up, and the outputs to compare
        cells = check_agreement(ours_csv, peer_csv)
        results = {}
        for name, cmd in [("custmap", ours), ("polars+polars-h3", peer)]:
            runs = [timed(cmd) for _ in range(RUNS)]
            results[name] = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
                peak_rss(cmd),
                statistics.median(r[2] for r in runs),
            )
        (ow, oc, om, _), (pw, pc, pm, pin) = results["custmap"], results["polars+polars-h3"]
        rows.append(
            dict(size=size, cells=cells, ours_wall=ow, ours_cpu=oc, ours_mib=om, peer_wall=pw, peer_cpu=pc, peer_mib=pm, peer_inner=pin)
        )
        print(json.dumps(rows[-1]), flush=True)
    print()
    print(
        "| customers | cells | custmap wall / CPU s | peak MiB | polars+polars-h3 wall / CPU s | in-process s | peak MiB "
        "| wall ratio custmap/peer |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['cells']} | {r['ours_wall']:.2f} / {r['ours_cpu']:.2f} | {r['ours_mib']:.0f} | "
            f"{r['peer_wall']:.2f} / {r['peer_cpu']:.2f} | {r['peer_inner']:.2f} | {r['peer_mib']:.0f} | "
            f"{r['ours_wall'] / r['peer_wall']:.2f} |"
        )


if __name__ == "__main__":
    main()
