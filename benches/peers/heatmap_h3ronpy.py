"""The heatmap job with cells from h3ronpy and the rest in polars (same job as
heatmap_polars_h3.py). Usage: python heatmap_h3ronpy.py DIR [RES] [OUT.csv]
"""
import polars as pl
import pyarrow as pa
from h3ronpy import cells_to_string
from h3ronpy.vector import coordinates_to_cells

from heatmap_polars_h3 import aggregate, cli, deals_per_customer


def heatmap(directory: str, res: int) -> pl.DataFrame:
    customers = pl.read_parquet(f"{directory}/customers.parquet").filter(pl.col("work_lat").is_not_null())
    cells = coordinates_to_cells(customers["work_lat"].to_numpy(), customers["work_lng"].to_numpy(), res)
    hex_id = pl.Series("hex_id", pa.array(cells_to_string(cells)).cast(pa.string()))
    located = customers.with_columns(hex_id).lazy()
    return aggregate(located.join(deals_per_customer(directory), on="customer_id", how="left")).collect()


if __name__ == "__main__":
    cli(heatmap)
