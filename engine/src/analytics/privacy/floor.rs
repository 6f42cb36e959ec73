//! The floor's merge-up (SPEC §3), for tables that place each person in one cell: a cell with
//! fewer than `k` people folds into its parent, up to `levels` parents; what is still small
//! there is dropped. The heatmap applies the same rule to up to two places per person (home and
//! work) in `HeatmapBase::at`, where the counts live in a polars frame; both use
//! [`MERGE_LEVELS`] and report what they did in one [`Suppressed`].

use std::collections::{HashMap, HashSet};

use polars::prelude::{col, lit, Expr};

use super::{KFloor, Suppressed};
use crate::spatial::h3::{parent_bits, Res};

/// How many parents a small cell may climb before it is dropped (the default of every floor).
pub const MERGE_LEVELS: u8 = 2;

/// Whether a heatmap cell (columns `customers`, `prospects`) may be published: it holds at least
/// `k` customers, and its segment's prospects and the customers outside the segment are each none
/// or at least `k` (a no-segment query tells the customers, so those outside would show).
pub fn cell_holds(k: KFloor) -> Expr {
    let k = lit(i64::from(k.get()));
    let none_or_k = |e: Expr| e.clone().eq(lit(0i64)).or(e.gt_eq(k.clone()));
    col("customers")
        .gt_eq(k.clone())
        .and(none_or_k(col("prospects")))
        .and(none_or_k(col("customers") - col("prospects")))
}

/// Where each cell of a floored table is published.
#[derive(Debug, Clone)]
pub struct MergeUp {
    res: Res,
    levels: u8,
    /// Published cells, at `res` or up to `levels` coarser.
    placed: HashSet<u64>,
}

impl MergeUp {
    /// The floor over `people` (cell at `res` -> people in it): each cell at least `k` people is
    /// published as is, smaller ones are merged into their parents level by level.
    #[must_use]
    pub fn new(people: HashMap<u64, u64>, res: Res, k: KFloor, levels: u8) -> (MergeUp, Suppressed) {
        let mut suppressed = Suppressed::default();
        let mut placed = HashSet::new();
        let mut level_res = res;
        let mut current = people;
        for level in 0..=levels {
            let (ok, small): (Vec<_>, Vec<_>) = current.into_iter().partition(|(_, n)| *n >= u64::from(k.get()));
            placed.extend(ok.into_iter().map(|(c, _)| c));
            if small.is_empty() {
                break;
            }
            let Some(up) = level_res.coarser().filter(|_| level < levels) else {
                suppressed.dropped = small.len() as u64;
                break;
            };
            suppressed.merged += small.len() as u64;
            let mut next: HashMap<u64, u64> = HashMap::new();
            for (c, n) in small {
                *next.entry(parent_bits(c, up)).or_default() += n;
            }
            current = next;
            level_res = up;
        }
        (MergeUp { res, levels, placed }, suppressed)
    }

    /// The published cell that holds `cell` (a cell at the floor's resolution): itself or the
    /// nearest published ancestor; `None` if it was dropped.
    #[must_use]
    pub fn published(&self, cell: u64) -> Option<u64> {
        (0..=self.levels)
            .filter_map(|d| self.res.get().checked_sub(d).and_then(|r| Res::new(r).ok()))
            .map(|r| parent_bits(cell, r))
            .find(|p| self.placed.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::h3;

    /// Three cells of one parent with 2 people each merge into the parent (6 >= 5); a far cell
    /// with 1 person climbs two levels alone and is dropped; a cell of 5 stays.
    #[test]
    fn small_cells_merge_up_and_lonely_ones_are_dropped() {
        let res = Res::new(9).unwrap();
        let big = h3::cell(30.55, 114.30, res).unwrap();
        let parent = parent_bits(big, Res::new(8).unwrap());
        let siblings: Vec<u64> = h3o::CellIndex::try_from(parent)
            .unwrap()
            .children(h3o::Resolution::Nine)
            .map(u64::from)
            .filter(|c| *c != big)
            .take(3)
            .collect();
        let far = h3::cell(31.5, 120.0, res).unwrap();
        let mut people: HashMap<u64, u64> = siblings.iter().map(|c| (*c, 2)).collect();
        people.insert(big, 5);
        people.insert(far, 1);
        let (floor, suppressed) = MergeUp::new(people, res, KFloor::new(5).unwrap(), MERGE_LEVELS);
        assert_eq!(floor.published(big), Some(big));
        for c in &siblings {
            assert_eq!(floor.published(*c), Some(parent), "a small sibling is published as its parent");
        }
        assert_eq!(floor.published(far), None);
        assert_eq!(suppressed, Suppressed { merged: 3 + 1 + 1, dropped: 1, ..Suppressed::default() });
    }
}
