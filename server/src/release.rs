//! What each analytic releases, and its document: the floors on attribution, monthly and funnel
//! rows, and the one JSON document per result that the command line's `--out x.json` writes and
//! the HTTP reply sends, byte for byte ([`json_bytes`]).
//!
//! Both surfaces run the same steps with the same `k`: the command line with a fresh
//! [`Ledger`] (a run releases once), a server with the dataset's release ledger, which also
//! withholds figures within k-1 of ones released before. A server's first answer to a request is
//! therefore the command line's document for it.

use std::collections::HashMap;

use custmap_engine::analytics::placement::PlacementReport;
use custmap_engine::analytics::privacy::{groups_of, withhold_in_complement, withhold_small, withhold_where, Ledger};
use custmap_engine::analytics::{AttributionResult, By, KFloor};
use custmap_engine::io::write::frame_to_json_rows;
use custmap_engine::polars::prelude::{DataFrame, DataType};
use custmap_engine::Error;
use serde_json::Value;

use crate::views;

/// The bytes of a JSON document, for a file and a reply alike (compact).
#[must_use]
pub fn json_bytes(doc: &Value) -> Vec<u8> {
    doc.to_string().into_bytes()
}

/// The floor on attribution rows (`(count, figures it covers)`): credited conversions of 1 to
/// k-1 are withheld with their revenue and the ratios built on them (a customer's credit to a row
/// is at most 1, so a row crediting k or more conversions sums over at least k people), as are
/// leads and visits of 1 to k-1 people and their cost per lead. A short window would otherwise
/// show one deal.
const ATTRIBUTION_FLOOR: &[(&str, &[&str])] =
    &[("conversions", CONVERSION_FIGURES), ("leads", &["leads", "cpl"]), ("visits", &["visits"])];

/// An attribution row's credited conversions and what is drawn from them, withheld together
/// (the notes too: "no attributed conversions" beside a withheld row would tell its 0).
const CONVERSION_FIGURES: &[&str] = &["conversions", "revenue", "cpa", "roi", "roas", "notes"];

/// The floor on the monthly chart's rows (deals and leads per month and key): counts of 1 to
/// k-1 are withheld, deals with their revenue.
const MONTHLY_FLOOR: &[(&str, &[&str])] = &[("deals", &["deals", "revenue"]), ("leads", &["leads"])];

/// The same floor on funnel rows: deals, visits and leads of 1 to k-1 people are withheld with
/// the revenue, rates and medians drawn from them; so are deals after a visit, and (their
/// complements) deals without a visit and leads who never visited, each a count of people.
const FUNNEL_FLOOR: &[(&str, &[&str])] = &[
    ("deals", &["deals", "visited_deals", "revenue", "lead_to_deal", "deal_rate", "median_days_to_deal"]),
    ("visited", &["visited", "visit_rate", "deal_rate", "median_days_to_visit"]),
    ("leads", &["leads", "visit_rate", "lead_to_deal"]),
    ("visited_deals", VISITED_DEAL_FIGURES),
    (UNVISITED_DEALS, VISITED_DEAL_FIGURES),
    (UNVISITED_LEADS, &["visited", "visit_rate", "deal_rate", "median_days_to_visit"]),
];

/// What is drawn from a funnel row's deals after a visit.
const VISITED_DEAL_FIGURES: &[&str] = &["visited_deals", "deal_rate", "median_days_to_deal"];

/// Working columns of the funnel's floor: deals without a visit, leads who never visited.
const UNVISITED_DEALS: &str = "__deals_without_visit";
const UNVISITED_LEADS: &str = "__leads_without_visit";

fn floor_rows(table: DataFrame, k: KFloor, groups: &[(&str, &[&str])]) -> Result<DataFrame, Error> {
    Ok(withhold_small(table, u64::from(k.get()), groups)?.0)
}

/// An attribution result as released at floor `k`: its rows floored, checked against `ledger`,
/// and campaign rows withheld in complement (`campaigns`: the campaigns table, for each
/// campaign's channel).
pub fn attribution(
    mut result: AttributionResult,
    campaigns: Option<&DataFrame>,
    k: KFloor,
    ledger: &mut Ledger,
) -> Result<AttributionResult, Error> {
    let by = result.params.by;
    let raw = result.table;
    let table = if k.get() > 1 { zero_conversions_withheld(raw.clone())? } else { raw.clone() };
    let table = floor_rows(table, k, ATTRIBUTION_FLOOR)?;
    let scope = format!("attribution/{}", by.column());
    let kf = f64::from(k.get());
    let table = ledger.withhold_table(table, &scope, &["model", by.column()], kf, ATTRIBUTION_FLOOR)?.0;
    let models = text(&raw, "model")?;
    let table = match by {
        By::Campaign => {
            let channel_of: HashMap<String, String> = match campaigns {
                Some(c) => text(c, "campaign_id")?
                    .into_iter()
                    .zip(text(c, "channel")?)
                    .filter_map(|(a, b)| Some((a?, b?)))
                    .collect(),
                None => HashMap::new(),
            };
            let keys = text(&raw, "campaign")?;
            let channel = |i: usize| keys[i].as_ref().and_then(|c| channel_of.get(c).cloned());
            let by_channel = groups_of(raw.height(), |i| (models[i].clone(), channel(i)));
            withhold_complements(&raw, table, &by_channel, kf)?
        }
        By::Channel => table,
    };
    // Each model's rows add up to the headline's attributed conversions.
    result.table = withhold_complements(&raw, table, &groups_of(raw.height(), |i| models[i].clone()), kf)?;
    Ok(result)
}

