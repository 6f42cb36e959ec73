//! Point to H3 cell, nanoseconds per point: h3o's `LatLng::to_cell` against custmap's certified
//! fast path ([`Indexer`]), by resolution, on distinct coordinates (the worst case for the
//! heatmap: no two customers share a building) spread over a 40 km city.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use custmap_engine::spatial::fast_h3::Indexer;
use custmap_engine::spatial::{h3, Res};
use rand::{Rng, SeedableRng};

const POINTS: usize = 100_000;

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let points: Vec<(f64, f64)> =
        (0..POINTS).map(|_| (rng.random_range(30.4..30.75), rng.random_range(114.1..114.5))).collect();
    let mut group = c.benchmark_group("point-to-cell");
    group.sample_size(20);
    group.throughput(Throughput::Elements(POINTS as u64));
    for r in [5u8, 7, 9, 11, 13, 15] {
        let res = Res::new(r).expect("res");
        group.bench_with_input(BenchmarkId::new("h3o", r), &res, |b, &res| {
            b.iter(|| points.iter().filter_map(|&(lat, lng)| h3::cell(lat, lng, res)).fold(0u64, u64::wrapping_add));
        });
        group.bench_with_input(BenchmarkId::new("custmap", r), &res, |b, &res| {
            b.iter(|| {
                let mut ix = Indexer::new(res);
                points.iter().filter_map(|&(lat, lng)| ix.cell(lat, lng)).fold(0u64, u64::wrapping_add)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
