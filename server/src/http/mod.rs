//! Routes of SPEC §7 under `/api/v1`, one module per resource, merged in [`app`]. Every route is
//! declared through `utoipa_axum::routes!`, so the OpenAPI document is generated from the same
//! declarations that route requests and cannot drift from them.

mod access;
mod attribution;
mod dashboard;
mod datasets;
mod error;
mod heatmap;
mod placement;
mod referrals;
pub mod state;

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
pub use error::{ApiError, Problem, INTERNAL};
pub use state::{AppState, ClusterTarget, Config, Registry};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "custmap",
        description = "Customer-map analytics on H3 hexagons: purchasing-power heatmaps, campaign attribution and ad-placement plans. Every cell response respects the k-anonymity floor; no route returns a customer row."
    ),
    tags(
        (name = "datasets", description = "Serve and upload datasets"),
        (name = "heatmap", description = "Purchasing-power heatmaps on H3 cells"),
        (name = "attribution", description = "Campaign attribution and funnels"),
        (name = "placement", description = "Ad-placement plans"),
        (name = "meta", description = "Health, this document and the dashboard")
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The answers any route can give from the service's edge ([`edge`], the deadline, the
/// heavy-work queue), listed on every operation so a client sees every status it can get.
struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |text: &str| {
            ResponseBuilder::new()
                .description(text)
                .content(
                    "application/problem+json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build()
        };
        let every = [
            ("400", "a bad parameter, named"),
            ("414", "the request target is over 60 KiB"),
            ("431", "the request headers are over 64 KiB"),
            (
                "503",
                "busy (the heavy-work queue is full) or past the request deadline: retry after `Retry-After` seconds",
            ),
            ("415", "a compressed body (any `Content-Encoding`), or a body not of the documented type"),
        ];
        let with_body = [("413", "the body is over the route's limit")];
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                let has_body = op.request_body.is_some();
                let statuses = every.iter().chain(with_body.iter().filter(|_| has_body));
                for (code, text) in statuses {
                    op.responses.responses.entry((*code).to_string()).or_insert_with(|| problem(text).into());
                }
            }
        }
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .merge(datasets::router())
        .merge(heatmap::router())
        .merge(attribution::router())
        .merge(placement::router())
        .merge(referrals::router())
        .merge(dashboard::router())
}

/// The OpenAPI 3 document of every route.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().split_for_parts().1;
    EdgeResponses.modify(&mut doc);
    doc
}

/// The whole service: routes, request ids, tracing with timings, and the request timeout.
pub fn app(state: AppState) -> Router {
    let (router, _) = api().split_for_parts();
    let x_request_id = HeaderName::from_static("x-request-id");
    router
        .fallback(|| async { ApiError::not_found("no such route; the API is described at /api/v1/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method; see /api/v1/openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), deadline))
        .layer(axum::middleware::from_fn(edge))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id =
                        req.extensions().get::<RequestId>().and_then(|r| r.header_value().to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", id = %id, method = %req.method(), uri = %req.uri())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis)),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

/// The longest request target (path and query) served; hyper itself refuses beyond 64 KiB with
/// an empty 414, so this limit answers first, in words.
pub const MAX_URI_BYTES: usize = 60 * 1024;
/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The edge of the service: requests over the URI or header bounds get 414 / 431, a compressed
/// body 415 (bodies are not decoded, so a gzip body would otherwise read as garbage), and any
/// error response not already problem+json (an extractor's, a layer's) is re-shaped into one
/// with a bounded detail.
async fn edge(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {uri_len} bytes; the limit is {MAX_URI_BYTES} (send long filters in a POST body where the route takes one)"),
        )
        .into_response();
    }
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers are {header_bytes} bytes; the limit is {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    if let Some(enc) = req.headers().get(header::CONTENT_ENCODING) {
        if !enc.as_bytes().eq_ignore_ascii_case(b"identity") {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "request bodies are read as sent; Content-Encoding '{}' is not decoded: send the body uncompressed",
                    String::from_utf8_lossy(enc.as_bytes())
                ),
            )
            .into_response();
        }
    }
    let res = next.run(req).await;
    if !(res.status().is_client_error() || res.status().is_server_error()) {
        return res;
    }
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() && std::str::from_utf8(&b).is_ok() => String::from_utf8_lossy(&b).into_owned(),
        _ => parts.status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut shaped = ApiError::new(parts.status, text).into_response();
    for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            shaped.headers_mut().insert(name, v.clone());
        }
    }
    shaped
}

