//! Hash aggregation behind the heatmap: customers to exact coordinate groups, or straight to
//! cells, and groups to cells.
//!
//! Keys are exact (coordinate bit patterns, or H3 cells), so two distinct places never share a
//! group. Rows are cut into fixed chunks aggregated in parallel, and the chunks' tables merged in
//! chunk order: the groups, their order and their sums are the same for any number of threads.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::spatial::fast_h3::Indexer;
use crate::spatial::h3::Res;

/// The sums a group (a set of customers, each counted once) carries to its cells.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Sums {
    pub customers: i64,
    pub prospects: i64,
    pub buyers: i64,
    pub deals: i64,
    pub revenue: f64,
    pub purchasing_power: f64,
}

impl std::ops::AddAssign for Sums {
    fn add_assign(&mut self, o: Sums) {
        self.add(&o);
    }
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.customers += o.customers;
        self.prospects += o.prospects;
        self.buyers += o.buyers;
        self.deals += o.deals;
        self.revenue += o.revenue;
        self.purchasing_power += o.purchasing_power;
    }
}

/// Marks an absent part of a key. As coordinate bits it is a NaN (validated coordinates are
/// finite); as a cell it is not a valid H3 index.
pub(super) const MISSING: u64 = u64::MAX;

/// The exact bits of a coordinate, with -0.0 folded into 0.0 (the same place).
pub(super) fn coord_bits(x: Option<f64>) -> u64 {
    x.map_or(MISSING, |v| (v + 0.0).to_bits())
}

/// The coordinate a key part stands for.
pub(super) fn coord_of(bits: u64) -> Option<f64> {
    (bits != MISSING).then(|| f64::from_bits(bits))
}

/// A row's key and sums, given the chunk's scratch state (a cache, say) and the row index;
/// `None` when the row does not count.
pub(super) type RowFn<'a, K, S> = dyn Fn(&mut S, usize) -> Option<(K, Sums)> + Sync + 'a;

/// Rows per chunk of parallel work.
const CHUNK: usize = 1 << 16;

/// A key made of 64-bit words (coordinate bits, cells), hashed word by word: a byte-slice hash
/// of the whole array cost a fifth of the reduction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Words<K>(K);

impl<const N: usize> Hash for Words<[u64; N]> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for w in self.0 {
            state.write_u64(w);
        }
    }
}

/// A table of groups in order of first appearance. Each entry holds its sums beside its key
/// (one memory access a row, not two), with its place in that order.
struct Table<K> {
    index: HashMap<Words<K>, (usize, Sums), FixedState>,
}

impl<K: Copy + Eq> Table<K>
where
    Words<K>: Hash,
{
    fn new() -> Self {
        Table { index: HashMap::default() }
    }

    #[inline]
    fn add(&mut self, key: K, sums: &Sums) {
        let next = self.index.len();
        self.index.entry(Words(key)).or_insert((next, Sums::default())).1.add(sums);
    }

    /// The groups in order of first appearance, leaving the table empty with its room kept for
    /// the next chunk.
    fn take(&mut self) -> Vec<(K, Sums)> {
        let n = self.index.len();
        let mut out = Vec::new();
        for (Words(key), (at, sums)) in self.index.drain() {
            if out.is_empty() {
                out = vec![(key, Sums::default()); n];
            }
            out[at] = (key, sums);
        }
        out
    }
}

