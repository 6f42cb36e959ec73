//! `GET /api/v1/datasets/{id}/heatmap?res&location&where&k&format&metric`.
//!
//! The expensive part, reducing customers to coordinate groups, is cached per (dataset version,
//! location, segment). Another resolution is served from a cached base by re-indexing its
//! groups, which gives exactly the cells a fresh build would.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use custmap_engine::analytics::{HeatmapBase, HeatmapParams, HeatmapResult, KFloor, Location};
use custmap_engine::io::write::{cells_geojson, frame_bytes};
use custmap_engine::io::OutputFormat;
use custmap_engine::render::map::{render_map, MapSpec};
use custmap_engine::render::ImageFormat;
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::{AppState, BaseKey, Entry};
use super::{cached, ApiError, Problem, Reply};
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(heatmap))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeatmapQuery {
    /// H3 resolution 0-15 (default 8).
    res: Option<u8>,
    /// `home`, `work` (default) or `both`.
    location: Option<String>,
    /// Segment: a SQL boolean expression over customer columns, e.g. `budget >= 3000000`.
    #[serde(rename = "where")]
    #[param(rename = "where")]
    where_: Option<String>,
    /// Privacy floor: the fewest customers a returned cell may hold (default 5).
    k: Option<u32>,
    /// `json` (default), `geojson`, `csv`, `arrow`, `png` or `svg`; or send an Accept header.
    format: Option<String>,
    /// For png/svg: the column to colour by (default `purchasing_power`).
    metric: Option<String>,
}

/// Heatmap cells with the metrics of SPEC §3, after the privacy floor.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/heatmap", tag = "heatmap",
    params(("id" = String, Path, description = "dataset id"), HeatmapQuery),
    responses(
        (status = 200, description = "cells: `{dataset, res, location, where, k, suppressed: {merged, dropped}, totals, cells: [...]}` as JSON; or GeoJSON, CSV (hex_id column), Arrow IPC, PNG or SVG",
            content(
                (Object = "application/json"),
                (Object = "application/geo+json"),
                (String = "text/csv"),
                (Vec<u8> = "application/vnd.apache.arrow.file"),
                (Vec<u8> = "image/png"),
                (String = "image/svg+xml"))),
        (status = 400, description = "a bad parameter, named", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json")))]
async fn heatmap(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HeatmapQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let entry = state.registry.entry(&id)?;
    let params = HeatmapParams {
        res: Res::new(q.res.unwrap_or(8)).map_err(|e| ApiError::bad_request(format!("res: {e}")))?,
        location: q.location.as_deref().unwrap_or("work").parse::<Location>()?,
        segment: q.where_.clone().filter(|w| !w.trim().is_empty()),
        k: KFloor::new(q.k.unwrap_or(5))?,
        ..HeatmapParams::default()
    };
    let format = match q.format.as_deref() {
        Some(name) => parse_format(name)?,
        None => from_accept(&headers),
    };
    let metric = q.metric.unwrap_or_else(|| "purchasing_power".into());
    let key = format!("heatmap {params:?} {format:?} {metric}");
    let version = entry.version;
    let st = state.clone();
    cached(&state, version, key, move || {
        let base = cached_base(&st, &entry, &params)?;
        let result = base.at(&params)?;
        respond(&entry.dataset, &result, format, &metric)
    })
    .await
}

fn parse_format(name: &str) -> Result<OutputFormat, ApiError> {
    match name {
        "json" => Ok(OutputFormat::Json),
        other => OutputFormat::from_name(other).filter(|f| *f != OutputFormat::Parquet).ok_or_else(|| {
            ApiError::bad_request(format!("format '{other}' is not one of json, geojson, csv, arrow, png, svg"))
        }),
    }
}

/// The format an Accept header asks for; JSON when it names none we serve.
fn from_accept(headers: &HeaderMap) -> OutputFormat {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    [
        ("application/geo+json", OutputFormat::GeoJson),
        ("text/csv", OutputFormat::Csv),
        ("application/vnd.apache.arrow", OutputFormat::Arrow),
        ("image/png", OutputFormat::Png),
        ("image/svg+xml", OutputFormat::Svg),
    ]
    .into_iter()
    .find(|(mime, _)| accept.split(',').any(|a| a.trim().starts_with(mime)))
    .map_or(OutputFormat::Json, |(_, f)| f)
}

/// The base for these parameters: cached, else re-indexed from a cached base at another
/// resolution (one that kept its places), else built (and cached).
fn cached_base(state: &AppState, entry: &Entry, params: &HeatmapParams) -> Result<Arc<HeatmapBase>, ApiError> {
    let key: BaseKey = (entry.version, params.location.as_str(), params.segment.clone(), params.res.get());
    if let Some(b) = state.bases.get(&key) {
        return Ok(b);
    }
    #[cfg(feature = "cluster")]
    if let Some(target) = &state.config.cluster {
        // Reduced on the cluster at this resolution; such a base has no coordinates to re-index.
        let cluster = crate::cluster::Cluster::open(&target.host, target.port, target.timeout, &entry.dataset.dir)?;
        let base = Arc::new(crate::cluster::jobs::heatmap_base(
            &cluster,
            params.location,
            params.segment.as_deref(),
            params.res,
        )?);
        state.bases.insert(key, base.clone());
        return Ok(base);
    }
    let sibling = state.bases.find(|k| k.0 == key.0 && k.1 == key.1 && k.2 == key.2);
    let base = Arc::new(match sibling.filter(|b| b.can_reindex()) {
        Some(other) => other.reindexed(params.res)?,
        None => HeatmapBase::build(&entry.dataset, params.location, params.segment.as_deref(), params.res)?,
    });
    state.bases.insert(key, base.clone());
    Ok(base)
}

fn respond(ds: &Dataset, result: &HeatmapResult, format: OutputFormat, metric: &str) -> Result<Reply, ApiError> {
    let params = &result.params;
    let cells = &result.cells;
    let body = Reply::new;
    Ok(match format {
        OutputFormat::Json => {
            let doc = views::heatmap_json(&ds.name, result)?;
            body("application/json", doc.to_string().into_bytes())
        }
        OutputFormat::GeoJson => {
            // Foreign members (RFC 7946 §6.1) tell a reader what the floor did.
            let mut doc = cells_geojson(cells)?;
            doc["res"] = params.res.get().into();
            doc["k"] = params.k.get().into();
            doc["suppressed"] = serde_json::json!(result.suppressed);
            body("application/geo+json", doc.to_string().into_bytes())
        }
        OutputFormat::Csv => body("text/csv", frame_bytes(cells, OutputFormat::Csv)?),
        OutputFormat::Arrow => body("application/vnd.apache.arrow.file", frame_bytes(cells, OutputFormat::Arrow)?),
        OutputFormat::Png | OutputFormat::Svg => {
            if cells.column(metric).is_err() {
                return Err(ApiError::bad_request(format!("metric '{metric}' is not a heatmap column")));
            }
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            let spec = MapSpec {
                cells,
                metric,
                title: views::map_title(metric, params),
                subtitle: views::map_subtitle(result, params),
                districts: ds.districts.as_ref(),
                size: (1200, 860),
                overlay: Vec::new(),
            };
            let ct = if image == ImageFormat::Png { "image/png" } else { "image/svg+xml" };
            body(ct, render_map(&spec, image)?)
        }
        OutputFormat::Parquet => return Err(ApiError::bad_request("parquet is not served; use arrow")),
    })
}
