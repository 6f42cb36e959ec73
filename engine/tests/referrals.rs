//! Referral chains: a hand-made forest with every column known, and the subtree aggregates
//! against a brute-force descendant walk on random forests.

use custmap_engine::analytics::referrals::{
    by_channel, by_referrer, member_value, referrals, Chain, Forest, ReferralsBy, ReferralsParams, NO_CHANNEL,
};
use custmap_engine::analytics::{KFloor, Location};
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use polars::prelude::*;
use proptest::prelude::*;

/// R (web, buys 100) -> A (200) -> B (300; a cancelled 999 too) -> C (no deal); R -> D (only a
/// cancelled deal); N (tv, no deal) -> M (50); X and Y refer each other (a cycle); U names an
/// unknown referrer; S refers themself.
fn hand_forest() -> (tempfile::TempDir, Dataset) {
    let customers = b"customer_id,home_lat,home_lng,referred_by\n\
R,30.5,114.3,\nA,30.5,114.3,R\nB,30.5,114.3,A\nC,30.5,114.3,B\nD,30.5,114.3,R\nN,30.5,114.3,\nM,30.5,114.3,N\n\
X,30.5,114.3,Y\nY,30.5,114.3,X\nU,30.5,114.3,GHOST\nS,30.5,114.3,S\n";
    let deals = b"deal_id,customer_id,signed_at,price,status\n\
DR,R,2025-02-01,100,signed\nDA,A,2025-03-01,200,signed\nDB,B,2025-04-01,300,signed\nDB2,B,2025-04-02,999,cancelled\n\
DD,D,2025-04-01,400,cancelled\nDM,M,2025-04-01,50,signed\n";
    let touchpoints = b"customer_id,ts,channel,event\nR,2025-01-01,web,lead\nN,2025-01-02,tv,lead\nN,2024-12-01,portal,visit\nA,2025-01-05,web,lead\n";
    let dir = crate::common::dataset_dir(&[
        ("customers.csv", customers),
        ("deals.csv", deals),
        ("touchpoints.csv", touchpoints),
    ]);
    let ds = Dataset::load(dir.path()).unwrap();
    (dir, ds)
}

fn strings(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c).unwrap().str().unwrap().iter().map(|s| s.unwrap_or("").to_string()).collect()
}

fn floats(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().collect()
}

