//! Ad-placement planning (SPEC §5): within a budget, which sites reach the most target
//! prospects, counting a person once across home, work and commute.
//!
//! Coverage (which prospects each site reaches) is built once per (segment, reach mode) in
//! [`Coverage`] and reused across budgets, baselines and the reach-versus-budget curve.

pub mod optimize;
pub mod reach;

use std::collections::HashMap;

use foldhash::fast::FixedState;
use polars::prelude::*;
use serde::Serialize;

use crate::analytics::segment::Segment;
use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::spatial::geometry::{parse_site_wkt, SiteGeometry};
use optimize::{optimize_within, Candidate, SIDE_TIME_LIMIT};
pub use reach::ReachMode;
use reach::{coverage, Anchor, Prospect};

/// A prospect's (home, work) places as exact coordinate bits, the key prospects are grouped by.
type PlaceBits = (Option<(u64, u64)>, Option<(u64, u64)>);

/// Column of a prospect's weight while coverage is built.
const PP: &str = "__weight";

/// Reach radius (m) of a site kind when the site has no `reach_m`: the walk-in catchment of a
/// lobby, café or bar, the sight lines of a billboard, the corridor of a bus or metro line.
#[must_use]
pub fn default_reach_m(kind: &str) -> f64 {
    match kind {
        "office_lobby" => 100.0,
        "cafe" | "bar" => 250.0,
        "billboard" => 800.0,
        "bus_route" => 300.0,
        "metro_line" | "metro_station" => 500.0,
        _ => 400.0,
    }
}

/// How prospects are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "surface", derive(clap::ValueEnum, utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Weight {
    Count,
    Budget,
}

/// Placement parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementParams {
    pub budget: f64,
    #[serde(rename = "where")]
    pub segment: Option<String>,
    pub reach: ReachMode,
    pub weight: Weight,
    pub must_include: Vec<String>,
    pub exclude: Vec<String>,
    /// Only sites of these kinds (e.g. `office_lobby`, `cafe`); every kind when empty. The
    /// others are excluded; naming a kind no site has is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Seconds the solver may search for the plan before it reports the best found with its
    /// certified gap (each baseline and curve point gets an eighth of it, at most 0.25 s).
    pub time_limit_s: f64,
}

/// The solver's default time limit for a plan, seconds.
pub const DEFAULT_TIME_LIMIT_S: f64 = 2.0;

impl PlacementParams {
    pub fn check(&self) -> Result<()> {
        if !self.budget.is_finite() || self.budget < 0.0 {
            return Err(Error::bad_input(format!("budget must be a number >= 0, got {}", self.budget)));
        }
        if !(self.time_limit_s.is_finite() && self.time_limit_s > 0.0 && self.time_limit_s <= 600.0) {
            return Err(Error::bad_input(format!(
                "time limit must be more than 0 and at most 600 seconds, got {}",
                self.time_limit_s
            )));
        }
        Ok(())
    }

    fn limits(&self) -> (std::time::Duration, std::time::Duration) {
        let main = std::time::Duration::from_secs_f64(self.time_limit_s);
        (main, (main / 8).min(SIDE_TIME_LIMIT))
    }
}

/// Sites and prospects with who reaches whom: build once, plan many budgets.
#[derive(Debug, Clone)]
pub struct Coverage {
    pub site_ids: Vec<String>,
    pub kinds: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// Per site: (prospect group, anchor) pairs.
    pub anchors: Vec<Vec<(u32, Anchor)>>,
    /// Per site: geometry and reach radius (m).
    pub geometries: Vec<(SiteGeometry, f64)>,
    /// Per prospect group (customers sharing home and work places): the summed weight.
    pub weights: Vec<f64>,
    /// Target prospects (customers in the segment), before grouping.
    pub prospects: usize,
    /// What reach is measured in.
    pub weight: Weight,
}

