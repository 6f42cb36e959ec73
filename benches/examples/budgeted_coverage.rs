//! Solves one budgeted maximum coverage instance with custmap's placement solver and prints one
//! JSON line, for the comparison against CBC in `benches/peers/compare_budgeted.py`:
//! `cargo run --release -p custmap-benches --example budgeted_coverage -- FILE [LIMIT_S] [--no-merge]`.
//!
//! The instance is a whitespace-separated text file (read as one token stream):
//!
//! ```text
//! bmc1
//! BUDGET N_SITES N_PROSPECTS
//! W_0 W_1 ... W_{N_PROSPECTS-1}
//! COST_i K_i P_1 ... P_K      (one per site: its cost, then the K prospects it reaches)
//! ```
//!
//! Before solving, prospects reached by exactly the same set of sites are merged into one row
//! whose weight is their sum, and prospects no site reaches are dropped (they count in no plan):
//! the reach of every plan is unchanged. `--no-merge` solves the rows as given instead. The
//! reach of the plan found is recomputed on the unmerged rows as a check (`reach_check`).
//! `solve_seconds` is `optimize_within` alone; `reduce_seconds` is the merge; neither includes
//! reading the file. The greedy warm start (`greedy_plan`) is timed and reported separately.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use custmap_engine::analytics::placement::optimize::{greedy_plan, optimize_within, Candidate, Plan};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Instance {
    budget: f64,
    weights: Vec<f64>,
    sites: Vec<Candidate>,
}

fn read_instance(path: &str) -> Res<Instance> {
    let text = std::fs::read_to_string(path)?;
    let mut tok = text.split_ascii_whitespace();
    let mut next = |what: &str| tok.next().ok_or_else(|| format!("instance ends before {what}"));
    let magic = next("the header")?;
    if magic != "bmc1" {
        return Err(format!("not a bmc1 instance (starts with {magic:?})").into());
    }
    let budget: f64 = next("the budget")?.parse()?;
    let n_sites: usize = next("the site count")?.parse()?;
    let n_prospects: usize = next("the prospect count")?.parse()?;
    let mut weights = Vec::with_capacity(n_prospects);
    for _ in 0..n_prospects {
        weights.push(next("a weight")?.parse::<f64>()?);
    }
    let mut sites = Vec::with_capacity(n_sites);
    for s in 0..n_sites {
        let cost: f64 = next("a site cost")?.parse()?;
        let k: usize = next("a site's reach count")?.parse()?;
        let mut covers = Vec::with_capacity(k);
        for _ in 0..k {
            let p: u32 = next("a prospect index")?.parse()?;
            if p as usize >= n_prospects {
                return Err(format!("site {s} reaches prospect {p} of {n_prospects}").into());
            }
            covers.push(p);
        }
        covers.sort_unstable();
        covers.dedup();
        sites.push(Candidate { cost, covers });
    }
    Ok(Instance { budget, weights, sites })
}

/// Merges prospects reached by the same set of sites (summing weights) and drops those no site
/// reaches: the sites with their reach in merged rows, and the rows' weights.
fn merge(inst: &Instance) -> (Vec<Candidate>, Vec<f64>) {
    let n = inst.weights.len();
    // Sites reaching each prospect, in increasing site order (so each list is sorted).
    let mut start = vec![0u32; n + 1];
    for c in &inst.sites {
        for p in &c.covers {
            start[*p as usize + 1] += 1;
        }
    }
    for p in 0..n {
        start[p + 1] += start[p];
    }
    let mut fill = start.clone();
    let mut by = vec![0u32; start[n] as usize];
    for (s, c) in inst.sites.iter().enumerate() {
        for p in &c.covers {
            let f = &mut fill[*p as usize];
            by[*f as usize] = s as u32;
            *f += 1;
        }
    }
    let mut row_of_set: HashMap<&[u32], u32> = HashMap::new();
    let mut weights: Vec<f64> = Vec::new();
    let mut covers: Vec<Vec<u32>> = vec![Vec::new(); inst.sites.len()];
    for p in 0..n {
        let set = &by[start[p] as usize..start[p + 1] as usize];
        if set.is_empty() {
            continue;
        }
        let next = weights.len() as u32;
        let row = *row_of_set.entry(set).or_insert(next);
        if row == next {
            weights.push(0.0);
            for s in set {
                covers[*s as usize].push(row); // rows are numbered in increasing order
            }
        }
        weights[row as usize] += inst.weights[p];
    }
    let cands = inst.sites.iter().zip(covers).map(|(c, covers)| Candidate { cost: c.cost, covers }).collect();
    (cands, weights)
}

