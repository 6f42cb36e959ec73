//! The release ledger: the defence of exact figures against differencing.
//!
//! The floor makes every released count of a cell or row at least `k` people. It does not stop a
//! reader who asks twice: `budget < 1000001` and `budget < 1000000` at res 12 give two counts of
//! the same cell that may both clear the floor and differ by one person, who is then located; a
//! lookback window one day longer moves one deal's revenue from one channel to another. What the
//! reader learns from two releases of the same figure is their difference, so the ledger keeps
//! every count it has released for each figure (a table, a column and a row key: a cell's
//! `prospects` at `work`, a channel's `conversions` under `markov`) and releases a new value only
//! when it equals each earlier one or differs from it by at least `k`. A value that does not is
//! withheld (the caller decides how: a heatmap drops the cell, a table nulls the figures the
//! count covers); withheld values are not recorded.
//!
//! So the released values of any one figure are pairwise 0 or at least `k` apart, whatever the
//! filters, windows, floors or data versions that produced them (the ledger is kept per dataset
//! id, so an upload that adds one customer cannot be differenced against the one before). What a
//! reader can still learn: that a figure was withheld, i.e. that it differs from an earlier one
//! by 1 to k-1; and combinations of three or more releases (inclusion-exclusion over unions and
//! intersections of segments), which this pairwise rule does not cover.
//!
//! The ledger is bounded by what it records: the values of one figure are at least `k` apart and
//! lie between 0 and the figure's population, so a figure holds at most `population / k + 1`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{BufRead, Write};

use polars::prelude::*;

use crate::error::{Error, Result};

/// Two released values of a figure closer than this (relative) are the same value: fractional
/// credits summed in another order differ in the last bits.
const SAME: f64 = 1e-9;

/// One released figure: which table and column (`scope`), and which row or cell (`key`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub scope: String,
    pub key: String,
    pub value: f64,
}

/// Every count released per figure, and the records added since the last [`Ledger::take_fresh`].
#[derive(Debug, Default)]
pub struct Ledger {
    released: HashMap<u64, Vec<f64>>,
    /// The texts recorded under [`super::segments::SEGMENT_SCOPE`], in order.
    segments: Vec<String>,
    fresh: Vec<Record>,
    hasher: foldhash::quality::FixedState,
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= SAME * a.abs().max(b.abs()).max(1.0)
}

impl Ledger {
    #[must_use]
    pub fn new() -> Self {
        Ledger::default()
    }

    fn slot(&self, scope: &str, key: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        scope.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    }

    /// Whether `value` may be released for (`scope`, `key`): it equals, or differs by at least
    /// `k` from, every value released before.
    #[must_use]
    pub fn admits(&self, scope: &str, key: &str, value: f64, k: f64) -> bool {
        self.released
            .get(&self.slot(scope, key))
            .is_none_or(|vs| vs.iter().all(|&v| same(v, value) || (v - value).abs() >= k))
    }

    /// Notes that `value` was released for (`scope`, `key`).
    pub fn record(&mut self, scope: &str, key: &str, value: f64) {
        let slot = self.slot(scope, key);
        let values = self.released.entry(slot).or_default();
        if !values.iter().any(|&v| same(v, value)) {
            values.push(value);
            if scope == super::segments::SEGMENT_SCOPE {
                self.segments.push(key.to_string());
            }
            self.fresh.push(Record { scope: scope.to_string(), key: key.to_string(), value });
        }
    }

    /// The segment texts answered, in the order they were first answered.
    #[must_use]
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// How many distinct values are recorded, over all figures.
    #[must_use]
    pub fn len(&self) -> usize {
        self.released.values().map(Vec::len).sum()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.released.is_empty()
    }

    /// The records added since the last call (to append to the ledger's file).
    pub fn take_fresh(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.fresh)
    }

    /// Reads a ledger written by [`write_records`]. A last line cut short by a crash is skipped;
    /// any other unreadable line is an error (a ledger must not be silently emptied).
    pub fn read(reader: impl BufRead) -> Result<Ledger> {
        let mut ledger = Ledger::new();
        let mut lines = reader.lines().peekable();
        let mut n = 0usize;
        while let Some(line) = lines.next() {
            n += 1;
            let line = line.map_err(|e| Error::Internal(format!("release ledger line {n}: {e}")))?;
            let last = lines.peek().is_none();
            match serde_json::from_str::<(String, String, f64)>(&line) {
                Ok((scope, key, value)) => ledger.record(&scope, &key, value),
                Err(_) if last => break,
                Err(e) => return Err(Error::Internal(format!("release ledger line {n} is not a record: {e}"))),
            }
        }
        ledger.fresh.clear();
        Ok(ledger)
    }

    /// For each row of `table`: whether its `count` column conflicts with an earlier release of
    /// the figure (`scope`/`count`, the row's `keys`). Null counts never conflict.
    pub fn conflicts(&self, table: &DataFrame, scope: &str, keys: &[&str], count: &str, k: f64) -> Result<Vec<bool>> {
        let Ok(counts) = table.column(count) else { return Ok(vec![false; table.height()]) };
        let counts = counts.cast(&DataType::Float64)?;
        let counts = counts.f64()?;
        let scope = format!("{scope}/{count}");
        let row_keys = row_keys(table, keys)?;
        Ok(counts.iter().zip(&row_keys).map(|(v, key)| v.is_some_and(|v| !self.admits(&scope, key, v, k))).collect())
    }

    /// Records the non-null values of `count` in `table` as released.
    pub fn record_table(&mut self, table: &DataFrame, scope: &str, keys: &[&str], count: &str) -> Result<()> {
        let Ok(counts) = table.column(count) else { return Ok(()) };
        let counts = counts.cast(&DataType::Float64)?;
        let scope = format!("{scope}/{count}");
        for (v, key) in counts.f64()?.iter().zip(row_keys(table, keys)?) {
            if let Some(v) = v {
                self.record(&scope, &key, v);
            }
        }
        Ok(())
    }

    /// The ledger on a table of rows: for each `(count, figures)` group, a row whose count
    /// conflicts with an earlier release has the group's figures withheld (null); then the counts
    /// still released are recorded. Returns the table and how many rows had a figure withheld.
    pub fn withhold_table(
        &mut self,
        table: DataFrame,
        scope: &str,
        keys: &[&str],
        k: f64,
        groups: &[(&str, &[&str])],
    ) -> Result<(DataFrame, usize)> {
        let masks: Vec<Vec<bool>> =
            groups.iter().map(|(count, _)| self.conflicts(&table, scope, keys, count, k)).collect::<Result<_>>()?;
        let any: Vec<bool> = (0..table.height()).map(|i| masks.iter().any(|m| m[i])).collect();
        let withheld = any.iter().filter(|&&b| b).count();
        let mut out = table;
        for ((_, figures), mask) in groups.iter().zip(&masks) {
            out = super::withhold_where(out, mask, figures)?;
        }
        for (count, _) in groups {
            self.record_table(&out, scope, keys, count)?;
        }
        Ok((out, withheld))
    }
}

