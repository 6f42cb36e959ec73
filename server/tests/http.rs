//! HTTP routes without a socket (`app().oneshot`), and one end-to-end test on 127.0.0.1:0.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use custmap::http::{app, AppState};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::Dataset;
use http_body_util::BodyExt;
use std::sync::OnceLock;
use tower::ServiceExt;

/// The analyst token of these tests' servers.
pub const ANALYST: &str = "analyst-secret";

/// A server with an analyst token (and no admin token) for `datasets`.
pub fn analyst_state(datasets: Vec<Dataset>, config: custmap::http::Config) -> AppState {
    let config = custmap::http::Config { analyst_token: Some(ANALYST.into()), ..config };
    AppState::with(custmap::http::Registry::in_memory(datasets), config)
}

/// A demo city of `customers` generated into `DIR/city` of a fresh temporary directory.
pub fn demo_city(customers: u64, seed: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city");
    generate(&city, &DemoParams { customers, seed, format: DemoFormat::Csv, ..DemoParams::default() }, &|_, _| {})
        .unwrap();
    (dir, city)
}

fn state() -> AppState {
    static STATE: OnceLock<(tempfile::TempDir, AppState)> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let (dir, city) = demo_city(3_000, 3);
            let ds = Dataset::load(&city).unwrap();
            (dir, analyst_state(vec![ds], custmap::http::Config::default()))
        })
        .1
        .clone()
}

