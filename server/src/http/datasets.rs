//! `GET /datasets`, `GET /datasets/{id}`, `GET /datasets/{id}/districts` and the upload,
//! `POST /datasets`.
//!
//! An upload streams each file into `data_dir/.upload-XXXX/`, fsyncs it, validates the whole
//! dataset with the ingest rules, then renames the directory to `data_dir/<name>` and fsyncs the
//! data directory. A client that goes away midway drops the handler and with it the temporary
//! directory; a crash leaves only a `.upload-` directory, which is never loaded and is swept at
//! the next start.

use std::collections::BTreeMap;
use std::path::Path;

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use custmap_engine::analytics::Access;
use custmap_engine::io::schema::Table;
use custmap_engine::Dataset;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::{valid_id, AppState, Entry, UPLOAD_PREFIX};
use super::{blocking, ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_datasets))
        .routes(routes!(show_dataset))
        .routes(routes!(districts))
        // The upload counts its own bytes against the configured limit (a clear 413).
        .merge(OpenApiRouter::new().routes(routes!(upload)).layer(DefaultBodyLimit::disable()))
}

/// A dataset's ingest report. Reasons can quote rejected values, so only exact readers get them
/// by reason; the public sees the totals.
fn summary(id: &str, e: &Entry, access: Access) -> Value {
    if !access.exact() {
        return json!({
            "id": id,
            "version": e.version,
            "tables": e.dataset.report.tables,
            "rejects": {"total": e.dataset.rejects.len()},
        });
    }
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for r in &e.dataset.rejects {
        *by_reason.entry(format!("{}: {}", r.table, r.reason)).or_default() += 1;
    }
    json!({
        "id": id,
        "version": e.version,
        "tables": e.dataset.report.tables,
        "rejects": {"total": e.dataset.rejects.len(), "by_reason": by_reason},
    })
}

/// Every served dataset with its row counts.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets",
    responses((status = 200, description = "`{datasets: [{id, tables: {table: accepted rows}}]}`", body = Object)))]
async fn list_datasets(State(state): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = state
        .registry
        .list()
        .iter()
        .map(|e| json!({"id": e.dataset.name, "version": e.version, "tables": e.dataset.row_counts()}))
        .collect();
    Json(json!({ "datasets": list }))
}

/// One dataset: per table rows read, accepted and rejected, and the rejects by reason.
#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "datasets",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "ingest report", body = Object),
              (status = 404, description = "no such dataset", body = Problem, content_type = "application/problem+json")))]
async fn show_dataset(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = super::access::access(&headers, &state.config)?;
    let entry = state.registry.entry(&id)?;
    Ok(Json(summary(&id, &entry, access)))
}

/// The district outlines a dataset carries (public boundaries, no customer data), as GeoJSON.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/districts", tag = "datasets",
    params(("id" = String, Path, description = "dataset id")),
    responses((status = 200, description = "FeatureCollection of district polygons", body = Object, content_type = "application/geo+json"),
              (status = 404, description = "no such dataset, or it has no districts", body = Problem, content_type = "application/problem+json")))]
async fn districts(State(state): State<AppState>, UrlPath(id): UrlPath<String>) -> Result<Response, ApiError> {
    let entry = state.registry.entry(&id)?;
    if entry.dataset.districts.is_none() {
        return Err(ApiError::not_found(format!("dataset '{id}' has no districts")));
    }
    // Built once per dataset version, then served from the reply cache.
    let version = entry.version;
    super::cached(&state, version, "districts".into(), move || {
        let d = entry.dataset.districts.as_ref().ok_or_else(|| ApiError::internal("districts vanished"))?;
        Ok(super::Reply::new("application/geo+json", d.to_geojson().to_string()))
    })
    .await
}

