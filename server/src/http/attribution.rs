//! `GET /api/v1/datasets/{id}/attribution?model&by&window&format` and `GET .../funnel?by`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
#[cfg(feature = "cluster")]
use custmap_engine::analytics::attribution::attribution_of;
use custmap_engine::analytics::attribution::funnel;
use custmap_engine::analytics::privacy::{withhold_where, Ledger};
use custmap_engine::analytics::{attribution, AttributionParams, AttributionResult, By, Model};
use custmap_engine::io::write::{frame_bytes, frame_to_json_rows};
use custmap_engine::io::OutputFormat;
use custmap_engine::polars::prelude::DataFrame;
use custmap_engine::render::chart::{render_chart, Chart};
use custmap_engine::render::ImageFormat;
use custmap_engine::Dataset;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{access, require_exact};
use super::{cached, ApiError, AppState, Problem, Reply};
use crate::views::{self, ChartChoice};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(attribution_route)).routes(routes!(funnel_route))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttributionQuery {
    /// One model, a comma list, or `all`: last_touch, first_touch, linear, time_decay,
    /// position_based, markov, shapley (default markov).
    model: Option<String>,
    /// `channel` (default) or `campaign`.
    by: Option<String>,
    /// Lookback window in days before the conversion (default 365).
    window: Option<u32>,
    /// `json` (default), `csv`, `arrow`, or a chart as `png` / `svg`.
    format: Option<String>,
    /// For png/svg: `roi` (default for one model), `compare` (default for several) or `monthly`.
    #[param(inline)]
    chart: Option<ChartChoice>,
}

fn parse_by(by: Option<&str>) -> Result<By, ApiError> {
    match by.unwrap_or("channel") {
        "channel" => Ok(By::Channel),
        "campaign" => Ok(By::Campaign),
        other => Err(ApiError::bad_request(format!("by '{other}' is not one of channel, campaign"))),
    }
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
    params(("id" = String, Path, description = "dataset id"), AttributionQuery),
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
    q: Result<Query<AttributionQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "attribution")?;
    let Query(q) = q?;
    let entry = state.registry.entry(&id)?;
    let ds = entry.dataset;
    let params = AttributionParams {
        models: Model::parse_list(q.model.as_deref().unwrap_or("markov"))?,
        by: parse_by(q.by.as_deref())?,
        window_days: q.window.unwrap_or(365),
        ..AttributionParams::default()
    };
    params.check()?;
    let format = table_format(q.format.as_deref())?;
    let chart = q.chart;
    let key = format!("attribution {params:?} {format:?} {chart:?}");
    let st = state.clone();
    let min_k = state.config.policy.min_k.get();
    cached(&state, entry.version, key, move || {
        let mut result = run_attribution(&st, &ds, &params)?;
        let raw = result.table.clone();
        let table = floor_rows(zero_conversions_withheld(result.table)?, min_k, ATTRIBUTION_FLOOR)?;
        let scope = format!("attribution/{}", params.by.column());
        let table = st.ledgers.with(&id, |ledger| {
            Ok(ledger
                .withhold_table(table, &scope, &["model", params.by.column()], f64::from(min_k), ATTRIBUTION_FLOOR)?
                .0)
        })?;
        result.table = match params.by {
            By::Campaign => withhold_complements(&raw, table, &ds, f64::from(min_k))?,
            By::Channel => table,
        };
        if is_image(format) {
            let chart = chart.unwrap_or(if params.models.len() > 1 { ChartChoice::Compare } else { ChartChoice::Roi });
            let months = match chart {
                ChartChoice::Monthly => {
                    // Deals and leads per month and key: the rows' floor and the ledger, like the funnel's.
                    let months = floor_rows(
                        funnel::monthly(&funnel::journeys_for(&ds, &params)?, params.by)?,
                        min_k,
                        MONTHLY_FLOOR,
                    )?;
                    let scope = format!("monthly/{}", params.by.column());
                    Some(st.ledgers.with(&id, |ledger| {
                        Ok(ledger
                            .withhold_table(
                                months,
                                &scope,
                                &["month", params.by.column()],
                                f64::from(min_k),
                                MONTHLY_FLOOR,
                            )?
                            .0)
                    })?)
                }
                _ => None,
            };
            return chart_response(&views::attribution_chart(&result, months.as_ref(), chart)?, format);
        }
        if format != OutputFormat::Json {
            return table_response(&result.table, format);
        }
        let mut doc = views::attribution_json(&id, &result)?;
        let scope = "attribution/headline";
        st.ledgers.with(&id, |ledger| floor_headline(&mut doc, ledger, scope, f64::from(min_k)))?;
        Ok(Reply::json(&doc))
    })
    .await
}

/// The server's floor on attribution rows (`(count, figures it covers)`): credited conversions
/// of 1 to k-1 are withheld with their revenue and the ratios built on them (a customer's credit
/// to a row is at most 1, so a row crediting k or more conversions sums over at least k people),
/// as are leads and visits of 1 to k-1 people and their cost per lead. A short window would
/// otherwise show one deal.
const ATTRIBUTION_FLOOR: &[(&str, &[&str])] =
    &[("conversions", CONVERSION_FIGURES), ("leads", &["leads", "cpl"]), ("visits", &["visits"])];

