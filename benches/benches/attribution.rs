//! Attribution cost curve on the demo city (Parquet): building journeys from touchpoints, then
//! Markov (order 1 and 2) and Shapley on them. Sizes from `CUSTMAP_BENCH_SIZES` (customers;
//! touchpoints are about 2.4x customers).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use custmap_benches::{demo_city, Size};
use custmap_engine::analytics::attribution::{journeys, markov, shapley, By};
use custmap_engine::io::schema::Table;
use custmap_engine::Dataset;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("attribution");
    group.sample_size(10);
    for size in Size::selected() {
        let dir = demo_city(size);
        let ds = Dataset::load_tables(&dir, &[Table::Touchpoints, Table::Deals]).expect("load");
        let touchpoints = ds.touchpoints.as_ref().map_or(0, |t| t.len()) as u64;
        group.throughput(Throughput::Elements(touchpoints));
        group.bench_with_input(BenchmarkId::new("journeys", size.label()), &ds, |b, ds| {
            b.iter(|| journeys::build(ds, By::Channel, 365).expect("journeys").journeys.len());
        });
        let j = journeys::build(&ds, By::Channel, 365).expect("journeys");
        for order in [1u8, 2] {
            group.bench_with_input(BenchmarkId::new(format!("markov-order{order}"), size.label()), &j, |b, j| {
                b.iter(|| markov::credit(&j.journeys, j.keys.len(), order).expect("markov").len());
            });
        }
        group.bench_with_input(BenchmarkId::new("shapley", size.label()), &j, |b, j| {
            b.iter(|| shapley::credit(&j.journeys, j.keys.len(), 1).credit.len());
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
