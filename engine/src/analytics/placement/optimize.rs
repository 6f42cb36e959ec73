//! Budgeted maximum coverage: choose sites with total cost <= budget maximising the weight of
//! the prospects reached (each counted once), solved exactly by branch and bound within a time
//! limit.
//!
//! 1. Reduce: a site that costs at least as much as another allowed site and reaches a subset of
//!    its prospects is dominated and never branched on.
//! 2. Warm start: lazy greedy on marginal gain per yuan, against the best single affordable site
//!    (the classic scheme for budgeted coverage), must-include sites first; then local search
//!    (add, and swap one site for another) while it improves.
//! 3. Branch and bound, depth first: at a node with chosen set S, any completion T from the
//!    undecided sites satisfies f(S + T) <= f(S) + sum of T's marginal gains over S
//!    (submodularity) <= f(S) + the fractional knapsack of those gains within the budget left.
//!    Nodes whose bound cannot beat the incumbent are pruned; the branch is on the undecided site
//!    of best gain per yuan, taken first, then left out.
//!
//! When the search ends the plan is proven optimal (gap 0). When the time limit stops it, the
//! bound is the largest bound of the nodes left open (and never above the greedy's own
//! submodular bound, evaluated at every prefix of the greedy sequence), so the reported gap
//! (bound - reach) / bound is certified either way.

use std::time::{Duration, Instant};

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
    /// True when the search finished: no plan within the budget reaches more.
    pub proven_optimal: bool,
    /// Branch-and-bound nodes explored.
    pub nodes: u64,
}

/// How long one optimisation may search before it reports its best plan and bound.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(2);
/// The limit of each per-kind baseline and reach-curve point (17 more optimisations a plan).
pub const SIDE_TIME_LIMIT: Duration = Duration::from_millis(250);

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
    f + knapsack(&items, capacity, |_, _| {})
}

/// The fractional knapsack of `(value, cost, ..)` items, already sorted by value per cost, within
/// `capacity`: its value, with `take(item, fraction)` told of every item it uses.
fn knapsack<T: KnapsackItem>(items: &[T], capacity: f64, mut take: impl FnMut(&T, f64)) -> f64 {
    let mut room = capacity;
    let mut total = 0.0;
    for item in items {
        let (v, c) = (item.value(), item.cost());
        if c <= room {
            total += v;
            room -= c;
            take(item, 1.0);
        } else {
            if c > 0.0 && room > 0.0 {
                total += v * room / c;
                take(item, room / c);
            }
            break;
        }
    }
    total
}

trait KnapsackItem {
    fn value(&self) -> f64;
    fn cost(&self) -> f64;
}

impl KnapsackItem for (f64, f64) {
    fn value(&self) -> f64 {
        self.0
    }
    fn cost(&self) -> f64 {
        self.1
    }
}

impl KnapsackItem for (f64, f64, usize) {
    fn value(&self) -> f64 {
        self.0
    }
    fn cost(&self) -> f64 {
        self.1
    }
}

/// Greedy plan and its submodular bound, within `budget`, forcing `must` (already checked
/// affordable) and skipping sites not `allowed`: the warm start of [`optimize`].
#[must_use]
pub fn greedy_plan(cands: &[Candidate], w: &[f64], budget: f64, must: &[usize], allowed: &[bool]) -> Plan {
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
    let cost = chosen.iter().map(|i| cands[*i].cost).sum();
    Plan { cost, chosen, reach, upper_bound: upper.max(reach), proven_optimal: upper <= reach + 1e-9, nodes: 0 }
}

/// The optimal plan within `budget` (or the best found with a certified bound when
/// [`DEFAULT_TIME_LIMIT`] stops the search), forcing `must` and skipping sites not `allowed`.
#[must_use]
pub fn optimize(cands: &[Candidate], w: &[f64], budget: f64, must: &[usize], allowed: &[bool]) -> Plan {
    optimize_within(cands, w, budget, must, allowed, DEFAULT_TIME_LIMIT)
}

