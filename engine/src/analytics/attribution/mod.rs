//! Campaign-effectiveness attribution (SPEC §4): who gets credit for conversions, and what each
//! channel or campaign cost per lead, per conversion and in return.
//!
//! Journeys are built once ([`journeys`]); models hand out credit ([`heuristic`], [`markov`],
//! [`shapley`]); money columns come from the campaigns table, prorated to the analysis period.
//! Conversions whose journey has no touch inside the window cannot be credited to anything:
//! every model leaves them out alike and the result reports them as `unattributed`.

pub mod funnel;
pub mod geo;
pub mod heuristic;
pub mod journeys;
pub mod markov;
pub mod shapley;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::schema::DAY_US;
use crate::io::Dataset;
pub use journeys::{By, Journeys, KeyStats};

/// Attribution models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    FirstTouch,
    LastTouch,
    Linear,
    TimeDecay,
    PositionBased,
    Markov,
    Shapley,
}

impl Model {
    pub const ALL: [Model; 7] = [
        Model::FirstTouch,
        Model::LastTouch,
        Model::Linear,
        Model::TimeDecay,
        Model::PositionBased,
        Model::Markov,
        Model::Shapley,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Model::FirstTouch => "first_touch",
            Model::LastTouch => "last_touch",
            Model::Linear => "linear",
            Model::TimeDecay => "time_decay",
            Model::PositionBased => "position_based",
            Model::Markov => "markov",
            Model::Shapley => "shapley",
        }
    }

    /// Parses a model name, or `all` for every model.
    pub fn parse_list(name: &str) -> Result<Vec<Model>> {
        if name == "all" {
            return Ok(Model::ALL.to_vec());
        }
        Model::ALL.iter().find(|m| m.name() == name).map(|m| vec![*m]).ok_or_else(|| {
            Error::bad_input(format!(
                "unknown model '{name}' (one of {}, or all)",
                Model::ALL.map(Model::name).join(", ")
            ))
        })
    }
}

/// Parameters of an attribution run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionParams {
    pub models: Vec<Model>,
    pub by: By,
    pub window_days: u32,
    pub half_life_days: f64,
    pub markov_order: u8,
}

impl Default for AttributionParams {
    fn default() -> Self {
        AttributionParams {
            models: vec![Model::Markov],
            by: By::Channel,
            window_days: 365,
            half_life_days: 30.0,
            markov_order: 1,
        }
    }
}

impl AttributionParams {
    pub fn check(&self) -> Result<()> {
        if self.window_days == 0 || self.window_days > 36_500 {
            return Err(Error::bad_input(format!("window must be 1 to 36500 days, got {}", self.window_days)));
        }
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return Err(Error::bad_input(format!("half-life must be > 0 days, got {}", self.half_life_days)));
        }
        if !(1..=4).contains(&self.markov_order) {
            return Err(Error::bad_input(format!("Markov order must be 1 to 4, got {}", self.markov_order)));
        }
        if self.models.is_empty() {
            return Err(Error::bad_input("no model given"));
        }
        Ok(())
    }
}

