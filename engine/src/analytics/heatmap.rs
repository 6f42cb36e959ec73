//! Purchasing-power heatmaps on H3 cells (SPEC §3).
//!
//! Flow: customers (+ signed deals per customer) -> one row per distinct anchor coordinate
//! (a group of customers with sums) -> H3 cell of each group at the base resolution, computed
//! once per distinct coordinate -> coarser cells by parent bit operations (for the privacy
//! floor's merges and for maps rolled up from a cached base) -> privacy floor -> metrics.
//!
//! H3 cells are not geometrically nested: a point near a cell edge can lie in a res-8 cell that
//! is not the parent of its res-9 cell. The base level is therefore computed from coordinates
//! (exact, and what other H3 tools compute); coarser levels are hierarchical roll-ups, the
//! usual H3 aggregation.
//!
//! Working on coordinate groups, not customers, is what makes this fast on CRM data where many
//! customers share a building's coordinates; it is exact because every metric is a sum over
//! customers, and a group is a set of customers counted once. In `both` mode a group holds
//! customers with the same home *and* work coordinates, so a person whose home and work fall in
//! one cell is counted once there.

use std::collections::HashMap;

use polars::prelude::*;
use serde::Serialize;

use super::privacy::{KFloor, Suppressed};
use super::segment::Segment;
use crate::error::{Error, Result};
use crate::io::validate::CUSTOMER_ROW;
use crate::io::Dataset;
use crate::spatial::h3::{self, Res};

/// Which of a customer's places count (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
            merge_levels: 2,
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

/// Sum columns carried from customers to cells.
const SUMS: [&str; 6] = ["customers", "prospects", "buyers", "deals", "revenue", "purchasing_power"];

fn sum_type(c: &str) -> DataType {
    if matches!(c, "revenue" | "purchasing_power") {
        DataType::Float64
    } else {
        DataType::Int64
    }
}

fn sum_exprs() -> Vec<Expr> {
    SUMS.iter().map(|c| col(*c).sum().cast(sum_type(c))).collect()
}

/// City-wide totals over the located customers, each counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub customers: i64,
    pub prospects: i64,
    pub buyers: i64,
    pub purchasing_power: f64,
}

/// How coordinate groups are keyed: a packed integer (1e-7 degree grid, checked exact per group)
/// or the raw float pair (the fallback when two distinct coordinates share a packed key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    Packed,
    Exact,
}

fn key_names(a: &Anchor, keys: Keys) -> Vec<String> {
    match keys {
        Keys::Packed => vec![format!("{}_key", a.cell)],
        Keys::Exact => vec![format!("{}_klat", a.cell), format!("{}_klng", a.cell)],
    }
}

/// Group-key expressions for an anchor. The packed key is `round((lat+90)e7) << 32 |
/// round((lng+180)e7)`: one i64, which polars groups about three times faster than two floats.
fn key_exprs(a: &Anchor, keys: Keys) -> Vec<Expr> {
    let names = key_names(a, keys);
    match keys {
        Keys::Packed => {
            let q = |c: &str, offset: f64| {
                ((col(c) + lit(offset)) * lit(1e7)).round(0, RoundMode::HalfToEven).cast(DataType::Int64)
            };
            vec![(q(a.lat, 90.0) * lit(1i64 << 32) + q(a.lng, 180.0)).alias(names[0].as_str())]
        }
        Keys::Exact => vec![col(a.lat).alias(names[0].as_str()), col(a.lng).alias(names[1].as_str())],
    }
}

fn max_name(c: &str) -> String {
    format!("{c}__max")
}

/// Packed keys, per anchor, that two distinct coordinates shared.
struct Clash {
    keys: Vec<Series>,
}

impl Clash {
    /// Rows (or groups) with an anchor whose packed key clashed.
    fn touches(&self, anchors: &[Anchor]) -> Expr {
        anchors.iter().zip(&self.keys).fold(lit(false), |acc, (a, k)| {
            let key = key_exprs(a, Keys::Packed).remove(0);
            acc.or(key.is_in(lit(k.clone()).implode(false), false).fill_null(lit(false)))
        })
    }
}

