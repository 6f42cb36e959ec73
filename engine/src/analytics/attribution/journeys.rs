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
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::schema::{DAY_US, SIGNED};
use crate::io::touchpoints::{self, Touchpoints};
use crate::io::validate::CUSTOMER_ROW;
use crate::io::Dataset;

/// What a journey's steps are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "surface", derive(clap::ValueEnum, utoipa::ToSchema))]
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

/// The customer columns journeys read (besides the id): a run that only builds journeys can load
/// just these (`IngestOptions::customer_columns`).
pub const CUSTOMER_COLUMNS: &[&str] = &["referred_by", "created_at"];

/// The channel name referrals get.
pub const REFERRAL: &str = "referral";

/// A customer's touches are in time order, ties ordered by channel name, then campaign id: these
/// columns in this order. The cluster's SQL orders by them; the local builder by
/// `Entry::order`, whose channel and campaign ranks are name order.
pub const TOUCH_ORDER: [&str; 3] = ["ts", "channel", "campaign"];

/// A customer's conversion is the first of their signed deals in this order.
pub const FIRST_DEAL_ORDER: [&str; 2] = ["signed_at", "deal_id"];
/// Campaign key of touches without a campaign.
pub const NO_CAMPAIGN: &str = "(no campaign)";

/// One step of a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub key: u32,
    /// Microseconds since the epoch.
    pub ts: i64,
}

/// A customer's journey, as read from a [`JourneyList`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Journey<'a> {
    /// Row of the customer in the dataset's customers frame.
    pub customer_row: u32,
    pub touches: &'a [Touch],
    /// (time in microseconds, value) of the conversion, if any. With a `weight` above 1 the
    /// value is the total over the customers the journey stands for.
    pub conversion: Option<(i64, f64)>,
    /// How many customers took this journey: 1 for a journey built from touchpoints, the count
    /// of a distinct path when built from reduced path counts ([`Journeys::from_paths`]).
    pub weight: f64,
}

/// A journey's fixed part; its touches are `touches[start..]` of its chunk, up to the next
/// journey's start.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Head {
    customer_row: u32,
    start: usize,
    conversion: Option<(i64, f64)>,
    weight: f64,
}

/// A run of journeys in flat storage: their heads, and all their touches in one list.
#[derive(Debug, Clone, Default, PartialEq)]
struct Chunk {
    heads: Vec<Head>,
    touches: Vec<Touch>,
}

impl Chunk {
    fn get(&self, i: usize) -> Journey<'_> {
        let h = self.heads[i];
        let end = self.heads.get(i + 1).map_or(self.touches.len(), |n| n.start);
        Journey {
            customer_row: h.customer_row,
            touches: &self.touches[h.start..end],
            conversion: h.conversion,
            weight: h.weight,
        }
    }
}

/// Journeys in flat storage: no allocation per journey (at 10^8 touchpoints that would be most
/// of the memory). The journeys are held in chunks, one per unit of parallel work, so the
/// chunks built in parallel are gathered by moving them, never by copying their touches.
#[derive(Debug, Clone, Default)]
pub struct JourneyList {
    chunks: Vec<Chunk>,
    /// Journeys before each chunk (`chunks.len() + 1` entries, the last being the total).
    starts: Vec<usize>,
}

