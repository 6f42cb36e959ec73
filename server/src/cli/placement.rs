//! `placement`: the budgeted ad-placement plan and its pictures.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn parse_radii(items: &[String]) -> Result<std::collections::HashMap<String, f64>, Error> {
    items
        .iter()
        .map(|item| {
            let (kind, m) = item
                .split_once('=')
                .ok_or_else(|| Error::BadInput(format!("--reach-m '{item}' is not KIND=METRES")))?;
            let m: f64 =
                m.trim().parse().map_err(|_| Error::BadInput(format!("--reach-m '{item}': '{m}' is not a number")))?;
            custmap_engine::analytics::placement::check_radius(kind.trim(), m)?;
            Ok((kind.trim().to_string(), m))
        })
        .collect()
}

pub(super) fn run_placement(
    dir: &Path,
    params: &PlacementParams,
    radii: &std::collections::HashMap<String, f64>,
    compare_kinds: bool,
    plot: PlotArg,
    k: KFloor,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if format == OutputFormat::GeoJson {
        return Err(Error::BadInput(format!(
            "{}: placement writes .json (the report), a table (.csv .parquet .arrow) or the reach-versus-budget curve (.png .svg)",
            out.display()
        )));
    }
    params.check()?;
    let ds = load(dir, &[Table::Sites])?;
    let pb = spinner("computing reach");
    let coverage = Coverage::build(&ds, params.segment.as_deref(), params.reach, params.weight, radii)?;
    let mut report = coverage.plan(params)?;
    report.floor(k)?;
    pb.finish_and_clear();
    if let Some(image) = image_format(format) {
        let bytes = match plot {
            PlotArg::Map => {
                let heat = heatmap(&ds, &views::placement_heatmap_params(params, k))?;
                views::placement_map(&ds, &coverage, &report, params, &heat, image)?
            }
            PlotArg::Curve => views::reach_curve(&report, params, image)?,
        };
        write_bytes(out, &bytes)?;
    } else if format == OutputFormat::Json {
        let doc = serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?;
        custmap_engine::io::write::write_atomic(out, |w| {
            serde_json::to_writer_pretty(w, &doc).map_err(|e| Error::Internal(e.to_string()))
        })?;
    } else {
        let rows =
            if compare_kinds { serde_json::to_value(&report.baselines) } else { serde_json::to_value(&report.sites) }
                .map_err(|e| Error::Internal(e.to_string()))?;
        write_frame(&custmap_engine::io::write::json_rows_to_frame(&rows)?, out)?;
    }
    let reach = match report.weight {
        Weight::Count => format!("reach {:.0} of {} prospects", report.reach, report.prospects),
        Weight::Budget => format!(
            "reach {:.0} of {:.0} yuan of purchasing power ({} prospects)",
            report.reach, report.total_weight, report.prospects
        ),
    };
    println!(
        "plan: {} sites, cost {:.0} of {:.0}, {reach} ({}) -> {}",
        report.sites.len(),
        report.cost,
        report.budget,
        if report.proven_optimal {
            "proven optimal".to_string()
        } else {
            format!("upper bound {:.1}, gap at most {:.2}%", report.upper_bound, report.gap * 100.0)
        },
        out.display()
    );
    Ok(())
}