/// Reach and cost of `chosen` on the instance as given.
fn evaluate(inst: &Instance, chosen: &[usize]) -> (f64, f64) {
    let mut seen = vec![false; inst.weights.len()];
    let mut reach = 0.0;
    let mut cost = 0.0;
    for &s in chosen {
        cost += inst.sites[s].cost;
        for p in &inst.sites[s].covers {
            if !std::mem::replace(&mut seen[*p as usize], true) {
                reach += inst.weights[*p as usize];
            }
        }
    }
    (reach, cost)
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_string()
    }
}

fn plan_json(out: &mut String, name: &str, plan: &Plan, inst: &Instance, seconds: f64) {
    let (reach_check, cost_check) = evaluate(inst, &plan.chosen);
    let gap = if plan.upper_bound > 0.0 { (plan.upper_bound - plan.reach) / plan.upper_bound } else { 0.0 };
    let mut chosen: Vec<usize> = plan.chosen.clone();
    chosen.sort_unstable();
    let list: Vec<String> = chosen.iter().map(usize::to_string).collect();
    write!(
        out,
        "\"{name}\":{{\"reach\":{},\"upper_bound\":{},\"gap\":{},\"proven_optimal\":{},\"nodes\":{},\"seconds\":{},\
         \"cost\":{},\"reach_check\":{},\"cost_check\":{},\"chosen\":[{}]}}",
        num(plan.reach),
        num(plan.upper_bound),
        num(gap),
        plan.proven_optimal,
        plan.nodes,
        seconds,
        num(plan.cost),
        num(reach_check),
        num(cost_check),
        list.join(",")
    )
    .expect("writing to a String");
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_merge = args.iter().any(|a| a == "--no-merge");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let path = pos.first().ok_or("usage: budgeted_coverage FILE [LIMIT_S] [--no-merge]")?;
    let limit_s: f64 = pos.get(1).map_or(Ok(10.0), |s| s.parse())?;
    if !(limit_s.is_finite() && limit_s > 0.0) {
        return Err(format!("time limit must be a positive number of seconds, got {limit_s}").into());
    }

    let t = Instant::now();
    let inst = read_instance(path)?;
    let read_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (cands, weights) = if no_merge { (inst.sites.clone(), inst.weights.clone()) } else { merge(&inst) };
    let reduce_seconds = t.elapsed().as_secs_f64();
    let allowed = vec![true; cands.len()];

    let t = Instant::now();
    let greedy = greedy_plan(&cands, &weights, inst.budget, &[], &allowed);
    let greedy_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let plan = optimize_within(&cands, &weights, inst.budget, &[], &allowed, Duration::from_secs_f64(limit_s));
    let solve_seconds = t.elapsed().as_secs_f64();

    let gap = if plan.upper_bound > 0.0 { (plan.upper_bound - plan.reach) / plan.upper_bound } else { 0.0 };
    let (reach_check, cost_check) = evaluate(&inst, &plan.chosen);
    let mut chosen: Vec<usize> = plan.chosen.clone();
    chosen.sort_unstable();
    let list: Vec<String> = chosen.iter().map(usize::to_string).collect();
    let mut out = String::new();
    write!(
        out,
        "{{\"sites\":{},\"prospects\":{},\"rows\":{},\"merged\":{},\"budget\":{},\"limit_s\":{},\
         \"reach\":{},\"upper_bound\":{},\"gap\":{},\"proven_optimal\":{},\"nodes\":{},\"cost\":{},\
         \"reach_check\":{},\"cost_check\":{},\"read_seconds\":{},\"reduce_seconds\":{},\
         \"solve_seconds\":{},\"chosen\":[{}],",
        inst.sites.len(),
        inst.weights.len(),
        weights.len(),
        !no_merge,
        num(inst.budget),
        limit_s,
        num(plan.reach),
        num(plan.upper_bound),
        num(gap),
        plan.proven_optimal,
        plan.nodes,
        num(plan.cost),
        num(reach_check),
        num(cost_check),
        read_seconds,
        reduce_seconds,
        solve_seconds,
        list.join(",")
    )?;
    plan_json(&mut out, "greedy", &greedy, &inst, greedy_seconds);
    out.push('}');
    println!("{out}");
    Ok(())
}
