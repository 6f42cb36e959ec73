//! Importing a flat sales file (one row per sale, with coordinates and a price) as a dataset:
//! each sale becomes a customer living at the sold home, with the price as budget, and a signed
//! deal. Other columns are kept as customer attributes usable in `--where`.

use std::path::Path;

use polars::prelude::*;

use super::read::{read_table, TableFormat, ROW};
use crate::error::{Error, Result};

/// Column names in the sales file.
#[derive(Debug, Clone)]
pub struct SalesColumns {
    pub lat: String,
    pub lng: String,
    pub price: String,
    /// Signing date for every sale, when the file has no date column.
    pub date: chrono::NaiveDate,
}

/// Customers and deals frames made from a sales file (CSV or Parquet). Values are not checked
/// here: the dataset's ingest validates them like any other table.
pub fn sales_to_tables(path: &Path, cols: &SalesColumns) -> Result<(DataFrame, DataFrame)> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => TableFormat::Parquet,
        _ => TableFormat::Csv,
    };
    let raw = read_table(path, format)?;
    for c in [&cols.lat, &cols.lng, &cols.price] {
        if !raw.frame.schema().contains(c) {
            return Err(Error::Schema { path: path.into(), message: format!("missing column '{c}'") });
        }
    }
    let id = (lit("S") + col(ROW).cast(DataType::String)).alias("customer_id");
    let base = raw.frame.lazy().with_column(id);
    let reserved = [ROW, "customer_id", cols.lat.as_str(), cols.lng.as_str(), cols.price.as_str(), "", "rownames"];
    let schema = base.clone().collect_schema()?;
    let attributes: Vec<Expr> =
        schema.iter_names().filter(|n| !reserved.contains(&n.as_str())).map(|n| col(n.as_str())).collect();
    let mut select = vec![
        col("customer_id"),
        col(cols.lat.as_str()).alias("home_lat"),
        col(cols.lng.as_str()).alias("home_lng"),
        col(cols.price.as_str()).alias("budget"),
    ];
    select.extend(attributes);
    let customers = base.clone().select(select).collect()?;
    let deals = base
        .select([
            (lit("D") + col(ROW).cast(DataType::String)).alias("deal_id"),
            col("customer_id"),
            lit(cols.date).alias("signed_at"),
            col(cols.price.as_str()).alias("price"),
        ])
        .collect()?;
    Ok((customers, deals))
}
