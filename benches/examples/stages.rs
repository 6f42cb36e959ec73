//! Times each stage of a heatmap on a dataset directory, to see where the time goes:
//! `cargo run --release -p custmap-benches --example stages -- DIR [auto|places|rows]`.

use std::time::Instant;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use custmap_engine::analytics::{HeatmapBase, HeatmapParams, Location, Reduction};
use custmap_engine::io::read::{find_table_file, read_table};
use custmap_engine::io::schema::Table;
use custmap_engine::io::validate::validate;
use custmap_engine::spatial::Res;

fn faults() -> u64 {
    // Minor page faults so far (field 10 of /proc/self/stat): fresh memory touched.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| s.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(7)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: stages DIR")?);
    let t = Instant::now();
    let (path, format) = find_table_file(&dir, "customers")?.ok_or("no customers table")?;
    let raw = read_table(&path, format)?;
    println!("[{:>8} faults] read customers ", faults());
    println!("read customers      {:>8.3} s  ({} rows)", t.elapsed().as_secs_f64(), raw.read);
    let t = Instant::now();
    let customers = validate(Table::Customers, raw, None, Default::default())?;
    println!("[{:>8} faults]", faults());
    println!("validate customers  {:>8.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let (path, format) = find_table_file(&dir, "deals")?.ok_or("no deals table")?;
    let deals = validate(Table::Deals, read_table(&path, format)?, Some(&customers), Default::default())?;
    println!("[{:>8} faults]", faults());
    println!("read+validate deals {:>8.3} s  ({} rows)", t.elapsed().as_secs_f64(), deals.read);
    drop(deals);
    let t = Instant::now();
    let ds = custmap_engine::Dataset::load_tables(&dir, &[Table::Deals])?;
    println!("[{:>8} faults]", faults());
    println!("Dataset::load_tables {:>7.3} s  (what the CLI does)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let res = Res::new(9)?;
    let by = match std::env::args().nth(2).as_deref() {
        Some("places") => Reduction::Places,
        Some("rows") => Reduction::Rows,
        _ => Reduction::Auto,
    };
    let segment = Some("budget >= 3000000 AND desired_area_sqm >= 120");
    let base = HeatmapBase::build_by(&ds, Location::Work, segment, res, by)?;
    println!("[{:>8} faults]", faults());
    println!("reduce to groups    {:>8.3} s  ({} coordinate groups)", t.elapsed().as_secs_f64(), base.group_count());
    let t = Instant::now();
    let out = base.at(&HeatmapParams { res, location: Location::Work, ..HeatmapParams::default() })?;
    println!("[{:>8} faults]", faults());
    println!("cells+floor+metrics {:>8.3} s  ({} cells)", t.elapsed().as_secs_f64(), out.cells.height());
    Ok(())
}
