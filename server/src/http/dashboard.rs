//! The dashboard page at `/` and its two assets, compiled into the binary: no CDN, no tiles, no
//! network beyond this server.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, Problem};

const INDEX: &str = include_str!("../../assets/index.html");
const SCRIPT: &str = include_str!("../../assets/app.js");
const STYLE: &str = include_str!("../../assets/app.css");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(index)).routes(routes!(asset))
}

/// The dashboard: hex map with metric, location, segment, resolution and k controls; attribution
/// charts; placement plans.
#[utoipa::path(get, path = "/", tag = "meta",
    responses((status = 200, description = "the dashboard page", body = String, content_type = "text/html")))]
async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// The dashboard's script, style sheet and font.
#[utoipa::path(get, path = "/assets/{file}", tag = "meta",
    params(("file" = String, Path, description = "`app.js`, `app.css` or `custmap-sans.ttf` (the embedded font, for CJK labels)")),
    responses((status = 200, description = "the asset",
                content((String = "text/javascript"), (String = "text/css"), (Vec<u8> = "font/ttf"))),
              (status = 404, description = "no such asset", body = Problem, content_type = "application/problem+json")))]
async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (ct, body): (&str, &'static [u8]) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT.as_bytes()),
        "app.css" => ("text/css; charset=utf-8", STYLE.as_bytes()),
        "custmap-sans.ttf" => ("font/ttf", custmap_engine::render::FONT),
        other => return Err(ApiError::not_found(format!("no asset '{other}'"))),
    };
    Ok(([(header::CONTENT_TYPE, ct), (header::CACHE_CONTROL, "no-cache")], body).into_response())
}
