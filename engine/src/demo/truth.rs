//! The effects the demo generator plants, written to `truth.json` so analytics can be checked
//! against them.

use chrono::NaiveDate;
use serde::Serialize;

use super::city::{City, CORE, PREMIUM_HOME};

/// Channels, in a fixed order.
pub const CHANNELS: [&str; 10] =
    ["billboard", "bus_body", "metro", "wechat", "portal", "exhibition", "office_lobby", "cafe", "referral", "walk_in"];

/// Chinese labels used in campaign names.
pub const CHANNEL_LABELS: [&str; 10] =
    ["户外广告牌", "公交车身", "地铁", "微信", "房产门户", "房展会", "写字楼大堂", "咖啡馆", "老带新", "自然到访"];

/// Marketing spend per channel and year for every 10,000 customers, in CNY: about 2.5% of the
/// sales they bring, in line with what developers spend on marketing.
pub const CHANNEL_SPEND: [f64; 10] = [
    10_400_000.0,
    12_800_000.0,
    8_000_000.0,
    4_800_000.0,
    6_400_000.0,
    4_000_000.0,
    3_600_000.0,
    1_760_000.0,
    1_200_000.0,
    0.0,
];

/// Budget at or above which a prospect is "high-budget".
pub const HIGH_BUDGET: f64 = 3_000_000.0;

/// Last day of the demo data.
pub const DATASET_END: NaiveDate = match NaiveDate::from_ymd_opt(2026, 6, 30) {
    Some(d) => d,
    None => panic!("invalid constant date"),
};

/// Campaign periods: (start, end, label).
pub const PERIODS: [((i32, u32, u32), (i32, u32, u32), &str); 3] = [
    ((2025, 1, 1), (2025, 6, 30), "2025上半年"),
    ((2025, 7, 1), (2025, 12, 31), "2025下半年"),
    ((2026, 1, 1), (2026, 6, 30), "2026上半年"),
];

