//! The fast point-to-cell path against h3o at full size: every resolution, uniform points on the
//! sphere and dense city points, and points bisected onto cell edges to the last bit.
//! `cargo run --release -p custmap-benches --example h3_identity -- [POINTS_PER_RES] [EDGE_TRIES]`
//! (defaults 2,000,000 and 100,000: 64M sphere and city points and about 1.5M edge points).
//! Exits non-zero on the first resolution with any disagreement.

use custmap_engine::spatial::fast_h3::check;
use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let points: u64 = args.next().map_or(Ok(2_000_000), |a| a.parse())?;
    let tries: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let t = std::time::Instant::now();
    let reports: Vec<(u8, check::Report, check::Report)> = (0..=15u8)
        .into_par_iter()
        .map(|res| {
            let seed = 1_000 + u64::from(res);
            (res, check::sphere_and_city(res, points, seed), check::edges(res, tries, seed))
        })
        .collect();
    let (mut total, mut bad) = (0, 0);
    println!("res  sphere+city points  uncertified  by h3o   edges  edge points  mismatches");
    for (res, area, edge) in &reports {
        let mismatches = area.mismatches.len() + edge.mismatches.len();
        println!(
            "{res:>3}  {:>18}  {:>10.3}%  {:>6.2}%  {:>6}  {:>11}  {mismatches}",
            area.points,
            100.0 * area.uncertified as f64 / area.points as f64,
            100.0 * area.h3o_calls as f64 / area.points as f64,
            edge.edges,
            edge.points
        );
        for m in area.mismatches.iter().chain(&edge.mismatches) {
            println!("     MISMATCH at ({}, {}) res {}", m.0, m.1, m.2);
        }
        total += area.points + edge.points;
        bad += mismatches;
    }
    println!("{total} points compared in {:.1} s: {bad} mismatches", t.elapsed().as_secs_f64());
    if bad > 0 {
        return Err("the fast path disagreed with h3o".into());
    }
    Ok(())
}
