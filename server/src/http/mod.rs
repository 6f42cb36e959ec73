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
    api().split_for_parts().1
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

/// Answers 503 (problem+json) when a request (other than an upload) runs past the configured timeout. Engine work
/// already handed to the blocking pool finishes there and is cached for the retry.
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
                    "the request took longer than {} s; its computation goes on and is cached: retry shortly",
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
/// finishes and is cached even when its callers have left or passed their deadline, so a retry
/// finds it (unless it is large: the cache holds at most `REPLY_ENTRIES` x `REPLY_MAX_BYTES`).
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
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown()).await
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
