//! `GET /api/v1/datasets/{id}/attribution?model&by&window&format` and `GET .../funnel?by`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
#[cfg(feature = "cluster")]
use custmap_engine::analytics::attribution::attribution_of;
use custmap_engine::analytics::attribution::funnel;
use custmap_engine::analytics::{attribution, AttributionParams, AttributionResult};
use custmap_engine::io::write::frame_bytes;
use custmap_engine::io::OutputFormat;
use custmap_engine::polars::prelude::DataFrame;
use custmap_engine::render::chart::{render_chart, Chart};
use custmap_engine::render::ImageFormat;
use custmap_engine::Dataset;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{access, requested_k, require_exact};
use super::{cached, ApiError, AppState, Problem, Reply};
use crate::release;
use crate::requests::{AttributionRequest, FunnelRequest};
use crate::views::{self, ChartChoice};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(attribution_route)).routes(routes!(funnel_route))
}

pub(super) fn table_format(format: Option<&str>) -> Result<OutputFormat, ApiError> {
    match format.unwrap_or("json") {
        "json" => Ok(OutputFormat::Json),
        "csv" => Ok(OutputFormat::Csv),
        "arrow" => Ok(OutputFormat::Arrow),
        "png" => Ok(OutputFormat::Png),
        "svg" => Ok(OutputFormat::Svg),
        other => Err(ApiError::bad_request(format!("format '{other}' is not one of json, csv, arrow, png, svg"))),
    }
}

/// A table as CSV or Arrow, or a chart as PNG or SVG.
pub(super) fn table_response(frame: &DataFrame, format: OutputFormat) -> Result<Reply, ApiError> {
    let ct = if format == OutputFormat::Csv { "text/csv" } else { "application/vnd.apache.arrow.file" };
    Ok(Reply::new(ct, frame_bytes(frame, format)?))
}

fn chart_response(chart: &Chart, format: OutputFormat) -> Result<Reply, ApiError> {
    let (image, ct) =
        if format == OutputFormat::Png { (ImageFormat::Png, "image/png") } else { (ImageFormat::Svg, "image/svg+xml") };
    Ok(Reply::new(ct, render_chart(chart, image)?))
}

pub(super) fn is_image(format: OutputFormat) -> bool {
    matches!(format, OutputFormat::Png | OutputFormat::Svg)
}

