//! Times each stage of a heatmap on a dataset directory as `custmap heatmap` runs it, with the
//! process's peak memory after each, to see where time and memory go:
//! `cargo run --release -p custmap-benches --example stages -- DIR [auto|places|rows]`
//! (`BATCH_ROWS=N` sets the ingest batch size, `REPEAT=N` runs the reduction N more times).

use std::time::Instant;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use custmap_benches::peak_mib;
use custmap_engine::analytics::heatmap::columns_read;
use custmap_engine::analytics::{HeatmapBase, HeatmapParams, Location, Reduction};
use custmap_engine::io::schema::Table;
use custmap_engine::io::validate::IngestOptions;
use custmap_engine::spatial::Res;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: stages DIR")?);
    let by = match std::env::args().nth(2).as_deref() {
        Some("places") => Reduction::Places,
        Some("rows") => Reduction::Rows,
        _ => Reduction::Auto,
    };
    let stage = |name: &str, t: Instant| {
        println!("{name:<36} {:>8.3} s   peak {:>6} MiB", t.elapsed().as_secs_f64(), peak_mib());
    };
    let segment = Some("budget >= 3000000 AND desired_area_sqm >= 120");
    let t = Instant::now();
    // As `custmap heatmap` loads: every column validated, only those the heatmap reads kept.
    let columns = columns_read(Location::Work, segment);
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let batch_rows = std::env::var("BATCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let opts = IngestOptions { customer_columns: Some(&columns), batch_rows, ..IngestOptions::default() };
    let ds = custmap_engine::Dataset::load_with(&dir, &[Table::Deals], opts)?;
    stage(&format!("load ({} customers)", ds.customers.height()), t);
    for c in ds.customers.columns() {
        println!(
            "  {:<20} {:>6} MiB in {} chunks",
            c.name(),
            c.as_materialized_series().estimated_size() >> 20,
            c.as_materialized_series().n_chunks()
        );
    }
    let t = Instant::now();
    let res = Res::new(9)?;
    let mut base = HeatmapBase::build_by(&ds, Location::Work, segment, res, by)?;
    // REPEAT=N runs the reduction N times more (for a profile of it alone).
    for _ in 0..std::env::var("REPEAT").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0) {
        base = HeatmapBase::build_by(&ds, Location::Work, segment, res, by)?;
    }
    stage(&format!("reduce ({} groups)", base.group_count()), t);
    let t = Instant::now();
    let out = base.at(&HeatmapParams { res, location: Location::Work, ..HeatmapParams::default() })?;
    stage(&format!("cells+floor+metrics ({} cells)", out.cells.height()), t);
    Ok(())
}