impl PartialEq for JourneyList {
    /// The same journeys in the same order, however they are chunked.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl JourneyList {
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Journey `i`.
    #[must_use]
    pub fn get(&self, i: usize) -> Journey<'_> {
        let c = self.starts.partition_point(|&s| s <= i) - 1;
        self.chunks[c].get(i - self.starts[c])
    }

    /// The journeys in order.
    pub fn iter(&self) -> impl Iterator<Item = Journey<'_>> + Clone + '_ {
        self.chunks.iter().flat_map(|c| (0..c.heads.len()).map(move |i| c.get(i)))
    }

    /// Journeys `range` in order.
    pub fn range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = Journey<'_>> + Clone + '_ {
        range.map(move |i| self.get(i))
    }

    /// Room for `journeys` more journeys with `touches` more touches in all (in the last chunk).
    pub fn reserve(&mut self, journeys: usize, touches: usize) {
        let chunk = self.last_chunk();
        chunk.heads.reserve_exact(journeys);
        chunk.touches.reserve_exact(touches);
    }

    fn last_chunk(&mut self) -> &mut Chunk {
        if self.chunks.is_empty() {
            self.chunks.push(Chunk::default());
            self.starts = vec![0, 0];
        }
        self.chunks.last_mut().expect("a chunk was just made")
    }

    /// Appends a journey (its touches copied in).
    pub fn push(&mut self, j: Journey<'_>) {
        let chunk = self.last_chunk();
        chunk.heads.push(Head {
            customer_row: j.customer_row,
            start: chunk.touches.len(),
            conversion: j.conversion,
            weight: j.weight,
        });
        chunk.touches.extend_from_slice(j.touches);
        *self.starts.last_mut().expect("starts follow chunks") += 1;
    }

    /// Appends every journey of `other`, moving its chunks.
    fn append(&mut self, other: JourneyList) {
        for chunk in other.chunks.into_iter().filter(|c| !c.heads.is_empty()) {
            let total = self.len();
            if self.starts.is_empty() {
                self.starts.push(0);
            }
            self.starts.push(total + chunk.heads.len());
            self.chunks.push(chunk);
        }
    }
}

impl<'a> FromIterator<Journey<'a>> for JourneyList {
    fn from_iter<I: IntoIterator<Item = Journey<'a>>>(iter: I) -> Self {
        let mut out = JourneyList::default();
        for j in iter {
            out.push(j);
        }
        out
    }
}

/// All journeys of a dataset, keyed by channel or campaign.
#[derive(Debug, Clone, Default)]
pub struct Journeys {
    /// Key names; a touch's `key` indexes this.
    pub keys: Vec<String>,
    pub journeys: JourneyList,
    /// Per key: customers whose first touch (ever, not only in the window) it is.
    pub leads: Vec<u64>,
    /// Per key: visit events.
    pub visits: Vec<u64>,
    /// First and last instant of the data (microseconds).
    pub period: (i64, i64),
    /// One record per customer with a first touch, in row order, in chunks (one per unit of
    /// parallel work, moved rather than copied together): the funnel's raw material.
    pub leads_detail: Vec<Vec<Lead>>,
    /// Whether touches carry their real times (false for journeys rebuilt from path counts,
    /// which the time-decay model cannot use).
    pub timed: bool,
    /// Converted customers with no journey at all, (conversions, value) each: no touchpoints
    /// (and not referred), and visits only. No model can credit them; they count in the totals
    /// and as unattributed with that reason.
    pub no_touchpoints: (f64, f64),
    pub visit_only: (f64, f64),
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

    /// Total conversions and their value: every first signed deal, journey or not.
    #[must_use]
    pub fn totals(&self) -> (f64, f64) {
        let (n, v) = conversions(self.journeys.iter());
        (n + self.no_touchpoints.0 + self.visit_only.0, v + self.no_touchpoints.1 + self.visit_only.1)
    }

