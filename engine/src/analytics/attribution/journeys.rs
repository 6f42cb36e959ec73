//! Journeys: each customer's touchpoints in time order, up to their first signed deal (the
//! conversion) or the dataset's end, within a lookback window.
//!
//! Rules (SPEC §4, documented here once):
//! - Touches are touchpoints with any event except `visit`; visits are funnel events, counted per
//!   channel, not path steps (a visit's channel would otherwise count the last channel twice).
//! - A conversion is the customer's first signed deal, at the end of its signing day (touches on
//!   that day count), valued at its price. Cancelled deals never convert.
//! - The window looks back `window_days` from the conversion, or from the dataset's end for
//!   customers who did not convert. The dataset's end is the latest touch or signing.
//! - Ties in time are ordered by channel name, then campaign id, so results never depend on
//!   file order.
//! - A customer with `referred_by` gets a `referral` touch at `created_at` (or just before their
//!   first touch when `created_at` is missing) when no touch of theirs comes earlier.

use std::collections::HashMap;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::io::validate::CUSTOMER_ROW;
use crate::io::Dataset;

/// What a journey's steps are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Channel,
    Campaign,
}

impl By {
    #[must_use]
    pub fn column(self) -> &'static str {
        match self {
            By::Channel => "channel",
            By::Campaign => "campaign",
        }
    }
}

/// The channel name referrals get.
pub const REFERRAL: &str = "referral";
/// Campaign key of touches without a campaign.
pub const NO_CAMPAIGN: &str = "(no campaign)";

const DAY_US: i64 = 86_400_000_000;

/// One step of a journey.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    pub key: u32,
    /// Microseconds since the epoch.
    pub ts: i64,
}

/// A customer's journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// Row of the customer in the dataset's customers frame.
    pub customer_row: u32,
    pub touches: Vec<Touch>,
    /// (time in microseconds, value) of the conversion, if any. With a `weight` above 1 the
    /// value is the total over the customers the journey stands for.
    pub conversion: Option<(i64, f64)>,
    /// How many customers took this journey: 1 for a journey built from touchpoints, the count
    /// of a distinct path when built from reduced path counts ([`Journeys::from_paths`]).
    pub weight: f64,
}

/// All journeys of a dataset, keyed by channel or campaign.
#[derive(Debug, Clone, Default)]
pub struct Journeys {
    /// Key names; a touch's `key` indexes this.
    pub keys: Vec<String>,
    pub journeys: Vec<Journey>,
    /// Per key: customers whose first touch (ever, not only in the window) it is.
    pub leads: Vec<u64>,
    /// Per key: visit events.
    pub visits: Vec<u64>,
    /// Per key: the channel it belongs to (the key itself when keyed by channel).
    pub channel_of: Vec<String>,
    /// First and last instant of the data (microseconds).
    pub period: (i64, i64),
    /// One record per customer with a first touch: the funnel's raw material.
    pub leads_detail: Vec<Lead>,
    /// Whether touches carry their real times (false for journeys rebuilt from path counts,
    /// which the time-decay model cannot use).
    pub timed: bool,
}

/// A customer's way through the funnel, keyed by their first touch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lead {
    pub key: u32,
    pub lead_ts: i64,
    pub visit_ts: Option<i64>,
    pub deal: Option<(i64, f64)>,
}

impl Journeys {
    /// The distinct paths (keys in time order, joined by `" > "`) with how many journeys took
    /// each and converted, how many did not, and the converted value: the input other
    /// attribution tools (ChannelAttribution, for one) take. Journeys without a touch in the
    /// window are left out, as every model leaves them out. Sorted by path.
    pub fn path_table(&self) -> Result<DataFrame> {
        let mut paths: std::collections::BTreeMap<String, (u64, u64, f64)> = std::collections::BTreeMap::new();
        for j in self.journeys.iter().filter(|j| !j.touches.is_empty()) {
            let names: Vec<&str> = j.touches.iter().map(|t| self.keys[t.key as usize].as_str()).collect();
            let e = paths.entry(names.join(" > ")).or_default();
            match j.conversion {
                Some((_, value)) => {
                    e.0 += j.weight as u64;
                    e.2 += value;
                }
                None => e.1 += j.weight as u64,
            }
        }
        let (mut path, mut conv, mut null, mut value) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (p, (c, n, v)) in paths {
            path.push(p);
            conv.push(c);
            null.push(n);
            value.push(v);
        }
        Ok(DataFrame::new(
            path.len(),
            vec![
                Column::new("path".into(), path),
                Column::new("conversions".into(), conv),
                Column::new("nulls".into(), null),
                Column::new("value".into(), value),
            ],
        )?)
    }

    /// Total conversions and their value.
    #[must_use]
    pub fn totals(&self) -> (f64, f64) {
        conversions(self.journeys.iter())
    }

