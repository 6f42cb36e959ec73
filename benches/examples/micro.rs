//! Scratch timing of single polars queries on a demo city (development aid).
use std::time::Instant;

use polars::prelude::*;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> PolarsResult<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp/city10m".into());
    let file = std::fs::File::open(format!("{dir}/customers.parquet"))?;
    let c = ParquetReader::new(file).finish()?;
    let t = |name: &str, f: &dyn Fn() -> PolarsResult<DataFrame>| -> PolarsResult<()> {
        let s = Instant::now();
        let out = f()?;
        println!("{name:40} {:.3}s ({} rows)", s.elapsed().as_secs_f64(), out.height());
        Ok(())
    };
    let prospect = col("budget").gt_eq(lit(3e6)).and(col("desired_area_sqm").gt_eq(lit(120.0))).fill_null(lit(false));
    let key = ((col("work_lat") + lit(90.0)) * lit(1e7)).round(0, RoundMode::HalfToEven).cast(DataType::Int64)
        * lit(4294967296i64)
        + ((col("work_lng") + lit(180.0)) * lit(1e7)).round(0, RoundMode::HalfToEven).cast(DataType::Int64);
    for _ in 0..2 {
        t("filter located", &|| {
            c.clone().lazy().filter(col("work_lat").is_not_null()).select([col("work_lat")]).collect()
        })?;
        t("key group len", &|| {
            c.clone()
                .lazy()
                .filter(col("work_lat").is_not_null())
                .group_by([key.clone().alias("k")])
                .agg([len()])
                .collect()
        })?;
        t("f64 keys group", &|| {
            c.clone()
                .lazy()
                .filter(col("work_lat").is_not_null())
                .with_columns([prospect.clone().cast(DataType::Int64).alias("p")])
                .group_by([col("work_lat"), col("work_lng")])
                .agg([len(), col("p").sum()])
                .collect()
        })?;
        t("key group full", &|| {
            c.clone()
                .lazy()
                .filter(col("work_lat").is_not_null())
                .with_columns([prospect.clone().cast(DataType::Int64).alias("p")])
                .with_columns([key.clone().alias("k")])
                .group_by([col("k")])
                .agg([len(), col("p").sum(), col("work_lat").min(), col("work_lat").max().alias("m")])
                .collect()
        })?;
    }
    Ok(())
}
