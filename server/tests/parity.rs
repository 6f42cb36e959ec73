//! The same request through the command line (`--out x.json`, `.csv`) and through the HTTP API
//! (`app().oneshot` on a fresh server) gives byte-identical documents: for every analytic, with
//! the defaults and with every parameter set. Both read one request type
//! (`custmap::requests`), release through one module (`custmap::release`) and write one
//! document per result; a default, a floor or a field that differs between them fails here.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use custmap_engine::Dataset;
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tower::ServiceExt;

use super::http::{analyst_state, demo_city, ANALYST};

/// One demo city for every parity case (2,000 customers).
fn city() -> &'static Path {
    static CITY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &CITY.get_or_init(|| demo_city(2_000, 17)).1
}

/// The command's output file: `custmap ARGS... --out DIR/out.EXT`.
fn from_cli(args: &[&str], ext: &str) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(format!("out.{ext}"));
    let o =
        std::process::Command::new(env!("CARGO_BIN_EXE_custmap")).args(args).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "custmap {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(&out).unwrap()
}

/// The reply body of `req` as an analyst, on a server that has answered nothing yet.
async fn from_http(req: Request<Body>) -> Vec<u8> {
    let state = analyst_state(vec![Dataset::load(city()).unwrap()], custmap::http::Config::default());
    let (mut parts, body) = req.into_parts();
    parts.headers.insert("authorization", format!("Bearer {ANALYST}").parse().unwrap());
    let res = custmap::http::app(state).oneshot(Request::from_parts(parts, body)).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    body
}

fn get(path_and_query: &str) -> Request<Body> {
    Request::get(format!("/api/v1/datasets/city/{path_and_query}")).body(Body::empty()).unwrap()
}

