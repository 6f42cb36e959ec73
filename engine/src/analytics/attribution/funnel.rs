//! The lead -> visit -> deal funnel per first-touch channel (or campaign).
//!
//! A customer is a lead of the key of their first touch (a referral counts as `referral`); a
//! visit is any `visit` touchpoint of theirs; a deal is their first signed deal. The stages nest:
//! `visited` are leads who visited, `visited_deals` are those of them who signed, so
//! `visit_rate` and `deal_rate` (= visited_deals / visited) are shares of the stage before and
//! never exceed 1. `deals` counts every lead's deal, visit or not, and `lead_to_deal` =
//! deals / leads. Rates with a zero denominator are null, with the reason in `notes`. Median days
//! are between the first touch and the first visit, and between the first visit and the deal.

use polars::prelude::*;

use super::journeys::{By, Journeys};
use crate::error::Result;

/// Microseconds in a day, for durations in days.
const DAY_US: f64 = crate::io::schema::DAY_US as f64;

/// The journeys a funnel or monthly series is built from (the attribution's own).
pub fn journeys_for(ds: &crate::io::Dataset, params: &super::AttributionParams) -> Result<Journeys> {
    super::journeys::build(ds, params.by, params.window_days)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 0 { (v[m - 1] + v[m]) / 2.0 } else { v[m] })
}

/// Funnel table: key, leads, visited, deals, visited_deals, revenue, visit_rate, deal_rate, lead_to_deal,
/// median_days_to_visit, median_days_to_deal, notes.
pub fn funnel(j: &Journeys, by: By) -> Result<DataFrame> {
    let n = j.keys.len();
    let mut leads = vec![0u64; n];
    let mut visited = vec![0u64; n];
    let mut deals = vec![0u64; n];
    let mut visited_deals = vec![0u64; n];
    let mut revenue = vec![0.0; n];
    let mut to_visit: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut to_deal: Vec<Vec<f64>> = vec![Vec::new(); n];
    for l in j.leads_detail.iter().flatten() {
        let k = l.key as usize;
        leads[k] += 1;
        if let Some(v) = l.visit_ts {
            visited[k] += 1;
            to_visit[k].push((v - l.lead_ts).max(0) as f64 / DAY_US);
            if let Some((d, _)) = l.deal {
                visited_deals[k] += 1;
                to_deal[k].push((d - v).max(0) as f64 / DAY_US);
            }
        }
        if let Some((_, value)) = l.deal {
            deals[k] += 1;
            revenue[k] += value;
        }
    }
    let mut notes = vec![String::new(); n];
    let rate = |num: &[u64], den: &[u64], what: &str, notes: &mut Vec<String>| -> Vec<Option<f64>> {
        (0..n)
            .map(|k| {
                if den[k] == 0 {
                    let note = &mut notes[k];
                    if !note.is_empty() {
                        note.push_str("; ");
                    }
                    note.push_str(&format!("{what}: no {}", if what == "deal_rate" { "visits" } else { "leads" }));
                    None
                } else {
                    Some(num[k] as f64 / den[k] as f64)
                }
            })
            .collect()
    };
    let visit_rate = rate(&visited, &leads, "visit_rate", &mut notes);
    let deal_rate = rate(&visited_deals, &visited, "deal_rate", &mut notes);
    let lead_to_deal = rate(&deals, &leads, "lead_to_deal", &mut notes);
    let df = DataFrame::new(
        n,
        vec![
            Column::new(by.column().into(), j.keys.clone()),
            Column::new("leads".into(), leads),
            Column::new("visited".into(), visited),
            Column::new("deals".into(), deals),
            Column::new("visited_deals".into(), visited_deals),
            Column::new("revenue".into(), revenue),
            Column::new("visit_rate".into(), visit_rate),
            Column::new("deal_rate".into(), deal_rate),
            Column::new("lead_to_deal".into(), lead_to_deal),
            Column::new("median_days_to_visit".into(), to_visit.into_iter().map(median).collect::<Vec<_>>()),
            Column::new("median_days_to_deal".into(), to_deal.into_iter().map(median).collect::<Vec<_>>()),
            Column::new("notes".into(), notes),
        ],
    )?;
    Ok(df.sort(["leads"], SortMultipleOptions::default().with_order_descending(true))?)
}

/// Monthly series per key on the lead basis: leads by the month of the first touch, deals and
/// revenue by the month of the deal, both credited to the customer's first-touch key. Columns:
/// month (`YYYY-MM`), key, leads, deals, revenue; sorted by month then key.
pub fn monthly(j: &Journeys, by: By) -> Result<DataFrame> {
    use std::collections::BTreeMap;
    let month = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us).map_or_else(String::new, |t| t.format("%Y-%m").to_string())
    };
    let mut cells: BTreeMap<(String, u32), (u64, u64, f64)> = BTreeMap::new();
    for l in j.leads_detail.iter().flatten() {
        cells.entry((month(l.lead_ts), l.key)).or_default().0 += 1;
        if let Some((t, value)) = l.deal {
            let e = cells.entry((month(t), l.key)).or_default();
            e.1 += 1;
            e.2 += value;
        }
    }
    let n = cells.len();
    let (mut months, mut keys, mut leads, mut deals, mut revenue) = (vec![], vec![], vec![], vec![], vec![]);
    for ((m, k), (l, d, r)) in cells {
        months.push(m);
        keys.push(j.keys[k as usize].clone());
        leads.push(l);
        deals.push(d);
        revenue.push(r);
    }
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("month".into(), months),
            Column::new(by.column().into(), keys),
            Column::new("leads".into(), leads),
            Column::new("deals".into(), deals),
            Column::new("revenue".into(), revenue),
        ],
    )?)
}
