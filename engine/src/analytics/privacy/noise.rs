//! Integer-exact noise for differential privacy.
//!
//! Floating-point Laplace samplers leak: the set of doubles `x + Laplace(b)` can reach depends on
//! `x`, so a released value can tell which input produced it (Mironov, "On significance of the
//! least significant bits for differential privacy", CCS 2012). Every count and sum here is an
//! integer, and the noise added to it is an integer drawn exactly from the discrete Laplace
//! distribution `P(Z = z) ∝ exp(-|z| / scale)`, with `scale` a rational number, by the algorithm
//! of Canonne, Kamath and Steinke ("The Discrete Gaussian for Differential Privacy", NeurIPS 2020,
//! Algorithms 1 and 2). Only uniform integers and rational comparisons are used: no logarithm,
//! no exponential, no float.
//!
//! Adding `DiscreteLaplace(Δ / ε)` to an integer query whose value changes by at most `Δ` when
//! one person is added or removed is ε-differentially private (the geometric mechanism).

use rand::{Rng, RngCore};

/// A rational number `num / den` with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: u64,
    pub den: u64,
}

impl Ratio {
    /// The rational closest to `x` with denominator `den` (`x` finite, >= 0).
    #[must_use]
    pub fn approx(x: f64, den: u64) -> Ratio {
        Ratio { num: (x * den as f64).round().max(0.0) as u64, den: den.max(1) }
    }
}

/// `true` with probability exactly `num / den` (`num <= den`).
fn bernoulli<R: RngCore>(rng: &mut R, num: u64, den: u64) -> bool {
    rng.random_range(0..den) < num
}

/// `true` with probability exactly `exp(-num / den)`.
fn bernoulli_exp<R: RngCore>(rng: &mut R, num: u64, den: u64) -> bool {
    if num <= den {
        // exp(-g) for g in [0, 1]: the parity of the first k with Bernoulli(g / k) false.
        let mut k: u64 = 1;
        loop {
            // g / k = num / (den * k); k stays small (its expectation is below e).
            let d = den.saturating_mul(k);
            if !bernoulli(rng, num.min(d), d) {
                return k % 2 == 1;
            }
            k += 1;
        }
    }
    for _ in 0..num / den {
        if !bernoulli_exp(rng, 1, 1) {
            return false;
        }
    }
    bernoulli_exp(rng, num % den, den)
}

/// One draw of `Z` with `P(Z = z) ∝ exp(-|z| · den / num)`: the discrete Laplace distribution
/// of scale `num / den` (CKS 2020, Algorithm 2 with `t = num`, `s = den`).
///
/// ```
/// use custmap_engine::analytics::privacy::noise::{discrete_laplace, Ratio};
/// let mut rng = rand::rng();
/// let z = discrete_laplace(&mut rng, Ratio { num: 3, den: 1 });
/// assert!(z.abs() < 1_000);
/// ```
pub fn discrete_laplace<R: RngCore>(rng: &mut R, scale: Ratio) -> i64 {
    let (t, s) = (scale.num.max(1), scale.den.max(1));
    loop {
        let u = rng.random_range(0..t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u64 = 0;
        while bernoulli_exp(rng, 1, 1) {
            v += 1;
        }
        let x = u128::from(u) + u128::from(t) * u128::from(v);
        let y = (x / u128::from(s)).min(i64::MAX as u128) as i64;
        let negative = rng.random_bool(0.5);
        if negative && y == 0 {
            continue;
        }
        return if negative { -y } else { y };
    }
}

/// `P(Z >= m)` for `m >= 1` and `Z` discrete Laplace of scale `b`: `p^m / (1 + p)` with
/// `p = exp(-1/b)`. Used to set release thresholds (a float is fine here: it sets a public
/// parameter, it never touches data).
#[must_use]
pub fn tail(scale: f64, m: i64) -> f64 {
    let p = (-1.0 / scale).exp();
    p.powi(m.clamp(0, i32::MAX as i64) as i32) / (1.0 + p)
}

/// The variance of the discrete Laplace distribution of scale `b`: `2p / (1 - p)^2`,
/// `p = exp(-1/b)`.
#[must_use]
pub fn variance(scale: f64) -> f64 {
    let p = (-1.0 / scale).exp();
    2.0 * p / ((1.0 - p) * (1.0 - p))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    /// Mean and variance of `n` draws of scale `b` against the distribution's: the mean within
    /// 5 standard errors of 0, the variance within 5% (n = 200,000).
    fn moments(scale: Ratio, seed: u64) -> (f64, f64, f64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let n = 200_000;
        let draws: Vec<i64> = (0..n).map(|_| discrete_laplace(&mut rng, scale)).collect();
        let mean = draws.iter().sum::<i64>() as f64 / n as f64;
        let var = draws.iter().map(|&z| (z as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var, variance(scale.num as f64 / scale.den as f64))
    }

    #[test]
    fn moments_match_the_stated_scale() {
        for (scale, seed) in
            [(Ratio { num: 1, den: 1 }, 1), (Ratio { num: 3, den: 1 }, 2), (Ratio::approx(12.5, 1000), 3)]
        {
            let (mean, var, want) = moments(scale, seed);
            let se = (want / 200_000.0).sqrt();
            assert!(mean.abs() < 5.0 * se, "scale {scale:?}: mean {mean}, standard error {se}");
            assert!((var / want - 1.0).abs() < 0.05, "scale {scale:?}: variance {var}, expected {want}");
        }
    }

    #[test]
    fn probabilities_match_exp_minus_abs_z_over_scale() {
        // P(Z = z) = (1 - p) / (1 + p) · p^|z|, p = exp(-1/b); checked for |z| <= 3 at b = 2.
        let b = 2.0;
        let p: f64 = (-1.0f64 / b).exp();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let n = 400_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n {
            *counts.entry(discrete_laplace(&mut rng, Ratio { num: 2, den: 1 })).or_insert(0u64) += 1;
        }
        for z in -3i64..=3 {
            let want = (1.0 - p) / (1.0 + p) * p.powi(z.unsigned_abs() as i32);
            let got = counts.get(&z).copied().unwrap_or(0) as f64 / n as f64;
            let se = (want * (1.0 - want) / n as f64).sqrt();
            assert!((got - want).abs() < 5.0 * se, "P(Z = {z}) = {got}, expected {want}");
        }
        // Symmetric, and the tail formula agrees with the draws.
        let above = counts.iter().filter(|(z, _)| **z >= 4).map(|(_, c)| *c).sum::<u64>() as f64 / n as f64;
        assert!((above - tail(b, 4)).abs() < 5.0 * (tail(b, 4) / n as f64).sqrt(), "{above} vs {}", tail(b, 4));
    }

    #[test]
    fn bernoulli_exp_is_exact_in_distribution() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let n = 200_000;
        for (num, den) in [(1u64, 2u64), (1, 1), (5, 2), (0, 3)] {
            let hits = (0..n).filter(|_| bernoulli_exp(&mut rng, num, den)).count() as f64 / n as f64;
            let want = (-(num as f64) / den as f64).exp();
            let se = (want * (1.0 - want) / n as f64).sqrt().max(1e-9);
            assert!((hits - want).abs() < 5.0 * se + 1e-9, "exp(-{num}/{den}): {hits} vs {want}");
        }
    }
}
