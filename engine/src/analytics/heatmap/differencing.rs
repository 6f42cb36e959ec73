//! The release ledger on heatmap cells (see [`crate::analytics::privacy::ledger`]).
//!
//! A heatmap releases more than its rows: the sum of the released rows under any coarser hexagon
//! is known too, and a reader who also has that hexagon's count from a coarser query learns how
//! many people the finer release left out there (dropped by the floor, or outside the segment).
//! So the figures the ledger keeps for a hexagon `H` are the customers and prospects of every
//! released row at `H` or under it (`V(H)`), for `H` at the row's resolution and each coarser one
//! down to [`COARSEST`]; a merged row (customers of small cells folded into their parent) is also
//! kept as its own figure. A release whose `V(H)` differs from an earlier one by 1 to k-1 drops
//! the smallest row under the finest such `H` and looks again, until no figure conflicts; the
//! buyers of a row are held to the same rule on the row itself (withheld, as the floor does).

use std::collections::HashMap;

use polars::prelude::*;

use super::{HeatmapResult, BUYER_FIGURES};
use crate::analytics::privacy::Ledger;
use crate::error::{Error, Result};
use crate::spatial::{h3, Res};

/// Hexagons coarser than this are not kept as implied figures: a res-4 cell is some 1,770 km²,
/// and a difference there locates no one (the segment's city totals are released anyway).
pub const COARSEST: u8 = 5;

/// The counts whose implied sums the ledger keeps.
const COUNTS: [&str; 2] = ["customers", "prospects"];

struct Row {
    cell: u64,
    res: u8,
    counts: [f64; 2],
}

impl HeatmapResult {
    /// Drops the cells (and withholds the buyer figures) that would let this release be
    /// differenced against an earlier one in `ledger`, then records what it releases. Returns
    /// how many cells were dropped; they are also counted in `suppressed.differencing`.
    pub fn withhold_differences(&mut self, ledger: &mut Ledger) -> Result<u64> {
        let k = f64::from(self.params.k.get());
        let scope = format!("heatmap/{}", self.params.location.as_str());
        let rows = read_rows(&self.cells)?;
        let fine = self.params.res.get();
        let scopes = COUNTS.map(|c| format!("{scope}/{c}"));
        let merged_scopes = COUNTS.map(|c| format!("{scope}/{c}/merged"));
        let under = index(&rows);
        let mut kept = vec![true; rows.len()];
        loop {
            let implied = implied_values(&rows, &kept, &under);
            let mut conflicting: Vec<(u64, u8)> = implied
                .iter()
                .filter(|(&(hex, _), values)| {
                    let hex = h3::hex_string(hex);
                    scopes.iter().zip(values.iter()).any(|(s, &v)| !ledger.admits(s, &hex, v, k))
                })
                .map(|(&key, _)| key)
                .collect();
            let mut drop: Vec<usize> = rows
                .iter()
                .enumerate()
                .filter(|&(i, r)| {
                    kept[i] && r.res < fine && {
                        let hex = h3::hex_string(r.cell);
                        merged_scopes.iter().zip(r.counts).any(|(s, v)| !ledger.admits(s, &hex, v, k))
                    }
                })
                .map(|(i, _)| i)
                .collect();
            // Under each conflicting hexagon with no conflicting hexagon below it, the kept row
            // with the fewest customers goes (a conflict at a fine cell is that cell itself).
            conflicting.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut settled: std::collections::HashSet<(u64, u8)> = std::collections::HashSet::new();
            for &(hex, res) in &conflicting {
                let members = &under[&(hex, res)];
                let below = members.iter().any(|&i| {
                    let r = &rows[i];
                    (res + 1..=r.res).any(|f| settled.contains(&(ancestor(r.cell, f), f)))
                });
                settled.insert((hex, res));
                if below {
                    continue;
                }
                let victim = members
                    .iter()
                    .copied()
                    .filter(|&i| kept[i])
                    .min_by(|&a, &b| rows[a].counts[0].total_cmp(&rows[b].counts[0]).then(a.cmp(&b)));
                drop.extend(victim);
            }
            if drop.is_empty() {
                break;
            }
            for i in drop {
                kept[i] = false;
            }
        }
        for (&(hex, _), values) in &implied_values(&rows, &kept, &under) {
            let hex = h3::hex_string(hex);
            for (s, &v) in scopes.iter().zip(values.iter()) {
                ledger.record(s, &hex, v);
            }
        }
        for (r, _) in rows.iter().zip(&kept).filter(|(r, &keep)| keep && r.res < fine) {
            let hex = h3::hex_string(r.cell);
            for (s, v) in merged_scopes.iter().zip(r.counts) {
                ledger.record(s, &hex, v);
            }
        }
        let dropped = kept.iter().filter(|&&k| !k).count() as u64;
        let mask: BooleanChunked = kept.into_iter().collect();
        let cells = self.cells.filter(&mask)?;
        let groups: [(&str, &[&str]); 1] = [("buyers", &BUYER_FIGURES)];
        let (cells, withheld) = ledger.withhold_table(cells, &format!("{scope}/row"), &["hex_id"], k, &groups)?;
        self.cells = cells;
        self.suppressed.differencing += dropped;
        self.suppressed.withheld += withheld as u64;
        Ok(dropped)
    }
}