/// The document of a released attribution result (from [`attribution`]): the rows and every
/// conversion accounted for, its headline counts under the floor and `ledger`.
pub fn attribution_document(
    dataset: &str,
    released: &AttributionResult,
    k: KFloor,
    ledger: &mut Ledger,
) -> Result<Value, Error> {
    let mut doc = views::attribution_json(dataset, released)?;
    floor_headline(&mut doc, ledger, "attribution/headline", f64::from(k.get()));
    Ok(doc)
}

/// The monthly series (deals and leads per month and key) as released at floor `k`. A key's
/// months add up to its funnel row, so months are also withheld in complement per key: the
/// funnel's deals less the months shown would give the months withheld.
pub fn monthly(months: DataFrame, by: By, k: KFloor, ledger: &mut Ledger) -> Result<DataFrame, Error> {
    let raw = months.clone();
    let months = floor_rows(months, k, MONTHLY_FLOOR)?;
    let scope = format!("monthly/{}", by.column());
    let kf = f64::from(k.get());
    let mut months = ledger.withhold_table(months, &scope, &["month", by.column()], kf, MONTHLY_FLOOR)?.0;
    let keys = text(&raw, by.column())?;
    let per_key = groups_of(raw.height(), |i| keys[i].clone());
    for group in MONTHLY_FLOOR {
        months = withhold_in_complement(&raw, months, &per_key, kf, *group)?;
    }
    Ok(months)
}

/// The funnel table as released at floor `k`.
pub fn funnel(table: DataFrame, by: By, k: KFloor, ledger: &mut Ledger) -> Result<DataFrame, Error> {
    use custmap_engine::polars::prelude::{col, IntoLazy};
    let table = table
        .lazy()
        .with_columns([
            (col("deals") - col("visited_deals")).alias(UNVISITED_DEALS),
            (col("leads") - col("visited")).alias(UNVISITED_LEADS),
        ])
        .collect()?;
    let table = floor_rows(table, k, FUNNEL_FLOOR)?.drop_many([UNVISITED_DEALS, UNVISITED_LEADS]);
    let scope = format!("funnel/{}", by.column());
    Ok(ledger.withhold_table(table, &scope, &[by.column()], f64::from(k.get()), FUNNEL_FLOOR)?.0)
}

/// The document of a released funnel table.
pub fn funnel_document(dataset: &str, by: By, table: &DataFrame) -> Result<Value, Error> {
    Ok(serde_json::json!({"dataset": dataset, "by": by, "rows": frame_to_json_rows(table)?}))
}

/// The document of a released monthly series.
pub fn monthly_document(dataset: &str, by: By, months: &DataFrame) -> Result<Value, Error> {
    Ok(serde_json::json!({"dataset": dataset, "by": by, "rows": frame_to_json_rows(months)?}))
}

/// The document of a floored placement report.
pub fn placement_document(report: &PlacementReport) -> Result<Value, Error> {
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}

/// A row crediting no conversion shows null, as one crediting 1 to k-1 does: a 0 beside a null
/// would tell which row a single moved conversion went to (a window one day longer, with every
/// other row at 0). Leads and visits keep their 0 (spend without leads must show).
fn zero_conversions_withheld(table: DataFrame) -> Result<DataFrame, Error> {
    let Ok(conversions) = views::floats(&table, "conversions") else { return Ok(table) };
    let zero: Vec<bool> = conversions.iter().map(|c| *c == Some(0.0)).collect();
    withhold_where(table, &zero, CONVERSION_FIGURES)
}

/// A text column as owned values.
fn text(df: &DataFrame, c: &str) -> Result<Vec<Option<String>>, Error> {
    let col = df.column(c)?.cast(&DataType::String)?;
    Ok(col.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

/// Complementary suppression: a group's total, released elsewhere, less its rows shown gives the
/// conversions withheld among them, one deal when a single small row is withheld. The groups:
/// a channel's campaigns (the channel's row by channel is their total) and a model's rows (the
/// headline's attributed conversions are their total). Within each group, while the rows
/// withheld credit 1 to k-1 conversions between them, the shown row crediting fewest is
/// withheld too.
fn withhold_complements(raw: &DataFrame, shown: DataFrame, groups: &[Vec<usize>], k: f64) -> Result<DataFrame, Error> {
    withhold_in_complement(raw, shown, groups, k, ("conversions", CONVERSION_FIGURES))
}

/// The headline counts of an attribution document (all conversions, attributed, unattributed
/// and each reason) under the floor and the release ledger: a count of 1 to k-1, or one within
/// k-1 of a count released before for the same block and grouping (any window), is withheld
/// (null) with its revenue. Two windows a day apart otherwise differ by one deal and show its price.
fn floor_headline(doc: &mut Value, ledger: &mut Ledger, scope: &str, k: f64) {
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
            node[count] = Value::Null;
            node[sum] = Value::Null;
        } else {
            ledger.record(scope, &key, n);
        }
    }
    // Complements: attributed + unattributed = total, and the reasons add up to unattributed,
    // so one of a pair withheld withholds the other, and one reason withheld withholds them all.
    let gone = |v: &Value| v.is_null();
    if gone(&doc["conversions"]["attributed"]) || gone(&doc["unattributed"]["conversions"]) {
        for (block, count, sum) in
            [("conversions", "attributed", "attributed_revenue"), ("unattributed", "conversions", "revenue")]
        {
            doc[block][count] = Value::Null;
            doc[block][sum] = Value::Null;
        }
    }
    let reasons_gone =
        doc["unattributed"]["by_reason"].as_array().is_some_and(|rs| rs.iter().any(|r| gone(&r["conversions"])));
    if reasons_gone || gone(&doc["unattributed"]["conversions"]) {
        if let Some(rs) = doc["unattributed"]["by_reason"].as_array_mut() {
            for r in rs {
                r["conversions"] = Value::Null;
                r["revenue"] = Value::Null;
            }
        }
    }
}