/// Leads, visits, deals, revenue, cost and ROI per channel or campaign under each model.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/attribution", tag = "attribution",
    params(("id" = String, Path, description = "dataset id"), AttributionRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{dataset, model, by, window, unattributed, shapley_std_error, rows: [...]}`; or the rows as CSV / Arrow; or a chart",
            content((Object = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.apache.arrow.file"),
                    (Vec<u8> = "image/png"), (String = "image/svg+xml"))),
        (status = 400, description = "a bad parameter, named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no analyst token, or an unknown one (public callers get only the differentially private heatmap)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json")))]
async fn attribution_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<AttributionRequest>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "attribution")?;
    let Query(req) = q?;
    let entry = state.registry.entry(&id)?;
    let ds = entry.dataset;
    let params = AttributionParams::try_from(&req)?;
    let k = state.config.policy.floor(requested_k(req.k)?)?;
    let format = table_format(req.format.as_deref())?;
    let chart = req.chart;
    let key = format!("attribution {params:?} {k:?} {format:?} {chart:?}");
    let st = state.clone();
    cached(&state, entry.version, key, move || {
        let by = params.by;
        if chart == Some(ChartChoice::Monthly) {
            // Deals and leads per month and key, under the rows' floor and the ledger.
            let months = funnel::monthly(&funnel::journeys_for(&ds, &params)?, by)?;
            if !is_image(format) {
                let months = st.ledgers.with(&id, |ledger| Ok(release::monthly(months, by, k, ledger)?))?;
                return match format {
                    OutputFormat::Json => Ok(Reply::new(
                        "application/json",
                        release::json_bytes(&release::monthly_document(&id, by, &months)?),
                    )),
                    _ => table_response(&months, format),
                };
            }
            let result = run_attribution(&st, &ds, &params)?;
            let (result, months) = st.ledgers.with(&id, |ledger| {
                let result = release::attribution(result, ds.campaigns.as_ref(), k, ledger)?;
                Ok((result, release::monthly(months, by, k, ledger)?))
            })?;
            return chart_response(&views::attribution_chart(&result, Some(&months), ChartChoice::Monthly)?, format);
        }
        let result = run_attribution(&st, &ds, &params)?;
        let (result, doc) = st.ledgers.with(&id, |ledger| {
            let result = release::attribution(result, ds.campaigns.as_ref(), k, ledger)?;
            let doc = match format {
                OutputFormat::Json => Some(release::attribution_document(&id, &result, k, ledger)?),
                _ => None,
            };
            Ok((result, doc))
        })?;
        if let Some(doc) = doc {
            return Ok(Reply::new("application/json", release::json_bytes(&doc)));
        }
        if is_image(format) {
            let chart = chart.unwrap_or(if params.models.len() > 1 { ChartChoice::Compare } else { ChartChoice::Roi });
            return chart_response(&views::attribution_chart(&result, None, chart)?, format);
        }
        table_response(&result.table, format)
    })
    .await
}

/// The route's attribution: journeys reduced on the server's cluster when it has one (every
/// model but time_decay, which needs per-touch times), else built locally.
fn run_attribution(state: &AppState, ds: &Dataset, params: &AttributionParams) -> Result<AttributionResult, ApiError> {
    #[cfg(feature = "cluster")]
    if let Some(t) =
        state.config.cluster.as_ref().filter(|_| !params.models.contains(&custmap_engine::analytics::Model::TimeDecay))
    {
        let cluster = crate::cluster::Cluster::open(&t.host, t.port, t.timeout, &ds.dir)?;
        let journeys = crate::cluster::jobs::journeys(&cluster, params.by, params.window_days)?;
        return Ok(attribution_of(&journeys, ds.campaigns.as_ref(), params)?);
    }
    #[cfg(not(feature = "cluster"))]
    let _ = state;
    Ok(attribution(ds, params)?)
}

/// Leads, visited and deals per first-touch channel or campaign.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/funnel", tag = "attribution",
    params(("id" = String, Path, description = "dataset id"), FunnelRequest),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{dataset, by, rows: [{channel, leads, visited, deals, ...}]}`; or CSV / Arrow; or a chart",
            content((Object = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.apache.arrow.file"),
                    (Vec<u8> = "image/png"), (String = "image/svg+xml"))),
        (status = 400, description = "a bad parameter, named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no analyst token, or an unknown one (public callers get only the differentially private heatmap)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json")))]
async fn funnel_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<FunnelRequest>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "the funnel")?;
    let Query(req) = q?;
    let entry = state.registry.entry(&id)?;
    let ds = entry.dataset;
    let by = req.by;
    let k = state.config.policy.floor(requested_k(req.k)?)?;
    let format = table_format(req.format.as_deref())?;
    let st = state.clone();
    cached(&state, entry.version, format!("funnel {by:?} {k:?} {format:?}"), move || {
        let params = AttributionParams { by, ..AttributionParams::default() };
        let table = funnel::funnel(&funnel::journeys_for(&ds, &params)?, by)?;
        let table = st.ledgers.with(&id, |ledger| Ok(release::funnel(table, by, k, ledger)?))?;
        if is_image(format) {
            return chart_response(&views::funnel_chart(&table, by)?, format);
        }
        if format != OutputFormat::Json {
            return table_response(&table, format);
        }
        Ok(Reply::new("application/json", release::json_bytes(&release::funnel_document(&id, by, &table)?)))
    })
    .await
}
