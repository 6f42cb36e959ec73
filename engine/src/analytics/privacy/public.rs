//! The public release: differentially private heatmaps for readers without a token (SPEC §3).
//!
//! Design (one of the two SPEC allows): a fixed lattice of releases per dataset version, every
//! location mode (`home`, `work`, `both`) at each resolution the operator declares, no segment
//! filter. Each release is computed once per dataset version and served from then on, so
//! repeating or varying a public request spends nothing; every other public request is refused.
//!
//! Guarantee: the whole lattice is (ε, δ)-differentially private for adding or removing one
//! customer (with their deals), by basic composition of its releases, each (ε/n, δ/n):
//! - **Contribution bounding.** A customer counts in at most one cell per release in `home` and
//!   `work` mode and in at most two in `both` (their home and work cells, once if they share one).
//!   Purchasing power is the budget (or, with none, the largest signed deal) clamped to
//!   `[0, budget_cap]` and rounded to whole units of [`UNIT`] yuan.
//! - **Noise.** Per cell, customers, buyers and purchasing power each get integer discrete Laplace
//!   noise ([`super::noise`]) of scale Δ/ε_part, Δ the most one customer can change that figure in
//!   one cell times the number of cells they count in; ε_part is 1/2, 1/4 and 1/4 of the release's ε.
//! - **Which cells.** Only cells with at least one customer are candidates, and one is published
//!   when its noisy customer count reaches a threshold τ, set so that a cell that exists because
//!   of one person is published with probability at most δ/n (Korolova et al. 2009; Wilson et al.
//!   2020, "Differentially private SQL with bounded user contribution").
//! - **Post-processing** (free): noisy counts are clamped to be consistent (buyers within
//!   customers), shares and conversion are computed from the noisy figures.
//! Deals and revenue are not released to the public.

use std::collections::HashMap;

use polars::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::noise::{discrete_laplace, tail, Ratio};
use crate::analytics::heatmap::groups::F64s;
use crate::analytics::Location;
use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::spatial::h3::{self, Res};

/// Purchasing power is released in whole units of this many yuan.
pub const UNIT: f64 = 10_000.0;

/// The operator's public-release parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicParams {
    /// Total ε of the whole lattice for one dataset version.
    pub epsilon: f64,
    /// Total δ of the whole lattice for one dataset version.
    pub delta: f64,
    /// The resolutions released (every location mode at each).
    pub resolutions: Vec<u8>,
    /// A customer's purchasing power is clamped to `[0, budget_cap]` yuan.
    pub budget_cap: f64,
}

impl Default for PublicParams {
    fn default() -> Self {
        PublicParams { epsilon: 8.0, delta: 1e-6, resolutions: vec![6, 7, 8, 9], budget_cap: 10_000_000.0 }
    }
}

/// The locations every resolution is released for.
pub const LOCATIONS: [Location; 3] = [Location::Home, Location::Work, Location::Both];

