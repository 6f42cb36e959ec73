"""The heatmap job in DuckDB SQL, with the H3 cells computed outside it by h3ronpy (DuckDB's h3
extension is a download this offline machine cannot make). Same job as heatmap_polars_h3.py.
Usage: python heatmap_duckdb.py DIR [RES] [OUT.csv]
"""
import sys
import time

import duckdb
import pyarrow as pa
from h3ronpy import cells_to_string
from h3ronpy.vector import coordinates_to_cells


def heatmap(directory: str, res: int):
    con = duckdb.connect()
    located = con.sql(
        f"SELECT customer_id, work_lat, work_lng FROM read_parquet('{directory}/customers.parquet') WHERE work_lat IS NOT NULL"
    ).arrow()
    located = located.read_all() if hasattr(located, "read_all") else located
    cells = coordinates_to_cells(located["work_lat"].to_numpy(), located["work_lng"].to_numpy(), res)
    cells_table = pa.table({"customer_id": located["customer_id"], "hex_id": pa.array(cells_to_string(cells)).cast(pa.string())})
    con.register("cells", cells_table)
    return con.sql(f"""
        WITH deals AS (
            SELECT customer_id, count(*) AS deals, sum(price) AS revenue, max(price) AS max_price
            FROM read_parquet('{directory}/deals.parquet') WHERE status = 'signed' GROUP BY customer_id
        ), c AS (
            SELECT cells.hex_id, d.deals, d.revenue, d.max_price, cu.budget,
                   coalesce(cu.budget >= 3000000 AND cu.desired_area_sqm >= 120, false) AS prospect
            FROM read_parquet('{directory}/customers.parquet') cu
            JOIN cells USING (customer_id)
            LEFT JOIN deals d USING (customer_id)
        )
        SELECT hex_id,
               count(*) AS customers,
               sum(prospect::INT) AS prospects,
               sum((coalesce(deals, 0) > 0)::INT) AS buyers,
               sum(coalesce(deals, 0)) AS deals,
               sum(coalesce(revenue, 0.0)) AS revenue,
               sum(CASE WHEN prospect THEN coalesce(budget, CASE WHEN deals > 0 THEN max_price END, 0.0) ELSE 0.0 END) AS purchasing_power
        FROM c GROUP BY hex_id ORDER BY hex_id
    """)


if __name__ == "__main__":
    directory = sys.argv[1]
    res = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    start = time.perf_counter()
    rel = heatmap(directory, res)
    out = rel.pl() if len(sys.argv) > 3 else rel.fetchall()
    elapsed = time.perf_counter() - start
    if len(sys.argv) > 3:
        out.write_csv(sys.argv[3])
    print(f"cells={len(out)} seconds={elapsed:.3f}")
