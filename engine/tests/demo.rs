//! Demo city: determinism, every table valid, and the planted truth recoverable.

use custmap_engine::analytics::{heatmap, HeatmapParams, KFloor, Location};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::spatial::{h3, Districts, Res};
use custmap_engine::Dataset;
use polars::prelude::*;

fn demo(customers: u64, seed: u64, format: DemoFormat) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &DemoParams { customers, seed, format, ..DemoParams::default() }, &|_, _| {}).unwrap();
    dir
}

#[test]
fn same_seed_same_bytes() {
    let a = demo(3_000, 7, DemoFormat::Csv);
    let b = demo(3_000, 7, DemoFormat::Csv);
    for t in ["customers.csv", "touchpoints.csv", "deals.csv", "sites.csv", "campaigns.csv", "truth.json"] {
        let x = std::fs::read(a.path().join(t)).unwrap();
        let y = std::fs::read(b.path().join(t)).unwrap();
        assert!(x == y, "{t} differs between runs with one seed");
    }
    let c = demo(3_000, 8, DemoFormat::Csv);
    assert_ne!(
        std::fs::read(a.path().join("customers.csv")).unwrap(),
        std::fs::read(c.path().join("customers.csv")).unwrap()
    );
}

#[test]
fn every_table_is_written_and_valid() {
    let dir = demo(5_000, 42, DemoFormat::Parquet);
    let ds = Dataset::load(dir.path()).unwrap();
    for t in ["customers", "touchpoints", "deals", "campaigns", "sites", "projects"] {
        let r = ds.report.tables.get(t).unwrap_or_else(|| panic!("no {t}"));
        assert!(r.read > 0, "{t} is empty");
        assert_eq!(
            r.rejected,
            0,
            "{t}: the generator wrote rows its own ingest rejects: {:?}",
            &ds.rejects[..ds.rejects.len().min(5)]
        );
    }
    assert_eq!(ds.customers.height(), 5_000);
    assert!(ds.districts.as_ref().is_some_and(|d| d.0.len() == 13));
    // Realism the analytics depend on: shared building coordinates, some missing values.
    let work = ds.customers.column("work_lat").unwrap().f64().unwrap();
    let distinct = ds
        .customers
        .clone()
        .lazy()
        .select([col("work_lat"), col("work_lng")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .unwrap()
        .height();
    assert!(distinct * 3 < ds.customers.height(), "work places should be shared: {distinct} distinct");
    assert!(work.null_count() > 0);
    assert!(ds.customers.column("budget").unwrap().null_count() > 0);
    let kinds = ds.sites.as_ref().unwrap().column("kind").unwrap().str().unwrap().unique().unwrap().len();
    assert!(kinds >= 5);
}

#[test]
fn high_budget_workers_concentrate_in_the_planted_districts() {
    planted_districts_lead(&demo(10_000, 42, DemoFormat::Csv));
}

fn distinct_places(ds: &Dataset, lat: &str, lng: &str) -> usize {
    ds.customers
        .clone()
        .lazy()
        .select([col(lat), col(lng)])
        .drop_nulls(None)
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .unwrap()
        .height()
}

#[test]
fn the_realistic_building_stock_grows_with_the_city_and_keeps_the_planted_truth() {
    use custmap_engine::demo::Places;
    let gen = |places| {
        let dir = tempfile::tempdir().unwrap();
        let params = DemoParams { customers: 200_000, seed: 3, format: DemoFormat::Parquet, places };
        generate(dir.path(), &params, &|_, _| {}).unwrap();
        dir
    };
    let real = gen(Places::Realistic);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(real.path().join("truth.json")).unwrap()).unwrap();
    assert_eq!(
        (truth["buildings"]["residential"].as_u64(), truth["buildings"]["offices"].as_u64()),
        (Some(6_000), Some(1_000))
    );
    assert_eq!(truth["places"], "realistic");
    let ds = Dataset::load(real.path()).unwrap();
    // Every compound is drawn from (200,000 customers over 6,000 compounds), towers come on top of the offices.
    let homes = distinct_places(&ds, "home_lat", "home_lng");
    let works = distinct_places(&ds, "work_lat", "work_lng");
    assert!((5_500..=6_000).contains(&homes), "{homes} distinct homes");
    assert!(works > 1_000, "{works} distinct work places");
    planted_districts_lead(&real);
    let old = Dataset::load(gen(Places::Concentrated).path()).unwrap();
    assert!(distinct_places(&old, "home_lat", "home_lng") <= 2_500);
    assert_eq!(Places::Realistic.stock(10_000_000), (50_000, 300_000));
    assert_eq!(Places::Realistic.stock(10_000), Places::Concentrated.stock(10_000), "small cities are unchanged");
}

fn planted_districts_lead(dir: &tempfile::TempDir) {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    let hot: Vec<String> =
        truth["hot_work_districts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(hot.len(), 3);
    let ds = Dataset::load(dir.path()).unwrap();
    let params = HeatmapParams {
        res: Res::new(9).unwrap(),
        location: Location::Work,
        segment: Some("budget >= 3000000 AND desired_area_sqm >= 120".into()),
        k: KFloor::new(5).unwrap(),
        ..HeatmapParams::default()
    };
    let out = heatmap(&ds, &params).unwrap();
    let top = out
        .cells
        .lazy()
        .sort(["purchasing_power"], SortMultipleOptions::default().with_order_descending(true))
        .limit(10)
        .collect()
        .unwrap();
    let wuhan = Districts::wuhan();
    let ids = top.column("hex_id").unwrap().str().unwrap();
    for id in ids.iter().flatten() {
        let (lng, lat) = h3::center(u64::from_str_radix(id, 16).unwrap()).unwrap();
        let district = wuhan.locate(lng, lat).map(|d| d.name.clone()).unwrap_or_default();
        assert!(hot.contains(&district), "top cell {id} lies in {district}, not in {hot:?}");
    }
    // And the segment's share of purchasing power in those districts dwarfs the rest.
    let pp = top.column("purchasing_power_share").unwrap().f64().unwrap().sum().unwrap();
    assert!(pp > 0.4, "top 10 work cells hold only {pp:.2} of the segment's purchasing power");
}
