//! One request type per analytic, read by the command line (clap `Args`) and by the HTTP API
//! (serde, documented by utoipa) alike. Each holds its defaults once ([`defaults`]) and becomes
//! the engine's checked parameters in one `TryFrom`, so the two surfaces cannot disagree on a
//! default, a range or a spelling, and cache keys are built from what the `TryFrom` returns.
//!
//! What only one surface has stays outside these types: the command line's `DIR`, `--out` (whose
//! extension is the format) and `--engine`, and its local-only options (`--prior`, `--smooth`,
//! `--geo`, `--paths`, `--compare-kinds`). The HTTP `format` field is here, skipped by clap.
//!
//! `k` is optional: on the command line an absent `--k` is [`defaults::K`]; a server floors every
//! request at its own `--min-k`, which a request's `k` can only raise (SPEC §3).

use std::collections::BTreeMap;

use clap::Args;
use custmap_engine::analytics::placement::{check_radius, PlacementParams, ReachMode, Weight};
use custmap_engine::analytics::referrals::{ReferralsBy, ReferralsParams};
use custmap_engine::analytics::{AttributionParams, By, HeatmapParams, KFloor, Location, Model, Segment};
use custmap_engine::spatial::Res;
use custmap_engine::Error;
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use crate::views::{ChartChoice, PlotChoice};

/// Every default of every request, once.
pub mod defaults {
    use super::{By, Location, ReachMode, ReferralsBy, Weight};

    /// The privacy floor when a command-line request names none.
    pub const K: u32 = 5;
    pub const HEATMAP_RES: u8 = 8;
    pub const HEATMAP_LOCATION: Location = Location::Work;
    pub const METRIC: &str = "purchasing_power";
    pub const MODEL: &str = "markov";
    pub const BY: By = By::Channel;
    pub const WINDOW_DAYS: u32 = 365;
    pub const HALF_LIFE_DAYS: f64 = 30.0;
    pub const MARKOV_ORDER: u8 = 1;
    pub const REACH: ReachMode = ReachMode::Both;
    pub const WEIGHT: Weight = Weight::Count;
    pub const TIME_LIMIT_S: f64 = custmap_engine::analytics::placement::DEFAULT_TIME_LIMIT_S;
    pub const REFERRALS_BY: ReferralsBy = ReferralsBy::Referrer;
    pub const REFERRALS_RES: u8 = 7;
    pub const REFERRALS_LOCATION: Location = Location::Home;

    pub(super) fn reach() -> ReachMode {
        REACH
    }
    pub(super) fn weight() -> Weight {
        WEIGHT
    }
    pub(super) fn time_limit_s() -> f64 {
        TIME_LIMIT_S
    }
}

/// The largest `k` a request may ask for (a floor above any cell's population only empties the
/// answer; beyond this it is a mistake, named).
pub const MAX_K: u32 = 1000;

/// A requested floor, checked: within `1..=MAX_K`.
pub fn checked_k(k: Option<u32>) -> Result<Option<u32>, Error> {
    match k {
        Some(k) if !(1..=MAX_K).contains(&k) => {
            Err(Error::BadInput(format!("k = {k}: a floor is a whole number from 1 to {MAX_K}")))
        }
        other => Ok(other),
    }
}

/// The floor a request asks for: `k`, else [`defaults::K`].
pub fn requested_floor(k: Option<u32>) -> Result<KFloor, Error> {
    KFloor::new(checked_k(k)?.unwrap_or(defaults::K))
}

/// A heatmap: purchasing power and conversion per H3 cell.
#[derive(Args, Deserialize, IntoParams, Debug, Clone, PartialEq)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct HeatmapRequest {
    /// H3 resolution 0-15.
    #[arg(long, default_value_t = defaults::HEATMAP_RES)]
    #[param(minimum = 0, maximum = 15, default = 8)]
    pub res: u8,
    /// Which of a customer's places count: home, work or both.
    #[arg(long, value_enum, default_value_t = defaults::HEATMAP_LOCATION)]
    #[param(inline, default = "work")]
    pub location: Location,
    /// Segment filter, a SQL boolean expression over customer columns, e.g. `budget >= 3000000`.
    #[arg(long = "where")]
    #[serde(rename = "where")]
    #[param(rename = "where")]
    pub where_: Option<String>,
    /// Privacy floor: the fewest people any figure of a cell may count (default 5; a server's
    /// `--min-k`, which a request can only raise). Ignored by the public release, whose figures
    /// are differentially private.
    #[arg(long)]
    #[param(minimum = 1, maximum = 1000)]
    pub k: Option<u32>,
    /// The column a map (png/svg) is coloured by.
    #[arg(long, default_value = defaults::METRIC)]
    #[param(default = "purchasing_power")]
    pub metric: String,
    /// HTTP only: `json` (default), `geojson`, `csv`, `arrow`, `png` or `svg`; or send an Accept
    /// header. (The command line takes the format from `--out`.)
    #[arg(skip)]
    pub format: Option<String>,
}

