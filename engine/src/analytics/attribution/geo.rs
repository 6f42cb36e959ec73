//! Attribution by place: conversions and revenue per H3 cell x channel (or campaign), by where
//! the converting customers live or work, under the privacy floor.
//!
//! Rule-based models credit each journey's touches directly. Markov and Shapley credit keys in
//! aggregate; by place, each conversion is split among its journey's keys in proportion to the
//! model's conversions per touch of those keys, so every conversion is still handed out exactly
//! once. The floor applies to converting customers: a cell with fewer than `k` of them is merged
//! into its parent (up to two levels), else dropped.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::heuristic::{self, Rule};
use super::journeys::{By, Journeys};
use super::Model;
use crate::analytics::privacy::floor::{merge_up, Floored, MERGE_LEVELS};
use crate::analytics::privacy::{groups_of, withhold_in_complement, withhold_small, KFloor, Suppressed};

/// A (cell, key) row's figures, withheld together.
const CELL_FIGURES: [&str; 2] = ["conversions", "revenue"];
use crate::analytics::Location;
use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::spatial::h3::{self, Res};

/// Per converting journey: (journey index, key, share of its conversion).
fn journey_shares(model: Model, j: &Journeys, credit: &[(f64, f64)], half_life_us: f64) -> Vec<(usize, u32, f64)> {
    let rule = match model {
        Model::FirstTouch => Some(Rule::FirstTouch),
        Model::LastTouch => Some(Rule::LastTouch),
        Model::Linear => Some(Rule::Linear),
        Model::TimeDecay => Some(Rule::TimeDecay { half_life_us }),
        Model::PositionBased => Some(Rule::PositionBased),
        Model::Markov | Model::Shapley => None,
    };
    let mut touches_per_key = vec![0.0; j.keys.len()];
    for x in j.journeys.iter().filter(|x| x.conversion.is_some()) {
        for t in x.touches {
            touches_per_key[t.key as usize] += 1.0;
        }
    }
    let mut out = Vec::new();
    for (i, x) in j.journeys.iter().enumerate() {
        if x.conversion.is_none() || x.touches.is_empty() {
            continue;
        }
        let weights: Vec<f64> = match rule {
            Some(rule) => heuristic::weights(rule, &x),
            None => {
                let w: Vec<f64> = x
                    .touches
                    .iter()
                    .map(|t| {
                        let k = t.key as usize;
                        if touches_per_key[k] > 0.0 {
                            credit[k].0 / touches_per_key[k]
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let total: f64 = w.iter().sum();
                let n = w.len() as f64;
                w.into_iter().map(|v| if total > 0.0 { v / total } else { 1.0 / n }).collect()
            }
        };
        for (t, w) in x.touches.iter().zip(weights) {
            out.push((i, t.key, w));
        }
    }
    out
}

/// Conversions and revenue per cell x key at `res`, after the floor on converting customers.
#[allow(clippy::too_many_arguments)] // the pieces of one analytic, passed through from its params
pub fn geo_attribution(
    ds: &Dataset,
    model: Model,
    by: By,
    j: &Journeys,
    credit: &[(f64, f64)],
    location: Location,
    res: Res,
    k: KFloor,
    half_life_us: f64,
) -> Result<(DataFrame, Suppressed)> {
    let (lat_col, lng_col) = match location {
        Location::Home => ("home_lat", "home_lng"),
        Location::Work => ("work_lat", "work_lng"),
        Location::Both => return Err(Error::bad_input("geo attribution places a customer once: use home or work")),
    };
    let lat = ds.customers.column(lat_col)?.f64()?;
    let lng = ds.customers.column(lng_col)?.f64()?;
    let rows: Vec<u32> = j.journeys.iter().map(|x| x.customer_row).collect();
    let la: Vec<Option<f64>> = rows.iter().map(|r| lat.get(*r as usize)).collect();
    let lo: Vec<Option<f64>> = rows.iter().map(|r| lng.get(*r as usize)).collect();
    let cells = h3::cells(&la, &lo, res);

    // Cell -> converting customers, and cell x key -> credit.
    let mut people: HashMap<u64, u64> = HashMap::new();
    let mut credit_by: BTreeMap<(u64, u32), (f64, f64)> = BTreeMap::new();
    for (i, x) in j.journeys.iter().enumerate() {
        if let (Some(c), Some(_)) = (cells[i], x.conversion) {
            *people.entry(c).or_default() += 1;
        }
    }
    for (i, key, w) in journey_shares(model, j, credit, half_life_us) {
        let (Some(c), Some((_, value))) = (cells[i], j.journeys.get(i).conversion) else { continue };
        let e = credit_by.entry((c, key)).or_default();
        e.0 += w;
        e.1 += w * value;
    }

    // The floor, on the converting customers of each cell.
    let rows: Vec<([Option<u64>; 1], u64)> = people.into_iter().map(|(c, n)| ([Some(c)], n)).collect();
    let Floored { published, suppressed, .. } = merge_up(&rows, res, MERGE_LEVELS, |n: &u64| *n >= u64::from(k.get()));
    let place: HashMap<u64, u64> = rows.iter().zip(published).filter_map(|((c, _), [p])| Some((c[0]?, p?))).collect();
    let published = |c: u64| place.get(&c).copied();
    let mut table: BTreeMap<(u64, u32), (f64, f64)> = BTreeMap::new();
    for ((c, key), v) in credit_by {
        if let Some(p) = published(c) {
            let e = table.entry((p, key)).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
    }
    let n = table.len();
    let (mut hex, mut res_col, mut keys, mut conv, mut revenue) = (vec![], vec![], vec![], vec![], vec![]);
    for ((c, key), (cv, rv)) in table {
        hex.push(h3::hex_string(c));
        res_col.push(i32::from(h3::res_of(c)));
        keys.push(j.keys[key as usize].clone());
        conv.push(cv);
        revenue.push(rv);
    }
    let cells = groups_of(n, |i| hex[i].clone());
    let df = DataFrame::new(
        n,
        vec![
            Column::new("hex_id".into(), hex),
            Column::new("res".into(), res_col),
            Column::new(by.column().into(), keys),
            Column::new("conversions".into(), conv),
            Column::new("revenue".into(), revenue),
        ],
    )?;
    // A cell's rows: credits of 1 to k-1 conversions withheld with their revenue (a key that
    // one converting customer touched would show their deal), and in complement within the
    // cell (its rows add up to its converting customers' credit).
    let kf = f64::from(k.get());
    let (shown, _) = withhold_small(df.clone(), u64::from(k.get()), &[("conversions", &CELL_FIGURES)])?;
    let shown = withhold_in_complement(&df, shown, &cells, kf, ("conversions", &CELL_FIGURES))?;
    let withheld = shown.column("conversions")?.null_count() as u64;
    Ok((shown, Suppressed { withheld, ..suppressed }))
}
