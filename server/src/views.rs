//! Charts and maps shared by the command line and the HTTP API, so a PNG from either is the same
//! picture of the same numbers.

use clap::ValueEnum;
use custmap_engine::analytics::placement::{Coverage, PlacementParams, PlacementReport, ReachMode};
use custmap_engine::analytics::{AttributionResult, By, HeatmapParams, HeatmapResult, KFloor, Location};
use custmap_engine::polars::prelude::DataFrame;
use custmap_engine::render::chart::{render_chart, Chart, ChartKind, Series};
use custmap_engine::render::map::{render_map, MapSpec};
use custmap_engine::render::ImageFormat;
use custmap_engine::spatial::Res;
use custmap_engine::{Dataset, Error};
use serde::Deserialize;

/// The JSON document of a heatmap (SPEC §9): parameters, what the floor did, totals and cells.
pub fn heatmap_json(dataset: &str, result: &HeatmapResult) -> Result<serde_json::Value, Error> {
    let p = &result.params;
    Ok(serde_json::json!({
        "dataset": dataset,
        "res": p.res.get(),
        "location": p.location.as_str(),
        "where": p.segment,
        "k": p.k.get(),
        "suppressed": result.suppressed,
        "totals": floored_totals(result),
        "cells": custmap_engine::io::write::frame_to_json_rows(&result.cells)?,
    }))
}

/// The table's totals under its floor: `customers` when at least k; `prospects` when they and the
/// customers outside the segment are each none or at least k (a no-segment request tells the
/// customers, so the difference would count the others).
fn floored_totals(result: &HeatmapResult) -> serde_json::Value {
    let k = i64::from(result.params.k.get());
    let t = &result.totals;
    let none_or_k = |n: i64| n == 0 || n >= k;
    let customers = (t.customers >= k).then_some(t.customers);
    let prospects =
        (customers.is_some() && none_or_k(t.prospects) && none_or_k(t.customers - t.prospects)).then_some(t.prospects);
    serde_json::json!({"customers": customers, "prospects": prospects})
}

/// Which attribution chart to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChartChoice {
    Roi,
    Compare,
    Monthly,
}

/// Which placement picture to draw: the plan on a map of the target prospects, or reach versus
/// budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlotChoice {
    #[default]
    Map,
    Curve,
}

/// The JSON document of an attribution result, for the CLI's `--out x.json` and the HTTP reply
/// alike: the rows, and every conversion accounted for (attributed + unattributed = total, in
/// each model), the unattributed split by reason.
pub fn attribution_json(dataset: &str, result: &AttributionResult) -> Result<serde_json::Value, Error> {
    let params = &result.params;
    let (total, total_revenue) = result.conversions;
    let (lost, lost_revenue) = result.unattributed;
    let reasons: Vec<serde_json::Value> = result
        .unattributed_reasons
        .iter()
        .map(|(reason, n, value)| serde_json::json!({"reason": reason, "conversions": n, "revenue": value}))
        .collect();
    Ok(serde_json::json!({
        "dataset": dataset,
        "model": params.models.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "by": params.by,
        "window": params.window_days,
        "conversions": {
            "total": total,
            "revenue": total_revenue,
            "attributed": total - lost,
            "attributed_revenue": total_revenue - lost_revenue,
        },
        "unattributed": {"conversions": lost, "revenue": lost_revenue, "by_reason": reasons},
        "shapley_std_error": result.shapley_std_error,
        "rows": custmap_engine::io::write::frame_to_json_rows(&result.table)?,
    }))
}

/// The JSON document of a referrals result (CLI `--out x.json` and the HTTP reply alike).
pub fn referrals_json(
    dataset: &str,
    result: &custmap_engine::analytics::referrals::ReferralsResult,
    k: u32,
) -> Result<serde_json::Value, Error> {
    Ok(serde_json::json!({
        "dataset": dataset,
        "by": result.by,
        "k": k,
        "summary": result.summary,
        "suppressed": {"dropped": result.dropped, "withheld": result.withheld},
        "ignored_links": result.problems,
        "rows": custmap_engine::io::write::frame_to_json_rows(&result.table)?,
    }))
}

