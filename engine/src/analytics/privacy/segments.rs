//! Released segments: the defence of segment filters against differencing.
//!
//! The floor and the [release ledger](super::ledger) guard each figure. A segment that differs
//! from an earlier one by a single person still moves the answer's totals, shares and whichever
//! cell that person is in: `budget >= 310000` against `budget > 310000`, when one customer's
//! budget is exactly 310,000 and the reader knows it, tells where that customer lives. No
//! condition in either filter is "low effect": each threshold is a plain, large segment.
//!
//! So the server keeps, per dataset, the members of every segment it has answered (one bit per
//! customer) and answers a new segment that differs from an earlier one by 1 to k-1 customers
//! **as that earlier one**. Any two segments answered are then the same people or at least `k`
//! apart, whatever the filters' text. The reader cannot tell a replayed answer from a segment that
//! truly is the earlier one (their answers are identical, and both are answered from the earlier
//! segment's work), so a replay tells only that the two filters differ by fewer than `k` people,
//! not where those people are. What this pairwise rule does not cover, as the ledger's: three or
//! more segments, pairwise `k` apart, combined by inclusion-exclusion; and the bit "fewer than `k`
//! apart" itself, which a reader can use to search thresholds for where the k-th customer falls.
//! Everyone (no filter) counts as answered.
//!
//! Memory is one bit per customer per distinct segment answered; a dataset keeps at most
//! [`MAX_SEGMENT_BYTES`] of them, and a new segment past that is refused (the sets cannot be
//! forgotten without losing the guarantee).

use polars::prelude::{DataFrame, IntoLazy};

use super::ledger::Ledger;
use crate::analytics::segment::Segment;
use crate::error::{Error, Result};

/// The most memory one dataset's answered segments may hold.
pub const MAX_SEGMENT_BYTES: usize = 256 << 20;

/// Ledger scope under which answered segments' texts are recorded (key: the text).
pub const SEGMENT_SCOPE: &str = "segment";

/// The members of one segment: a bit per customer row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    bits: Vec<u64>,
    count: u64,
}

impl Members {
    /// Which rows of `customers` satisfy `segment` (`None`: every row).
    pub fn of(customers: &DataFrame, segment: Option<&Segment>) -> Result<Members> {
        let n = customers.height();
        let mut bits = vec![0u64; n.div_ceil(64)];
        match segment {
            None => {
                for i in 0..n {
                    bits[i / 64] |= 1 << (i % 64);
                }
            }
            Some(seg) => {
                let out = customers.clone().lazy().select([seg.expr.clone().alias("m")]).collect()?;
                let m = out.column("m")?.bool()?.clone();
                if m.len() != n {
                    return Err(Error::Internal(format!("segment gave {} rows for {n} customers", m.len())));
                }
                for (i, v) in m.iter().enumerate() {
                    if v == Some(true) {
                        bits[i / 64] |= 1 << (i % 64);
                    }
                }
            }
        }
        let count = bits.iter().map(|w| u64::from(w.count_ones())).sum();
        Ok(Members { bits, count })
    }

    /// How many customers are in one set and not the other.
    #[must_use]
    pub fn distance(&self, other: &Members) -> u64 {
        debug_assert_eq!(self.bits.len(), other.bits.len(), "sets of one dataset version");
        self.bits.iter().zip(&other.bits).map(|(a, b)| u64::from((a ^ b).count_ones())).sum()
    }

    /// How many customers are in the set.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.count
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn bytes(&self) -> usize {
        self.bits.len() * 8
    }
}

/// The segments answered for one version of a dataset's customers: rebuilt from the ledger's
/// recorded texts (the ledger outlives versions and restarts; the bit sets do not).
#[derive(Debug)]
pub struct AnsweredSegments {
    version: u64,
    /// How many of the ledger's segment texts are in `sets`.
    synced: usize,
    /// `None`: everyone; else the filter as applied. The first entry is everyone.
    sets: Vec<(Option<String>, Members)>,
}

