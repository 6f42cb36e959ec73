//! Purchasing-power heatmaps on H3 cells (SPEC §3).
//!
//! Flow: customers (+ signed deals per customer) -> per-cell sums at a base resolution ->
//! coarser cells by parent bit operations (for the privacy floor's merges) -> privacy floor ->
//! metrics. Customers reach cells one of two ways ([`Reduction`]), with identical results:
//! - by place: one group per distinct anchor coordinate (exact bits), H3 once per group. Fast
//!   on CRM data where many customers share a building's coordinates, and the groups let a
//!   cached base serve any other resolution without reading customers again;
//! - by row: each customer's cell directly (a small cache catches repeated coordinates), for
//!   data where coordinates rarely repeat, where grouping would only add a table as large as
//!   the data. A sample of customers picks the way.
//!
//! H3 cells are not geometrically nested: a point near a cell edge can lie in a res-8 cell that
//! is not the parent of its res-9 cell. The base level is therefore computed from coordinates
//! (exact, and what other H3 tools compute); coarser levels are hierarchical roll-ups, the
//! usual H3 aggregation.
//!
//! Every metric is a sum over customers, so grouping is exact. In `both` mode a group holds
//! customers with the same home *and* work coordinates (or cells), so a person whose home and
//! work fall in one cell is counted once there.

use std::collections::HashMap;

use polars::prelude::*;
use polars_utils::kahan_sum::KahanSum;
use serde::Serialize;

pub mod differencing;
pub(crate) mod groups;
pub mod plan;

use std::sync::Arc;

use rayon::prelude::*;

use self::groups::{coord_bits, coord_of, CellCache, F64s, Flags, Sums, MISSING};
use super::privacy::{floor, withhold_where, KFloor, Suppressed};
use super::segment::Segment;
use crate::error::{Error, Result};
use crate::io::validate::CUSTOMER_ROW;
use crate::io::Dataset;
use crate::spatial::fast_h3::Indexer;
use crate::spatial::h3::{self, Res};

/// Which of a customer's places count (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "surface", derive(clap::ValueEnum, utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Home,
    Work,
    Both,
}

impl Location {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Home => "home",
            Location::Work => "work",
            Location::Both => "both",
        }
    }

    fn anchors(self) -> &'static [Anchor] {
        match self {
            Location::Home => &[Anchor::HOME],
            Location::Work => &[Anchor::WORK],
            Location::Both => &[Anchor::HOME, Anchor::WORK],
        }
    }
}

impl std::str::FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "home" => Ok(Location::Home),
            "work" => Ok(Location::Work),
            "both" => Ok(Location::Both),
            other => Err(Error::bad_input(format!("location '{other}' is not one of home, work, both"))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    lat: &'static str,
    lng: &'static str,
    cell: &'static str,
}

impl Anchor {
    const HOME: Anchor = Anchor { lat: "home_lat", lng: "home_lng", cell: "__home_cell" };
    const WORK: Anchor = Anchor { lat: "work_lat", lng: "work_lng", cell: "__work_cell" };
}

/// Parameters of a heatmap; the CLI and the HTTP layer both build this and call [`Self::check`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatmapParams {
    pub res: Res,
    pub location: Location,
    /// Segment filter (SQL boolean expression over customer columns); `None` = everyone.
    #[serde(rename = "where")]
    pub segment: Option<String>,
    pub k: KFloor,
    /// Prior strength `m` of the empirical-Bayes shrinkage.
    pub prior: f64,
    /// Optional k-ring smoothing radius (grid disk), 0 = off.
    pub smooth: u32,
    /// How many resolutions up a small cell may be merged before it is dropped.
    pub merge_levels: u8,
}

impl Default for HeatmapParams {
    fn default() -> Self {
        HeatmapParams {
            res: Res::new(8).unwrap_or(Res::FINEST),
            location: Location::Work,
            segment: None,
            k: KFloor::default(),
            prior: 10.0,
            smooth: 0,
            merge_levels: floor::MERGE_LEVELS,
        }
    }
}

/// Largest k-ring smoothing radius accepted (a disk of radius 10 is 331 cells).
pub const MAX_SMOOTH: u32 = 10;

