//! Golden documents: the attribution and placement JSON of a fixed demo city, as the command line
//! writes them (and, by the parity tests, as the API sends them). A change to a figure, a field or
//! the shape fails here and shows where; regenerate deliberately with `UPDATE_GOLDEN=1`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::http::demo_city;

fn city() -> &'static Path {
    static CITY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &CITY.get_or_init(|| demo_city(1_500, 5)).1
}

/// `custmap ARGS --out x.json`, parsed.
fn document(args: &[&str]) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.json");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_custmap"))
        .args(args)
        .arg(city())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "custmap {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// Equal up to 1e-9 relative on numbers (the last bits of a float sum may move with the order
/// of a parallel reduction); names the first path that differs.
fn assert_matches(got: &serde_json::Value, want: &serde_json::Value, path: &str) {
    use serde_json::Value::{Array, Number, Object};
    match (got, want) {
        (Number(a), Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0), "{path}: {a} against golden {b}");
        }
        (Array(a), Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: {} items against golden {}", a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_matches(x, y, &format!("{path}[{i}]"));
            }
        }
        (Object(a), Object(b)) => {
            let (ka, kb): (Vec<&String>, Vec<&String>) = (a.keys().collect(), b.keys().collect());
            assert_eq!(ka, kb, "{path}: fields");
            for (k, v) in a {
                assert_matches(v, &b[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

fn golden(name: &str, got: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
    }
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file (regenerate with UPDATE_GOLDEN=1)"))
            .unwrap();
    assert_matches(got, &want, name);
}

#[test]
fn attribution_json_matches_its_golden_file() {
    golden("attribution_all_by_channel.json", &document(&["attribution", "--model", "all"]));
    golden("attribution_markov_by_campaign.json", &document(&["attribution", "--by", "campaign", "--window", "90"]));
}

#[test]
fn placement_json_matches_its_golden_file() {
    let doc = document(&["placement", "--budget", "200000", "--reach", "home"]);
    assert_eq!(doc["proven_optimal"], true, "a golden plan must be the one optimum");
    golden("placement_home_200k.json", &doc);
}