/// Reduces customers (and their signed deals) to one row per anchor-coordinate group with the
/// sums and the group's coordinates. With packed keys, groups whose key two distinct coordinates
/// shared are left out and reported as a [`Clash`], for an exact reduction of just their rows
/// (`only`).
fn reduce(
    ds: &Dataset,
    segment: Option<&Segment>,
    location: Location,
    keys: Keys,
    only: Option<&Clash>,
) -> Result<(DataFrame, Option<Clash>)> {
    let anchors = location.anchors();
    let only_rows = only.map_or(lit(true), |c| c.touches(anchors));
    let located = anchors.iter().fold(lit(false), |acc, a| acc.or(col(a.lat).is_not_null()));
    let prospect = segment.map_or(lit(true), |s| s.expr.clone());
    let key_cols: Vec<Expr> = anchors.iter().flat_map(|a| key_names(a, keys)).map(|k| col(k.as_str())).collect();
    let with_keys: Vec<Expr> = anchors.iter().flat_map(|a| key_exprs(a, keys)).collect();
    let coord_names: Vec<&str> = anchors.iter().flat_map(|a| [a.lat, a.lng]).collect();
    let aggs = |sums: &[&str]| -> Vec<Expr> {
        let mut v: Vec<Expr> = sums.iter().map(|c| col(*c).sum()).collect();
        v.extend(coord_names.iter().map(|c| col(*c).min()));
        v.extend(coord_names.iter().map(|c| col(*c).max().alias(max_name(c).as_str())));
        v
    };

    // Every customer: counts, prospects and budgets. No join.
    // Not filtered by `located` first: that would copy whole columns. Unlocated customers form
    // the group whose keys are all null, dropped after aggregation.
    let everyone = ds
        .customers
        .clone()
        .lazy()
        .filter(only_rows.clone())
        .with_columns([
            prospect.clone().cast(DataType::Int64).alias("prospects"),
            when(prospect.clone())
                .then(col("budget").fill_null(lit(0.0)))
                .otherwise(lit(0.0))
                .alias("purchasing_power"),
        ])
        .with_columns(with_keys.clone())
        .group_by(key_cols.clone())
        .agg({
            let mut a = vec![len().cast(DataType::Int64).alias("customers")];
            a.extend(aggs(&["prospects", "purchasing_power"]));
            a
        })
        .with_columns([lit(0i64).alias("buyers"), lit(0i64).alias("deals"), lit(0.0).alias("revenue")]);
    let mut parts = vec![everyone];

    // Buyers only (a minority): signed deals per customer row, gathered by index. A buyer's
    // missing budget is taken from their largest signed deal.
    if let Some(deals) = ds.deals.as_ref().filter(|d| d.height() > 0) {
        let per_buyer = deals
            .clone()
            .lazy()
            .filter(col("status").eq(lit("signed")))
            .group_by([col(CUSTOMER_ROW)])
            .agg([
                len().cast(DataType::Int64).alias("deals"),
                col("price").sum().alias("revenue"),
                col("price").max().alias("__max_price"),
            ])
            .collect()?;
        let rows = per_buyer.column(CUSTOMER_ROW)?.idx()?.clone();
        let mut buyers = ds.customers.take(&rows)?;
        for c in ["deals", "revenue", "__max_price"] {
            buyers.with_column(per_buyer.column(c)?.clone())?;
        }
        let extra_budget =
            when(prospect.clone().and(col("budget").is_null())).then(col("__max_price")).otherwise(lit(0.0));
        parts.push(
            buyers
                .lazy()
                .filter(located.and(only_rows))
                .with_columns([lit(1i64).alias("buyers"), extra_budget.alias("purchasing_power")])
                .with_columns(with_keys)
                .group_by(key_cols.clone())
                .agg(aggs(&["buyers", "deals", "revenue", "purchasing_power"]))
                .with_columns([lit(0i64).alias("customers"), lit(0i64).alias("prospects")]),
        );
    }

    let mut order = key_cols.clone();
    order.extend(SUMS.iter().map(|c| col(*c).cast(sum_type(c))));
    order.extend(coord_names.iter().map(|c| col(*c)));
    order.extend(coord_names.iter().map(|c| col(max_name(c).as_str())));
    let parts: Vec<LazyFrame> = parts.into_iter().map(|p| p.select(order.clone())).collect();
    let mut final_aggs = sum_exprs();
    final_aggs.extend(coord_names.iter().map(|c| col(*c).min()));
    final_aggs.extend(coord_names.iter().map(|c| col(max_name(c).as_str()).max()));
    let any_anchor = coord_names.iter().fold(lit(false), |acc, c| acc.or(col(*c).is_not_null()));
    let groups =
        concat(parts, UnionArgs::default())?.group_by(key_cols).agg(final_aggs).filter(any_anchor).collect()?;

    let drop: Vec<String> =
        anchors.iter().flat_map(|a| key_names(a, keys)).chain(coord_names.iter().map(|c| max_name(c))).collect();
    if keys == Keys::Packed {
        let inexact = coord_names
            .iter()
            .fold(lit(false), |acc, c| acc.or(col(*c).neq(col(max_name(c).as_str())).fill_null(lit(false))));
        let clashed = groups.clone().lazy().filter(inexact).collect()?;
        if clashed.height() > 0 {
            let keys_of = |a: &Anchor| -> Result<Series> {
                Ok(clashed
                    .column(key_names(a, Keys::Packed)[0].as_str())?
                    .as_materialized_series()
                    .drop_nulls()
                    .unique()?)
            };
            let clash = Clash { keys: anchors.iter().map(keys_of).collect::<Result<_>>()? };
            let kept = groups.lazy().filter(clash.touches(anchors).not()).drop(cols(drop)).collect()?;
            return Ok((kept, Some(clash)));
        }
    }
    Ok((groups.lazy().drop(cols(drop)).collect()?, None))
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
    groups: DataFrame,
    pub totals: Totals,
}