fn read_rows(cells: &DataFrame) -> Result<Vec<Row>> {
    let hex = cells.column("hex_id")?.str()?.clone();
    let res = cells.column("res")?.cast(&DataType::Int32)?;
    let res = res.i32()?;
    let counts: Vec<Column> =
        COUNTS.iter().map(|c| cells.column(c)?.cast(&DataType::Float64)).collect::<PolarsResult<_>>()?;
    let (customers, prospects) = (counts[0].f64()?, counts[1].f64()?);
    (0..cells.height())
        .map(|i| {
            let h = hex.get(i).ok_or_else(|| Error::Internal("a heatmap cell without hex_id".into()))?;
            let cell = u64::from_str_radix(h, 16).map_err(|e| Error::Internal(format!("hex_id '{h}': {e}")))?;
            let res = res.get(i).and_then(|r| u8::try_from(r).ok()).unwrap_or_else(|| h3::res_of(cell));
            Ok(Row { cell, res, counts: [customers.get(i).unwrap_or(0.0), prospects.get(i).unwrap_or(0.0)] })
        })
        .collect()
}

/// The hexagon at `res` holding `cell` (`cell` itself at its own resolution).
fn ancestor(cell: u64, res: u8) -> u64 {
    match Res::new(res) {
        Ok(r) if res < h3::res_of(cell) => h3::parent_bits(cell, r),
        _ => cell,
    }
}

/// The hexagons each row counts towards: its own and each coarser one down to [`COARSEST`] (or
/// the row's own resolution when that is coarser), with the rows under each.
fn index(rows: &[Row]) -> HashMap<(u64, u8), Vec<usize>> {
    let mut out: HashMap<(u64, u8), Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        for res in COARSEST.min(r.res)..=r.res {
            out.entry((ancestor(r.cell, res), res)).or_default().push(i);
        }
    }
    out
}

/// `V(H)`: the customers and prospects of the kept rows under each indexed hexagon that has any.
fn implied_values(rows: &[Row], kept: &[bool], under: &HashMap<(u64, u8), Vec<usize>>) -> HashMap<(u64, u8), [f64; 2]> {
    under
        .iter()
        .filter_map(|(&key, members)| {
            let mut v = [0.0; 2];
            let mut any = false;
            for &i in members.iter().filter(|&&i| kept[i]) {
                any = true;
                v[0] += rows[i].counts[0];
                v[1] += rows[i].counts[1];
            }
            any.then_some((key, v))
        })
        .collect()
}
