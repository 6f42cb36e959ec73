//! `GET /api/v1/datasets/{id}/referrals?by&k&format`: referral chains (analysts only).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use custmap_engine::analytics::referrals::{referrals, ReferralsParams};
use custmap_engine::io::OutputFormat;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{access, require_exact};
use super::attribution::{table_format, table_response};
use super::{cached, ApiError, AppState, Problem, Reply};
use crate::requests::ReferralsRequest;
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(referrals_route))
}

/// Referral chains: advocates with their direct and chain referrals, buyers and revenue, or the
/// referral multiplier of each acquisition channel; with the member-value summary.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/referrals", tag = "attribution",
    params(("id" = String, Path, description = "dataset id"), ReferralsRequest),
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
    q: Result<Query<ReferralsRequest>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "referral chains")?;
    let Query(req) = q?;
    let entry = state.registry.entry(&id)?;
    let ds = entry.dataset;
    let mut params = ReferralsParams::try_from(&req)?;
    params.k = state.config.policy.floor(super::access::requested_k(req.k)?)?;
    let format = table_format(req.format.as_deref())?;
    if matches!(format, OutputFormat::Png | OutputFormat::Svg) {
        return Err(ApiError::bad_request("format: referrals are json, csv or arrow"));
    }
    cached(&state, entry.version, format!("referrals {params:?} {format:?}"), move || {
        let result = referrals(&ds, &params)?;
        if format != OutputFormat::Json {
            return table_response(&result.table, format);
        }
        Ok(Reply::new(
            "application/json",
            crate::release::json_bytes(&views::referrals_json(&id, &result, params.k.get())?),
        ))
    })
    .await
}
