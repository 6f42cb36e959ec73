//! Placement: reach geometry by hand, counting once, the optimiser against brute force, budget
//! rules, and the planted office clusters.

use custmap_engine::analytics::placement::optimize::{optimize, optimize_within, Candidate};
use custmap_engine::analytics::placement::reach::{
    coverage, point_to_site_m, segment_to_site_m, Anchor, Prospect, ReachMode,
};
use custmap_engine::analytics::placement::{Coverage, PlacementParams, Weight};
use custmap_engine::analytics::KFloor;
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::spatial::geometry::{parse_site_wkt, SiteGeometry};
use custmap_engine::Dataset;
use geo::{Line, Point};
use proptest::prelude::*;

/// Degrees of latitude per metre.
const DEG_PER_M: f64 = 1.0 / 111_195.0;

#[test]
fn point_just_inside_and_outside_a_radius() {
    let site = parse_site_wkt("POINT (114.3 30.5)").unwrap();
    let inside = Point::new(114.3, 30.5 + 99.0 * DEG_PER_M);
    let outside = Point::new(114.3, 30.5 + 101.0 * DEG_PER_M);
    assert!(point_to_site_m(inside, &site) < 100.0);
    assert!(point_to_site_m(outside, &site) > 100.0);
}

#[test]
fn commute_crossing_a_bus_route_with_both_ends_far_away() {
    // Route east-west along 30.5; the commute runs north-south across it, ends 5 km away.
    let route = parse_site_wkt("LINESTRING (114.20 30.5, 114.40 30.5)").unwrap();
    let commute = Line::new(Point::new(114.3, 30.455), Point::new(114.3, 30.545));
    assert_eq!(segment_to_site_m(commute, &route), 0.0);
    let home = Prospect { home: Some((114.3, 30.455)), work: Some((114.3, 30.545)) };
    let sites = vec![(route, 300.0)];
    assert!(coverage(&[home], &sites, ReachMode::Both)[0].is_empty(), "ends are 5 km away");
    assert_eq!(coverage(&[home], &sites, ReachMode::Commute)[0], vec![(0, Anchor::Commute)]);
    // Parallel commute 1 km north of the route: not reached.
    let far = Line::new(Point::new(114.25, 30.509), Point::new(114.35, 30.509));
    assert!(segment_to_site_m(far, &parse_site_wkt("LINESTRING (114.20 30.5, 114.40 30.5)").unwrap()) > 900.0);
}

#[test]
fn a_prospect_reached_twice_counts_once() {
    // Home and work both within reach of two sites.
    let p = Prospect { home: Some((114.3, 30.5)), work: Some((114.3005, 30.5)) };
    let site = || parse_site_wkt("POINT (114.3002 30.5)").unwrap();
    let cov = coverage(&[p], &[(site(), 200.0), (site(), 200.0)], ReachMode::Both);
    assert_eq!(cov[0], vec![(0, Anchor::Home), (0, Anchor::Work)]);
    let cands: Vec<Candidate> = cov.iter().map(|_| Candidate { cost: 1.0, covers: vec![0] }).collect();
    let plan = optimize(&cands, &[1.0], 10.0, &[], &[true, true]);
    assert_eq!(plan.reach, 1.0);
}

fn brute_force(cands: &[Candidate], w: &[f64], budget: f64) -> f64 {
    let n = cands.len();
    let mut best: f64 = 0.0;
    for mask in 0u32..1 << n {
        let cost: f64 = (0..n).filter(|i| mask & 1 << i != 0).map(|i| cands[i].cost).sum();
        if cost > budget + 1e-9 {
            continue;
        }
        let mut covered = vec![false; w.len()];
        for i in (0..n).filter(|i| mask & 1 << i != 0) {
            for p in &cands[i].covers {
                covered[*p as usize] = true;
            }
        }
        best = best.max(covered.iter().zip(w).filter(|(c, _)| **c).map(|(_, w)| w).sum());
    }
    best
}

