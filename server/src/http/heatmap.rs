//! `GET /api/v1/datasets/{id}/heatmap?res&location&where&k&format`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use custmap_engine::analytics::{HeatmapBase, HeatmapParams, KFloor, Location};
use custmap_engine::io::write::{cells_geojson, frame_bytes, frame_to_json_rows};
use custmap_engine::io::OutputFormat;
use custmap_engine::render::map::{render_map, MapSpec};
use custmap_engine::render::ImageFormat;
use custmap_engine::spatial::Res;
use serde::Deserialize;

use super::{blocking, ApiError, AppState, BaseKey, CACHE_ENTRIES};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/datasets/{id}/heatmap", get(heatmap))
}

#[derive(Debug, Deserialize)]
pub struct Query_ {
    res: Option<u8>,
    location: Option<String>,
    #[serde(rename = "where")]
    where_: Option<String>,
    k: Option<u32>,
    format: Option<String>,
    metric: Option<String>,
}

async fn heatmap(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Query_>,
) -> Result<Response, ApiError> {
    let ds = state.dataset(&id)?;
    let params = HeatmapParams {
        res: Res::new(q.res.unwrap_or(8)).map_err(|e| ApiError::bad_request(format!("res: {e}")))?,
        location: q.location.as_deref().unwrap_or("work").parse::<Location>()?,
        segment: q.where_.clone().filter(|w| !w.trim().is_empty()),
        k: KFloor::new(q.k.unwrap_or(5))?,
        ..HeatmapParams::default()
    };
    let format = match q.format.as_deref().unwrap_or("json") {
        "json" => OutputFormat::Json,
        other => OutputFormat::from_name(other).filter(|f| !matches!(f, OutputFormat::Parquet)).ok_or_else(|| {
            ApiError::bad_request(format!("format '{other}' is not one of json, geojson, csv, arrow, png, svg"))
        })?,
    };
    let metric = q.metric.unwrap_or_else(|| "purchasing_power".into());
    blocking(move || -> Result<Response, ApiError> {
        let key: BaseKey = (id.clone(), params.location.as_str(), params.segment.clone(), params.res.get());
        let cached = state.bases.lock().ok().and_then(|c| c.get(&key).cloned());
        let base = match cached {
            Some(b) => b,
            None => {
                let b = Arc::new(HeatmapBase::build(&ds, params.location, params.segment.as_deref(), params.res)?);
                if let Ok(mut c) = state.bases.lock() {
                    if c.len() >= CACHE_ENTRIES {
                        c.clear();
                    }
                    c.insert(key, b.clone());
                }
                b
            }
        };
        let result = base.at(&params)?;
        let json =
            |v: serde_json::Value, ct: &'static str| ([(header::CONTENT_TYPE, ct)], v.to_string()).into_response();
        Ok(match format {
            OutputFormat::Json => json(
                serde_json::json!({
                    "dataset": id,
                    "res": params.res.get(),
                    "location": params.location.as_str(),
                    "where": params.segment,
                    "k": params.k.get(),
                    "suppressed": result.suppressed,
                    "cells": frame_to_json_rows(&result.cells)?,
                }),
                "application/json",
            ),
            OutputFormat::GeoJson => json(cells_geojson(&result.cells)?, "application/geo+json"),
            OutputFormat::Csv => {
                ([(header::CONTENT_TYPE, "text/csv")], frame_bytes(&result.cells, OutputFormat::Csv)?).into_response()
            }
            OutputFormat::Arrow => (
                [(header::CONTENT_TYPE, "application/vnd.apache.arrow.file")],
                frame_bytes(&result.cells, OutputFormat::Arrow)?,
            )
                .into_response(),
            OutputFormat::Png | OutputFormat::Svg => {
                if result.cells.column(&metric).is_err() {
                    return Err(ApiError::bad_request(format!("metric '{metric}' is not a heatmap column")));
                }
                let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
                let spec = MapSpec {
                    cells: &result.cells,
                    metric: &metric,
                    title: format!("{metric} · {} · H3 res {}", params.location.as_str(), params.res.get()),
                    subtitle: format!(
                        "segment: {} · k = {} ({} merged, {} dropped)",
                        params.segment.as_deref().unwrap_or("all customers"),
                        params.k.get(),
                        result.suppressed.merged,
                        result.suppressed.dropped
                    ),
                    districts: ds.districts.as_ref(),
                    size: (1200, 860),
                    overlay: Vec::new(),
                };
                let ct = if image == ImageFormat::Png { "image/png" } else { "image/svg+xml" };
                ([(header::CONTENT_TYPE, ct)], render_map(&spec, image)?).into_response()
            }
            OutputFormat::Parquet => return Err(ApiError::bad_request("parquet is not served; use arrow")),
        })
    })
    .await
}
