//! The notebooks in `notebooks/` execute top to bottom against this build's binary.
//!
//! Needs their Python environment: `$CUSTMAP_NOTEBOOK_PYTHON`, else `notebooks/.venv/bin/python`
//! (`.ci/run` creates it from `notebooks/requirements.txt`). Without one the test says so and
//! passes, unless `CUSTMAP_REQUIRE_NOTEBOOKS` is set, as in CI, where it fails.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn notebooks_run_top_to_bottom() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let Some(python) = crate::http::test_python() else { return };
    let out = Command::new(&python)
        .arg(root.join("notebooks/run.py"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_custmap"))
        .env("NB_CUSTOMERS", "20000")
        .output()
        .expect("run the notebooks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 3, "{stdout}");
}

#[test]
fn committed_notebooks_carry_no_outputs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../notebooks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("ipynb") {
            continue;
        }
        seen += 1;
        let nb: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for cell in nb["cells"].as_array().unwrap().iter().filter(|c| c["cell_type"] == "code") {
            assert!(cell["outputs"].as_array().unwrap().is_empty(), "{}: strip the outputs", path.display());
            assert!(cell["execution_count"].is_null(), "{}: strip the execution counts", path.display());
        }
    }
    assert_eq!(seen, 3);
}
