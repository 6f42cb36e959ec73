"""Order-1 Markov attribution in custmap and in the pipeline users would otherwise write: checks
the answers agree, then times them and prints ratios.

- custmap: the whole CLI run (read and validate touchpoints, deals and campaigns, build the
  journeys, solve the chain exactly, write).
- polars + ChannelAttribution (`markov_polars_paths.py`): the distinct paths built from the same
  Parquet tables with Python polars by the same rules, then ChannelAttribution's model: the
  same job end to end. Its path table must equal custmap's (`--paths`) exactly.
- ChannelAttribution alone, on the paths custmap exported: the model step only.

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


def check_paths(ours_csv, peer_csv):
    """The two path tables must be identical: same paths, counts, and values within 1e-9."""
    a, b = pl.read_csv(ours_csv), pl.read_csv(peer_csv)
    both = a.join(b, on="path", how="full", coalesce=True, suffix="_peer")
    bad = both.filter(
        pl.col("conversions").is_null()
        | pl.col("conversions_peer").is_null()
        | (pl.col("conversions") != pl.col("conversions_peer"))
        | (pl.col("nulls") != pl.col("nulls_peer"))
        | ((pl.col("value") - pl.col("value_peer")).abs() > 1e-9 * pl.col("value").abs().clip(1.0))
    )
    assert bad.height == 0, f"{bad.height} of {both.height} paths differ between custmap and the polars pipeline:\n{bad.head(10)}"


def main():
    binary, root = sys.argv[1], sys.argv[2]
    sizes = sys.argv[3:] or ["100k", "1M"]
    rows = []
    for size in sizes:
        d = ensure_city(binary, root, size)
        ours_csv, paths_csv, peer_csv, e2e_paths, e2e_csv = (
            os.path.join(root, f"{n}-{size}.csv") for n in ("markov-ours", "paths", "markov-peer", "paths-polars", "markov-polars")
        )
        export = [binary, "attribution", d, "--model", "markov", "--paths", paths_csv, "--out", ours_csv]
        timed(export)
        ours = [binary, "attribution", d, "--model", "markov", "--out", ours_csv]
        peer = [sys.executable, os.path.join(HERE, "markov_channelattribution.py"), paths_csv, peer_csv]
        e2e = [sys.executable, os.path.join(HERE, "markov_polars_paths.py"), d, e2e_paths, e2e_csv]
        timed(ours), timed(peer), timed(e2e)
        check_paths(paths_csv, e2e_paths)
        channels, worst = check_agreement(ours_csv, peer_csv)
        _, worst_e2e = check_agreement(ours_csv, e2e_csv)
        worst = max(worst, worst_e2e)
        npaths = pl.read_csv(paths_csv).height
        named = [("custmap", ours), ("polars+ChannelAttribution", e2e), ("ChannelAttribution", peer)]
        results = {name: measure(cmd) for name, cmd in named}
        c, e, p = results["custmap"], results["polars+ChannelAttribution"], results["ChannelAttribution"]
        rows.append((size, npaths, worst, c, e, p))
        print(f"{size}: paths identical, shares agree (max difference {worst:.4f}); custmap {c['wall']:.2f} s, "
              f"polars+ChannelAttribution {e['wall']:.2f} s, ChannelAttribution alone {p['wall']:.2f} s", file=sys.stderr)
    print("| customers | distinct paths | max share diff | custmap wall / CPU s | custmap MiB | polars paths + ChannelAttribution wall / CPU s (in-process) | MiB | ChannelAttribution on custmap's paths wall / CPU s (in-process) | MiB | custmap / end-to-end peer | custmap / model-only peer |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, npaths, worst, c, e, p in rows:
        print(f"| {size} | {npaths} | {worst:.4f} | {c['wall']:.2f} / {c['cpu']:.2f} | {c['mib']:.0f} "
              f"| {e['wall']:.2f} / {e['cpu']:.2f} ({e['inner']:.2f}) | {e['mib']:.0f} "
              f"| {p['wall']:.2f} / {p['cpu']:.2f} ({p['inner']:.2f}) | {p['mib']:.0f} "
              f"| {c['wall'] / e['wall']:.2f} | {c['wall'] / p['wall']:.2f} |")

if __name__ == "__main__":
    main()