pub fn map_title(metric: &str, params: &HeatmapParams) -> String {
    let metric = metric.replace('_', " ");
    let mut metric_cap = metric.clone();
    if let Some(first) = metric_cap.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let place = match params.location {
        Location::Home => "where prospects live",
        Location::Work => "where prospects work",
        Location::Both => "where prospects live and work",
    };
    format!("{metric_cap} · {place} · H3 res {}", params.res.get())
}

pub fn map_subtitle(result: &HeatmapResult, params: &HeatmapParams) -> String {
    let segment = params.segment.as_deref().unwrap_or("all customers");
    let totals = floored_totals(result);
    let shown = |v: &serde_json::Value| v.as_i64().map_or_else(|| "(withheld)".to_string(), |n| n.to_string());
    let differencing = match result.suppressed.differencing {
        0 => String::new(),
        n => format!(", {n} held back as too close to an earlier answer"),
    };
    format!(
        "segment: {segment} · {} prospects of {} customers · k = {} ({} small cells merged, {} dropped{differencing})",
        shown(&totals["prospects"]),
        shown(&totals["customers"]),
        params.k.get(),
        result.suppressed.merged,
        result.suppressed.dropped
    )
}

/// Column `name` of `frame` as optional f64s.
pub fn floats(frame: &custmap_engine::polars::prelude::DataFrame, name: &str) -> Result<Vec<Option<f64>>, Error> {
    let c = frame.column(name).map_err(Error::Compute)?.cast(&custmap_engine::polars::prelude::DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

pub fn strings(frame: &custmap_engine::polars::prelude::DataFrame, name: &str) -> Result<Vec<String>, Error> {
    Ok(frame.column(name)?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
}

/// The chart of an attribution result: models compared, ROI by key, or deals per month.
pub fn attribution_chart(
    result: &AttributionResult,
    funnel_months: Option<&custmap_engine::polars::prelude::DataFrame>,
    chart: ChartChoice,
) -> Result<Chart, Error> {
    match chart {
        ChartChoice::Compare => models_chart(result),
        ChartChoice::Roi => roi_chart(result),
        ChartChoice::Monthly => {
            monthly_chart(result, funnel_months.ok_or_else(|| Error::Internal("monthly series missing".into()))?)
        }
    }
}

/// What the model-table charts share: the key column, the window's caption, each row's model
/// and the first model asked for.
struct Rows {
    key: &'static str,
    window: String,
    models: Vec<String>,
    first_model: &'static str,
}

impl Rows {
    fn of(result: &AttributionResult) -> Result<Rows, Error> {
        let p = &result.params;
        Ok(Rows {
            key: p.by.column(),
            window: format!("window {} days", p.window_days),
            models: strings(&result.table, "model")?,
            first_model: p.models[0].name(),
        })
    }
}

/// Attributed conversions per key, one bar series per model, keys in the first model's order.
fn models_chart(result: &AttributionResult) -> Result<Chart, Error> {
    let Rows { key, window, models, first_model } = Rows::of(result)?;
    let (p, t) = (&result.params, &result.table);
    let keys: Vec<String> = {
        let all = strings(t, key)?;
        let mut k: Vec<String> =
            all.iter().zip(&models).filter(|(_, m)| m.as_str() == first_model).map(|(k, _)| k.clone()).collect();
        k.dedup();
        k
    };
    let conv = floats(t, "conversions")?;
    let all_keys = strings(t, key)?;
    let series = p
        .models
        .iter()
        .map(|m| Series {
            name: m.name().to_string(),
            values: keys
                .iter()
                .map(|k| (0..models.len()).find(|&i| models[i] == m.name() && &all_keys[i] == k).and_then(|i| conv[i]))
                .collect(),
        })
        .collect();
    Ok(Chart {
        title: format!("Attributed conversions by {key}: {} models compared", p.models.len()),
        subtitle: format!("{window} · conversion = first signed deal"),
        y_label: "attributed conversions".into(),
        categories: keys,
        series,
        kind: ChartKind::Bars,
    })
}

/// ROI per key under the first model (n/a where there is no cost or the figure is withheld).
fn roi_chart(result: &AttributionResult) -> Result<Chart, Error> {
    let Rows { key, window, models, first_model } = Rows::of(result)?;
    let t = &result.table;
    let rows: Vec<usize> = (0..models.len()).filter(|&i| models[i] == first_model).collect();
    let keys = strings(t, key)?;
    let roi = floats(t, "roi")?;
    Ok(Chart {
            title: format!("ROI by {key} · {first_model} attribution"),
            subtitle: format!("{window} · ROI = (attributed revenue - cost) / cost; n/a = no cost, or withheld (fewer than k conversions)"),
            y_label: "ROI (x cost)".into(),
            categories: rows.iter().map(|&i| keys[i].clone()).collect(),
            series: vec![Series { name: "ROI".into(), values: rows.iter().map(|&i| roi[i]).collect() }],
            kind: ChartKind::Bars,
        })
}

/// Deals per month by first-touch key, the six keys with the most deals.
fn monthly_chart(result: &AttributionResult, m: &custmap_engine::polars::prelude::DataFrame) -> Result<Chart, Error> {
    let key = result.params.by.column();
    let months = strings(m, "month")?;
    let keys = strings(m, key)?;
    let deals = floats(m, "deals")?;
    let mut cats: Vec<String> = months.clone();
    cats.sort();
    cats.dedup();
    let mut totals: std::collections::BTreeMap<&str, f64> = Default::default();
    for (k, d) in keys.iter().zip(&deals) {
        *totals.entry(k.as_str()).or_default() += d.unwrap_or(0.0);
    }
    let mut top: Vec<(&str, f64)> = totals.into_iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let series = top
        .iter()
        .take(6)
        .map(|(k, _)| Series {
            name: (*k).to_string(),
            values: cats
                .iter()
                .map(|c| {
                    Some((0..months.len()).filter(|&i| &months[i] == c && keys[i] == *k).filter_map(|i| deals[i]).sum())
                })
                .collect(),
        })
        .collect();
    Ok(Chart {
        title: format!("Deals per month by first-touch {key} (top 6)"),
        subtitle: "deal month; each deal credited to the customer's first touch".into(),
        y_label: "deals".into(),
        categories: cats,
        series,
        kind: ChartKind::Lines,
    })
}

/// The chart of a referrals result: the referral multiplier per acquisition channel (by channel)
/// or the top 15 advocates by chain revenue (by referrer); by cell is a map.
pub fn referrals_chart(result: &custmap_engine::analytics::referrals::ReferralsResult) -> Result<Chart, Error> {
    use custmap_engine::analytics::referrals::ReferralsBy;
    let t = &result.table;
    Ok(match result.by {
        ReferralsBy::Channel => Chart {
            title: "Referral multiplier by acquisition channel".into(),
            subtitle: "(own revenue + revenue of everyone their customers referred) / own revenue; n/a = withheld, too few referred buyers".into(),
            y_label: "multiplier".into(),
            categories: strings(t, "channel")?,
            series: vec![Series { name: "multiplier".into(), values: floats(t, "multiplier")? }],
            kind: ChartKind::Bars,
        },
        ReferralsBy::Referrer => {
            let n = t.height().min(15);
            Chart {
                title: format!("Top {n} advocates by the revenue of their referral chains"),
                subtitle: "signed revenue of everyone below them in the referral forest".into(),
                y_label: "chain revenue (CNY)".into(),
                categories: strings(t, "customer_id")?.into_iter().take(n).collect(),
                series: vec![Series {
                    name: "chain revenue".into(),
                    values: floats(t, "chain_revenue")?.into_iter().take(n).collect(),
                }],
                kind: ChartKind::Bars,
            }
        }
        ReferralsBy::Cell => return Err(Error::BadInput("referrals by cell draw a map, not a chart".into())),
    })
}

/// The funnel (leads, visits, deals) per first-touch channel or campaign.
pub fn funnel_chart(table: &DataFrame, by: By) -> Result<Chart, Error> {
    let keys = strings(&table, by.column())?;
    Ok(Chart {
        title: format!("Funnel by first-touch {}: leads, visits, deals", by.column()),
        subtitle: "lead = first touch; visited = any visit; deal = first signed deal".into(),
        y_label: "customers".into(),
        categories: keys,
        series: ["leads", "visited", "deals"]
            .iter()
            .map(|c| Ok(Series { name: (*c).to_string(), values: floats(&table, c)? }))
            .collect::<Result<_, Error>>()?,
        kind: ChartKind::Bars,
    })
}

/// The plan's sites (numbered in the order chosen, circles at their reach) over the heatmap of
/// the target prospects at res 9, floored like any other map.
pub fn placement_map(
    ds: &Dataset,
    coverage: &Coverage,
    report: &PlacementReport,
    params: &PlacementParams,
    heat: &HeatmapResult,
    image: ImageFormat,
) -> Result<Vec<u8>, Error> {
    let index: std::collections::HashMap<&str, usize> =
        coverage.site_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let overlay = report
        .sites
        .iter()
        .filter_map(|s| index.get(s.site_id.as_str()).map(|i| (s.rank, &coverage.geometries[*i])))
        .map(|(rank, (g, r))| (g.clone(), *r, format!("{rank}")))
        .collect();
    let spec = MapSpec {
        cells: &heat.cells,
        metric: "prospects",
        title: format!("Placement plan · {} sites for {:.0} CNY", report.sites.len(), report.cost),
        subtitle: format!(
            "reach {:.0} of {} prospects (gap <= {:.1}%) · {} · circles: reach radius, numbers: order chosen",
            report.reach,
            report.prospects,
            report.gap * 100.0,
            params.segment.as_deref().unwrap_or("all customers")
        ),
        districts: ds.districts.as_ref(),
        size: (1400, 1000),
        overlay,
    };
    render_map(&spec, image)
}

/// The heatmap under a placement map: the target prospects at res 9 where the plan reaches them,
/// under the floor `k` (the caller builds it: the server through its release ledger).
pub fn placement_heatmap_params(params: &PlacementParams, k: KFloor) -> HeatmapParams {
    let location = match params.reach {
        ReachMode::Home => Location::Home,
        ReachMode::Work => Location::Work,
        ReachMode::Both | ReachMode::Commute => Location::Both,
    };
    HeatmapParams { res: res9(), location, segment: params.segment.clone(), k, ..HeatmapParams::default() }
}

fn res9() -> Res {
    Res::new(9).unwrap_or(Res::FINEST)
}

/// Reach versus budget for the plan and the upper bound on the optimum.
pub fn reach_curve(report: &PlacementReport, params: &PlacementParams, image: ImageFormat) -> Result<Vec<u8>, Error> {
    let spec = Chart {
        title: format!("Reach versus budget · {} prospects", report.prospects),
        subtitle: format!(
            "reach mode {:?}, segment: {} · the bound certifies how far from optimal each plan can be",
            params.reach,
            params.segment.as_deref().unwrap_or("all customers")
        ),
        y_label: "prospects reached".into(),
        categories: report.curve.iter().map(|c| custmap_engine::render::short_number(c.budget)).collect(),
        series: vec![
            Series { name: "plan".into(), values: report.curve.iter().map(|c| c.reach).collect() },
            Series { name: "upper bound".into(), values: report.curve.iter().map(|c| c.upper_bound).collect() },
        ],
        kind: ChartKind::Lines,
    };
    render_chart(&spec, image)
}
