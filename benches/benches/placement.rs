//! Placement cost: building coverage (R-tree candidates + exact great-circle tests) and
//! optimising, for 10^3 and 10^4 synthetic sites over the demo city's prospects (work + home,
//! `both` mode). Coverage is built once per (segment, reach mode) and reused across budgets, so
//! the two are timed apart. Sizes from `CUSTMAP_BENCH_SIZES`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use custmap_benches::{demo_city, Size};
use custmap_engine::analytics::placement::optimize::{optimize, Candidate};
use custmap_engine::analytics::placement::reach::{coverage, Prospect, ReachMode};
use custmap_engine::io::schema::Table;
use custmap_engine::spatial::geometry::SiteGeometry;
use custmap_engine::Dataset;
use rand::{Rng, SeedableRng};

fn prospects(ds: &Dataset) -> Vec<Prospect> {
    let col = |n: &str| ds.customers.column(n).expect("column").f64().expect("f64").iter().collect::<Vec<_>>();
    let (hl, hg, wl, wg) = (col("home_lat"), col("home_lng"), col("work_lat"), col("work_lng"));
    (0..hl.len())
        .map(|i| Prospect { home: hl[i].zip(hg[i]).map(|(a, b)| (b, a)), work: wl[i].zip(wg[i]).map(|(a, b)| (b, a)) })
        .collect()
}

/// Points and 10-vertex routes scattered over central Wuhan.
fn sites(n: usize) -> Vec<(SiteGeometry, f64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    (0..n)
        .map(|i| {
            let (x, y) = (rng.random_range(114.15..114.45), rng.random_range(30.45..30.70));
            if i % 10 == 0 {
                let pts: Vec<(f64, f64)> =
                    (0..10).map(|k| (x + 0.01 * f64::from(k), y + 0.004 * f64::from(k % 3))).collect();
                (SiteGeometry::Line(geo::LineString::from(pts)), 300.0)
            } else {
                (SiteGeometry::Point(geo::Point::new(x, y)), 250.0)
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("placement");
    group.sample_size(10);
    for size in Size::selected() {
        let ds = Dataset::load_tables(&demo_city(size), &[Table::Sites]).expect("load");
        let people = prospects(&ds);
        for n in [1_000usize, 10_000] {
            let s = sites(n);
            let id = format!("{}sites/{}", n, size.label());
            group.bench_with_input(BenchmarkId::new("coverage", &id), &s, |b, s| {
                b.iter(|| coverage(&people, s, ReachMode::Both).len());
            });
            let cov = coverage(&people, &s, ReachMode::Both);
            let cands: Vec<Candidate> = cov
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let mut covers: Vec<u32> = a.iter().map(|(p, _)| *p).collect();
                    covers.dedup();
                    Candidate { cost: 10_000.0 + (i % 7) as f64 * 5_000.0, covers }
                })
                .collect();
            let w = vec![1.0; people.len()];
            let allowed = vec![true; cands.len()];
            group.bench_with_input(BenchmarkId::new("optimise-1M-budget", &id), &cands, |b, cands| {
                b.iter(|| optimize(cands, &w, 1_000_000.0, &[], &allowed).reach);
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
