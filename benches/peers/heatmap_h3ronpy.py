"""The heatmap job with cells from h3ronpy and the rest in polars (same job as
heatmap_polars_h3.py). Usage: python heatmap_h3ronpy.py DIR [RES] [OUT.csv]
"""
import sys
import time

import polars as pl
import pyarrow as pa
from h3ronpy import cells_to_string
from h3ronpy.vector import coordinates_to_cells

from heatmap_polars_h3 import aggregate, deals_per_customer


def heatmap(directory: str, res: int) -> pl.DataFrame:
    customers = pl.read_parquet(f"{directory}/customers.parquet").filter(pl.col("work_lat").is_not_null())
    cells = coordinates_to_cells(customers["work_lat"].to_numpy(), customers["work_lng"].to_numpy(), res)
    hex_id = pl.Series("hex_id", pa.array(cells_to_string(cells)).cast(pa.string()))
    located = customers.with_columns(hex_id).lazy()
    return aggregate(located.join(deals_per_customer(directory), on="customer_id", how="left")).collect()


if __name__ == "__main__":
    directory = sys.argv[1]
    res = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    start = time.perf_counter()
    out = heatmap(directory, res)
    elapsed = time.perf_counter() - start
    if len(sys.argv) > 3:
        out.write_csv(sys.argv[3])
    print(f"cells={out.height} seconds={elapsed:.3f}")
