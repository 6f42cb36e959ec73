//! Heatmap: hand-computed cases for every metric and mode, the privacy floor, a brute-force
//! reference on random inputs, and a golden CSV.

use std::collections::{HashMap, HashSet};

use custmap_engine::analytics::{heatmap, HeatmapBase, HeatmapParams, KFloor, Location, Reduction};
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use h3o::{LatLng, Resolution};
use polars::prelude::*;
use proptest::prelude::*;

use crate::common::{dataset_dir, load};

const P1: (f64, f64) = (30.55, 114.31);
const P2: (f64, f64) = (30.60, 114.27);

fn cell(p: (f64, f64), res: u8) -> String {
    let c = LatLng::new(p.0, p.1).unwrap().to_cell(Resolution::try_from(res).unwrap());
    c.to_string()
}

/// A: home and work at P1; B: home P1, work P2; C: home P2, no budget, bought for 2.5M;
/// D: work P2 only. A bought for 3M (plus a cancelled deal that must not count).
fn small() -> (tempfile::TempDir, Dataset) {
    let customers = format!(
        "customer_id,home_lat,home_lng,work_lat,work_lng,budget\n\
A,{a},{b},{a},{b},4000000\n\
B,{a},{b},{c},{d},2000000\n\
C,{c},{d},,,\n\
D,,,{c},{d},1000000\n",
        a = P1.0,
        b = P1.1,
        c = P2.0,
        d = P2.1
    );
    let deals = b"deal_id,customer_id,signed_at,price,status\n\
D1,A,2025-03-01,3000000,signed\n\
D2,A,2025-02-01,1000000,cancelled\n\
D3,C,2025-04-01,2500000,signed\n";
    let (dir, ds) = load(&[("customers.csv", customers.as_bytes()), ("deals.csv", deals)]);
    (dir, ds.unwrap())
}

fn params(location: Location, k: u32) -> HeatmapParams {
    HeatmapParams { res: Res::new(9).unwrap(), location, k: KFloor::new(k).unwrap(), ..HeatmapParams::default() }
}

/// Row of the output for a hex id, as name -> f64.
fn row(df: &DataFrame, hex: &str) -> HashMap<String, f64> {
    let ids = df.column("hex_id").unwrap().str().unwrap();
    let i = ids.iter().position(|h| h == Some(hex)).unwrap_or_else(|| panic!("no cell {hex} in {df}"));
    df.columns()
        .iter()
        .filter(|c| c.name().as_str() != "hex_id")
        .map(|c| (c.name().to_string(), c.cast(&DataType::Float64).unwrap().f64().unwrap().get(i).unwrap_or(f64::NAN)))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn home_mode_by_hand() {
    let (_d, ds) = small();
    let out = heatmap(&ds, &params(Location::Home, 1)).unwrap();
    assert_eq!(out.cells.height(), 2);
    let p1 = row(&out.cells, &cell(P1, 9));
    assert_eq!((p1["customers"], p1["prospects"], p1["buyers"], p1["deals"]), (2.0, 2.0, 1.0, 1.0));
    assert!(close(p1["revenue"], 3.0e6));
    assert!(close(p1["purchasing_power"], 6.0e6));
    assert!(close(p1["purchasing_power_share"], 6.0 / 8.5));
    assert!(close(p1["conversion"], 0.5));
    // City rate p = 2 buyers / 3 customers; m = 10.
    assert!(close(p1["conversion_smoothed"], (1.0 + 10.0 * 2.0 / 3.0) / 12.0));
    // Everyone is a prospect (no segment): q = 1, lift = 100.
    assert!(close(p1["lift"], 100.0));
    assert_eq!(p1["res"], 9.0);
    let p2 = row(&out.cells, &cell(P2, 9));
    // C has no budget but bought: purchasing power comes from the deal price.
    assert_eq!((p2["customers"], p2["buyers"]), (1.0, 1.0));
    assert!(close(p2["purchasing_power"], 2.5e6));
    assert_eq!(out.totals.customers, 3);
}

#[test]
fn both_mode_counts_a_person_once_per_cell() {
    let (_d, ds) = small();
    let out = heatmap(&ds, &params(Location::Both, 1)).unwrap();
    let p1 = row(&out.cells, &cell(P1, 9));
    let p2 = row(&out.cells, &cell(P2, 9));
    // A lives and works in P1's cell: counted once there.
    assert_eq!((p1["customers"], p1["buyers"], p1["deals"]), (2.0, 1.0, 1.0));
    assert!(close(p1["purchasing_power"], 6.0e6));
    assert_eq!((p2["customers"], p2["buyers"]), (3.0, 1.0));
    assert!(close(p2["purchasing_power"], 2.0e6 + 2.5e6 + 1.0e6));
    assert!(close(p2["revenue"], 2.5e6));
    assert_eq!(out.totals.customers, 4);
    // Shares in both mode are of the map's total, so they still sum to 1.
    let shares: f64 = out.cells.column("purchasing_power_share").unwrap().f64().unwrap().sum().unwrap();
    assert!(close(shares, 1.0));
}

#[test]
fn work_mode_and_segment() {
    let (_d, ds) = small();
    let mut p = params(Location::Work, 1);
    p.segment = Some("budget >= 2000000".into());
    let out = heatmap(&ds, &p).unwrap();
    let p1 = row(&out.cells, &cell(P1, 9));
    let p2 = row(&out.cells, &cell(P2, 9));
    assert_eq!((p1["customers"], p1["prospects"]), (1.0, 1.0));
    assert_eq!((p2["customers"], p2["prospects"]), (2.0, 1.0));
    assert!(close(p2["purchasing_power"], 2.0e6));
    // q = 2 prospects / 3 customers; lift shrunk with m = 10.
    let q = 2.0 / 3.0;
    assert!(close(p2["lift"], 100.0 * ((1.0 + 10.0 * q) / 12.0) / q));
}

#[test]
fn bad_segment_is_a_user_error() {
    let (_d, ds) = small();
    let mut p = params(Location::Home, 1);
    p.segment = Some("salary > 5".into());
    let err = heatmap(&ds, &p).unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("salary"));
}

