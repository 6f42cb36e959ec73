//! Privacy: the floor holds for every figure of a cell, and the public release is accurate on
//! populous cells, never publishes a lone person's cell, and states its parameters truthfully.

use std::collections::HashMap;

use custmap_engine::analytics::privacy::noise::tail;
use custmap_engine::analytics::privacy::public::fingerprint;
use custmap_engine::analytics::{heatmap, HeatmapParams, KFloor, Location, PublicParams, PublicRelease};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use polars::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::common::load;

fn city(customers: u64) -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city");
    generate(&path, &DemoParams { customers, seed: 5, format: DemoFormat::Csv, ..DemoParams::default() }, &|_, _| {})
        .unwrap();
    let ds = Dataset::load(&path).unwrap();
    (dir, ds)
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
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let release = PublicRelease::build(&ds, location, res, &params, &mut rng).unwrap();
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
                let mut rng = ChaCha20Rng::seed_from_u64(seed);
                let release = PublicRelease::build(&ds, location, res, &params, &mut rng).unwrap();
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
    let draw = |seed: u64| {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        PublicRelease::build(&ds, Location::Home, res, &params, &mut rng).unwrap().cells
    };
    assert!(draw(9).equals_missing(&draw(9)), "same key, same data: same release");
    assert!(!draw(9).equals_missing(&draw(10)), "another key: other noise");
    // The fingerprint follows the data.
    let (_e, other) = city(3_001);
    assert_ne!(fingerprint(&ds), fingerprint(&other));
    assert_eq!(fingerprint(&ds), fingerprint(&ds));
    // Resolutions outside the lattice are refused.
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    assert!(PublicRelease::build(&ds, Location::Home, Res::new(12).unwrap(), &params, &mut rng).is_err());
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
