//! Referral chains (老带新): which customers bring buyers, how deep chains run, and what an
//! acquisition channel is worth once the customers its customers referred are counted.
//!
//! `customers.referred_by` links form a forest. A link to an unknown customer, a self-referral,
//! or a link closing a cycle is reported ([`LinkProblem`]) and ignored; the customer is kept (as a
//! root). In a cycle the link of the member that comes last in the file is the one dropped, so
//! the answer never depends on where a walk started.
//!
//! Money is signed deals only (cancelled deals never count): a customer's revenue is the sum of
//! their signed deals' prices, a buyer is a customer with at least one.

use std::collections::HashMap;

use polars::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::io::validate::CUSTOMER_ROW;
use crate::io::Dataset;

/// Channel name of roots with no touchpoint.
pub const NO_CHANNEL: &str = "(no touchpoint)";

/// A `referred_by` link that was ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkProblem {
    pub customer_id: String,
    pub referred_by: String,
    pub reason: String,
}

/// The referral forest of a dataset, by customer row.
#[derive(Debug, Clone)]
pub struct Forest {
    pub ids: Vec<String>,
    /// The referrer's row, for customers with a valid link.
    pub parent: Vec<Option<u32>>,
    /// Signed revenue per customer, and whether they signed at all.
    pub revenue: Vec<f64>,
    pub buyer: Vec<bool>,
    /// Channel of each customer's first touch (non-visit), if any.
    pub channel: Vec<Option<String>>,
    pub problems: Vec<LinkProblem>,
}

/// Per-customer aggregates over their subtree (the customer excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Chain {
    pub direct_referrals: u64,
    pub direct_buyers: u64,
    pub chain_customers: u64,
    pub chain_buyers: u64,
    pub chain_revenue: f64,
    /// Depth of the subtree below the customer: 0 for a customer who referred nobody, 1 when
    /// only direct referrals, and so on.
    pub generations: u32,
}

impl Forest {
    /// Reads the forest of `ds`: links, signed revenue, first-touch channels.
    pub fn of(ds: &Dataset) -> Result<Forest> {
        let n = ds.customers.height();
        let ids: Vec<String> =
            ds.customers.column("customer_id")?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect();
        let row_of: HashMap<&str, u32> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i as u32)).collect();
        let referred = ds.customers.column("referred_by")?.str()?;
        let mut parent = vec![None; n];
        let mut problems = Vec::new();
        for (i, r) in referred.iter().enumerate() {
            let Some(r) = r.map(str::trim).filter(|r| !r.is_empty()) else { continue };
            let problem = |reason: &str| LinkProblem {
                customer_id: ids[i].clone(),
                referred_by: r.to_string(),
                reason: reason.to_string(),
            };
            match row_of.get(r) {
                None => problems.push(problem("referrer is not an accepted customer")),
                Some(&p) if p as usize == i => problems.push(problem("self-referral")),
                Some(&p) => parent[i] = Some(p),
            }
        }
        break_cycles(&ids, &mut parent, &mut problems);
        let (revenue, buyer) = signed_revenue(ds, n)?;
        let channel = first_channels(ds, n)?;
        Ok(Forest { ids, parent, revenue, buyer, channel, problems })
    }

    /// Children of each customer, in row order.
    #[must_use]
    pub fn children(&self) -> Vec<Vec<u32>> {
        let mut kids = vec![Vec::new(); self.parent.len()];
        for (i, p) in self.parent.iter().enumerate() {
            if let Some(p) = p {
                kids[*p as usize].push(i as u32);
            }
        }
        kids
    }

    /// Subtree aggregates of every customer, computed bottom-up without recursion.
    #[must_use]
    pub fn chains(&self) -> Vec<Chain> {
        let kids = self.children();
        let order = self.post_order(&kids);
        let mut out = vec![Chain::default(); self.parent.len()];
        for &v in &order {
            let v = v as usize;
            let mut c = Chain::default();
            for &k in &kids[v] {
                let k = k as usize;
                let below = out[k];
                c.direct_referrals += 1;
                c.direct_buyers += u64::from(self.buyer[k]);
                c.chain_customers += 1 + below.chain_customers;
                c.chain_buyers += u64::from(self.buyer[k]) + below.chain_buyers;
                c.chain_revenue += self.revenue[k] + below.chain_revenue;
                c.generations = c.generations.max(1 + below.generations);
            }
            out[v] = c;
        }
        out
    }

    /// Every customer, children before parents.
    fn post_order(&self, kids: &[Vec<u32>]) -> Vec<u32> {
        let mut order = Vec::with_capacity(self.parent.len());
        let mut stack: Vec<(u32, bool)> = Vec::new();
        for root in (0..self.parent.len()).filter(|i| self.parent[*i].is_none()) {
            stack.push((root as u32, false));
            while let Some((v, expanded)) = stack.pop() {
                if expanded {
                    order.push(v);
                } else {
                    stack.push((v, true));
                    stack.extend(kids[v as usize].iter().map(|k| (*k, false)));
                }
            }
        }
        order
    }

    /// Each customer's root (the first ancestor not referred) and depth below it.
    #[must_use]
    pub fn roots(&self) -> Vec<(u32, u32)> {
        let kids = self.children();
        let mut out = vec![(0u32, 0u32); self.parent.len()];
        let mut stack: Vec<u32> = Vec::new();
        for root in (0..self.parent.len()).filter(|i| self.parent[*i].is_none()) {
            out[root] = (root as u32, 0);
            stack.push(root as u32);
            while let Some(v) = stack.pop() {
                let (r, d) = out[v as usize];
                for &k in &kids[v as usize] {
                    out[k as usize] = (r, d + 1);
                    stack.push(k);
                }
            }
        }
        out
    }
}

