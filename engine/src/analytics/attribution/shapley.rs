//! Shapley attribution over the channels of converting journeys.
//!
//! Characteristic function: v(S) = the conversions (or value) of journeys whose set of keys is a
//! subset of S — what the coalition S would have produced on its own. Exact by enumerating
//! coalitions for up to [`EXACT_MAX`] keys; beyond that, estimated from random permutations
//! with a standard error. (For this v the Shapley value also has the closed form
//! sum over journey sets T containing k of r(T)/|T|, which the tests use as an oracle.)

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::journeys::JourneyList;

/// Most keys computed exactly (2^12 coalitions).
pub const EXACT_MAX: usize = 12;
/// Permutations drawn beyond [`EXACT_MAX`].
pub const SAMPLES: usize = 4000;

/// Shapley credits and, when sampled, the largest standard error of a key's conversions.
#[derive(Debug, Clone)]
pub struct ShapleyCredit {
    pub credit: Vec<(f64, f64)>,
    pub std_error: Option<f64>,
}

/// Conversions and value per distinct key set of converting journeys.
fn coalition_worths(journeys: &JourneyList) -> HashMap<Vec<u32>, (f64, f64)> {
    let mut r: HashMap<Vec<u32>, (f64, f64)> = HashMap::new();
    for j in journeys.iter() {
        let Some((_, value)) = j.conversion else { continue };
        let mut set: Vec<u32> = j.touches.iter().map(|t| t.key).collect();
        set.sort_unstable();
        set.dedup();
        if set.is_empty() {
            continue;
        }
        let e = r.entry(set).or_default();
        e.0 += j.weight;
        e.1 += value;
    }
    r
}

/// Shapley credits per key.
#[must_use]
pub fn credit(journeys: &JourneyList, keys: usize, seed: u64) -> ShapleyCredit {
    let r = coalition_worths(journeys);
    let players: Vec<u32> = {
        let mut p: Vec<u32> = r.keys().flatten().copied().collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut out = vec![(0.0, 0.0); keys];
    if players.len() <= EXACT_MAX {
        let n = players.len();
        let pos: HashMap<u32, usize> = players.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let masks: Vec<(u32, (f64, f64))> =
            r.iter().map(|(set, w)| (set.iter().fold(0u32, |m, k| m | 1 << pos[k]), *w)).collect();
        let v = |s: u32| masks.iter().filter(|(t, _)| t & s == *t).fold((0.0, 0.0), |a, (_, w)| (a.0 + w.0, a.1 + w.1));
        let fact: Vec<f64> = (0..=n)
            .scan(1.0, |f, i| {
                if i > 0 {
                    *f *= i as f64;
                }
                Some(*f)
            })
            .collect();
        let worth: Vec<(f64, f64)> = (0..1u32 << n).map(v).collect();
        for (i, p) in players.iter().enumerate() {
            let mut phi = (0.0, 0.0);
            for s in 0..1u32 << n {
                if s & (1 << i) != 0 {
                    continue;
                }
                let size = s.count_ones() as usize;
                let weight = fact[size] * fact[n - size - 1] / fact[n];
                let with = worth[(s | 1 << i) as usize];
                phi.0 += weight * (with.0 - worth[s as usize].0);
                phi.1 += weight * (with.1 - worth[s as usize].1);
            }
            out[*p as usize] = phi;
        }
        return ShapleyCredit { credit: out, std_error: None };
    }
    // Sampled: in a random order, each journey set's worth goes to its last member to arrive.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = players.clone();
    let mut sum = vec![0.0; keys];
    let mut sum_sq = vec![0.0; keys];
    let mut value = vec![0.0; keys];
    let mut rank = vec![0usize; keys];
    for _ in 0..SAMPLES {
        order.shuffle(&mut rng);
        for (i, p) in order.iter().enumerate() {
            rank[*p as usize] = i;
        }
        let mut this = vec![0.0; keys];
        for (set, w) in &r {
            let last = set.iter().max_by_key(|k| rank[**k as usize]).copied().unwrap_or(0) as usize;
            this[last] += w.0;
            value[last] += w.1;
        }
        for k in &players {
            let x = this[*k as usize];
            sum[*k as usize] += x;
            sum_sq[*k as usize] += x * x;
        }
    }
    let m = SAMPLES as f64;
    let mut worst: f64 = 0.0;
    for k in &players {
        let k = *k as usize;
        let mean = sum[k] / m;
        let var = (sum_sq[k] / m - mean * mean).max(0.0) * m / (m - 1.0);
        worst = worst.max((var / m).sqrt());
        out[k] = (mean, value[k] / m);
    }
    ShapleyCredit { credit: out, std_error: Some(worst) }
}

/// The closed form sum over T containing k of r(T)/|T| (test oracle and documentation).
#[must_use]
pub fn closed_form(journeys: &JourneyList, keys: usize) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); keys];
    for (set, w) in coalition_worths(journeys) {
        let n = set.len() as f64;
        for k in set {
            out[k as usize].0 += w.0 / n;
            out[k as usize].1 += w.1 / n;
        }
    }
    out
}
