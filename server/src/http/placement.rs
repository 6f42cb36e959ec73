//! `POST /api/v1/datasets/{id}/placement` with a JSON body. Coverage (who each site reaches) is
//! cached per (dataset version, segment, reach mode, weight, radii), so trying budgets or site
//! lists is quick.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use custmap_engine::analytics::placement::{Coverage, PlacementParams};
use custmap_engine::analytics::KFloor;
use custmap_engine::render::ImageFormat;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{access, require_exact};
use super::state::{AppState, CoverageKey, Entry};
use super::{cached, ApiError, Problem, Reply};
use crate::release;
use crate::requests::PlacementRequest;
use crate::views::{self, PlotChoice};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(placement))
}

/// Which sites to buy for a budget: the plan, the reach split, overlaps, the optimality gap and
/// per-kind baselines (SPEC §5).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/placement", tag = "placement",
    params(("id" = String, Path, description = "dataset id")),
    request_body = PlacementRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{budget, cost, reach, upper_bound, gap, reach_split, sites, overlap, baselines, curve, prospects, withheld}` (figures of 1 to k-1 prospects, or that would give one, are null; see `withheld`); or a picture",
            content((Object = "application/json"), (Vec<u8> = "image/png"), (String = "image/svg+xml"))),
        (status = 400, description = "a bad field, named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no analyst token, or an unknown one (public callers get only the differentially private heatmap)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "the body is not JSON", body = Problem, content_type = "application/problem+json")))]
async fn placement(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PlacementRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "placement")?;
    let entry = state.registry.entry(&id)?;
    let Json(req) = body?;
    let params = PlacementParams::try_from(&req)?;
    if let Some(w) = &params.segment {
        state.config.policy.check_segment(&entry.dataset.customers, w)?;
    }
    let radii = req.radii()?;
    let k = state.config.policy.floor(super::access::requested_k(req.k)?)?;
    let image = match req.format.as_deref().unwrap_or("json") {
        "json" => None,
        "png" => Some(ImageFormat::Png),
        "svg" => Some(ImageFormat::Svg),
        other => return Err(ApiError::bad_request(format!("format '{other}' is not one of json, png, svg"))),
    };
    let plot = req.plot;
    // Over HTTP a search may not outlive its request: the deadline answers 503 long before 600 s
    // and a worker would stay held for nobody.
    let cap = MAX_HTTP_TIME_LIMIT_S.min(state.config.timeout.as_secs_f64());
    if params.time_limit_s > cap {
        return Err(ApiError::bad_request(format!(
            "time_limit_s = {}: over HTTP the solver may search at most {cap} s (the CLI takes more)",
            params.time_limit_s
        )));
    }
    let key = format!("placement {params:?} {radii:?} {k:?} {image:?} {plot:?}");
    let st = state.clone();
    cached(&state, entry.version, key, move || {
        // The segment is applied less its low-effect conditions; pictures show the caller's text.
        let shown = params.clone();
        let mut params = params;
        if let Some(text) = &params.segment {
            params.segment = super::heatmap::answered_segment(&st, &entry, &id, text, k)?;
        }
        let coverage = cached_coverage(&st, &entry, &params, &radii)?;
        // The floor, before any planning: a plan over fewer target prospects than k would show
        // where they are (a one-person segment and a shrinking reach_m find a home). The count
        // is not echoed.
        if (coverage.prospects as u64) < u64::from(k.get()) {
            return Err(ApiError::bad_request(format!(
                "the target segment holds fewer prospects than the privacy floor k = {}; widen it",
                k.get()
            )));
        }
        let mut report = coverage.plan(&params)?;
        report.floor(k)?;
        guard_differences(&st, &id, &params, &report, k)?;
        Ok(match image {
            None => Reply::new("application/json", release::json_bytes(&release::placement_document(&report)?)),
            Some(image) => {
                let bytes = if plot == PlotChoice::Curve {
                    views::reach_curve(&report, &shown, image)?
                } else {
                    let map = views::placement_heatmap_params(&shown, k);
                    let heat = super::heatmap::released_as(&st, &entry, &id, &map, params.segment.clone())?;
                    views::placement_map(&entry.dataset, &coverage, &report, &shown, &heat, image)?
                };
                Reply::new(if image == ImageFormat::Png { "image/png" } else { "image/svg+xml" }, bytes)
            }
        })
    })
    .await
}

/// The release ledger on placement: the people a plan reaches, keyed by its sites (not the
/// radii, nor the segment), and the segment's size, keyed by the reach mode. An answer whose
/// figure is within k-1 of one released before is refused: a segment nudged by one person
/// (`budget >= X` against `> X`, X one person's budget) would otherwise move a forced site's
/// reach by one as its radius is bisected, which trilaterates a home; and two radii for the same
/// sites are answered only when their reach differs by k or more, so radii cannot be bisected
/// finely.
fn guard_differences(
    st: &AppState,
    id: &str,
    params: &PlacementParams,
    report: &custmap_engine::analytics::placement::PlacementReport,
    k: KFloor,
) -> Result<(), ApiError> {
    let mut sites: Vec<&str> = report.sites.iter().map(|s| s.site_id.as_str()).collect();
    sites.sort_unstable();
    let figures = [
        (format!("placement/{:?}/reach", params.reach), sites.join(","), report.people_reached() as f64),
        (format!("placement/{:?}/segment", params.reach), "prospects".to_string(), report.prospects as f64),
    ];
    let kf = f64::from(k.get());
    st.ledgers.with(id, |ledger| {
        if figures.iter().any(|(scope, key, v)| !ledger.admits(scope, key, *v, kf)) {
            return Err(ApiError::bad_request(format!(
                "this plan's reach, or its segment's size, is within {} of an answer given before (the differencing guard, k = {}): change the sites, the budget or the segment",
                k.get() - 1,
                k.get()
            )));
        }
        for (scope, key, v) in &figures {
            ledger.record(scope, key, *v);
        }
        Ok(())
    })
}

/// The longest search an HTTP placement may ask for, seconds (less when the server's request
/// timeout is shorter).
pub const MAX_HTTP_TIME_LIMIT_S: f64 = 30.0;

fn cached_coverage(
    state: &AppState,
    entry: &Entry,
    params: &PlacementParams,
    radii: &BTreeMap<String, f64>,
) -> Result<Arc<Coverage>, ApiError> {
    let key: CoverageKey = (
        entry.version,
        params.segment.clone(),
        format!("{:?}", params.reach),
        format!("{:?}", params.weight),
        format!("{radii:?}"),
    );
    if let Some(c) = state.coverages.get(&key) {
        return Ok(c);
    }
    let radii = radii.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let coverage =
        Arc::new(Coverage::build(&entry.dataset, params.segment.as_deref(), params.reach, params.weight, &radii)?);
    state.coverages.insert(key, coverage.clone());
    Ok(coverage)
}