/// [`optimize`] with a time limit of its own.
#[must_use]
pub fn optimize_within(
    cands: &[Candidate],
    w: &[f64],
    budget: f64,
    must: &[usize],
    allowed: &[bool],
    limit: Duration,
) -> Plan {
    let start = Instant::now();
    let unit_max = w.iter().copied().fold(0.0, f64::max);
    let (merged, merged_w, mult) = merge_rows(cands, w);
    let (cands, w) = (merged.as_slice(), merged_w.as_slice());
    let warm = greedy_plan(cands, w, budget, must, allowed);
    if warm.proven_optimal {
        return warm;
    }
    let allowed = undominated(cands, allowed, must);
    let capacity = (budget - must.iter().map(|i| cands[*i].cost).sum::<f64>()).max(0.0);
    // The Lagrangian relaxation first: its bound, its best prices (for the node bounds below) and,
    // from every step, a plan built from the priced knapsack (the Lagrangian heuristic).
    let mut best = warm.chosen.clone();
    let mut best_value = warm.reach;
    // Two step rules, half the time each: steps as the unmerged prospects would take them (tight
    // where merged rows are uneven) and steps on the merged rows as they are (they find other
    // plans); the better bound and its prices are kept, and every plan either builds.
    let ones = vec![1.0; w.len()];
    let merged_max = w.iter().copied().fold(0.0, f64::max);
    let mut lagrange = Lagrange { bound: f64::INFINITY, prices: Vec::new(), free: 0.0 };
    for (k, rows) in [(mult.as_slice(), unit_max), (ones.as_slice(), merged_max)].into_iter().enumerate() {
        let until = start + limit / 8 * (k as u32 + 1);
        let run = lagrangian(cands, w, budget, capacity, must, &allowed, until, rows, |plan| {
            let v = value(cands, w, &plan);
            if v > best_value + 1e-9 {
                (best, best_value) = (plan, v);
            }
            best_value
        });
        // The first run is kept whatever its bound (the search needs its prices).
        if k == 0 || run.bound < lagrange.bound {
            lagrange = run;
        }
    }
    let improved = local_search(cands, w, budget, must, &allowed, best.clone(), start + limit * 2 / 5);
    let v = value(cands, w, &improved);
    if v > best_value + 1e-9 {
        (best, best_value) = (improved, v);
    }
    let root_bound = lagrange.bound.min(warm.upper_bound);
    if root_bound <= best_value + 1e-9 {
        return Plan {
            cost: best.iter().map(|i| cands[*i].cost).sum(),
            chosen: in_greedy_order(cands, w, best, must),
            reach: best_value,
            upper_bound: best_value,
            proven_optimal: true,
            nodes: 0,
        };
    }
    let mut search = Search {
        cands,
        w,
        budget,
        state: vec![State::Undecided; cands.len()],
        count: vec![0; w.len()],
        chosen: Vec::new(),
        best: best.clone(),
        best_value,
        open_bound: f64::NEG_INFINITY,
        nodes: 0,
        deadline: start + limit,
        stopped: false,
        price: lagrange.prices,
        free_uncovered: lagrange.free,
    };
    let mut spent = 0.0;
    let mut reached = 0.0;
    for (i, ok) in allowed.iter().enumerate() {
        if !ok {
            search.state[i] = State::Out;
        }
    }
    for &m in must {
        reached += search.include(m);
        spent += cands[m].cost;
    }
    search.node(spent, reached, 0);
    let bound =
        if search.stopped { search.open_bound.max(search.best_value).min(root_bound) } else { search.best_value };
    let upper_bound = bound.max(search.best_value);
    let chosen = in_greedy_order(cands, w, search.best, must);
    Plan {
        cost: chosen.iter().map(|i| cands[*i].cost).sum(),
        reach: search.best_value,
        chosen,
        upper_bound,
        proven_optimal: !search.stopped || upper_bound <= search.best_value + 1e-9,
        nodes: search.nodes,
    }
}

