//! Errors as RFC 7807 `application/problem+json`: 4xx name the caller's mistake, 5xx reveal no
//! internals (the detail is logged instead).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use custmap_engine::Error;

/// What a 5xx says: nothing of the cause, which is logged under the request id.
pub const INTERNAL: &str = "the server could not compute this; the error is logged under this response's x-request-id";

/// An RFC 7807 problem document, as sent.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// What was wrong, naming the parameter or field for a 4xx.
    pub detail: String,
}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// Seconds for a `Retry-After` header (503 when busy).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), retry_after: None }
    }

    /// 503 at once: the heavy-work queue is full.
    pub fn busy(limit: u64) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: format!("the server is busy ({limit} computations running or queued); retry in a few seconds"),
            retry_after: Some(5),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    pub fn bad_request(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, what)
    }

    /// A 500 whose detail is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    /// A query string that does not parse (`res=abc`, `k=-1`) is a 400 problem, not plain text.
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        let detail: String = e.body_text().chars().take(300).collect();
        ApiError::bad_request(detail.replace("Failed to deserialize query string: ", "query parameter: "))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.is_user_error() {
            ApiError::bad_request(e.to_string())
        } else {
            ApiError::internal(e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut res =
            (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        res
    }
}
