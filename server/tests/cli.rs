//! The command line end to end: exit codes 0/1/2, one-line errors, every output format, and
//! the real Sacramento sales data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn custmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custmap")).args(args).output().expect("run custmap")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One small demo city shared by the tests of this binary.
fn city() -> &'static Path {
    static CITY: OnceLock<tempfile::TempDir> = OnceLock::new();
    CITY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap().to_string();
        let o = custmap(&["demo", "--out", &out, "--customers", "3000", "--seed", "11"]);
        assert!(o.status.success(), "demo failed: {}", stderr(&o));
        dir
    })
    .path()
}

fn out_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn assert_user_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "error must be one line: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
}

#[test]
fn validate_reports_every_table_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let rejects = out_path(&tmp, "rejects.csv");
    let o = custmap(&["validate", city().to_str().unwrap(), "--json", "--rejects", rejects.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for t in ["customers", "touchpoints", "deals", "campaigns", "sites", "projects"] {
        let r = &doc["tables"][t];
        assert_eq!(r["read"].as_u64().unwrap(), r["accepted"].as_u64().unwrap() + r["rejected"].as_u64().unwrap());
    }
    assert_eq!(doc["tables"]["customers"]["read"], 3000);
    let header = std::fs::read_to_string(rejects).unwrap();
    assert_eq!(header.lines().next(), Some("table,row,line,column,reason,value,outcome"));
}

#[test]
fn validate_writes_rejects_next_to_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("customers.csv"), "customer_id,home_lat,home_lng\nA,30.5,114.3\nB,91,114.3\n")
        .unwrap();
    let o = custmap(&["validate", tmp.path().to_str().unwrap()]);
    // Rejected rows are exit 2 (a pipeline can gate on it), with the report printed all the same.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 rows rejected"), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("customers") && text.contains("home_lat out of range"), "{text}");
    let rejects = std::fs::read_to_string(tmp.path().join("rejects.csv")).unwrap();
    assert!(rejects.contains("customers,2,3,home_lat,\"home_lat out of range [-90, 90]\",91,rejected"), "{rejects}");
}

#[test]
fn heatmap_writes_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    for ext in ["csv", "parquet", "geojson", "arrow", "json", "png", "svg"] {
        let out = out_path(&tmp, &format!("work.{ext}"));
        let o = custmap(&[
            "heatmap",
            city().to_str().unwrap(),
            "--res",
            "9",
            "--location",
            "work",
            "--where",
            "budget >= 3000000 AND desired_area_sqm >= 120",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        assert!(!bytes.is_empty(), "{ext} is empty");
        match ext {
            "csv" => assert!(String::from_utf8_lossy(&bytes).starts_with(
                "hex_id,res,customers,prospects,buyers,deals,revenue,purchasing_power,purchasing_power_share,conversion,conversion_smoothed,lift"
            )),
            "png" => assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n"),
            "svg" => assert!(String::from_utf8_lossy(&bytes).contains("<svg")),
            "geojson" => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let f = &doc["features"][0];
                assert_eq!(f["geometry"]["type"], "Polygon");
                assert!(f["properties"]["customers"].as_i64().unwrap() >= 5);
            }
            "json" => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(doc["k"], 5);
                assert!(doc["suppressed"]["merged"].is_u64() && doc["cells"].is_array());
            }
            "parquet" => assert_eq!(&bytes[..4], b"PAR1"),
            _ => {}
        }
    }
}