impl Default for HeatmapRequest {
    fn default() -> Self {
        HeatmapRequest {
            res: defaults::HEATMAP_RES,
            location: defaults::HEATMAP_LOCATION,
            where_: None,
            k: None,
            metric: defaults::METRIC.into(),
            format: None,
        }
    }
}

impl TryFrom<&HeatmapRequest> for HeatmapParams {
    type Error = Error;
    fn try_from(r: &HeatmapRequest) -> Result<Self, Error> {
        let params = HeatmapParams {
            res: Res::new(r.res).map_err(|e| Error::BadInput(format!("res: {e}")))?,
            location: r.location,
            segment: Segment::given(r.where_.as_deref()).map(str::to_string),
            k: requested_floor(r.k)?,
            ..HeatmapParams::default()
        };
        params.check()?;
        Ok(params)
    }
}

/// Campaign attribution: credit per channel or campaign under one or more models.
#[derive(Args, Deserialize, IntoParams, Debug, Clone, PartialEq)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct AttributionRequest {
    /// One model, a comma list, or `all`: first_touch, last_touch, linear, time_decay,
    /// position_based, markov, shapley.
    #[arg(long, default_value = defaults::MODEL)]
    #[param(default = "markov")]
    pub model: String,
    /// Key the credit by channel or campaign.
    #[arg(long, value_enum, default_value_t = defaults::BY)]
    #[param(inline, default = "channel")]
    pub by: By,
    /// Lookback window in days before the conversion.
    #[arg(long, default_value_t = defaults::WINDOW_DAYS)]
    #[param(minimum = 1, maximum = 36500, default = 365)]
    pub window: u32,
    /// Half-life of the time_decay model, in days.
    #[arg(long, default_value_t = defaults::HALF_LIFE_DAYS)]
    #[param(default = 30.0)]
    pub half_life: f64,
    /// Order of the Markov chain.
    #[arg(long, default_value_t = defaults::MARKOV_ORDER)]
    #[param(minimum = 1, default = 1)]
    pub order: u8,
    /// Chart for png/svg: roi (by channel), compare (models side by side) or monthly (deals per
    /// month by first-touch key). Default: compare for several models, else roi. On the command
    /// line with a table format, `monthly` writes the monthly series.
    #[arg(long, value_enum)]
    #[param(inline)]
    pub chart: Option<ChartChoice>,
    /// Privacy floor: a row's conversions, leads or visits of 1 to k-1 people are withheld
    /// (null) with what is drawn from them (default 5; a server's `--min-k`, which a request can
    /// only raise; `--k 1` on the command line shows every figure).
    #[arg(long)]
    #[param(minimum = 1, maximum = 1000)]
    pub k: Option<u32>,
    /// HTTP only: `json` (default), `csv`, `arrow`, or a chart as `png` / `svg`.
    #[arg(skip)]
    pub format: Option<String>,
}

impl Default for AttributionRequest {
    fn default() -> Self {
        AttributionRequest {
            model: defaults::MODEL.into(),
            by: defaults::BY,
            window: defaults::WINDOW_DAYS,
            half_life: defaults::HALF_LIFE_DAYS,
            order: defaults::MARKOV_ORDER,
            chart: None,
            k: None,
            format: None,
        }
    }
}

impl TryFrom<&AttributionRequest> for AttributionParams {
    type Error = Error;
    fn try_from(r: &AttributionRequest) -> Result<Self, Error> {
        let params = AttributionParams {
            models: Model::parse_list(&r.model)?,
            by: r.by,
            window_days: r.window,
            half_life_days: r.half_life,
            markov_order: r.order,
        };
        params.check()?;
        Ok(params)
    }
}