/// Distinct keys with their sums over rows `0..len`, in order of first appearance. Meant for
/// keys far fewer than rows (each chunk's table is merged once). Chunks are reduced a window at a
/// time and merged in order as each window ends, so memory holds a few chunks' tables, not all
/// of them (at 10M customers in 50k places, all of them were 370 MB); a worker's table keeps its
/// room from chunk to chunk.
pub(super) fn sum_by_key<K, S>(len: usize, row: &RowFn<'_, K, S>) -> Vec<(K, Sums)>
where
    K: Eq + Copy + Send + Sync,
    Words<K>: Hash,
    S: Default,
{
    let chunks = len.div_ceil(CHUNK);
    let window = rayon::current_num_threads().max(1) * 4;
    let mut all = Table::new();
    for first in (0..chunks).step_by(window) {
        let tables: Vec<Vec<(K, Sums)>> = (first..(first + window).min(chunks))
            .into_par_iter()
            .map_init(Table::new, |table, c| {
                let mut scratch = S::default();
                for i in c * CHUNK..((c + 1) * CHUNK).min(len) {
                    if let Some((key, sums)) = row(&mut scratch, i) {
                        table.add(key, &sums);
                    }
                }
                table.take()
            })
            .collect();
        for (key, sums) in tables.iter().flatten() {
            all.add(*key, sums);
        }
    }
    all.take()
}

/// Whether the keys of a sample of rows are mostly distinct (more than nine in ten of the
/// sample): then grouping by key first saves little, and costs a table as large as the data.
/// Below that, places repeat, and one H3 computation per place beats a cache of cells per row
/// (measured on 10M customers at 50k work places, where 3 in 5 of the sample were distinct:
/// 0.56 s by place, 0.69 s by row).
pub(super) fn mostly_distinct<K: Hash + Eq>(len: usize, key_of: impl Fn(usize) -> Option<K>) -> bool {
    const SAMPLE: usize = 20_000;
    let step = (len / SAMPLE).max(1);
    let mut seen: std::collections::HashSet<K, FixedState> = std::collections::HashSet::default();
    let mut sampled = 0usize;
    for i in (0..len).step_by(step).take(SAMPLE) {
        if let Some(k) = key_of(i) {
            seen.insert(k);
            sampled += 1;
        }
    }
    sampled > 0 && seen.len() * 10 > sampled * 9
}

/// A small direct-mapped cache of coordinate -> cell, so customers sharing a building's
/// coordinates cost one H3 computation per chunk rather than one each.
/// Misses go to a [`fast_h3::Indexer`] (h3o's cell to the bit, faster), made on the first miss.
pub(super) struct CellCache {
    slots: Vec<(u64, u64, u64)>,
    indexer: Option<Indexer>,
}

impl Default for CellCache {
    fn default() -> Self {
        CellCache { slots: vec![(MISSING, MISSING, MISSING); 1 << 12], indexer: None }
    }
}

impl CellCache {
    /// The cell at `res` of the coordinate with bits (`lat`, `lng`); [`MISSING`] for no place.
    #[inline]
    pub fn cell(&mut self, lat: u64, lng: u64, res: Res) -> u64 {
        if lat == MISSING {
            return MISSING;
        }
        let slot = (FixedState::default().hash_one((lat, lng)) >> 52) as usize;
        let (l, g, c) = self.slots[slot];
        if l == lat && g == lng {
            return c;
        }
        // One cache serves one reduction, at one resolution.
        let indexer = self.indexer.get_or_insert_with(|| Indexer::new(res));
        debug_assert_eq!(indexer.res(), res);
        let cell = indexer.cell(f64::from_bits(lat), f64::from_bits(lng)).unwrap_or(MISSING);
        self.slots[slot] = (lat, lng, cell);
        cell
    }
}

/// A f64 column as one contiguous arrow array, for row access without per-row chunk lookups.
pub(crate) struct F64s(Option<<Float64Type as PolarsDataType>::Array>);

impl F64s {
    pub fn new(c: &Column) -> Result<Self> {
        Ok(F64s(c.f64()?.rechunk().downcast_iter().next().cloned()))
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<f64> {
        self.0.as_ref().and_then(|a| a.get(i))
    }
}

/// A boolean column (nulls false) as one contiguous arrow array.
pub(super) struct Flags(Option<<BooleanType as PolarsDataType>::Array>);

impl Flags {
    pub fn new(c: &Column) -> Result<Self> {
        Ok(Flags(c.bool()?.rechunk().downcast_iter().next().cloned()))
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.0.as_ref().and_then(|a| a.get(i)).unwrap_or(false)
    }
}

/// Checks that a set of columns has the expected length (a broken invariant, not user input).
pub(super) fn same_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Internal(format!("{what}: {got} rows where {want} were expected")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places that repeat (3 in 5 of a sample distinct, as at 50k work places for 10M
    /// customers) are grouped first; places that do not are reduced by row.
    #[test]
    fn rows_are_chosen_only_when_places_barely_repeat() {
        let n = 1_000_000;
        assert!(!mostly_distinct(n, |i| Some(i % 50_000 * 3 / 5 + (i / 50_000) % 2)));
        assert!(!mostly_distinct(n, |i| Some(i % 12_000)));
        assert!(mostly_distinct(n, Some));
        assert!(!mostly_distinct(n, |_| None::<usize>));
    }

    /// Groups come out in order of first appearance with every row's sums, whatever the chunks.
    #[test]
    fn sums_by_key_in_order_of_first_appearance() {
        let len = CHUNK * 3 + 17;
        let row = |_: &mut (), i: usize| {
            (i % 7 != 0)
                .then(|| ([(i * 31 % 1000) as u64, 1], Sums { customers: 1, revenue: i as f64, ..Sums::default() }))
        };
        let got = sum_by_key(len, &row);
        let mut want: Vec<([u64; 2], Sums)> = Vec::new();
        for i in 0..len {
            let Some((k, s)) = row(&mut (), i) else { continue };
            match want.iter_mut().find(|(w, _)| *w == k) {
                Some((_, t)) => t.add(&s),
                None => want.push((k, s)),
            }
        }
        assert_eq!(got.len(), want.len());
        for ((gk, gs), (wk, ws)) in got.iter().zip(&want) {
            assert_eq!((gk, gs.customers), (wk, ws.customers));
            assert!((gs.revenue - ws.revenue).abs() <= 1e-9 * ws.revenue.abs());
        }
    }
}