/// Drops one link per cycle (the one of the member latest in the file) and reports it.
fn break_cycles(ids: &[String], parent: &mut [Option<u32>], problems: &mut Vec<LinkProblem>) {
    // 0 = unvisited, 1 = on the current walk, 2 = done (leads to a root).
    let mut state = vec![0u8; parent.len()];
    for start in 0..parent.len() {
        let mut path = Vec::new();
        let mut v = start;
        while state[v] == 0 {
            state[v] = 1;
            path.push(v);
            match parent[v] {
                Some(p) => v = p as usize,
                None => break,
            }
        }
        if state[v] == 1 && parent[v].is_some() && path.contains(&v) {
            // `v` is on this walk and its parent chain came back to it: a cycle.
            let at = path.iter().position(|x| *x == v).unwrap_or(0);
            let cycle = &path[at..];
            let last = *cycle.iter().max().unwrap_or(&v);
            let members: Vec<&str> = cycle.iter().map(|i| ids[*i].as_str()).collect();
            if let Some(p) = parent[last].take() {
                problems.push(LinkProblem {
                    customer_id: ids[last].clone(),
                    referred_by: ids[p as usize].clone(),
                    reason: format!("referral cycle ({}); this link ignored", members.join(" -> ")),
                });
            }
        }
        for i in path {
            state[i] = 2;
        }
    }
}

/// Sum of signed deal prices per customer row, and whether they signed any.
fn signed_revenue(ds: &Dataset, n: usize) -> Result<(Vec<f64>, Vec<bool>)> {
    let mut revenue = vec![0.0; n];
    let mut buyer = vec![false; n];
    if let Some(deals) = ds.deals.as_ref().filter(|d| d.height() > 0) {
        let signed = deals.clone().lazy().filter(col("status").eq(lit(crate::io::schema::SIGNED))).collect()?;
        let rows = signed.column(CUSTOMER_ROW)?.idx()?;
        let price = signed.column("price")?.f64()?;
        for (r, p) in rows.iter().zip(price.iter()) {
            if let Some(r) = r.map(|r| r as usize).filter(|r| *r < n) {
                revenue[r] += p.unwrap_or(0.0);
                buyer[r] = true;
            }
        }
    }
    Ok((revenue, buyer))
}

