//! Heatmap cost curve: load + validate the customers and deals (Parquet), then res-9 work cells
//! for the high-budget segment, as `custmap heatmap` does; then the cells alone from a loaded
//! dataset, and a coarser map served from a cached base. Sizes from `CUSTMAP_BENCH_SIZES`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use custmap_benches::{demo_city, Size};
use custmap_engine::analytics::{heatmap, HeatmapBase, HeatmapParams, Location};
use custmap_engine::io::schema::Table;
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;

const SEGMENT: &str = "budget >= 3000000 AND desired_area_sqm >= 120";

fn params() -> HeatmapParams {
    HeatmapParams {
        res: Res::new(9).expect("res"),
        location: Location::Work,
        segment: Some(SEGMENT.into()),
        ..HeatmapParams::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("heatmap");
    group.sample_size(10);
    for size in Size::selected() {
        let dir = demo_city(size);
        group.throughput(Throughput::Elements(size.customers()));
        group.bench_with_input(BenchmarkId::new("load+cells", size.label()), &dir, |b, dir| {
            b.iter(|| {
                let ds = Dataset::load_tables(dir, &[Table::Deals]).expect("load");
                heatmap(&ds, &params()).expect("heatmap").cells.height()
            });
        });
        let ds = Dataset::load(&dir).expect("load");
        group.bench_with_input(BenchmarkId::new("cells", size.label()), &ds, |b, ds| {
            b.iter(|| heatmap(ds, &params()).expect("heatmap").cells.height());
        });
        let base = HeatmapBase::build(&ds, Location::Work, Some(SEGMENT), Res::new(9).expect("res")).expect("base");
        group.bench_with_input(BenchmarkId::new("cached-base-res7", size.label()), &base, |b, base| {
            let p = HeatmapParams { res: Res::new(7).expect("res"), ..params() };
            b.iter(|| base.at(&p).expect("at").cells.height());
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