    /// Journeys rebuilt from reduced path counts (what a cluster returns): one weighted journey
    /// per distinct path and outcome. `paths` has columns `path` (keys joined by
    /// [`PATH_SEPARATOR`]; empty for converted journeys with no touch in the window),
    /// `conversions`, `nulls` and `value`. `keys` lists every key with its channel, leads and
    /// visits. Touch times are not kept (`timed` is false).
    pub fn from_paths(paths: &DataFrame, keys: &[KeyStats], period: (i64, i64)) -> Result<Journeys> {
        let index: HashMap<&str, u32> = keys.iter().enumerate().map(|(i, k)| (k.key.as_str(), i as u32)).collect();
        let path = paths.column("path")?.str()?;
        let conv = paths.column("conversions")?.cast(&DataType::Float64)?;
        let nulls = paths.column("nulls")?.cast(&DataType::Float64)?;
        let value = paths.column("value")?.cast(&DataType::Float64)?;
        let (conv, nulls, value) = (conv.f64()?, nulls.f64()?, value.f64()?);
        let mut journeys = Vec::new();
        for i in 0..paths.height() {
            let p = path.get(i).unwrap_or("");
            let touches = p
                .split(PATH_SEPARATOR)
                .filter(|k| !k.is_empty())
                .map(|k| {
                    index
                        .get(k)
                        .map(|&key| Touch { key, ts: 0 })
                        .ok_or_else(|| Error::Internal(format!("path key '{k}' is not among the keys")))
                })
                .collect::<Result<Vec<_>>>()?;
            let (c, n, v) = (conv.get(i).unwrap_or(0.0), nulls.get(i).unwrap_or(0.0), value.get(i).unwrap_or(0.0));
            if c > 0.0 {
                journeys.push(Journey {
                    customer_row: 0,
                    touches: touches.clone(),
                    conversion: Some((0, v)),
                    weight: c,
                });
            }
            if n > 0.0 && !touches.is_empty() {
                journeys.push(Journey { customer_row: 0, touches, conversion: None, weight: n });
            }
        }
        Ok(Journeys {
            keys: keys.iter().map(|k| k.key.clone()).collect(),
            journeys,
            leads: keys.iter().map(|k| k.leads).collect(),
            visits: keys.iter().map(|k| k.visits).collect(),
            channel_of: keys.iter().map(|k| k.channel.clone()).collect(),
            period,
            leads_detail: Vec::new(),
            timed: false,
        })
    }
}

/// Separator of keys in the paths a cluster returns (a control character, so no key name
/// clashes with it; [`Journeys::path_table`] shows paths with `" > "`).
pub const PATH_SEPARATOR: char = '\u{1f}';

/// One key (channel or campaign) of reduced journeys: its channel, leads and visits.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStats {
    pub key: String,
    pub channel: String,
    pub leads: u64,
    pub visits: u64,
}

/// Conversions (weighted) and their value over `journeys`.
pub fn conversions<'a>(journeys: impl Iterator<Item = &'a Journey>) -> (f64, f64) {
    journeys
        .filter_map(|j| j.conversion.map(|(_, value)| (j.weight, value)))
        .fold((0.0, 0.0), |(n, v), (w, x)| (n + w, v + x))
}

struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    channel_of: Vec<String>,
}

impl Interner {
    fn id(&mut self, key: &str, channel: &str) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(key.to_string(), id);
        self.names.push(key.to_string());
        self.channel_of.push(channel.to_string());
        id
    }
}