fn post(path: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post(format!("/api/v1/datasets/city/{path}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Asserts the two documents are the same bytes, showing the first difference when not.
fn same(what: &str, cli: &[u8], http: &[u8]) {
    if cli != http {
        let at = cli.iter().zip(http).position(|(a, b)| a != b).unwrap_or(cli.len().min(http.len()));
        let around = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).to_string();
        panic!(
            "{what}: the CLI's document ({} bytes) and the API's ({} bytes) differ at byte {at}:\n cli: {}\nhttp: {}",
            cli.len(),
            http.len(),
            around(cli),
            around(http)
        );
    }
    assert!(cli.len() > 20, "{what}: an empty document proves nothing");
}

fn dir() -> &'static str {
    city().to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heatmap_documents_are_identical_on_the_cli_and_the_api() {
    let all = ["--res", "9", "--location", "both", "--where", "budget >= 2000000", "--k", "7"];
    let query = "res=9&location=both&where=budget%20%3E%3D%202000000&k=7";
    // The CLI keeps only the customer columns a heatmap reads (those the filter names among
    // them, quoted or not); the server holds them all.
    let named = ["--location", "home", "--where", "\"desired_area_sqm\" >= 100 AND project_id IS NOT NULL"];
    let named_query = "location=home&where=%22desired_area_sqm%22%20%3E%3D%20100%20AND%20project_id%20IS%20NOT%20NULL";
    for (args, q, ext) in [
        (&[][..], "", "json"),
        (&all[..], query, "json"),
        (&all[..], query, "csv"),
        (&all[..], query, "geojson"),
        (&named[..], named_query, "json"),
    ] {
        let cli = from_cli(&[&["heatmap", dir()], args].concat(), ext);
        let http = from_http(get(&format!("heatmap?{q}&format={ext}"))).await;
        if ext == "geojson" {
            // GeoJSON carries the floor's account as foreign members over HTTP; the cells are the same.
            let (c, h): (serde_json::Value, serde_json::Value) =
                (serde_json::from_slice(&cli).unwrap(), serde_json::from_slice(&http).unwrap());
            assert_eq!(c["features"], h["features"], "heatmap {args:?} geojson");
            continue;
        }
        same(&format!("heatmap {args:?} .{ext}"), &cli, &http);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_documents_are_identical_on_the_cli_and_the_api() {
    let all =
        ["--model", "all", "--by", "campaign", "--window", "120", "--half-life", "10", "--order", "2", "--k", "6"];
    let query = "model=all&by=campaign&window=120&half_life=10&order=2&k=6";
    for (args, q, ext) in
        [(&[][..], "", "json"), (&[][..], "", "csv"), (&all[..], query, "json"), (&all[..], query, "csv")]
    {
        let cli = from_cli(&[&["attribution", dir()], args].concat(), ext);
        let http = from_http(get(&format!("attribution?{q}&format={ext}"))).await;
        same(&format!("attribution {args:?} .{ext}"), &cli, &http);
    }
    // The monthly series, as a table.
    let cli = from_cli(&["attribution", dir(), "--chart", "monthly", "--by", "campaign"], "json");
    let http = from_http(get("attribution?chart=monthly&by=campaign&format=json")).await;
    same("attribution monthly .json", &cli, &http);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_documents_are_identical_on_the_cli_and_the_api() {
    for (args, q, ext) in [
        (&[][..], "", "json"),
        (&["--by", "campaign", "--k", "6"][..], "by=campaign&k=6", "json"),
        (&["--by", "campaign", "--k", "6"][..], "by=campaign&k=6", "csv"),
    ] {
        let cli = from_cli(&[&["funnel", dir()], args].concat(), ext);
        let http = from_http(get(&format!("funnel?{q}&format={ext}"))).await;
        same(&format!("funnel {args:?} .{ext}"), &cli, &http);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_documents_are_identical_on_the_cli_and_the_api() {
    let sites = std::fs::read_to_string(city().join("sites.csv")).unwrap();
    let id_of = |kind: &str| sites.lines().find(|l| l.contains(kind)).unwrap().split(',').next().unwrap().to_string();
    let (cafe, lobby) = (id_of("cafe"), id_of("office_lobby"));
    let cli_all = [
        "--budget",
        "250000",
        "--where",
        "budget >= 1500000",
        "--reach",
        "commute",
        "--weight",
        "count",
        "--must-include",
        &cafe,
        "--exclude",
        &lobby,
        "--kinds",
        "cafe,billboard,bus_route",
        "--reach-m",
        "cafe=250,billboard=500",
        "--time-limit",
        "5",
        "--k",
        "6",
    ];
    let body_all = serde_json::json!({
        "budget": 250000, "where": "budget >= 1500000", "reach": "commute", "weight": "count",
        "must_include": [cafe], "exclude": [lobby], "kinds": ["cafe", "billboard", "bus_route"],
        "reach_m": {"cafe": 250, "billboard": 500}, "time_limit_s": 5, "k": 6,
    });
    for (args, body) in [(&["--budget", "200000"][..], serde_json::json!({"budget": 200000})), (&cli_all[..], body_all)]
    {
        let cli = from_cli(&[&["placement", dir()], args].concat(), "json");
        let doc: serde_json::Value = serde_json::from_slice(&cli).unwrap();
        // A plan is one answer only when proven optimal (a search cut by time can differ by timing).
        assert_eq!(doc["proven_optimal"], true, "{args:?}");
        let http = from_http(post("placement", &body)).await;
        same_plans(&format!("placement {args:?}"), &cli, &http);
    }
}

/// Placement documents are the same bytes, or (when a point of the reach curve was cut by its
/// time limit on either side, as a loaded machine can make it) the same documents once the
/// points either side did not prove are set aside.
fn same_plans(what: &str, cli: &[u8], http: &[u8]) {
    if cli == http {
        return same(what, cli, http);
    }
    let (mut a, mut b): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(cli).unwrap(), serde_json::from_slice(http).unwrap());
    let proven = |p: &serde_json::Value| p["reach"] == p["upper_bound"];
    let cut: Vec<usize> = (0..a["curve"].as_array().map_or(0, Vec::len))
        .filter(|&i| !proven(&a["curve"][i]) || !proven(&b["curve"][i]))
        .collect();
    assert!(!cut.is_empty(), "{what}: the documents differ and no curve point was cut");
    for i in cut {
        a["curve"][i] = serde_json::Value::Null;
        b["curve"][i] = serde_json::Value::Null;
    }
    assert_eq!(a, b, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_buyer_without_a_budget_weighs_the_same_in_cli_and_api_plans() {
    // regression: the CLI planned without the deals table, so a buyer without a budget weighed
    // nothing there and their deal price over HTTP (total_weight 4,648.9M against 4,691.4M).
    // Weighed by purchasing power, the reach curve's points can be cut by their time limit
    // (250 ms each), and the bound a cut search certifies depends on how far it got: those bounds
    // aside, the documents are the same.
    let args = ["--budget", "250000", "--weight", "budget", "--reach", "home"];
    let cli = from_cli(&[&["placement", dir()], &args[..]].concat(), "json");
    let http =
        from_http(post("placement", &serde_json::json!({"budget": 250000, "weight": "budget", "reach": "home"}))).await;
    let without_cut_bounds = |bytes: &[u8]| {
        let mut doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        for point in doc["curve"].as_array_mut().unwrap() {
            if point["reach"] != point["upper_bound"] {
                point["upper_bound"] = serde_json::Value::Null;
            }
        }
        doc
    };
    let cli_doc = without_cut_bounds(&cli);
    assert_eq!(cli_doc["proven_optimal"], true);
    assert_eq!(cli_doc, without_cut_bounds(&http), "placement {args:?}");
    same_plans("placement weighed by budget", &cli, &http);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_documents_are_identical_on_the_cli_and_the_api() {
    for (args, q, ext) in [
        (&[][..], "", "json"),
        (&["--by", "channel", "--k", "6"][..], "by=channel&k=6", "json"),
        (&["--by", "channel", "--k", "6"][..], "by=channel&k=6", "csv"),
        (&["--by", "cell", "--res", "8", "--location", "work"][..], "by=cell&res=8&location=work", "json"),
    ] {
        let cli = from_cli(&[&["referrals", dir()], args].concat(), ext);
        let http = from_http(get(&format!("referrals?{q}&format={ext}"))).await;
        same(&format!("referrals {args:?} .{ext}"), &cli, &http);
    }
}