impl HeatmapParams {
    /// Checks the values a user can get wrong.
    pub fn check(&self) -> Result<()> {
        if !self.prior.is_finite() || self.prior < 0.0 {
            return Err(Error::bad_input(format!("prior must be a number >= 0, got {}", self.prior)));
        }
        if self.smooth > MAX_SMOOTH {
            return Err(Error::bad_input(format!("smooth must be in [0, {MAX_SMOOTH}], got {}", self.smooth)));
        }
        Ok(())
    }
}

/// Sum columns carried from customers to cells ([`plan::sums`]).
const SUMS: [&str; 6] = plan::NAMES;

fn sum_type(c: &str) -> DataType {
    match plan::sums().iter().find(|s| s.0 == c).map(|s| s.1) {
        Some(plan::Kind::Float) => DataType::Float64,
        _ => DataType::Int64,
    }
}

/// City-wide totals over the located customers, each counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub customers: i64,
    pub prospects: i64,
    pub buyers: i64,
    pub purchasing_power: f64,
}

/// Customers reduced to exact coordinate groups: keys `[home_lat, home_lng, work_lat, work_lng]`
/// as coordinate bits ([`groups::MISSING`] for an anchor not counted or absent), with sums.
#[derive(Debug, Default)]
struct Groups {
    keys: Vec<[u64; 4]>,
    sums: Vec<Sums>,
}

/// Marks a customer row without signed deals.
const NOT_A_BUYER: u32 = u32::MAX;

/// How [`HeatmapBase::build`] reduces customers. Every way gives the same cells and sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// [`Reduction::Places`] unless a sample of customers shows mostly distinct coordinates.
    #[default]
    Auto,
    /// Group customers by exact coordinates, then compute H3 once per distinct place. Fast when
    /// customers share buildings' coordinates (CRM data geocoded to addresses), and the base can
    /// be re-indexed to any resolution without reading customers again.
    Places,
    /// Compute each customer's cell (with a small cache for repeated coordinates) and sum per
    /// cell. Fast when coordinates rarely repeat; the base cannot be re-indexed.
    Rows,
}

/// Reduces customers (and their signed deals): to one group per distinct anchor coordinate
/// (per distinct pair of home and work coordinates in `both` mode) and then to cells at `res`,
/// or per customer straight to cells. Customers with no counted place are left out.
fn reduce(
    ds: &Dataset,
    segment: Option<&Segment>,
    location: Location,
    res: Res,
    by: Reduction,
) -> Result<(Option<Arc<Groups>>, DataFrame)> {
    let customers = &ds.customers;
    let n = customers.height();
    let prospects = prospect_flags(customers, segment)?;
    let is_prospect = |i: usize| prospects.as_ref().is_none_or(|f| f.get(i));
    let budget = F64s::new(customers.column("budget")?)?;
    let place = |a: &Anchor| -> Result<Option<(F64s, F64s)>> {
        if location.anchors().iter().any(|b| b.lat == a.lat) {
            Ok(Some((F64s::new(customers.column(a.lat)?)?, F64s::new(customers.column(a.lng)?)?)))
        } else {
            Ok(None)
        }
    };
    let (home, work) = (place(&Anchor::HOME)?, place(&Anchor::WORK)?);
    let key_of = |i: usize| -> Option<[u64; 4]> {
        let mut key = [MISSING; 4];
        if let Some((lat, lng)) = &home {
            key[0] = coord_bits(lat.get(i));
            key[1] = coord_bits(lng.get(i));
        }
        if let Some((lat, lng)) = &work {
            key[2] = coord_bits(lat.get(i));
            key[3] = coord_bits(lng.get(i));
        }
        // Ingest guarantees lat and lng are both given or both missing.
        (key[0] != MISSING || key[2] != MISSING).then_some(key)
    };
    let Buyers { buyer_of, deals, revenue, max_price } = Buyers::of(ds)?;
    // The figures summed are those of the reduction's description, compiled per class of row.
    let figures = plan::Compiled::new()?;
    let customer = |i: usize| {
        key_of(i).map(|key| {
            let buyer = buyer_of.get(i).filter(|j| **j != NOT_A_BUYER).map(|j| *j as usize);
            let row = plan::Row {
                in_segment: is_prospect(i),
                budget: budget.get(i),
                bought: buyer.map(|j| (deals[j], revenue[j])),
                largest_price: buyer.and_then(|j| max_price[j]),
            };
            let ([customers, prospects, buyers, signed], [revenue, purchasing_power]) = figures.figures(&row);
            (key, Sums { customers, prospects, buyers, deals: signed, revenue, purchasing_power })
        })
    };
    let by = match by {
        Reduction::Auto if groups::mostly_distinct(n, key_of) => Reduction::Rows,
        Reduction::Auto => Reduction::Places,
        other => other,
    };
    if by == Reduction::Rows {
        let to_cells = |cache: &mut [CellCache; 2], (k, sums): ([u64; 4], Sums)| {
            ([cache[0].cell(k[0], k[1], res), cache[1].cell(k[2], k[3], res)], sums)
        };
        let per_customer = |cache: &mut [CellCache; 2], i: usize| customer(i).map(|r| to_cells(cache, r));
        let per_cell = groups::sum_by_key(n, &per_customer);
        return Ok((None, cells_frame(&per_cell, location)?));
    }
    let per_customer = |_: &mut (), i: usize| customer(i);
    let (keys, sums) = groups::sum_by_key(n, &per_customer).into_iter().unzip();
    let groups = Groups { keys, sums };
    let cells = cells_at(&groups, location, res)?;
    Ok((Some(Arc::new(groups)), cells))
}