/// GET as an analyst.
async fn get(uri: &str) -> (StatusCode, String, Vec<u8>) {
    let req = Request::get(uri).header("authorization", format!("Bearer {ANALYST}")).body(Body::empty()).unwrap();
    let res = app(state()).oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, ct, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_datasets() {
    let (s, _, body) = get("/api/v1/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"], "ok");
    let (s, _, body) = get("/api/v1/datasets").await;
    assert_eq!(s, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["datasets"][0]["id"], "city");
    assert_eq!(doc["datasets"][0]["tables"]["customers"], 3000);
    let (s, _, body) = get("/api/v1/datasets/city").await;
    assert_eq!(s, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["tables"]["customers"]["read"], 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heatmap_json_respects_the_floor_and_names_no_one() {
    let (s, ct, body) =
        get("/api/v1/datasets/city/heatmap?res=9&location=work&k=7&where=budget%20%3E%3D%203000000").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/json");
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["k"], 7);
    let cells = doc["cells"].as_array().unwrap();
    assert!(!cells.is_empty());
    for c in cells {
        assert!(c["prospects"].as_i64().is_some_and(|n| n == 0 || n >= 7));
        assert!(c["customers"].as_i64().is_none_or(|n| n >= 7));
        assert!(c.get("customer_id").is_none() && c.get("work_lat").is_none());
    }
    // The second call is served from the cached base and gives the same answer.
    let (_, _, again) =
        get("/api/v1/datasets/city/heatmap?res=9&location=work&k=7&where=budget%20%3E%3D%203000000").await;
    assert_eq!(body, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heatmap_formats() {
    for (format, ct) in [
        ("geojson", "application/geo+json"),
        ("csv", "text/csv"),
        ("png", "image/png"),
        ("svg", "image/svg+xml"),
        ("arrow", "application/vnd.apache.arrow.file"),
    ] {
        let (s, got, body) = get(&format!("/api/v1/datasets/city/heatmap?res=8&format={format}")).await;
        assert_eq!(s, StatusCode::OK, "{format}");
        assert_eq!(got, ct);
        assert!(!body.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_are_problem_json_4xx() {
    for (uri, status, needle) in [
        ("/api/v1/datasets/nope/heatmap", StatusCode::NOT_FOUND, "no dataset 'nope'"),
        ("/api/v1/datasets/city/heatmap?res=16", StatusCode::BAD_REQUEST, "resolution 16"),
        ("/api/v1/datasets/city/heatmap?where=salary%20%3E%201", StatusCode::BAD_REQUEST, "unknown column 'salary'"),
        ("/api/v1/datasets/city/heatmap?where=read_csv('x')%20%3E%201", StatusCode::BAD_REQUEST, "function calls"),
        ("/api/v1/datasets/city/heatmap?location=office", StatusCode::BAD_REQUEST, "office"),
        ("/api/v1/datasets/city/heatmap?format=xlsx", StatusCode::BAD_REQUEST, "format 'xlsx'"),
        ("/api/v1/datasets/city/heatmap?k=0", StatusCode::BAD_REQUEST, "k = 0"),
    ] {
        let (s, ct, body) = get(uri).await;
        assert_eq!(s, status, "{uri}");
        assert_eq!(ct, "application/problem+json", "{uri}");
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["status"], status.as_u16());
        assert!(doc["detail"].as_str().unwrap().contains(needle), "{uri}: {doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_on_a_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(custmap::http::serve_on(listener, state(), std::future::pending()));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"status\":\"ok\""));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_slow_headers_are_cut_off_and_hold_nothing() {
    // A client that sends its headers a byte at a time (or not at all) held a connection open
    // for as long as it liked; enough of them and no one else is served. Now the connection is
    // closed after the header timeout, and the connection limit makes later clients wait
    // rather than fail.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = custmap::http::Config {
        header_timeout: std::time::Duration::from_millis(500),
        max_connections: 8,
        ..Default::default()
    };
    let served = AppState::with(custmap::http::Registry::in_memory(vec![]), config);
    let server = tokio::spawn(custmap::http::serve_on(listener, served, std::future::pending()));
    let mut slow = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..8 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: loc").await.unwrap();
        slow.push(s);
    }
    // Every slot is held by a slow client; a normal one is answered once they are cut off
    // (their timeouts started when they were accepted, after `started`).
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), ok.read_to_string(&mut reply)).await.unwrap().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(450), "it waited for a slot");
    for mut s in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a slow client's connection was closed");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_queued_work_whose_callers_left_never_runs() {
    // 100 placements at once all passed the deadline and their work still ran for 75 s after,
    // for no one. Queued work whose every caller has left is now dropped when its turn comes.
    use std::sync::atomic::{AtomicBool, Ordering};
    let config = custmap::http::Config { heavy_workers: 1, heavy_queue: 4, ..Default::default() };
    let state = AppState::with(custmap::http::Registry::in_memory(vec![]), config);
    let first = state.clone();
    let busy = tokio::spawn(async move {
        custmap::http::cached(&first, 1, "slow".into(), || {
            std::thread::sleep(std::time::Duration::from_millis(800));
            Ok(custmap::http::Reply::json(&serde_json::json!({})))
        })
        .await
        .map(|_| ())
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let ran = std::sync::Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        custmap::http::cached(&state, 1, "queued".into(), move || {
            flag.store(true, Ordering::SeqCst);
            Ok(custmap::http::Reply::json(&serde_json::json!({})))
        }),
    )
    .await;
    assert!(gave_up.is_err(), "the caller gave up while it queued");
    busy.await.unwrap().unwrap();
    for _ in 0..100 {
        if state.heavy.abandoned.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state.heavy.abandoned.load(Ordering::SeqCst), 1);
    assert!(!ran.load(Ordering::SeqCst), "no one was waiting for it");
    // A caller still waiting is served as before.
    let served = custmap::http::cached(&state, 1, "queued".into(), || {
        Ok(custmap::http::Reply::json(&serde_json::json!({"ok": 1})))
    });
    assert!(served.await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_and_funnel_routes() {
    let (s, ct, body) = get("/api/v1/datasets/city/attribution?model=all&by=channel&window=365").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["model"].as_array().unwrap().len(), 7);
    assert!(doc["rows"][0]["roi"].is_number() || doc["rows"][0]["notes"].is_string());
    let (s, ct, body) = get("/api/v1/datasets/city/attribution?model=shapley&by=campaign&format=csv").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/csv"));
    assert!(String::from_utf8(body).unwrap().starts_with("model,campaign,conversions"));
    let (s, _, body) = get("/api/v1/datasets/city/funnel?by=channel").await;
    assert_eq!(s, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["rows"][0]["leads"].as_i64().unwrap() > 0);
    for (uri, needle) in [
        ("/api/v1/datasets/city/attribution?model=magic", "unknown model"),
        ("/api/v1/datasets/city/attribution?by=region", "by: unknown variant `region`"),
        ("/api/v1/datasets/city/attribution?window=0", "window"),
        ("/api/v1/datasets/city/funnel?format=xlsx", "format 'xlsx'"),
    ] {
        let (s, ct, body) = get(uri).await;
        assert_eq!((s, ct.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"), "{uri}");
        assert!(String::from_utf8(body).unwrap().contains(needle), "{uri}");
    }
}

/// Sends `req` as an analyst unless it carries its own Authorization header.
async fn send(app_state: AppState, mut req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    if !req.headers().contains_key("authorization") {
        req.headers_mut().insert("authorization", format!("Bearer {ANALYST}").parse().unwrap());
    }
    let res = app(app_state).oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

fn json_of(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_exactly_the_routes_served() {
    let (s, ct, body) = get("/api/v1/openapi.json").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
    let doc = json_of(&body);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut want = vec![
        "GET /",
        "GET /assets/{file}",
        "GET /api/v1/health",
        "GET /api/v1/openapi.json",
        "GET /api/v1/datasets",
        "POST /api/v1/datasets",
        "GET /api/v1/datasets/{id}",
        "GET /api/v1/datasets/{id}/districts",
        "GET /api/v1/datasets/{id}/heatmap",
        "GET /api/v1/datasets/{id}/attribution",
        "GET /api/v1/datasets/{id}/funnel",
        "GET /api/v1/datasets/{id}/referrals",
        "POST /api/v1/datasets/{id}/placement",
    ];
    want.sort_unstable();
    assert_eq!(documented, want);
    // And every documented route is served (no 404 or 405 from the router itself).
    for route in &want {
        let (method, path) = route.split_once(' ').unwrap();
        let uri = path.replace("{id}", "city").replace("{file}", "app.js");
        let req = Request::builder().method(method).uri(&uri).body(Body::empty()).unwrap();
        let (s, _, _) = send(state(), req).await;
        assert!(s != StatusCode::NOT_FOUND && s != StatusCode::METHOD_NOT_ALLOWED, "{route}: {s}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let heat = &doc["paths"]["/api/v1/datasets/{id}/heatmap"]["get"]["parameters"];
    let names: Vec<&str> = heat.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for p in ["id", "res", "location", "where", "k", "format"] {
        assert!(names.contains(&p), "heatmap parameter {p} undocumented: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_a_request_id() {
    let req = Request::get("/api/v1/health").body(Body::empty()).unwrap();
    let (_, headers, _) = send(state(), req).await;
    let id = headers.get("x-request-id").expect("x-request-id").to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let req = Request::get("/api/v1/health").header("x-request-id", "trace-me-42").body(Body::empty()).unwrap();
    let (_, headers, _) = send(state(), req).await;
    assert_eq!(headers.get("x-request-id").unwrap(), "trace-me-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heatmap_accept_header_and_geojson_floor() {
    let req = Request::get("/api/v1/datasets/city/heatmap?res=9&k=12").header("accept", "text/csv").body(Body::empty());
    let (s, headers, body) = send(state(), req.unwrap()).await;
    assert_eq!((s, headers["content-type"].to_str().unwrap()), (StatusCode::OK, "text/csv"));
    assert!(String::from_utf8(body).unwrap().starts_with("hex_id,"));
    let (_, _, body) = get("/api/v1/datasets/city/heatmap?res=9&k=12&format=geojson").await;
    let doc = json_of(&body);
    assert_eq!(doc["k"], 12);
    assert!(doc["suppressed"]["merged"].as_u64().unwrap() > 0, "k=12 at res 9 must merge some cells");
    for f in doc["features"].as_array().unwrap() {
        assert!(f["properties"]["customers"].as_i64().unwrap_or(12) >= 12);
        assert!(f["properties"]["buyers"].as_i64().is_none_or(|b| b == 0 || b >= 12));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_resolution_from_the_cache_equals_a_fresh_build() {
    // res 9 first (cached base), then res 7 re-indexed from it, against a fresh state's res 7.
    // Its own state: the shared one's release ledger sees other tests' answers.
    let warm = analyst_state(vec![(*state().registry.get("city").unwrap().dataset).clone()], Default::default());
    let q = "/api/v1/datasets/city/heatmap?res=9&location=home&k=3&where=budget%20%3E%3D%202500000";
    let _ = send(warm.clone(), Request::get(q).body(Body::empty()).unwrap()).await;
    let q7 = q.replace("res=9", "res=7");
    let (_, _, from_cache) = send(warm, Request::get(&q7).body(Body::empty()).unwrap()).await;
    // The same releases first (the release ledger then holds the same), then the base cache
    // emptied, so res 7 is built afresh.
    let mut cold = analyst_state(vec![(*state().registry.get("city").unwrap().dataset).clone()], Default::default());
    let _ = send(cold.clone(), Request::get(q).body(Body::empty()).unwrap()).await;
    cold.bases = std::sync::Arc::new(custmap::http::state::Cache::new(4));
    let (_, _, fresh) = send(cold, Request::get(&q7).body(Body::empty()).unwrap()).await;
    assert_eq!(json_of(&from_cache)["cells"], json_of(&fresh)["cells"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_and_funnel_charts() {
    for (uri, ct) in [
        ("/api/v1/datasets/city/attribution?model=markov&format=png", "image/png"),
        ("/api/v1/datasets/city/attribution?model=all&format=svg&chart=compare", "image/svg+xml"),
        ("/api/v1/datasets/city/attribution?model=linear&format=svg&chart=monthly", "image/svg+xml"),
        ("/api/v1/datasets/city/funnel?format=svg", "image/svg+xml"),
    ] {
        let (s, got, body) = get(uri).await;
        assert_eq!((s, got.as_str()), (StatusCode::OK, ct), "{uri}");
        if ct == "image/png" {
            assert_eq!(&body[..4], b"\x89PNG");
        } else {
            assert!(String::from_utf8(body).unwrap().contains("<svg"));
        }
    }
    let (s, _, body) = get("/api/v1/datasets/city/attribution?format=svg&chart=pie").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(body).unwrap().contains("chart"));
}

fn post_json(uri: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post(uri).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_placement_defaults_agree_between_cli_and_http() {
    // The CLI planned for `reach both` by default and HTTP for `work`: the same request gave
    // two plans. Both default to `both` now; the same request gives the same document.
    let (_dir, city) = demo_city(2_000, 11);
    let out = city.with_file_name("plan.json");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_custmap"))
        .args(["placement", city.to_str().unwrap(), "--budget", "200000", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let from_cli: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let served = analyst_state(vec![Dataset::load(&city).unwrap()], custmap::http::Config::default());
    let uri = "/api/v1/datasets/city/placement";
    let (s, _, body) = send(served, post_json(uri, &serde_json::json!({"budget": 200000}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let from_http = json_of(&body);
    assert_eq!(from_cli["proven_optimal"], true, "a proven plan is unique in its reach");
    for field in ["reach", "reach_split", "prospects", "total_weight", "withheld"] {
        assert_eq!(from_cli[field], from_http[field], "{field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_plans_within_budget() {
    let uri = "/api/v1/datasets/city/placement";
    let (s, h, body) = send(state(), post_json(uri, &serde_json::json!({"budget": 300000, "reach": "work"}))).await;
    assert_eq!((s, h["content-type"].to_str().unwrap()), (StatusCode::OK, "application/json"));
    let plan = json_of(&body);
    assert!(plan["cost"].as_f64().unwrap() <= 300000.0);
    assert!(!plan["sites"].as_array().unwrap().is_empty());
    let reach = plan["reach"].as_f64().unwrap();
    assert!(reach > 0.0 && reach <= plan["upper_bound"].as_f64().unwrap() + 1e-9);
    // Only the asked kinds are chosen.
    let kinds = serde_json::json!({"budget": 300000, "kinds": ["cafe"], "reach": "both", "where": "budget >= 2000000"});
    let (s, _, body) = send(state(), post_json(uri, &kinds)).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let plan = json_of(&body);
    assert!(plan["sites"].as_array().unwrap().iter().all(|s| s["kind"] == "cafe"));
    let (s, h, body) = send(state(), post_json(uri, &serde_json::json!({"budget": 300000, "format": "svg"}))).await;
    assert_eq!((s, h["content-type"].to_str().unwrap()), (StatusCode::OK, "image/svg+xml"));
    assert!(String::from_utf8(body).unwrap().contains("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_mistakes_are_4xx_naming_the_field() {
    let uri = "/api/v1/datasets/city/placement";
    for (body, status, needle) in [
        (serde_json::json!({"budget": -1}), StatusCode::BAD_REQUEST, "budget"),
        (serde_json::json!({"budget": 1000, "reach": "sky"}), StatusCode::BAD_REQUEST, "reach: unknown variant `sky`"),
        (serde_json::json!({"budget": 1000, "budjet": 5}), StatusCode::BAD_REQUEST, "budjet"),
        (serde_json::json!({"budget": 1000, "must_include": ["nowhere"]}), StatusCode::BAD_REQUEST, "nowhere"),
        (serde_json::json!({"budget": 1000, "kinds": ["zeppelin"]}), StatusCode::BAD_REQUEST, "zeppelin"),
        (serde_json::json!({"budget": 1000, "where": "salary > 3"}), StatusCode::BAD_REQUEST, "salary"),
        (serde_json::json!({"budget": 1000, "reach_m": {"cafe": -5}}), StatusCode::BAD_REQUEST, "reach_m"),
        (
            serde_json::json!({"budget": 1000, "reach_m": {"cafe": 0}}),
            StatusCode::BAD_REQUEST,
            "reach_m for 'cafe' must be a distance > 0 in metres",
        ),
        // regression: a 600 s search held a worker for ten minutes after its caller had gone.
        (serde_json::json!({"budget": 1000, "time_limit_s": 600}), StatusCode::BAD_REQUEST, "at most 30"),
    ] {
        let (s, h, got) = send(state(), post_json(uri, &body)).await;
        assert_eq!(s, status, "{body}: {}", String::from_utf8_lossy(&got));
        assert_eq!(h["content-type"], "application/problem+json", "{body}");
        assert!(
            json_of(&got)["detail"].as_str().unwrap().contains(needle),
            "{body}: {}",
            String::from_utf8_lossy(&got)
        );
    }
    let text = Request::post(uri).header("content-type", "text/plain").body(Body::from("budget=5")).unwrap();
    let (s, _, _) = send(state(), text).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_served_with_its_assets() {
    let (s, ct, body) = get("/").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("/assets/app.js") && page.contains("id=\"map\""));
    assert!(!page.contains("http://") && !page.contains("https://"), "the page must load nothing from elsewhere");
    let (s, ct, _) = get("/assets/app.js").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/javascript; charset=utf-8"));
    let (s, ct, _) = get("/assets/app.css").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/css; charset=utf-8"));
    let (s, ct, _) = get("/assets/secrets.txt").await;
    assert_eq!((s, ct.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));
    let (s, ct, body) = get("/api/v1/datasets/city/districts").await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/geo+json"));
    assert_eq!(json_of(&body)["features"].as_array().unwrap().len(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_deadline_is_503_problem_json() {
    let ds = (*state().registry.get("city").unwrap().dataset).clone();
    let config = custmap::http::Config { timeout: std::time::Duration::from_millis(1), ..Default::default() };
    let slow = analyst_state(vec![ds], config);
    let req = Request::get("/api/v1/datasets/city/attribution?model=all").body(Body::empty()).unwrap();
    let (s, h, body) = send(slow, req).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(json_of(&body)["detail"].as_str().unwrap().contains("longer than"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_computes_once_and_refuses_early_beyond_the_queue() {
    let ds = (*state().registry.get("city").unwrap().dataset).clone();
    let config = custmap::http::Config { heavy_workers: 1, heavy_queue: 2, ..Default::default() };
    let st = analyst_state(vec![ds], config);
    // Twenty identical uncached requests at once: one computation, twenty identical answers.
    let uri = "/api/v1/datasets/city/attribution?model=shapley&by=campaign";
    let before = st.heavy.started.load(std::sync::atomic::Ordering::Relaxed);
    let same = (0..20).map(|_| send(st.clone(), Request::get(uri).body(Body::empty()).unwrap()));
    let answers = futures_util::future::join_all(same).await;
    assert!(answers.iter().all(|(s, _, _)| *s == StatusCode::OK));
    assert!(answers.windows(2).all(|w| w[0].2 == w[1].2));
    assert_eq!(st.heavy.started.load(std::sync::atomic::Ordering::Relaxed) - before, 1, "single flight");
    // Twelve distinct heavy requests at once with room for three: the rest are refused at once.
    let distinct = (1..=12).map(|w| {
        let uri = format!("/api/v1/datasets/city/attribution?model=all&window={}", 30 * w);
        send(st.clone(), Request::get(uri).body(Body::empty()).unwrap())
    });
    let answers = futures_util::future::join_all(distinct).await;
    let ok = answers.iter().filter(|(s, _, _)| *s == StatusCode::OK).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert_eq!(ok + refused.len(), 12, "only answers or early refusals");
    assert!(ok >= 3, "{ok} answered");
    assert!(!refused.is_empty(), "nothing refused with 12 requests for 3 places");
    for (_, h, body) in refused {
        assert_eq!(h["retry-after"], "5");
        assert!(json_of(body)["detail"].as_str().unwrap().contains("busy"));
    }
    // Health is never queued behind heavy work.
    let (s, _, _) = send(st.clone(), Request::get("/api/v1/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_long_where_chain_is_a_400_not_a_crash() {
    let chain = format!("budget >= 1{}", " AND budget >= 1".repeat(800));
    let enc: String = chain.bytes().map(|b| format!("%{b:02X}")).collect();
    let (s, ct, body) = get(&format!("/api/v1/datasets/city/heatmap?res=8&where={enc}")).await;
    assert_eq!((s, ct.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"));
    assert!(String::from_utf8(body).unwrap().contains("limit"));
    // A constant filter is legal: everyone or no one.
    let (s, _, body) = get("/api/v1/datasets/city/heatmap?res=8&where=1%3D1").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (s, _, body) = get("/api/v1/datasets/city/heatmap?res=8&where=1%3D2").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // No one is a prospect: the cells keep their customers and show 0 prospects.
    let cells = json_of(&body)["cells"].as_array().unwrap().clone();
    assert!(!cells.is_empty() && cells.iter().all(|c| c["prospects"] == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_query_404_and_405_errors_are_problem_json() {
    for (uri, status, needle) in [
        ("/api/v1/datasets/city/heatmap?res=abc", StatusCode::BAD_REQUEST, "res"),
        ("/api/v1/datasets/city/heatmap?k=-1", StatusCode::BAD_REQUEST, "k"),
        ("/api/v1/datasets/city/attribution?window=-3", StatusCode::BAD_REQUEST, "window"),
        ("/api/v1/nothing/here", StatusCode::NOT_FOUND, "no such route"),
    ] {
        let (s, ct, body) = get(uri).await;
        assert_eq!((s, ct.as_str()), (status, "application/problem+json"), "{uri}");
        assert!(
            json_of(&body)["detail"].as_str().unwrap().contains(needle),
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let req = Request::delete("/api/v1/health").body(Body::empty()).unwrap();
    let (s, h, body) = send(state(), req).await;
    assert_eq!((s, h["content-type"].to_str().unwrap()), (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json"));
    assert!(json_of(&body)["detail"].as_str().unwrap().contains("method"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_route_by_referrer_and_channel() {
    let (s, ct, body) = get("/api/v1/datasets/city/referrals").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["by"], "referrer");
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "the demo city has referrals");
    assert!(rows[0]["chain_customers"].as_u64().unwrap() >= rows[0]["direct_referrals"].as_u64().unwrap());
    assert!(doc["summary"]["referred_customers"].as_u64().unwrap() > 0);
    let (s, _, body) = get("/api/v1/datasets/city/referrals?by=channel&format=csv").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).starts_with("channel,customers,buyers,revenue,referred_customers"));
    let (s, _, body) = get("/api/v1/datasets/city/referrals?by=cousin").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("by: unknown variant `cousin`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_edge_errors_are_problem_json_with_bounded_echo() {
    let problem = |s: StatusCode, h: &axum::http::HeaderMap, body: &[u8]| {
        assert_eq!(h["content-type"], "application/problem+json", "{s}: {}", String::from_utf8_lossy(body));
        let doc = json_of(body);
        assert_eq!(doc["status"], s.as_u16());
        doc["detail"].as_str().unwrap().to_string()
    };
    // A request target over the bound: 414 in words, not hyper's empty answer.
    let uri = format!("/api/v1/datasets/city/heatmap?metric={}", "a".repeat(62_000));
    let (s, h, body) = send(state(), Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
    assert!(problem(s, &h, &body).contains("limit"));
    // Headers over the bound: 431.
    let req = Request::get("/api/v1/health").header("x-big", "b".repeat(70_000)).body(Body::empty()).unwrap();
    let (s, h, body) = send(state(), req).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    problem(s, &h, &body);
    // A compressed body is refused (415), not read as garbage JSON.
    let req = Request::post("/api/v1/datasets/city/placement")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Body::from(vec![0x1f, 0x8b, 0x08, 0x00]))
        .unwrap();
    let (s, h, body) = send(state(), req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(problem(s, &h, &body).contains("gzip"));
    // An unknown field is a documented 400 naming it, in API words.
    let req = Request::post("/api/v1/datasets/city/placement")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"budget": 100000, "bogus": 1}"#))
        .unwrap();
    let (s, h, body) = send(state(), req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let detail = problem(s, &h, &body);
    assert!(detail.contains("bogus") && detail.starts_with("request body"), "{detail}");
    // A 5,000-character id is echoed cut short.
    let (s, h, body) =
        send(state(), Request::get(format!("/api/v1/datasets/{}", "x".repeat(5000))).body(Body::empty()).unwrap())
            .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let detail = problem(s, &h, &body);
    assert!(detail.len() < 300 && detail.contains("5000 characters"), "{detail}");
    // A query number out of range says so in API words.
    let (s, _, body) = get("/api/v1/datasets/city/heatmap?res=-1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let detail = json_of(&body)["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("res") && detail.contains("whole number"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_accept_q_values_are_honoured() {
    let with_accept = |accept: &'static str| {
        Request::get("/api/v1/datasets/city/heatmap?res=7").header("accept", accept).body(Body::empty()).unwrap()
    };
    for (accept, want) in [
        ("image/png;q=0, application/json", "application/json"),
        ("text/csv;q=0.5, image/svg+xml", "image/svg+xml"),
        ("text/csv;q=0.9, application/geo+json;q=0.2", "text/csv"),
        ("*/*", "application/json"),
        ("text/html, image/*;q=0.1", "image/png"),
    ] {
        let (s, h, body) = send(state(), with_accept(accept)).await;
        assert_eq!(s, StatusCode::OK, "{accept}: {}", String::from_utf8_lossy(&body));
        assert_eq!(h["content-type"], want, "{accept}");
    }
    // Nothing served is acceptable: 406, not a PNG the caller refused.
    let (s, h, _) = send(state(), with_accept("image/png;q=0")).await;
    assert_eq!((s, h["content-type"].to_str().unwrap()), (StatusCode::NOT_ACCEPTABLE, "application/problem+json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_resolves_and_lists_edge_statuses() {
    let (_, _, body) = get("/api/v1/openapi.json").await;
    let doc = json_of(&body);
    let text = doc.to_string();
    // Every $ref points at a schema the document holds (a dangling ref broke clients before).
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"$ref\":\"").skip(1) {
        let target = part.split('"').next().unwrap();
        let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("odd $ref {target}"));
        assert!(schemas.contains_key(name), "dangling $ref {target}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for code in ["400", "414", "415", "431", "503"] {
                assert!(responses.contains_key(code), "{method} {path} does not list {code}");
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("413") && responses.contains_key("415"), "{method} {path}");
                let content = op["requestBody"]["content"].as_object().unwrap();
                assert!(content.values().all(|c| c.get("schema").is_some()), "{method} {path}: body without a schema");
            }
        }
    }
    let res = doc["paths"]["/api/v1/datasets/{id}/heatmap"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "res")
        .unwrap()
        .clone();
    assert_eq!((res["schema"]["minimum"].as_u64(), res["schema"]["maximum"].as_u64()), (Some(0), Some(15)));
    // The document validates as OpenAPI 3.1 (openapi-spec-validator).
    let Some(python) = test_python() else { return };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let out = std::process::Command::new(&python)
        .args(["-c", "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The Python of the test tools (`server/tests/requirements.txt`, installed by `.ci/run` into the
/// notebooks' environment): `$CUSTMAP_NOTEBOOK_PYTHON`, else `notebooks/.venv/bin/python`. None
/// (the caller skips, saying so) unless `CUSTMAP_REQUIRE_NOTEBOOKS` is set, as in CI.
pub fn test_python() -> Option<std::path::PathBuf> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("CUSTMAP_NOTEBOOK_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("notebooks/.venv/bin/python"));
    if python.is_file() {
        return Some(python);
    }
    assert!(std::env::var_os("CUSTMAP_REQUIRE_NOTEBOOKS").is_none(), "no {}", python.display());
    eprintln!("no Python environment at {}: skipped", python.display());
    None
}

/// Schemathesis generates requests from the OpenAPI document (valid and invalid) against a live
/// server: no 5xx, every status and content type documented, every response matching its schema,
/// invalid input refused. `positive_data_acceptance` is left out: the schema cannot say what a
/// valid CSV file is, so schema-valid uploads of random bytes are rightly refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_runs_clean() {
    let Some(python) = test_python() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(state())).await });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        "[parameters]\n\"path.id\" = \"city\"\n\"path.file\" = \"app.js\"\n",
    )
    .unwrap();
    let cli = python.with_file_name("schemathesis");
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cli)
            .current_dir(&cwd)
            .args(["--config-file", "schemathesis.toml", "run"])
            .arg(format!("http://{addr}/api/v1/openapi.json"))
            .args(["--max-examples", "10", "--seed", "1", "--request-timeout", "120", "--no-color"])
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["-H", &format!("Authorization: Bearer {ANALYST}")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_padded_segment_is_the_same_request() {
    // The segment text was trimmed in five places but the cache key used it raw: `budget >= X`
    // and ` budget >= X ` were two computations. One rule now (`Segment::given`) before the key.
    let ds = (*state().registry.get("city").unwrap().dataset).clone();
    let st = analyst_state(vec![ds], custmap::http::Config::default());
    let uri =
        |w: &str| format!("/api/v1/datasets/city/heatmap?res=8&where={}", w.replace(' ', "%20").replace('>', "%3E"));
    let before = st.heavy.started.load(std::sync::atomic::Ordering::Relaxed);
    let (s1, _, plain) = send(st.clone(), Request::get(uri("budget > 2000000")).body(Body::empty()).unwrap()).await;
    let (s2, _, padded) =
        send(st.clone(), Request::get(uri("  budget > 2000000  ")).body(Body::empty()).unwrap()).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(plain, padded, "the same document, shown with the trimmed text");
    assert_eq!(st.heavy.started.load(std::sync::atomic::Ordering::Relaxed) - before, 1, "computed once");
    // Blank is everyone.
    let (_, _, blank) = send(st.clone(), Request::get(uri("   ")).body(Body::empty()).unwrap()).await;
    let (_, _, all) =
        send(st.clone(), Request::get("/api/v1/datasets/city/heatmap?res=8").body(Body::empty()).unwrap()).await;
    assert_eq!(blank, all);
}