/// Appends `records` to a ledger file, one JSON array per line, and syncs it.
pub fn write_records(file: &mut std::fs::File, records: &[Record]) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::with_capacity(records.len() * 48);
    for r in records {
        serde_json::to_writer(&mut buf, &(&r.scope, &r.key, r.value)).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    file.write_all(&buf)?;
    file.sync_data()
}

/// Each row's key: its `keys` columns' values, joined.
fn row_keys(table: &DataFrame, keys: &[&str]) -> Result<Vec<String>> {
    let mut out = vec![String::new(); table.height()];
    for name in keys {
        let c = table.column(name)?.cast(&DataType::String)?;
        for (slot, v) in out.iter_mut().zip(c.str()?.iter()) {
            if !slot.is_empty() {
                slot.push('\u{1f}');
            }
            slot.push_str(v.unwrap_or("\u{0}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_closer_than_k_conflict_and_equal_ones_do_not() {
        let mut l = Ledger::new();
        assert!(l.admits("s", "a", 7.0, 5.0));
        l.record("s", "a", 7.0);
        assert!(l.admits("s", "a", 7.0, 5.0));
        assert!(!l.admits("s", "a", 8.0, 5.0));
        assert!(!l.admits("s", "a", 3.0, 5.0));
        assert!(l.admits("s", "a", 12.0, 5.0));
        assert!(l.admits("s", "a", 2.0, 5.0));
        assert!(l.admits("s", "b", 8.0, 5.0), "another key is another figure");
        assert!(l.admits("t", "a", 8.0, 5.0), "another scope is another figure");
        assert!(l.admits("s", "a", 7.0 + 1e-12, 5.0), "rounding is not a difference");
        l.record("s", "a", 12.0);
        assert!(!l.admits("s", "a", 9.5, 5.0), "every earlier value counts");
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn a_table_withholds_conflicting_figures_and_records_the_rest() {
        let mut l = Ledger::new();
        let groups: &[(&str, &[&str])] = &[("deals", &["deals", "revenue"])];
        let t1 = df!("channel" => ["a", "b"], "deals" => [10i64, 20], "revenue" => [1.0, 2.0]).unwrap();
        let (out, n) = l.withhold_table(t1, "funnel", &["channel"], 5.0, groups).unwrap();
        assert_eq!(n, 0);
        assert_eq!(out.column("revenue").unwrap().null_count(), 0);
        let t2 = df!("channel" => ["a", "b"], "deals" => [11i64, 30], "revenue" => [9.0, 3.0]).unwrap();
        let (out, n) = l.withhold_table(t2, "funnel", &["channel"], 5.0, groups).unwrap();
        assert_eq!(n, 1);
        let revenue = out.column("revenue").unwrap().f64().unwrap().clone();
        assert_eq!(revenue.get(0), None, "one deal more than before: withheld");
        assert_eq!(revenue.get(1), Some(3.0));
        assert_eq!(out.column("deals").unwrap().i64().unwrap().get(0), None);
        assert!(l.admits("funnel/deals", "b", 30.0, 5.0));
        assert!(!l.admits("funnel/deals", "b", 26.0, 5.0), "30 was recorded");
        assert!(l.admits("funnel/deals", "a", 16.0, 5.0), "the withheld 11 was not recorded");
        assert!(out.column("__ledger_0").is_err());
    }

    #[test]
    fn the_file_round_trips_and_a_torn_last_line_is_skipped() {
        let mut l = Ledger::new();
        l.record("heatmap/work/prospects", "8928308280fffff", 7.0);
        l.record("attribution/conversions", "markov\u{1f}tiktok", 3.25);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger");
        let mut f = std::fs::File::create(&path).unwrap();
        write_records(&mut f, &l.take_fresh()).unwrap();
        assert!(l.take_fresh().is_empty());
        f.write_all(b"[\"heatmap/work/prospects\",\"89").unwrap();
        drop(f);
        let back = Ledger::read(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        assert_eq!(back.len(), 2);
        assert!(!back.admits("heatmap/work/prospects", "8928308280fffff", 8.0, 5.0));
        assert!(!back.admits("attribution/conversions", "markov\u{1f}tiktok", 4.0, 5.0));
        let garbled = b"not json\n[\"s\",\"k\",1.0]\n";
        assert!(Ledger::read(&garbled[..]).is_err(), "a bad line before the end is an error");
    }
}
