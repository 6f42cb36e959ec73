//! `GET /api/v1/datasets/{id}/attribution?model&by&window&format` and `GET .../funnel?by`.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use custmap_engine::analytics::attribution::funnel;
use custmap_engine::analytics::{attribution, AttributionParams, By, Model};
use custmap_engine::io::write::{frame_bytes, frame_to_json_rows};
use custmap_engine::io::OutputFormat;
use serde::Deserialize;

use super::{blocking, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/datasets/{id}/attribution", get(attribution_route))
        .route("/api/v1/datasets/{id}/funnel", get(funnel_route))
}

#[derive(Debug, Deserialize)]
pub struct AttributionQuery {
    model: Option<String>,
    by: Option<String>,
    window: Option<u32>,
    format: Option<String>,
}

fn parse_by(by: Option<&str>) -> Result<By, ApiError> {
    match by.unwrap_or("channel") {
        "channel" => Ok(By::Channel),
        "campaign" => Ok(By::Campaign),
        other => Err(ApiError::bad_request(format!("by '{other}' is not one of channel, campaign"))),
    }
}

fn table_format(format: Option<&str>) -> Result<OutputFormat, ApiError> {
    match format.unwrap_or("json") {
        "json" => Ok(OutputFormat::Json),
        "csv" => Ok(OutputFormat::Csv),
        "arrow" => Ok(OutputFormat::Arrow),
        other => Err(ApiError::bad_request(format!("format '{other}' is not one of json, csv, arrow"))),
    }
}

fn table_response(
    frame: &custmap_engine::polars::prelude::DataFrame,
    format: OutputFormat,
) -> Result<Response, ApiError> {
    let ct = if format == OutputFormat::Csv { "text/csv" } else { "application/vnd.apache.arrow.file" };
    Ok(([(header::CONTENT_TYPE, ct)], frame_bytes(frame, format)?).into_response())
}

async fn attribution_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttributionQuery>,
) -> Result<Response, ApiError> {
    let ds = state.dataset(&id)?;
    let params = AttributionParams {
        models: Model::parse_list(q.model.as_deref().unwrap_or("markov"))?,
        by: parse_by(q.by.as_deref())?,
        window_days: q.window.unwrap_or(365),
        ..AttributionParams::default()
    };
    params.check()?;
    let format = table_format(q.format.as_deref())?;
    blocking(move || {
        let result = attribution(&ds, &params)?;
        if format != OutputFormat::Json {
            return table_response(&result.table, format);
        }
        let doc = serde_json::json!({
            "dataset": id,
            "model": params.models.iter().map(|m| m.name()).collect::<Vec<_>>(),
            "by": params.by,
            "window": params.window_days,
            "unattributed": {"conversions": result.unattributed.0, "revenue": result.unattributed.1},
            "shapley_std_error": result.shapley_std_error,
            "rows": frame_to_json_rows(&result.table)?,
        });
        Ok(([(header::CONTENT_TYPE, "application/json")], doc.to_string()).into_response())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct FunnelQuery {
    by: Option<String>,
    format: Option<String>,
}

async fn funnel_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<FunnelQuery>,
) -> Result<Response, ApiError> {
    let ds = state.dataset(&id)?;
    let by = parse_by(q.by.as_deref())?;
    let format = table_format(q.format.as_deref())?;
    blocking(move || {
        let params = AttributionParams { by, ..AttributionParams::default() };
        let table = funnel::funnel(&funnel::journeys_for(&ds, &params)?, by)?;
        if format != OutputFormat::Json {
            return table_response(&table, format);
        }
        let doc = serde_json::json!({"dataset": id, "by": by, "rows": frame_to_json_rows(&table)?});
        Ok(([(header::CONTENT_TYPE, "application/json")], doc.to_string()).into_response())
    })
    .await
}