impl PublicParams {
    /// Checks what an operator can get wrong.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::bad_input(m));
        if !(self.epsilon.is_finite() && self.epsilon > 0.0 && self.epsilon <= 100.0) {
            return bad(format!("public epsilon must be in (0, 100], got {}", self.epsilon));
        }
        if !(self.delta > 0.0 && self.delta < 1e-3) {
            return bad(format!("public delta must be in (0, 0.001), got {}", self.delta));
        }
        if self.resolutions.is_empty() || self.resolutions.iter().any(|r| *r > 15) {
            return bad(format!("public resolutions must be 1 to 16 values in 0-15, got {:?}", self.resolutions));
        }
        if !(self.budget_cap.is_finite() && self.budget_cap >= UNIT) {
            return bad(format!("public budget cap must be at least {UNIT} yuan, got {}", self.budget_cap));
        }
        Ok(())
    }

    /// Number of releases in the lattice (the composition count).
    #[must_use]
    pub fn releases(&self) -> usize {
        self.resolutions.len() * LOCATIONS.len()
    }

    /// Whether (`location`, `res`) is in the lattice.
    #[must_use]
    pub fn serves(&self, res: Res) -> bool {
        self.resolutions.contains(&res.get())
    }

    /// The noise and threshold of one release.
    #[must_use]
    pub fn mechanism(&self, location: Location) -> Mechanism {
        let n = self.releases() as f64;
        let (eps, delta) = (self.epsilon / n, self.delta / n);
        let cells_per_person: u64 = if location == Location::Both { 2 } else { 1 };
        let cap_units = (self.budget_cap / UNIT).floor() as u64;
        // Scales as exact rationals (denominator 10^6) so the sampler needs no float.
        let scale = |sensitivity: u64, eps: f64| Ratio::approx(sensitivity as f64 / eps, 1_000_000);
        let customers = scale(cells_per_person, eps / 2.0);
        let b = customers.num as f64 / customers.den as f64;
        // Smallest τ with cells_per_person · P(1 + Z >= τ) <= δ.
        let mut threshold: i64 = 2;
        while cells_per_person as f64 * tail(b, threshold - 1) > delta {
            threshold += 1;
        }
        Mechanism {
            epsilon: eps,
            delta,
            cells_per_person,
            customers,
            buyers: scale(cells_per_person, eps / 4.0),
            purchasing_power_units: scale(cells_per_person * cap_units, eps / 4.0),
            threshold,
            cap_units,
        }
    }
}

/// The noise of one release, stated in its response.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mechanism {
    pub epsilon: f64,
    pub delta: f64,
    /// Most cells one customer counts in.
    pub cells_per_person: u64,
    /// Discrete Laplace scales (as `num / den`).
    #[serde(serialize_with = "ratio")]
    pub customers: Ratio,
    #[serde(serialize_with = "ratio")]
    pub buyers: Ratio,
    /// In units of [`UNIT`] yuan.
    #[serde(serialize_with = "ratio")]
    pub purchasing_power_units: Ratio,
    /// A cell is published when its noisy customer count reaches this.
    pub threshold: i64,
    #[serde(skip)]
    pub cap_units: u64,
}

fn ratio<S: serde::Serializer>(r: &Ratio, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(r.num as f64 / r.den as f64)
}

/// Exact per-cell figures of one release before noise: customers, buyers, clamped purchasing
/// power units.
fn exact_cells(ds: &Dataset, location: Location, res: Res, cap_units: u64) -> Result<HashMap<u64, [i64; 3]>> {
    let c = &ds.customers;
    let n = c.height();
    let budget = F64s::new(c.column("budget")?)?;
    let coords =
        |lat: &str, lng: &str| -> Result<(F64s, F64s)> { Ok((F64s::new(c.column(lat)?)?, F64s::new(c.column(lng)?)?)) };
    let (home, work) = (coords("home_lat", "home_lng")?, coords("work_lat", "work_lng")?);
    // Largest signed deal per buyer (the heatmap's rule for a missing budget).
    let max_price = crate::analytics::heatmap::largest_signed_deal(ds)?;
    let cap = cap_units as f64;
    let mut cells: HashMap<u64, [i64; 3]> = HashMap::new();
    let mut indexer = crate::spatial::fast_h3::Indexer::new(res);
    for i in 0..n {
        let mut cell_of = |(lat, lng): &(F64s, F64s)| match (lat.get(i), lng.get(i)) {
            (Some(a), Some(b)) => indexer.cell(a, b),
            _ => None,
        };
        let mut mine: [Option<u64>; 2] = [None, None];
        if location != Location::Work {
            mine[0] = cell_of(&home);
        }
        if location != Location::Home {
            mine[1] = cell_of(&work);
        }
        if mine[0].is_some() && mine[0] == mine[1] {
            mine[1] = None;
        }
        let buyer = max_price[i].is_some();
        let pp = budget.get(i).or(max_price[i]).unwrap_or(0.0);
        let units = if pp.is_finite() { (pp / UNIT).round().clamp(0.0, cap) as i64 } else { 0 };
        for cell in mine.into_iter().flatten() {
            let e = cells.entry(cell).or_default();
            e[0] += 1;
            e[1] += i64::from(buyer);
            e[2] += units;
        }
    }
    Ok(cells)
}

