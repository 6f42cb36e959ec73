"""Peer pipeline a data scientist would write without custmap: the distinct journey paths built
from the raw tables with Python polars, by the rules of SPEC §4, then ChannelAttribution's
order-1 Markov model on them.

Rules (the same as custmap's): visits are not steps; the conversion is the first signed deal
(by day, then deal id) at the end of its signing day; a referred customer gets a `referral`
step at `created_at` (or just before their first step, or at the data's end) unless a step
comes earlier; the window looks back from the conversion or the data's end; ties in time go
referral first, then by channel, then by campaign.

Writes the path table (path, conversions, nulls, value) and the conversions per channel, and
prints its in-process seconds (paths and total).

Usage: python markov_polars_paths.py DATASET_DIR PATHS_CSV OUT_CSV [WINDOW_DAYS]
"""
import os
import sys
import time

import pandas as pd
import polars as pl
from ChannelAttribution import markov_model

DAY_US = 86_400_000_000


def path_table(d, window_days):
    tp = pl.scan_parquet(os.path.join(d, "touchpoints.parquet")).select(
        "customer_id",
        pl.col("ts").cast(pl.Int64),
        "channel",
        pl.col("campaign_id").fill_null("(no campaign)"),
        pl.col("event").fill_null("lead"),
    )
    deals = (
        pl.scan_parquet(os.path.join(d, "deals.parquet"))
        .filter(pl.col("status").fill_null("signed") == "signed")
        .sort("customer_id", "signed_at", "deal_id")
        .group_by("customer_id")
        .agg(
            ((pl.col("signed_at").first().cast(pl.Int64) + 1) * DAY_US - 1).alias("conv_ts"),
            pl.col("price").first().alias("price"),
        )
    )
    customers = pl.scan_parquet(os.path.join(d, "customers.parquet")).select("customer_id", "referred_by", "created_at")
    end = pl.concat([tp.select(pl.col("ts").max()), deals.select(pl.col("conv_ts").max().alias("ts"))]).select(pl.col("ts").max()).collect().item()

    steps = tp.filter(pl.col("event") != "visit").select("customer_id", "ts", "channel", "campaign_id", pl.lit(1).alias("o"))
    first = steps.group_by("customer_id").agg(pl.col("ts").min().alias("first"))
    referrals = (
        customers.filter(pl.col("referred_by").is_not_null())
        .join(first, on="customer_id", how="left")
        .with_columns(
            pl.when(pl.col("created_at").is_not_null())
            .then(pl.col("created_at").cast(pl.Int64) * DAY_US)
            .when(pl.col("first").is_not_null())
            .then(pl.col("first") - 1)
            .otherwise(pl.lit(end))
            .alias("ts")
        )
        .filter(pl.col("first").is_null() | (pl.col("ts") <= pl.col("first")))
        .select("customer_id", "ts", pl.lit("referral").alias("channel"), pl.lit("(referral)").alias("campaign_id"), pl.lit(0).alias("o"))
    )
    window = window_days * DAY_US
    touches = (
        pl.concat([steps, referrals])
        .join(deals, on="customer_id", how="left")
        .with_columns(pl.coalesce("conv_ts", pl.lit(end)).alias("horizon"))
        .filter((pl.col("ts") <= pl.col("horizon")) & (pl.col("ts") >= pl.col("horizon") - window))
        .sort("customer_id", "ts", "o", "channel", "campaign_id")
    )
    journeys = touches.group_by("customer_id", maintain_order=True).agg(
        pl.col("channel").str.join(" > ").alias("path"),
        pl.col("conv_ts").first().is_not_null().alias("converted"),
        pl.col("price").first().fill_null(0.0).alias("value"),
    )
    return (
        journeys.group_by("path")
        .agg(
            pl.col("converted").sum().cast(pl.Int64).alias("conversions"),
            (~pl.col("converted")).sum().cast(pl.Int64).alias("nulls"),
            pl.when(pl.col("converted")).then(pl.col("value")).otherwise(0.0).sum().alias("value"),
        )
        .sort("path")
        .collect()
    )


def main():
    d, paths_csv, out = sys.argv[1], sys.argv[2], sys.argv[3]
    window_days = int(sys.argv[4]) if len(sys.argv) > 4 else 365
    start = time.perf_counter()
    paths = path_table(d, window_days)
    built = time.perf_counter() - start
    result = markov_model(
        paths.to_pandas(), var_path="path", var_conv="conversions", var_value="value", var_null="nulls",
        order=1, sep=">", verbose=0, seed=1,
    )
    total = time.perf_counter() - start
    paths.write_csv(paths_csv)
    result.rename(columns={"channel_name": "channel", "total_conversions": "conversions"})[["channel", "conversions"]].to_csv(out, index=False)
    print(f"paths_seconds={built:.4f}")
    print(f"seconds={total:.4f}")


if __name__ == "__main__":
    main()