/// `set` in the order a report reads best: the must-include sites, then each time the site that
/// adds the most reach per yuan to those before it (so marginal reach per yuan never rises).
fn in_greedy_order(cands: &[Candidate], w: &[f64], set: Vec<usize>, must: &[usize]) -> Vec<usize> {
    let mut covered = vec![false; w.len()];
    let (mut out, mut rest): (Vec<usize>, Vec<usize>) = set.into_iter().partition(|i| must.contains(i));
    for i in &out {
        add(&cands[*i], &mut covered);
    }
    while !rest.is_empty() {
        let k = (0..rest.len())
            .max_by(|a, b| {
                let r = |k: usize| ratio(gain(&cands[rest[k]], &covered, w), cands[rest[k]].cost);
                r(*a).total_cmp(&r(*b)).then(b.cmp(a))
            })
            .unwrap_or(0);
        let i = rest.remove(k);
        add(&cands[i], &mut covered);
        out.push(i);
    }
    out
}

/// Prospects reached by exactly the same sites become one row of their summed weight (and their
/// count, for the Lagrangian steps), and
/// prospects no site reaches go: every plan's reach, the optimum and every bound are unchanged,
/// and the rows the solver walks are far fewer (a city's prospects share a handful of sites).
fn merge_rows(cands: &[Candidate], w: &[f64]) -> (Vec<Candidate>, Vec<f64>, Vec<f64>) {
    let mut sites_of: Vec<Vec<u32>> = vec![Vec::new(); w.len()];
    for (i, c) in cands.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        for p in &c.covers {
            sites_of[*p as usize].push(i);
        }
    }
    let mut rows: std::collections::HashMap<&[u32], u32> = std::collections::HashMap::new();
    let mut weights: Vec<f64> = Vec::new();
    let mut mult: Vec<f64> = Vec::new();
    let mut covers: Vec<Vec<u32>> = vec![Vec::new(); cands.len()];
    for (p, sites) in sites_of.iter().enumerate() {
        if sites.is_empty() {
            continue;
        }
        let next = u32::try_from(weights.len()).unwrap_or(u32::MAX);
        let row = *rows.entry(sites.as_slice()).or_insert_with(|| {
            weights.push(0.0);
            mult.push(0.0);
            for i in sites {
                covers[*i as usize].push(next);
            }
            next
        });
        weights[row as usize] += w[p];
        mult[row as usize] += 1.0;
    }
    let merged = cands.iter().zip(covers).map(|(c, covers)| Candidate { cost: c.cost, covers }).collect();
    (merged, weights, mult)
}

/// What the Lagrangian relaxation gives: its bound, the prices that gave it, and the total of
/// `w_p - price_p` over the prospects some site can reach (the relaxation's "free" part).
struct Lagrange {
    bound: f64,
    prices: Vec<f64>,
    free: f64,
}

