//! Uploads: the bearer token, validation with the ingest rules, limits, atomic publication,
//! survival across a restart, and an upload cut off midway.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use custmap::http::{app, AppState, Config, Registry};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";
const BOUNDARY: &str = "custmap-test-boundary";

/// Table files of a small demo city, read once.
fn files() -> &'static Vec<(String, Vec<u8>)> {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        generate(
            dir.path(),
            &DemoParams { customers: 400, seed: 5, format: DemoFormat::Csv, ..DemoParams::default() },
            &|_, _| {},
        )
        .unwrap();
        ["customers", "deals", "touchpoints", "campaigns", "sites"]
            .iter()
            .map(|t| (t.to_string(), std::fs::read(dir.path().join(format!("{t}.csv"))).unwrap()))
            .collect()
    })
}

/// A multipart body: `name`, then each table as a file field.
fn form(name: &str, tables: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n").bytes());
    for (field, file, bytes) in tables {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

fn city_form(name: &str) -> Vec<u8> {
    let tables: Vec<(&str, String, &[u8])> =
        files().iter().map(|(t, b)| (t.as_str(), format!("{t}.csv"), b.as_slice())).collect();
    let refs: Vec<(&str, &str, &[u8])> = tables.iter().map(|(t, f, b)| (*t, f.as_str(), *b)).collect();
    form(name, &refs)
}

fn upload_request(body: Vec<u8>, token: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/api/v1/datasets")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .header("content-length", body.len());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(Body::from(body)).unwrap()
}

fn server(data_dir: &Path, config: Config) -> AppState {
    AppState::with(Registry::open(data_dir, Vec::new()).unwrap(), config)
}

fn with_token() -> Config {
    Config { token: Some(TOKEN.into()), ..Config::default() }
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let res = app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

/// What a reader of the data directory sees: its entries, sorted.
/// The data directory's entries, less the server's release ledgers.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != custmap::http::state::LEDGER_DIR)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let off = server(dir.path(), Config::default());
    let (s, doc) = call(&off, upload_request(city_form("a"), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(doc["detail"].as_str().unwrap().contains("CUSTMAP_TOKEN"), "{doc}");
    let on = server(dir.path(), with_token());
    let (s, _) = call(&on, upload_request(city_form("a"), None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&on, upload_request(city_form("a"), Some("s3cret-tokem"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_validated_stored_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), with_token());
    // One bad customer row among the good ones: accepted with the reject accounted for.
    let mut customers = files()[0].1.clone();
    customers.extend(b"BAD-1,91.5,114.3,,,,,,,,\n");
    let mut tables: Vec<(&str, String, Vec<u8>)> =
        files().iter().map(|(t, b)| (t.as_str(), format!("{t}.csv"), b.clone())).collect();
    tables[0].2 = customers;
    let refs: Vec<(&str, &str, &[u8])> = tables.iter().map(|(t, f, b)| (*t, f.as_str(), b.as_slice())).collect();
    let (s, doc) = call(&state, upload_request(form("wuhan-q3", &refs), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::CREATED, "{doc}");
    assert_eq!(doc["id"], "wuhan-q3");
    let c = &doc["tables"]["customers"];
    assert_eq!(c["read"].as_u64().unwrap(), 401);
    assert_eq!(c["accepted"].as_u64().unwrap() + c["rejected"].as_u64().unwrap(), 401);
    assert!(c["rejected"].as_u64().unwrap() >= 1);
    assert!(doc["rejects"]["total"].as_u64().unwrap() >= 1);
    assert_eq!(listing(dir.path()), ["wuhan-q3"]);

    let (s, doc) = call(
        &state,
        Request::get("/api/v1/datasets/wuhan-q3/heatmap?res=7&k=1")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    let served: i64 = doc["cells"].as_array().unwrap().iter().map(|c| c["customers"].as_i64().unwrap()).sum();
    assert!(served > 0);

    // The same name again is a conflict; the stored dataset is untouched.
    let (s, doc) = call(&state, upload_request(city_form("wuhan-q3"), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{doc}");
    assert_eq!(listing(dir.path()), ["wuhan-q3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_4xx_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), with_token());
    let deals = files()[1].1.as_slice();
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (city_form("../etc"), StatusCode::BAD_REQUEST, "name '../etc'"),
        (city_form("Has Spaces"), StatusCode::BAD_REQUEST, "a dataset name"),
        (form("nocustomers", &[("deals", "deals.csv", deals)]), StatusCode::BAD_REQUEST, "customers"),
        (form("x", &[("customers", "customers.xlsx", b"a,b\n")]), StatusCode::BAD_REQUEST, ".csv or .parquet"),
        (form("x", &[("salaries", "s.csv", b"a,b\n")]), StatusCode::BAD_REQUEST, "field 'salaries'"),
        (form("x", &[("customers", "customers.csv", b"id,lat\n1,2\n")]), StatusCode::BAD_REQUEST, "customer_id"),
    ];
    for (body, status, needle) in cases {
        let (s, doc) = call(&state, upload_request(body, Some(TOKEN))).await;
        assert_eq!(s, status, "{doc}");
        let detail = doc["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{detail}");
        assert!(!detail.contains(".upload-"), "a temporary path leaked: {detail}");
    }
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    let (_, doc) = call(&state, Request::get("/api/v1/datasets").body(Body::empty()).unwrap()).await;
    assert!(doc["datasets"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_413() {
    let dir = tempfile::tempdir().unwrap();
    let small = server(dir.path(), Config { max_upload_bytes: 20_000, ..with_token() });
    let (s, doc) = call(&small, upload_request(city_form("big"), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{doc}");
    assert!(doc["detail"].as_str().unwrap().contains("limit"));
    // Without a Content-Length the streamed count catches it.
    let body = city_form("big");
    let req = Request::post("/api/v1/datasets")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(chunked(body))
        .unwrap();
    let (s, _) = call(&small, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let few_rows = server(dir.path(), Config { max_upload_rows: 100, ..with_token() });
    let (s, doc) = call(&few_rows, upload_request(city_form("big"), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(doc["detail"].as_str().unwrap().contains("at most 100"), "{doc}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

/// A body in 4 KiB chunks with no declared length.
fn chunked(body: Vec<u8>) -> Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
        body.chunks(4096).map(|c| Ok(axum::body::Bytes::copy_from_slice(c))).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

/// A GET with the admin token (exact figures).
fn raw_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn raw_upload(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /api/v1/datasets HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn body_of(reply: &str) -> &str {
    reply.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

async fn start(state: AppState) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(custmap::http::serve_on(listener, state, std::future::pending()));
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_query_restart_query_on_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, server_task) = start(server(dir.path(), with_token())).await;
    let reply = raw_http(addr, &raw_upload(&city_form("crm-export"))).await;
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let uri = "/api/v1/datasets/crm-export/heatmap?res=8&location=both&k=3";
    let before = raw_http(addr, &raw_get(uri)).await;
    assert!(before.starts_with("HTTP/1.1 200"), "{before}");
    server_task.abort();
    let _ = server_task.await;

    // A new process on the same data directory serves the same dataset and the same answer.
    let (addr, server_task) = start(server(dir.path(), with_token())).await;
    let after = raw_http(addr, &raw_get(uri)).await;
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
    let cells = |r: &str| serde_json::from_str::<serde_json::Value>(body_of(r)).unwrap()["cells"].clone();
    assert_eq!(cells(&before), cells(&after));
    assert!(!cells(&after).as_array().unwrap().is_empty());
    server_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_midway_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), with_token());
    let (addr, server_task) = start(state.clone()).await;
    let full = raw_upload(&city_form("half"));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Headers and part of the customers file, then the client goes away.
    stream.write_all(&full[..full.len() / 3]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mid = listing(dir.path());
    assert!(mid.iter().all(|n| n.starts_with(".upload-")), "only a hidden temporary directory while writing: {mid:?}");
    drop(stream);
    // The server notices the reset and drops the temporary directory.
    let mut left = listing(dir.path());
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = listing(dir.path());
    }
    assert!(left.is_empty(), "residue after an interrupted upload: {left:?}");
    let reply = raw_http(addr, &raw_get("/api/v1/datasets")).await;
    assert!(body_of(&reply).contains("\"datasets\":[]"), "{reply}");
    let reply = raw_http(addr, &raw_get("/api/v1/datasets/half")).await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    server_task.abort();
}

#[test]
fn a_crash_mid_upload_is_swept_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let residue = dir.path().join(".upload-abc123");
    std::fs::create_dir(&residue).unwrap();
    std::fs::write(residue.join("customers.csv"), &files()[0].1[..100]).unwrap();
    let registry = Registry::open(dir.path(), Vec::new()).unwrap();
    assert!(registry.list().is_empty());
    assert!(listing(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_bounded_by_size_not_by_the_request_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), Config { timeout: Duration::from_millis(1), ..with_token() });
    let (s, doc) = call(&state, upload_request(city_form("slow-link"), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::CREATED, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_parquet_bomb_is_refused_before_decoding() {
    use polars::prelude::*;
    // A million rows of one repeated value: a few KiB of Parquet that would decode to many MiB.
    let n = 1_000_000usize;
    let mut df =
        df!("customer_id" => vec!["C1"; n], "home_lat" => vec![30.5f64; n], "home_lng" => vec![114.3f64; n]).unwrap();
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df).unwrap();
    assert!(bytes.len() < 200_000, "the bomb is small: {} bytes", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), Config { max_upload_rows: 10_000, ..with_token() });
    let (s, doc) =
        call(&state, upload_request(form("bomb", &[("customers", "customers.parquet", &bytes)]), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{doc}");
    let detail = doc["detail"].as_str().unwrap();
    assert!(detail.contains("counted before decoding") && detail.contains("customers.parquet"), "{detail}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_huge_csv_fields_and_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), with_token());
    // One 2 MiB field on line 3.
    let csv =
        format!("customer_id,home_lat,home_lng,district\nC1,30.5,114.3,a\nC2,30.5,114.3,{}\n", "d".repeat(2 << 20));
    let (s, doc) =
        call(&state, upload_request(form("wide", &[("customers", "customers.csv", csv.as_bytes())]), Some(TOKEN)))
            .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{doc}");
    let detail = doc["detail"].as_str().unwrap();
    assert!(detail.contains("customers.csv line 3"), "{detail}");
    // A header of 5,000 columns.
    let header: Vec<String> = (0..5000).map(|i| format!("c{i}")).collect();
    let csv = format!("customer_id,{}\n", header.join(","));
    let (s, doc) =
        call(&state, upload_request(form("cols", &[("customers", "customers.csv", csv.as_bytes())]), Some(TOKEN)))
            .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{doc}");
    assert!(doc["detail"].as_str().unwrap().contains("5001 columns"), "{doc}");
    // A name field of 100 KiB is never buffered whole, nor echoed.
    let (s, doc) = call(&state, upload_request(city_form(&"n".repeat(100_000)), Some(TOKEN))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{doc}");
    assert!(doc["detail"].as_str().unwrap().len() < 200, "{doc}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_stalled_upload_body_is_cut_off() {
    // An upload's body was under no timeout: a client that sent part of it and then nothing held
    // its connection, its temporary files and its memory for as long as it liked. Now a body that
    // stalls for the idle timeout is answered 408 (problem+json) and leaves nothing.
    let dir = tempfile::tempdir().unwrap();
    let config = Config { body_idle_timeout: Duration::from_millis(300), ..with_token() };
    let state = server(dir.path(), config);
    let (addr, server_task) = start(state.clone()).await;
    let full = raw_upload(&city_form("stalled"));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&full[..full.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .expect("the server answers a stalled body instead of waiting")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("application/problem+json") && body_of(&reply).contains("stalled"), "{reply}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    // A body that keeps moving is not cut off, however long it takes in all.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let full = raw_upload(&city_form("steady"));
    for piece in full.chunks(full.len() / 6 + 1) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 201"), "{}", String::from_utf8_lossy(&reply));
    server_task.abort();
}