/// Whether each customer is in `segment` (`None`: no segment, everyone is).
fn prospect_flags(customers: &DataFrame, segment: Option<&Segment>) -> Result<Option<Flags>> {
    segment
        .map(|s| -> Result<Flags> {
            let flags = customers.clone().lazy().select([s.expr.clone().alias("__prospect")]).collect()?;
            groups::same_len("segment filter", flags.height(), customers.height())?;
            Flags::new(flags.column("__prospect")?)
        })
        .transpose()
}

/// Buyers (a minority): their signed deals, revenue and largest price, and each customer row's
/// slot among them. A buyer's missing budget is taken from their largest signed deal.
#[derive(Default)]
struct Buyers {
    /// Per customer row: the buyer's slot, or [`NOT_A_BUYER`]; empty when nobody bought.
    buyer_of: Vec<u32>,
    deals: Vec<i64>,
    revenue: Vec<f64>,
    max_price: Vec<Option<f64>>,
}

impl Buyers {
    /// One pass over the deals in row order (a polars group-by here cost 0.6 s at 1.1M deals):
    /// a buyer's slot is the order of their first signed deal; deals counted, prices summed in
    /// row order with polars' own Kahan sum and nulls skipped, as the group-by's `sum` and `max`
    /// did, so the figures are the same to the bit.
    fn of(ds: &Dataset) -> Result<Buyers> {
        let n = ds.customers.height();
        let Some(deals) = ds.deals.as_ref().filter(|d| d.height() > 0) else { return Ok(Buyers::default()) };
        let rows = deals.column(CUSTOMER_ROW)?.idx()?;
        let status = deals.column("status")?.str()?;
        let price = deals.column("price")?.f64()?;
        let mut out = Buyers { buyer_of: vec![NOT_A_BUYER; n], ..Buyers::default() };
        let mut sums: Vec<KahanSum<f64>> = Vec::new();
        for ((r, st), p) in rows.iter().zip(status.iter()).zip(price.iter()) {
            let (Some(r), Some(plan::SIGNED)) = (r, st) else { continue };
            let Some(slot) = out.buyer_of.get_mut(r as usize) else {
                return Err(Error::Internal(format!("a deal refers to customer row {r} of {n}")));
            };
            if *slot == NOT_A_BUYER {
                *slot = u32::try_from(out.deals.len()).map_err(|_| Error::Internal("more than 2^32 buyers".into()))?;
                out.deals.push(0);
                sums.push(KahanSum::default());
                out.max_price.push(None);
            }
            let j = *slot as usize;
            out.deals[j] += 1;
            if let Some(p) = p {
                sums[j] += p;
                out.max_price[j] = Some(out.max_price[j].map_or(p, |m: f64| m.max(p)));
            }
        }
        if out.deals.is_empty() {
            return Ok(Buyers::default());
        }
        out.revenue = sums.iter().map(KahanSum::sum).collect();
        Ok(out)
    }
}