/// Answers 503 (problem+json) when a request (other than an upload) runs past the configured timeout. Engine work
/// already running finishes and is cached for the retry; work still queued with no caller left is dropped.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // An upload is bounded by its size limit instead: a large file on a slow link may take longer.
    if req.method() == axum::http::Method::POST && req.uri().path() == "/api/v1/datasets" {
        return next.run(req).await;
    }
    let limit = state.config.timeout;
    let started = Instant::now();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => {
            tracing::debug!(ms = started.elapsed().as_millis() as u64, "handled");
            res
        }
        Err(_) => ApiError {
            retry_after: Some(10),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than {} s; a computation already running goes on and is cached: retry shortly",
                    limit.as_secs()
                ),
            )
        }
        .into_response(),
    }
}

/// Liveness.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3 document of every route", body = Object)))]
async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| openapi().to_json().unwrap_or_else(|_| "{}".into()));
    ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response()
}

/// A computed response body and its content type, cheap to clone out of the cache.
pub struct Reply {
    pub content_type: &'static str,
    pub body: axum::body::Bytes,
}

impl Reply {
    pub fn new(content_type: &'static str, body: impl Into<axum::body::Bytes>) -> Self {
        Reply { content_type, body: body.into() }
    }

    pub fn json(doc: &serde_json::Value) -> Self {
        Reply::new("application/json", doc.to_string())
    }

    fn response(&self) -> Response {
        ([(header::CONTENT_TYPE, self.content_type)], self.body.clone()).into_response()
    }
}

/// Answers from the reply cache when these parameters were computed before for this dataset
/// version. Otherwise the work joins the computation already in flight for the same key (single
/// flight: identical requests compute once), or is admitted to the heavy-work queue and runs on
/// the blocking pool: at most `Config::heavy_workers` at once, `Config::heavy_queue` more
/// waiting; beyond that the request is refused at once with 503 and `Retry-After`. A computation
/// that has started finishes and is cached even when its callers have left or passed their
/// deadline, so a retry finds it (one still queued when its last caller leaves never starts) (unless it is large: the cache holds at most `REPLY_ENTRIES` x `REPLY_MAX_BYTES`).
pub async fn cached<F>(state: &AppState, version: u64, key: String, work: F) -> Result<Response, ApiError>
where
    F: FnOnce() -> Result<Reply, ApiError> + Send + 'static,
{
    let key = (version, key);
    if let Some(hit) = state.replies.get(&key) {
        return Ok(hit.response());
    }
    let mut flight = state.heavy.join_or_start(state, key, work)?;
    let done = flight.wait_for(Option::is_some).await.map_err(ApiError::internal)?;
    match done.as_ref() {
        Some(Ok(reply)) => Ok(reply.response()),
        Some(Err((status, detail))) => Err(ApiError::new(*status, detail.clone())),
        None => Err(ApiError::internal("a computation ended without a result")),
    }
}

/// Runs engine work on the blocking pool (never on the async workers), inside the request's
/// span so its logs carry the request id; a panic or a cancelled task becomes a 500 without
/// internals.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(ApiError::internal)?
}

/// Serves `state` on `addr` until Ctrl-C or SIGTERM, finishing requests in flight.
pub async fn serve(state: AppState, addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    serve_on(listener, state, shutdown()).await;
    Ok(())
}

/// Serves `state` on `listener` until `stop` resolves, then finishes the requests in flight.
/// HTTP/1.1 connections, at most `config.max_connections` at once (the rest wait to be
/// accepted), each closed when its client takes longer than `config.header_timeout` to send
/// a request's headers: slow or idle clients cannot hold the server. An accept error (out of
/// file descriptors) pauses accepting briefly instead of ending the server.
pub async fn serve_on(listener: tokio::net::TcpListener, state: AppState, stop: impl std::future::Future<Output = ()>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let header_timeout = state.config.header_timeout;
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(state.config.max_connections.max(1)));
    let app = app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(
            app.clone().map_request(|req: axum::http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new)),
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: finishing work in flight");
}