/// Checks a reach radius given for sites of `kind`: a distance over 0 metres (a radius of 0
/// reaches only a prospect standing on the site; to leave a kind out, exclude its sites). The
/// one rule for the CLI's `--reach-m` and the API's `reach_m`.
pub fn check_radius(kind: &str, metres: f64) -> Result<()> {
    if metres.is_finite() && metres > 0.0 {
        Ok(())
    } else {
        Err(Error::bad_input(format!("reach_m for '{kind}' must be a distance > 0 in metres, got {metres}")))
    }
}

impl Coverage {
    /// Reads the dataset's sites and the prospects of `segment`, and computes reach.
    pub fn build(
        ds: &Dataset,
        segment: Option<&str>,
        mode: ReachMode,
        weight: Weight,
        radius_override: &HashMap<String, f64>,
    ) -> Result<Coverage> {
        for (kind, &m) in radius_override {
            check_radius(kind, m)?;
        }
        let sites = ds
            .sites
            .as_ref()
            .filter(|s| s.height() > 0)
            .ok_or_else(|| Error::bad_input("placement needs a sites table"))?;
        let seg = Segment::given(segment).map(|w| Segment::parse(w, ds.customers.schema())).transpose()?;
        let prospect = seg.map_or(lit(true), |s| s.expr);
        let mut customers = ds.customers.clone();
        if weight == Weight::Budget {
            // The heatmap's rule: a buyer without a budget weighs their largest signed deal.
            customers.with_column(
                crate::analytics::heatmap::purchasing_power(ds)?.with_name(PP.into()).into_series().into_column(),
            )?;
        } else {
            customers.with_column(Column::new(PP.into(), vec![1.0; customers.height()]))?;
        }
        let c = customers
            .lazy()
            .filter(prospect)
            .select([col("home_lat"), col("home_lng"), col("work_lat"), col("work_lng"), col(PP)])
            .collect()?;
        let f = |n: &str| -> Result<&Float64Chunked> { Ok(c.column(n)?.f64()?) };
        let (hl, hg, wl, wg, budget) = (f("home_lat")?, f("home_lng")?, f("work_lat")?, f("work_lng")?, f(PP)?);
        // Only the places the mode reaches people at matter (a home is irrelevant to reach at work).
        let use_home = matches!(mode, ReachMode::Home | ReachMode::Both | ReachMode::Commute);
        let use_work = matches!(mode, ReachMode::Work | ReachMode::Both | ReachMode::Commute);
        let pair = |on: bool, a: Option<f64>, b: Option<f64>| a.zip(b).filter(|_| on).map(|(lat, lng)| (lng, lat));
        // Prospects sharing those places (a compound and a tower, say) are one weighted prospect:
        // reach is decided by places, so the answer is the same and the work follows distinct
        // places, not people.
        let bits = |p: Option<(f64, f64)>| p.map(|(x, y)| (x.to_bits(), y.to_bits()));
        let mut index: HashMap<PlaceBits, u32, FixedState> = HashMap::default();
        let mut prospects: Vec<Prospect> = Vec::new();
        let mut weights: Vec<f64> = Vec::new();
        let homes = hl.iter().zip(hg.iter());
        let works = wl.iter().zip(wg.iter());
        for (((hl, hg), (wl, wg)), b) in homes.zip(works).zip(budget.iter()) {
            let p = Prospect { home: pair(use_home, hl, hg), work: pair(use_work, wl, wg) };
            let w = b.unwrap_or(0.0);
            let next = prospects.len() as u32;
            let g = *index.entry((bits(p.home), bits(p.work))).or_insert(next);
            if g == next {
                prospects.push(p);
                weights.push(0.0);
            }
            weights[g as usize] += w;
        }

        let ids: Vec<String> =
            sites.column("site_id")?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect();
        let kinds: Vec<String> =
            sites.column("kind")?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect();
        let cost = sites.column("cost")?.f64()?;
        let reach_m = sites.column("reach_m")?.f64()?;
        let (lat, lng) = (sites.column("lat")?.f64()?, sites.column("lng")?.f64()?);
        let wkt = sites.column("wkt")?.str()?;
        let mut geoms = Vec::with_capacity(ids.len());
        for i in 0..ids.len() {
            let g = match (wkt.get(i), lat.get(i), lng.get(i)) {
                (Some(t), _, _) => {
                    parse_site_wkt(t).map_err(|e| Error::Internal(format!("site {} passed ingest: {e}", ids[i])))?
                }
                (None, Some(la), Some(lo)) => SiteGeometry::Point(geo::Point::new(lo, la)),
                _ => return Err(Error::Internal(format!("site {} has no location", ids[i]))),
            };
            // An explicit radius per kind (flag) wins over the column, which wins over the default.
            let radius = radius_override
                .get(&kinds[i])
                .copied()
                .or(reach_m.get(i))
                .unwrap_or_else(|| default_reach_m(&kinds[i]));
            geoms.push((g, radius));
        }
        let anchors = coverage(&prospects, &geoms, mode);
        let candidates = anchors
            .iter()
            .zip(cost.iter())
            .map(|(a, c)| {
                let mut covers: Vec<u32> = a.iter().map(|(p, _)| *p).collect();
                covers.dedup();
                Candidate { cost: c.unwrap_or(0.0), covers }
            })
            .collect();
        Ok(Coverage {
            site_ids: ids,
            kinds,
            candidates,
            anchors,
            geometries: geoms,
            weights,
            prospects: c.height(),
            weight,
        })
    }