/// An attribution table and what qualifies it.
#[derive(Debug, Clone)]
pub struct AttributionResult {
    pub params: AttributionParams,
    /// Columns of SPEC §9: model, channel|campaign, conversions, revenue, cost, leads, visits,
    /// cpl, cpa, roi, roas, then `notes` (why a ratio is null).
    pub table: DataFrame,
    /// Every conversion (first signed deal) and its value: attributed + unattributed.
    pub conversions: (f64, f64),
    /// Conversions (and value) no model can credit: credited to nothing, by every model.
    pub unattributed: (f64, f64),
    /// The unattributed split by reason: (reason, conversions, value), reasons with none left out.
    pub unattributed_reasons: Vec<(&'static str, f64, f64)>,
    /// Standard error of sampled Shapley credits (None when exact or not run).
    pub shapley_std_error: Option<f64>,
}

/// Runs the models of `params` on `ds`.
pub fn attribution(ds: &Dataset, params: &AttributionParams) -> Result<AttributionResult> {
    params.check()?;
    let j = journeys::build_with(ds, params.by, params.window_days, false)?;
    attribution_of(&j, ds.campaigns.as_ref(), params)
}

/// [`attribution`] for a one-shot run: the touchpoints are taken out of `ds` and freed once
/// bucketed by customer (see [`journeys::build_taking`]); `ds.touchpoints` is `None` after.
pub fn attribution_taking_touchpoints(ds: &mut Dataset, params: &AttributionParams) -> Result<AttributionResult> {
    params.check()?;
    let j = journeys::build_taking(ds, params.by, params.window_days, false)?;
    attribution_of(&j, ds.campaigns.as_ref(), params)
}

/// Runs the models of `params` on journeys already built (locally, or rebuilt from a cluster's
/// path counts with [`Journeys::from_paths`]), with costs from `campaigns`.
pub fn attribution_of(
    j: &Journeys,
    campaigns: Option<&DataFrame>,
    params: &AttributionParams,
) -> Result<AttributionResult> {
    params.check()?;
    if !j.timed && params.models.contains(&Model::TimeDecay) {
        return Err(Error::bad_input(
            "time_decay needs each touch's time, which reduced path counts do not keep; use --engine local for it",
        ));
    }
    let keys = j.keys.len();
    let (cost, spend_only) = costs(campaigns, j, params.by)?;
    let mut frames = Vec::new();
    let mut shapley_std_error = None;
    for model in &params.models {
        let credit = match model {
            Model::FirstTouch => heuristic::credit(heuristic::Rule::FirstTouch, &j.journeys, keys),
            Model::LastTouch => heuristic::credit(heuristic::Rule::LastTouch, &j.journeys, keys),
            Model::Linear => heuristic::credit(heuristic::Rule::Linear, &j.journeys, keys),
            Model::TimeDecay => heuristic::credit(
                heuristic::Rule::TimeDecay { half_life_us: params.half_life_days * DAY_US as f64 },
                &j.journeys,
                keys,
            ),
            Model::PositionBased => heuristic::credit(heuristic::Rule::PositionBased, &j.journeys, keys),
            Model::Markov => markov::credit(&j.journeys, keys, params.markov_order)?,
            Model::Shapley => {
                let s = shapley::credit(&j.journeys, keys, 42);
                shapley_std_error = s.std_error;
                s.credit
            }
        };
        frames.push(model_table(*model, params.by, j, &credit, &cost, &spend_only)?);
    }
    let table = concat(frames.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(), UnionArgs::default())?.collect()?;
    let (all_conv, all_value) = j.totals();
    let (att_conv, att_value) = journeys::conversions(j.journeys.iter().filter(|x| !x.touches.is_empty()));
    let outside = journeys::conversions(j.journeys.iter().filter(|x| x.touches.is_empty()));
    let unattributed_reasons = [
        ("no touch in the window before the deal", outside),
        ("no touchpoints", j.no_touchpoints),
        ("visits only (a visit is not a marketing touch)", j.visit_only),
    ]
    .into_iter()
    .filter(|(_, (n, _))| *n > 0.0)
    .map(|(reason, (n, v))| (reason, n, v))
    .collect();
    Ok(AttributionResult {
        params: params.clone(),
        table,
        conversions: (all_conv, all_value),
        unattributed: (all_conv - att_conv, all_value - att_value),
        unattributed_reasons,
        shapley_std_error,
    })
}

/// Attribution by place for the first model of `params`: conversions and revenue per H3 cell x
/// key, by where converting customers live or work, under the privacy floor `k`.
pub fn attribution_by_place(
    ds: &Dataset,
    params: &AttributionParams,
    location: crate::analytics::Location,
    res: crate::spatial::Res,
    k: crate::analytics::KFloor,
) -> Result<(DataFrame, crate::analytics::Suppressed)> {
    params.check()?;
    let j = journeys::build_with(ds, params.by, params.window_days, false)?;
    let keys = j.keys.len();
    let model = params.models[0];
    let half_life_us = params.half_life_days * DAY_US as f64;
    let credit = match model {
        Model::Markov => markov::credit(&j.journeys, keys, params.markov_order)?,
        Model::Shapley => shapley::credit(&j.journeys, keys, 42).credit,
        _ => Vec::new(),
    };
    geo::geo_attribution(ds, model, params.by, &j, &credit, location, res, k, half_life_us)
}

/// `num / den`, or null with a reason when `den` is zero.
fn ratio(num: f64, den: f64, what: &str, reason: &str, notes: &mut Vec<String>) -> Option<f64> {
    if den == 0.0 {
        notes.push(format!("{what}: {reason}"));
        None
    } else {
        Some(num / den)
    }
}

/// One model's table: a row per key with touches, then a row per key with spend but no touches
/// (cost, nothing credited, ROI -1: spend that brought no tagged lead must not vanish).
fn model_table(
    model: Model,
    by: By,
    j: &Journeys,
    credit: &[(f64, f64)],
    cost: &[f64],
    spend_only: &[(String, f64, String)],
) -> Result<DataFrame> {
    let n = j.keys.len() + spend_only.len();
    let keys: Vec<String> = j.keys.iter().cloned().chain(spend_only.iter().map(|s| s.0.clone())).collect();
    let credit: Vec<(f64, f64)> =
        credit.iter().take(j.keys.len()).copied().chain(spend_only.iter().map(|_| (0.0, 0.0))).collect();
    let cost: Vec<f64> = cost.iter().copied().chain(spend_only.iter().map(|s| s.1)).collect();
    let leads: Vec<u64> = j.leads.iter().copied().chain(spend_only.iter().map(|_| 0)).collect();
    let visits: Vec<u64> = j.visits.iter().copied().chain(spend_only.iter().map(|_| 0)).collect();
    let (mut cpl, mut cpa, mut roi, mut roas, mut notes) = (vec![], vec![], vec![], vec![], vec![]);
    for k in 0..n {
        let mut why = Vec::new();
        if let Some(note) = k.checked_sub(j.keys.len()).map(|i| &spend_only[i].2) {
            why.push(note.clone());
        }
        let (conv, revenue) = credit[k];
        cpl.push(ratio(cost[k], leads[k] as f64, "cpl", "no leads", &mut why));
        cpa.push(ratio(cost[k], conv, "cpa", "no attributed conversions", &mut why));
        roi.push(ratio(revenue - cost[k], cost[k], "roi", "no cost", &mut why));
        roas.push(ratio(revenue, cost[k], "roas", "no cost", &mut why));
        notes.push(why.join("; "));
    }
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("model".into(), vec![model.name(); n]),
            Column::new(by.column().into(), keys),
            Column::new("conversions".into(), credit.iter().map(|c| c.0).collect::<Vec<_>>()),
            Column::new("revenue".into(), credit.iter().map(|c| c.1).collect::<Vec<_>>()),
            Column::new("cost".into(), cost),
            Column::new("leads".into(), leads),
            Column::new("visits".into(), visits),
            Column::new("cpl".into(), cpl),
            Column::new("cpa".into(), cpa),
            Column::new("roi".into(), roi),
            Column::new("roas".into(), roas),
            Column::new("notes".into(), notes),
        ],
    )?;
    df = df.sort([by.column()], SortMultipleOptions::default())?;
    Ok(df)
}