/// Channel of each customer's earliest non-visit touchpoint (ties by channel name).
fn first_channels(ds: &Dataset, n: usize) -> Result<Vec<Option<String>>> {
    // (time, channel code): codes are ranks of sorted names, so the pair orders as (time, name).
    let mut out: Vec<Option<(i64, u32)>> = vec![None; n];
    let Some(tp) = ds.touchpoints.as_ref() else { return Ok(vec![None; n]) };
    for i in 0..tp.len() {
        let r = tp.customer_row[i] as usize;
        if tp.event[i] == crate::io::touchpoints::VISIT || r >= n {
            continue;
        }
        let here = (tp.ts[i], tp.channel[i]);
        let slot = &mut out[r];
        if slot.is_none_or(|first| here < first) {
            *slot = Some(here);
        }
    }
    Ok(out.into_iter().map(|s| s.map(|(_, c)| tp.channels[c as usize].clone())).collect())
}

/// One row per customer who referred anyone: `customer_id, channel, own_revenue,
/// direct_referrals, direct_buyers, chain_customers, chain_buyers, chain_revenue, generations`,
/// sorted by chain revenue (then chain customers, then id).
pub fn by_referrer(f: &Forest) -> Result<DataFrame> {
    let chains = f.chains();
    let mut rows: Vec<usize> = (0..chains.len()).filter(|i| chains[*i].direct_referrals > 0).collect();
    rows.sort_by(|a, b| {
        let (x, y) = (&chains[*a], &chains[*b]);
        y.chain_revenue
            .total_cmp(&x.chain_revenue)
            .then(y.chain_customers.cmp(&x.chain_customers))
            .then(f.ids[*a].cmp(&f.ids[*b]))
    });
    let pick = |g: &dyn Fn(&Chain) -> u64| rows.iter().map(|i| g(&chains[*i])).collect::<Vec<u64>>();
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new("customer_id".into(), rows.iter().map(|i| f.ids[*i].as_str()).collect::<Vec<_>>()),
            Column::new("channel".into(), rows.iter().map(|i| f.channel[*i].as_deref()).collect::<Vec<_>>()),
            Column::new("own_revenue".into(), rows.iter().map(|i| f.revenue[*i]).collect::<Vec<_>>()),
            Column::new("direct_referrals".into(), pick(&|c| c.direct_referrals)),
            Column::new("direct_buyers".into(), pick(&|c| c.direct_buyers)),
            Column::new("chain_customers".into(), pick(&|c| c.chain_customers)),
            Column::new("chain_buyers".into(), pick(&|c| c.chain_buyers)),
            Column::new("chain_revenue".into(), rows.iter().map(|i| chains[*i].chain_revenue).collect::<Vec<_>>()),
            Column::new("generations".into(), rows.iter().map(|i| chains[*i].generations).collect::<Vec<_>>()),
        ],
    )?)
}

/// One row per acquisition channel of the trees' roots: `channel, customers` (roots), `buyers`,
/// `revenue` (theirs), `referred_customers, referred_buyers, referred_revenue` (all their
/// descendants), `multiplier` = (revenue + referred_revenue) / revenue, null with a note when the
/// roots signed nothing. Sorted by revenue plus referred revenue.
pub fn by_channel(f: &Forest) -> Result<DataFrame> {
    let chains = f.chains();
    let mut groups: HashMap<&str, (u64, u64, f64, Chain)> = HashMap::new();
    for (i, p) in f.parent.iter().enumerate() {
        if p.is_some() {
            continue;
        }
        let key = f.channel[i].as_deref().unwrap_or(NO_CHANNEL);
        let g = groups.entry(key).or_default();
        g.0 += 1;
        g.1 += u64::from(f.buyer[i]);
        g.2 += f.revenue[i];
        g.3.chain_customers += chains[i].chain_customers;
        g.3.chain_buyers += chains[i].chain_buyers;
        g.3.chain_revenue += chains[i].chain_revenue;
    }
    let mut keys: Vec<&str> = groups.keys().copied().collect();
    keys.sort_by(|a, b| {
        let total = |k: &str| groups[k].2 + groups[k].3.chain_revenue;
        total(b).total_cmp(&total(a)).then(a.cmp(b))
    });
    let g = |k: &&str| groups[*k];
    let multiplier: Vec<Option<f64>> =
        keys.iter().map(|k| (g(k).2 > 0.0).then(|| (g(k).2 + g(k).3.chain_revenue) / g(k).2)).collect();
    let notes: Vec<&str> = multiplier
        .iter()
        .map(|m| if m.is_none() { "multiplier: the channel's own customers signed nothing" } else { "" })
        .collect();
    Ok(DataFrame::new(
        keys.len(),
        vec![
            Column::new("channel".into(), keys.clone()),
            Column::new("customers".into(), keys.iter().map(|k| g(k).0).collect::<Vec<_>>()),
            Column::new("buyers".into(), keys.iter().map(|k| g(k).1).collect::<Vec<_>>()),
            Column::new("revenue".into(), keys.iter().map(|k| g(k).2).collect::<Vec<_>>()),
            Column::new("referred_customers".into(), keys.iter().map(|k| g(k).3.chain_customers).collect::<Vec<_>>()),
            Column::new("referred_buyers".into(), keys.iter().map(|k| g(k).3.chain_buyers).collect::<Vec<_>>()),
            Column::new("referred_revenue".into(), keys.iter().map(|k| g(k).3.chain_revenue).collect::<Vec<_>>()),
            Column::new("multiplier".into(), multiplier),
            Column::new("notes".into(), notes),
        ],
    )?)
}

