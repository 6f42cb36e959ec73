//! `GET /api/v1/datasets/{id}/heatmap?res&location&where&k&format&metric`.
//!
//! The expensive part, reducing customers to coordinate groups, is cached per (dataset version,
//! location, segment). Another resolution is served from a cached base by re-indexing its
//! groups, which gives exactly the cells a fresh build would.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use custmap_engine::analytics::heatmap::Totals;
use custmap_engine::analytics::privacy::segments::Answered;
use custmap_engine::analytics::KFloor;
use custmap_engine::analytics::{HeatmapBase, HeatmapParams, HeatmapResult, Location, PublicRelease};
use custmap_engine::io::write::{cells_geojson, frame_bytes};
use custmap_engine::io::OutputFormat;
use custmap_engine::render::map::{render_map, MapSpec};
use custmap_engine::render::ImageFormat;
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::access;
use super::state::{AppState, BaseKey, Entry, PublicKey};
use super::{cached, ApiError, Problem, Reply};
use crate::requests::HeatmapRequest;
use crate::views;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(heatmap))
}

/// Heatmap cells with the metrics of SPEC §3. With an analyst or admin token: exact figures under
/// the server's floor (every count and sum of a cell covers at least k people, or is withheld).
/// Without a token: the differentially private public release (resolutions the server declares,
/// no segment), its parameters stated in the response.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/heatmap", tag = "heatmap",
    params(("id" = String, Path, description = "dataset id"), HeatmapRequest),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "cells: `{dataset, res, location, where, k, suppressed: {merged, dropped, withheld, differencing}, totals, cells: [...]}` as JSON; or GeoJSON, CSV (hex_id column), Arrow IPC, PNG or SVG",
            content(
                (Object = "application/json"),
                (Object = "application/geo+json"),
                (String = "text/csv"),
                (Vec<u8> = "application/vnd.apache.arrow.file"),
                (Vec<u8> = "image/png"),
                (String = "image/svg+xml"))),
        (status = 400, description = "a bad parameter, named", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "an Authorization header with an unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the public release does not hold this (a segment, another resolution, an unreleased metric): it needs an analyst token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "the Accept header names no served type", body = Problem, content_type = "application/problem+json")))]
async fn heatmap(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<HeatmapRequest>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let access = access(&headers, &state.config)?;
    let Query(req) = q?;
    let entry = state.registry.entry(&id)?;
    let format = match req.format.as_deref() {
        Some(name) => parse_format(name)?,
        None => from_accept(&headers)?,
    };
    if !access.exact() {
        // The public release has no floor to ask for: its figures are differentially private.
        let params = HeatmapParams::try_from(&HeatmapRequest { k: None, ..req.clone() })?;
        let has_segment = params.segment.is_some();
        return public_heatmap(&state, entry, params.res, params.location, has_segment, format, req.metric).await;
    }
    let mut params = HeatmapParams::try_from(&req)?;
    let metric = req.metric;
    let policy = &state.config.policy;
    if let Some(w) = &params.segment {
        policy.check_segment(&entry.dataset.customers, w)?;
    }
    params.k = policy.floor(super::access::requested_k(req.k)?)?;
    let key = format!("heatmap {params:?} {format:?} {metric}");
    let version = entry.version;
    let st = state.clone();
    cached(&state, version, key, move || {
        let result = released(&st, &entry, &id, &params)?;
        respond(&entry.dataset, &result, format, &metric, None)
    })
    .await
}

/// An exact heatmap as the server releases it: from the cached base, under the floor of
/// `params.k`, through dataset `id`'s release ledger, its segment applied less the conditions
/// that change it by 1 to k-1 customers (`Policy::applied_segment`; the result shows the
/// caller's text). Every exact map goes through here.
pub(super) fn released(
    state: &AppState,
    entry: &Entry,
    id: &str,
    params: &HeatmapParams,
) -> Result<HeatmapResult, ApiError> {
    let answered = match &params.segment {
        Some(text) => answered_segment(state, entry, id, text, params.k)?,
        None => None,
    };
    released_as(state, entry, id, params, answered)
}

/// [`released`] with its segment already answered (`answered`, from [`answered_segment`]): a
/// placement's map shows the plan's own segment.
pub(super) fn released_as(
    state: &AppState,
    entry: &Entry,
    id: &str,
    params: &HeatmapParams,
    answered: Option<String>,
) -> Result<HeatmapResult, ApiError> {
    let applied = HeatmapParams { segment: answered, ..params.clone() };
    let base = cached_base(state, entry, &applied)?;
    let mut result = base.at(&applied)?;
    state.ledgers.with(id, |ledger| Ok(result.withhold_differences(ledger)?))?;
    result.params.segment.clone_from(&params.segment);
    Ok(result)
}

/// The segment a caller's filter is answered as (`None`: everyone): less its low-effect
/// conditions, then as an earlier answered segment of the dataset within 1 to k-1 customers of
/// it (`custmap_engine::analytics::privacy::segments`). Every exact answer with a segment, of
/// any analytic, goes through here, so any two of them are the same people or k apart.
pub(super) fn answered_segment(
    state: &AppState,
    entry: &Entry,
    id: &str,
    text: &str,
    k: KFloor,
) -> Result<Option<String>, ApiError> {
    let customers = &entry.dataset.customers;
    let (applied, members) = state.config.policy.applied_members(customers, text, k)?;
    Ok(match state.ledgers.answer_segment(id, entry.version, customers, &applied, members, k.get())? {
        Answered::AsAsked => Some(applied),
        Answered::As(earlier) => earlier,
    })
}

/// The public heatmap: a cell table of the differentially private lattice, or a 403 for what
/// the lattice does not hold (a segment, another resolution).
async fn public_heatmap(
    state: &AppState,
    entry: Entry,
    res: Res,
    location: Location,
    has_segment: bool,
    format: OutputFormat,
    metric: String,
) -> Result<Response, ApiError> {
    let policy = &state.config.policy;
    let lattice = policy.public.resolutions.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
    if has_segment {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a segment filter (where) needs an analyst token; the public heatmap covers all customers",
        ));
    }
    if !policy.public.serves(res) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("the public heatmap is released at res {lattice}; other resolutions need an analyst token"),
        ));
    }
    let image = matches!(format, OutputFormat::Png | OutputFormat::Svg);
    if image && matches!(metric.as_str(), "deals" | "revenue") {
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("'{metric}' is not released to the public")));
    }
    // The metric only colours a picture; other formats share one reply.
    let key = format!("public heatmap {res:?} {location:?} {format:?} {}", if image { metric.as_str() } else { "" });
    let st = state.clone();
    cached(state, entry.version, key, move || {
        let release = public_release(&st, &entry, location, res)?;
        let m = &release.mechanism;
        let privacy = serde_json::json!({
            "access": "public",
            "noised": true,
            "model": "(epsilon, delta)-differential privacy: discrete Laplace noise on every count and sum, cells published above a noisy threshold",
            "epsilon_total": st.config.policy.public.epsilon,
            "delta_total": st.config.policy.public.delta,
            "release": m,
            "budget_cap": st.config.policy.public.budget_cap,
        });
        let result = HeatmapResult {
            params: HeatmapParams { res, location, ..HeatmapParams::default() },
            totals: Totals { customers: release.customers, prospects: release.customers, ..Totals::default() },
            suppressed: Default::default(),
            cells: release.cells.clone(),
        };
        if format == OutputFormat::Json {
            let doc = serde_json::json!({
                "dataset": entry.dataset.name,
                "res": res.get(),
                "location": location.as_str(),
                "where": null,
                "access": "public",
                "privacy": privacy,
                "totals": {"customers": release.customers},
                "cells": custmap_engine::io::write::frame_to_json_rows(&release.cells)?,
            });
            return Ok(Reply::json(&doc));
        }
        let subtitle = format!(
            "public figures: differentially private (epsilon {} over the whole release, delta {}), noise on every figure; cells under ~{} customers not shown",
            st.config.policy.public.epsilon, st.config.policy.public.delta, m.threshold
        );
        respond(&entry.dataset, &result, format, &metric, Some((subtitle, privacy)))
    })
    .await
}

