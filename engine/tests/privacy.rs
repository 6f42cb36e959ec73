//! Privacy: the floor holds for every figure of a cell, and the public release is accurate on
//! populous cells, never publishes a lone person's cell, and states its parameters truthfully.

use std::collections::HashMap;

use custmap_engine::analytics::privacy::noise::tail;
use custmap_engine::analytics::{heatmap, HeatmapParams, KFloor, Location, PublicParams, PublicRelease};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use polars::prelude::*;

use crate::common::load;

fn city(customers: u64) -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city");
    generate(&path, &DemoParams { customers, seed: 5, format: DemoFormat::Csv, ..DemoParams::default() }, &|_, _| {})
        .unwrap();
    let ds = Dataset::load(&path).unwrap();
    (dir, ds)
}

/// A noise key for tests.
fn key(seed: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    for chunk in k.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    k
}

fn counts(cells: &DataFrame, column: &str) -> HashMap<String, Option<i64>> {
    let hex = cells.column("hex_id").unwrap().str().unwrap().clone();
    let v = cells.column(column).unwrap().i64().unwrap().clone();
    hex.iter().map(|h| h.unwrap_or_default().to_string()).zip(v.iter()).collect()
}

#[test]
fn public_release_is_accurate_on_populous_cells() {
    let (_d, ds) = city(30_000);
    let params = PublicParams::default();
    for (location, r) in [(Location::Home, 7), (Location::Work, 7), (Location::Home, 8), (Location::Work, 8)] {
        let res = Res::new(r).unwrap();
        let exact = heatmap(&ds, &HeatmapParams { res, location, k: KFloor::new(1).unwrap(), ..Default::default() })
            .unwrap()
            .cells;
        let exact = exact.lazy().filter(col("res").eq(lit(i32::from(r)))).collect().unwrap();
        let truth = counts(&exact, "customers");
        let release = PublicRelease::build(&ds, location, res, &params, &key(1)).unwrap();
        let noisy = counts(&release.cells, "customers");
        let mut errors: Vec<f64> = Vec::new();
        let mut missing = 0;
        for (hex, t) in &truth {
            let t = t.unwrap();
            if t < 100 {
                continue;
            }
            match noisy.get(hex) {
                Some(Some(n)) => errors.push((*n - t).abs() as f64 / t as f64),
                _ => missing += 1,
            }
        }
        errors.sort_by(f64::total_cmp);
        assert!(errors.len() >= 3, "{location:?} res {r}: only {} populous cells", errors.len());
        let median = errors[errors.len() / 2];
        println!("{location:?} res {r}: {} cells of >= 100 customers, median relative error {median:.4}", errors.len());
        assert!(median < 0.10, "{location:?}: median relative error {median}");
        assert_eq!(missing, 0, "{location:?}: a cell of >= 100 customers was not published");
        // Figures are consistent after post-processing.
        let c = release.cells.column("customers").unwrap().i64().unwrap();
        let b = release.cells.column("buyers").unwrap().i64().unwrap();
        assert!(c.into_no_null_iter().zip(b.into_no_null_iter()).all(|(c, b)| (0..=c).contains(&b)));
        assert!(c.into_no_null_iter().all(|c| c >= release.mechanism.threshold));
    }
}

#[test]
fn public_release_threshold_and_scales_are_as_stated() {
    let params = PublicParams::default();
    for location in [Location::Home, Location::Work, Location::Both] {
        let m = params.mechanism(location);
        let n = params.releases() as f64;
        assert!((m.epsilon - params.epsilon / n).abs() < 1e-12);
        let b = m.customers.num as f64 / m.customers.den as f64;
        assert!((b - m.cells_per_person as f64 / (m.epsilon / 2.0)).abs() < 1e-5, "{location:?}: scale {b}");
        // The smallest threshold at which a lone person's cell appears with probability <= delta.
        let per = |t: i64| m.cells_per_person as f64 * tail(b, t - 1);
        assert!(per(m.threshold) <= m.delta, "{location:?}");
        assert!(per(m.threshold - 1) > m.delta, "{location:?}");
    }
    assert_eq!(params.mechanism(Location::Both).cells_per_person, 2);
}

