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
        let text = e.body_text().replace("Failed to deserialize query string: ", "");
        // serde's words for a number that does not parse, in the API's.
        let text = text
            .replace("invalid digit found in string", "expected a whole number in the documented range")
            .replace("number too large to fit in target type", "the number is out of the documented range");
        ApiError::bad_request(format!("query parameter {}", bounded(&text, 300)))
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    /// A body that is not the documented JSON: 415 without a JSON content type, else 400 naming
    /// the field, in API words (never a 422 the document does not list).
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection;
        if matches!(e, JsonRejection::MissingJsonContentType(_)) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)",
            );
        }
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the JSON body is larger than this route takes (2 MiB)",
            );
        }
        let text = e.body_text();
        let text = text
            .replace("Failed to deserialize the JSON body into the target type: ", "")
            .replace("Failed to parse the request body as JSON: ", "not JSON: ");
        ApiError::bad_request(format!("request body: {text}"))
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

/// The longest `detail` sent: inputs echoed in a message (an id, a value) are cut here, so a
/// caller can never make the server echo megabytes.
pub const MAX_DETAIL: usize = 600;

/// `text` cut to at most `max` characters, marked when cut.
#[must_use]
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… ({} characters in all)", &text[..at], text.chars().count()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": bounded(&self.detail, MAX_DETAIL),
        });
        let mut res =
            (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"custmap\""));
        }
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        res
    }
}
