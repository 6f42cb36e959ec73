//! Shared data for the benchmarks: demo cities of named sizes, generated once (Parquet) and
//! cached under the cargo target directory.

use std::path::PathBuf;

use custmap_engine::demo::{generate, DemoFormat, DemoParams};

/// Named dataset sizes (customers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    S10k,
    S100k,
    S1m,
    S10m,
}

impl Size {
    #[must_use]
    pub fn customers(self) -> u64 {
        match self {
            Size::S10k => 10_000,
            Size::S100k => 100_000,
            Size::S1m => 1_000_000,
            Size::S10m => 10_000_000,
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Size::S10k => "10k",
            Size::S100k => "100k",
            Size::S1m => "1M",
            Size::S10m => "10M",
        }
    }

    /// Sizes to run, from `CUSTMAP_BENCH_SIZES` (e.g. "10k,100k,1M,10M"; default "10k,100k,1M"),
    /// so the cost curve over a decade of sizes shows.
    ///
    /// # Panics
    /// On a size name that is not one of 10k, 100k, 1M, 10M.
    #[must_use]
    pub fn selected() -> Vec<Size> {
        let spec = std::env::var("CUSTMAP_BENCH_SIZES").unwrap_or_else(|_| "10k,100k,1M".into());
        spec.split(',')
            .map(|s| match s.trim() {
                "10k" => Size::S10k,
                "100k" => Size::S100k,
                "1M" => Size::S1m,
                "10M" => Size::S10m,
                other => panic!("CUSTMAP_BENCH_SIZES: unknown size '{other}' (10k, 100k, 1M, 10M)"),
            })
            .collect()
    }
}

fn cache_root() -> PathBuf {
    std::env::var_os("CUSTMAP_BENCH_DATA").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("custmap-bench-data")
    })
}

/// The demo city of `size` as Parquet (seed 42), generating it on first use.
///
/// # Panics
/// When the data cannot be generated (disk full): a benchmark cannot go on without it.
#[must_use]
pub fn demo_city(size: Size) -> PathBuf {
    let dir = cache_root().join(format!("city-{}", size.label()));
    if !dir.join("truth.json").is_file() {
        let params =
            DemoParams { customers: size.customers(), seed: 42, format: DemoFormat::Parquet, ..DemoParams::default() };
        generate(&dir, &params, &|_, _| {}).expect("generate benchmark city");
    }
    dir
}

/// Peak resident memory of this process so far (`VmHWM`), MiB; 0 where `/proc` has none. For the
/// stage-by-stage examples.
#[must_use]
pub fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