#[test]
fn public_release_never_shows_a_lone_customer() {
    // Twenty customers in one building, one far away alone (the victim).
    let mut csv = String::from("customer_id,home_lat,home_lng,work_lat,work_lng,budget\n");
    for i in 0..20 {
        csv.push_str(&format!("C{i},30.55,114.31,30.58,114.28,2000000\n"));
    }
    csv.push_str("VICTIM,31.2001,115.0001,31.2001,115.0001,8800000\n");
    let (_d, ds) = load(&[("customers.csv", csv.as_bytes())]);
    let ds = ds.unwrap();
    let params = PublicParams::default();
    for seed in 0..200 {
        for location in [Location::Home, Location::Work, Location::Both] {
            for &r in &params.resolutions {
                let res = Res::new(r).unwrap();
                let release = PublicRelease::build(&ds, location, res, &params, &key(seed)).unwrap();
                let victim = custmap_engine::spatial::h3::cell(31.2001, 115.0001, res)
                    .map(custmap_engine::spatial::h3::hex_string);
                let hex = release.cells.column("hex_id").unwrap().str().unwrap().clone();
                assert!(
                    !hex.iter().flatten().any(|h| Some(h.to_string()) == victim),
                    "seed {seed}: the victim's cell was published at res {r} {location:?}"
                );
            }
        }
    }
}

#[test]
fn public_release_is_a_function_of_the_key_and_the_data() {
    let (_d, ds) = city(3_000);
    let params = PublicParams::default();
    let res = Res::new(7).unwrap();
    let draw = |seed: u64| PublicRelease::build(&ds, Location::Home, res, &params, &key(seed)).unwrap().cells;
    assert!(draw(9).equals_missing(&draw(9)), "same key, same data: same release");
    assert!(!draw(9).equals_missing(&draw(10)), "another key: other noise");
    // Resolutions outside the lattice are refused.
    assert!(PublicRelease::build(&ds, Location::Home, Res::new(12).unwrap(), &params, &key(1)).is_err());
}

/// Regression: the public noise was keyed by a fingerprint of coordinates, budgets and prices,
/// not of deal statuses, so a deal signed between two uploads drew the very same noise, and
/// the two public releases differed by exactly one buyer in the new buyer's cell. The noise
/// now follows every figure it covers: one more buyer, fresh draws everywhere.
#[test]
fn regression_a_deal_signed_between_uploads_draws_fresh_public_noise() {
    let (_d, ds) = city(3_000);
    let deals = ds.deals.clone().unwrap();
    let status = deals.column("status").unwrap().str().unwrap().clone();
    let flip = status.iter().position(|s| s == Some("cancelled")).expect("the demo cancels some deals");
    let flipped: Vec<Option<&str>> =
        status.iter().enumerate().map(|(i, s)| if i == flip { Some("signed") } else { s }).collect();
    let mut signed = ds.clone();
    let mut deals = deals.clone();
    deals.with_column(Column::new("status".into(), flipped)).unwrap();
    signed.deals = Some(deals);
    let params = PublicParams::default();
    for &r in &params.resolutions {
        let res = Res::new(r).unwrap();
        let before = PublicRelease::build(&ds, Location::Both, res, &params, &key(3)).unwrap().cells;
        let after = PublicRelease::build(&signed, Location::Both, res, &params, &key(3)).unwrap().cells;
        // Customers are the same in both: equal noisy counts would be the same draws.
        let (b, a) = (counts(&before, "customers"), counts(&after, "customers"));
        let same = b.iter().filter(|(h, c)| a.get(*h) == Some(c)).count();
        assert!(same * 2 < b.len().max(2), "res {r}: {same} of {} cells drew the same noise", b.len());
    }
}

#[test]
fn floor_holds_for_every_figure_of_a_cell() {
    let (_d, ds) = city(3_000);
    let k = 5i64;
    for where_ in
        [None, Some("budget >= 3000000"), Some("budget < 2350000 OR budget > 2350000"), Some("desired_area_sqm > 100")]
    {
        for location in [Location::Home, Location::Work, Location::Both] {
            for res in [7u8, 9, 11] {
                let params = HeatmapParams {
                    res: Res::new(res).unwrap(),
                    location,
                    segment: where_.map(str::to_string),
                    k: KFloor::new(k as u32).unwrap(),
                    ..Default::default()
                };
                let cells = heatmap(&ds, &params).unwrap().cells;
                for c in ["customers", "prospects", "buyers"] {
                    let v = cells.column(c).unwrap().i64().unwrap();
                    assert!(
                        v.iter().flatten().all(|x| x == 0 && c != "customers" || x >= k),
                        "{where_:?} {location:?} res {res}: {c} under {k}"
                    );
                }
                // Customers outside the segment are never countable under k.
                let both = cells
                    .column("customers")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .iter()
                    .zip(cells.column("prospects").unwrap().i64().unwrap().iter());
                for (c, p) in both {
                    if let (Some(c), Some(p)) = (c, p) {
                        assert!(c - p == 0 || c - p >= k, "{where_:?}: {} customers outside the segment", c - p);
                    }
                }
            }
        }
    }
}
