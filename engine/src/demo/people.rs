//! Customers and their journeys: who they are, where they live and work, which channels touch
//! them, whether they visit and buy. The channel effects here are the planted truth.

use chrono::{NaiveDate, NaiveDateTime};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};

use super::city::{pick_weighted, City, PROJECTS};
use super::truth::{multiplier, Effects, CHANNELS, DATASET_END, HIGH_BUDGET};
use crate::error::Result;

/// First-touch channel mix of office-tower workers and of everyone else (same order as CHANNELS).
const MIX_TOWER: [f64; 10] = [0.05, 0.04, 0.08, 0.20, 0.15, 0.04, 0.25, 0.15, 0.0, 0.02];
const MIX_OTHER: [f64; 10] = [0.15, 0.22, 0.15, 0.15, 0.15, 0.06, 0.02, 0.02, 0.0, 0.05];
/// Share of customers who come by referral from an earlier customer.
const REFERRAL_SHARE: f64 = 0.04;
/// Home districts whose customers refer far more (planted; named in `truth.json`).
pub const ADVOCATE_HOME: [&str; 2] = ["汉阳区", "青山区"];
/// How much likelier a customer living in an [`ADVOCATE_HOME`] district is chosen as a referrer.
pub const ADVOCATE_FACTOR: f64 = 8.0;
/// How much likelier an owner (a signed buyer) is chosen as a referrer than a prospect, and a
/// referred owner again (so chains run several generations).
pub const OWNER_FACTOR: f64 = 4.0;
pub const REFERRED_OWNER_FACTOR: f64 = 2.0;

/// Share of customers working in an office tower on one of the avenues.
const TOWER_SHARE: f64 = 0.28;

const AGE_BANDS: [&str; 5] = ["25-34", "35-44", "45-54", "55-64", "18-24"];

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Column buffers for one chunk of customers.
#[derive(Default)]
pub struct Chunk {
    c_id: Vec<String>,
    home: (Vec<Option<f64>>, Vec<Option<f64>>),
    work: (Vec<Option<f64>>, Vec<Option<f64>>),
    budget: Vec<Option<f64>>,
    area: Vec<Option<f64>>,
    project: Vec<&'static str>,
    created: Vec<i32>,
    referred_by: Vec<Option<String>>,
    age_band: Vec<&'static str>,
    t_customer: Vec<String>,
    t_ts: Vec<i64>,
    t_channel: Vec<&'static str>,
    t_campaign: Vec<Option<String>>,
    t_event: Vec<&'static str>,
    d_id: Vec<String>,
    d_customer: Vec<String>,
    d_signed: Vec<i32>,
    d_price: Vec<f64>,
    d_project: Vec<&'static str>,
    d_area: Vec<f64>,
    d_status: Vec<&'static str>,
}

