//! The floor's merge-up (SPEC §3): a cell that does not hold enough people folds into its
//! parent, up to `levels` parents; what is still small there is dropped. One implementation for
//! every table that places people in cells: geo-attribution places each converting customer
//! once (a row per cell, weighted by its people), the heatmap up to twice (home and work). Both
//! use [`MERGE_LEVELS`] and report what the floor did in one [`Suppressed`].
//!
//! The rule, for rows that each hold a weight (people) and up to `A` anchor cells:
//! 1. at the first level, each anchor's cell is its cell at the floor's resolution;
//! 2. a row counts once in each distinct cell among its *moving* anchors' cells at this level
//!    (so a person whose home and work share a cell is one person there, and one person in a
//!    parent that both of their small cells merged into);
//! 3. a cell whose weight holds (the table's rule) is published at this level, and the anchors in
//!    it stop moving; anchors in small cells move up to their parents at the next level;
//! 4. after `levels` merges, or at resolution 0, the cells still small are dropped, and so are
//!    the anchors in them.
//!
//! A published cell's figures are the sums over the rows with an anchor published there (each
//! row once), so a published cell holds exactly the weight the floor judged.

use std::collections::{HashMap, HashSet};
use std::ops::AddAssign;

use foldhash::fast::FixedState;

use super::{KFloor, Suppressed};
use crate::spatial::h3::{parent_bits, Res};

/// How many parents a small cell may climb before it is dropped (the default of every floor).
pub const MERGE_LEVELS: u8 = 2;

/// The people of a heatmap cell the floor judges: its customers, and those of them in the
/// request's segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headcount {
    pub customers: i64,
    pub prospects: i64,
}

impl AddAssign for Headcount {
    fn add_assign(&mut self, o: Headcount) {
        self.customers += o.customers;
        self.prospects += o.prospects;
    }
}

impl Headcount {
    /// Whether a heatmap cell may be published: it holds at least `k` customers, and its
    /// segment's prospects and the customers outside the segment are each none or at least `k`
    /// (a no-segment query tells the customers, so those outside would show by difference).
    #[must_use]
    pub fn holds(&self, k: KFloor) -> bool {
        let k = i64::from(k.get());
        let none_or_k = |n: i64| n == 0 || n >= k;
        self.customers >= k && none_or_k(self.prospects) && none_or_k(self.customers - self.prospects)
    }
}

/// Whether a published heatmap cell's buyer figures (buyers, deals, revenue, conversion) are
/// withheld: its buyers, or its customers who did not buy, are 1 to k-1 (either tells of so few
/// people who bought, or did not).
#[must_use]
pub fn buyers_withheld(customers: i64, buyers: i64, k: KFloor) -> bool {
    let small = |n: i64| n > 0 && n < i64::from(k.get());
    small(buyers) || small(customers - buyers)
}

/// What the floor did to a table's rows.
#[derive(Debug, Clone)]
pub struct Floored<T, const A: usize> {
    /// Per row and anchor: the cell it is published in (its own or an ancestor up to the
    /// merge levels), `None` where it had no place or was dropped.
    pub published: Vec<[Option<u64>; A]>,
    /// The published cells, each with the weight of the rows published there (each row once):
    /// the weight the floor judged.
    pub cells: Vec<(u64, T)>,
    pub suppressed: Suppressed,
}

