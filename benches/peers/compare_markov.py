"""Order-1 Markov attribution in custmap and in ChannelAttribution on the same journeys: checks
the conversions credited per channel agree, then times both and prints ratios.

custmap's time is the whole CLI run (read and validate touchpoints, deals and campaigns, build
the journeys, solve the chain exactly, write); the peer is given the distinct paths custmap
exported and runs its removal-effect model on them.

Usage: python compare_markov.py CUSTMAP_BINARY DATA_ROOT [SIZES...]   (sizes: 100k 1M 10M)
"""
import os
import sys

import polars as pl

from compare_heatmap import ensure_city, measure, timed

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = float(os.environ.get("MARKOV_TOLERANCE", "0.01"))


def check_agreement(ours_csv, peer_csv):
    """Largest difference of a channel's share of all conversions, custmap vs peer."""
    a = pl.read_csv(ours_csv).filter(pl.col("model") == "markov").select("channel", ours="conversions")
    b = pl.read_csv(peer_csv).select("channel", pl.col("conversions").alias("peer"))
    both = a.join(b, on="channel", how="full", coalesce=True).fill_null(0)
    both = both.with_columns(
        (pl.col("ours") / pl.col("ours").sum()).alias("ours_share"), (pl.col("peer") / pl.col("peer").sum()).alias("peer_share")
    )
    worst = (both["ours_share"] - both["peer_share"]).abs().max()
    assert worst < TOLERANCE, f"channel shares differ by up to {worst:.4f}:\n{both}"
    return both.height, worst


def main():
    binary, root = sys.argv[1], sys.argv[2]
    sizes = sys.argv[3:] or ["100k", "1M"]
    rows = []
    for size in sizes:
        d = ensure_city(binary, root, size)
        ours_csv, paths_csv, peer_csv = (os.path.join(root, f"{n}-{size}.csv") for n in ("markov-ours", "paths", "markov-peer"))
        export = [binary, "attribution", d, "--model", "markov", "--paths", paths_csv, "--out", ours_csv]
        timed(export)
        ours = [binary, "attribution", d, "--model", "markov", "--out", ours_csv]
        peer = [sys.executable, os.path.join(HERE, "markov_channelattribution.py"), paths_csv, peer_csv]
        timed(ours), timed(peer)
        channels, worst = check_agreement(ours_csv, peer_csv)
        npaths = pl.read_csv(paths_csv).height
        results = {name: measure(cmd) for name, cmd in [('custmap', ours), ('ChannelAttribution', peer)]}
        c, p = results["custmap"], results["ChannelAttribution"]
        rows.append((size, npaths, channels, worst, c, p))
        print(f"{size}: agree (max share difference {worst:.4f}); custmap {c['wall']:.2f} s, peer {p['wall']:.2f} s", file=sys.stderr)
    print("| customers | distinct paths | max share diff | custmap wall / CPU s | custmap peak MiB | ChannelAttribution wall / CPU s | (in-process s) | peer peak MiB | wall ratio custmap / peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, npaths, _, worst, c, p in rows:
        print(f"| {size} | {npaths} | {worst:.4f} | {c['wall']:.2f} / {c['cpu']:.2f} | {c['mib']:.0f} | {p['wall']:.2f} / {p['cpu']:.2f} | {p['inner']:.2f} | {p['mib']:.0f} | {c['wall'] / p['wall']:.2f} |")


if __name__ == "__main__":
    main()
