//! `placement`: the budgeted ad-placement plan and its pictures.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run_placement(
    dir: &Path,
    params: &PlacementParams,
    radii: &std::collections::HashMap<String, f64>,
    compare_kinds: bool,
    plot: PlotChoice,
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
    // Deals too: a buyer without a budget is weighed by their deal price, as on a server.
    let ds = load(dir, &[Table::Sites, Table::Deals])?;
    let pb = spinner("computing reach");
    let coverage = Coverage::build(&ds, params.segment.as_deref(), params.reach, params.weight, radii)?;
    let mut report = coverage.plan(params)?;
    report.floor(k)?;
    pb.finish_and_clear();
    if let Some(image) = image_format(format) {
        let bytes = match plot {
            PlotChoice::Map => {
                let heat = heatmap(&ds, &views::placement_heatmap_params(params, k))?;
                views::placement_map(&ds, &coverage, &report, params, &heat, image)?
            }
            PlotChoice::Curve => views::reach_curve(&report, params, image)?,
        };
        write_bytes(out, &bytes)?;
    } else if format == OutputFormat::Json {
        write_json(out, &release::placement_document(&report)?)?;
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