    /// Journeys rebuilt from reduced path counts (what a cluster returns): one weighted journey
    /// per distinct path and outcome. `paths` has columns `path` (keys joined by
    /// [`PATH_SEPARATOR`]; empty for converted journeys with no touch in the window),
    /// `conversions`, `nulls` and `value`. `keys` lists every key with its leads and visits. Touch times are not kept (`timed` is false).
    pub fn from_paths(paths: &DataFrame, keys: &[KeyStats], period: (i64, i64)) -> Result<Journeys> {
        let index: HashMap<&str, u32> = keys.iter().enumerate().map(|(i, k)| (k.key.as_str(), i as u32)).collect();
        let path = paths.column("path")?.str()?;
        let conv = paths.column("conversions")?.cast(&DataType::Float64)?;
        let nulls = paths.column("nulls")?.cast(&DataType::Float64)?;
        let value = paths.column("value")?.cast(&DataType::Float64)?;
        let (conv, nulls, value) = (conv.f64()?, nulls.f64()?, value.f64()?);
        let mut journeys = JourneyList::default();
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
                journeys.push(Journey { customer_row: 0, touches: &touches, conversion: Some((0, v)), weight: c });
            }
            if n > 0.0 && !touches.is_empty() {
                journeys.push(Journey { customer_row: 0, touches: &touches, conversion: None, weight: n });
            }
        }
        Ok(Journeys {
            keys: keys.iter().map(|k| k.key.clone()).collect(),
            journeys,
            leads: keys.iter().map(|k| k.leads).collect(),
            visits: keys.iter().map(|k| k.visits).collect(),
            period,
            leads_detail: Vec::new(),
            timed: false,
            no_touchpoints: (0.0, 0.0),
            visit_only: (0.0, 0.0),
        })
    }
}

/// Separator of keys in the paths a cluster returns (a control character, so no key name
/// clashes with it; [`Journeys::path_table`] shows paths with `" > "`).
pub const PATH_SEPARATOR: char = '\u{1f}';

/// One key (channel or campaign) of reduced journeys: its leads and visits.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStats {
    pub key: String,
    pub leads: u64,
    pub visits: u64,
}

/// Conversions (weighted) and their value over `journeys`.
pub fn conversions<'a>(journeys: impl Iterator<Item = Journey<'a>>) -> (f64, f64) {
    journeys
        .filter_map(|j| j.conversion.map(|(_, value)| (j.weight, value)))
        .fold((0.0, 0.0), |(n, v), (w, x)| (n + w, v + x))
}

/// A touchpoint bucketed under its customer: its time, and its channel and campaign as ranks
/// of their sorted names (so ordering by rank is ordering by name). The top bit of `channel`
/// marks a visit.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    ts: i64,
    channel: u32,
    campaign: u32,
}

const VISIT: u32 = 1 << 31;

impl Entry {
    fn channel(self) -> u32 {
        self.channel & !VISIT
    }

    fn is_visit(self) -> bool {
        self.channel & VISIT != 0
    }

    /// Time, then channel name, then campaign id.
    fn order(self) -> (i64, u32, u32) {
        (self.ts, self.channel(), self.campaign)
    }
}

/// The campaign names journeys order by: the touchpoints' campaign ids plus [`NO_CAMPAIGN`] when a
/// touchpoint has none, sorted; with each campaign code's rank among them and the rank of "none".
struct CampaignRanks {
    names: Vec<String>,
    rank_of_code: Vec<u32>,
    none: u32,
}

impl CampaignRanks {
    fn of(tp: &Touchpoints) -> CampaignRanks {
        let mut names = tp.campaigns.clone();
        if tp.campaign.contains(&touchpoints::NO_CAMPAIGN) && !names.iter().any(|n| n == NO_CAMPAIGN) {
            names.push(NO_CAMPAIGN.to_string());
            names.sort_unstable();
        }
        let rank = |name: &str| names.binary_search_by(|n| n.as_str().cmp(name)).map_or(0, |i| i as u32);
        let rank_of_code = tp.campaigns.iter().map(|c| rank(c)).collect();
        let none = rank(NO_CAMPAIGN);
        CampaignRanks { names, rank_of_code, none }
    }

    fn rank(&self, code: u32) -> u32 {
        if code == touchpoints::NO_CAMPAIGN {
            self.none
        } else {
            self.rank_of_code[code as usize]
        }
    }
}

/// Customers per unit of parallel work.
const CUSTOMERS_PER_TASK: usize = 1 << 14;

/// What one task of customers contributes.
#[derive(Default)]
struct Part {
    journeys: JourneyList,
    /// One customer's touches while they are put in order and cut to the window.
    scratch: Vec<Touch>,
    leads_detail: Vec<Lead>,
    leads: Vec<u64>,
    visits: Vec<u64>,
    start: i64,
    used_referral: bool,
    no_touchpoints: (f64, f64),
    visit_only: (f64, f64),
}