/// The lead -> visit -> deal funnel per first-touch channel or campaign.
#[derive(Args, Deserialize, IntoParams, Debug, Clone, PartialEq)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct FunnelRequest {
    /// Key the funnel by the first touch's channel or campaign.
    #[arg(long, value_enum, default_value_t = defaults::BY)]
    #[param(inline, default = "channel")]
    pub by: By,
    /// Privacy floor: leads, visits and deals of 1 to k-1 people are withheld with the rates
    /// and medians drawn from them (default 5; a server's `--min-k`, which a request can only raise).
    #[arg(long)]
    #[param(minimum = 1, maximum = 1000)]
    pub k: Option<u32>,
    /// HTTP only: `json` (default), `csv`, `arrow`, or the funnel chart as `png` / `svg`.
    #[arg(skip)]
    pub format: Option<String>,
}

impl Default for FunnelRequest {
    fn default() -> Self {
        FunnelRequest { by: defaults::BY, k: None, format: None }
    }
}

/// A reach radius for one site kind, `KIND=METRES` on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRadius {
    pub kind: String,
    pub metres: f64,
}

impl std::str::FromStr for KindRadius {
    type Err = String;
    fn from_str(item: &str) -> Result<Self, String> {
        let (kind, m) = item.split_once('=').ok_or_else(|| format!("'{item}' is not KIND=METRES"))?;
        let metres = m.trim().parse().map_err(|_| format!("'{item}': '{m}' is not a number"))?;
        Ok(KindRadius { kind: kind.trim().to_string(), metres })
    }
}

/// `reach_m` over HTTP is an object `{kind: metres}`.
fn radii_from_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KindRadius>, D::Error> {
    let map = BTreeMap::<String, f64>::deserialize(d)?;
    Ok(map.into_iter().map(|(kind, metres)| KindRadius { kind, metres }).collect())
}

/// An ad-placement plan: which sites to buy within a budget to reach the most target prospects.
#[derive(Args, Deserialize, ToSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// Budget in the sites' cost unit (CNY); >= 0.
    #[arg(long)]
    pub budget: f64,
    /// Target prospects: a SQL boolean expression over customer columns.
    #[arg(long = "where")]
    #[serde(rename = "where", default)]
    #[schema(rename = "where")]
    pub where_: Option<String>,
    /// How a prospect is reached: home, work, both (home or work) or commute (also on the way).
    #[arg(long, value_enum, default_value_t = defaults::REACH)]
    #[serde(default = "defaults::reach")]
    #[schema(inline, default = "both")]
    pub reach: ReachMode,
    /// Count prospects (count) or weigh them by budget (purchasing power).
    #[arg(long, value_enum, default_value_t = defaults::WEIGHT)]
    #[serde(default = "defaults::weight")]
    #[schema(inline, default = "count")]
    pub weight: Weight,
    /// Site ids that must be in the plan (comma-separated on the command line).
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub must_include: Vec<String>,
    /// Site ids never to choose.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Only sites of these kinds (e.g. office_lobby,cafe); every kind when absent.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Reach radius per kind in metres, overriding the sites' reach_m and the defaults
    /// (`office_lobby=150,cafe=300` on the command line, `{"cafe": 300}` over HTTP).
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "radii_from_map")]
    #[schema(value_type = BTreeMap<String, f64>)]
    pub reach_m: Vec<KindRadius>,
    /// Seconds the solver may search before reporting its best plan with a certified gap (at
    /// most 30 over HTTP).
    #[arg(long = "time-limit", alias = "time-limit-s", default_value_t = defaults::TIME_LIMIT_S)]
    #[serde(default = "defaults::time_limit_s")]
    #[schema(exclusive_minimum = 0, maximum = 30, default = 2.0)]
    pub time_limit_s: f64,
    /// For png/svg: the plan on a map of the target prospects (map) or reach versus budget (curve).
    #[arg(long, value_enum, default_value_t = PlotChoice::Map)]
    #[serde(default)]
    #[schema(inline)]
    pub plot: PlotChoice,
    /// Privacy floor: no figure of the report counts 1 to k-1 prospects (default 5; a server's
    /// `--min-k`, which a request can only raise).
    #[arg(long)]
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub k: Option<u32>,
    /// HTTP only: `json` (default), or `png` / `svg` for a picture.
    #[arg(skip)]
    #[serde(default)]
    pub format: Option<String>,
}

impl PlacementRequest {
    /// The radii asked for, each checked (a distance > 0).
    pub fn radii(&self) -> Result<BTreeMap<String, f64>, Error> {
        let mut radii = BTreeMap::new();
        for r in &self.reach_m {
            check_radius(&r.kind, r.metres)?;
            radii.insert(r.kind.clone(), r.metres);
        }
        Ok(radii)
    }
}