/// The floor over `rows`, each its anchors' cells at `res` (`None` where it has no place) and
/// its weight: a cell's weight is the sum (`T`) of its rows' (`W`); a cell is published where
/// `holds` says its weight may be, otherwise merged up level by level, at most `levels` times
/// (the rule of the module).
#[must_use]
pub fn merge_up<W, T, const A: usize>(
    rows: &[([Option<u64>; A], W)],
    res: Res,
    levels: u8,
    holds: impl Fn(&T) -> bool,
) -> Floored<T, A>
where
    W: Copy,
    T: Default + AddAssign<W>,
{
    let mut out =
        Floored { published: vec![[None; A]; rows.len()], cells: Vec::new(), suppressed: Suppressed::default() };
    // The rows with an anchor still moving, and those anchors' cells at the current level.
    let mut moving: Vec<(usize, [Option<u64>; A])> = rows.iter().map(|(cells, _)| *cells).enumerate().collect();
    let mut level_res = res;
    for level in 0..=levels {
        let mut weight: HashMap<u64, T, FixedState> = HashMap::default();
        for (row, cells) in &moving {
            for (i, c) in cells.iter().enumerate() {
                // Once per distinct cell of the row.
                if let Some(c) = c.filter(|c| !cells[..i].contains(&Some(*c))) {
                    *weight.entry(c).or_default() += rows[*row].1;
                }
            }
        }
        let mut small: HashSet<u64, FixedState> = HashSet::default();
        for (c, w) in weight {
            if holds(&w) {
                out.cells.push((c, w));
            } else {
                small.insert(c);
            }
        }
        let up = level_res.coarser().filter(|_| level < levels && !small.is_empty());
        for (row, cells) in &mut moving {
            for (i, c) in cells.iter_mut().enumerate() {
                match *c {
                    Some(cell) if small.contains(&cell) => *c = up.map(|up| parent_bits(cell, up)),
                    Some(cell) => {
                        out.published[*row][i] = Some(cell);
                        *c = None;
                    }
                    None => {}
                }
            }
        }
        if small.is_empty() {
            break;
        }
        let Some(up) = up else {
            out.suppressed.dropped = small.len() as u64;
            break;
        };
        out.suppressed.merged += small.len() as u64;
        moving.retain(|(_, cells)| cells.iter().any(Option::is_some));
        level_res = up;
    }
    out
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
        let mut rows: Vec<([Option<u64>; 1], u64)> = siblings.iter().map(|c| ([Some(*c)], 2)).collect();
        rows.push(([Some(big)], 5));
        rows.push(([Some(far)], 1));
        let Floored { published, suppressed, .. } = merge_up(&rows, res, MERGE_LEVELS, |n: &u64| *n >= 5);
        assert_eq!(&published[..3], &[[Some(parent)]; 3], "a small sibling is published as its parent");
        assert_eq!(&published[3..], &[[Some(big)], [None]]);
        assert_eq!(suppressed, Suppressed { merged: 3 + 1 + 1, dropped: 1, ..Suppressed::default() });
    }

    /// Two people whose homes and works lie in two small sibling cells: each counts once in the
    /// parent (two people, not four), so the parent stays small and both are dropped; a third
    /// person at home in the first cell lifts it to the floor and publishes it, while the works
    /// still climb and are dropped.
    #[test]
    fn a_row_counts_once_in_each_cell_its_anchors_share() {
        let res = Res::new(9).unwrap();
        let a = h3::cell(30.55, 114.30, res).unwrap();
        let parent = parent_bits(a, Res::new(8).unwrap());
        let b = h3o::CellIndex::try_from(parent)
            .unwrap()
            .children(h3o::Resolution::Nine)
            .map(u64::from)
            .find(|c| *c != a)
            .unwrap();
        let one = Headcount { customers: 1, prospects: 0 };
        let k = KFloor::new(3).unwrap();
        let mut rows = vec![([Some(a), Some(b)], one); 2];
        let Floored { published, suppressed, .. } = merge_up(&rows, res, MERGE_LEVELS, |w: &Headcount| w.holds(k));
        assert_eq!(published, vec![[None, None]; 2]);
        assert_eq!(suppressed, Suppressed { merged: 2 + 1, dropped: 1, ..Suppressed::default() });
        rows.push(([Some(a), None], one));
        let Floored { published, suppressed, .. } = merge_up(&rows, res, MERGE_LEVELS, |w: &Headcount| w.holds(k));
        assert_eq!(published, vec![[Some(a), None], [Some(a), None], [Some(a), None]]);
        assert_eq!(suppressed, Suppressed { merged: 1 + 1, dropped: 1, ..Suppressed::default() });
    }

    /// A heatmap cell holds when its customers reach k and neither its prospects nor the
    /// customers outside the segment are 1 to k-1 (either would show by difference).
    #[test]
    fn a_cell_holds_when_no_part_of_it_is_small() {
        let k = KFloor::new(3).unwrap();
        let holds = |customers, prospects| Headcount { customers, prospects }.holds(k);
        assert!(holds(5, 0) && holds(5, 5) && holds(6, 3) && holds(3, 3));
        assert!(!holds(2, 0), "too few customers");
        assert!(!holds(5, 1), "one prospect");
        assert!(!holds(5, 3), "two customers outside the segment");
    }
}