/// One public release: cells `hex_id, res, customers, prospects, buyers, purchasing_power,
/// purchasing_power_share, conversion`, every figure noised, sorted by `hex_id`.
#[derive(Debug, Clone)]
pub struct PublicRelease {
    pub res: Res,
    pub location: Location,
    pub mechanism: Mechanism,
    pub cells: DataFrame,
    /// Sum of the published (noisy) customer counts.
    pub customers: i64,
}

impl PublicRelease {
    /// Draws the release of (`location`, `res`) with noise from the server's secret `key`
    /// (ChaCha20) on a stream named by the exact figures the release noises: the same figures
    /// give the same release (asking again spends nothing), and any change to any figure (a deal
    /// signed, a customer moved) gives fresh noise, never the same draws over other data, which
    /// would cancel in a difference and show the change exactly.
    pub fn build(
        ds: &Dataset,
        location: Location,
        res: Res,
        params: &PublicParams,
        key: &[u8; 32],
    ) -> Result<PublicRelease> {
        params.check()?;
        if !params.serves(res) {
            return Err(Error::bad_input(format!("res {} is not a public resolution", res.get())));
        }
        let m = params.mechanism(location);
        let exact = exact_cells(ds, location, res, m.cap_units)?;
        // A fixed order, so the same stream gives the same release.
        let mut keys: Vec<u64> = exact.keys().copied().collect();
        keys.sort_unstable();
        let mut rng = ChaCha20Rng::from_seed(*key);
        rng.set_stream(stream_of(location, res, &keys, &exact));
        let rng = &mut rng;
        let mut out: Vec<(u64, i64, i64, i64)> = Vec::new();
        for cell in keys {
            let [c, b, p] = exact[&cell];
            let customers = c + discrete_laplace(rng, m.customers);
            let buyers = b + discrete_laplace(rng, m.buyers);
            let pp = p + discrete_laplace(rng, m.purchasing_power_units);
            if customers < m.threshold {
                continue;
            }
            let buyers = buyers.clamp(0, customers);
            let pp = pp.clamp(0, customers.saturating_mul(m.cap_units as i64));
            out.push((cell, customers, buyers, pp));
        }
        let total_pp: f64 = out.iter().map(|r| r.3 as f64 * UNIT).sum();
        let customers: Vec<i64> = out.iter().map(|r| r.1).collect();
        let buyers: Vec<i64> = out.iter().map(|r| r.2).collect();
        let pp: Vec<f64> = out.iter().map(|r| r.3 as f64 * UNIT).collect();
        let share: Vec<Option<f64>> = pp.iter().map(|v| (total_pp > 0.0).then(|| v / total_pp)).collect();
        let conversion: Vec<f64> = out.iter().map(|r| r.2 as f64 / r.1 as f64).collect();
        let total = customers.iter().sum();
        let cells = DataFrame::new(
            out.len(),
            vec![
                Column::new("hex_id".into(), out.iter().map(|r| h3::hex_string(r.0)).collect::<Vec<_>>()),
                Column::new("res".into(), vec![i32::from(res.get()); out.len()]),
                Column::new("customers".into(), customers.clone()),
                Column::new("prospects".into(), customers),
                Column::new("buyers".into(), buyers),
                Column::new("purchasing_power".into(), pp),
                Column::new("purchasing_power_share".into(), share),
                Column::new("conversion".into(), conversion),
            ],
        )?;
        Ok(PublicRelease { res, location, mechanism: m, cells, customers: total })
    }
}

/// The noise stream of a release: a hash of everything it noises (its location, resolution and
/// every cell's exact figures, in cell order).
fn stream_of(location: Location, res: Res, cells: &[u64], exact: &HashMap<u64, [i64; 3]>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::quality::FixedState::with_seed(0x6375_7374_6d61_7021).build_hasher();
    h.write(location.as_str().as_bytes());
    h.write_u8(res.get());
    for cell in cells {
        h.write_u64(*cell);
        for x in exact[cell] {
            h.write_i64(x);
        }
    }
    h.finish()
}
