//! Rule-based models: each converting journey hands out exactly one conversion and its value.

use super::journeys::{Journey, JourneyList};

/// The rule-based models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    FirstTouch,
    LastTouch,
    Linear,
    /// Weight `2^(-age / half_life)` with age the time from touch to conversion (microseconds).
    TimeDecay {
        half_life_us: f64,
    },
    /// 40% first, 40% last, 20% shared by the middle touches. One touch takes 100%; two touches
    /// take 50% each (there is no middle).
    PositionBased,
}

/// Weights (summing to 1) of a converting journey's touches, by position.
#[must_use]
pub fn weights(rule: Rule, journey: &Journey<'_>) -> Vec<f64> {
    let n = journey.touches.len();
    if n == 0 {
        return Vec::new();
    }
    let mut w = vec![0.0; n];
    match rule {
        Rule::FirstTouch => w[0] = 1.0,
        Rule::LastTouch => w[n - 1] = 1.0,
        Rule::Linear => w.iter_mut().for_each(|x| *x = 1.0 / n as f64),
        Rule::TimeDecay { half_life_us } => {
            let at = journey.conversion.map_or(journey.touches[n - 1].ts, |(t, _)| t);
            for (x, t) in w.iter_mut().zip(journey.touches) {
                *x = (-((at - t.ts).max(0) as f64) / half_life_us * std::f64::consts::LN_2).exp();
            }
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|x| *x /= total);
        }
        Rule::PositionBased => match n {
            1 => w[0] = 1.0,
            2 => (w[0], w[1]) = (0.5, 0.5),
            _ => {
                w[0] = 0.4;
                w[n - 1] = 0.4;
                for x in &mut w[1..n - 1] {
                    *x = 0.2 / (n - 2) as f64;
                }
            }
        },
    }
    w
}

/// Credits (conversions, value) per key under `rule`.
#[must_use]
pub fn credit(rule: Rule, journeys: &JourneyList, keys: usize) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); keys];
    for j in journeys.iter() {
        let Some((_, value)) = j.conversion else { continue };
        for (w, t) in weights(rule, &j).into_iter().zip(j.touches) {
            let c = &mut out[t.key as usize];
            c.0 += w * j.weight;
            c.1 += w * value;
        }
    }
    out
}