    fn index(&self, names: &[String], what: &str) -> Result<Vec<usize>> {
        let map: HashMap<&str, usize> = self.site_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        names
            .iter()
            .map(|n| {
                map.get(n.as_str()).copied().ok_or_else(|| Error::bad_input(format!("{what} names unknown site '{n}'")))
            })
            .collect()
    }

    /// The sites not of `kinds` (none when `kinds` is empty); a kind no site has is an error.
    fn outside_kinds(&self, kinds: &[String]) -> Result<Vec<usize>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let unknown: Vec<&String> = kinds.iter().filter(|k| !self.kinds.contains(k)).collect();
        if !unknown.is_empty() {
            let mut known = self.kinds.clone();
            known.sort();
            known.dedup();
            return Err(Error::bad_input(format!(
                "kinds: no site is of kind {unknown:?} (kinds: {})",
                known.join(", ")
            )));
        }
        Ok((0..self.kinds.len()).filter(|&i| !kinds.contains(&self.kinds[i])).collect())
    }

    /// Plans one budget.
    pub fn plan(&self, params: &PlacementParams) -> Result<PlacementReport> {
        params.check()?;
        let mut must = self.index(&params.must_include, "must_include")?;
        must.sort_unstable();
        must.dedup();
        let mut excluded = self.index(&params.exclude, "exclude")?;
        let outside = self.outside_kinds(&params.kinds)?;
        if let Some(i) = must.iter().find(|i| outside.contains(i)) {
            return Err(Error::bad_input(format!(
                "site '{}' is must-include but of kind '{}', not one of the kinds asked",
                self.site_ids[*i], self.kinds[*i]
            )));
        }
        excluded.extend(outside);
        if let Some(i) = must.iter().find(|i| excluded.contains(i)) {
            return Err(Error::bad_input(format!("site '{}' is both must-include and excluded", self.site_ids[*i])));
        }
        let must_cost: f64 = must.iter().map(|i| self.candidates[*i].cost).sum();
        if must_cost > params.budget + 1e-9 {
            return Err(Error::bad_input(format!("must-include sites cost {must_cost} > budget {}", params.budget)));
        }
        let allowed: Vec<bool> = (0..self.candidates.len()).map(|i| !excluded.contains(&i)).collect();
        let (limit, side) = params.limits();
        let plan = optimize_within(&self.candidates, &self.weights, params.budget, &must, &allowed, limit);
        let kinds: Vec<String> = {
            let mut k = self.kinds.clone();
            k.sort();
            k.dedup();
            k
        };
        let baselines = kinds
            .iter()
            .map(|kind| {
                let only: Vec<bool> =
                    (0..self.candidates.len()).map(|i| allowed[i] && &self.kinds[i] == kind).collect();
                let p = optimize_within(&self.candidates, &self.weights, params.budget, &[], &only, side);
                let baseline = Baseline {
                    kind: kind.clone(),
                    sites: p.chosen.len(),
                    cost: p.cost,
                    reach: Some(p.reach),
                    cost_per_reached: per(p.cost, p.reach),
                };
                let in_plan = !p.chosen.is_empty() && p.chosen.iter().all(|s| plan.chosen.contains(s));
                (baseline, self.people(&p.chosen), in_plan)
            })
            .collect();
        let curve = (1..=10)
            .map(|t| {
                let b = params.budget * f64::from(t) / 10.0;
                let ok = must_cost <= b + 1e-9;
                let must = if ok { &must[..] } else { &[] };
                let p = optimize_within(&self.candidates, &self.weights, b, must, &allowed, side);
                (
                    CurvePoint { budget: b, reach: Some(p.reach), upper_bound: Some(p.upper_bound) },
                    self.people(&p.chosen),
                )
            })
            .collect();
        Ok(self.report(params, &plan, baselines, curve))
    }

    /// How many prospects the sites `chosen` reach together.
    fn people(&self, chosen: &[usize]) -> usize {
        let mut covered = vec![false; self.weights.len()];
        let mut n = 0;
        for &i in chosen {
            for p in &self.candidates[i].covers {
                let seen = std::mem::replace(&mut covered[*p as usize], true);
                n += usize::from(!seen);
            }
        }
        n
    }

    fn report(
        &self,
        params: &PlacementParams,
        plan: &optimize::Plan,
        baselines: Vec<(Baseline, usize, bool)>,
        curve: Vec<(CurvePoint, usize)>,
    ) -> PlacementReport {
        let mut people = People {
            plan: self.people(&plan.chosen),
            baselines: baselines.iter().map(|b| b.1).collect(),
            baseline_in_plan: baselines.iter().map(|b| b.2).collect(),
            curve: curve.iter().map(|c| c.1).collect(),
            ..People::default()
        };
        let (baselines, curve) =
            (baselines.into_iter().map(|b| b.0).collect(), curve.into_iter().map(|c| c.0).collect());
        let mut covered = vec![false; self.weights.len()];
        let mut cumulative = 0.0;
        let mut spent = 0.0;
        let mut sites = Vec::new();
        for (rank, &i) in plan.chosen.iter().enumerate() {
            let c = &self.candidates[i];
            let marginal: f64 =
                c.covers.iter().filter(|p| !covered[**p as usize]).map(|p| self.weights[*p as usize]).sum();
            people.marginal.push(c.covers.iter().filter(|p| !covered[**p as usize]).count());
            for p in &c.covers {
                covered[*p as usize] = true;
            }
            cumulative += marginal;
            spent += c.cost;
            sites.push(SiteLine {
                rank: rank + 1,
                site_id: self.site_ids[i].clone(),
                kind: self.kinds[i].clone(),
                cost: c.cost,
                marginal_reach: Some(marginal),
                cumulative_reach: Some(cumulative),
                cost_per_reached: per(spent, cumulative),
            });
        }
        // How each reached prospect was reached by the chosen sites.
        let mut how: HashMap<u32, (bool, bool, bool)> = HashMap::new();
        for &i in &plan.chosen {
            for (p, a) in &self.anchors[i] {
                let e = how.entry(*p).or_default();
                match a {
                    Anchor::Home => e.0 = true,
                    Anchor::Work => e.1 = true,
                    Anchor::Commute => e.2 = true,
                }
            }
        }
        // home, work, both, commute
        let mut split = [0.0; 4];
        for (p, (h, w, _)) in how {
            let slot = match (h, w) {
                (true, true) => 2,
                (true, false) => 0,
                (false, true) => 1,
                _ => 3,
            };
            split[slot] += self.weights[p as usize];
            people.split[slot] += 1;
        }
        let split =
            ReachSplit { home: Some(split[0]), work: Some(split[1]), both: Some(split[2]), commute: Some(split[3]) };
        let mut overlap = Vec::new();
        for (a, &i) in plan.chosen.iter().enumerate() {
            for &j in &plan.chosen[a + 1..] {
                let (x, y) = (&self.candidates[i].covers, &self.candidates[j].covers);
                let shared: Vec<u32> = x.iter().filter(|p| y.binary_search(p).is_ok()).copied().collect();
                if !shared.is_empty() {
                    let weight = shared.iter().map(|p| self.weights[*p as usize]).sum();
                    overlap.push(Overlap { a: self.site_ids[i].clone(), b: self.site_ids[j].clone(), shared: weight });
                    people.shared.push(shared.len());
                }
            }
        }
        let gap = if plan.upper_bound > 0.0 { (plan.upper_bound - plan.reach) / plan.upper_bound } else { 0.0 };
        PlacementReport {
            budget: params.budget,
            cost: plan.cost,
            reach: plan.reach,
            upper_bound: plan.upper_bound,
            gap,
            proven_optimal: plan.proven_optimal,
            reach_split: split,
            sites,
            overlap,
            baselines,
            curve,
            prospects: self.prospects,
            weight: self.weight,
            total_weight: self.weights.iter().sum(),
            withheld: 0,
            people,
        }
    }
}

