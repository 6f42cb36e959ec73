"""Runs the heatmap job in custmap and in each peer (Python polars + polars-h3, polars + h3ronpy,
DuckDB with h3ronpy cells) on the same Parquet files at res 7, 9 and 11 ($HEATMAP_RES), checks
every answer agrees, then times each (median of runs after a warm-up) and prints ratios.

Usage: python compare_heatmap.py CUSTMAP_BINARY DATA_ROOT [SIZES...]
  sizes: 100k 1M 10M (the realistic city), with -concentrated (the old city) or -unique (no
  coordinate repeats) appended: 1M-concentrated, 10M-unique
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
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
    """The demo city of `size`: "1M" is the realistic city (a building stock that grows with it:
    30,000 residential and 5,000 office buildings at 1M), "1M-concentrated" the old city (2,500 and
    800 at any size, kind to per-coordinate caching), "1M-unique" the realistic city with every home
    and work coordinate moved by up to ~50 m so no two repeat (the worst case)."""
    base, _, variant = size.partition("-")
    places = "concentrated" if variant == "concentrated" else "realistic"
    d = os.path.join(root, f"city-{base}-{places}")
    if not os.path.exists(os.path.join(d, "truth.json")):
        subprocess.run(
            [binary, "demo", "--out", d, "--customers", str(SIZES[base]), "--format", "parquet", "--places", places],
            check=True,
        )
    if variant != "unique":
        return d
    u = os.path.join(root, f"city-{base}-unique")
    if not os.path.exists(os.path.join(u, "customers.parquet")):
        os.makedirs(u, exist_ok=True)
        for name in os.listdir(d):
            if name != "customers.parquet" and not os.path.exists(os.path.join(u, name)):
                os.symlink(os.path.join(d, name), os.path.join(u, name))
        c = pl.read_parquet(os.path.join(d, "customers.parquet"))
        n = c.height
        jitter = lambda seed: pl.Series(np.random.default_rng(seed).uniform(-0.0005, 0.0005, n))  # noqa: E731
        c = c.with_columns(
            pl.col("home_lat") + jitter(1), pl.col("home_lng") + jitter(2), pl.col("work_lat") + jitter(3), pl.col("work_lng") + jitter(4)
        )
        c.write_parquet(os.path.join(u, "customers.parquet"))
    return u


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


PEERS = {
    "polars+polars-h3": "heatmap_polars_h3.py",
    "polars+h3ronpy": "heatmap_h3ronpy.py",
    "duckdb+h3ronpy": "heatmap_duckdb.py",
}
RESOLUTIONS = [int(r) for r in os.environ.get("HEATMAP_RES", "7,9,11").split(",")]


def measure(cmd):
    runs = [timed(cmd) for _ in range(RUNS)]
    return dict(
        wall=statistics.median(r[0] for r in runs),
        cpu=statistics.median(r[1] for r in runs),
        inner=statistics.median(r[2] for r in runs),
        mib=peak_rss(cmd),
    )


def main():
    binary, root = sys.argv[1], sys.argv[2]
    sizes = sys.argv[3:] or ["100k", "1M"]
    rows = []
    for size in sizes:
        d = ensure_city(binary, root, size)
        for res in RESOLUTIONS:
            ours_csv = os.path.join(root, f"ours-{size}-r{res}.csv")
            ours = [binary, "heatmap", d, "--res", str(res), "--location", "work", "--where", SEGMENT, "--k", "1", "--out", ours_csv]
            timed(ours)
            row = dict(size=size, res=res, custmap=measure(ours))
            for name, script in PEERS.items():
                peer_csv = os.path.join(root, f"peer-{name}-{size}-r{res}.csv")
                peer = [sys.executable, os.path.join(HERE, script), d, str(res), peer_csv]
                timed(peer)  # warm-up, and the output to compare
                row["cells"] = check_agreement(ours_csv, peer_csv)
                row[name] = measure(peer)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print("| customers | res | cells | custmap wall / CPU s | custmap MiB | " + " | ".join(f"{n} wall / CPU s (in-process) | MiB" for n in PEERS) + " | custmap / fastest peer |")
    print("|---|---|---|---|---|" + "---|---|" * len(PEERS) + "---|")
    for r in rows:
        c = r["custmap"]
        cols = [f"{r[n]['wall']:.2f} / {r[n]['cpu']:.2f} ({r[n]['inner']:.2f}) | {r[n]['mib']:.0f}" for n in PEERS]
        best = min(r[n]["wall"] for n in PEERS)
        print(f"| {r['size']} | {r['res']} | {r['cells']} | {c['wall']:.2f} / {c['cpu']:.2f} | {c['mib']:.0f} | " + " | ".join(cols) + f" | {c['wall'] / best:.2f} |")


if __name__ == "__main__":
    main()
