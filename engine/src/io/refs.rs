//! Resolving references to customers: the accepted customer row of each referenced id.
//!
//! Tables that refer to customers (touchpoints, deals) are often the largest, so this is one
//! pass over them and nothing more: a merge walk when both sides are sorted by id (most CRM
//! exports are), else a hash lookup of the accepted customer ids. Either way the references are
//! split into chunks resolved in parallel.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// One contiguous array of strings.
type Strings = <StringType as PolarsDataType>::Array;

/// Whether the non-null values are in non-decreasing byte order.
pub(crate) fn is_sorted(ids: &StringChunked) -> bool {
    let mut prev: Option<&str> = None;
    for v in ids.iter().flatten() {
        if prev.is_some_and(|p| v < p) {
            return false;
        }
        prev = Some(v);
    }
    true
}

/// The accepted customer ids, ready to resolve references against: built once per dataset and
/// used for every batch of every table that refers to customers.
pub(crate) struct Index<'a> {
    /// `None` when no customer was accepted.
    ids: Option<&'a Strings>,
    sorted: bool,
    /// Built on the first batch of references that cannot be merge-walked (ids or references
    /// not sorted).
    hash: std::sync::OnceLock<RowsById<'a>>,
}

impl<'a> Index<'a> {
    /// `ids` must be one chunk (rechunk first) and unique (accepted customer ids are).
    pub(crate) fn new(ids: &'a StringChunked) -> Result<Index<'a>> {
        Self::with_rows(ids, None)
    }

    /// [`Self::new`], with the table of row numbers by id already built over these ids (by the
    /// repeat check of unsorted customer ids: [`super::validate::Validated::id_rows`]).
    pub(crate) fn with_rows(ids: &'a StringChunked, rows: Option<hashbrown::HashTable<u32>>) -> Result<Index<'a>> {
        if ids.null_count() > 0 {
            return Err(Error::Internal("accepted customer ids contain a null".into()));
        }
        if ids.chunks().len() > 1 {
            return Err(Error::Internal("customer ids must be one chunk to be indexed".into()));
        }
        let array = ids.downcast_iter().next().filter(|a| a.len() > 0);
        if let Some(array) = array {
            IdxSize::try_from(array.len())
                .map_err(|_| Error::Internal(format!("{} customer rows are out of range", array.len())))?;
        }
        let hash = std::sync::OnceLock::new();
        if let (Some(array), Some(rows)) = (array, rows) {
            if rows.len() != array.len() {
                return Err(Error::Internal(format!("an id table of {} rows for {} ids", rows.len(), array.len())));
            }
            let _ = hash.set(RowsById { ids: array, rows });
            return Ok(Index { ids: Some(array), sorted: false, hash });
        }
        // Customer ids found sorted while checking them for repeats carry polars' flag.
        let sorted = ids.is_sorted_flag() == polars::series::IsSorted::Ascending || array.is_none_or(is_sorted_array);
        Ok(Index { ids: array, sorted, hash })
    }

    /// For each value of `refs`, the row of the equal id, or null (unknown id or null reference).
    pub(crate) fn resolve(&self, refs: &StringChunked, name: &str) -> IdxCa {
        let Some(ids) = self.ids else {
            return IdxCa::full_null(name.into(), refs.len());
        };
        let count = ids.len();
        let chunks: Vec<_> = refs.downcast_iter().collect();
        let parts: Vec<Vec<Option<IdxSize>>> = if self.sorted && is_sorted(refs) {
            chunks
                .par_iter()
                .map(|refs| {
                    let mut parts = Vec::with_capacity(refs.len());
                    // Start at the first id not below this chunk's first reference.
                    let mut at = refs.iter().flatten().next().map_or(0, |first| partition_point(ids, first));
                    for r in refs.iter() {
                        parts.push(r.and_then(|r| {
                            while at < count && ids.value(at) < r {
                                at += 1;
                            }
                            (at < count && ids.value(at) == r).then_some(at as IdxSize)
                        }));
                    }
                    parts
                })
                .collect()
        } else {
            let index = self.hash.get_or_init(|| {
                let mut index = RowsById::new(ids);
                for row in 0..count {
                    // Accepted ids are unique: every row goes in.
                    index.insert(row as u32);
                }
                index
            });
            chunks.par_iter().map(|refs| refs.iter().map(|r| r.and_then(|r| index.get(r))).collect()).collect()
        };
        let mut out: IdxCa = parts.into_iter().flatten().collect();
        out.rename(name.into());
        out
    }
}

/// The rows of an array of ids, found by id: a hash table of row numbers that hashes the ids
/// where they lie, 4 bytes (and a control byte) an id where a map from string slices to rows
/// takes 24, and no copy of the ids.
pub(crate) struct RowsById<'a> {
    ids: &'a Strings,
    rows: hashbrown::HashTable<u32>,
}

impl<'a> RowsById<'a> {
    pub(crate) fn new(ids: &'a Strings) -> Self {
        RowsById { ids, rows: hashbrown::HashTable::new() }
    }