/// Customers reduced to coordinate groups with their H3 cells at a base resolution: the reusable
/// part of a heatmap. Build once per (dataset, location, segment, resolution);
/// [`HeatmapBase::at`] then serves that resolution or any coarser one (by hierarchical roll-up,
/// which is what the privacy floor's merges are), with any floor and prior, and
/// [`HeatmapBase::reindexed`] any other resolution, without touching customers again.
#[derive(Debug, Clone)]
pub struct HeatmapBase {
    pub res: Res,
    pub location: Location,
    pub segment: Option<String>,
    /// The coordinate groups; `None` for a base reduced elsewhere to cells.
    groups: Option<Arc<Groups>>,
    /// Sums per distinct tuple of cells at `res`: one UInt64 column per anchor (null where the
    /// anchor has no place) and the sums.
    cells: DataFrame,
    pub totals: Totals,
}

impl HeatmapBase {
    /// Reduces the dataset's customers for `location` and the segment filter `where_`, with
    /// cells at resolution `res`.
    pub fn build(ds: &Dataset, location: Location, where_: Option<&str>, res: Res) -> Result<Self> {
        Self::build_by(ds, location, where_, res, Reduction::Auto)
    }

    /// [`Self::build`] with the reduction chosen.
    pub fn build_by(ds: &Dataset, location: Location, where_: Option<&str>, res: Res, by: Reduction) -> Result<Self> {
        let segment = Segment::given(where_).map(|w| Segment::parse(w, &ds.customer_schema)).transpose()?;
        let (groups, cells) = reduce(ds, segment.as_ref(), location, res, by)?;
        let totals = totals_of(&cells)?;
        Ok(HeatmapBase { res, location, segment: segment.map(|s| s.text), groups, cells, totals })
    }

    /// A base from per-cell sums reduced elsewhere (a cluster, SPEC §8). `cells` has a UInt64
    /// column per anchor of `location` (`home_cell`, `work_cell`; in `both` mode one row per
    /// distinct pair, so a customer whose home and work share a cell counts there once) and the
    /// sums `customers`, `prospects`, `buyers`, `deals` and `revenue`, `purchasing_power`, with
    /// cells at `res`. It serves `res` through [`Self::at`] exactly as a local build; it has no
    /// coordinates, so [`Self::reindexed`] refuses it.
    pub fn from_cells(cells: DataFrame, location: Location, segment: Option<String>, res: Res) -> Result<Self> {
        let mut select: Vec<Expr> = Vec::new();
        for a in location.anchors() {
            let name = plan::cell_column(a.lat);
            if cells.column(name).is_err() {
                return Err(Error::Internal(format!("reduced cells lack the column '{name}'")));
            }
            select.push(col(name).cast(DataType::UInt64).alias(a.cell));
        }
        select.extend(SUMS.iter().map(|c| col(*c).cast(sum_type(c))));
        let cells = cells.lazy().select(select).collect()?;
        let totals = totals_of(&cells)?;
        Ok(HeatmapBase { res, location, segment, groups: None, cells, totals })
    }

    /// The same groups with cells at `res`, finer or coarser, indexed from the groups'
    /// coordinates: no customer is read again, and the answer is exactly that of
    /// [`HeatmapBase::build`] at `res`. (H3 is not nested, so the parents of finer cells would
    /// move customers near cell edges to a neighbouring cell.)
    pub fn reindexed(&self, res: Res) -> Result<HeatmapBase> {
        let Some(groups) = &self.groups else {
            return Err(Error::Internal(
                "this base was reduced straight to cells; it has no places to re-index".into(),
            ));
        };
        let cells = cells_at(groups, self.location, res)?;
        Ok(HeatmapBase { res, cells, segment: self.segment.clone(), groups: Some(groups.clone()), ..*self })
    }