#[test]
fn bad_where_is_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "x.csv");
    let o = custmap(&["heatmap", city().to_str().unwrap(), "--where", "salary > 3", "--out", out.to_str().unwrap()]);
    assert_user_error(&o, "unknown column 'salary'");
    // The heatmap keeps only the customer columns it reads, yet the message lists them all.
    assert!(stderr(&o).contains("home_lat") && stderr(&o).contains("created_at"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written on error");
    let o = custmap(&[
        "heatmap",
        city().to_str().unwrap(),
        "--where",
        "read_parquet('/etc/passwd') > 1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_user_error(&o, "function calls");
}

#[test]
fn bad_usage_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "x.csv");
    let dir = city().to_str().unwrap();
    assert_user_error(&custmap(&["heatmap", dir, "--res", "16", "--out", out.to_str().unwrap()]), "resolution 16");
    assert_user_error(
        &custmap(&["heatmap", dir, "--out", out_path(&tmp, "x.xlsx").to_str().unwrap()]),
        "output format",
    );
    assert_user_error(
        &custmap(&["heatmap", dir, "--k", "0", "--out", out.to_str().unwrap()]),
        "k = 0: a floor is a whole number from 1 to 1000",
    );
    assert_user_error(&custmap(&["heatmap", dir, "--location", "office", "--out", out.to_str().unwrap()]), "office");
    assert_user_error(&custmap(&["heatmap", "/nonexistent/city", "--out", out.to_str().unwrap()]), "/nonexistent/city");
    assert_user_error(&custmap(&["frobnicate"]), "frobnicate");
    assert_user_error(
        &custmap(&["heatmap", dir, "--metric", "happiness", "--out", out_path(&tmp, "m.png").to_str().unwrap()]),
        "unknown metric",
    );
}

#[test]
fn runtime_failure_is_exit_1() {
    // The output's parent is a file: the write fails at run time, not because of the input.
    let tmp = tempfile::tempdir().unwrap();
    let blocker = out_path(&tmp, "file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("out.csv");
    let o = custmap(&["heatmap", city().to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1);
}

#[test]
fn sacramento_real_sales_revenue_heatmap() {
    let sales = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sacramento_sales.csv");
    assert!(sales.is_file(), "real data missing: {} (shared/ must sit beside the repository)", sales.display());
    let tmp = tempfile::tempdir().unwrap();
    let ds = out_path(&tmp, "sacramento");
    let o = custmap(&["import-sales", sales.to_str().unwrap(), "--out", ds.to_str().unwrap(), "--date", "2008-05-19"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = custmap(&["validate", ds.to_str().unwrap(), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["tables"]["customers"]["read"], 932);
    assert_eq!(doc["tables"]["deals"]["read"], 932);
    let accepted = doc["tables"]["customers"]["accepted"].as_u64().unwrap();
    let csv = out_path(&tmp, "revenue.csv");
    let o =
        custmap(&["heatmap", ds.to_str().unwrap(), "--res", "7", "--location", "home", "--out", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut customers = 0u64;
    let mut revenue = 0.0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let c: u64 = f[2].parse().unwrap();
        assert!(c >= 5, "cell below the floor: {line}");
        customers += c;
        revenue += f[6].parse::<f64>().unwrap();
    }
    assert!(customers <= accepted && customers > accepted * 9 / 10, "{customers} of {accepted}");
    assert!(revenue > 1.0e8, "Sacramento sales total well over 100M USD, got {revenue}");
    // Attributes of the sales file are usable as segment columns.
    let o = custmap(&[
        "heatmap",
        ds.to_str().unwrap(),
        "--res",
        "7",
        "--location",
        "home",
        "--where",
        "beds >= 4 AND type = 'Residential'",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn attribution_writes_a_table_per_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "attr.csv");
    let o = custmap(&[
        "attribution",
        city().to_str().unwrap(),
        "--model",
        "all",
        "--by",
        "channel",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("model,channel,conversions,revenue,cost,leads,visits,cpl,cpa,roi,roas,notes"), "{text}");
    for m in ["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("{m},"))), "no {m} rows");
    }
    let json = out_path(&tmp, "attr.json");
    let o = custmap(&["attribution", city().to_str().unwrap(), "--by", "campaign", "--out", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(doc["by"], "campaign");
    assert!(doc["rows"][0]["campaign"].is_string());
}

#[test]
fn attribution_paths_export_accounts_for_every_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, paths) = (out_path(&tmp, "attr.csv"), out_path(&tmp, "paths.csv"));
    let o = custmap(&[
        "attribution",
        city().to_str().unwrap(),
        "--model",
        "last_touch",
        "--k",
        "1",
        "--paths",
        paths.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&paths).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("path,conversions,nulls,value"));
    let (mut conversions, mut seen) = (0.0, std::collections::HashSet::new());
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert!(seen.insert(f[0].to_string()), "path {} twice", f[0]);
        assert!(f[0].split(" > ").all(|c| !c.is_empty()), "{line}");
        conversions += f[1].parse::<f64>().unwrap();
        assert!(f[1].parse::<u64>().unwrap() + f[2].parse::<u64>().unwrap() > 0, "{line}");
    }
    // Last touch credits each conversion of a journey with a touch exactly once.
    let attributed: f64 = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((attributed - conversions).abs() < 1e-6, "{attributed} vs {conversions}");
    let bad = custmap(&["attribution", city().to_str().unwrap(), "--paths", "p.png", "--out", out.to_str().unwrap()]);
    assert_user_error(&bad, "--paths");
}

#[test]
fn attribution_bad_input_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = city().to_str().unwrap();
    let out = out_path(&tmp, "a.csv");
    assert_user_error(
        &custmap(&["attribution", dir, "--model", "magic", "--out", out.to_str().unwrap()]),
        "unknown model 'magic'",
    );
    assert_user_error(&custmap(&["attribution", dir, "--window", "0", "--out", out.to_str().unwrap()]), "window");
    assert_user_error(&custmap(&["attribution", dir, "--order", "9", "--out", out.to_str().unwrap()]), "order");
    // A dataset without touchpoints cannot be attributed.
    std::fs::write(tmp.path().join("customers.csv"), "customer_id,home_lat,home_lng\nA,30.5,114.3\n").unwrap();
    assert_user_error(
        &custmap(&["attribution", tmp.path().to_str().unwrap(), "--out", out.to_str().unwrap()]),
        "touchpoints",
    );
}

#[test]
fn attribution_and_funnel_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = city().to_str().unwrap();
    for (args, file) in [
        (vec!["attribution", dir, "--model", "all"], "compare.svg"),
        (vec!["attribution", dir, "--model", "shapley", "--by", "campaign"], "roi.png"),
        (vec!["attribution", dir, "--chart", "monthly"], "monthly.png"),
        (vec!["funnel", dir, "--by", "channel"], "funnel.png"),
    ] {
        let out = out_path(&tmp, file);
        let mut a = args.clone();
        a.extend(["--out", out.to_str().unwrap()]);
        let o = custmap(&a);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        if file.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("<svg") && text.contains("7 models compared"));
        }
    }
    let out = out_path(&tmp, "funnel.csv");
    let o = custmap(&["funnel", dir, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(out)
        .unwrap()
        .starts_with("channel,leads,visited,deals,visited_deals,revenue,visit_rate,deal_rate"));
}

#[test]
fn attribution_by_place_writes_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "geo.geojson");
    let o = custmap(&[
        "attribution",
        city().to_str().unwrap(),
        "--model",
        "linear",
        "--geo",
        "work",
        "--res",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("k = 5"));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    let features = doc["features"].as_array().unwrap();
    assert_eq!(features[0]["geometry"]["type"], "Polygon");
    assert!(features.iter().all(|f| f["properties"]["channel"].is_string()));
    // Rows under the floor are null; the others credit k or more.
    let conversions: Vec<Option<f64>> = features.iter().map(|f| f["properties"]["conversions"].as_f64()).collect();
    assert!(conversions.iter().flatten().all(|c| *c >= 5.0), "{conversions:?}");
    assert!(conversions.iter().any(Option::is_some), "some rows hold the floor");
    let png = out_path(&tmp, "geo.png");
    assert_user_error(
        &custmap(&["attribution", city().to_str().unwrap(), "--geo", "home", "--out", png.to_str().unwrap()]),
        "--geo writes a table",
    );
}

#[test]
fn placement_report_and_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = city().to_str().unwrap();
    let json = out_path(&tmp, "plan.json");
    let o = custmap(&[
        "placement",
        dir,
        "--budget",
        "800000",
        "--where",
        "budget >= 3000000",
        "--reach",
        "both",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in ["budget", "cost", "reach", "upper_bound", "gap", "reach_split", "sites", "overlap", "baselines"] {
        assert!(!doc[key].is_null(), "no {key}");
    }
    assert!(doc["cost"].as_f64().unwrap() <= 800000.0);
    assert!(doc["upper_bound"].as_f64().unwrap() >= doc["reach"].as_f64().unwrap());
    let first = doc["sites"][0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(keys, ["rank", "site_id", "kind", "cost", "marginal_reach", "cumulative_reach", "cost_per_reached"]);
    let csv = out_path(&tmp, "plan.csv");
    let o = custmap(&[
        "placement",
        dir,
        "--budget",
        "100000",
        "--exclude",
        "CAFE-1-02",
        "--must-include",
        "LOBBY-1-01",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("rank,site_id,kind,cost,marginal_reach,cumulative_reach,cost_per_reached"), "{text}");
    assert!(text.contains("LOBBY-1-01") && !text.contains("CAFE-1-02,"));
    let kinds = out_path(&tmp, "kinds.csv");
    let o = custmap(&["placement", dir, "--budget", "800000", "--compare-kinds", "--out", kinds.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&kinds).unwrap().contains("bus_route"));
    // Mistakes are exit 2.
    assert_user_error(&custmap(&["placement", dir, "--budget=-5", "--out", csv.to_str().unwrap()]), "budget");
    assert_user_error(
        &custmap(&["placement", dir, "--budget", "1000", "--must-include", "NOPE", "--out", csv.to_str().unwrap()]),
        "unknown site 'NOPE'",
    );
    assert_user_error(
        &custmap(&["placement", dir, "--budget", "10", "--must-include", "LOBBY-1-01", "--out", csv.to_str().unwrap()]),
        "must-include sites cost",
    );
    // Zero budget: an empty plan, not an error.
    let o = custmap(&["placement", dir, "--budget", "0", "--out", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["sites"].as_array().unwrap().len(), 0);
}

#[test]
fn placement_map_curve_and_radius_override() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = city().to_str().unwrap();
    let map = out_path(&tmp, "plan.png");
    let o = custmap(&["placement", dir, "--budget", "300000", "--reach", "commute", "--out", map.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&map).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let curve = out_path(&tmp, "curve.svg");
    let o = custmap(&["placement", dir, "--budget", "300000", "--plot", "curve", "--out", curve.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&curve).unwrap().contains("Reach versus budget"));
    // A wider lobby radius reaches at least as many prospects with the lobbies alone.
    let reach_with = |radius: &str| -> f64 {
        let json = out_path(&tmp, "r.json");
        let o = custmap(&[
            "placement",
            dir,
            "--budget",
            "200000",
            "--reach",
            "work",
            "--reach-m",
            radius,
            "--out",
            json.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
        doc["baselines"].as_array().unwrap().iter().find(|b| b["kind"] == "office_lobby").unwrap()["reach"]
            .as_f64()
            .unwrap()
    };
    assert!(reach_with("office_lobby=400") > reach_with("office_lobby=50"));
    assert_user_error(
        &custmap(&["placement", dir, "--budget", "1000", "--reach-m", "cafe:300", "--out", map.to_str().unwrap()]),
        "KIND=METRES",
    );
}

#[test]
fn regression_a_zero_radius_gets_the_same_answer_from_the_cli_and_the_api() {
    // `--reach-m cafe=0` was accepted by the CLI and refused by the API: one rule now, in the
    // engine (`placement::check_radius`), with one message.
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "p.json");
    let dir = city().to_str().unwrap();
    for r in ["0", "-5", "NaN"] {
        let o = custmap(&[
            "placement",
            dir,
            "--budget",
            "1000",
            "--reach-m",
            &format!("cafe={r}"),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_user_error(&o, "reach_m for 'cafe' must be a distance > 0 in metres");
    }
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_custmap"))
        .args(["serve", city().to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let reply = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            break r;
        }
        assert!(start.elapsed().as_secs() < 60, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn regression_validate_reports_even_when_the_rejects_file_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("customers.csv"), "customer_id,home_lat,home_lng\nA,30.5,114.3\nB,91,114.3\n")
        .unwrap();
    let blocked = tmp.path().join("not-a-dir");
    std::fs::write(&blocked, "x").unwrap();
    let target = blocked.join("rejects.csv");
    let o = custmap(&["validate", tmp.path().to_str().unwrap(), "--rejects", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("customers") && text.contains("home_lat out of range"), "{text}");
    assert!(stderr(&o).contains("was not written"), "{}", stderr(&o));
    // A clean dataset is exit 0.
    std::fs::write(tmp.path().join("customers.csv"), "customer_id,home_lat,home_lng\nA,30.5,114.3\n").unwrap();
    let o = custmap(&["validate", tmp.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn regression_analysis_commands_say_what_was_rejected_and_strict_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut text = String::from("customer_id,home_lat,home_lng,budget\n");
    for i in 0..30 {
        text.push_str(&format!("C{i},30.5{i},114.3,1000000\n"));
    }
    text.push_str("BAD1,91,114.3,1\nBAD2,,,1\nNUL,30.5,114.3,lots\n");
    std::fs::write(data.join("customers.csv"), text).unwrap();
    let out = out_path(&tmp, "cells.csv");
    let args = ["heatmap", data.to_str().unwrap(), "--res", "7", "--out", out.to_str().unwrap()];
    let o = custmap(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("rejected: 2 of 33 customers") && err.contains("values nulled: 1 customers"), "{err}");
    assert!(err.contains("custmap validate"), "{err}");
    let strict: Vec<&str> = std::iter::once("--strict").chain(args).collect();
    let o = custmap(&strict);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strict: 2 input rows were rejected"), "{}", stderr(&o));
}

#[test]
fn regression_usage_errors_name_the_argument() {
    let o = custmap(&["placement", city().to_str().unwrap()]);
    assert_user_error(&o, "--budget");
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "plan.json");
    let o = custmap(&["placement", city().to_str().unwrap(), "--budget", "-5", "--out", out.to_str().unwrap()]);
    assert_user_error(&o, "budget must be a number >= 0, got -5");
    let args =
        ["placement", city().to_str().unwrap(), "--budget", "5", "--time-limit", "0", "--out", out.to_str().unwrap()];
    assert_user_error(&custmap(&args), "time limit must be more than 0");
    let o = custmap(&["--tz", "Asia/Shanghai", "validate", city().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("named zones are not supported"), "{}", stderr(&o));
}

#[test]
fn regression_attribution_json_reconciles_conversions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "attr.json");
    // `--k 1`: every figure shown, so the accounts can be checked to the last conversion.
    let o = custmap(&[
        "attribution",
        city().to_str().unwrap(),
        "--model",
        "all",
        "--k",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let total = doc["conversions"]["total"].as_f64().unwrap();
    let lost = doc["unattributed"]["conversions"].as_f64().unwrap();
    assert!(total > 0.0);
    let by_reason: f64 =
        doc["unattributed"]["by_reason"].as_array().unwrap().iter().map(|r| r["conversions"].as_f64().unwrap()).sum();
    assert!((by_reason - lost).abs() < 1e-9, "{doc}");
    let mut per_model = std::collections::HashMap::<String, f64>::new();
    for row in doc["rows"].as_array().unwrap() {
        *per_model.entry(row["model"].as_str().unwrap().into()).or_default() += row["conversions"].as_f64().unwrap();
    }
    assert_eq!(per_model.len(), 7);
    for (m, attributed) in per_model {
        assert!((attributed + lost - total).abs() < 1e-6, "{m}: {attributed} + {lost} != {total}");
    }
}

#[test]
fn referrals_command_writes_tables_charts_and_the_advocates_map() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = city().to_str().unwrap();
    for (by, file) in [
        ("channel", "ch.csv"),
        ("referrer", "ref.json"),
        ("cell", "map.png"),
        ("channel", "mult.png"),
        ("referrer", "top.svg"),
    ] {
        let out = out_path(&tmp, file);
        let o = custmap(&["referrals", dir, "--by", by, "--res", "6", "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{by} {file}: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("advocates referred"), "{file}");
        let bytes = std::fs::read(&out).unwrap();
        match file.rsplit('.').next().unwrap() {
            "png" => assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n"),
            "svg" => assert!(String::from_utf8_lossy(&bytes).contains("advocates")),
            "csv" => assert!(String::from_utf8_lossy(&bytes).starts_with("channel,customers,buyers,revenue")),
            _ => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(doc["summary"]["referred_customers"].as_u64().unwrap() > 0, "{doc}");
                assert!(doc["rows"][0]["chain_customers"].as_u64().unwrap() >= 1);
            }
        }
    }
    let out = out_path(&tmp, "x.geojson");
    let o = custmap(&["referrals", dir, "--by", "channel", "--out", out.to_str().unwrap()]);
    assert_user_error(&o, "charts (.png .svg)");
}

#[test]
fn regression_kinds_filter_is_the_same_on_the_cli_and_the_api() {
    // `kinds` existed only in the HTTP handler, which reached into the coverage's internals; the
    // engine holds it now (`PlacementParams::kinds`) and the CLI has `--kinds`.
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(&tmp, "p.json");
    let dir = city().to_str().unwrap();
    let o = custmap(&["placement", dir, "--budget", "300000", "--kinds", "cafe", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let sites = doc["sites"].as_array().unwrap();
    assert!(!sites.is_empty() && sites.iter().all(|s| s["kind"] == "cafe"), "{doc}");
    let o = custmap(&["placement", dir, "--budget", "300000", "--kinds", "zeppelin", "--out", out.to_str().unwrap()]);
    assert_user_error(&o, "kinds: no site is of kind [\"zeppelin\"]");
    // A must-include site of another kind is named as such.
    let sites = std::fs::read_to_string(city().join("sites.csv")).unwrap();
    let billboard = sites.lines().find(|l| l.contains("billboard")).unwrap().split(',').next().unwrap().to_string();
    let o = custmap(&[
        "placement",
        dir,
        "--budget",
        "3000000",
        "--kinds",
        "cafe",
        "--must-include",
        &billboard,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_user_error(&o, "is must-include but of kind 'billboard', not one of the kinds asked");
}
