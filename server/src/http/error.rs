//! Errors as RFC 7807 `application/problem+json`: 4xx name the caller's mistake, 5xx reveal no
//! internals (the detail is logged instead).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use custmap_engine::Error;

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    pub fn bad_request(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, what)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.is_user_error() {
            ApiError::bad_request(e.to_string())
        } else {
            tracing::error!(error = %e, "request failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the server could not compute this; the error is logged")
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
        (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
    }
}