/// Builds the journeys of `ds` keyed by `by`, with a lookback window of `window_days`, in four
/// phases: [`bucket`] the touchpoints by customer row, [`name_keys`] (sort each customer's
/// touchpoints and number the keys), [`Part::add_customer`] for every customer in parallel tasks,
/// and [`gather`] the tasks' parts in row order, so the journeys are the same for any number of
/// threads.
pub fn build(ds: &Dataset, by: By, window_days: u32) -> Result<Journeys> {
    build_with(ds, by, window_days, true)
}

/// [`build`], leaving `leads_detail` empty unless `leads_detail` is set: the models never read
/// it, and it is a record per customer (the funnel's, [`super::funnel::journeys_for`]).
pub fn build_with(ds: &Dataset, by: By, window_days: u32, leads_detail: bool) -> Result<Journeys> {
    let Some(tp) = ds.touchpoints.as_ref() else {
        return Err(Error::bad_input("attribution needs a touchpoints table"));
    };
    build_from(ds, std::borrow::Cow::Borrowed(tp), by, window_days, leads_detail)
}

/// [`build_with`] on the touchpoints taken out of `ds` (left `None`): they are let go as soon as
/// they are bucketed by customer, before the journeys are built, so a run that needs nothing else
/// of them (`custmap attribution`) never holds both.
pub fn build_taking(ds: &mut Dataset, by: By, window_days: u32, leads_detail: bool) -> Result<Journeys> {
    let Some(tp) = ds.touchpoints.take() else {
        return Err(Error::bad_input("attribution needs a touchpoints table"));
    };
    build_from(ds, std::borrow::Cow::Owned(tp), by, window_days, leads_detail)
}

fn build_from(
    ds: &Dataset,
    tp: std::borrow::Cow<'_, Touchpoints>,
    by: By,
    window_days: u32,
    leads_detail: bool,
) -> Result<Journeys> {
    let customers = ds.customers.height();
    if tp.channels.len() >= VISIT as usize {
        return Err(Error::bad_input(format!(
            "{} distinct channels are more than attribution handles",
            tp.channels.len()
        )));
    }
    let campaigns = CampaignRanks::of(&tp);
    let conversions = first_conversions(ds)?;
    let referrals = referrals(ds)?;
    let start = tp.ts.iter().copied().min().unwrap_or(0);
    let end = conversions.iter().fold(tp.ts.iter().copied().max().unwrap_or(0), |end, (_, (t, _))| end.max(*t));
    let (mut entries, offsets) = bucket(&tp, customers, &campaigns)?;
    let channels = tp.channels.clone();
    // Owned touchpoints are freed here: the buckets hold all the journeys need.
    drop(tp);
    let tasks: Vec<(usize, usize)> =
        (0..customers).step_by(CUSTOMERS_PER_TASK).map(|a| (a, (a + CUSTOMERS_PER_TASK).min(customers))).collect();
    let names = name_keys(&mut entries, &offsets, &tasks, by, &channels, &campaigns.names);

    let context = Context {
        by,
        id_of: &names.id_of,
        referral_key: names.referral_key,
        end,
        window: i64::from(window_days) * DAY_US,
        leads_detail,
    };
    let key_count = names.keys.len() + 1;
    let parts: Vec<Part> = tasks
        .par_iter()
        .map(|&(a, b)| {
            let mut part = Part { leads: vec![0; key_count], visits: vec![0; key_count], start, ..Part::default() };
            // Sized for the most the task can hold, so nothing grows by copying.
            if leads_detail {
                part.leads_detail.reserve_exact(b - a);
            }
            part.journeys.reserve(b - a, offsets[b] - offsets[a] + (b - a));
            // Both lists are in row order: walked alongside the rows.
            let mut conv = conversions[conversions.partition_point(|c| (c.0 as usize) < a)..].iter().peekable();
            let mut refs = referrals[referrals.partition_point(|r| (r.0 as usize) < a)..].iter().peekable();
            for row in a..b {
                let conversion = conv.next_if(|c| c.0 as usize == row).map(|c| c.1);
                let referral = refs.next_if(|r| r.0 as usize == row).map(|r| r.1);
                part.add_customer(row, &entries[offsets[row]..offsets[row + 1]], conversion, referral, &context);
            }
            part
        })
        .collect();
    // Freed before the output is gathered, so the allocator can reuse their pages.
    drop((entries, offsets));
    Ok(gather(parts, names, (start, end)))
}