fn per(cost: f64, reach: f64) -> Option<f64> {
    (reach > 0.0).then(|| cost / reach)
}

/// The placement JSON of SPEC §9.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementReport {
    pub budget: f64,
    pub cost: f64,
    pub reach: f64,
    pub upper_bound: f64,
    /// (upper_bound - reach) / upper_bound: how far from optimal the plan can be, at most.
    pub gap: f64,
    /// True when the search finished (or the bound met the plan): no plan within the budget
    /// reaches more.
    pub proven_optimal: bool,
    pub reach_split: ReachSplit,
    pub sites: Vec<SiteLine>,
    pub overlap: Vec<Overlap>,
    pub baselines: Vec<Baseline>,
    pub curve: Vec<CurvePoint>,
    pub prospects: usize,
    /// What `reach` counts: prospects (`count`) or their purchasing power in yuan (`budget`).
    pub weight: Weight,
    /// The whole segment in that unit: the reach of a plan that reached everyone.
    pub total_weight: f64,
    /// Figures withheld (null, or overlaps left out) by [`PlacementReport::floor`].
    pub withheld: usize,
    #[serde(skip)]
    people: People,
}

/// How many prospects each figure of a report counts: what the floor reads.
#[derive(Debug, Clone, Default)]
struct People {
    plan: usize,
    marginal: Vec<usize>,
    shared: Vec<usize>,
    split: [usize; 4],
    baselines: Vec<usize>,
    /// Whether a baseline's sites are all in the plan.
    baseline_in_plan: Vec<bool>,
    curve: Vec<usize>,
}

