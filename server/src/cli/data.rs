//! `demo`, `validate` and `import-sales`: making and checking a dataset directory.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run_demo(out: &Path, customers: u64, seed: u64, format: FormatArg, places: Places) -> Result<(), Error> {
    let format = match format {
        FormatArg::Csv => DemoFormat::Csv,
        FormatArg::Parquet => DemoFormat::Parquet,
    };
    let bar = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(customers);
        pb.set_style(
            ProgressStyle::with_template("{spinner} customers {bar:40} {pos}/{len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let summary =
        demo::generate(out, &DemoParams { customers, seed, format, places }, &|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    let (offices, homes) = places.stock(customers);
    println!(
        "wrote {}: {} customers ({homes} residential and {offices} office buildings, plus the avenues' towers), {} touchpoints, {} deals, {} campaigns, {} sites, 3 projects, districts.geojson, truth.json",
        out.display(),
        summary.customers,
        summary.touchpoints,
        summary.deals,
        summary.campaigns,
        summary.sites
    );
    Ok(())
}

/// Prints the ingest report whatever happens to the rejects file, then exits 0 only for a clean
/// dataset: rejected rows are exit 2 (so `validate` can gate a pipeline), an unwritable rejects
/// file with nothing rejected is a warning.
pub(super) fn run_validate(dir: &Path, json: bool, rejects: Option<PathBuf>) -> Result<(), Error> {
    let ds = load(dir, &Table::ALL)?;
    let rejects_path = rejects.unwrap_or_else(|| dir.join("rejects.csv"));
    let written = write_frame(&ds.rejects_frame()?, &rejects_path);
    report_validation(&ds, dir, json, &rejects_path);
    match (ds.rejects.len(), written) {
        (0, Ok(())) => Ok(()),
        (0, Err(e)) => {
            eprintln!("warning: no rows rejected, but the rejects file was not written: {e}");
            Ok(())
        }
        (n, Ok(())) => Err(Error::BadInput(format!("{n} rows rejected; see {}", rejects_path.display()))),
        (n, Err(e)) => Err(Error::BadInput(format!(
            "{n} rows rejected, and the rejects file was not written ({e}); pass --rejects FILE"
        ))),
    }
}

pub(super) fn report_validation(ds: &custmap_engine::Dataset, dir: &Path, json: bool, rejects_path: &Path) {
    if json {
        let doc = serde_json::json!({ "tables": ds.report.tables, "time_zone": ds.report.time_zone });
        println!("{doc}");
        return;
    }
    println!("dataset {} (timestamps without an offset read as {})", dir.display(), ds.report.time_zone);
    println!("{:<12} {:>10} {:>10} {:>10}", "table", "read", "accepted", "rejected");
    for (name, t) in &ds.report.tables {
        println!("{name:<12} {:>10} {:>10} {:>10}", t.read, t.accepted, t.rejected);
    }
    let mut reasons: std::collections::BTreeMap<(String, String), u64> = std::collections::BTreeMap::new();
    for r in ds.rejects.iter().chain(&ds.nulled) {
        *reasons.entry((r.table.to_string(), r.reason.clone())).or_default() += 1;
    }
    for ((table, reason), n) in &reasons {
        println!("  {table}: {n} x {reason}");
    }
    if !ds.nulled.is_empty() {
        println!("values nulled (rows kept): {}", ds.nulled.len());
    }
    println!(
        "rejects: {} rows -> {} (table, row, line, column, reason, value, outcome)",
        ds.rejects.len(),
        rejects_path.display()
    );
}

pub(super) fn run_import(file: &Path, out: &Path, cols: &SalesColumns) -> Result<(), Error> {
    let (customers, deals) = sales_to_tables(file, cols)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Write { path: out.into(), message: e.to_string() })?;
    write_frame(&customers, &out.join("customers.csv"))?;
    write_frame(&deals, &out.join("deals.csv"))?;
    println!("wrote {}: {} customers, {} deals", out.display(), customers.height(), deals.height());
    Ok(())
}
