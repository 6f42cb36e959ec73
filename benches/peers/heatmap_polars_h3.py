"""The heatmap job in Python polars + polars-h3, as a data scientist would write it.

Per res-R work cell: customers, segment prospects, signed deals and their revenue, and the
segment's purchasing power. Usage: python heatmap_polars_h3.py DIR [RES] [OUT.csv]
"""
import sys
import time

import polars as pl
import polars_h3 as plh3


PROSPECT = ((pl.col("budget") >= 3_000_000) & (pl.col("desired_area_sqm") >= 120)).fill_null(False)


def deals_per_customer(directory: str) -> pl.LazyFrame:
    return (
        pl.scan_parquet(f"{directory}/deals.parquet")
        .filter(pl.col("status") == "signed")
        .group_by("customer_id")
        .agg(pl.len().alias("deals"), pl.col("price").sum().alias("revenue"), pl.col("price").max().alias("max_price"))
    )


def aggregate(located: pl.LazyFrame) -> pl.LazyFrame:
    """Customers with `hex_id` and their deals -> the cell table."""
    return (
        located.with_columns(
            PROSPECT.alias("prospect"),
            pl.when(PROSPECT)
            .then(pl.coalesce(pl.col("budget"), pl.when(pl.col("deals") > 0).then(pl.col("max_price"))).fill_null(0.0))
            .otherwise(0.0)
            .alias("pp"),
        )
        .group_by("hex_id")
        .agg(
            pl.len().alias("customers"),
            pl.col("prospect").sum().alias("prospects"),
            (pl.col("deals").fill_null(0) > 0).sum().alias("buyers"),
            pl.col("deals").fill_null(0).sum().alias("deals"),
            pl.col("revenue").fill_null(0.0).sum().alias("revenue"),
            pl.col("pp").sum().alias("purchasing_power"),
        )
        .sort("hex_id")
    )


def heatmap(directory: str, res: int) -> pl.DataFrame:
    customers = pl.scan_parquet(f"{directory}/customers.parquet")
    located = customers.filter(pl.col("work_lat").is_not_null()).with_columns(
        plh3.latlng_to_cell("work_lat", "work_lng", res, return_dtype=pl.Utf8).alias("hex_id")
    )
    return aggregate(located.join(deals_per_customer(directory), on="customer_id", how="left")).collect()


def cli(heatmap_fn) -> None:
    """`python SCRIPT DIR [RES] [OUT.csv]`: run, time in process, write, report."""
    directory = sys.argv[1]
    res = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    start = time.perf_counter()
    out = heatmap_fn(directory, res)
    elapsed = time.perf_counter() - start
    if len(sys.argv) > 3:
        out.write_csv(sys.argv[3])
    print(f"cells={out.height} seconds={elapsed:.3f}")


if __name__ == "__main__":
    cli(heatmap)
