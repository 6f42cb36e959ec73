//! Budgeted maximum coverage: choose sites with total cost <= budget maximising the weight of
//! the prospects reached (each counted once).
//!
//! Lazy greedy on marginal gain per yuan, compared with the best single affordable site (the
//! classic scheme for budgeted coverage), must-include sites first. The upper bound uses
//! submodularity: for any chosen set S, OPT <= f(S) + the best fractional knapsack of the other
//! sites' marginal gains over S within the budget left after the must-include sites. It is
//! evaluated at every prefix of the greedy sequence and the smallest is reported, so the gap
//! (bound - reach) / bound is certified.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate site with the prospects it reaches (sorted, unique).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub cost: f64,
    pub covers: Vec<u32>,
}

/// An optimised plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Chosen candidate indices, in the order they were added.
    pub chosen: Vec<usize>,
    pub reach: f64,
    pub cost: f64,
    pub upper_bound: f64,
}

fn gain(c: &Candidate, covered: &[bool], w: &[f64]) -> f64 {
    c.covers.iter().filter(|p| !covered[**p as usize]).map(|p| w[*p as usize]).sum()
}

fn add(c: &Candidate, covered: &mut [bool]) {
    for p in &c.covers {
        covered[*p as usize] = true;
    }
}

#[derive(PartialEq)]
struct Entry {
    ratio: f64,
    gain: f64,
    site: usize,
}

impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Ties go to the lower index, so plans are deterministic.
        self.ratio.total_cmp(&other.ratio).then(other.site.cmp(&self.site))
    }
}

fn ratio(gain: f64, cost: f64) -> f64 {
    if cost <= 0.0 {
        if gain > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    } else {
        gain / cost
    }
}

/// Greedy from `start`: returns the order of additions.
fn greedy(cands: &[Candidate], w: &[f64], budget: f64, start: &[usize], allowed: &[bool]) -> Vec<usize> {
    let mut covered = vec![false; w.len()];
    let mut chosen: Vec<usize> = start.to_vec();
    let mut spent: f64 = start.iter().map(|i| cands[*i].cost).sum();
    for i in start {
        add(&cands[*i], &mut covered);
    }
    let mut heap: BinaryHeap<Entry> = (0..cands.len())
        .filter(|i| allowed[*i] && !start.contains(i))
        .map(|i| {
            let g = gain(&cands[i], &covered, w);
            Entry { ratio: ratio(g, cands[i].cost), gain: g, site: i }
        })
        .collect();
    while let Some(top) = heap.pop() {
        let c = &cands[top.site];
        if spent + c.cost > budget + 1e-9 {
            continue; // can never fit again: spending only grows
        }
        let g = gain(c, &covered, w);
        if g <= 0.0 {
            continue;
        }
        if g < top.gain - 1e-12 {
            heap.push(Entry { ratio: ratio(g, c.cost), gain: g, site: top.site });
            continue;
        }
        add(c, &mut covered);
        spent += c.cost;
        chosen.push(top.site);
    }
    chosen
}

fn value(cands: &[Candidate], w: &[f64], set: &[usize]) -> f64 {
    let mut covered = vec![false; w.len()];
    let mut v = 0.0;
    for i in set {
        v += gain(&cands[*i], &covered, w);
        add(&cands[*i], &mut covered);
    }
    v
}

/// The submodular bound at the set `s`: f(s) + fractional knapsack of marginal gains.
fn bound_at(cands: &[Candidate], w: &[f64], s: &[usize], capacity: f64, allowed: &[bool]) -> f64 {
    let mut covered = vec![false; w.len()];
    let mut f = 0.0;
    for i in s {
        f += gain(&cands[*i], &covered, w);
        add(&cands[*i], &mut covered);
    }
    let mut items: Vec<(f64, f64)> = (0..cands.len())
        .filter(|i| allowed[*i] && !s.contains(i))
        .map(|i| (gain(&cands[i], &covered, w), cands[i].cost))
        .filter(|(g, _)| *g > 0.0)
        .collect();
    items.sort_by(|a, b| ratio(b.0, b.1).total_cmp(&ratio(a.0, a.1)));
    let mut left = capacity;
    let mut extra = 0.0;
    for (g, c) in items {
        if c <= left {
            extra += g;
            left -= c;
        } else {
            if c > 0.0 && left > 0.0 {
                extra += g * left / c;
            }
            break;
        }
    }
    f + extra
}

/// Optimises within `budget`, forcing `must` (already checked affordable) and skipping sites
/// not `allowed`.
#[must_use]
pub fn optimize(cands: &[Candidate], w: &[f64], budget: f64, must: &[usize], allowed: &[bool]) -> Plan {
    let must_cost: f64 = must.iter().map(|i| cands[*i].cost).sum();
    let by_ratio = greedy(cands, w, budget, must, allowed);
    // The best single affordable site on top of the must-include ones.
    let single = (0..cands.len())
        .filter(|i| allowed[*i] && !must.contains(i) && must_cost + cands[*i].cost <= budget + 1e-9)
        .map(|i| {
            let mut s = must.to_vec();
            s.push(i);
            (value(cands, w, &s), s)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let greedy_value = value(cands, w, &by_ratio);
    let chosen = match single {
        Some((v, s)) if v > greedy_value => s,
        _ => by_ratio.clone(),
    };
    let capacity = (budget - must_cost).max(0.0);
    let mut upper = f64::INFINITY;
    for t in must.len()..=by_ratio.len() {
        upper = upper.min(bound_at(cands, w, &by_ratio[..t], capacity, allowed));
    }
    let reach = value(cands, w, &chosen);
    Plan { cost: chosen.iter().map(|i| cands[*i].cost).sum(), chosen, reach, upper_bound: upper.max(reach) }
}