/// Phase 1: touchpoints bucketed by customer row (a counting sort: rows are dense). Returns the
/// entries and each row's offset into them (`offsets[r]..offsets[r + 1]`).
fn bucket(tp: &Touchpoints, customers: usize, campaigns: &CampaignRanks) -> Result<(Vec<Entry>, Vec<usize>)> {
    let mut offsets = vec![0usize; customers + 1];
    for &r in &tp.customer_row {
        let Some(slot) = offsets.get_mut(r as usize + 1) else {
            return Err(Error::Internal(format!("a touchpoint refers to customer row {r} of {customers}")));
        };
        *slot += 1;
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut entries = vec![Entry::default(); offsets[customers]];
    let mut cursor = offsets.clone();
    for i in 0..tp.len() {
        let r = tp.customer_row[i] as usize;
        let visit = if tp.event[i] == touchpoints::VISIT { VISIT } else { 0 };
        entries[cursor[r]] =
            Entry { ts: tp.ts[i], channel: tp.channel[i] | visit, campaign: campaigns.rank(tp.campaign[i]) };
        cursor[r] += 1;
    }
    Ok((entries, offsets))
}

/// The keys of the journeys, numbered by first appearance in row order.
struct KeyNames {
    /// Key id of each channel (or campaign) rank.
    id_of: Vec<u32>,
    keys: Vec<String>,
    referral_name: &'static str,
    /// The referral touch's key id (`keys.len()` when no touchpoint carries it: then it is
    /// added in [`gather`] if a referral touch was used).
    referral_key: u32,
}

fn key_rank(by: By, e: Entry) -> u32 {
    match by {
        By::Channel => e.channel(),
        By::Campaign => e.campaign,
    }
}

/// Phase 2: each customer's touchpoints sorted by (time, channel, campaign), in parallel tasks,
/// and the keys numbered by where each first appears.
fn name_keys(
    entries: &mut [Entry],
    offsets: &[usize],
    tasks: &[(usize, usize)],
    by: By,
    channels: &[String],
    campaigns: &[String],
) -> KeyNames {
    let mut slices: Vec<&mut [Entry]> = Vec::with_capacity(tasks.len());
    let mut rest: &mut [Entry] = entries;
    for &(a, b) in tasks {
        let (head, tail) = rest.split_at_mut(offsets[b] - offsets[a]);
        slices.push(head);
        rest = tail;
    }
    let rank_count = match by {
        By::Channel => channels.len(),
        By::Campaign => campaigns.len(),
    };
    let firsts: Vec<Vec<Option<usize>>> = slices
        .into_par_iter()
        .zip(tasks)
        .map(|(slice, &(a, b))| {
            let base = offsets[a];
            let mut first: Vec<Option<usize>> = vec![None; rank_count];
            for r in a..b {
                let mine = &mut slice[offsets[r] - base..offsets[r + 1] - base];
                mine.sort_unstable_by_key(|e| e.order());
                for (i, e) in mine.iter().enumerate() {
                    first[key_rank(by, *e) as usize].get_or_insert(offsets[r] + i);
                }
            }
            first
        })
        .collect();
    let mut seen: Vec<(usize, u32)> = Vec::new();
    for rank in 0..rank_count {
        if let Some(at) = firsts.iter().find_map(|f| f[rank]) {
            seen.push((at, rank as u32));
        }
    }
    seen.sort_unstable();
    let mut id_of = vec![0u32; rank_count];
    let mut keys: Vec<String> = Vec::with_capacity(seen.len() + 1);
    for (id, &(_, rank)) in seen.iter().enumerate() {
        id_of[rank as usize] = id as u32;
        let name = match by {
            By::Channel => &channels[rank as usize],
            By::Campaign => &campaigns[rank as usize],
        };
        keys.push(name.clone());
    }
    let referral_name = match by {
        By::Channel => REFERRAL,
        By::Campaign => "(referral)",
    };
    let referral_key = keys.iter().position(|k| k == referral_name).unwrap_or(keys.len()) as u32;
    KeyNames { id_of, keys, referral_name, referral_key }
}

/// What phase 3 reads for every customer.
struct Context<'a> {
    by: By,
    id_of: &'a [u32],
    referral_key: u32,
    /// The dataset's end (latest touch or signing), microseconds.
    end: i64,
    /// The lookback window, microseconds.
    window: i64,
    /// Whether each customer's lead record is kept.
    leads_detail: bool,
}