    /// Whether [`Self::reindexed`] can serve another resolution (the base kept its places).
    #[must_use]
    pub fn can_reindex(&self) -> bool {
        self.groups.is_some()
    }

    /// Number of coordinate groups (distinct anchor coordinates) the customers reduced to, or of
    /// distinct cells for a base reduced straight to cells.
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.as_ref().map_or(self.cells.height(), |g| g.keys.len())
    }

    /// Cells at `params.res` with metrics, after the privacy floor.
    pub fn at(&self, params: &HeatmapParams) -> Result<HeatmapResult> {
        params.check()?;
        if params.res > self.res {
            return Err(Error::Internal(format!(
                "a base at res {} cannot serve the finer res {}",
                self.res.get(),
                params.res.get()
            )));
        }
        let floored = self.floored(params)?;
        let mut cells = sums_frame(&floored.cells)?;
        let res: Vec<i32> = floored.cells.iter().map(|(c, _)| i32::from(h3::res_of(*c))).collect();
        cells.with_column(Column::new("res".into(), res))?;
        let frame = metrics(cells, &City::of(&floored.cells, params.k), params)?;
        let customers = frame.column("customers")?.i64()?;
        let buyers = frame.column("buyers")?.i64()?;
        let withhold: Vec<bool> = customers
            .into_no_null_iter()
            .zip(buyers.into_no_null_iter())
            .map(|(c, b)| floor::buyers_withheld(c, b, params.k))
            .collect();
        let withheld = withhold.iter().filter(|w| **w).count() as u64;
        let frame = withhold_where(frame, &withhold, &BUYER_FIGURES)?;
        let suppressed = Suppressed { withheld, ..floored.suppressed };
        Ok(HeatmapResult { params: params.clone(), totals: self.totals, suppressed, cells: frame })
    }

    /// The privacy floor ([`floor::merge_up`], judging each cell's [`floor::Headcount`]) on the
    /// base's rows, their anchor cells rolled up to the requested resolution.
    fn floored(&self, params: &HeatmapParams) -> Result<floor::Floored<Tally, 2>> {
        let mut rows: Vec<([Option<u64>; 2], Sums)> = vec![([None; 2], Sums::default()); self.cells.height()];
        for (slot, a) in self.location.anchors().iter().enumerate() {
            for (row, c) in rows.iter_mut().zip(self.cells.column(a.cell)?.u64()?.iter()) {
                row.0[slot] = c.map(|c| h3::parent_bits(c, params.res));
            }
        }
        let int = |name: &str| -> Result<Vec<i64>> {
            Ok(self.cells.column(name)?.i64()?.iter().map(|x| x.unwrap_or(0)).collect())
        };
        let float = |name: &str| -> Result<Vec<f64>> {
            Ok(self.cells.column(name)?.f64()?.iter().map(|x| x.unwrap_or(0.0)).collect())
        };
        let (customers, prospects, buyers, deals) =
            (int("customers")?, int("prospects")?, int("buyers")?, int("deals")?);
        let (revenue, purchasing_power) = (float("revenue")?, float("purchasing_power")?);
        for (i, (_, sums)) in rows.iter_mut().enumerate() {
            *sums = Sums {
                customers: customers[i],
                prospects: prospects[i],
                buyers: buyers[i],
                deals: deals[i],
                revenue: revenue[i],
                purchasing_power: purchasing_power[i],
            };
        }
        let headcount = |t: &Tally| floor::Headcount { customers: t.customers, prospects: t.prospects };
        Ok(floor::merge_up(&rows, params.res, params.merge_levels, |s| headcount(s).holds(params.k)))
    }
}

/// A cell's figures drawn from its buyers, withheld together.
pub(crate) const BUYER_FIGURES: [&str; 5] = ["buyers", "deals", "revenue", "conversion", "conversion_smoothed"];