impl TryFrom<&PlacementRequest> for PlacementParams {
    type Error = Error;
    fn try_from(r: &PlacementRequest) -> Result<Self, Error> {
        r.radii()?;
        let params = PlacementParams {
            budget: r.budget,
            segment: Segment::given(r.where_.as_deref()).map(str::to_string),
            reach: r.reach,
            weight: r.weight,
            must_include: r.must_include.clone(),
            exclude: r.exclude.clone(),
            kinds: r.kinds.clone(),
            time_limit_s: r.time_limit_s,
        };
        params.check()?;
        Ok(params)
    }
}

/// Referral chains: advocates, chain value, channel multipliers, where advocates live.
#[derive(Args, Deserialize, IntoParams, Debug, Clone, PartialEq)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ReferralsRequest {
    /// `referrer` (one row per advocate), `channel` (the roots' acquisition channel) or `cell`
    /// (where advocates live or work).
    #[arg(long, value_enum, default_value_t = defaults::REFERRALS_BY)]
    #[param(inline, default = "referrer")]
    pub by: ReferralsBy,
    /// Privacy floor of channel and cell rows: the fewest root customers or advocates per row
    /// (default 5; a server's `--min-k`, which a request can only raise).
    #[arg(long)]
    #[param(minimum = 1, maximum = 1000)]
    pub k: Option<u32>,
    /// H3 resolution of `by=cell`.
    #[arg(long, default_value_t = defaults::REFERRALS_RES)]
    #[param(minimum = 0, maximum = 15, default = 7)]
    pub res: u8,
    /// The advocates' place for `by=cell`: home or work.
    #[arg(long, value_enum, default_value_t = defaults::REFERRALS_LOCATION)]
    #[param(inline, default = "home")]
    pub location: Location,
    /// HTTP only: `json` (default), `csv` or `arrow`.
    #[arg(skip)]
    pub format: Option<String>,
}

impl Default for ReferralsRequest {
    fn default() -> Self {
        ReferralsRequest {
            by: defaults::REFERRALS_BY,
            k: None,
            res: defaults::REFERRALS_RES,
            location: defaults::REFERRALS_LOCATION,
            format: None,
        }
    }
}

impl TryFrom<&ReferralsRequest> for ReferralsParams {
    type Error = Error;
    fn try_from(r: &ReferralsRequest) -> Result<Self, Error> {
        if r.location == Location::Both {
            return Err(Error::BadInput("location: an advocate's place is home or work, not both".into()));
        }
        Ok(ReferralsParams {
            by: r.by,
            k: requested_floor(r.k)?,
            res: Res::new(r.res).map_err(|e| Error::BadInput(format!("res: {e}")))?,
            location: r.location,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_defaults_are_the_engines() {
        let h = HeatmapParams::try_from(&HeatmapRequest::default()).unwrap();
        let e = HeatmapParams::default();
        assert_eq!((h.res, h.location, h.k, h.prior, h.smooth), (e.res, e.location, e.k, e.prior, e.smooth));
        assert_eq!(AttributionParams::try_from(&AttributionRequest::default()).unwrap(), AttributionParams::default());
        assert_eq!(KFloor::new(defaults::K).unwrap(), KFloor::default());
    }

    #[test]
    fn a_placement_body_takes_the_defaults_the_command_line_has() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            request: PlacementRequest,
        }
        let from_cli = Cli::parse_from(["x", "--budget", "1000"]).request;
        let from_body: PlacementRequest = serde_json::from_str(r#"{"budget": 1000}"#).unwrap();
        assert_eq!(from_cli, from_body);
        let from_cli = Cli::parse_from(["x", "--budget", "5", "--reach-m", "cafe=300,billboard=90"]).request;
        let from_body: PlacementRequest =
            serde_json::from_str(r#"{"budget": 5, "reach_m": {"billboard": 90, "cafe": 300}}"#).unwrap();
        assert_eq!(from_cli.radii().unwrap(), from_body.radii().unwrap());
    }

    #[test]
    fn query_requests_take_the_defaults_the_command_line_has() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli<T: Args> {
            #[command(flatten)]
            request: T,
        }
        fn same<T: Args + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>() {
            let from_cli = Cli::<T>::parse_from(["x"]).request;
            let from_query: T = serde_json::from_str("{}").unwrap();
            assert_eq!(from_cli, from_query);
        }
        same::<HeatmapRequest>();
        same::<AttributionRequest>();
        same::<FunnelRequest>();
        same::<ReferralsRequest>();
    }
}
