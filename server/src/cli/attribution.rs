//! `attribution` and `funnel`: campaign credit per model, by channel, campaign or place.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run_attribution(
    dir: &Path,
    params: &AttributionParams,
    chart: Option<ChartChoice>,
    k: KFloor,
    paths: Option<&Path>,
    engine: &EngineArgs,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if let Some(p) = paths {
        if !matches!(OutputFormat::from_path(p)?, OutputFormat::Csv | OutputFormat::Parquet | OutputFormat::Arrow) {
            return Err(Error::BadInput(format!(
                "--paths {}: write the paths as .csv, .parquet or .arrow",
                p.display()
            )));
        }
    }
    if format == OutputFormat::GeoJson {
        return Err(Error::BadInput(format!("{}: attribution writes tables or charts, not GeoJSON", out.display())));
    }
    params.check()?;
    #[cfg(feature = "cluster")]
    if let Some(cluster) = connect(engine, dir)? {
        return run_cluster_attribution(dir, &cluster, params, chart, k, paths, out);
    }
    #[cfg(not(feature = "cluster"))]
    connect(engine, dir)?;
    // Journeys read two customer columns; the rest are validated and let go.
    let ds = load_columns(
        dir,
        &[Table::Touchpoints, Table::Deals, Table::Campaigns],
        Some(custmap_engine::analytics::attribution::journeys::CUSTOMER_COLUMNS),
    )?;
    if let Some(p) = paths {
        let by =
            custmap_engine::analytics::attribution::journeys::build_with(&ds, params.by, params.window_days, false)?;
        write_paths(&by, p)?;
    }
    // One release per run, as a server's first answer to the same request.
    let mut ledger = custmap_engine::analytics::privacy::Ledger::new();
    if chart == Some(ChartChoice::Monthly) {
        let months = funnel::monthly(&funnel::journeys_for(&ds, params)?, params.by)?;
        let months = release::monthly(months, params.by, k, &mut ledger)?;
        if image_format(format).is_none() {
            // The monthly series as a table.
            match format {
                OutputFormat::Json => write_json(out, &release::monthly_document(&ds.name, params.by, &months)?)?,
                _ => write_frame(&months, out)?,
            }
            println!("wrote {} month x {} rows to {}", months.height(), params.by.column(), out.display());
            return Ok(());
        }
        let pb = spinner("attributing");
        let result = release::attribution(attribution(&ds, params)?, ds.campaigns.as_ref(), k, &mut ledger)?;
        pb.finish_and_clear();
        return write_chart(&result, Some(&months), ChartChoice::Monthly, out);
    }
    let pb = spinner("attributing");
    // Nothing reads the touchpoints after this: they are let go once bucketed by customer.
    let mut ds = ds;
    let attributed = custmap_engine::analytics::attribution::attribution_taking_touchpoints(&mut ds, params)?;
    let result = release::attribution(attributed, ds.campaigns.as_ref(), k, &mut ledger)?;
    pb.finish_and_clear();
    if image_format(format).is_some() {
        let chart = chart.unwrap_or(if params.models.len() > 1 { ChartChoice::Compare } else { ChartChoice::Roi });
        return write_chart(&result, None, chart, out);
    }
    write_attribution(&ds.name, params, &result, k, &mut ledger, out)
}

/// Draws an attribution chart (`.png` / `.svg` from `out`).
fn write_chart(
    result: &custmap_engine::analytics::AttributionResult,
    months: Option<&custmap_engine::polars::prelude::DataFrame>,
    chart: ChartChoice,
    out: &Path,
) -> Result<(), Error> {
    let image = image_format(OutputFormat::from_path(out)?)
        .ok_or_else(|| Error::Internal("a chart needs a .png or .svg path".into()))?;
    let spec = views::attribution_chart(result, months, chart)?;
    write_bytes(out, &render_chart(&spec, image)?)?;
    println!("wrote a {chart:?} chart to {}", out.display());
    Ok(())
}

pub(super) fn write_paths(j: &custmap_engine::analytics::attribution::Journeys, p: &Path) -> Result<(), Error> {
    let table = j.path_table()?;
    write_frame(&table, p)?;
    println!("wrote {} distinct paths to {}", table.height(), p.display());
    Ok(())
}