/// What membership is worth beyond each member's own purchase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemberValue {
    pub customers: u64,
    pub referred_customers: u64,
    pub advocates: u64,
    /// Share of buyers and of signed revenue that came through a referral.
    pub referred_share_of_buyers: Option<f64>,
    pub referred_share_of_revenue: Option<f64>,
    /// Buyers / customers among referred customers and among the others.
    pub referred_conversion: Option<f64>,
    pub other_conversion: Option<f64>,
    /// Customers at each depth below their root: `[roots, first generation, second, ...]`.
    pub depth_histogram: Vec<u64>,
    pub ignored_links: usize,
}

/// The member-value summary of a forest.
#[must_use]
pub fn member_value(f: &Forest) -> MemberValue {
    let roots = f.roots();
    let n = f.parent.len();
    let referred: Vec<bool> = f.parent.iter().map(Option::is_some).collect();
    let count = |pred: &dyn Fn(usize) -> bool| (0..n).filter(|i| pred(*i)).count() as u64;
    let buyers = count(&|i| f.buyer[i]);
    let referred_buyers = count(&|i| referred[i] && f.buyer[i]);
    let referred_n = count(&|i| referred[i]);
    let revenue: f64 = f.revenue.iter().sum();
    let referred_revenue: f64 = (0..n).filter(|i| referred[*i]).map(|i| f.revenue[i]).sum();
    let share = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let mut depth_histogram = Vec::new();
    for (_, d) in &roots {
        let d = *d as usize;
        if depth_histogram.len() <= d {
            depth_histogram.resize(d + 1, 0);
        }
        depth_histogram[d] += 1;
    }
    let mut is_advocate = vec![false; n];
    for p in f.parent.iter().flatten() {
        is_advocate[*p as usize] = true;
    }
    MemberValue {
        customers: n as u64,
        referred_customers: referred_n,
        advocates: is_advocate.iter().filter(|a| **a).count() as u64,
        referred_share_of_buyers: share(referred_buyers as f64, buyers as f64),
        referred_share_of_revenue: share(referred_revenue, revenue),
        referred_conversion: share(referred_buyers as f64, referred_n as f64),
        other_conversion: share((buyers - referred_buyers) as f64, (n as u64 - referred_n) as f64),
        depth_histogram,
        ignored_links: f.problems.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forest(parent: Vec<Option<u32>>) -> Forest {
        let n = parent.len();
        Forest {
            ids: (0..n).map(|i| format!("C{i}")).collect(),
            parent,
            revenue: vec![0.0; n],
            buyer: vec![false; n],
            channel: vec![None; n],
            problems: Vec::new(),
        }
    }

    #[test]
    fn cycles_lose_the_link_of_their_last_member() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 3 hangs off 2.
        let mut f = forest(vec![Some(1), Some(2), Some(0), Some(2)]);
        break_cycles(&f.ids.clone(), &mut f.parent, &mut f.problems);
        assert_eq!(f.parent, vec![Some(1), Some(2), None, Some(2)]);
        assert_eq!(f.problems.len(), 1);
        assert_eq!(f.problems[0].customer_id, "C2");
        // And from any start the same link goes.
        let mut g = forest(vec![Some(2), Some(0), Some(1)]);
        break_cycles(&g.ids.clone(), &mut g.parent, &mut g.problems);
        assert_eq!(g.parent, vec![Some(2), Some(0), None]);
    }

    #[test]
    fn regression_floor_withholds_sums_over_fewer_than_k_buyers() {
        // A channel of 10 root customers of whom 2 bought, with 6 referred customers of whom 1
        // bought: an analyst must not read the 2 buyers' revenue nor the 1 referred buyer's.
        let t = df!(
            "channel" => ["web", "tv"],
            "customers" => [10u64, 3],
            "buyers" => [2u64, 0],
            "revenue" => [5e6, 0.0],
            "referred_customers" => [6u64, 0],
            "referred_buyers" => [1u64, 0],
            "referred_revenue" => [3e6, 0.0],
            "multiplier" => [Some(1.6), None],
        )
        .unwrap();
        let (out, dropped, withheld) = floor_rows(t, "customers", 5).unwrap();
        assert_eq!((out.height(), dropped, withheld), (1, 1, 1));
        for c in ["buyers", "revenue", "referred_buyers", "referred_revenue", "multiplier"] {
            assert_eq!(out.column(c).unwrap().null_count(), 1, "{c} should be withheld");
        }
        // Six referred customers are at least k: their count stands.
        assert_eq!(out.column("referred_customers").unwrap().u64().unwrap().get(0), Some(6));
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let n = 200_000u32;
        let f = forest((0..n).map(|i| i.checked_sub(1)).collect());
        let chains = f.chains();
        assert_eq!(chains[0].chain_customers, u64::from(n - 1));
        assert_eq!(chains[0].generations, n - 1);
        assert_eq!(f.roots()[(n - 1) as usize], (0, n - 1));
    }
}