/// The upload form: the dataset's name and one file per table (`.csv` or `.parquet`, by the
/// file name's extension).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the multipart body; the handler reads it field by field
struct UploadForm {
    /// The dataset id: 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: String,
    /// The customers table (required).
    #[schema(value_type = String, format = Binary)]
    customers: Vec<u8>,
    #[schema(value_type = Option<String>, format = Binary)]
    touchpoints: Option<Vec<u8>>,
    #[schema(value_type = Option<String>, format = Binary)]
    deals: Option<Vec<u8>>,
    #[schema(value_type = Option<String>, format = Binary)]
    campaigns: Option<Vec<u8>>,
    #[schema(value_type = Option<String>, format = Binary)]
    sites: Option<Vec<u8>>,
    #[schema(value_type = Option<String>, format = Binary)]
    projects: Option<Vec<u8>>,
    /// District outlines, `.geojson` (at most 32 MiB).
    #[schema(value_type = Option<String>, format = Binary)]
    districts: Option<Vec<u8>>,
}

/// Upload a dataset: a `multipart/form-data` body with a `name` field and one file per table
/// (`customers` is required; `touchpoints`, `deals`, `campaigns`, `sites`, `projects` optional),
/// each `.csv` or `.parquet`, plus an optional `districts` GeoJSON. Needs `Authorization: Bearer`.
#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets",
    request_body(content = UploadForm, content_type = "multipart/form-data", description = "fields: name, customers, [touchpoints, deals, campaigns, sites, projects, districts]"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "stored; the ingest report (rows read, accepted, rejected per table; rejects by reason)", body = Object),
        (status = 400, description = "a bad form, name or table", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "this server takes no writes (no CUSTMAP_TOKEN)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a dataset of this name exists", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "the body stalled (no data for the server's idle timeout)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "the body or the row count is over the server's limit", body = Problem, content_type = "application/problem+json")))]
async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let limit = state.config.max_upload_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut form = form.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let data_dir = state
        .registry
        .data_dir()
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "this server has no data directory; uploads are off"))?
        .to_path_buf();
    let tmp = tempfile::Builder::new()
        .prefix(UPLOAD_PREFIX)
        .tempdir_in(&data_dir)
        .map_err(|e| ApiError::internal(format!("upload directory: {e}")))?;
    let name = receive(&mut form, tmp.path(), limit, state.config.body_idle_timeout).await?;
    let id = name.ok_or_else(|| ApiError::bad_request("the form has no 'name' field (the dataset id)"))?;
    valid_id(&id)?;
    if state.registry.get(&id).is_some() {
        return Err(conflict(&id));
    }
    let max_rows = state.config.max_upload_rows;
    let registry = state.registry.clone();
    let entry = blocking(move || publish(&registry, tmp, &data_dir, id, max_rows)).await?;
    let (id, entry) = entry;
    let location = format!("/api/v1/datasets/{id}");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(summary(&id, &entry, Access::Admin))).into_response())
}

/// Phase 1 of an upload: the form's fields streamed to files in `dir` (each table under its file
/// name), the whole body held to `limit` bytes and every wait to the `idle` timeout; returns the
/// `name` field (the dataset id), if given.
async fn receive(
    form: &mut Multipart,
    dir: &Path,
    limit: usize,
    idle: std::time::Duration,
) -> Result<Option<String>, ApiError> {
    let mut name: Option<String> = None;
    let mut received = 0usize;
    while let Some(mut field) = moving(idle, form.next_field()).await?.map_err(|e| form_error(&e, limit))? {
        let field_name = field.name().unwrap_or_default().to_string();
        if field_name == "name" {
            let mut text = Vec::new();
            while let Some(chunk) = moving(idle, field.chunk()).await?.map_err(|e| form_error(&e, limit))? {
                received += chunk.len();
                text.extend_from_slice(&chunk);
                if text.len() > MAX_NAME_BYTES {
                    return Err(ApiError::bad_request(format!(
                        "field 'name' is over {MAX_NAME_BYTES} bytes; a dataset id is at most 64 characters"
                    )));
                }
            }
            name = Some(String::from_utf8_lossy(&text).trim().to_string());
            continue;
        }
        let file = file_for(&field_name, field.file_name())?;
        let path = dir.join(&file);
        if path.exists() {
            return Err(ApiError::bad_request(format!("field '{field_name}' is given twice")));
        }
        let mut out = tokio::fs::File::create(&path).await.map_err(|e| ApiError::internal(format!("{file}: {e}")))?;
        while let Some(chunk) = moving(idle, field.chunk()).await?.map_err(|e| form_error(&e, limit))? {
            received += chunk.len();
            if received > limit {
                return Err(too_large(limit));
            }
            out.write_all(&chunk).await.map_err(|e| ApiError::internal(format!("{file}: {e}")))?;
        }
        out.sync_all().await.map_err(|e| ApiError::internal(format!("{file}: {e}")))?;
    }
    Ok(name)
}