impl HeatmapBase {
    /// Reduces the dataset's customers for `location` and the segment filter `where_`, with
    /// cells at resolution `res`.
    pub fn build(ds: &Dataset, location: Location, where_: Option<&str>, res: Res) -> Result<Self> {
        let segment = where_
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| Segment::parse(w, &ds.customers.schema()))
            .transpose()?;
        // Packed keys first; the few groups where two distinct coordinates shared a key are
        // reduced again, exactly, from only their rows.
        let groups = match reduce(ds, segment.as_ref(), location, Keys::Packed, None)? {
            (groups, None) => groups,
            (mut groups, Some(clash)) => {
                let (exact, _) = reduce(ds, segment.as_ref(), location, Keys::Exact, Some(&clash))?;
                groups.vstack_mut(&exact)?;
                groups
            }
        };
        let totals = totals_of(&groups)?;
        let base = HeatmapBase { res, location, segment: segment.map(|s| s.text), groups, totals };
        base.reindexed(res)
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
            let name = a.cell.trim_start_matches('_');
            if cells.column(name).is_err() {
                return Err(Error::Internal(format!("reduced cells lack the column '{name}'")));
            }
            select.push(col(name).cast(DataType::UInt64).alias(a.cell));
        }
        select.extend(SUMS.iter().map(|c| col(*c).cast(sum_type(c))));
        let groups = cells.lazy().select(select).collect()?;
        let totals = totals_of(&groups)?;
        Ok(HeatmapBase { res, location, segment, groups, totals })
    }

    /// The same groups with cells at `res`, finer or coarser, indexed from the groups'
    /// coordinates: no customer is read again, and the answer is exactly that of
    /// [`HeatmapBase::build`] at `res`. (H3 is not nested, so the parents of finer cells would
    /// move customers near cell edges to a neighbouring cell.)
    pub fn reindexed(&self, res: Res) -> Result<HeatmapBase> {
        if self.location.anchors().iter().any(|a| self.groups.column(a.lat).is_err()) {
            return Err(Error::Internal("a base made from reduced cells has no coordinates to re-index".into()));
        }
        let mut groups = self.groups.clone();
        for a in self.location.anchors() {
            let lat = groups.column(a.lat)?.f64()?.to_vec();
            let lng = groups.column(a.lng)?.f64()?.to_vec();
            groups.with_column(Column::new(a.cell.into(), h3::cells(&lat, &lng, res)))?;
        }
        Ok(HeatmapBase { res, location: self.location, segment: self.segment.clone(), groups, totals: self.totals })
    }

    /// Number of coordinate groups (distinct anchor coordinates) the customers reduced to.
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.height()
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
        let anchors = self.location.anchors();
        let mut active: Vec<Expr> = anchors.iter().map(|a| col(a.cell).is_not_null()).collect();
        let mut res = params.res;
        let mut lf = self.groups.clone().lazy();
        let mut kept: Vec<LazyFrame> = Vec::new();
        let mut suppressed = Suppressed::default();
        let mut finest_table: Option<DataFrame> = None;
        let mut level = 0u8;
        loop {
            let level_cells: Vec<Expr> = anchors.iter().map(|a| parent_expr(col(a.cell), res)).collect();
            lf = lf.with_columns(
                anchors
                    .iter()
                    .zip(&level_cells)
                    .zip(&active)
                    .map(|((a, cell), act)| {
                        when(act.clone()).then(cell.clone()).otherwise(lit(NULL)).alias(level_col(a))
                    })
                    .collect::<Vec<_>>(),
            );
            let table = cells_of(lf.clone(), anchors)?.collect()?;
            if finest_table.is_none() {
                finest_table = Some(table.clone());
            }
            let floor = col("customers").gt_eq(lit(i64::from(params.k.get())));
            kept.push(table.clone().lazy().filter(floor.clone()).with_column(lit(i32::from(res.get())).alias("res")));
            let small = table.lazy().filter(floor.not()).select([col("cell"), lit(true).alias("__small")]).collect()?;
            if small.height() == 0 {
                break;
            }
            let coarser = res.coarser().filter(|_| level < params.merge_levels);
            let Some(next) = coarser else {
                suppressed.dropped = small.height() as u64;
                break;
            };
            suppressed.merged += small.height() as u64;
            // Only anchors that fell in a small cell move up a level.
            for (a, act) in anchors.iter().zip(active.iter_mut()) {
                let flag = format!("__small_{}_{level}", a.cell);
                lf = lf.left_join(
                    small.clone().lazy().rename(["__small"], [flag.as_str()], true),
                    col(level_col(a)),
                    col("cell"),
                );
                *act = act.clone().and(col(flag.as_str()).fill_null(lit(false)));
            }
            res = next;
            level += 1;
        }
        let cells = concat(kept, UnionArgs::default())?.collect()?;
        let finest = finest_table.ok_or_else(|| Error::Internal("no level computed".into()))?;
        let frame = metrics(cells, &finest, &self.totals, params)?;
        Ok(HeatmapResult { params: params.clone(), totals: self.totals, suppressed, cells: frame })
    }
}

