//! `GET /api/v1/datasets/{id}/referrals?by&k&format`: referral chains (analysts only).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use custmap_engine::analytics::referrals::{referrals, ReferralsBy, ReferralsParams};
use custmap_engine::analytics::Location;
use custmap_engine::io::OutputFormat;
use custmap_engine::spatial::Res;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{access, require_exact};
use super::attribution::{table_format, table_response};
use super::{cached, ApiError, AppState, Problem, Reply};
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(referrals_route))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralsQuery {
    /// `referrer` (default: one row per advocate), `channel` (the roots' acquisition channel) or
    /// `cell` (where advocates live or work).
    by: Option<String>,
    /// H3 resolution of `by=cell` (default 7).
    #[param(minimum = 0, maximum = 15)]
    res: Option<u8>,
    /// `home` (default) or `work`: the advocates' place for `by=cell`.
    location: Option<String>,
    /// Privacy floor for channel rows; only raises the server's `--min-k`.
    #[param(minimum = 1, maximum = 1000)]
    k: Option<u32>,
    /// `json` (default), `csv` or `arrow`.
    format: Option<String>,
}

/// Referral chains: advocates with their direct and chain referrals, buyers and revenue, or the
/// referral multiplier of each acquisition channel; with the member-value summary.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/referrals", tag = "attribution",
    params(("id" = String, Path, description = "dataset id"), ReferralsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{dataset, by, k, summary, suppressed, ignored_links, rows}`; or the rows as CSV / Arrow",
            content((Object = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.apache.arrow.file"))),
        (status = 400, description = "a bad parameter, named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "an Authorization header with an unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json")))]
async fn referrals_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ReferralsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "referral chains")?;
    let Query(q) = q?;
    let entry = state.registry.entry(&id)?;
    let ds = entry.dataset;
    let by = match q.by.as_deref().unwrap_or("referrer") {
        "referrer" => ReferralsBy::Referrer,
        "channel" => ReferralsBy::Channel,
        "cell" => ReferralsBy::Cell,
        other => return Err(ApiError::bad_request(format!("by '{other}' is not one of referrer, channel, cell"))),
    };
    let location = match q.location.as_deref().unwrap_or("home") {
        "home" => Location::Home,
        "work" => Location::Work,
        other => return Err(ApiError::bad_request(format!("location '{other}' is not one of home, work"))),
    };
    let params = ReferralsParams {
        by,
        k: state.config.policy.floor(super::access::requested_k(q.k)?)?,
        res: Res::new(q.res.unwrap_or(7))?,
        location,
    };
    let format = table_format(q.format.as_deref())?;
    if matches!(format, OutputFormat::Png | OutputFormat::Svg) {
        return Err(ApiError::bad_request("format: referrals are json, csv or arrow"));
    }
    cached(&state, entry.version, format!("referrals {params:?} {format:?}"), move || {
        let result = referrals(&ds, &params)?;
        if format != OutputFormat::Json {
            return table_response(&result.table, format);
        }
        Ok(Reply::json(&views::referrals_json(&id, &result, params.k.get())?))
    })
    .await
}
