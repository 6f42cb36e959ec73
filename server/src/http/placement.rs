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
use custmap_engine::analytics::placement::{Coverage, PlacementParams, ReachMode, Weight};
use custmap_engine::analytics::{KFloor, Segment};
use custmap_engine::render::ImageFormat;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{access, require_exact};
use super::state::{AppState, CoverageKey, Entry};
use super::{cached, ApiError, Problem, Reply};
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(placement))
}

/// A placement request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// Budget in the sites' cost unit (CNY); >= 0.
    budget: f64,
    /// Target segment: a SQL boolean expression over customer columns.
    #[serde(rename = "where")]
    #[schema(rename = "where")]
    where_: Option<String>,
    /// `home`, `work`, `both` (default, as on the CLI) or `commute`.
    reach: Option<String>,
    /// `count` (default: one per prospect) or `budget` (purchasing power).
    weight: Option<String>,
    /// Site ids that must be in the plan.
    #[serde(default)]
    must_include: Vec<String>,
    /// Site ids never to choose.
    #[serde(default)]
    exclude: Vec<String>,
    /// Only sites of these kinds (e.g. `["office_lobby", "cafe"]`); all kinds when absent.
    kinds: Option<Vec<String>>,
    /// Reach radius per kind in metres, overriding the sites' `reach_m` and the defaults.
    #[serde(default)]
    reach_m: BTreeMap<String, f64>,
    /// `json` (default), or `png` / `svg` for a picture.
    format: Option<String>,
    /// For png/svg: `map` (default: the plan over the target prospects) or `curve` (reach versus budget).
    plot: Option<String>,
    /// Seconds the solver may search before reporting its best plan with a certified gap
    /// (default 2; at most 30 over HTTP).
    #[schema(exclusive_minimum = 0, maximum = 30)]
    time_limit_s: Option<f64>,
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
    let where_ = Segment::given(req.where_.as_deref()).map(str::to_string);
    if let Some(w) = &where_ {
        state.config.policy.check_segment(&entry.dataset.customers, w)?;
    }
    let reach = match req.reach.as_deref().unwrap_or("both") {
        "home" => ReachMode::Home,
        "work" => ReachMode::Work,
        "both" => ReachMode::Both,
        "commute" => ReachMode::Commute,
        other => return Err(ApiError::bad_request(format!("reach '{other}' is not one of home, work, both, commute"))),
    };
    let weight = match req.weight.as_deref().unwrap_or("count") {
        "count" => Weight::Count,
        "budget" => Weight::Budget,
        other => return Err(ApiError::bad_request(format!("weight '{other}' is not one of count, budget"))),
    };
    let image = match req.format.as_deref().unwrap_or("json") {
        "json" => None,
        "png" => Some(ImageFormat::Png),
        "svg" => Some(ImageFormat::Svg),
        other => return Err(ApiError::bad_request(format!("format '{other}' is not one of json, png, svg"))),
    };
    let curve = match req.plot.as_deref().unwrap_or("map") {
        "map" => false,
        "curve" => true,
        other => return Err(ApiError::bad_request(format!("plot '{other}' is not one of map, curve"))),
    };
    for (kind, &r) in &req.reach_m {
        custmap_engine::analytics::placement::check_radius(kind, r)?;
    }
    let params = PlacementParams {
        budget: req.budget,
        segment: where_,
        reach,
        weight,
        must_include: req.must_include,
        exclude: req.exclude,
        kinds: req.kinds.unwrap_or_default(),
        time_limit_s: req.time_limit_s.unwrap_or(custmap_engine::analytics::placement::DEFAULT_TIME_LIMIT_S),
    };
    params.check()?;
    // Over HTTP a search may not outlive its request: the deadline answers 503 long before 600 s
    // and a worker would stay held for nobody.
    let cap = MAX_HTTP_TIME_LIMIT_S.min(state.config.timeout.as_secs_f64());
    if params.time_limit_s > cap {
        return Err(ApiError::bad_request(format!(
            "time_limit_s = {}: over HTTP the solver may search at most {cap} s (the CLI takes more)",
            params.time_limit_s
        )));
    }
    let key = format!("placement {params:?} {:?} {image:?} {curve}", req.reach_m);
    let st = state.clone();
    let min_k = state.config.policy.min_k.get();
    let radii = req.reach_m;
    cached(&state, entry.version, key, move || {
        // The segment is applied less its low-effect conditions; pictures show the caller's text.
        let shown = params.clone();
        let k = KFloor::new(min_k)?;
        let mut params = params;
        if let Some(text) = &params.segment {
            params.segment = super::heatmap::answered_segment(&st, &entry, &id, text, k)?;
        }
        let coverage = cached_coverage(&st, &entry, &params, &radii)?;
        // The floor, before any planning: a plan over fewer target prospects than k would show
        // where they are (a one-person segment and a shrinking reach_m find a home). The count
        // is not echoed.
        if (coverage.prospects as u64) < u64::from(min_k) {
            return Err(ApiError::bad_request(format!(
                "the target segment holds fewer prospects than the privacy floor k = {min_k}; widen it"
            )));
        }
        let mut report = coverage.plan(&params)?;
        report.floor(k)?;
        guard_differences(&st, &id, &params, &report, k)?;
        Ok(match image {
            None => Reply::json(&serde_json::to_value(&report).map_err(ApiError::internal)?),
            Some(image) => {
                let bytes = if curve {
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