/// What a referrals table is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "surface", derive(clap::ValueEnum, utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReferralsBy {
    /// One row per advocate (a person: analysts only over HTTP).
    Referrer,
    /// One row per acquisition channel of the trees' roots.
    Channel,
    /// One row per H3 cell where advocates live (or work).
    Cell,
}

/// Parameters of a referrals run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReferralsParams {
    pub by: ReferralsBy,
    /// Privacy floor of channel and cell rows.
    pub k: crate::analytics::KFloor,
    /// Resolution and place of `by = cell`.
    pub res: crate::spatial::Res,
    pub location: crate::analytics::Location,
}

/// A referrals table with its summary and the links that were ignored.
#[derive(Debug, Clone)]
pub struct ReferralsResult {
    pub by: ReferralsBy,
    pub table: DataFrame,
    pub summary: MemberValue,
    pub problems: Vec<LinkProblem>,
    /// Channel rows dropped (fewer than k root customers) and rows whose referred figures were
    /// withheld (1 to k-1 referred customers).
    pub dropped: usize,
    pub withheld: usize,
}

/// Referral chains of `ds` keyed by `params.by`. Channel and cell rows follow the privacy floor
/// `k`: a row of fewer than `k` root customers (channel) or advocates (cell) is dropped, and
/// referred figures over 1 to k-1 people are withheld (null), as the heatmap does.
pub fn referrals(ds: &Dataset, params: &ReferralsParams) -> Result<ReferralsResult> {
    let forest = Forest::of(ds)?;
    let summary = member_value(&forest);
    let k = u64::from(params.k.get());
    let (table, dropped, withheld) = match params.by {
        ReferralsBy::Referrer => (by_referrer(&forest)?, 0, 0),
        ReferralsBy::Channel => floor_rows(by_channel(&forest)?, "customers", k)?,
        ReferralsBy::Cell => floor_rows(by_cell(ds, &forest, params.res, params.location)?, "advocates", k)?,
    };
    Ok(ReferralsResult { by: params.by, table, summary, problems: forest.problems, dropped, withheld })
}