fn ymd((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Start and end date of a period.
#[must_use]
pub fn period_dates(i: usize) -> (NaiveDate, NaiveDate) {
    (ymd(PERIODS[i].0), ymd(PERIODS[i].1))
}

/// The campaign period containing a date.
#[must_use]
pub fn period_of(date: NaiveDate) -> Option<usize> {
    (0..PERIODS.len()).find(|&i| {
        let (a, b) = period_dates(i);
        a <= date && date <= b
    })
}

/// One channel's planted effect: log-odds added once if the channel is in the journey.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Effect {
    pub visit: f64,
    pub buy: f64,
}

/// All planted effects.
#[derive(Debug, Clone, Serialize)]
pub struct Effects {
    pub base_visit: f64,
    pub base_buy: f64,
    pub channels: Vec<(String, Effect)>,
}

const PLANTED: [(f64, f64); 10] = [
    (0.15, 0.10), // billboard
    (0.05, 0.00), // bus_body
    (0.30, 0.15), // metro
    (0.50, 0.30), // wechat
    (0.40, 0.30), // portal
    (0.90, 0.50), // exhibition
    (1.10, 0.90), // office_lobby
    (0.80, 0.60), // cafe
    (1.20, 1.00), // referral
    (1.00, 0.70), // walk_in
];

impl Effects {
    #[must_use]
    pub fn planted() -> Effects {
        Effects {
            base_visit: -2.0,
            base_buy: -1.7,
            channels: CHANNELS
                .iter()
                .zip(PLANTED)
                .map(|(c, (visit, buy))| ((*c).to_string(), Effect { visit, buy }))
                .collect(),
        }
    }

    #[must_use]
    pub fn of(&self, channel: &str) -> &Effect {
        self.channels.iter().find(|(c, _)| c == channel).map_or(&self.channels[0].1, |(_, e)| e)
    }
}

/// True for the districts holding the office avenues (where lobby and café ads work best).
fn is_hot(district: &str) -> bool {
    super::city::AVENUES.iter().any(|a| a.1 == district)
}

/// How a channel's effect scales in a district: lobby and café ads work 1.5x where the office
/// avenues are and 0.5x elsewhere; outdoor ads (billboard, bus body) 1.6x outside the core and
/// 0.8x inside it.
#[must_use]
pub fn multiplier(channel: &str, district: &str) -> f64 {
    match channel {
        "office_lobby" | "cafe" if is_hot(district) => 1.5,
        "office_lobby" | "cafe" => 0.5,
        "billboard" | "bus_body" if !CORE.contains(&district) => 1.6,
        "billboard" | "bus_body" => 0.8,
        _ => 1.0,
    }
}

/// Contents of `truth.json`.
#[derive(Debug, Serialize)]
pub struct Truth {
    pub seed: u64,
    pub customers: u64,
    /// The building stock customers live and work in, and its counts.
    pub places: super::Places,
    pub buildings: Buildings,
    pub high_budget_threshold: f64,
    /// Districts whose office avenues employ the high-budget prospects.
    pub hot_work_districts: Vec<String>,
    pub premium_home_districts: Vec<String>,
    pub tower_worker_share: f64,
    pub avenues: Vec<super::city::Avenue>,
    pub effects: Effects,
    /// District -> channel -> multiplier of the channel's effect there.
    pub district_multipliers: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
    /// Channels by planted buying effect, strongest first.
    pub strongest_channels_buy: Vec<String>,
    pub dataset_end: NaiveDate,
    /// Home districts whose customers refer far more: the top referral cells lie there.
    pub advocate_home_districts: Vec<String>,
    pub notes: Vec<&'static str>,
}

/// How many distinct places customers live and work at.
#[derive(Debug, Serialize)]
pub struct Buildings {
    /// Residential compounds (every home is one of them).
    pub residential: usize,
    /// Ordinary office buildings.
    pub offices: usize,
    /// Towers on the planted office avenues.
    pub avenue_towers: usize,
}

impl Truth {
    #[must_use]
    pub fn new(city: &City, seed: u64, customers: u64, places: super::Places) -> Truth {
        let effects = Effects::planted();
        let mut ranked: Vec<(String, f64)> = effects.channels.iter().map(|(c, e)| (c.clone(), e.buy)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let district_multipliers = city
            .districts
            .0
            .iter()
            .map(|d| (d.name.clone(), CHANNELS.iter().map(|c| ((*c).to_string(), multiplier(c, &d.name))).collect()))
            .collect();
        Truth {
            seed,
            customers,
            places,
            buildings: Buildings {
                residential: city.compounds.len(),
                offices: city.workplaces.len(),
                avenue_towers: city.avenues.iter().map(|a| a.towers.len()).sum(),
            },
            high_budget_threshold: HIGH_BUDGET,
            hot_work_districts: city.hot_districts(),
            premium_home_districts: PREMIUM_HOME.iter().map(|s| (*s).to_string()).collect(),
            tower_worker_share: 0.28,
            avenues: city.avenues.clone(),
            effects,
            district_multipliers,
            strongest_channels_buy: ranked.into_iter().map(|(c, _)| c).collect(),
            dataset_end: DATASET_END,
            advocate_home_districts: super::people::ADVOCATE_HOME.iter().map(|s| (*s).to_string()).collect(),
            notes: vec![
                "Referrers are earlier customers, drawn 8x likelier when they live in advocate_home_districts, 4x when they signed a deal, and 8x when they signed and were referred themselves (chains of several generations).",
                "A channel's effect is added once to the log-odds of visiting (and, for visitors, of buying) when it appears in the journey, scaled by the district multiplier of where the customer works (or lives, without a work place).",
                "Referred customers (referred_by set) have channel 'referral' in their journey without a touchpoint for it.",
                "Tower workers (office avenues) get budgets around 4.2M CNY and desire ~135 m2; others ~1.6M CNY and ~92 m2.",
                "District outlines are the real Wuhan districts (GCJ-02 datum, ~1/1024 degree precision).",
            ],
        }
    }
}