/// The groups' sums per distinct tuple of their anchors' cells at `res`: H3 once per group, on
/// the rayon pool, then a hash aggregation.
fn cells_at(groups: &Groups, location: Location, res: Res) -> Result<DataFrame> {
    let cell = |indexer: &mut Indexer, lat: u64, lng: u64| match (coord_of(lat), coord_of(lng)) {
        (Some(lat), Some(lng)) => indexer.cell(lat, lng).unwrap_or(MISSING),
        _ => MISSING,
    };
    let tuples: Vec<[u64; 2]> = groups
        .keys
        .par_iter()
        .map_init(|| Indexer::new(res), |ix, k| [cell(ix, k[0], k[1]), cell(ix, k[2], k[3])])
        .collect();
    let row = |_: &mut (), i: usize| Some((tuples[i], groups.sums[i]));
    cells_frame(&groups::sum_by_key(tuples.len(), &row), location)
}

/// Per-cell sums as the frame [`HeatmapBase::at`] reads: one cell column per anchor.
fn cells_frame(per_cell: &[([u64; 2], Sums)], location: Location) -> Result<DataFrame> {
    let mut columns = Vec::new();
    for a in location.anchors() {
        let slot = usize::from(a.lat == Anchor::WORK.lat);
        let values: Vec<Option<u64>> = per_cell.iter().map(|(t, _)| (t[slot] != MISSING).then_some(t[slot])).collect();
        columns.push(Column::new(a.cell.into(), values));
    }
    columns.extend(sum_columns(per_cell.iter().map(|(_, s)| s)));
    Ok(DataFrame::new(per_cell.len(), columns)?)
}

/// A cell's sums as the floor adds its rows up: counts exactly, money in compensated sums.
#[derive(Debug, Clone, Default)]
struct Tally {
    customers: i64,
    prospects: i64,
    buyers: i64,
    deals: i64,
    revenue: KahanSum<f64>,
    purchasing_power: KahanSum<f64>,
}

impl std::ops::AddAssign<Sums> for Tally {
    fn add_assign(&mut self, s: Sums) {
        self.customers += s.customers;
        self.prospects += s.prospects;
        self.buyers += s.buyers;
        self.deals += s.deals;
        self.revenue += s.revenue;
        self.purchasing_power += s.purchasing_power;
    }
}

/// Published cells and their sums as a frame: `cell` and the sums.
fn sums_frame(cells: &[(u64, Tally)]) -> Result<DataFrame> {
    let mut columns = vec![Column::new("cell".into(), cells.iter().map(|(c, _)| *c).collect::<Vec<u64>>())];
    let sums: Vec<Sums> = cells
        .iter()
        .map(|(_, t)| Sums {
            customers: t.customers,
            prospects: t.prospects,
            buyers: t.buyers,
            deals: t.deals,
            revenue: t.revenue.sum(),
            purchasing_power: t.purchasing_power.sum(),
        })
        .collect();
    columns.extend(sum_columns(sums.iter()));
    Ok(DataFrame::new(cells.len(), columns)?)
}

/// The columns of [`SUMS`], in that order.
fn sum_columns<'a>(sums: impl Iterator<Item = &'a Sums> + Clone) -> [Column; 6] {
    let int = |f: fn(&Sums) -> i64| sums.clone().map(f).collect::<Vec<i64>>();
    let float = |f: fn(&Sums) -> f64| sums.clone().map(f).collect::<Vec<f64>>();
    [
        Column::new("customers".into(), int(|s| s.customers)),
        Column::new("prospects".into(), int(|s| s.prospects)),
        Column::new("buyers".into(), int(|s| s.buyers)),
        Column::new("deals".into(), int(|s| s.deals)),
        Column::new("revenue".into(), float(|s| s.revenue)),
        Column::new("purchasing_power".into(), float(|s| s.purchasing_power)),
    ]
}

fn totals_of(groups: &DataFrame) -> Result<Totals> {
    let sum_i = |c: &str| -> Result<i64> { Ok(groups.column(c)?.i64()?.sum().unwrap_or(0)) };
    Ok(Totals {
        customers: sum_i("customers")?,
        prospects: sum_i("prospects")?,
        buyers: sum_i("buyers")?,
        purchasing_power: groups.column("purchasing_power")?.f64()?.sum().unwrap_or(0.0),
    })
}