fn level_col(a: &Anchor) -> String {
    format!("{}_lvl", a.cell)
}

/// `cell`'s ancestor at `res` as a polars expression (bit operations, no per-row calls).
fn parent_expr(cell: Expr, res: Res) -> Expr {
    let r = u64::from(res.get());
    let keep = !(0xFu64 << 52);
    let set = (r << 52) | ((1u64 << (3 * (15 - r))) - 1);
    cell.and(lit_u64(keep)).or(lit_u64(set))
}

/// A typed u64 literal (an untyped one above `i64::MAX` would not fit polars' dynamic ints).
fn lit_u64(x: u64) -> Expr {
    lit(Scalar::new(DataType::UInt64, AnyValue::UInt64(x)))
}

/// Long format (one row per counted anchor) grouped by cell. A group whose anchors share a cell
/// counts there once.
fn cells_of(lf: LazyFrame, anchors: &[Anchor]) -> Result<LazyFrame> {
    let mut parts = Vec::new();
    for (i, a) in anchors.iter().enumerate() {
        let mine = col(level_col(a));
        let mut keep = mine.clone().is_not_null();
        for earlier in &anchors[..i] {
            let other = col(level_col(earlier));
            keep = keep.and(other.clone().is_null().or(other.neq(mine.clone())));
        }
        let mut select = vec![mine.alias("cell")];
        select.extend(SUMS.iter().map(|c| col(*c)));
        parts.push(lf.clone().filter(keep).select(select));
    }
    Ok(concat(parts, UnionArgs::default())?.group_by([col("cell")]).agg(sum_exprs()))
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

/// Adds `hex_id` and the derived metrics, in the column order of SPEC §9.
fn metrics(cells: DataFrame, finest: &DataFrame, totals: &Totals, params: &HeatmapParams) -> Result<DataFrame> {
    let m = params.prior;
    let city_pp: f64 = finest.column("purchasing_power")?.f64()?.sum().unwrap_or(0.0);
    let rate = |num: i64| {
        if totals.customers > 0 {
            num as f64 / totals.customers as f64
        } else {
            0.0
        }
    };
    let (p, q) = (rate(totals.buyers), rate(totals.prospects));
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
        let smoothed = ring_smooth(finest, &out, params)?;
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
/// cells without customers counting as 0. Uses every cell before the floor (a kept cell's
/// neighbours may be small cells; the mean over the disk still covers >= k customers).
/// Merged parent cells get null.
fn ring_smooth(finest: &DataFrame, out: &DataFrame, params: &HeatmapParams) -> Result<Column> {
    let k = params.smooth;
    let cells = finest.column("cell")?.u64()?;
    let pp = finest.column("purchasing_power")?.f64()?;
    let values: HashMap<u64, f64> = cells.into_no_null_iter().zip(pp.into_no_null_iter()).collect();
    let res = i32::from(params.res.get());
    let out_cells = out.column("cell")?.u64()?;
    let out_res = out.column("res")?.i32()?;
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

/// Builds the base and the table in one call (the CLI's path).
pub fn heatmap(ds: &Dataset, params: &HeatmapParams) -> Result<HeatmapResult> {
    params.check()?;
    HeatmapBase::build(ds, params.location, params.segment.as_deref(), params.res)?.at(params)
}
