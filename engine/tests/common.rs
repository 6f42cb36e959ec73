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