/// The Lagrangian (LP) bound of budgeted coverage: relaxing "a prospect counts only if a chosen
/// site reaches it" with a price `lambda_p` in [0, w_p] per prospect gives, for every lambda,
/// OPT <= sum_p (w_p - lambda_p) + the fractional knapsack of the sites' priced reach within
/// `capacity` (must-include sites' prospects are reached: their price is 0 and they count in
/// full). Minimised over lambda by projected subgradient steps until `deadline` or 400 steps;
/// the smallest value seen is returned, each a valid bound, with its prices. Every step also
/// hands `primal` a plan: the must-include sites, the priced knapsack's sites that fit whole,
/// then greedy on true gains to fill the budget (the Lagrangian heuristic).
#[allow(clippy::too_many_arguments)]
fn lagrangian(
    cands: &[Candidate],
    w: &[f64],
    budget: f64,
    capacity: f64,
    must: &[usize],
    allowed: &[bool],
    deadline: Instant,
    (mult, unit_weight_max): (&[f64], f64),
    mut primal: impl FnMut(Vec<usize>) -> f64,
) -> Lagrange {
    let mut fixed = vec![false; w.len()];
    for m in must {
        for p in &cands[*m].covers {
            fixed[*p as usize] = true;
        }
    }
    let sites: Vec<usize> = (0..cands.len()).filter(|i| allowed[*i] && !must.contains(i)).collect();
    let base: f64 = (0..w.len()).filter(|p| fixed[*p]).map(|p| w[p]).sum();
    // Start from the prices that split each prospect's weight over the sites reaching it.
    let mut reach_count = vec![0u32; w.len()];
    for &i in &sites {
        for p in &cands[i].covers {
            reach_count[*p as usize] += 1;
        }
    }
    let mut lambda: Vec<f64> =
        (0..w.len()).map(|p| if fixed[p] || reach_count[p] == 0 { 0.0 } else { w[p] / 2.0 }).collect();
    let mut best = Lagrange { bound: f64::INFINITY, prices: lambda.clone(), free: 0.0 };
    let mut step = 0.5;
    let mut incumbent = 0.0f64;
    // A merged row moves as its prospects would one by one: by its multiplicity, on the norm of
    // the unmerged subgradient, so the steps do not depend on how rows were merged.
    let unit_max = unit_weight_max;
    for iteration in 0..400 {
        if iteration > 0 && Instant::now() >= deadline {
            break;
        }
        // Priced reach per site, then the fractional knapsack.
        let mut items: Vec<(f64, f64, usize)> = sites
            .iter()
            .map(|&i| (cands[i].covers.iter().map(|p| lambda[*p as usize]).sum::<f64>(), cands[i].cost, i))
            .filter(|(v, _, _)| *v > 0.0)
            .collect();
        items.sort_by(|a, b| ratio(b.0, b.1).total_cmp(&ratio(a.0, a.1)));
        let mut x = vec![0.0; cands.len()];
        let knap = knapsack(&items, capacity, |item, fraction| x[item.2] = fraction);
        // A prospect with no site that could reach it adds nothing (lambda stays 0 and so does y).
        let free: f64 =
            (0..w.len()).filter(|p| !fixed[*p] && reach_count[*p] > 0).map(|p| (w[p] - lambda[p]).max(0.0)).sum();
        let current = base + free + knap;
        if current < best.bound {
            best = Lagrange { bound: current, prices: lambda.clone(), free: 0.0 };
        }
        // The heuristic costs a greedy pass: on the first steps, then every eighth, so the bound
        // gets most of the time.
        if iteration < 4 || iteration % 8 == 0 {
            let mut plan = must.to_vec();
            let mut room = capacity;
            for &(_, c, i) in &items {
                if c <= room + 1e-9 {
                    plan.push(i);
                    room -= c;
                }
            }
            incumbent = incumbent.max(primal(greedy(cands, w, budget, &plan, allowed)));
        }
        // Subgradient: y_p (1 when w_p > lambda_p) minus how much the fractional sites reach p.
        let mut covered = vec![0.0; w.len()];
        for &(_, _, i) in &items {
            if x[i] > 0.0 {
                for p in &cands[i].covers {
                    covered[*p as usize] += x[i];
                }
            }
        }
        let mut norm = 0.0;
        let g: Vec<f64> = (0..w.len())
            .map(|p| {
                if fixed[p] || reach_count[p] == 0 {
                    return 0.0;
                }
                let y = if w[p] > lambda[p] { 1.0 } else { 0.0 };
                let d = y - covered[p];
                norm += mult[p] * d * d;
                d
            })
            .collect();
        if norm < 1e-12 {
            break;
        }
        if current <= incumbent + 1e-9 {
            break;
        }
        let scale = step * unit_max / norm.sqrt();
        for p in 0..w.len() {
            lambda[p] = (lambda[p] + scale * mult[p] * g[p]).clamp(0.0, w[p]);
        }
        step *= 0.985;
    }
    // The free part as the branch and bound keeps it: every prospect some site reaches, priced
    // (must-include prospects at 0: choosing those sites takes their whole weight out again).
    best.free = (0..w.len()).filter(|p| fixed[*p] || reach_count[*p] > 0).map(|p| w[p] - best.prices[p]).sum();
    best
}

