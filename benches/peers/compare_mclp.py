"""Budgeted coverage in custmap against spopt's MCLP on the same sites and prospects: every site
costs 1 and the budget is P, so custmap's placement is the maximal covering location problem.
Checks the answers are consistent (custmap's reach <= the exact optimum <= custmap's certified
upper bound, and reach >= optimum * (1 - gap)), then times both and prints ratios.

custmap's time is the whole CLI run (read and validate customers and sites, coverage, greedy,
the bound at every prefix, baselines, the reach-versus-budget curve, write); the peer's is its
script (read, distance matrix, build and solve the integer program).

Usage: python compare_mclp.py CUSTMAP_BINARY DATA_ROOT [SIZES...]   (sizes: 100k 1M 10M)
"""
import json
import os
import subprocess
import sys

import polars as pl

from compare_heatmap import ensure_city, measure, timed

HERE = os.path.dirname(os.path.abspath(__file__))
P = int(os.environ.get("MCLP_P", "20"))
# Reach radius by kind, as custmap's defaults; written into reach_m so both tools use the same.
REACH = {"office_lobby": 100.0, "cafe": 250.0, "bar": 250.0, "billboard": 800.0}


def mclp_city(city, root, size):
    """The city's customers with its point sites only, each costing 1."""
    d = os.path.join(root, f"mclp-{size}")
    os.makedirs(d, exist_ok=True)
    target = os.path.join(d, "customers.parquet")
    if not os.path.exists(target):
        os.symlink(os.path.join(city, "customers.parquet"), target)
    sites = pl.read_parquet(os.path.join(city, "sites.parquet")).filter(pl.col("wkt").str.starts_with("POINT"))
    coords = sites["wkt"].str.extract_groups(r"POINT \(([-0-9.]+) ([-0-9.]+)\)")
    sites = sites.select(
        "site_id", "kind",
        coords.struct.field("2").cast(pl.Float64).alias("lat"), coords.struct.field("1").cast(pl.Float64).alias("lng"),
        pl.lit(1.0).alias("cost"), pl.col("kind").replace_strict(REACH, default=400.0).alias("reach_m"),
    )
    sites.write_csv(os.path.join(d, "sites.csv"))
    return d, sites.height


def main():
    binary, root = sys.argv[1], sys.argv[2]
    sizes = sys.argv[3:] or ["100k", "1M"]
    rows = []
    for size in sizes:
        d, nsites = mclp_city(ensure_city(binary, root, size), root, size)
        plan = os.path.join(root, f"mclp-plan-{size}.json")
        ours = [binary, "placement", d, "--budget", str(P), "--reach", "work", "--out", plan]
        peer = [sys.executable, os.path.join(HERE, "mclp_spopt.py"), d, str(P)]
        timed(ours)
        report = json.load(open(plan))
        out = subprocess.run(peer, capture_output=True, text=True, check=True).stdout.splitlines()
        optimum = json.loads(out[0])["covered"]
        reach, bound, gap = report["reach"], report["upper_bound"], report["gap"]
        assert reach <= optimum + 1e-6, f"custmap's reach {reach} exceeds the exact optimum {optimum}"
        assert bound >= optimum - 1e-6, f"custmap's certified bound {bound} is below the optimum {optimum}"
        assert reach >= optimum * (1 - gap) - 1e-6, f"reach {reach} below optimum {optimum} minus the gap {gap}"
        results = {name: measure(cmd) for name, cmd in [('custmap', ours), ('spopt MCLP', peer)]}
        c, s = results["custmap"], results["spopt MCLP"]
        rows.append((size, nsites, reach, optimum, bound, c, s))
        print(f"{size}: custmap {reach:.0f} of optimum {optimum:.0f} (bound {bound:.0f}); {c['wall']:.2f} s vs {s['wall']:.2f} s", file=sys.stderr)
    print(f"| customers | sites (P = {P}) | custmap reach | exact optimum | custmap bound | custmap wall / CPU s | custmap peak MiB | spopt wall / CPU s | (in-process s) | spopt peak MiB | wall ratio custmap / peer |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, n, reach, opt, bound, c, s in rows:
        print(f"| {size} | {n} | {reach:.0f} | {opt:.0f} | {bound:.0f} | {c['wall']:.2f} / {c['cpu']:.2f} | {c['mib']:.0f} | {s['wall']:.2f} / {s['cpu']:.2f} | {s['inner']:.2f} | {s['mib']:.0f} | {c['wall'] / s['wall']:.2f} |")


if __name__ == "__main__":
    main()