/// Over HTTP a row crediting no conversion shows null, as one crediting 1 to k-1 does: a 0
/// beside a null would tell which row a single moved conversion went to (a window one day
/// longer, with every other row at 0). Leads and visits keep their 0 (spend without leads
/// must show).
fn zero_conversions_withheld(table: DataFrame) -> Result<DataFrame, ApiError> {
    let Ok(conversions) = views::floats(&table, "conversions") else { return Ok(table) };
    let zero: Vec<bool> = conversions.iter().map(|c| *c == Some(0.0)).collect();
    Ok(withhold_where(table, &zero, CONVERSION_FIGURES)?)
}

/// Complementary suppression of campaign rows: a channel's row (by channel) less its campaigns'
/// rows shown would give the conversions withheld among its campaigns, one deal when a single
/// small campaign is withheld. So within each channel and model, while the campaigns withheld
/// credit 1 to k-1 conversions between them, the shown campaign crediting fewest is withheld too.
fn withhold_complements(raw: &DataFrame, shown: DataFrame, ds: &Dataset, k: f64) -> Result<DataFrame, ApiError> {
    use std::collections::HashMap;
    let internal = |e: custmap_engine::polars::error::PolarsError| ApiError::from(custmap_engine::Error::from(e));
    let text = |df: &DataFrame, c: &str| -> Result<Vec<Option<String>>, ApiError> {
        let col = df
            .column(c)
            .map_err(internal)?
            .cast(&custmap_engine::polars::prelude::DataType::String)
            .map_err(internal)?;
        Ok(col.str().map_err(internal)?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let channel_of: HashMap<String, String> = match ds.campaigns.as_ref() {
        Some(c) => {
            text(c, "campaign_id")?.into_iter().zip(text(c, "channel")?).filter_map(|(a, b)| Some((a?, b?))).collect()
        }
        None => HashMap::new(),
    };
    let models = text(raw, "model")?;
    let campaigns = text(raw, "campaign")?;
    let truth = views::floats(raw, "conversions")?;
    let now = views::floats(&shown, "conversions")?;
    let mut groups: HashMap<(Option<String>, Option<String>), Vec<usize>> = HashMap::new();
    for i in 0..raw.height() {
        let channel = campaigns[i].as_ref().and_then(|c| channel_of.get(c).cloned());
        groups.entry((models[i].clone(), channel)).or_default().push(i);
    }
    let mut hide = vec![false; raw.height()];
    for rows in groups.values() {
        let mut hidden: f64 = rows.iter().filter(|&&i| now[i].is_none()).map(|&i| truth[i].unwrap_or(0.0)).sum();
        while hidden > 1e-9 && hidden < k {
            let next = rows
                .iter()
                .copied()
                .filter(|&i| now[i].is_some() && !hide[i])
                .min_by(|&a, &b| truth[a].unwrap_or(0.0).total_cmp(&truth[b].unwrap_or(0.0)));
            let Some(i) = next else { break };
            hide[i] = true;
            hidden += truth[i].unwrap_or(0.0);
        }
    }
    Ok(withhold_where(shown, &hide, CONVERSION_FIGURES)?)
}

/// The headline counts of an attribution document (all conversions, attributed, unattributed
/// and each reason) under the floor and the release ledger: a count of 1 to k-1, or one within
/// k-1 of a count released before for the same block and grouping (any window), is withheld (null)
/// with its revenue. Two windows a day apart otherwise differ by one deal and show its price.
fn floor_headline(doc: &mut serde_json::Value, ledger: &mut Ledger, scope: &str, k: f64) -> Result<(), ApiError> {
    let mut pairs: Vec<(String, [&str; 2], Option<usize>)> = vec![
        ("conversions".into(), ["total", "revenue"], None),
        ("conversions".into(), ["attributed", "attributed_revenue"], None),
        ("unattributed".into(), ["conversions", "revenue"], None),
    ];
    let reasons = doc["unattributed"]["by_reason"].as_array().map_or(0, Vec::len);
    pairs.extend((0..reasons).map(|i| ("unattributed".to_string(), ["conversions", "revenue"], Some(i))));
    for (block, [count, sum], reason) in pairs {
        let node = match reason {
            None => &mut doc[block.as_str()],
            Some(i) => &mut doc[block.as_str()]["by_reason"][i],
        };
        let key = match reason {
            None => format!("{block}.{count}"),
            Some(_) => format!("{block}.{}", node["reason"].as_str().unwrap_or_default()),
        };
        let Some(n) = node[count].as_f64() else { continue };
        if (n > 0.0 && n < k) || !ledger.admits(scope, &key, n, k) {
            node[count] = serde_json::Value::Null;
            node[sum] = serde_json::Value::Null;
        } else {
            ledger.record(scope, &key, n);
        }
    }
    // Complements: attributed + unattributed = total, and the reasons add up to unattributed,
    // so one of a pair withheld withholds the other, and one reason withheld withholds them all.
    let gone = |v: &serde_json::Value| v.is_null();
    if gone(&doc["conversions"]["attributed"]) || gone(&doc["unattributed"]["conversions"]) {
        for (block, count, sum) in
            [("conversions", "attributed", "attributed_revenue"), ("unattributed", "conversions", "revenue")]
        {
            doc[block][count] = serde_json::Value::Null;
            doc[block][sum] = serde_json::Value::Null;
        }
    }
    let reasons_gone =
        doc["unattributed"]["by_reason"].as_array().is_some_and(|rs| rs.iter().any(|r| gone(&r["conversions"])));
    if reasons_gone || gone(&doc["unattributed"]["conversions"]) {
        if let Some(rs) = doc["unattributed"]["by_reason"].as_array_mut() {
            for r in rs {
                r["conversions"] = serde_json::Value::Null;
                r["revenue"] = serde_json::Value::Null;
            }
        }
    }
    Ok(())
}

/// The floor on the monthly chart's rows (deals and leads per month and key): counts of 1 to
/// k-1 are withheld, deals with their revenue.
const MONTHLY_FLOOR: &[(&str, &[&str])] = &[("deals", &["deals", "revenue"]), ("leads", &["leads"])];

/// An attribution row's credited conversions and what is drawn from them, withheld together.
const CONVERSION_FIGURES: &[&str] = &["conversions", "revenue", "cpa", "roi", "roas"];

/// The same floor on funnel rows: deals, visits and leads of 1 to k-1 people are withheld with
/// the revenue, rates and medians drawn from them.
const FUNNEL_FLOOR: &[(&str, &[&str])] = &[
    ("deals", &["deals", "visited_deals", "revenue", "lead_to_deal", "deal_rate", "median_days_to_deal"]),
    ("visited", &["visited", "visit_rate", "deal_rate", "median_days_to_visit"]),
    ("leads", &["leads", "visit_rate", "lead_to_deal"]),
];

fn floor_rows(table: DataFrame, k: u32, groups: &[(&str, &[&str])]) -> Result<DataFrame, ApiError> {
    Ok(custmap_engine::analytics::privacy::withhold_small(table, u64::from(k), groups)?.0)
}

/// The route's attribution: journeys reduced on the server's cluster when it has one (every
/// model but time_decay, which needs per-touch times), else built locally.
fn run_attribution(state: &AppState, ds: &Dataset, params: &AttributionParams) -> Result<AttributionResult, ApiError> {
    #[cfg(feature = "cluster")]
    if let Some(t) = state.config.cluster.as_ref().filter(|_| !params.models.contains(&Model::TimeDecay)) {
        let cluster = crate::cluster::Cluster::open(&t.host, t.port, t.timeout, &ds.dir)?;
        let journeys = crate::cluster::jobs::journeys(&cluster, params.by, params.window_days)?;
        return Ok(attribution_of(&journeys, ds.campaigns.as_ref(), params)?);
    }
    #[cfg(not(feature = "cluster"))]
    let _ = state;
    Ok(attribution(ds, params)?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunnelQuery {
    /// `channel` (default) or `campaign` of the first touch.
    by: Option<String>,
    /// `json` (default), `csv`, `arrow`, or the funnel chart as `png` / `svg`.
    format: Option<String>,
}

/// Leads, visited and deals per first-touch channel or campaign.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/funnel", tag = "attribution",
    params(("id" = String, Path, description = "dataset id"), FunnelQuery),
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
    q: Result<Query<FunnelQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_exact(access(&headers, &state.config)?, "the funnel")?;
    let Query(q) = q?;
    let entry = state.registry.entry(&id)?;
    let ds = entry.dataset;
    let by = parse_by(q.by.as_deref())?;
    let format = table_format(q.format.as_deref())?;
    let min_k = state.config.policy.min_k.get();
    let st = state.clone();
    cached(&state, entry.version, format!("funnel {by:?} {format:?}"), move || {
        let params = AttributionParams { by, ..AttributionParams::default() };
        let table = floor_rows(funnel::funnel(&funnel::journeys_for(&ds, &params)?, by)?, min_k, FUNNEL_FLOOR)?;
        let table = st.ledgers.with(&id, |ledger| {
            let scope = format!("funnel/{}", by.column());
            Ok(ledger.withhold_table(table, &scope, &[by.column()], f64::from(min_k), FUNNEL_FLOOR)?.0)
        })?;
        if is_image(format) {
            return chart_response(&views::funnel_chart(&table, by)?, format);
        }
        if format != OutputFormat::Json {
            return table_response(&table, format);
        }
        let doc = serde_json::json!({"dataset": id, "by": by, "rows": frame_to_json_rows(&table)?});
        Ok(Reply::json(&doc))
    })
    .await
}