/// What the metrics compare a cell with, from the published figures only: the city's whole,
/// less the published cells, would tell what the floor dropped or withheld (a figure of fewer
/// than k people), and shares, conversion and lift would carry it.
struct City {
    /// Purchasing power of the published cells: the shares' denominator.
    purchasing_power: f64,
    /// Buyers per customer over the published cells whose buyers are shown.
    buyer_rate: f64,
    /// Prospects per customer over the published cells.
    prospect_rate: f64,
}

impl City {
    fn of(cells: &[(u64, Tally)], k: KFloor) -> City {
        let mut purchasing_power = KahanSum::default();
        let (mut customers, mut prospects, mut shown_customers, mut shown_buyers) = (0i64, 0i64, 0i64, 0i64);
        for (_, t) in cells {
            purchasing_power += t.purchasing_power.sum();
            customers += t.customers;
            prospects += t.prospects;
            if !floor::buyers_withheld(t.customers, t.buyers, k) {
                shown_customers += t.customers;
                shown_buyers += t.buyers;
            }
        }
        let rate = |n: i64, d: i64| if d > 0 { n as f64 / d as f64 } else { 0.0 };
        City {
            purchasing_power: purchasing_power.sum(),
            buyer_rate: rate(shown_buyers, shown_customers),
            prospect_rate: rate(prospects, customers),
        }
    }
}

/// Adds `hex_id` and the derived metrics, in the column order of SPEC §9.
fn metrics(cells: DataFrame, city: &City, params: &HeatmapParams) -> Result<DataFrame> {
    let m = params.prior;
    let (p, q, city_pp) = (city.buyer_rate, city.prospect_rate, city.purchasing_power);
    let customers = col("customers").cast(DataType::Float64);
    let share = if city_pp > 0.0 { col("purchasing_power") / lit(city_pp) } else { lit(NULL).cast(DataType::Float64) };
    let lift = if q > 0.0 {
        lit(100.0) * ((col("prospects").cast(DataType::Float64) + lit(m * q)) / (customers.clone() + lit(m))) / lit(q)
    } else {
        lit(NULL).cast(DataType::Float64)
    };
    let hex: Vec<String> = cells.column("cell")?.u64()?.into_no_null_iter().map(h3::hex_string).collect();
    let mut out = cells
        .lazy()
        .with_columns([
            share.alias("purchasing_power_share"),
            (col("buyers").cast(DataType::Float64) / customers.clone()).alias("conversion"),
            ((col("buyers").cast(DataType::Float64) + lit(m * p)) / (customers + lit(m))).alias("conversion_smoothed"),
            lift.alias("lift"),
        ])
        .collect()?;
    out.with_column(Column::new("hex_id".into(), hex))?;
    if params.smooth > 0 {
        let smoothed = ring_smooth(&out, params)?;
        out.with_column(smoothed)?;
    }
    let mut order: Vec<Expr> = ["hex_id", "res"].into_iter().chain(SUMS).map(col).collect();
    order.extend(["purchasing_power_share", "conversion", "conversion_smoothed", "lift"].map(col));
    if params.smooth > 0 {
        order.push(col("purchasing_power_smoothed"));
    }
    Ok(out
        .lazy()
        .select(order)
        .sort(["res", "hex_id"], SortMultipleOptions::default().with_order_descending_multi([true, false]))
        .collect()?)
}