/// Centres of two res-9 children of one res-8 cell.
fn siblings() -> ((f64, f64), (f64, f64), String) {
    let parent = LatLng::new(30.55, 114.31).unwrap().to_cell(Resolution::Eight);
    let kids: Vec<_> = parent.children(Resolution::Nine).take(2).collect();
    let c = |i: usize| {
        let p = LatLng::from(kids[i]);
        (p.lat(), p.lng())
    };
    (c(0), c(1), parent.to_string())
}

#[test]
fn small_cells_merge_into_their_parent() {
    let (a, b, parent) = siblings();
    let customers = format!(
        "customer_id,home_lat,home_lng\nA,{},{}\nB,{},{}\nC,{},{}\nD,{},{}\n",
        a.0, a.1, a.0, a.1, b.0, b.1, b.0, b.1
    );
    let (_d, ds) = load(&[("customers.csv", customers.as_bytes())]);
    let out = heatmap(&ds.unwrap(), &params(Location::Home, 3)).unwrap();
    assert_eq!(out.cells.height(), 1);
    let r = row(&out.cells, &parent);
    assert_eq!((r["res"], r["customers"]), (8.0, 4.0));
    assert_eq!((out.suppressed.merged, out.suppressed.dropped), (2, 0));
}

/// Regression: a person with home and work in two small sibling cells must count once in the
/// parent, or the parent could pass the floor with fewer than k people.
#[test]
fn merge_counts_a_person_once_in_the_parent() {
    let (a, b, _parent) = siblings();
    let customers = format!("customer_id,home_lat,home_lng,work_lat,work_lng\nA,{},{},{},{}\n", a.0, a.1, b.0, b.1);
    let (_d, ds) = load(&[("customers.csv", customers.as_bytes())]);
    let out = heatmap(&ds.unwrap(), &params(Location::Both, 2)).unwrap();
    assert_eq!(out.cells.height(), 0, "{}", out.cells);
    assert_eq!(out.suppressed.merged, 2 + 1);
    assert_eq!(out.suppressed.dropped, 1);
}