/// What a segment is answered as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// As asked: a new segment, at least `k` customers from each answered before.
    AsAsked,
    /// As the earliest answered segment within k-1 customers of it (`None`: everyone). The same
    /// people (0 apart) are answered this way too, so a replay of a segment 1 to k-1 apart takes
    /// the same path (and time: the earlier segment's cached work) as a filter that truly
    /// selects the earlier segment's people.
    As(Option<String>),
}

impl AnsweredSegments {
    /// The answered segments of `customers` (dataset version `version`): everyone; the texts
    /// the ledger recorded are added by [`Self::sync`].
    pub fn new(version: u64, customers: &DataFrame) -> Result<Self> {
        Ok(AnsweredSegments { version, synced: 0, sets: vec![(None, Members::of(customers, None)?)] })
    }

    /// The dataset version these sets were built for.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Adds the sets of the segment texts `ledger` recorded since the last call, under floor
    /// `k`: on customers that changed since (a new upload under the same id), a text within
    /// k-1 customers of one added before is not added (it is then answered as that one), so the
    /// sets stay pairwise k or more apart.
    pub fn sync(&mut self, ledger: &Ledger, customers: &DataFrame, k: u32) {
        let texts = ledger.segments();
        while self.synced < texts.len() {
            let text = &texts[self.synced];
            self.synced += 1;
            // A text the customers of this version cannot answer (a column gone or retyped in a
            // new upload) cannot be asked of them either.
            let Ok(seg) = Segment::parse(text, customers.schema()) else { continue };
            let Ok(members) = Members::of(customers, Some(&seg)) else { continue };
            if self.nearest(&members, k).is_none() {
                self.sets.push((Some(text.clone()), members));
            }
        }
    }