/// The three tables of one chunk.
pub struct ChunkFrames {
    pub customers: DataFrame,
    pub touchpoints: DataFrame,
    pub deals: DataFrame,
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn days(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// Campaign active for a channel at a time: one per half-year period.
pub fn campaign_id(channel: &str, t: NaiveDateTime) -> Option<String> {
    if channel == "walk_in" {
        return None;
    }
    let period = super::truth::period_of(t.date())?;
    Some(format!("CMP-{}-{}", channel, period + 1))
}

/// Generates customers `first..first + count` (0-based) of a city.
pub fn generate(city: &City, effects: &Effects, seed: u64, chunk: u64, first: u64, count: u64) -> Result<ChunkFrames> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ chunk.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut c = Chunk::default();
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
    let end = DATASET_END.and_hms_opt(23, 59, 59).unwrap_or_default();
    let tower_budget = LogNormal::new(4.2e6_f64.ln(), 0.30).map_err(internal)?;
    let other_budget = LogNormal::new(1.6e6_f64.ln(), 0.45).map_err(internal)?;
    let tower_area = Normal::new(135.0, 18.0).map_err(internal)?;
    let other_area = Normal::new(92.0, 16.0).map_err(internal)?;
    let gap = Exp::new(1.0 / 10.0).map_err(internal)?;
    let to_visit = Exp::new(1.0 / 7.0).map_err(internal)?;
    let to_deal = Exp::new(1.0 / 25.0).map_err(internal)?;
    let avenue_weights: Vec<f64> = city.avenues.iter().map(|a| a.weight).collect();
    let mut deal_seq = 0u64;
    // Referrers are drawn from a stream of their own, so planting them leaves every other draw
    // (and so every other planted figure) as it was. Each earlier customer of the chunk weighs
    // by where they live and whether they bought.
    let mut ref_rng =
        ChaCha8Rng::seed_from_u64(seed ^ chunk.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA11C_E5EE_D000_0001);
    let advocate_district: Vec<bool> =
        city.districts.0.iter().map(|d| ADVOCATE_HOME.contains(&d.name.as_str())).collect();
    let mut compound_advocate: Vec<Option<bool>> = vec![None; city.compounds.len()];
    let mut referrer_weight: Vec<f64> = Vec::with_capacity(count as usize);
    let mut pending: Option<(String, f64, bool)> = None;

    for i in first..first + count {
        let id = format!("C{:08}", i + 1);
        if let Some((prev, base, referred)) = pending.take() {
            let bought = c.d_customer.last() == Some(&prev) && c.d_status.last() == Some(&"signed");
            let owner = if bought { OWNER_FACTOR * if referred { REFERRED_OWNER_FACTOR } else { 1.0 } } else { 1.0 };
            referrer_weight.push(referrer_weight.last().copied().unwrap_or(0.0) + base * owner);
        }
        let tower = rng.random_bool(TOWER_SHARE);
        // Work: a tower on an avenue (shared coordinates), an ordinary workplace, or unknown.
        let work = if tower {
            let a = &city.avenues[pick_weighted(&avenue_weights, &mut rng)];
            let t = (rng.random::<f64>().powi(2) * a.towers.len() as f64) as usize;
            Some(a.towers[t.min(a.towers.len() - 1)])
        } else if rng.random_bool(0.85) {
            Some(city.workplaces[rng.random_range(0..city.workplaces.len())].at)
        } else {
            None
        };
        let compound = if tower && rng.random_bool(0.6) && !city.premium_compounds.is_empty() {
            city.premium_compounds[rng.random_range(0..city.premium_compounds.len())]
        } else {
            rng.random_range(0..city.compounds.len())
        };
        let home = if work.is_some() && rng.random_bool(0.07) { None } else { Some(city.compounds[compound].at) };
        let budget_value = if tower { tower_budget.sample(&mut rng) } else { other_budget.sample(&mut rng) };
        let budget_value = (budget_value / 10_000.0).round() * 10_000.0;
        let raw_area: f64 = if tower { tower_area.sample(&mut rng) } else { other_area.sample(&mut rng) };
        let area_value = raw_area.clamp(45.0, 320.0).round();
        let budget = (!rng.random_bool(0.10)).then_some(budget_value);
        let area = (!rng.random_bool(0.05)).then_some(area_value);
        let project = PROJECTS[pick_weighted(&[0.4, 0.35, 0.25], &mut rng)];
        let created = start + chrono::Days::new(rng.random_range(0..365));
        let referral = i > first && rng.random_bool(REFERRAL_SHARE);
        let uniform = referral.then(|| rng.random_range(first..i));
        let referrer = uniform.map(|u| {
            let total = referrer_weight.last().copied().unwrap_or(0.0);
            let k = if total > 0.0 {
                let x = ref_rng.random::<f64>() * total;
                first + referrer_weight.partition_point(|w| *w <= x).min(referrer_weight.len() - 1) as u64
            } else {
                u
            };
            format!("C{:08}", k + 1)
        });

        c.c_id.push(id.clone());
        c.home.0.push(home.map(|h| h.1));
        c.home.1.push(home.map(|h| h.0));
        c.work.0.push(work.map(|w| w.1));
        c.work.1.push(work.map(|w| w.0));
        c.budget.push(budget);
        c.area.push(area);
        c.project.push(project.0);
        c.created.push(days(created));
        c.referred_by.push(referrer);
        let lives_in_advocate_district = home.is_some()
            && *compound_advocate[compound].get_or_insert_with(|| {
                city.district_of(city.compounds[compound].at).is_some_and(|d| advocate_district[d])
            });
        pending = Some((id.clone(), if lives_in_advocate_district { ADVOCATE_FACTOR } else { 1.0 }, referral));
        c.age_band.push(AGE_BANDS[pick_weighted(&[0.35, 0.35, 0.18, 0.07, 0.05], &mut rng)]);

        // Journey. The district whose effects apply is where they work, else where they live.
        let anchor = work.or(home).unwrap_or_default();
        let district = city.district_of(anchor).map(|d| city.districts.0[d].name.as_str()).unwrap_or("");
        let mix = if tower { &MIX_TOWER } else { &MIX_OTHER };
        let mut seen: Vec<&'static str> = Vec::new();
        let mut t = created.and_hms_opt(rng.random_range(8..21), rng.random_range(0..60), 0).unwrap_or_default();
        if referral {
            seen.push("referral");
            t += chrono::Duration::days(rng.random_range(1..15));
        }
        let mut touches = 0;
        loop {
            let channel = CHANNELS[pick_weighted(mix, &mut rng)];
            let event = if touches == 0 {
                "lead"
            } else if matches!(channel, "wechat" | "portal") {
                "click"
            } else {
                "call"
            };
            if t > end {
                break;
            }
            push_touch(&mut c, &id, t, channel, event);
            seen.push(channel);
            touches += 1;
            if touches >= 6 || !rng.random_bool(0.55) {
                break;
            }
            t += chrono::Duration::minutes((gap.sample(&mut rng) * 1440.0) as i64 + 30);
        }
        seen.sort_unstable();
        seen.dedup();
        let effect = |which: fn(&super::truth::Effect) -> f64| -> f64 {
            seen.iter().map(|ch| which(effects.of(ch)) * multiplier(ch, district)).sum()
        };
        let p_visit = sigmoid(effects.base_visit + effect(|e| e.visit));
        if touches == 0 || !rng.random_bool(p_visit) {
            continue;
        }
        let last_channel = *c.t_channel.last().unwrap_or(&"walk_in");
        let tv = t + chrono::Duration::minutes((to_visit.sample(&mut rng) * 1440.0) as i64 + 60);
        if tv > end {
            continue;
        }
        push_touch(&mut c, &id, tv, last_channel, "visit");
        let rich = budget_value >= HIGH_BUDGET;
        let p_buy = sigmoid(effects.base_buy + effect(|e| e.buy) + if rich { 0.4 } else { 0.0 });
        if !rng.random_bool(p_buy) {
            continue;
        }
        let signed = (tv + chrono::Duration::days(to_deal.sample(&mut rng) as i64 + 1)).date();
        if signed > DATASET_END {
            continue;
        }
        let unit = project.3 * rng.random_range(0.92..1.08);
        let mut deal_area = area_value * rng.random_range(0.9..1.1);
        let mut price = deal_area * unit;
        if let Some(b) = budget {
            let cap = b * rng.random_range(0.85..1.05);
            if price > cap {
                deal_area *= cap / price;
                price = cap;
            }
        }
        deal_seq += 1;
        c.d_id.push(format!("D{chunk:04}-{deal_seq:06}"));
        c.d_customer.push(id.clone());
        c.d_signed.push(days(signed));
        c.d_price.push((price / 100.0).round() * 100.0);
        c.d_project.push(project.0);
        c.d_area.push(deal_area.round());
        c.d_status.push(if rng.random_bool(0.04) { "cancelled" } else { "signed" });
    }
    frames(c)
}

fn push_touch(c: &mut Chunk, id: &str, t: NaiveDateTime, channel: &'static str, event: &'static str) {
    c.t_customer.push(id.to_string());
    c.t_ts.push(micros(t));
    c.t_channel.push(channel);
    c.t_campaign.push(campaign_id(channel, t));
    c.t_event.push(event);
}

fn internal(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::Internal(format!("demo distribution: {e}"))
}

fn date_col(name: &str, days: Vec<i32>) -> Result<Column> {
    Ok(Column::new(name.into(), days).cast(&DataType::Date)?)
}

fn frames(c: Chunk) -> Result<ChunkFrames> {
    let n = c.c_id.len();
    let customers = DataFrame::new(
        n,
        vec![
            Column::new("customer_id".into(), c.c_id),
            Column::new("home_lat".into(), c.home.0),
            Column::new("home_lng".into(), c.home.1),
            Column::new("work_lat".into(), c.work.0),
            Column::new("work_lng".into(), c.work.1),
            Column::new("budget".into(), c.budget),
            Column::new("desired_area_sqm".into(), c.area),
            Column::new("project_id".into(), c.project),
            date_col("created_at", c.created)?,
            Column::new("referred_by".into(), c.referred_by),
            Column::new("age_band".into(), c.age_band),
        ],
    )?;
    let nt = c.t_customer.len();
    let touchpoints = DataFrame::new(
        nt,
        vec![
            Column::new("customer_id".into(), c.t_customer),
            Column::new("ts".into(), c.t_ts).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
            Column::new("channel".into(), c.t_channel),
            Column::new("campaign_id".into(), c.t_campaign),
            Column::new("event".into(), c.t_event),
        ],
    )?;
    let nd = c.d_id.len();
    let deals = DataFrame::new(
        nd,
        vec![
            Column::new("deal_id".into(), c.d_id),
            Column::new("customer_id".into(), c.d_customer),
            date_col("signed_at", c.d_signed)?,
            Column::new("price".into(), c.d_price),
            Column::new("project_id".into(), c.d_project),
            Column::new("area_sqm".into(), c.d_area),
            Column::new("status".into(), c.d_status),
        ],
    )?;
    Ok(ChunkFrames { customers, touchpoints, deals })
}