impl Part {
    /// Phase 3, one customer (`row`, with their sorted touchpoints `mine`): visits counted per
    /// key; the referral touch placed first when none of theirs comes earlier; the lead (their
    /// first touch) recorded; the touches cut to the window before the conversion (or the end);
    /// a journey kept when it has a touch or a conversion. A converting customer with no touch
    /// at all is counted in `no_touchpoints` (none) or `visit_only` (only visits).
    fn add_customer(
        &mut self,
        row: usize,
        mine: &[Entry],
        conversion: Option<(i64, f64)>,
        referral: Option<Option<i64>>,
        cx: &Context<'_>,
    ) {
        if mine.is_empty() && referral.is_none() {
            if let Some((_, value)) = conversion {
                self.no_touchpoints.0 += 1.0;
                self.no_touchpoints.1 += value;
            }
            return;
        }
        let mut touches = std::mem::take(&mut self.scratch);
        touches.clear();
        let mut first_visit = None;
        for e in mine {
            let key = cx.id_of[key_rank(cx.by, *e) as usize];
            if e.is_visit() {
                self.visits[key as usize] += 1;
                first_visit.get_or_insert(e.ts);
            } else {
                touches.push(Touch { key, ts: e.ts });
            }
        }
        let outcome =
            customer_rule(&mut touches, referral, cx.referral_key, conversion.map(|c| c.0), cx.end, cx.window);
        if let Some(at) = outcome.referral_at {
            self.start = self.start.min(at);
            self.used_referral = true;
        }
        if let Some(first) = outcome.lead {
            self.leads[first.key as usize] += 1;
            if cx.leads_detail {
                self.leads_detail.push(Lead {
                    key: first.key,
                    lead_ts: first.ts,
                    visit_ts: first_visit,
                    deal: conversion,
                });
            }
            if outcome.kept {
                let j = Journey { customer_row: row as u32, touches: &touches, conversion, weight: 1.0 };
                self.journeys.push(j);
            }
        } else if let Some((_, value)) = conversion {
            self.visit_only.0 += 1.0;
            self.visit_only.1 += value;
        }
        self.scratch = touches;
    }
}

/// What [`customer_rule`] made of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleOutcome {
    /// Their first touch (the referral touch when it was placed): the lead.
    pub lead: Option<Touch>,
    /// When the referral touch was placed, if it was.
    pub referral_at: Option<i64>,
    /// Whether they have a journey: a lead, and a touch in the window or a conversion.
    pub kept: bool,
}

