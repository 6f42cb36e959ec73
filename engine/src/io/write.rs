//! Writing outputs atomically (temporary file in the target directory, fsync, rename), in the
//! format the file extension names.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use polars::prelude::*;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::spatial::h3;

/// Output formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Parquet,
    Csv,
    GeoJson,
    Arrow,
    Json,
    Png,
    Svg,
}

impl OutputFormat {
    /// The format for `path`'s extension.
    ///
    /// ```
    /// use custmap_engine::io::OutputFormat;
    /// use std::path::Path;
    /// assert_eq!(OutputFormat::from_path(Path::new("/tmp/a.geojson")).unwrap(), OutputFormat::GeoJson);
    /// assert!(OutputFormat::from_path(Path::new("/tmp/a.xlsx")).is_err());
    /// ```
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        Self::from_name(&ext).ok_or_else(|| {
            Error::bad_input(format!(
                "cannot tell the output format of '{}': use .parquet, .csv, .geojson, .arrow, .json, .png or .svg",
                path.display()
            ))
        })
    }

    /// The format named `name` (an extension or a `format=` value).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "parquet" => OutputFormat::Parquet,
            "csv" => OutputFormat::Csv,
            "geojson" => OutputFormat::GeoJson,
            "arrow" | "ipc" | "feather" => OutputFormat::Arrow,
            "json" => OutputFormat::Json,
            "png" => OutputFormat::Png,
            "svg" => OutputFormat::Svg,
            _ => return None,
        })
    }
}

/// Runs `write` against a temporary file next to `path`, then renames it into place, so a
/// reader never sees a half-written file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut BufWriter<&mut File>) -> Result<()>) -> Result<()> {
    let fail = |message: String| Error::Write { path: path.into(), message };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temp_file_in(dir).map_err(|e| fail(e.to_string()))?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush().map_err(|e| fail(e.to_string()))?;
    }
    tmp.as_file().sync_all().map_err(|e| fail(e.to_string()))?;
    tmp.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}

/// A temporary file in `dir`, readable by others like any output (tempfile's default is 0600).
pub(crate) fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".custmap-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir)
}

/// Bytes written by `write_atomic`-style closures, for callers that need the bytes (HTTP).
pub fn frame_bytes(frame: &DataFrame, format: OutputFormat) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode_frame(frame, format, &mut buf)?;
    Ok(buf)
}

fn encode_frame<W: Write>(frame: &DataFrame, format: OutputFormat, w: &mut W) -> Result<()> {
    let mut frame = frame.clone();
    match format {
        OutputFormat::Parquet => {
            ParquetWriter::new(w).finish(&mut frame)?;
        }
        OutputFormat::Csv => CsvWriter::new(w).include_header(true).finish(&mut frame)?,
        OutputFormat::Arrow => IpcWriter::new(w).finish(&mut frame)?,
        OutputFormat::Json => {
            serde_json::to_writer(&mut *w, &frame_to_json_rows(&frame)?).map_err(|e| Error::Internal(e.to_string()))?;
        }
        OutputFormat::GeoJson => {
            serde_json::to_writer(&mut *w, &cells_geojson(&frame)?).map_err(|e| Error::Internal(e.to_string()))?;
        }
        OutputFormat::Png | OutputFormat::Svg => {
            return Err(Error::bad_input("a table cannot be written as an image; use the analytic's renderer"))
        }
    }
    Ok(())
}

/// Writes a frame atomically in the format `path`'s extension names.
pub fn write_frame(frame: &DataFrame, path: &Path) -> Result<()> {
    let format = OutputFormat::from_path(path)?;
    if matches!(format, OutputFormat::Png | OutputFormat::Svg) {
        return Err(Error::bad_input(format!("{} is an image format; this output is a table", path.display())));
    }
    write_atomic(path, |w| encode_frame(frame, format, w))
}

fn any_to_json(v: AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Float64(x) if x.is_finite() => json!(x),
        AnyValue::Float32(x) if x.is_finite() => json!(x),
        AnyValue::Float64(_) | AnyValue::Float32(_) => Value::Null,
        AnyValue::Int64(x) => json!(x),
        AnyValue::Int32(x) => json!(x),
        AnyValue::UInt64(x) => json!(x),
        AnyValue::UInt32(x) => json!(x),
        other => json!(other.to_string()),
    }
}

/// A frame as a JSON array of row objects (small aggregate tables only).
pub fn frame_to_json_rows(frame: &DataFrame) -> Result<Value> {
    let names: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let columns = frame.columns();
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let mut obj = Map::new();
        for (name, c) in names.iter().zip(columns) {
            obj.insert(name.clone(), any_to_json(c.get(i)?));
        }
        rows.push(Value::Object(obj));
    }
    Ok(Value::Array(rows))
}

/// An array of flat JSON objects (numbers, strings, nulls) as a frame, columns in the first
/// object's key order.
pub fn json_rows_to_frame(rows: &Value) -> Result<DataFrame> {
    let rows = rows.as_array().ok_or_else(|| Error::Internal("rows are not an array".into()))?;
    let Some(Value::Object(first)) = rows.first() else { return Ok(DataFrame::empty()) };
    let mut columns = Vec::new();
    for name in first.keys() {
        let values: Vec<&Value> = rows.iter().map(|r| &r[name]).collect();
        let column = if values.iter().all(|v| v.is_i64() || v.is_u64() || v.is_null()) {
            Column::new(name.as_str().into(), values.iter().map(|v| v.as_i64()).collect::<Vec<_>>())
        } else if values.iter().all(|v| v.is_number() || v.is_null()) {
            Column::new(name.as_str().into(), values.iter().map(|v| v.as_f64()).collect::<Vec<_>>())
        } else {
            Column::new(
                name.as_str().into(),
                values
                    .iter()
                    .map(|v| v.as_str().map(str::to_string).or_else(|| (!v.is_null()).then(|| v.to_string())))
                    .collect::<Vec<_>>(),
            )
        };
        columns.push(column);
    }
    Ok(DataFrame::new(rows.len(), columns)?)
}

/// A cell table (with `hex_id`) as a GeoJSON FeatureCollection of hexagon polygons, the other
/// columns as properties.
pub fn cells_geojson(frame: &DataFrame) -> Result<Value> {
    let hex = frame
        .column("hex_id")
        .map_err(|_| Error::bad_input("GeoJSON output needs a table with a hex_id column"))?
        .str()?;
    let Value::Array(rows) = frame_to_json_rows(frame)? else {
        return Err(Error::Internal("rows are not an array".into()));
    };
    let features: Vec<Value> = hex
        .iter()
        .zip(rows)
        .map(|(id, props)| {
            let cell = id.and_then(|s| u64::from_str_radix(s, 16).ok()).unwrap_or(0);
            let rings: Vec<Vec<[f64; 2]>> =
                h3::outline(cell).into_iter().map(|r| r.into_iter().map(|(x, y)| [x, y]).collect()).collect();
            let geometry = match rings.len() {
                1 => json!({"type": "Polygon", "coordinates": rings}),
                _ => json!({"type": "MultiPolygon", "coordinates": rings.into_iter().map(|r| vec![r]).collect::<Vec<_>>()}),
            };
            json!({"type": "Feature", "id": id, "geometry": geometry, "properties": props})
        })
        .collect();
    Ok(json!({"type": "FeatureCollection", "features": features}))
}
