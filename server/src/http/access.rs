//! Who is asking: the access level of a request from its `Authorization` header (SPEC §3).
//! No header: public. `Bearer <token>` (the scheme in any case) with the admin or the analyst
//! token: that level. Any other credential: 401, so a mistyped token is never silently public.

use axum::http::{header, HeaderMap, StatusCode};
use custmap_engine::analytics::Access;

use super::state::Config;
use super::ApiError;

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The access level of a request.
pub fn access(headers: &HeaderMap, config: &Config) -> Result<Access, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Access::Public);
    };
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be 'Bearer <token>' with this server's analyst or admin token; \
             send none for the public, differentially private figures",
        )
    };
    let text = value.to_str().map_err(|_| unauthorized())?.trim();
    let (scheme, token) = text.split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized());
    }
    let token = token.trim();
    if config.token.as_deref().is_some_and(|t| same(t, token)) {
        return Ok(Access::Admin);
    }
    if config.analyst_token.as_deref().is_some_and(|t| same(t, token)) {
        return Ok(Access::Analyst);
    }
    Err(unauthorized())
}

/// Refuses a public caller a route that needs exact figures: 401 (credentials missing, with
/// `WWW-Authenticate: Bearer`), as RFC 9110 has it.
pub fn require_exact(access: Access, what: &str) -> Result<(), ApiError> {
    if access.exact() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "{what} needs an analyst token (Authorization: Bearer <token>); without one this server \
                 serves only the public, differentially private heatmaps"
            ),
        ))
    }
}

/// A requested floor within `1..=MAX_K` (the server's own floor is applied after, by the policy).
pub fn requested_k(k: Option<u32>) -> Result<Option<u32>, ApiError> {
    Ok(crate::requests::checked_k(k)?)
}