/// `allowed` without the sites another allowed site dominates (as cheap or cheaper, reaching a
/// superset); of identical sites the first stays. Must-include sites always stay.
fn undominated(cands: &[Candidate], allowed: &[bool], must: &[usize]) -> Vec<bool> {
    let mut out = allowed.to_vec();
    if cands.len() > 3000 {
        return out;
    }
    let subset = |a: &[u32], b: &[u32]| {
        let mut j = 0;
        a.iter().all(|x| {
            while j < b.len() && b[j] < *x {
                j += 1;
            }
            j < b.len() && b[j] == *x
        })
    };
    for a in 0..cands.len() {
        if !allowed[a] || must.contains(&a) {
            continue;
        }
        let dominated = (0..cands.len()).any(|b| {
            b != a
                && out[b]
                && cands[b].cost <= cands[a].cost
                && cands[b].covers.len() >= cands[a].covers.len()
                && subset(&cands[a].covers, &cands[b].covers)
                && (cands[b].cost < cands[a].cost || cands[b].covers.len() > cands[a].covers.len() || b < a)
        });
        if dominated {
            out[a] = false;
        }
    }
    out
}

/// Add and swap moves from `start` while they improve the reach, until `deadline`. Moves are
/// valued from per-prospect reach counts: adding `j` gains the prospects no chosen site reaches;
/// swapping `k` for `j` also loses those only `k` reaches, unless `j` reaches them too.
fn local_search(
    cands: &[Candidate],
    w: &[f64],
    budget: f64,
    must: &[usize],
    allowed: &[bool],
    start: Vec<usize>,
    deadline: Instant,
) -> Vec<usize> {
    let mut set = start;
    let mut count = vec![0u32; w.len()];
    let mut in_set = vec![false; cands.len()];
    for &i in &set {
        in_set[i] = true;
        for p in &cands[i].covers {
            count[*p as usize] += 1;
        }
    }
    let mut spent: f64 = set.iter().map(|i| cands[*i].cost).sum();
    let mut only_k = vec![false; w.len()];
    let fits = |spent: f64, c: f64| spent + c <= budget + 1e-9;
    'improve: loop {
        if Instant::now() >= deadline {
            break;
        }
        for j in (0..cands.len()).filter(|j| allowed[*j] && !in_set[*j]) {
            if fits(spent, cands[j].cost) {
                let g: f64 = cands[j].covers.iter().filter(|p| count[**p as usize] == 0).map(|p| w[*p as usize]).sum();
                if g > 1e-9 {
                    in_set[j] = true;
                    set.push(j);
                    spent += cands[j].cost;
                    for p in &cands[j].covers {
                        count[*p as usize] += 1;
                    }
                    continue 'improve;
                }
            }
        }
        for at in 0..set.len() {
            let k = set[at];
            if must.contains(&k) {
                continue;
            }
            let mut loss = 0.0;
            for p in &cands[k].covers {
                if count[*p as usize] == 1 {
                    only_k[*p as usize] = true;
                    loss += w[*p as usize];
                }
            }
            let mut swap = None;
            for j in (0..cands.len()).filter(|j| allowed[*j] && !in_set[*j]) {
                if !fits(spent - cands[k].cost, cands[j].cost) {
                    continue;
                }
                let g: f64 = cands[j]
                    .covers
                    .iter()
                    .filter(|p| count[**p as usize] == 0 || only_k[**p as usize])
                    .map(|p| w[*p as usize])
                    .sum();
                if g - loss > 1e-9 {
                    swap = Some(j);
                    break;
                }
            }
            for p in &cands[k].covers {
                only_k[*p as usize] = false;
            }
            if let Some(j) = swap {
                for p in &cands[k].covers {
                    count[*p as usize] -= 1;
                }
                for p in &cands[j].covers {
                    count[*p as usize] += 1;
                }
                (in_set[k], in_set[j]) = (false, true);
                set[at] = j;
                spent += cands[j].cost - cands[k].cost;
                continue 'improve;
            }
            if Instant::now() >= deadline {
                break 'improve;
            }
        }
        break;
    }
    set
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Undecided,
    In,
    Out,
}