#[test]
fn k_ring_smoothing_spreads_to_the_disk() {
    let (_d, ds) = small();
    let mut p = params(Location::Home, 1);
    p.smooth = 1;
    let out = heatmap(&ds, &p).unwrap();
    let p1 = row(&out.cells, &cell(P1, 9));
    // Centre weight 1, six neighbours weight 1/2 each, all empty: 6M / (1 + 3).
    assert!(close(p1["purchasing_power_smoothed"], 6.0e6 / 4.0));
}

/// Regression: the smoothed purchasing power read every cell before the floor, so a published
/// cell's smoothed figure, less its own and its published neighbours' (all in the same table),
/// gave a dropped neighbour's sum: here one person's budget, next door. And the shares'
/// denominator was the city's whole, which less the published cells gave what was dropped.
#[test]
fn regression_smoothing_and_shares_read_no_cell_the_floor_dropped() {
    let centre = LatLng::new(30.55, 114.31).unwrap().to_cell(Resolution::Nine);
    let next = centre.grid_disk::<Vec<_>>(1).into_iter().find(|c| *c != centre).unwrap();
    let (c, n) = (LatLng::from(centre), LatLng::from(next));
    let mut customers = String::from("customer_id,home_lat,home_lng,budget\n");
    for id in ["A", "B", "C"] {
        customers += &format!("{id},{},{},1000000\n", c.lat(), c.lng());
    }
    customers += &format!("D,{},{},9000000\n", n.lat(), n.lng());
    let (_d, ds) = load(&[("customers.csv", customers.as_bytes())]);
    let mut p = params(Location::Home, 3);
    p.smooth = 1;
    let out = heatmap(&ds.unwrap(), &p).unwrap();
    assert_eq!((out.cells.height(), out.suppressed.dropped), (1, 1), "{}", out.cells);
    let r = row(&out.cells, &centre.to_string());
    // Centre weight 1, six neighbours weight 1/2, the dropped one counting as empty.
    assert!(close(r["purchasing_power_smoothed"], 3.0e6 / 4.0), "{}", r["purchasing_power_smoothed"]);
    assert!(close(r["purchasing_power_share"], 1.0), "{}", r["purchasing_power_share"]);
}

/// Regression: `conversion_smoothed` and `lift` shrank toward the city's whole buyer and
/// prospect rates, so with the published prior one cell's smoothed conversion gave the city's
/// buyers, and less the shown cells' buyers, the buyers the floor withheld. The rates now come
/// from the cells whose figures are shown. Also: buyers are withheld where the customers who
/// did not buy are 1 to k-1, as where the buyers are.
#[test]
fn regression_city_rates_read_no_withheld_buyers() {
    let p3 = (30.65, 114.20);
    let mut customers = String::from("customer_id,home_lat,home_lng,budget\n");
    let mut deals = String::from("deal_id,customer_id,signed_at,price\n");
    // Five customers in each of three cells: none bought at P1, one at P2, four at P3.
    for (place, (lat, lng), bought) in [("a", P1, 0), ("b", P2, 1), ("c", p3, 4)] {
        for i in 0..5 {
            customers += &format!("{place}{i},{lat},{lng},1000000\n");
            if i < bought {
                deals += &format!("D{place}{i},{place}{i},2025-01-01,2000000\n");
            }
        }
    }
    let (_d, ds) = load(&[("customers.csv", customers.as_bytes()), ("deals.csv", deals.as_bytes())]);
    let out = heatmap(&ds.unwrap(), &params(Location::Home, 5)).unwrap();
    assert_eq!(out.cells.height(), 3, "{}", out.cells);
    assert_eq!(out.suppressed.withheld, 2, "one buyer at P2, one non-buyer at P3");
    assert!(row(&out.cells, &cell(P2, 9))["buyers"].is_nan() && row(&out.cells, &cell(p3, 9))["buyers"].is_nan());
    let a = row(&out.cells, &cell(P1, 9));
    assert_eq!(a["buyers"], 0.0);
    // The only cell shown has no buyer: the rate shrunk toward is 0, not the city's 5 / 15.
    assert_eq!(a["conversion_smoothed"], 0.0, "the withheld buyers show through the prior");
}