/// The release of (`location`, `res`) for this dataset version: cached, else drawn with the
/// server's noise key on a stream named by the release's exact figures (the same figures and
/// key give the same noise, so recomputing spends no privacy budget; other figures, fresh
/// noise).
fn public_release(
    state: &AppState,
    entry: &Entry,
    location: Location,
    res: Res,
) -> Result<Arc<PublicRelease>, ApiError> {
    let key: PublicKey = (entry.version, location.as_str(), res.get());
    if let Some(r) = state.public.get(&key) {
        return Ok(r);
    }
    let public = &state.config.policy.public;
    let release = Arc::new(PublicRelease::build(&entry.dataset, location, res, public, &state.config.noise_key)?);
    state.public.insert(key, release.clone());
    Ok(release)
}

fn parse_format(name: &str) -> Result<OutputFormat, ApiError> {
    match name {
        "json" => Ok(OutputFormat::Json),
        other => OutputFormat::from_name(other).filter(|f| *f != OutputFormat::Parquet).ok_or_else(|| {
            ApiError::bad_request(format!("format '{other}' is not one of json, geojson, csv, arrow, png, svg"))
        }),
    }
}

/// The format an Accept header asks for: the served type of highest `q` (the first listed on a
/// tie), `*/*` and `application/json` meaning JSON; JSON when there is no header; 406 when the
/// header lists only types not served or refused (`q=0`).
fn from_accept(headers: &HeaderMap) -> Result<OutputFormat, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(OutputFormat::Json);
    };
    let accept = String::from_utf8_lossy(accept.as_bytes());
    if accept.trim().is_empty() {
        return Ok(OutputFormat::Json);
    }
    let mut best: Option<(f32, OutputFormat)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if !(q > 0.0) {
            continue;
        }
        let format = match mime.as_str() {
            "*/*" | "application/*" | "application/json" => OutputFormat::Json,
            "application/geo+json" => OutputFormat::GeoJson,
            "text/csv" | "text/*" => OutputFormat::Csv,
            m if m.starts_with("application/vnd.apache.arrow") => OutputFormat::Arrow,
            "image/png" | "image/*" => OutputFormat::Png,
            "image/svg+xml" => OutputFormat::Svg,
            _ => continue,
        };
        if best.is_none_or(|(b, _)| q > b) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Accept '{}' names no type this route serves: application/json, application/geo+json, text/csv, application/vnd.apache.arrow.file, image/png, image/svg+xml",
                super::error::bounded(&accept, 200)
            ),
        )
    })
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

/// The cell table in `format`. `public` carries the subtitle and privacy statement of a public
/// release, which replace the floor's.
fn respond(
    ds: &Dataset,
    result: &HeatmapResult,
    format: OutputFormat,
    metric: &str,
    public: Option<(String, serde_json::Value)>,
) -> Result<Reply, ApiError> {
    let params = &result.params;
    let cells = &result.cells;
    let body = Reply::new;
    Ok(match format {
        OutputFormat::Json => {
            body("application/json", crate::release::json_bytes(&views::heatmap_json(&ds.name, result)?))
        }
        OutputFormat::GeoJson => {
            // Foreign members (RFC 7946 §6.1) tell a reader what the floor did.
            let mut doc = cells_geojson(cells)?;
            doc["res"] = params.res.get().into();
            match &public {
                Some((_, privacy)) => doc["privacy"] = privacy.clone(),
                None => {
                    doc["k"] = params.k.get().into();
                    doc["suppressed"] = serde_json::json!(result.suppressed);
                }
            }
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
                subtitle: public.map_or_else(|| views::map_subtitle(result, params), |(s, _)| s),
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