    /// The table alone, to be given back ids with the same values at the same rows.
    pub(crate) fn into_rows(self) -> hashbrown::HashTable<u32> {
        self.rows
    }

    fn hash(id: &str) -> u64 {
        FixedState::default().hash_one(id)
    }

    /// Adds row `row` (below `u32::MAX`) unless an earlier row holds the same id: then returns
    /// that row and adds nothing. A null id is never added.
    pub(crate) fn insert(&mut self, row: u32) -> Option<u32> {
        let ids = self.ids;
        let id = ids.get(row as usize)?;
        let hash = Self::hash(id);
        match self.rows.entry(hash, |&r| ids.value(r as usize) == id, |&r| Self::hash(ids.value(r as usize))) {
            hashbrown::hash_table::Entry::Occupied(held) => Some(*held.get()),
            hashbrown::hash_table::Entry::Vacant(free) => {
                free.insert(row);
                None
            }
        }
    }

    /// The row added for `id`, if any.
    pub(crate) fn get(&self, id: &str) -> Option<IdxSize> {
        let ids = self.ids;
        self.rows.find(Self::hash(id), |&r| ids.value(r as usize) == id).map(|&r| r as IdxSize)
    }
}

/// For each value of `refs`, the index in `ids` of the equal value, or null (unknown id or null
/// reference). `ids` must be unique (accepted customer ids are).
pub(crate) fn resolve(ids: &StringChunked, refs: &StringChunked, name: &str) -> Result<IdxCa> {
    let ids = ids.rechunk();
    Ok(Index::new(&ids)?.resolve(refs, name))
}

fn is_sorted_array(ids: &Strings) -> bool {
    ids.values_iter().zip(ids.values_iter().skip(1)).all(|(a, b)| a <= b)
}

/// The first index whose id is not below `key` (ids sorted).
fn partition_point(ids: &Strings, key: &str) -> usize {
    let (mut lo, mut hi) = (0, ids.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ids.value(mid) < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[Option<&str>]) -> StringChunked {
        StringChunked::new("s".into(), v)
    }

    fn got(ids: &[Option<&str>], refs: &[Option<&str>]) -> Vec<Option<IdxSize>> {
        resolve(&strings(ids), &strings(refs), "row").unwrap().iter().collect()
    }

    #[test]
    fn sorted_and_unsorted_inputs_resolve_alike() {
        let ids = [Some("A"), Some("B"), Some("D"), Some("E")];
        let refs = [Some("A"), Some("A"), Some("C"), Some("D"), None, Some("E"), Some("F")];
        let want = vec![Some(0), Some(0), None, Some(2), None, Some(3), None];
        assert_eq!(got(&ids, &refs), want);
        // Unsorted references take the hash path and give the same rows.
        let shuffled = [Some("F"), Some("D"), Some("A"), None, Some("C"), Some("E"), Some("A")];
        assert_eq!(got(&ids, &shuffled), vec![None, Some(2), Some(0), None, None, Some(3), Some(0)]);
        // Unsorted ids too.
        let ids2 = [Some("E"), Some("A"), Some("D"), Some("B")];
        assert_eq!(got(&ids2, &refs), vec![Some(1), Some(1), None, Some(2), None, Some(0), None]);
    }

    /// The table of row numbers finds each id's first row, never adds a null, and tells a repeat
    /// from an id that only shares a hash bucket.
    #[test]
    fn rows_by_id_find_first_rows_and_repeats() {
        let ids: Vec<Option<String>> =
            (0..5000).map(|i| if i % 997 == 0 { None } else { Some(format!("id-{}", i % 3000)) }).collect();
        let ids = StringChunked::new("s".into(), &ids);
        let array = ids.downcast_iter().next().unwrap();
        let mut table = RowsById::new(array);
        for row in 0..5000u32 {
            let first = table.insert(row);
            let want = match ids.get(row as usize) {
                None => None,
                Some(_) if row < 3000 => None,
                Some(_) => (0..row).find(|r| ids.get(*r as usize) == ids.get(row as usize)),
            };
            assert_eq!(first, want, "row {row}");
        }
        assert_eq!(table.get("id-5"), Some(5));
        assert_eq!(table.get("id-2999"), Some(2999));
        assert_eq!(table.get("id-3000"), None);
        assert_eq!(table.get(""), None);
    }

    #[test]
    fn many_chunks_start_their_walk_in_the_right_place() {
        let ids: Vec<String> = (0..1000).map(|i| format!("C{i:05}")).collect();
        let ids = StringChunked::new("s".into(), &ids);
        let mut refs = StringChunked::new("s".into(), &[format!("C{:05}", 3), format!("C{:05}", 500)]);
        refs.append(&StringChunked::new("s".into(), &[format!("C{:05}", 501), "C99999".to_string()])).unwrap();
        refs.append(&StringChunked::new("s".into(), &[format!("C{:05}", 999)])).unwrap();
        assert!(refs.chunks().len() > 1);
        let out: Vec<Option<IdxSize>> = resolve(&ids, &refs, "row").unwrap().iter().collect();
        assert_eq!(out, vec![Some(3), Some(500), Some(501), None, Some(999)]);
    }
}