/// Phase 2 of an upload (blocking): the received tables loaded and checked as any dataset (row
/// limit included), then published under `id` atomically: the synced directory is renamed into
/// the data directory under the registry's publish lock, unless the id was taken meanwhile.
fn publish(
    registry: &super::state::Registry,
    tmp: tempfile::TempDir,
    data_dir: &Path,
    id: String,
    max_rows: u64,
) -> Result<(String, Entry), ApiError> {
    let tmp_path = tmp.path().to_path_buf();
    precheck(&tmp_path, max_rows)?;
    let mut ds = Dataset::load(&tmp_path).map_err(|e| {
        let text = e
            .to_string()
            .replace(&format!("{}/", tmp_path.display()), "")
            .replace(&tmp_path.display().to_string(), &id);
        if e.is_user_error() {
            ApiError::bad_request(text)
        } else {
            ApiError::from(e)
        }
    })?;
    let rows: u64 = ds.report.tables.values().map(|t| t.read).sum();
    if rows > max_rows {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload holds {rows} rows; this server takes at most {max_rows}"),
        ));
    }
    let _publishing = registry.publish.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let target = data_dir.join(&id);
    if registry.get(&id).is_some() || target.exists() {
        return Err(conflict(&id));
    }
    sync_dir(&tmp_path)?;
    let kept = tmp.keep();
    if let Err(e) = std::fs::rename(&kept, &target) {
        let _ = std::fs::remove_dir_all(&kept);
        return Err(ApiError::internal(format!("publishing {}: {e}", target.display())));
    }
    sync_dir(data_dir)?;
    ds.name.clone_from(&id);
    ds.dir = target;
    tracing::info!(dataset = %id, rows, "upload stored");
    Ok((id.clone(), registry.insert(ds)))
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if !headers.contains_key(header::AUTHORIZATION) {
        let off = if state.config.token.is_none() {
            " (and this server, started without CUSTMAP_TOKEN, takes none)"
        } else {
            ""
        };
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("writes need 'Authorization: Bearer <token>' with this server's admin token{off}"),
        ));
    }
    if state.config.token.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this server takes no writes: start it with CUSTMAP_TOKEN set to enable uploads",
        ));
    }
    match super::access::access(headers, &state.config) {
        Ok(Access::Admin) => Ok(()),
        Ok(Access::Analyst) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "uploads need the admin token, not the analyst's"))
        }
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "writes need 'Authorization: Bearer <token>' with this server's admin token",
        )),
    }
}