/// Attribution with the journeys reduced on a cluster: the path-count models, charts and tables.
#[cfg(feature = "cluster")]
pub(super) fn run_cluster_attribution(
    dir: &Path,
    cluster: &custmap::cluster::Cluster,
    params: &AttributionParams,
    chart: Option<ChartChoice>,
    k: KFloor,
    paths: Option<&Path>,
    out: &Path,
) -> Result<(), Error> {
    if chart == Some(ChartChoice::Monthly) {
        return Err(Error::BadInput("the monthly series needs each lead's dates: use --engine local for it".into()));
    }
    let pb = spinner("reducing journeys on the cluster");
    let j = custmap::cluster::jobs::journeys(cluster, params.by, params.window_days)?;
    pb.finish_and_clear();
    let campaigns = custmap_engine::Dataset::load_side_table(dir, Table::Campaigns)?;
    if let Some((_, rejects)) = campaigns.as_ref().filter(|(_, r)| !r.is_empty()) {
        println!("campaigns: {} rows rejected (custmap validate DIR lists them)", rejects.len());
    }
    let campaigns = campaigns.as_ref().map(|(f, _)| f);
    let result = custmap_engine::analytics::attribution::attribution_of(&j, campaigns, params)?;
    if let Some(p) = paths {
        write_paths(&j, p)?;
    }
    let mut ledger = custmap_engine::analytics::privacy::Ledger::new();
    let result = release::attribution(result, campaigns, k, &mut ledger)?;
    if image_format(OutputFormat::from_path(out)?).is_some() {
        let chart = chart.unwrap_or(if params.models.len() > 1 { ChartChoice::Compare } else { ChartChoice::Roi });
        return write_chart(&result, None, chart, out);
    }
    write_attribution(&dataset_name(dir), params, &result, k, &mut ledger, out)
}

/// Writes a released attribution result (JSON with its qualifiers, or a table format) and
/// reports it.
pub(super) fn write_attribution(
    name: &str,
    params: &AttributionParams,
    result: &custmap_engine::analytics::AttributionResult,
    k: KFloor,
    ledger: &mut custmap_engine::analytics::privacy::Ledger,
    out: &Path,
) -> Result<(), Error> {
    if OutputFormat::from_path(out)? == OutputFormat::Json {
        write_json(out, &release::attribution_document(name, result, k, ledger)?)?;
    } else {
        write_frame(&result.table, out)?;
    }
    let why: Vec<String> = result.unattributed_reasons.iter().map(|(reason, n, _)| format!("{n} {reason}")).collect();
    println!(
        "wrote {} rows to {} ({} of {} conversions left unattributed{}; window {} days; k = {}: figures of 1 to k-1 people withheld)",
        result.table.height(),
        out.display(),
        result.unattributed.0,
        result.conversions.0,
        if why.is_empty() { String::new() } else { format!(": {}", why.join(", ")) },
        params.window_days,
        k.get()
    );
    if let Some(se) = result.shapley_std_error {
        println!(
            "shapley: more than {} {}s, so sampled ({} permutations); largest standard error {se:.4} conversions",
            custmap_engine::analytics::attribution::shapley::EXACT_MAX,
            params.by.column(),
            custmap_engine::analytics::attribution::shapley::SAMPLES
        );
    }
    Ok(())
}

pub(super) fn run_geo_attribution(
    dir: &Path,
    params: &AttributionParams,
    location: Location,
    res: Res,
    k: KFloor,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if image_format(format).is_some() {
        return Err(Error::BadInput("--geo writes a table (.csv .parquet .arrow .json .geojson)".into()));
    }
    let ds = load(dir, &[Table::Touchpoints, Table::Deals, Table::Campaigns])?;
    let (table, suppressed) = attribution_by_place(&ds, params, location, res, k)?;
    write_frame(&table, out)?;
    println!(
        "wrote {} cell x {} rows to {} ({} attribution by {} place, res {}, k = {}: {} small cells merged, {} dropped)",
        table.height(),
        params.by.column(),
        out.display(),
        params.models[0].name(),
        location.as_str(),
        res.get(),
        k.get(),
        suppressed.merged,
        suppressed.dropped
    );
    Ok(())
}

pub(super) fn run_funnel(dir: &Path, by: By, k: KFloor, out: &Path) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if format == OutputFormat::GeoJson {
        return Err(Error::BadInput(format!("{}: the funnel is a table or a chart, not GeoJSON", out.display())));
    }
    let ds = load_columns(
        dir,
        &[Table::Touchpoints, Table::Deals],
        Some(custmap_engine::analytics::attribution::journeys::CUSTOMER_COLUMNS),
    )?;
    let params = AttributionParams { by, ..AttributionParams::default() };
    let table = funnel::funnel(&funnel::journeys_for(&ds, &params)?, by)?;
    let table = release::funnel(table, by, k, &mut custmap_engine::analytics::privacy::Ledger::new())?;
    if let Some(image) = image_format(format) {
        let spec = views::funnel_chart(&table, by)?;
        write_bytes(out, &render_chart(&spec, image)?)?;
    } else if format == OutputFormat::Json {
        write_json(out, &release::funnel_document(&ds.name, by, &table)?)?;
    } else {
        write_frame(&table, out)?;
    }
    println!("wrote the funnel of {} {}s to {} (k = {})", table.height(), by.column(), out.display(), k.get());
    Ok(())
}
