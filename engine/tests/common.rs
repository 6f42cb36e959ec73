//! Helpers shared by the integration tests.

use custmap_engine::Dataset;

/// Writes `files` (name, contents) into a fresh temporary directory.
pub fn dataset_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write fixture");
    }
    dir
}

pub fn load(files: &[(&str, &[u8])]) -> (tempfile::TempDir, custmap_engine::Result<Dataset>) {
    let dir = dataset_dir(files);
    let ds = Dataset::load(dir.path());
    (dir, ds)
}

/// The demo city of `customers` customers and `seed`, as CSV, loaded.
pub fn demo_city(customers: u64, seed: u64) -> (tempfile::TempDir, Dataset) {
    use custmap_engine::demo::{generate, DemoFormat, DemoParams};
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &DemoParams { customers, seed, format: DemoFormat::Csv, ..DemoParams::default() }, &|_, _| {})
        .unwrap();
    let ds = Dataset::load(dir.path()).unwrap();
    (dir, ds)
}