/// The file name a form field is stored under.
fn file_for(field: &str, file_name: Option<&str>) -> Result<String, ApiError> {
    let ext = file_name
        .and_then(|f| Path::new(f).extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if field == "districts" {
        return if matches!(ext.as_str(), "geojson" | "json") {
            Ok(custmap_engine::io::dataset::DISTRICTS_FILE.to_string())
        } else {
            Err(ApiError::bad_request("field 'districts': the file must be .geojson"))
        };
    }
    let table = Table::ALL.iter().find(|t| t.name() == field).ok_or_else(|| {
        ApiError::bad_request(format!(
            "field '{field}' is not one of name, customers, touchpoints, deals, campaigns, sites, projects, districts"
        ))
    })?;
    match ext.as_str() {
        "csv" | "parquet" => Ok(format!("{}.{ext}", table.name())),
        _ => Err(ApiError::bad_request(format!("field '{field}': the file name must end in .csv or .parquet"))),
    }
}

/// The longest `name` field read (ids are at most 64 characters; the rest is never buffered).
const MAX_NAME_BYTES: usize = 256;
/// Most columns a table file may have (custmap reads a few dozen).
pub const MAX_COLUMNS: usize = 1_000;
/// The longest CSV field, in bytes (a detailed bus route's WKT is tens of kilobytes).
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// The most bytes a Parquet table may decode to (its footer's uncompressed size): a few KiB of
/// compressed repeats would otherwise become gigabytes in memory.
pub const MAX_DECODED_BYTES: u64 = 4 << 30;
/// The largest districts GeoJSON (a city's district outlines are a few MiB at most).
pub const MAX_DISTRICTS_BYTES: u64 = 32 << 20;

/// Measures every uploaded table before any is decoded: rows (Parquet from the footer, CSV by a
/// streaming count), columns and the longest CSV field, and the districts file's size. A small
/// file that would decode to gigabytes is refused here, not after.
fn precheck(dir: &Path, max_rows: u64) -> Result<(), ApiError> {
    use custmap_engine::io::read::{find_table_file, measure_table};
    let over = |text: String| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, text);
    let mut rows = 0u64;
    for table in Table::ALL {
        let Some((path, format)) =
            find_table_file(dir, table.name()).map_err(|e| ApiError::bad_request(e.to_string()))?
        else {
            continue;
        };
        let file = path.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let shape = measure_table(&path, format, max_rows.saturating_sub(rows), MAX_FIELD_BYTES)
            .map_err(|e| ApiError::bad_request(e.to_string().replace(&dir.display().to_string(), "")))?;
        rows += shape.rows;
        if rows > max_rows {
            return Err(over(format!(
                "the upload holds more than {max_rows} rows (counted before decoding, {file} included); this server takes at most {max_rows}"
            )));
        }
        if shape.uncompressed_bytes > MAX_DECODED_BYTES {
            return Err(over(format!(
                "{file} decodes to {} MiB; the limit is {} MiB",
                shape.uncompressed_bytes >> 20,
                MAX_DECODED_BYTES >> 20
            )));
        }
        if shape.columns > MAX_COLUMNS {
            return Err(over(format!("{file} has {} columns; the limit is {MAX_COLUMNS}", shape.columns)));
        }
        if shape.longest_field > MAX_FIELD_BYTES {
            return Err(over(format!(
                "{file} line {} has a field of over {} bytes; the limit is {MAX_FIELD_BYTES}",
                shape.longest_field_line, shape.longest_field
            )));
        }
    }
    let districts = dir.join(custmap_engine::io::dataset::DISTRICTS_FILE);
    if let Ok(meta) = std::fs::metadata(&districts) {
        if meta.len() > MAX_DISTRICTS_BYTES {
            return Err(over(format!(
                "the districts GeoJSON is {} MiB; the limit is {} MiB (simplify the outlines)",
                meta.len() >> 20,
                MAX_DISTRICTS_BYTES >> 20
            )));
        }
    }
    Ok(())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than this server's limit of {} MiB", limit >> 20),
    )
}

/// The next piece of an upload's body, or a 408 when none came for `idle`.
async fn moving<T>(idle: std::time::Duration, next: impl std::future::Future<Output = T>) -> Result<T, ApiError> {
    tokio::time::timeout(idle, next).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the upload's body stalled for {} s; nothing was kept, send it again", idle.as_secs()),
        )
    })
}

fn form_error(e: &MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::new(e.status(), format!("the multipart form could not be read: {}", e.body_text()))
    }
}

fn conflict(id: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, format!("a dataset named '{id}' exists; upload under another name"))
}

/// Flushes a directory's entries (the renamed-in dataset, or the files in it) to disk.
fn sync_dir(dir: &Path) -> Result<(), ApiError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))
}