#[test]
fn hand_made_forest_by_referrer() {
    let (_d, ds) = hand_forest();
    let f = Forest::of(&ds).unwrap();
    let t = by_referrer(&f).unwrap();
    assert_eq!(strings(&t, "customer_id"), ["R", "A", "N", "B", "Y"]);
    let col = |c: &str| floats(&t, c).into_iter().map(|v| v.unwrap()).collect::<Vec<_>>();
    assert_eq!(col("direct_referrals"), [2.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(col("direct_buyers"), [1.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(col("chain_customers"), [4.0, 2.0, 1.0, 1.0, 1.0]);
    assert_eq!(col("chain_buyers"), [2.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(col("chain_revenue"), [500.0, 300.0, 50.0, 0.0, 0.0]);
    assert_eq!(col("generations"), [3.0, 2.0, 1.0, 1.0, 1.0]);
    assert_eq!(col("own_revenue"), [100.0, 200.0, 0.0, 300.0, 0.0]);
    assert_eq!(strings(&t, "channel"), ["web", "web", "tv", "", ""]);
    let mut problems: Vec<(String, String)> =
        f.problems.iter().map(|p| (p.customer_id.clone(), p.reason.clone())).collect();
    problems.sort();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].0 == "S" && problems[0].1 == "self-referral");
    assert!(problems[1].0 == "U" && problems[1].1.contains("not an accepted customer"));
    assert!(problems[2].0 == "Y" && problems[2].1.contains("cycle"), "{problems:?}");
}

#[test]
fn hand_made_forest_by_channel_and_member_value() {
    let (_d, ds) = hand_forest();
    let f = Forest::of(&ds).unwrap();
    let t = by_channel(&f).unwrap();
    assert_eq!(strings(&t, "channel"), ["web", "tv", NO_CHANNEL]);
    assert_eq!(floats(&t, "customers"), [Some(1.0), Some(1.0), Some(3.0)]);
    assert_eq!(floats(&t, "revenue"), [Some(100.0), Some(0.0), Some(0.0)]);
    assert_eq!(floats(&t, "referred_customers"), [Some(4.0), Some(1.0), Some(1.0)]);
    assert_eq!(floats(&t, "referred_buyers"), [Some(2.0), Some(1.0), Some(0.0)]);
    assert_eq!(floats(&t, "referred_revenue"), [Some(500.0), Some(50.0), Some(0.0)]);
    assert_eq!(floats(&t, "multiplier"), [Some(6.0), None, None]);
    assert!(strings(&t, "notes")[1].contains("signed nothing"));

    let m = member_value(&f);
    assert_eq!((m.customers, m.referred_customers, m.advocates), (11, 6, 5));
    assert_eq!(m.referred_share_of_buyers, Some(0.75));
    assert_eq!(m.referred_share_of_revenue, Some(550.0 / 650.0));
    assert_eq!((m.referred_conversion, m.other_conversion), (Some(0.5), Some(0.2)));
    assert_eq!(m.depth_histogram, [5, 4, 1, 1]);
    assert_eq!(m.ignored_links, 3);

    // The floor: with k = 2 the one-root web and tv rows go; the (no touchpoint) row keeps its
    // roots and withholds its single referred customer.
    let params = ReferralsParams {
        by: ReferralsBy::Channel,
        k: KFloor::new(2).unwrap(),
        res: Res::new(8).unwrap(),
        location: Location::Home,
    };
    let r = referrals(&ds, &params).unwrap();
    assert_eq!(strings(&r.table, "channel"), [NO_CHANNEL]);
    assert_eq!(floats(&r.table, "referred_customers"), [None]);
    assert_eq!((r.dropped, r.withheld), (2, 1));
}

/// Descendant aggregates by walking up from every customer: the obvious, quadratic way.
fn brute(parent: &[Option<u32>], revenue: &[f64], buyer: &[bool]) -> Vec<Chain> {
    let n = parent.len();
    let mut out = vec![Chain::default(); n];
    for u in 0..n {
        let mut depth = 0;
        let mut v = u;
        while let Some(p) = parent[v] {
            depth += 1;
            let c = &mut out[p as usize];
            if depth == 1 {
                c.direct_referrals += 1;
                c.direct_buyers += u64::from(buyer[u]);
            }
            c.chain_customers += 1;
            c.chain_buyers += u64::from(buyer[u]);
            c.chain_revenue += revenue[u];
            c.generations = c.generations.max(depth);
            v = p as usize;
        }
    }
    out
}

proptest! {
    #[test]
    fn chains_match_a_brute_force_walk(
        links in proptest::collection::vec((any::<bool>(), any::<u32>(), 0u32..5), 1..120)
    ) {
        // Parents come before children, so the forest is acyclic by construction.
        let parent: Vec<Option<u32>> = links
            .iter()
            .enumerate()
            .map(|(i, (has, to, _))| (*has && i > 0).then(|| to % i as u32))
            .collect();
        let revenue: Vec<f64> = links.iter().map(|(_, _, r)| f64::from(*r) * 100.0).collect();
        let buyer: Vec<bool> = revenue.iter().map(|r| *r > 0.0).collect();
        let n = parent.len();
        let f = Forest {
            ids: (0..n).map(|i| format!("C{i}")).collect(),
            parent: parent.clone(),
            revenue: revenue.clone(),
            buyer: buyer.clone(),
            channel: vec![None; n],
            problems: Vec::new(),
        };
        prop_assert_eq!(f.chains(), brute(&parent, &revenue, &buyer));
    }
}

#[test]
fn planted_advocate_districts_hold_the_top_referral_cells() {
    use custmap_engine::demo::{generate, DemoFormat, DemoParams};
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city");
    generate(
        &city,
        &DemoParams { customers: 20_000, seed: 7, format: DemoFormat::Csv, ..DemoParams::default() },
        &|_, _| {},
    )
    .unwrap();
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(city.join("truth.json")).unwrap()).unwrap();
    let advocates: Vec<&str> =
        truth["advocate_home_districts"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    let ds = Dataset::load(&city).unwrap();
    let params = ReferralsParams {
        by: ReferralsBy::Cell,
        k: KFloor::new(5).unwrap(),
        res: Res::new(7).unwrap(),
        location: Location::Home,
    };
    let r = referrals(&ds, &params).unwrap();
    let districts = ds.districts.as_ref().unwrap();
    let top: Vec<String> = strings(&r.table, "hex_id").into_iter().take(5).collect();
    assert_eq!(top.len(), 5, "{}", r.table);
    let in_advocate = top
        .iter()
        .filter(|hex| {
            let (lng, lat) = custmap_engine::spatial::h3::center(u64::from_str_radix(hex, 16).unwrap()).unwrap();
            districts.locate(lng, lat).is_some_and(|d| advocates.contains(&d.name.as_str()))
        })
        .count();
    eprintln!("top 5 referral cells in advocate districts: {in_advocate}");
    assert!(in_advocate >= 4, "{in_advocate} of the top 5 cells in {advocates:?}: {}", r.table);
    // Owners refer more, and referred owners again: chains run several generations.
    assert!(r.summary.depth_histogram.len() >= 4, "{:?}", r.summary.depth_histogram);
}