fn instance() -> impl Strategy<Value = (Vec<Candidate>, Vec<f64>, f64)> {
    (2usize..13, 5usize..40).prop_flat_map(|(sites, people)| {
        (
            proptest::collection::vec(
                (1u32..20, proptest::collection::btree_set(0..people as u32, 0..people.min(12))),
                sites,
            ),
            proptest::collection::vec(1u32..5, people),
            0u32..60,
        )
            .prop_map(|(s, w, b)| {
                let cands = s
                    .into_iter()
                    .map(|(c, cov)| Candidate { cost: f64::from(c), covers: cov.into_iter().collect() })
                    .collect();
                (cands, w.into_iter().map(f64::from).collect(), f64::from(b))
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn optimiser_against_brute_force((cands, w, budget) in instance()) {
        let allowed = vec![true; cands.len()];
        let plan = optimize(&cands, &w, budget, &[], &allowed);
        let best = brute_force(&cands, &w, budget);
        prop_assert!(plan.cost <= budget + 1e-9, "over budget");
        prop_assert!(plan.reach <= best + 1e-9, "above the optimum");
        prop_assert!(plan.upper_bound + 1e-9 >= best, "bound {} below the optimum {best}", plan.upper_bound);
        prop_assert!(plan.reach + 1e-9 >= best - (plan.upper_bound - plan.reach), "outside the certified gap");
        // Small instances are solved to proven optimality.
        prop_assert!(plan.proven_optimal, "not proven within the limit");
        prop_assert!((plan.reach - best).abs() < 1e-9, "reach {} but the optimum is {best}", plan.reach);
        // The plan reads in greedy order: reach per yuan added never rises.
        let mut covered = vec![false; w.len()];
        let mut last = f64::INFINITY;
        for i in &plan.chosen {
            let gain: f64 = cands[*i].covers.iter().filter(|p| !covered[**p as usize]).map(|p| w[*p as usize]).sum();
            let per_yuan = if cands[*i].cost > 0.0 { gain / cands[*i].cost } else { f64::INFINITY };
            prop_assert!(per_yuan <= last + 1e-9, "order: {per_yuan} after {last}");
            last = per_yuan;
            for p in &cands[*i].covers {
                covered[*p as usize] = true;
            }
        }
        // Stopped at once, the plan and bound still hold (greedy, local search, root and
        // Lagrangian bounds).
        let quick = optimize_within(&cands, &w, budget, &[], &allowed, std::time::Duration::ZERO);
        prop_assert!(quick.cost <= budget + 1e-9 && quick.reach <= best + 1e-9);
        prop_assert!(quick.upper_bound + 1e-9 >= best, "quick bound {} below the optimum {best}", quick.upper_bound);
    }

    #[test]
    fn merging_rows_does_not_change_the_optimum((cands, w, budget) in instance()) {
        // Every prospect split in two halves reached by the same sites, plus prospects no site
        // reaches: the solver merges the halves back and drops the unreachable, same optimum.
        let n = w.len() as u32;
        let split: Vec<Candidate> = cands
            .iter()
            .map(|c| {
                let covers: std::collections::BTreeSet<u32> = c.covers.iter().flat_map(|p| [*p, *p + n]).collect();
                Candidate { cost: c.cost, covers: covers.into_iter().collect() }
            })
            .collect();
        let mut halves: Vec<f64> = w.iter().chain(&w).map(|x| x / 2.0).collect();
        halves.extend([7.0; 5]);
        let allowed = vec![true; cands.len()];
        let whole = optimize(&cands, &w, budget, &[], &allowed);
        let merged = optimize(&split, &halves, budget, &[], &allowed);
        let best = brute_force(&cands, &w, budget);
        prop_assert!((whole.reach - best).abs() < 1e-9 && (merged.reach - best).abs() < 1e-9);
        prop_assert!(merged.upper_bound + 1e-9 >= best && merged.proven_optimal);
    }

    #[test]
    fn must_include_and_exclude_are_honoured((cands, w, budget) in instance()) {
        let n = cands.len();
        let mut allowed = vec![true; n];
        allowed[n - 1] = false;
        let must = if cands[0].cost <= budget { vec![0] } else { vec![] };
        let plan = optimize(&cands, &w, budget, &must, &allowed);
        prop_assert!(!plan.chosen.contains(&(n - 1)));
        for m in &must {
            prop_assert!(plan.chosen.contains(m));
        }
        prop_assert!(plan.cost <= budget + 1e-9);
    }
}

#[test]
fn regression_two_cheap_sites_beat_one_dear_site() {
    // Two disjoint 50-yuan sites reaching 9 each, one 100-yuan site reaching 12; budget 100.
    let cands = vec![
        Candidate { cost: 100.0, covers: (0..12).collect() },
        Candidate { cost: 50.0, covers: (12..21).collect() },
        Candidate { cost: 50.0, covers: (21..30).collect() },
        Candidate { cost: 80.0, covers: (0..5).collect() },
        Candidate { cost: 90.0, covers: (12..16).collect() },
    ];
    let w = vec![1.0; 30];
    let plan = optimize(&cands, &w, 100.0, &[], &[true; 5]);
    let mut chosen = plan.chosen.clone();
    chosen.sort_unstable();
    assert_eq!((chosen, plan.reach), (vec![1, 2], 18.0));
    assert!(plan.proven_optimal && plan.upper_bound == 18.0, "{plan:?}");
}

#[test]
fn the_exact_solver_beats_greedy_on_a_planted_instance_and_certifies_it() {
    use custmap_engine::analytics::placement::optimize::greedy_plan;
    use rand::{Rng, SeedableRng};
    // 16 sites of mixed cost over 400 prospects with heavy overlap: greedy falls short.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut best_gain = 0.0f64;
    for _ in 0..20 {
        let cands: Vec<Candidate> = (0..16)
            .map(|_| {
                let lo = rng.random_range(0..360u32);
                let len = rng.random_range(10..60u32);
                Candidate {
                    cost: f64::from(rng.random_range(3..30u32)) * 1000.0,
                    covers: (lo..(lo + len).min(400)).collect(),
                }
            })
            .collect();
        let w: Vec<f64> = (0..400).map(|_| f64::from(rng.random_range(1..4u32))).collect();
        let budget = 60_000.0;
        let greedy = greedy_plan(&cands, &w, budget, &[], &[true; 16]);
        let exact = optimize(&cands, &w, budget, &[], &[true; 16]);
        let optimum = brute_force(&cands, &w, budget);
        assert!(exact.proven_optimal);
        assert!((exact.reach - optimum).abs() < 1e-9, "{} vs {optimum}", exact.reach);
        assert!(greedy.reach <= exact.reach + 1e-9);
        best_gain = best_gain.max(exact.reach / greedy.reach);
    }
    assert!(best_gain > 1.0, "greedy was optimal on every instance: the test proves nothing");
}

#[test]
fn zero_budget_gives_an_empty_plan() {
    let cands = vec![Candidate { cost: 5.0, covers: vec![0, 1] }];
    let plan = optimize(&cands, &[1.0, 1.0], 0.0, &[], &[true]);
    assert!(plan.chosen.is_empty());
    assert_eq!(plan.reach, 0.0);
}

/// For the high-budget segment at work, tower-side sites reach more target prospects per yuan
/// than bus routes, where the generator put the office clusters.
#[test]
fn towers_and_cafes_beat_bus_routes_per_yuan() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &DemoParams { customers: 10_000, seed: 42, format: DemoFormat::Csv, ..DemoParams::default() },
        &|_, _| {},
    )
    .unwrap();
    let ds = Dataset::load(dir.path()).unwrap();
    let cov =
        Coverage::build(&ds, Some("budget >= 3000000"), ReachMode::Work, Weight::Count, &Default::default()).unwrap();
    let params = PlacementParams {
        budget: 800_000.0,
        segment: Some("budget >= 3000000".into()),
        reach: ReachMode::Work,
        weight: Weight::Count,
        must_include: vec![],
        exclude: vec![],
        kinds: Vec::new(),
        time_limit_s: 2.0,
    };
    let report = cov.plan(&params).unwrap();
    let per = |kind: &str| {
        report.baselines.iter().find(|b| b.kind == kind).and_then(|b| b.cost_per_reached).unwrap_or(f64::INFINITY)
    };
    // The whole budget on one kind: cafés by the towers far ahead of bus routes, lobbies ahead.
    assert!(per("cafe") * 3.0 < per("bus_route"), "cafe {} vs bus {}", per("cafe"), per("bus_route"));
    assert!(per("office_lobby") < per("bus_route"), "lobby {} vs bus {}", per("office_lobby"), per("bus_route"));
    assert!(per("bus_route") < per("metro_line"));
    // The plan opens with tower-side sites.
    for s in report.sites.iter().take(5) {
        assert!(matches!(s.kind.as_str(), "cafe" | "bar" | "office_lobby"), "{s:?}");
    }
    assert!(report.cost <= 800_000.0 && report.reach > 0.0);
    assert!(report.upper_bound >= report.reach && (0.0..=1.0).contains(&report.gap));
    // Every chosen site of the plan is listed with a cumulative reach equal to the plan's.
    assert_eq!(report.sites.last().and_then(|s| s.cumulative_reach), Some(report.reach));
}

/// Regression: a plan forced to two sites A (a lobby) and B (a café), with every other lobby and
/// café excluded and the budget of the two, made each kind's baseline the one site of the plan;
/// baseline A plus baseline B less the plan's reach gave the prospects both reach, which the
/// overlaps leave out when 1 to k-1. A baseline whose sites are all in the plan is withheld.
#[test]
fn regression_baselines_inside_the_plan_cannot_give_its_overlaps() {
    let (_dir, ds) = crate::common::demo_city(3_000, 42);
    let sites = ds.sites.clone().unwrap();
    let id = sites.column("site_id").unwrap().str().unwrap().clone();
    let kind = sites.column("kind").unwrap().str().unwrap().clone();
    let cost = sites.column("cost").unwrap().f64().unwrap().clone();
    let first = |k: &str| (0..sites.height()).find(|&i| kind.get(i) == Some(k)).unwrap();
    let (a, b) = (first("office_lobby"), first("cafe"));
    let exclude: Vec<String> = (0..sites.height())
        .filter(|&i| i != a && i != b && matches!(kind.get(i), Some("office_lobby" | "cafe")))
        .map(|i| id.get(i).unwrap().to_string())
        .collect();
    let cov = Coverage::build(&ds, None, ReachMode::Both, Weight::Count, &Default::default()).unwrap();
    let params = PlacementParams {
        budget: cost.get(a).unwrap() + cost.get(b).unwrap(),
        segment: None,
        reach: ReachMode::Both,
        weight: Weight::Count,
        must_include: vec![id.get(a).unwrap().to_string(), id.get(b).unwrap().to_string()],
        exclude,
        kinds: Vec::new(),
        time_limit_s: 1.0,
    };
    let raw = cov.plan(&params).unwrap();
    let mut floored = raw.clone();
    floored.floor(KFloor::new(5).unwrap()).unwrap();
    for (shown, was) in floored.baselines.iter().zip(&raw.baselines) {
        if matches!(shown.kind.as_str(), "office_lobby" | "cafe") {
            assert!(was.reach.is_some_and(|r| r > 0.0), "the attack's baseline exists: {was:?}");
            assert!(shown.reach.is_none(), "a baseline inside the plan is shown: {shown:?}");
        }
    }
}

#[test]
fn the_floor_leaves_no_figure_of_1_to_k_minus_1_prospects_nor_one_that_can_be_derived() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &DemoParams { customers: 10_000, seed: 42, format: DemoFormat::Csv, ..DemoParams::default() },
        &|_, _| {},
    )
    .unwrap();
    let ds = Dataset::load(dir.path()).unwrap();
    let segment = "budget >= 4000000";
    let cov = Coverage::build(&ds, Some(segment), ReachMode::Both, Weight::Count, &Default::default()).unwrap();
    let params = PlacementParams {
        budget: 1_500_000.0,
        segment: Some(segment.into()),
        reach: ReachMode::Both,
        weight: Weight::Count,
        must_include: vec![],
        exclude: vec![],
        kinds: Vec::new(),
        time_limit_s: 1.0,
    };
    let raw = cov.plan(&params).unwrap();
    let k = 5.0;
    let small = |x: f64| x > 0.0 && x < k;
    let raw_small = raw.sites.iter().filter(|s| s.marginal_reach.is_some_and(small)).count();
    assert!(raw_small > 0, "the plan has sites adding 1 to 4 prospects (else this tests nothing)");
    let mut floored = raw.clone();
    let withheld = floored.floor(KFloor::new(5).unwrap()).unwrap();
    assert!(withheld > 0 && floored.withheld == withheld);
    assert_eq!(floored.reach, raw.reach);
    // Shown cumulative figures are k apart, starting from 0; shown marginals are at least k.
    let mut last = 0.0;
    for (s, r) in floored.sites.iter().zip(&raw.sites) {
        assert!(s.marginal_reach.is_none_or(|m| !small(m)), "{s:?}");
        if let Some(c) = s.cumulative_reach {
            assert_eq!(Some(c), r.cumulative_reach);
            assert!(!small(c - last), "cumulative {c} after {last}");
            last = c;
        } else {
            assert!(s.marginal_reach.is_none() && s.cost_per_reached.is_none(), "{s:?}");
        }
    }
    assert_eq!(last, raw.reach, "the last site shows the plan's reach");
    assert!(floored.overlap.iter().all(|o| !small(o.shared)));
    let parts =
        [floored.reach_split.home, floored.reach_split.work, floored.reach_split.both, floored.reach_split.commute];
    let hidden: f64 = [raw.reach_split.home, raw.reach_split.work, raw.reach_split.both, raw.reach_split.commute]
        .iter()
        .zip(&parts)
        .filter(|(_, p)| p.is_none())
        .map(|(r, _)| r.unwrap())
        .sum();
    assert!(!small(hidden), "the withheld parts of the split add up to {hidden}");
    assert!(parts.iter().flatten().all(|&p| !small(p)));
    let mut shown = vec![floored.reach];
    for c in floored.curve.iter().filter_map(|c| c.reach) {
        assert!(!small(c) && shown.iter().all(|s: &f64| !small((c - s).abs())), "curve {c} near {shown:?}");
        shown.push(c);
    }
    assert!(floored.baselines.iter().all(|b| b.reach.is_none_or(|r| !small(r))));

    // A plan reaching 1 to k-1 prospects is refused, without its count.
    let tiny: std::collections::HashMap<String, f64> = [
        ("cafe", 10.0),
        ("bar", 10.0),
        ("office_lobby", 10.0),
        ("billboard", 10.0),
        ("bus_route", 10.0),
        ("metro_line", 10.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cov = Coverage::build(&ds, Some(segment), ReachMode::Home, Weight::Count, &tiny).unwrap();
    let mut report = cov.plan(&PlacementParams { reach: ReachMode::Home, budget: 30_000.0, ..params }).unwrap();
    if report.reach > 0.0 && report.reach < k {
        let err = report.floor(KFloor::new(5).unwrap()).unwrap_err().to_string();
        assert!(err.contains("fewer than 5 prospects"), "{err}");
    }
}

fn place() -> impl Strategy<Value = (f64, f64)> {
    // A 4 km x 4 km patch, on a coarse grid so places repeat (as CRM addresses do).
    (0u32..40, 0u32..40).prop_map(|(x, y)| (114.30 + 0.001 * f64::from(x), 30.50 + 0.001 * f64::from(y)))
}

fn site() -> impl Strategy<Value = (SiteGeometry, f64)> {
    prop_oneof![
        (place(), 50.0f64..600.0).prop_map(|(p, r)| (SiteGeometry::Point(Point::new(p.0, p.1)), r)),
        (proptest::collection::vec(place(), 2..5), 50.0f64..400.0)
            .prop_map(|(pts, r)| (SiteGeometry::Line(geo::LineString::from(pts)), r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// The indexed coverage equals testing every (prospect, anchor, site) triple.
    #[test]
    fn coverage_matches_brute_force(
        people in proptest::collection::vec((proptest::option::of(place()), proptest::option::of(place())), 1..60),
        sites in proptest::collection::vec(site(), 1..8),
        mode in 0usize..4,
    ) {
        let mode = [ReachMode::Home, ReachMode::Work, ReachMode::Both, ReachMode::Commute][mode];
        let prospects: Vec<Prospect> = people.iter().map(|(h, w)| Prospect { home: *h, work: *w }).collect();
        let got = coverage(&prospects, &sites, mode);
        for (s, (geometry, radius)) in sites.iter().enumerate() {
            let mut want = Vec::new();
            for (i, p) in prospects.iter().enumerate() {
                let i = i as u32;
                let near = |c: (f64, f64)| point_to_site_m(Point::new(c.0, c.1), geometry) <= *radius;
                if matches!(mode, ReachMode::Home | ReachMode::Both | ReachMode::Commute) && p.home.is_some_and(near) {
                    want.push((i, Anchor::Home));
                }
                if matches!(mode, ReachMode::Work | ReachMode::Both | ReachMode::Commute) && p.work.is_some_and(near) {
                    want.push((i, Anchor::Work));
                }
                if let (ReachMode::Commute, Some(h), Some(w)) = (mode, p.home, p.work) {
                    let seg = Line::new(Point::new(h.0, h.1), Point::new(w.0, w.1));
                    if segment_to_site_m(seg, geometry) <= *radius {
                        want.push((i, Anchor::Commute));
                    }
                }
            }
            prop_assert_eq!(&got[s], &want, "site {}", s);
        }
    }
}

/// Customers sharing home and work places become one weighted prospect; the reach, the split
/// and the prospect count are what counting people one by one gives.
#[test]
fn prospects_sharing_places_are_grouped_without_changing_the_answer() {
    let mut customers = String::from("customer_id,home_lat,home_lng,work_lat,work_lng,budget\n");
    // 30 people: 3 home spots x 2 work spots (some repeated), one person with no work place.
    let homes = [(30.50, 114.30), (30.51, 114.31), (30.60, 114.40)];
    let works = [(30.5001, 114.3001), (30.70, 114.50)];
    for i in 0..30 {
        let (hl, hg) = homes[i % 3];
        let work = if i == 29 { ",".to_string() } else { format!("{},{}", works[i % 2].0, works[i % 2].1) };
        customers.push_str(&format!("C{i},{hl},{hg},{work},{}\n", 1_000_000 + i * 1000));
    }
    let sites = b"site_id,kind,cost,lat,lng,reach_m\nA,cafe,1,30.5,114.3,100\nB,cafe,1,30.7,114.5,100\n";
    let (_d, ds) = crate::common::load(&[("customers.csv", customers.as_bytes()), ("sites.csv", sites)]);
    let ds = ds.unwrap();
    let params = |weight| PlacementParams {
        budget: 10.0,
        segment: None,
        reach: ReachMode::Both,
        weight,
        must_include: vec![],
        exclude: vec![],
        kinds: Vec::new(),
        time_limit_s: 2.0,
    };
    let near = |(lat, lng): (f64, f64), site: (f64, f64)| {
        custmap_engine::spatial::geometry::haversine_m((lng, lat), (site.1, site.0)) <= 100.0
    };
    let (mut want_count, mut want_budget) = (0.0, 0.0);
    for i in 0..30 {
        let mut places = vec![homes[i % 3]];
        if i != 29 {
            places.push(works[i % 2]);
        }
        if places.iter().any(|p| near(*p, (30.5, 114.3)) || near(*p, (30.7, 114.5))) {
            want_count += 1.0;
            want_budget += (1_000_000 + i * 1000) as f64;
        }
    }
    let cov = Coverage::build(&ds, None, ReachMode::Both, Weight::Count, &Default::default()).unwrap();
    assert!(cov.weights.len() < 30, "people sharing places should be grouped");
    let report = cov.plan(&params(Weight::Count)).unwrap();
    assert_eq!(report.prospects, 30);
    assert_eq!(report.reach, want_count);
    let split = report.reach_split;
    assert_eq!(split.home.unwrap() + split.work.unwrap() + split.both.unwrap() + split.commute.unwrap(), want_count);
    let cov = Coverage::build(&ds, None, ReachMode::Both, Weight::Budget, &Default::default()).unwrap();
    assert_eq!(cov.plan(&params(Weight::Budget)).unwrap().reach, want_budget);

    // Reached at work only, homes do not matter: people group by work place alone (two places,
    // and the one person without a work place).
    let cov = Coverage::build(&ds, None, ReachMode::Work, Weight::Count, &Default::default()).unwrap();
    assert_eq!(cov.weights.len(), 3);
    let at_work = (0..29).filter(|i| near(works[i % 2], (30.5, 114.3)) || near(works[i % 2], (30.7, 114.5))).count();
    let report = cov.plan(&PlacementParams { reach: ReachMode::Work, ..params(Weight::Count) }).unwrap();
    assert_eq!((report.prospects, report.reach), (30, at_work as f64));
}

#[test]
fn regression_budget_weight_takes_a_buyers_deal_price_when_the_budget_is_missing() {
    let customers = b"customer_id,home_lat,home_lng,budget\nP1,30.5,114.3,\nP2,30.5,114.3,1000000\nP3,30.5,114.3,\n";
    let deals = b"deal_id,customer_id,signed_at,price,status\nD1,P1,2025-03-01,2000000,signed\nD2,P1,2025-04-01,2500000,signed\nD3,P3,2025-03-01,9000000,cancelled\n";
    let sites = b"site_id,kind,cost,lat,lng\nS1,cafe,100,30.5,114.3\n";
    let dir = crate::common::dataset_dir(&[("customers.csv", customers), ("deals.csv", deals), ("sites.csv", sites)]);
    let ds = Dataset::load(dir.path()).unwrap();
    let cov = Coverage::build(&ds, None, ReachMode::Home, Weight::Budget, &Default::default()).unwrap();
    let params = PlacementParams {
        budget: 100.0,
        segment: None,
        reach: ReachMode::Home,
        weight: Weight::Budget,
        must_include: vec![],
        exclude: vec![],
        kinds: Vec::new(),
        time_limit_s: 2.0,
    };
    let report = cov.plan(&params).unwrap();
    // P1 weighs their largest signed deal, P2 their budget, P3 nothing (a cancelled deal is no price).
    assert_eq!(report.reach, 3_500_000.0);
    assert_eq!(report.total_weight, 3_500_000.0);
    assert_eq!((report.prospects, report.weight), (3, Weight::Budget));
}

#[test]
fn regression_review_a_site_named_twice_in_must_include_counts_once() {
    let customers = b"customer_id,home_lat,home_lng\nP1,30.5,114.3\n";
    let sites = b"site_id,kind,cost,lat,lng\nS1,cafe,60,30.5,114.3\n";
    let dir = crate::common::dataset_dir(&[("customers.csv", customers), ("sites.csv", sites)]);
    let ds = Dataset::load(dir.path()).unwrap();
    let cov = Coverage::build(&ds, None, ReachMode::Home, Weight::Count, &Default::default()).unwrap();
    let params = PlacementParams {
        budget: 100.0,
        segment: None,
        reach: ReachMode::Home,
        weight: Weight::Count,
        must_include: vec!["S1".into(), "S1".into()],
        exclude: vec![],
        kinds: Vec::new(),
        time_limit_s: 2.0,
    };
    let report = cov.plan(&params).unwrap();
    assert_eq!((report.sites.len(), report.cost, report.reach), (1, 60.0, 1.0));
}