/// Builds the journeys of `ds` keyed by `by`, with a lookback window of `window_days`.
pub fn build(ds: &Dataset, by: By, window_days: u32) -> Result<Journeys> {
    let Some(touchpoints) = ds.touchpoints.as_ref() else {
        return Err(Error::bad_input("attribution needs a touchpoints table"));
    };
    let window = i64::from(window_days) * DAY_US;
    let tp = touchpoints
        .clone()
        .lazy()
        .select([
            col(CUSTOMER_ROW).cast(DataType::UInt32),
            col("ts").cast(DataType::Int64).alias("ts"),
            col("channel"),
            col("campaign_id").fill_null(lit(NO_CAMPAIGN)),
            col("event"),
        ])
        .sort([CUSTOMER_ROW, "ts", "channel", "campaign_id"], SortMultipleOptions::default().with_maintain_order(true))
        .collect()?;
    let conversions = first_conversions(ds)?;
    let referrals = referrals(ds)?;

    let rows = tp.column(CUSTOMER_ROW)?.u32()?;
    let ts = tp.column("ts")?.i64()?;
    let channel = tp.column("channel")?.str()?;
    let campaign = tp.column("campaign_id")?.str()?;
    let event = tp.column("event")?.str()?;

    let mut keys = Interner { ids: HashMap::new(), names: Vec::new(), channel_of: Vec::new() };
    let referral_key = |keys: &mut Interner| match by {
        By::Channel => keys.id(REFERRAL, REFERRAL),
        By::Campaign => keys.id("(referral)", REFERRAL),
    };
    let mut end = ts.max().unwrap_or(0);
    let mut start = ts.min().unwrap_or(0);
    for (t, _) in conversions.values() {
        end = end.max(*t);
    }

    // Per customer: raw touches (all time), visits counted on the way.
    let mut per_customer: Vec<(u32, Vec<Touch>)> = Vec::new();
    let mut visits: HashMap<u32, u64> = HashMap::new();
    let mut first_visit: HashMap<u32, i64> = HashMap::new();
    for i in 0..tp.height() {
        let (Some(row), Some(t), Some(ch), Some(cp), Some(ev)) =
            (rows.get(i), ts.get(i), channel.get(i), campaign.get(i), event.get(i))
        else {
            continue;
        };
        let key = match by {
            By::Channel => keys.id(ch, ch),
            By::Campaign => keys.id(cp, ch),
        };
        if ev == "visit" {
            *visits.entry(key).or_default() += 1;
            first_visit.entry(row).or_insert(t);
            continue;
        }
        match per_customer.last_mut() {
            Some((r, touches)) if *r == row => touches.push(Touch { key, ts: t }),
            _ => per_customer.push((row, vec![Touch { key, ts: t }])),
        }
    }
    // Referred customers without any touch still have a journey.
    let seen: std::collections::HashSet<u32> = per_customer.iter().map(|(r, _)| *r).collect();
    for row in referrals.keys() {
        if !seen.contains(row) {
            per_customer.push((*row, Vec::new()));
        }
    }

    let mut leads: HashMap<u32, u64> = HashMap::new();
    let mut leads_detail = Vec::with_capacity(per_customer.len());
    let mut journeys = Vec::with_capacity(per_customer.len());
    for (row, mut touches) in per_customer {
        if let Some(created) = referrals.get(&row) {
            let first = touches.first().map(|t| t.ts);
            let at = created.or(first.map(|f| f - 1)).unwrap_or(end);
            if first.is_none_or(|f| at <= f) {
                let key = referral_key(&mut keys);
                touches.insert(0, Touch { key, ts: at });
                start = start.min(at);
            }
        }
        let Some(first) = touches.first() else { continue };
        *leads.entry(first.key).or_default() += 1;
        let conversion = conversions.get(&row).copied();
        leads_detail.push(Lead {
            key: first.key,
            lead_ts: first.ts,
            visit_ts: first_visit.get(&row).copied(),
            deal: conversion,
        });
        let horizon = conversion.map_or(end, |(t, _)| t);
        touches.retain(|t| t.ts <= horizon && t.ts >= horizon - window);
        if touches.is_empty() && conversion.is_none() {
            continue;
        }
        journeys.push(Journey { customer_row: row, touches, conversion, weight: 1.0 });
    }
    let n = keys.names.len();
    let count = |m: &HashMap<u32, u64>| (0..n as u32).map(|k| m.get(&k).copied().unwrap_or(0)).collect();
    Ok(Journeys {
        leads: count(&leads),
        visits: count(&visits),
        keys: keys.names,
        channel_of: keys.channel_of,
        journeys,
        period: (start, end),
        leads_detail,
        timed: true,
    })
}

/// First signed deal per customer row: (end of its signing day in microseconds, price).
fn first_conversions(ds: &Dataset) -> Result<HashMap<u32, (i64, f64)>> {
    let mut out = HashMap::new();
    let Some(deals) = ds.deals.as_ref() else { return Ok(out) };
    let d = deals
        .clone()
        .lazy()
        .filter(col("status").eq(lit("signed")))
        .select([
            col(CUSTOMER_ROW).cast(DataType::UInt32),
            col("signed_at").cast(DataType::Int32).alias("day"),
            col("price"),
            col("deal_id"),
        ])
        .sort([CUSTOMER_ROW, "day", "deal_id"], SortMultipleOptions::default())
        .collect()?;
    let rows = d.column(CUSTOMER_ROW)?.u32()?;
    let days = d.column("day")?.i32()?;
    let price = d.column("price")?.f64()?;
    for i in 0..d.height() {
        if let (Some(r), Some(day), Some(p)) = (rows.get(i), days.get(i), price.get(i)) {
            out.entry(r).or_insert((i64::from(day) * DAY_US + DAY_US - 1, p));
        }
    }
    Ok(out)
}

/// Referred customers: row -> referral time (start of `created_at`, if known).
fn referrals(ds: &Dataset) -> Result<HashMap<u32, Option<i64>>> {
    let c = ds
        .customers
        .clone()
        .lazy()
        .with_row_index("__row", None)
        .filter(col("referred_by").is_not_null())
        .select([col("__row").cast(DataType::UInt32), col("created_at").cast(DataType::Int32)])
        .collect()?;
    let rows = c.column("__row")?.u32()?;
    let created = c.column("created_at")?.i32()?;
    Ok(rows.iter().zip(created.iter()).filter_map(|(r, d)| r.map(|r| (r, d.map(|d| i64::from(d) * DAY_US)))).collect())
}