#[test]
fn golden_csv() {
    let (_d, ds) = small();
    let out = heatmap(&ds, &params(Location::Both, 1)).unwrap();
    let mut got = Vec::new();
    CsvWriter::new(&mut got).finish(&mut out.cells.clone()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/heatmap_small_both.csv");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("golden file (regenerate with UPDATE_GOLDEN=1)");
    let got = String::from_utf8(got).unwrap();
    let (gl, wl): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(gl.len(), wl.len());
    for (g, w) in gl.iter().zip(&wl) {
        for (a, b) in g.split(',').zip(w.split(',')) {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!(close(x, y), "{a} vs {b}"),
                _ => assert_eq!(a, b),
            }
        }
    }
}

// ---- brute-force reference and the floor, on random data ----

#[derive(Debug, Clone)]
struct Person {
    home: Option<usize>,
    work: Option<usize>,
    budget: Option<u32>,
    deal: Option<u32>,
}

fn spots() -> Vec<(f64, f64)> {
    (0..12).map(|i| (30.55 + 0.004 * f64::from(i % 4), 114.30 + 0.005 * f64::from(i / 4))).collect()
}

fn person() -> impl Strategy<Value = Person> {
    (
        proptest::option::of(0usize..12),
        proptest::option::of(0usize..12),
        proptest::option::of(1u32..50),
        proptest::option::of(1u32..50),
    )
        .prop_filter("needs a place", |(h, w, _, _)| h.is_some() || w.is_some())
        .prop_map(|(home, work, budget, deal)| Person { home, work, budget, deal })
}

fn write_people(people: &[Person]) -> (tempfile::TempDir, Dataset) {
    let s = spots();
    let fmt = |o: Option<usize>, i: usize| {
        o.map_or(String::new(), |x| if i == 0 { s[x].0.to_string() } else { s[x].1.to_string() })
    };
    let mut customers = String::from("customer_id,home_lat,home_lng,work_lat,work_lng,budget\n");
    let mut deals = String::from("deal_id,customer_id,signed_at,price\n");
    for (i, p) in people.iter().enumerate() {
        let budget = p.budget.map_or(String::new(), |b| (f64::from(b) * 1e5).to_string());
        customers +=
            &format!("P{i},{},{},{},{},{budget}\n", fmt(p.home, 0), fmt(p.home, 1), fmt(p.work, 0), fmt(p.work, 1));
        if let Some(d) = p.deal {
            deals += &format!("D{i},P{i},2025-01-01,{}\n", f64::from(d) * 1e5);
        }
    }
    let dir = dataset_dir(&[("customers.csv", customers.as_bytes()), ("deals.csv", deals.as_bytes())]);
    let ds = Dataset::load(dir.path()).unwrap();
    (dir, ds)
}