/// Depth-first branch and bound over sites.
struct Search<'a> {
    cands: &'a [Candidate],
    w: &'a [f64],
    budget: f64,
    state: Vec<State>,
    /// How many chosen sites reach each prospect.
    count: Vec<u32>,
    chosen: Vec<usize>,
    best: Vec<usize>,
    best_value: f64,
    /// The largest bound of a node left unexplored when the time ran out.
    open_bound: f64,
    nodes: u64,
    deadline: Instant,
    stopped: bool,
    /// The root's Lagrangian prices, and the sum of `w_p - price_p` over the reachable prospects
    /// no chosen site reaches (kept as sites are chosen and released).
    price: Vec<f64>,
    free_uncovered: f64,
}

impl Search<'_> {
    /// Chooses site `i`; returns the reach it adds.
    fn include(&mut self, i: usize) -> f64 {
        self.state[i] = State::In;
        self.chosen.push(i);
        let mut g = 0.0;
        for p in &self.cands[i].covers {
            let p = *p as usize;
            if self.count[p] == 0 {
                g += self.w[p];
                self.free_uncovered -= self.w[p] - self.price[p];
            }
            self.count[p] += 1;
        }
        g
    }

    fn exclude_again(&mut self, i: usize) {
        for p in &self.cands[i].covers {
            let p = *p as usize;
            self.count[p] -= 1;
            if self.count[p] == 0 {
                self.free_uncovered += self.w[p] - self.price[p];
            }
        }
        self.chosen.pop();
        self.state[i] = State::Undecided;
    }

    /// The reach site `i` would add, and its priced reach (the same prospects at their prices).
    fn gain(&self, i: usize) -> (f64, f64) {
        let mut g = (0.0, 0.0);
        for p in &self.cands[i].covers {
            let p = *p as usize;
            if self.count[p] == 0 {
                g.0 += self.w[p];
                g.1 += self.price[p];
            }
        }
        g
    }

    fn node(&mut self, spent: f64, reached: f64, depth: usize) {
        self.nodes += 1;
        if reached > self.best_value + 1e-9 {
            self.best_value = reached;
            self.best = self.chosen.clone();
        }
        let left = self.budget - spent;
        let gains: Vec<(f64, f64, usize)> = (0..self.cands.len())
            .filter(|i| self.state[*i] == State::Undecided && self.cands[*i].cost <= left + 1e-9)
            .map(|i| {
                let (g, priced) = self.gain(i);
                (g, priced, i)
            })
            .filter(|(g, _, _)| *g > 0.0)
            .collect();
        let mut items: Vec<(f64, f64, usize)> = gains.iter().map(|&(g, _, i)| (g, self.cands[i].cost, i)).collect();
        items.sort_by(|a, b| ratio(b.0, b.1).total_cmp(&ratio(a.0, a.1)).then(a.2.cmp(&b.2)));
        // Two valid bounds: submodularity (reached + the knapsack of marginal gains) and the
        // root's Lagrangian prices (reached + unpriced weight left + the knapsack of priced gains).
        let submodular = reached + knapsack(&items, left, |_, _| {});
        let mut priced: Vec<(f64, f64)> =
            gains.iter().filter(|g| g.1 > 0.0).map(|&(_, p, i)| (p, self.cands[i].cost)).collect();
        priced.sort_by(|a, b| ratio(b.0, b.1).total_cmp(&ratio(a.0, a.1)));
        let lagrangian = reached + self.free_uncovered.max(0.0) + knapsack(&priced, left, |_, _| {});
        let bound = submodular.min(lagrangian);
        if bound <= self.best_value + 1e-9 || items.is_empty() {
            return;
        }
        if self.stopped || depth > 2_000 || (self.nodes % 64 == 1 && Instant::now() >= self.deadline) {
            self.stopped = true;
            self.open_bound = self.open_bound.max(bound);
            return;
        }
        let (_, c, i) = items[0];
        let added = self.include(i);
        self.node(spent + c, reached + added, depth + 1);
        self.exclude_again(i);
        self.state[i] = State::Out;
        self.node(spent, reached, depth + 1);
        self.state[i] = State::Undecided;
    }
}
