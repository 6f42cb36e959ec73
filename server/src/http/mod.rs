//! Routes of SPEC §7 under `/api/v1`, one module per analytic, merged in [`app`].

mod attribution;
mod error;
mod heatmap;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use custmap_engine::analytics::HeatmapBase;
use custmap_engine::Dataset;
pub use error::ApiError;

/// Key of a cached heatmap base: dataset, location, segment, resolution.
pub type BaseKey = (String, &'static str, Option<String>, u8);

/// Shared state: the loaded datasets and a bounded cache of heatmap bases.
#[derive(Clone, Default)]
pub struct AppState {
    pub datasets: Arc<HashMap<String, Arc<Dataset>>>,
    pub bases: Arc<Mutex<HashMap<BaseKey, Arc<HeatmapBase>>>>,
}

/// Most heatmap bases kept; the cache is cleared when it would grow past this.
pub const CACHE_ENTRIES: usize = 64;

impl AppState {
    /// State serving `datasets`, keyed by their names.
    #[must_use]
    pub fn new(datasets: Vec<Dataset>) -> Self {
        let map = datasets.into_iter().map(|d| (d.name.clone(), Arc::new(d))).collect();
        AppState { datasets: Arc::new(map), bases: Arc::default() }
    }

    pub fn dataset(&self, id: &str) -> Result<Arc<Dataset>, ApiError> {
        self.datasets.get(id).cloned().ok_or_else(|| ApiError::not_found(format!("no dataset '{id}'")))
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/api/v1/datasets", get(list_datasets))
        .route("/api/v1/datasets/{id}", get(show_dataset))
        .merge(heatmap::router())
        .merge(attribution::router())
        .with_state(state)
}

async fn list_datasets(State(state): State<AppState>) -> Json<serde_json::Value> {
    let mut list: Vec<serde_json::Value> = state
        .datasets
        .iter()
        .map(|(id, d)| serde_json::json!({"id": id, "name": d.name, "tables": d.row_counts()}))
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Json(serde_json::json!({ "datasets": list }))
}

async fn show_dataset(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let d = state.dataset(&id)?;
    let mut by_reason: HashMap<String, u64> = HashMap::new();
    for r in &d.rejects {
        *by_reason.entry(format!("{}: {}", r.table, r.reason)).or_default() += 1;
    }
    Ok(Json(serde_json::json!({
        "id": id,
        "name": d.name,
        "tables": d.report.tables,
        "rejects": {"total": d.rejects.len(), "by_reason": by_reason},
    })))
}

/// Runs engine work on the blocking pool (never on the async workers); a panic or a cancelled
/// task becomes a 500 without internals.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "engine task failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not compute this; the error is logged",
        )
    })?
}

/// Serves `state` on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(state: AppState, addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown()).await
}

async fn shutdown() {
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
}
