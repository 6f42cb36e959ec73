//! Times each stage of a Markov attribution on a dataset directory, with the process's peak
//! memory after each, to see where time and memory go:
//! `cargo run --release -p custmap-benches --example attribution_stages -- DIR`.

use std::time::Instant;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use custmap_benches::peak_mib;
use custmap_engine::analytics::attribution::{journeys, markov, By};
use custmap_engine::io::schema::Table;
use custmap_engine::io::validate::IngestOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: attribution_stages DIR")?);
    let stage = |name: &str, t: Instant| {
        println!("{name:<28} {:>8.3} s   peak {:>6} MiB", t.elapsed().as_secs_f64(), peak_mib());
    };
    let t = Instant::now();
    let ds = custmap_engine::Dataset::load_tables(&dir, &[])?;
    stage(&format!("customers ({} rows)", ds.customers.height()), t);
    drop(ds);
    let t = Instant::now();
    // As `custmap attribution` loads: only the customer columns journeys read are kept.
    let opts = IngestOptions { customer_columns: Some(journeys::CUSTOMER_COLUMNS), ..IngestOptions::default() };
    let mut ds = custmap_engine::Dataset::load_with(&dir, &[Table::Touchpoints, Table::Deals, Table::Campaigns], opts)?;
    let touchpoints = ds.touchpoints.as_ref().map_or(0, |t| t.len());
    stage(&format!("load all ({touchpoints} touchpoints)"), t);
    let t = Instant::now();
    // As `custmap attribution` builds them: the touchpoints let go once bucketed.
    let j = journeys::build_taking(&mut ds, By::Channel, 365, false)?;
    stage(&format!("journeys ({} journeys)", j.journeys.len()), t);
    let t = Instant::now();
    let credit = markov::credit(&j.journeys, j.keys.len(), 1)?;
    stage(&format!("markov ({} keys)", credit.len()), t);
    Ok(())
}