    /// The earliest answered set within k-1 customers of `members` (0 included).
    fn nearest(&self, members: &Members, k: u32) -> Option<usize> {
        let k = u64::from(k);
        let mut best: Option<(u64, usize)> = None;
        for (i, (_, set)) in self.sets.iter().enumerate() {
            // Sets whose sizes differ by k or more are k or more apart.
            if set.len().abs_diff(members.len()) >= k {
                continue;
            }
            let d = set.distance(members);
            if d < k && best.is_none_or(|(b, _)| d < b) {
                best = Some((d, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// What segment `text` (with members `members`) is answered as, under floor `k`; a new
    /// segment is recorded in `ledger` (call [`Self::sync`] first). Refuses a new segment once
    /// the sets would pass [`MAX_SEGMENT_BYTES`].
    pub fn answer(&mut self, ledger: &mut Ledger, text: &str, members: Members, k: u32) -> Result<Answered> {
        if let Some(i) = self.nearest(&members, k) {
            return Ok(Answered::As(self.sets[i].0.clone()));
        }
        let used: usize = self.sets.iter().map(|(_, m)| m.bytes()).sum();
        if used + members.bytes() > MAX_SEGMENT_BYTES {
            return Err(Error::bad_input(format!(
                "this dataset has answered {} distinct segments, as many as the server keeps to guard them against differencing; ask with a segment answered before",
                self.sets.len() - 1
            )));
        }
        ledger.record(SEGMENT_SCOPE, text, 0.0);
        self.sets.push((Some(text.to_string()), members));
        // Recorded by this call: already in the sets.
        self.synced = ledger.segments().len();
        Ok(Answered::AsAsked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn city() -> DataFrame {
        // Budgets 100k..4M in steps of 100k; one customer (i = 7) holds 800,000 alone.
        df!(
            "budget" => (1..=40).map(|i| f64::from(i) * 100_000.0).collect::<Vec<_>>(),
            "age_band" => (0..40).map(|i| if i % 2 == 0 { "35-44" } else { "45-54" }).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn ask(seen: &mut AnsweredSegments, ledger: &mut Ledger, customers: &DataFrame, text: &str) -> Answered {
        seen.sync(ledger, customers, 5);
        let seg = Segment::parse(text, customers.schema()).unwrap();
        let members = Members::of(customers, Some(&seg)).unwrap();
        seen.answer(ledger, text, members, 5).unwrap()
    }

    #[test]
    fn a_segment_one_person_from_an_answered_one_is_answered_as_it() {
        let customers = city();
        let mut ledger = Ledger::new();
        let mut seen = AnsweredSegments::new(1, &customers).unwrap();
        assert_eq!(ask(&mut seen, &mut ledger, &customers, "budget >= 800000"), Answered::AsAsked);
        assert_eq!(
            ask(&mut seen, &mut ledger, &customers, "budget > 800000"),
            Answered::As(Some("budget >= 800000".into()))
        );
        // The same people under another text: answered as the earlier text (the same path and
        // time as a replay), nothing new recorded.
        assert_eq!(
            ask(&mut seen, &mut ledger, &customers, "budget > 750000"),
            Answered::As(Some("budget >= 800000".into()))
        );
        assert_eq!(ledger.segments().len(), 1);
        // Within k of everyone: answered as everyone.
        assert_eq!(ask(&mut seen, &mut ledger, &customers, "budget > 200000"), Answered::As(None));
        // k or more apart from each: a new segment.
        assert_eq!(ask(&mut seen, &mut ledger, &customers, "budget > 2000000"), Answered::AsAsked);
        assert_eq!(ledger.segments().len(), 2);
        // Nearest wins: 1 from the second, 23 from the first.
        assert_eq!(
            ask(&mut seen, &mut ledger, &customers, "budget > 2100000"),
            Answered::As(Some("budget > 2000000".into()))
        );
    }

    #[test]
    fn answered_segments_are_pairwise_the_same_or_k_apart_whatever_is_asked() {
        let customers = city();
        let mut ledger = Ledger::new();
        let mut seen = AnsweredSegments::new(1, &customers).unwrap();
        let mut answered: Vec<Members> = vec![Members::of(&customers, None).unwrap()];
        for lo in (0..=40).step_by(3) {
            for band in ["", " AND age_band = '35-44'", " OR age_band = '45-54'"] {
                let text = format!("budget >= {}{band}", lo * 100_000);
                let applied = match ask(&mut seen, &mut ledger, &customers, &text) {
                    Answered::AsAsked => Some(text),
                    Answered::As(earlier) => earlier,
                };
                let seg = applied.map(|t| Segment::parse(&t, customers.schema()).unwrap());
                answered.push(Members::of(&customers, seg.as_ref()).unwrap());
            }
        }
        for a in &answered {
            for b in &answered {
                let d = a.distance(b);
                assert!(d == 0 || d >= 5, "two answers {d} customers apart");
            }
        }
    }

    #[test]
    fn the_sets_are_rebuilt_from_the_ledger_for_a_new_version() {
        let customers = city();
        let mut ledger = Ledger::new();
        let mut seen = AnsweredSegments::new(1, &customers).unwrap();
        ask(&mut seen, &mut ledger, &customers, "budget >= 800000");
        let mut again = AnsweredSegments::new(2, &customers).unwrap();
        assert_eq!(
            ask(&mut again, &mut ledger, &customers, "budget > 800000"),
            Answered::As(Some("budget >= 800000".into()))
        );
        // Texts recorded k apart on other customers, now 2 apart: the later one is not rebuilt
        // as a set of its own, so it is answered as the earlier one.
        ledger.record(SEGMENT_SCOPE, "budget >= 1000000", 0.0);
        ledger.record(SEGMENT_SCOPE, "budget >= 9000000", 0.0);
        let mut third = AnsweredSegments::new(3, &customers).unwrap();
        assert_eq!(
            ask(&mut third, &mut ledger, &customers, "budget >= 1000000"),
            Answered::As(Some("budget >= 800000".into()))
        );
        // A text these customers cannot evaluate is skipped, not an error for every request.
        ledger.record(SEGMENT_SCOPE, "salary > 1", 0.0);
        let mut fourth = AnsweredSegments::new(4, &customers).unwrap();
        assert_eq!(ask(&mut fourth, &mut ledger, &customers, "budget >= 2500000"), Answered::AsAsked);
    }
}