/// k-ring smoothing of purchasing power. For a cell at the requested resolution: the weighted
/// mean over its grid disk of radius K, weight `(K + 1 - d) / (K + 1)` at grid distance `d`,
/// of the published cells at that resolution; a cell not published there (no customers, merged
/// into a parent, or dropped) counts as 0. It reads only figures the table itself publishes, so
/// it tells nothing the floor withheld: had it read the small cells, the published centre and
/// neighbours subtracted from it would leave a small cell's sum, a single person's budget.
/// Merged parent cells get null.
fn ring_smooth(out: &DataFrame, params: &HeatmapParams) -> Result<Column> {
    let k = params.smooth;
    let res = i32::from(params.res.get());
    let out_cells = out.column("cell")?.u64()?;
    let out_res = out.column("res")?.i32()?;
    let pp = out.column("purchasing_power")?.f64()?;
    let values: HashMap<u64, f64> = out_cells
        .into_no_null_iter()
        .zip(out_res.into_no_null_iter())
        .zip(pp.into_no_null_iter())
        .filter(|((_, r), _)| *r == res)
        .map(|((c, _), v)| (c, v))
        .collect();
    let smoothed: Vec<Option<f64>> = out_cells
        .into_no_null_iter()
        .zip(out_res.into_no_null_iter())
        .map(|(cell, r)| {
            (r == res).then(|| {
                let (mut num, mut den) = (0.0, 0.0);
                for (n, d) in h3::disk_with_distances(cell, k) {
                    let w = f64::from(k + 1 - d) / f64::from(k + 1);
                    num += w * values.get(&n).copied().unwrap_or(0.0);
                    den += w;
                }
                if den > 0.0 {
                    num / den
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Column::new("purchasing_power_smoothed".into(), smoothed))
}

/// A heatmap: the cell table plus what a reader needs to interpret it.
#[derive(Debug, Clone)]
pub struct HeatmapResult {
    pub params: HeatmapParams,
    pub totals: Totals,
    pub suppressed: Suppressed,
    /// Columns of SPEC §9 (`hex_id`, `res`, `customers`, ... `lift`), sorted by res then hex_id.
    pub cells: DataFrame,
}

/// The customer columns a heatmap of `location` filtered by `where_` reads, besides
/// `customer_id`: the budget, the anchors' coordinates, and every word of the filter that could
/// name a column. A caller may load just these ([`crate::io::validate::IngestOptions`]).
#[must_use]
pub fn columns_read(location: Location, where_: Option<&str>) -> Vec<String> {
    let mut out = vec!["budget".to_string()];
    for a in location.anchors() {
        out.extend([a.lat.to_string(), a.lng.to_string()]);
    }
    out.extend(Segment::given(where_).map(Segment::words).unwrap_or_default());
    out
}

/// Builds the base and the table in one call (the CLI's path).
pub fn heatmap(ds: &Dataset, params: &HeatmapParams) -> Result<HeatmapResult> {
    params.check()?;
    HeatmapBase::build(ds, params.location, params.segment.as_deref(), params.res)?.at(params)
}

/// Each customer's largest signed deal price, in customers-frame row order (`None` for
/// customers who signed nothing): a buyer's purchasing power when they gave no budget.
pub fn largest_signed_deal(ds: &crate::io::Dataset) -> Result<Vec<Option<f64>>> {
    let mut out = vec![None; ds.customers.height()];
    if let Some(deals) = ds.deals.as_ref().filter(|d| d.height() > 0) {
        let top = deals
            .clone()
            .lazy()
            .filter(col("status").eq(lit(plan::SIGNED)))
            .group_by([col(CUSTOMER_ROW)])
            .agg([col("price").max().alias("__max_price")])
            .collect()?;
        let rows = top.column(CUSTOMER_ROW)?.idx()?;
        let price = top.column("__max_price")?.f64()?;
        for (r, p) in rows.iter().zip(price.iter()) {
            if let Some(slot) = r.and_then(|r| out.get_mut(r as usize)) {
                *slot = Some(p.unwrap_or(0.0));
            }
        }
    }
    Ok(out)
}

/// Each customer's purchasing power, in customers-frame row order: their budget, or for a buyer
/// with no budget, their largest signed deal's price; null when neither is known. The rule the
/// heatmap's `purchasing_power` applies, shared with placement's `--weight budget`.
pub fn purchasing_power(ds: &crate::io::Dataset) -> Result<Float64Chunked> {
    let budget = ds.customers.column("budget")?.f64()?;
    let largest = largest_signed_deal(ds)?;
    Ok(budget
        .iter()
        .zip(largest)
        .map(|(b, d)| b.or(d))
        .collect::<Float64Chunked>()
        .with_name("purchasing_power".into()))
}