/// One row per H3 cell where advocates live (`location` home) or work: `hex_id, advocates,
/// referred_customers, referred_buyers, referred_revenue` (their direct referrals),
/// `chain_customers, chain_revenue` (everyone below them). Advocates without that place are left
/// out. Sorted by referred customers. Also `chain_buyers`, the count the floor needs for
/// `chain_revenue`.
pub fn by_cell(
    ds: &Dataset,
    f: &Forest,
    res: crate::spatial::Res,
    location: crate::analytics::Location,
) -> Result<DataFrame> {
    use crate::analytics::Location;
    let (lat, lng) = match location {
        Location::Home => ("home_lat", "home_lng"),
        Location::Work => ("work_lat", "work_lng"),
        Location::Both => return Err(crate::error::Error::bad_input("referrals by cell take location home or work")),
    };
    let lat = ds.customers.column(lat)?.f64()?;
    let lng = ds.customers.column(lng)?.f64()?;
    let chains = f.chains();
    let kids = f.children();
    let mut cells: HashMap<u64, [f64; 7]> = HashMap::new();
    let mut indexer = crate::spatial::fast_h3::Indexer::new(res);
    for (i, c) in chains.iter().enumerate().filter(|(_, c)| c.direct_referrals > 0) {
        let (Some(a), Some(b)) = (lat.get(i), lng.get(i)) else { continue };
        let Some(cell) = indexer.cell(a, b) else { continue };
        let direct_revenue: f64 = kids[i].iter().map(|k| f.revenue[*k as usize]).sum();
        let e = cells.entry(cell).or_default();
        e[0] += 1.0;
        e[1] += c.direct_referrals as f64;
        e[2] += c.direct_buyers as f64;
        e[3] += direct_revenue;
        e[4] += c.chain_customers as f64;
        e[5] += c.chain_revenue;
        e[6] += c.chain_buyers as f64;
    }
    let mut rows: Vec<(u64, [f64; 7])> = cells.into_iter().collect();
    rows.sort_by(|a, b| b.1[1].total_cmp(&a.1[1]).then(a.0.cmp(&b.0)));
    let count = |j: usize| rows.iter().map(|r| r.1[j] as u64).collect::<Vec<u64>>();
    let sum = |j: usize| rows.iter().map(|r| r.1[j]).collect::<Vec<f64>>();
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new("hex_id".into(), rows.iter().map(|r| crate::spatial::h3::hex_string(r.0)).collect::<Vec<_>>()),
            Column::new("advocates".into(), count(0)),
            Column::new("referred_customers".into(), count(1)),
            Column::new("referred_buyers".into(), count(2)),
            Column::new("referred_revenue".into(), sum(3)),
            Column::new("chain_customers".into(), count(4)),
            Column::new("chain_buyers".into(), count(6)),
            Column::new("chain_revenue".into(), sum(5)),
        ],
    )?)
}

/// Privacy floor of channel and cell rows, the heatmap's rule: a row of fewer than `k` people
/// (`people`) is dropped; in a kept row, every count of 1 to k-1 people is withheld (null) with the
/// figures that sum over those people, so no figure covers fewer than `k` customers. Returns the
/// rows dropped and the rows with a figure withheld.
fn floor_rows(table: DataFrame, people: &str, k: u64) -> Result<(DataFrame, usize, usize)> {
    // (count, the figures it covers); groups whose columns a table lacks are skipped.
    const GROUPS: [(&str, &[&str]); 4] = [
        ("buyers", &["buyers", "revenue", "multiplier"]),
        ("referred_customers", &["referred_customers", "referred_buyers", "referred_revenue", "multiplier"]),
        ("referred_buyers", &["referred_buyers", "referred_revenue", "multiplier"]),
        ("chain_buyers", &["chain_buyers", "chain_revenue"]),
    ];
    let keep = table.column(people)?.u64()?.iter().map(|c| c.unwrap_or(0) >= k).collect::<BooleanChunked>();
    let dropped = table.height() - keep.sum().unwrap_or(0) as usize;
    let (out, withheld) = crate::analytics::privacy::withhold_small(table.filter(&keep)?, k, &GROUPS)?;
    Ok((out, dropped, withheld))
}