/// Cost per key with touches, and the keys with spend but no touches: (key, cost, note).
type Costs = (Vec<f64>, Vec<(String, f64, String)>);

/// Cost per key: the campaigns' costs, each prorated to the days its run overlaps the analysis
/// period (the journeys' first to last day). A campaign without dates counts in full. Keys with
/// spend and no touchpoint come back on their own, sorted, so they get a row too.
fn costs(campaigns: Option<&DataFrame>, j: &Journeys, by: By) -> Result<Costs> {
    let mut out = vec![0.0; j.keys.len()];
    let mut spend_only: std::collections::BTreeMap<String, (f64, bool)> = std::collections::BTreeMap::new();
    let Some(campaigns) = campaigns else { return Ok((out, Vec::new())) };
    let day = |us: i64| us.div_euclid(DAY_US) as i32;
    let (p0, p1) = (day(j.period.0), day(j.period.1));
    let c = campaigns
        .clone()
        .lazy()
        .select([
            col("campaign_id"),
            col("channel"),
            col("cost"),
            col("start_date").cast(DataType::Int32),
            col("end_date").cast(DataType::Int32),
        ])
        .collect()?;
    let ids = c.column("campaign_id")?.str()?;
    let channels = c.column("channel")?.str()?;
    let cost = c.column("cost")?.f64()?;
    let start = c.column("start_date")?.i32()?;
    let end = c.column("end_date")?.i32()?;
    let index: std::collections::HashMap<&str, usize> =
        j.keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    for i in 0..c.height() {
        let key = match by {
            By::Channel => channels.get(i),
            By::Campaign => ids.get(i),
        };
        let (Some(key), Some(amount)) = (key, cost.get(i)) else { continue };
        let share = match (start.get(i), end.get(i)) {
            (Some(a), Some(b)) if b >= a => {
                let overlap = (b.min(p1) - a.max(p0) + 1).max(0);
                f64::from(overlap) / f64::from(b - a + 1)
            }
            _ => 1.0,
        };
        match index.get(key) {
            Some(&k) => out[k] += amount * share,
            None if amount > 0.0 => {
                let e = spend_only.entry(key.to_string()).or_insert((0.0, false));
                e.0 += amount * share;
                e.1 |= share == 0.0;
            }
            None => {}
        }
    }
    let spend_only = spend_only
        .into_iter()
        .map(|(key, (cost, outside))| {
            let mut note = format!("no touchpoint tagged with this {}", by.column());
            if outside {
                note.push_str("; a campaign ran outside the analysis period (its cost prorated to 0)");
            }
            (key, cost, note)
        })
        .collect();
    Ok((out, spend_only))
}