impl PlacementReport {
    /// How many prospects the plan reaches (whatever `weight` counts).
    #[must_use]
    pub fn people_reached(&self) -> usize {
        self.people.plan
    }

    /// The privacy floor on a report (SPEC §3): no figure counts 1 to k-1 prospects, and none
    /// can be worked out from the others.
    /// - A plan reaching 1 to k-1 prospects is refused (a 400 over HTTP).
    /// - Site lines: consecutive sites are grouped until each group adds at least k prospects
    ///   (a small last group joins the one before); within a group of several sites the marginal
    ///   reach is withheld and the cumulative reach shown only at its last site, so the cumulative
    ///   figures shown are k or more prospects apart.
    /// - Overlaps shared by 1 to k-1 prospects are left out (as if none).
    /// - The home / work / both / commute split: parts of 1 to k-1 prospects are withheld, and
    ///   further parts, smallest first, until what is withheld counts k or more (the parts add up
    ///   to the reach, so one withheld part would be the reach minus the others).
    /// - Baselines and curve points of 1 to k-1 prospects are withheld, as is a curve point within
    ///   k-1 prospects of the plan or of a curve point already shown, and a baseline whose sites
    ///   are all in the plan: its reach is a part of the plan's, and two such parts less the
    ///   plan's reach would give their overlap, which the overlaps leave out when small.
    ///
    /// Returns how many figures it withheld (also in `withheld`).
    pub fn floor(&mut self, k: crate::analytics::KFloor) -> Result<usize> {
        let k = k.get() as usize;
        let small = |n: usize| n > 0 && n < k;
        if small(self.people.plan) {
            return Err(Error::bad_input(format!(
                "this plan reaches fewer than {k} prospects, the privacy floor: widen the segment, the radii or the budget"
            )));
        }
        let mut withheld = 0;
        // Site lines, grouped.
        let n = self.sites.len();
        let mut groups: Vec<(usize, usize, usize)> = Vec::new();
        let (mut start, mut acc) = (0, 0);
        for (i, &m) in self.people.marginal.iter().enumerate() {
            acc += m;
            if !small(acc) {
                groups.push((start, i, acc));
                start = i + 1;
                acc = 0;
            }
        }
        if start < n {
            let mut last = (start, n - 1, acc);
            while small(last.2) {
                match groups.pop() {
                    Some(g) => last = (g.0, last.1, g.2 + last.2),
                    None => break,
                }
            }
            groups.push(last);
        }
        for &(a, b, _) in groups.iter().filter(|g| g.1 > g.0) {
            for line in &mut self.sites[a..=b] {
                withheld += usize::from(line.marginal_reach.take().is_some());
            }
            for line in &mut self.sites[a..b] {
                withheld += usize::from(line.cumulative_reach.take().is_some());
                line.cost_per_reached = None;
            }
        }
        // Overlaps.
        let before = self.overlap.len();
        let mut keep = self.people.shared.iter().map(|&n| !small(n));
        self.overlap.retain(|_| keep.next().unwrap_or(false));
        withheld += before - self.overlap.len();
        // The split, with complementary suppression.
        let mut parts: Vec<(usize, &mut Option<f64>)> = [
            &mut self.reach_split.home,
            &mut self.reach_split.work,
            &mut self.reach_split.both,
            &mut self.reach_split.commute,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, v)| (self.people.split[i], v))
        .collect();
        let mut hidden: usize = 0;
        for (n, v) in &mut parts {
            if small(*n) {
                hidden += *n;
                **v = None;
                withheld += 1;
            }
        }
        while small(hidden) {
            let next = parts.iter_mut().filter(|(n, v)| *n > 0 && v.is_some()).min_by_key(|(n, _)| *n);
            let Some((n, v)) = next else { break };
            hidden += *n;
            **v = None;
            withheld += 1;
        }
        // Baselines.
        for ((b, &n), &in_plan) in
            self.baselines.iter_mut().zip(&self.people.baselines).zip(&self.people.baseline_in_plan)
        {
            if small(n) || in_plan {
                b.reach = None;
                b.cost_per_reached = None;
                withheld += 1;
            }
        }
        // The curve: every point shown is 0 or k apart from the plan and from each other.
        let mut shown = vec![self.people.plan];
        for (c, &n) in self.curve.iter_mut().zip(&self.people.curve) {
            if small(n) || shown.iter().any(|&m| small(n.abs_diff(m))) {
                c.reach = None;
                c.upper_bound = None;
                withheld += 1;
            } else {
                shown.push(n);
            }
        }
        self.withheld += withheld;
        Ok(withheld)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReachSplit {
    pub home: Option<f64>,
    pub work: Option<f64>,
    pub both: Option<f64>,
    pub commute: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteLine {
    pub rank: usize,
    pub site_id: String,
    pub kind: String,
    pub cost: f64,
    /// Null when the site is grouped with the next ones by the floor.
    pub marginal_reach: Option<f64>,
    /// Null inside a group of sites, shown at its last site.
    pub cumulative_reach: Option<f64>,
    pub cost_per_reached: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overlap {
    pub a: String,
    pub b: String,
    pub shared: f64,
}

/// The whole budget on one kind of site.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub kind: String,
    pub sites: usize,
    pub cost: f64,
    pub reach: Option<f64>,
    pub cost_per_reached: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub budget: f64,
    pub reach: Option<f64>,
    /// Withheld with `reach` (a proven plan's bound is its reach).
    pub upper_bound: Option<f64>,
}
