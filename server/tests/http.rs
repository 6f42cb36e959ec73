//! HTTP routes without a socket (`app().oneshot`), and one end-to-end test on 127.0.0.1:0.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use custmap::http::{app, AppState};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::Dataset;
use http_body_util::BodyExt;
use std::sync::OnceLock;
use tower::ServiceExt;

fn state() -> AppState {
    static STATE: OnceLock<(tempfile::TempDir, AppState)> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let city = dir.path().join("city");
            generate(&city, &DemoParams { customers: 3_000, seed: 3, format: DemoFormat::Csv }, &|_, _| {}).unwrap();
            let ds = Dataset::load(&city).unwrap();
            (dir, AppState::new(vec![ds]))
        })
        .1
        .clone()
}

async fn get(uri: &str) -> (StatusCode, String, Vec<u8>) {
    let res = app(state()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
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
        assert!(c["customers"].as_i64().unwrap() >= 7);
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
        ("/api/v1/datasets/city/heatmap?k=0", StatusCode::BAD_REQUEST, "k must be"),
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
    let server = tokio::spawn(async move { axum::serve(listener, app(state())).await });
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
        ("/api/v1/datasets/city/attribution?by=region", "by 'region'"),
        ("/api/v1/datasets/city/attribution?window=0", "window"),
        ("/api/v1/datasets/city/funnel?format=png", "format 'png'"),
    ] {
        let (s, ct, body) = get(uri).await;
        assert_eq!((s, ct.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"), "{uri}");
        assert!(String::from_utf8(body).unwrap().contains(needle), "{uri}");
    }
}