/// Per cell: (customers, prospects, buyers, revenue, purchasing power) computed person by person.
fn brute_force(
    people: &[Person],
    location: Location,
    res: u8,
    min_budget: u32,
) -> HashMap<String, (i64, i64, i64, f64, f64)> {
    let s = spots();
    let mut out: HashMap<String, (i64, i64, i64, f64, f64)> = HashMap::new();
    for p in people {
        let anchors: Vec<usize> = match location {
            Location::Home => p.home.into_iter().collect(),
            Location::Work => p.work.into_iter().collect(),
            Location::Both => p.home.into_iter().chain(p.work).collect(),
        };
        let cells: HashSet<String> = anchors.iter().map(|&a| cell(s[a], res)).collect();
        let prospect = p.budget.is_some_and(|b| b >= min_budget);
        let budget = p.budget.or(p.deal).map_or(0.0, |b| f64::from(b) * 1e5);
        for c in cells {
            let e = out.entry(c).or_default();
            e.0 += 1;
            e.1 += i64::from(prospect);
            e.2 += i64::from(p.deal.is_some());
            e.3 += p.deal.map_or(0.0, |d| f64::from(d) * 1e5);
            e.4 += if prospect { budget } else { 0.0 };
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn matches_brute_force(people in proptest::collection::vec(person(), 1..40), mode in 0usize..3, res in 7u8..11, min_budget in 1u32..50) {
        let location = [Location::Home, Location::Work, Location::Both][mode];
        let (_d, ds) = write_people(&people);
        let mut p = params(location, 1);
        p.res = Res::new(res).unwrap();
        p.segment = Some(format!("budget >= {}", f64::from(min_budget) * 1e5));
        let want = brute_force(&people, location, res, min_budget);
        for by in [Reduction::Auto, Reduction::Places, Reduction::Rows] {
            let base = HeatmapBase::build_by(&ds, location, p.segment.as_deref(), p.res, by).unwrap();
            let out = base.at(&p).unwrap();
            prop_assert_eq!(out.cells.height(), want.len(), "{:?}", by);
            for (hex, w) in &want {
                let r = row(&out.cells, hex);
                prop_assert_eq!((r["customers"] as i64, r["prospects"] as i64, r["buyers"] as i64), (w.0, w.1, w.2));
                prop_assert!(close(r["revenue"], w.3) && close(r["purchasing_power"], w.4));
            }
        }
    }

    #[test]
    fn no_cell_below_the_floor(people in proptest::collection::vec(person(), 1..60), mode in 0usize..3, k in 1u32..12, res in 8u8..12) {
        let location = [Location::Home, Location::Work, Location::Both][mode];
        let (_d, ds) = write_people(&people);
        let mut p = params(location, k);
        p.res = Res::new(res).unwrap();
        let out = heatmap(&ds, &p).unwrap();
        let customers = out.cells.column("customers").unwrap().i64().unwrap();
        prop_assert!(customers.into_no_null_iter().all(|c| c >= i64::from(k)));
        if location != Location::Both && out.suppressed.dropped == 0 {
            // One anchor per person: nothing lost, nothing counted twice.
            prop_assert_eq!(customers.sum().unwrap_or(0), out.totals.customers);
        }
    }
}

#[test]
fn cached_base_serves_coarser_maps_by_rollup() {
    use custmap_engine::spatial::h3::parent_bits;
    let people: Vec<Person> = (0..40)
        .map(|i| Person { home: Some(i % 12), work: Some((i * 5) % 12), budget: Some(10 + i as u32), deal: None })
        .collect();
    let (_d, ds) = write_people(&people);
    let base = HeatmapBase::build(&ds, Location::Both, None, Res::new(10).unwrap()).unwrap();
    let fine = base.at(&params_at(10)).unwrap().cells;
    let coarse = base.at(&params_at(8)).unwrap().cells;
    // Every fine cell's customers land in its parent; a person counts once per parent.
    let mut want: HashMap<String, HashSet<usize>> = HashMap::new();
    let s = spots();
    for (i, p) in people.iter().enumerate() {
        for a in [p.home, p.work].into_iter().flatten() {
            let c = u64::from_str_radix(&cell(s[a], 10), 16).unwrap();
            want.entry(format!("{:x}", parent_bits(c, Res::new(8).unwrap()))).or_default().insert(i);
        }
    }
    assert_eq!(coarse.height(), want.len());
    for (hex, who) in &want {
        assert_eq!(row(&coarse, hex)["customers"] as usize, who.len());
    }
    assert!(fine.height() >= coarse.height());
    assert!(base.at(&params_at(11)).is_err(), "a base cannot serve a finer resolution");
}

#[test]
fn reindexed_base_equals_a_direct_build_at_any_resolution() {
    let people: Vec<Person> = (0..60)
        .map(|i| Person { home: Some(i % 12), work: Some((i * 7) % 12), budget: Some(5 + i as u32), deal: None })
        .collect();
    let (_d, ds) = write_people(&people);
    let cached = HeatmapBase::build(&ds, Location::Both, None, Res::new(10).unwrap()).unwrap();
    for res in [5u8, 8, 10, 12] {
        let direct = HeatmapBase::build(&ds, Location::Both, None, Res::new(res).unwrap()).unwrap();
        let served = cached.reindexed(Res::new(res).unwrap()).unwrap();
        assert_eq!(served.res.get(), res);
        assert_eq!(served.at(&params_at(res)).unwrap().cells, direct.at(&params_at(res)).unwrap().cells, "res {res}");
    }
}

fn params_at(res: u8) -> HeatmapParams {
    HeatmapParams {
        res: Res::new(res).unwrap(),
        location: Location::Both,
        k: KFloor::new(1).unwrap(),
        ..HeatmapParams::default()
    }
}

/// Two coordinates 1e-8 degrees apart are two places: groups are keyed by exact coordinates.
#[test]
fn nearby_coordinates_are_distinct_groups() {
    let customers =
        b"customer_id,work_lat,work_lng\nA,30.55000001,114.31\nB,30.55000002,114.31\nC,30.55000002,114.31\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    let base = HeatmapBase::build_by(&ds, Location::Work, None, Res::new(9).unwrap(), Reduction::Places).unwrap();
    assert_eq!(base.group_count(), 2);
    assert_eq!(base.totals.customers, 3);
}

/// Near and shared coordinates together, in `both` mode: every person is counted once per
/// distinct cell.
#[test]
fn nearby_and_shared_coordinates_in_both_mode() {
    let customers = b"customer_id,home_lat,home_lng,work_lat,work_lng\n\
A,30.50,114.30,30.55000001,114.31\n\
B,30.50,114.30,30.55000002,114.31\n\
C,30.60,114.40,30.55000002,114.31\n\
D,30.60,114.40,30.70,114.50\n\
E,30.60,114.40,30.70,114.50\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    let base = HeatmapBase::build_by(&ds, Location::Both, None, Res::new(9).unwrap(), Reduction::Places).unwrap();
    // (home, work) pairs: A, B, C distinct exactly; D and E share one.
    assert_eq!(base.group_count(), 4);
    assert_eq!(base.totals.customers, 5);
    let cells = base.at(&params_at_both(9)).unwrap().cells;
    let total: i64 = cells.column("customers").unwrap().i64().unwrap().sum().unwrap();
    // Homes: two cells (A,B | C,D,E); works: one cell for A,B,C and one for D,E; nobody shares a cell
    // between their own home and work, so each person counts in two cells.
    assert_eq!(total, 10);
}

/// `Auto` groups by place when customers share coordinates (and can re-index), and goes straight
/// to cells when they do not (and then says it cannot re-index, rather than guessing).
#[test]
fn auto_reduction_follows_how_often_coordinates_repeat() {
    let people: Vec<Person> =
        (0..80).map(|i| Person { home: Some(i % 12), work: None, budget: Some(10), deal: None }).collect();
    let (_d, ds) = write_people(&people);
    let base = HeatmapBase::build(&ds, Location::Home, None, Res::new(9).unwrap()).unwrap();
    assert!(base.can_reindex());
    assert_eq!(base.group_count(), 12);

    let mut csv = String::from("customer_id,home_lat,home_lng\n");
    for i in 0..80 {
        csv.push_str(&format!("C{i},{},{}\n", 30.5 + f64::from(i) * 1e-4, 114.3 + f64::from(i) * 1e-4));
    }
    let (_d2, ds) = load(&[("customers.csv", csv.as_bytes())]);
    let ds = ds.unwrap();
    let base = HeatmapBase::build(&ds, Location::Home, None, Res::new(9).unwrap()).unwrap();
    assert!(!base.can_reindex());
    assert!(base.reindexed(Res::new(8).unwrap()).is_err());
    let places = HeatmapBase::build_by(&ds, Location::Home, None, Res::new(9).unwrap(), Reduction::Places).unwrap();
    assert_eq!(places.group_count(), 80);
    assert_eq!(base.at(&params_at(9)).unwrap().cells, places.at(&params_at(9)).unwrap().cells);
}

fn params_at_both(res: u8) -> HeatmapParams {
    HeatmapParams { location: Location::Both, ..params_at(res) }
}

/// regression: a buyer's revenue was summed naively once the per-buyer deals became a loop
/// (0.1 + 0.2 + 0.3 = 0.6000000000000001), where the polars group-by it replaced sums with
/// Kahan compensation (0.6): every figure must stay the same to the bit.
#[test]
fn regression_a_buyers_revenue_is_summed_as_the_polars_group_by_summed_it() {
    let customers = format!("customer_id,home_lat,home_lng,budget\nA,{},{},4000000\n", P1.0, P1.1);
    let deals = b"deal_id,customer_id,signed_at,price,status\n\
D1,A,2025-03-01,0.1,signed\n\
D2,A,2025-03-02,0.2,signed\n\
D3,A,2025-03-03,0.3,signed\n";
    let (_d, ds) = load(&[("customers.csv", customers.as_bytes()), ("deals.csv", deals)]);
    let out = heatmap(&ds.unwrap(), &params(Location::Home, 1)).unwrap();
    let p1 = row(&out.cells, &cell(P1, 9));
    assert_eq!(p1["deals"], 3.0);
    assert_eq!(p1["revenue"].to_bits(), 0.6f64.to_bits(), "revenue {}", p1["revenue"]);
}

/// A filter naming no column (`1 = 1`) took its rows' shape from the table's first column, which
/// a heatmap that keeps only the columns it reads may have dropped: polars then failed on a
/// missing column. It now takes the shape from the id, which every load keeps.
#[test]
fn regression_a_constant_filter_works_when_the_first_column_was_not_kept() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let dir = dataset_dir(&[(
        "customers.csv",
        b"name,customer_id,work_lat,work_lng,budget\nann,A,30.55,114.31,100\nbo,B,30.55,114.31,200\ncy,C,30.56,114.32,300\n",
    )]);
    let full = Dataset::load(dir.path()).unwrap();
    for filter in ["1 = 1", "1 = 2", "TRUE"] {
        let columns = heatmap::columns_read(Location::Work, Some(filter));
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let opts = IngestOptions { customer_columns: Some(&columns), ..IngestOptions::default() };
        let lean = Dataset::load_with(dir.path(), &[Table::Deals], opts).unwrap();
        assert!(lean.customers.column("name").is_err(), "the first column is not kept");
        let mut p = params(Location::Work, 1);
        p.segment = Some(filter.into());
        let got = heatmap::heatmap(&lean, &p).unwrap();
        let want = heatmap::heatmap(&full, &p).unwrap();
        assert!(got.cells.equals_missing(&want.cells), "{filter}: {:?} vs {:?}", got.cells, want.cells);
    }
}

/// A published cell's figures.
#[derive(Debug, Clone, Default, PartialEq)]
struct Published {
    res: i64,
    customers: i64,
    prospects: i64,
    buyers: i64,
    revenue: f64,
    purchasing_power: f64,
}

/// The floor worked person by person, independently of the engine's groups: per level, each
/// person counts once in each distinct cell of their still-moving places; a cell holds with at
/// least k customers and neither its prospects nor the others 1 to k-1; places in small cells
/// move to the parent, at most `levels` times, and what is still small is dropped. Returns each
/// published cell's figures and the (merged, dropped) cell counts.
fn floor_by_person(
    people: &[Person],
    location: Location,
    (base_res, res): (u8, u8),
    min_budget: u32,
    k: i64,
    levels: u8,
) -> (HashMap<String, Published>, (u64, u64)) {
    let s = spots();
    // As a base at `base_res` serves `res`: its cells' ancestors (H3 cells do not nest, so these
    // may differ from the cells at `res` near cell edges).
    let at = |p: (f64, f64)| {
        let fine = LatLng::new(p.0, p.1).unwrap().to_cell(Resolution::try_from(base_res).unwrap());
        fine.parent(Resolution::try_from(res).unwrap()).unwrap()
    };
    let mut moving: Vec<Vec<h3o::CellIndex>> = people
        .iter()
        .map(|p| match location {
            Location::Home => p.home.into_iter().map(|a| at(s[a])).collect(),
            Location::Work => p.work.into_iter().map(|a| at(s[a])).collect(),
            Location::Both => p.home.into_iter().chain(p.work).map(|a| at(s[a])).collect(),
        })
        .collect();
    let prospect: Vec<bool> = people.iter().map(|p| p.budget.is_some_and(|b| b >= min_budget)).collect();
    let mut published: Vec<HashSet<h3o::CellIndex>> = vec![HashSet::new(); people.len()];
    let (mut merged, mut dropped) = (0u64, 0u64);
    for level in 0..=levels {
        let mut count: HashMap<h3o::CellIndex, (i64, i64)> = HashMap::new();
        for (i, places) in moving.iter().enumerate() {
            for c in places.iter().collect::<HashSet<_>>() {
                let e = count.entry(*c).or_default();
                e.0 += 1;
                e.1 += i64::from(prospect[i]);
            }
        }
        let small_part = |n: i64| n > 0 && n < k;
        let small: HashSet<h3o::CellIndex> =
            count.iter().filter(|(_, (c, p))| *c < k || small_part(*p) || small_part(c - p)).map(|(c, _)| *c).collect();
        for (i, places) in moving.iter_mut().enumerate() {
            published[i].extend(places.iter().filter(|c| !small.contains(c)));
            places.retain(|c| small.contains(c));
        }
        if small.is_empty() {
            break;
        }
        let coarser = u8::from(moving.iter().flatten().next().unwrap().resolution()).checked_sub(1);
        match coarser.filter(|_| level < levels) {
            Some(r) => {
                merged += small.len() as u64;
                for places in &mut moving {
                    for c in places.iter_mut() {
                        *c = c.parent(Resolution::try_from(r).unwrap()).unwrap();
                    }
                }
            }
            None => {
                dropped = small.len() as u64;
                break;
            }
        }
    }
    let mut out: HashMap<String, Published> = HashMap::new();
    for (i, cells) in published.iter().enumerate() {
        for c in cells {
            let e = out
                .entry(c.to_string())
                .or_insert(Published { res: i64::from(u8::from(c.resolution())), ..Published::default() });
            e.customers += 1;
            e.prospects += i64::from(prospect[i]);
            e.buyers += i64::from(people[i].deal.is_some());
            e.revenue += people[i].deal.map_or(0.0, |d| f64::from(d) * 1e5);
            e.purchasing_power += if prospect[i] { people[i].budget.map_or(0.0, |b| f64::from(b) * 1e5) } else { 0.0 };
        }
    }
    (out, (merged, dropped))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The floor's merge-up, with home and work, segments and floors up to 6, against the
    /// person-by-person reference, for every reduction and for a base one resolution finer
    /// rolled up: the same cells at the same resolutions with the same people, prospects,
    /// purchasing power, buyers and revenue (those two withheld exactly where buyers are 1 to
    /// k-1), and the same merged, dropped and withheld counts.
    #[test]
    fn floor_matches_a_person_by_person_merge_up(
        people in proptest::collection::vec(person(), 1..60),
        mode in 0usize..3,
        k in 2u32..7,
        res in 8u8..12,
        min_budget in 1u32..50,
        levels in 0u8..4,
    ) {
        let location = [Location::Home, Location::Work, Location::Both][mode];
        let (_d, ds) = write_people(&people);
        let mut p = params(location, k);
        p.res = Res::new(res).unwrap();
        p.merge_levels = levels;
        p.segment = Some(format!("budget >= {}", f64::from(min_budget) * 1e5));
        let small = |n: i64| n > 0 && n < i64::from(k);
        let withheld_in = |w: &Published| small(w.buyers) || small(w.customers - w.buyers);
        for (base_res, by) in [(res, Reduction::Places), (res, Reduction::Rows), (res + 1, Reduction::Auto)] {
            let (want, (merged, dropped)) =
                floor_by_person(&people, location, (base_res, res), min_budget, i64::from(k), levels);
            let withheld = want.values().filter(|w| withheld_in(w)).count() as u64;
            let base = HeatmapBase::build_by(&ds, location, p.segment.as_deref(), Res::new(base_res).unwrap(), by).unwrap();
            let out = base.at(&p).unwrap();
            let what = format!("{by:?} from res {base_res}");
            prop_assert_eq!((out.suppressed.merged, out.suppressed.dropped), (merged, dropped), "{}", what);
            prop_assert_eq!(out.suppressed.withheld, withheld, "{}", what);
            prop_assert_eq!(out.cells.height(), want.len(), "{}: {}", what, out.cells);
            for (hex, w) in &want {
                let r = row(&out.cells, hex);
                prop_assert_eq!((r["res"] as i64, r["customers"] as i64, r["prospects"] as i64), (w.res, w.customers, w.prospects), "{} {}", what, hex);
                prop_assert!(close(r["purchasing_power"], w.purchasing_power), "{} {}", what, hex);
                if withheld_in(w) {
                    prop_assert!(r["buyers"].is_nan() && r["revenue"].is_nan() && r["deals"].is_nan(), "{} {}: {} buyers shown", what, hex, w.buyers);
                } else {
                    prop_assert_eq!(r["buyers"] as i64, w.buyers, "{} {}", what, hex);
                    prop_assert!(close(r["revenue"], w.revenue), "{} {}", what, hex);
                }
            }
        }
    }
}