/// The journey rule for one customer (the module's rules), the one description both executors
/// run: the local builder for every customer, the cluster's `journey` function per customer.
///
/// `touches`: the customer's touches that are not visits, ordered by time, then channel, then
/// campaign; left holding the journey's steps. `referral`: `Some(created)` for a referred
/// customer (`created`: the start of `created_at`, if known); the referral touch is placed at
/// `created`, else just before the first touch, else at `end`, when no touch comes earlier.
/// `conversion_at`: the end of the first signed deal's day. The window looks back `window`
/// from the conversion, or from `end` (the data's end) for customers who did not convert.
pub fn customer_rule(
    touches: &mut Vec<Touch>,
    referral: Option<Option<i64>>,
    referral_key: u32,
    conversion_at: Option<i64>,
    end: i64,
    window: i64,
) -> RuleOutcome {
    debug_assert!(touches.windows(2).all(|w| w[0].ts <= w[1].ts), "touches in time order");
    let mut referral_at = None;
    if let Some(created) = referral {
        let first = touches.first().map(|t| t.ts);
        let at = created.or(first.map(|f| f - 1)).unwrap_or(end);
        if first.is_none_or(|f| at <= f) {
            touches.insert(0, Touch { key: referral_key, ts: at });
            referral_at = Some(at);
        }
    }
    let lead = touches.first().copied();
    if lead.is_none() {
        return RuleOutcome { lead, referral_at, kept: false };
    }
    let horizon = conversion_at.unwrap_or(end);
    touches.retain(|t| t.ts <= horizon && t.ts >= horizon - window);
    RuleOutcome { lead, referral_at, kept: !touches.is_empty() || conversion_at.is_some() }
}

/// Phase 4: the tasks' parts concatenated in row order, their counts summed; the referral key
/// added when a referral touch was used and no touchpoint named it.
fn gather(parts: Vec<Part>, names: KeyNames, period: (i64, i64)) -> Journeys {
    let KeyNames { mut keys, referral_name, referral_key, .. } = names;
    let key_count = keys.len() + 1;
    let mut out = Journeys { period, timed: true, ..Journeys::default() };
    let mut leads = vec![0u64; key_count];
    let mut visits = vec![0u64; key_count];
    let mut used_referral = false;
    for part in parts {
        out.journeys.append(part.journeys);
        out.leads_detail.push(part.leads_detail);
        for k in 0..key_count {
            leads[k] += part.leads[k];
            visits[k] += part.visits[k];
        }
        out.period.0 = out.period.0.min(part.start);
        used_referral |= part.used_referral;
        out.no_touchpoints.0 += part.no_touchpoints.0;
        out.no_touchpoints.1 += part.no_touchpoints.1;
        out.visit_only.0 += part.visit_only.0;
        out.visit_only.1 += part.visit_only.1;
    }
    if used_referral && referral_key as usize == keys.len() {
        keys.push(referral_name.to_string());
    }
    leads.truncate(keys.len());
    visits.truncate(keys.len());
    out.keys = keys;
    out.leads = leads;
    out.visits = visits;
    out
}

/// First signed deal per customer row: (row, (end of its signing day in microseconds, price)),
/// in row order.
fn first_conversions(ds: &Dataset) -> Result<Vec<(u32, (i64, f64))>> {
    let mut out: Vec<(u32, (i64, f64))> = Vec::new();
    let Some(deals) = ds.deals.as_ref() else { return Ok(out) };
    let order: Vec<&str> = std::iter::once(CUSTOMER_ROW).chain(FIRST_DEAL_ORDER).collect();
    let d = deals
        .clone()
        .lazy()
        .filter(col("status").eq(lit(SIGNED)))
        .sort(order, SortMultipleOptions::default())
        .select([
            col(CUSTOMER_ROW).cast(DataType::UInt32),
            col("signed_at").cast(DataType::Int32).alias("day"),
            col("price"),
        ])
        .collect()?;
    let rows = d.column(CUSTOMER_ROW)?.u32()?;
    let days = d.column("day")?.i32()?;
    let price = d.column("price")?.f64()?;
    for i in 0..d.height() {
        if let (Some(r), Some(day), Some(p)) = (rows.get(i), days.get(i), price.get(i)) {
            if out.last().is_none_or(|l| l.0 != r) {
                out.push((r, (i64::from(day) * DAY_US + DAY_US - 1, p)));
            }
        }
    }
    Ok(out)
}

/// Referred customers: (row, referral time: start of `created_at`, if known), in row order.
fn referrals(ds: &Dataset) -> Result<Vec<(u32, Option<i64>)>> {
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
