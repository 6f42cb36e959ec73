//! `heatmap`: purchasing-power cells, locally or on the cluster.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run_heatmap(
    dir: &Path,
    params: &HeatmapParams,
    metric: &str,
    engine: &EngineArgs,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    params.check()?;
    let (name, districts, result) = match connect(engine, dir)? {
        None => {
            // Every customer column is validated; only those the heatmap reads are kept.
            let columns = custmap_engine::analytics::heatmap::columns_read(params.location, params.segment.as_deref());
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let ds = load_columns(dir, &[Table::Deals], Some(&columns))?;
            let pb = spinner("aggregating cells");
            let result = heatmap(&ds, params)?;
            pb.finish_and_clear();
            (ds.name, ds.districts, result)
        }
        #[cfg(feature = "cluster")]
        Some(cluster) => {
            let pb = spinner("reducing cells on the cluster");
            let base =
                custmap::cluster::jobs::heatmap_base(&cluster, params.location, params.segment.as_deref(), params.res)?;
            let result = base.at(params)?;
            pb.finish_and_clear();
            (dataset_name(dir), custmap_engine::io::dataset::load_districts(dir)?, result)
        }
    };
    match format {
        OutputFormat::Png | OutputFormat::Svg => {
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            if result.cells.column(metric).is_err() {
                return Err(Error::BadInput(format!("unknown metric '{metric}' (columns: {})", metric_names(&result))));
            }
            let spec = MapSpec {
                cells: &result.cells,
                metric,
                title: views::map_title(metric, params),
                subtitle: views::map_subtitle(&result, params),
                districts: districts.as_ref(),
                size: (1400, 1000),
                overlay: Vec::new(),
            };
            let bytes = render_map(&spec, image)?;
            custmap_engine::io::write::write_atomic(out, |w| {
                std::io::Write::write_all(w, &bytes)
                    .map_err(|e| Error::Write { path: out.into(), message: e.to_string() })
            })?;
        }
        OutputFormat::Json => write_json(out, &views::heatmap_json(&name, &result)?)?,
        _ => write_frame(&result.cells, out)?,
    }
    println!(
        "wrote {} cells to {} (res {}, {}, k = {}: {} small cells merged into parents, {} dropped, {} with a figure withheld)",
        result.cells.height(),
        out.display(),
        params.res.get(),
        params.location.as_str(),
        params.k.get(),
        result.suppressed.merged,
        result.suppressed.dropped,
        result.suppressed.withheld
    );
    Ok(())
}

pub(super) fn metric_names(result: &HeatmapResult) -> String {
    result
        .cells
        .get_column_names()
        .iter()
        .filter(|n| n.as_str() != "hex_id")
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
