//! Reading one table file (CSV or Parquet) into a frame, without losing a row.
//!
//! CSV gets a pre-pass over the records with the `csv` crate: rows whose field count differs from
//! the header, or whose bytes are not UTF-8, become rejects here, and polars parses the rest with
//! every column as a string (typing happens in `validate`, where a bad value rejects one row, not
//! the file). Parquet is read as typed.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};

/// Name of the 1-based data-row number column every raw frame carries.
pub const ROW: &str = "_row";

/// A row rejected before typing (ragged, undecodable, or broken quoting).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyReject {
    pub row: u64,
    /// 1-based line in the file where the record starts (the header is line 1).
    pub line: u64,
    pub reason: String,
    /// The record's first line as read (lossy UTF-8, shortened).
    pub value: String,
}

/// A table as read: its frame (with [`ROW`]), the rows read, and the rows already rejected.
#[derive(Debug)]
pub struct RawTable {
    pub path: PathBuf,
    pub frame: DataFrame,
    pub read: u64,
    pub early_rejects: Vec<EarlyReject>,
    pub lines: Lines,
}

/// Where each data row sits in its file, so a reject can name the line an editor shows.
#[derive(Debug, Clone)]
pub enum Lines {
    /// Not a text file (Parquet): rows have no lines.
    None,
    /// Data row `r` is on line `r + 1` (no multi-line fields, no blank lines).
    Plain,
    /// The line of every data row, indexed by row - 1 (multi-line fields or blank lines moved them).
    Listed(std::sync::Arc<Vec<u64>>),
}

impl RawTable {
    /// The file line of data row `row` (1-based), when the file has lines.
    #[must_use]
    pub fn line_of(&self, row: u64) -> Option<u64> {
        self.lines.line_of(row)
    }
}

impl Lines {
    /// The file line of data row `row` (1-based), when the file has lines.
    #[must_use]
    pub fn line_of(&self, row: u64) -> Option<u64> {
        match self {
            Lines::None => None,
            Lines::Plain => Some(row + 1),
            Lines::Listed(lines) => usize::try_from(row).ok().and_then(|r| lines.get(r.checked_sub(1)?)).copied(),
        }
    }
}

/// File format of a table, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Parquet,
}

/// Finds `NAME.parquet` or `NAME.csv` in `dir`. Ambiguity is an error naming the files: both
/// formats present, or a file that differs only in case (`Deals.csv`), which would otherwise be
/// ignored on one file system and read on another.
pub fn find_table_file(dir: &Path, name: &str) -> Result<Option<(PathBuf, TableFormat)>> {
    let wanted = [(format!("{name}.parquet"), TableFormat::Parquet), (format!("{name}.csv"), TableFormat::Csv)];
    let entries = fs::read_dir(dir).map_err(|source| Error::Read { path: dir.into(), source })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        for (want, format) in &wanted {
            if file.eq_ignore_ascii_case(want) && entry.path().is_file() {
                if file != *want {
                    return Err(schema_error(
                        &entry.path(),
                        format!("table file names are lower case: rename '{file}' to '{want}'"),
                    ));
                }
                found.push((entry.path(), *format));
            }
        }
    }
    if found.len() > 1 {
        return Err(schema_error(
            dir,
            format!("both {name}.csv and {name}.parquet are present; keep one (custmap will not choose)"),
        ));
    }
    Ok(found.pop())
}

/// Reads one table file.
pub fn read_table(path: &Path, format: TableFormat) -> Result<RawTable> {
    match format {
        TableFormat::Csv => {
            let bytes = fs::read(path).map_err(|source| Error::Read { path: path.into(), source })?;
            read_csv_bytes(path, bytes)
        }
        TableFormat::Parquet => read_parquet(path),
    }
}

/// A table file's size, measured without decoding it (see [`measure_table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableShape {
    /// Data rows (CSV: records after the header; Parquet: from the footer).
    pub rows: u64,
    /// Columns of the header or schema.
    pub columns: usize,
    /// Parquet: the uncompressed size of all column data, from the footer (0 for CSV).
    pub uncompressed_bytes: u64,
    /// Bytes of the longest CSV field seen (0 for Parquet), and the line its record starts on.
    pub longest_field: usize,
    pub longest_field_line: u64,
}

/// Measures a table before it is read, so a server can refuse a decompression bomb or a
/// pathological CSV before polars materialises it. Parquet: row and column counts from the
/// footer, nothing decoded. CSV: one streaming pass with the `csv` crate (quote-aware) that keeps
/// only the current record, stopping early once `rows` passes `stop_rows` or a field passes
/// `stop_field` bytes (the figures then say how far it got).
pub fn measure_table(path: &Path, format: TableFormat, stop_rows: u64, stop_field: usize) -> Result<TableShape> {
    let open = || fs::File::open(path).map_err(|source| Error::Read { path: path.into(), source });
    match format {
        TableFormat::Parquet => {
            let mut reader = ParquetReader::new(open()?);
            let columns =
                reader.schema().map_err(|e| schema_error(path, format!("not a readable Parquet file ({e})")))?.len();
            let rows =
                reader.num_rows().map_err(|e| schema_error(path, format!("not a readable Parquet file ({e})")))?;
            let meta =
                reader.get_metadata().map_err(|e| schema_error(path, format!("not a readable Parquet file ({e})")))?;
            let uncompressed_bytes = meta.row_groups.iter().map(|g| g.total_byte_size() as u64).sum();
            Ok(TableShape { rows: rows as u64, columns, uncompressed_bytes, ..TableShape::default() })
        }
        TableFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(std::io::BufReader::new(open()?));
            let mut record = csv::ByteRecord::new();
            let mut shape = TableShape::default();
            let mut first = true;
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => return Err(schema_error(path, format!("unreadable CSV ({e})"))),
                }
                if first {
                    shape.columns = record.len();
                    first = false;
                } else {
                    shape.rows += 1;
                }
                if let Some(longest) = record.iter().map(<[u8]>::len).max() {
                    if longest > shape.longest_field {
                        shape.longest_field = longest;
                        shape.longest_field_line = record.position().map_or(0, csv::Position::line);
                    }
                }
                if shape.rows > stop_rows || shape.longest_field > stop_field {
                    break;
                }
            }
            Ok(shape)
        }
    }
}

fn schema_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Schema { path: path.into(), message: message.into() }
}

fn read_parquet(path: &Path) -> Result<RawTable> {
    check_parquet_types(path)?;
    read_parquet_rows(path, None)
}

/// Names the column types known to stop the Parquet reader before it runs (the catch in
/// [`read_parquet_rows`] is the last resort).
fn check_parquet_types(path: &Path) -> Result<()> {
    let file = fs::File::open(path).map_err(|source| Error::Read { path: path.into(), source })?;
    if let Ok(schema) = ParquetReader::new(file).schema() {
        let bad: Vec<String> = schema
            .iter()
            .filter(|(_, f)| matches!(f.dtype(), ArrowDataType::UInt128))
            .map(|(name, f)| format!("'{name}' ({:?})", f.dtype()))
            .collect();
        if !bad.is_empty() {
            return Err(schema_error(
                path,
                format!(
                    "column {} has a Parquet type custmap cannot read; write it as a 64-bit integer, a double or text",
                    bad.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Reads the rows `slice` = (first row, count) of a Parquet file, or all of them, numbered by
/// their place in the file.
fn read_parquet_rows(path: &Path, slice: Option<(usize, usize)>) -> Result<RawTable> {
    let open = || fs::File::open(path).map_err(|source| Error::Read { path: path.into(), source });
    let read = |columns: Option<Vec<String>>, slice: Option<(usize, usize)>| -> Result<DataFrame> {
        let file = open()?;
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ParquetReader::new(file).with_columns(columns).with_slice(slice).finish()
        }));
        match attempt {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(e)) => Err(schema_error(path, format!("not a readable Parquet file ({e})"))),
            Err(_) => Err(schema_error(path, "the Parquet reader failed on this file")),
        }
    };
    let frame = match read(None, slice) {
        Ok(frame) => frame,
        Err(whole) => return Err(unreadable_columns(path, &read).unwrap_or(whole)),
    };
    let mut frame = numbers_from_wide_types(frame)?;
    let first = slice.map_or(0, |(at, _)| at) as u64 + 1;
    let rows: Vec<u64> = (first..first + frame.height() as u64).collect();
    frame.insert_column(0, Column::new(ROW.into(), rows))?;
    Ok(RawTable {
        path: path.into(),
        read: frame.height() as u64,
        frame,
        early_rejects: Vec::new(),
        lines: Lines::None,
    })
}

/// Reads one table file in batches of about `batch_rows` rows, handing each to `each` in file
/// order with the rows the whole file holds (from a Parquet footer, or counted by the CSV read);
/// rows keep their numbers in the whole file. Parquet is read a run of row groups at a
/// time (a row group far larger than `batch_rows` is read in slices), so the file is never
/// decoded whole. CSV is read whole (its pre-pass needs every record) and handed on in slices,
/// so what validation builds from it is built a batch at a time; the early rejects (ragged,
/// undecodable rows) come with the first batch.
pub fn read_table_batches(
    path: &Path,
    format: TableFormat,
    batch_rows: usize,
    mut each: impl FnMut(RawTable, u64) -> Result<()>,
) -> Result<()> {
    let batch_rows = batch_rows.max(1);
    match format {
        TableFormat::Parquet => {
            check_parquet_types(path)?;
            let file = fs::File::open(path).map_err(|source| Error::Read { path: path.into(), source })?;
            let mut reader = ParquetReader::new(file);
            let meta =
                reader.get_metadata().map_err(|e| schema_error(path, format!("not a readable Parquet file ({e})")))?;
            let groups: Vec<usize> = meta.row_groups.iter().map(|g| g.num_rows()).collect();
            let total = groups.iter().sum::<usize>() as u64;
            // A 128-bit or decimal column's type is judged over all its values (see
            // `numbers_from_wide_types`): such a file is read as one batch, so every batch size
            // reads it alike.
            let wide = reader.schema().is_ok_and(|schema| {
                schema.iter().any(|(_, f)| {
                    matches!(
                        f.dtype(),
                        ArrowDataType::Int128
                            | ArrowDataType::Decimal(..)
                            | ArrowDataType::Decimal32(..)
                            | ArrowDataType::Decimal64(..)
                            | ArrowDataType::Decimal256(..)
                    )
                })
            });
            let batch_rows = if wide { usize::MAX } else { batch_rows };
            let mut at = 0;
            for (start, len) in parquet_batches(&groups, batch_rows) {
                if start != at {
                    return Err(Error::Internal(format!("Parquet batch starts at {start}, not {at}")));
                }
                at = start + len;
                each(read_parquet_rows(path, Some((start, len)))?, total)?;
            }
            if at == 0 {
                // No rows: the (empty) table still goes through validation, which checks its columns.
                each(read_parquet_rows(path, None)?, 0)?;
            }
            Ok(())
        }
        TableFormat::Csv => {
            let whole = read_table(path, format)?;
            let height = whole.frame.height();
            let total = whole.read;
            let mut early = Some(whole.early_rejects);
            let mut start = 0;
            loop {
                let len = batch_rows.min(height - start);
                let early_rejects = early.take().unwrap_or_default();
                each(
                    RawTable {
                        path: whole.path.clone(),
                        frame: whole.frame.slice(start as i64, len),
                        read: (len + early_rejects.len()) as u64,
                        early_rejects,
                        lines: whole.lines.clone(),
                    },
                    total,
                )?;
                start += len;
                if start >= height {
                    return Ok(());
                }
            }
        }
    }
}

/// Batches (first row, rows) over row groups of `groups` rows each: consecutive groups joined
/// until a batch holds at least `batch_rows`; a group of more than twice `batch_rows` split.
fn parquet_batches(groups: &[usize], batch_rows: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut len) = (0, 0);
    for &g in groups {
        if g > 2 * batch_rows {
            if len > 0 {
                out.push((start, len));
                start += len;
                len = 0;
            }
            let mut left = g;
            while left > 0 {
                let n = batch_rows.min(left);
                out.push((start, n));
                start += n;
                left -= n;
            }
            continue;
        }
        len += g;
        if len >= batch_rows {
            out.push((start, len));
            start += len;
            len = 0;
        }
    }
    if len > 0 {
        out.push((start, len));
    }
    out
}

/// When a Parquet file fails to read, reads its columns one by one to name those of a type
/// custmap cannot read (rather than calling the whole file unreadable).
fn unreadable_columns(
    path: &Path,
    read: &dyn Fn(Option<Vec<String>>, Option<(usize, usize)>) -> Result<DataFrame>,
) -> Option<Error> {
    let file = fs::File::open(path).ok()?;
    let schema = ParquetReader::new(file).schema().ok()?;
    let bad: Vec<String> = schema
        .iter()
        .filter(|(name, _)| read(Some(vec![name.to_string()]), Some((0, 1))).is_err())
        .map(|(name, field)| format!("'{name}' ({:?})", field.dtype()))
        .collect();
    (!bad.is_empty()).then(|| {
        schema_error(
            path,
            format!(
                "column {} has a Parquet type custmap cannot read; write it as a 64-bit integer, a double or text",
                bad.join(", ")
            ),
        )
    })
}

/// Decimal columns (money exported from databases) become doubles; 128-bit integers become
/// doubles when every value is exact in one (|x| <= 2^53), text otherwise (ids).
fn numbers_from_wide_types(mut frame: DataFrame) -> Result<DataFrame> {
    const EXACT: i128 = 1 << 53;
    let wide: Vec<(PlSmallStr, DataType)> = frame
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Decimal(..) | DataType::Int128))
        .map(|c| (c.name().clone(), c.dtype().clone()))
        .collect();
    for (name, dtype) in wide {
        let column = frame.column(&name)?.as_materialized_series().clone();
        // A Decimal without decimals is an integer (ids exported as NUMERIC(38)): judged as one.
        let column = match dtype {
            DataType::Decimal(_, 0) => column.cast(&DataType::Int128)?,
            _ => column,
        };
        let to = match column.dtype() {
            DataType::Int128 => {
                let exact = column.i128()?.iter().flatten().all(|v| (-EXACT..=EXACT).contains(&v));
                if exact {
                    DataType::Float64
                } else {
                    DataType::String
                }
            }
            _ => DataType::Float64,
        };
        let converted = column.cast(&to)?;
        frame.with_column(converted.into_column())?;
    }
    Ok(frame)
}

/// Parses CSV bytes (header row required). `path` only names the source in errors.
///
/// LF, CRLF and CR-only line ends are all read. A malformed record costs at most its own row:
/// a record with the wrong field count, bytes that are not UTF-8, or a quote opened and never
/// closed is rejected with its line, and reading resumes on the next line.
pub fn read_csv_bytes(path: &Path, bytes: Vec<u8>) -> Result<RawTable> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(schema_error(path, "file is empty (no header row)"));
    }
    let scan = scan_records(path, &bytes)?;
    let frame_bytes = match scan.clean {
        Some(clean) => clean,
        None => bytes,
    };
    let mut frame = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .map_parse_options(|p| p.with_encoding(CsvEncoding::Utf8).with_missing_is_null(true))
        .into_reader_with_file_handle(Cursor::new(frame_bytes))
        .finish()
        .map_err(|e| schema_error(path, format!("not a readable CSV file ({e})")))?;
    if scan.good_rows.len() != frame.height() {
        return Err(Error::Internal(format!(
            "{}: CSV pre-pass counted {} good rows, parser {}",
            path.display(),
            scan.good_rows.len(),
            frame.height()
        )));
    }
    frame.with_column(Column::new(ROW.into(), scan.good_rows))?;
    Ok(RawTable { path: path.into(), frame, read: scan.records, early_rejects: scan.rejects, lines: scan.lines })
}

fn strip_bom(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    bytes
}

struct Scan {
    records: u64,
    rejects: Vec<EarlyReject>,
    /// Data-row numbers of the records handed to polars, in order.
    good_rows: Vec<u64>,
    lines: Lines,
    /// The good records re-serialised, when the file cannot go to polars as it is.
    clean: Option<Vec<u8>>,
}

fn reader_at(bytes: &[u8], headers: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(headers).flexible(true).from_reader(bytes)
}

/// Line terminators in `bytes`: `\n`, `\r\n` and a lone `\r` count one each.
fn terminators(bytes: &[u8]) -> u64 {
    let mut n = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
    }
    n
}

/// Byte offset just past the first line terminator in `bytes`, if any.
fn after_first_line(bytes: &[u8]) -> Option<usize> {
    let i = bytes.iter().position(|&b| b == b'\n' || b == b'\r')?;
    Some(if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') { i + 2 } else { i + 1 })
}

/// The first line of a record, for a reject's `value` (at most 200 characters).
fn first_line_text(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(raw.len());
    shorten(&String::from_utf8_lossy(&raw[..end]))
}

/// `text` cut to 200 characters (with an ellipsis), so a huge field never floods a report.
#[must_use]
pub fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// True when a quote in this single-line record opens a field (at its start or after a comma)
/// and is not matched: the field ran to the end of the file.
fn opens_unclosed_quote(raw: &[u8]) -> bool {
    let quotes = raw.iter().filter(|&&b| b == b'"').count();
    if quotes % 2 == 0 {
        return false;
    }
    raw.iter().enumerate().any(|(i, &b)| b == b'"' && (i == 0 || raw[i - 1] == b','))
}

/// One pass over the records with the `csv` crate. Files with quotes or CR-only line ends are
/// re-serialised as they are read (polars then sees clean RFC 4180); others go to polars as they
/// are unless a row was rejected.
fn scan_records(path: &Path, bytes: &[u8]) -> Result<Scan> {
    let mut reader = reader_at(bytes, true);
    let header = reader.byte_headers().map_err(|e| schema_error(path, format!("unreadable header ({e})")))?.clone();
    if header.iter().any(|f| std::str::from_utf8(f).is_err()) {
        return Err(schema_error(path, "header is not valid UTF-8"));
    }
    let header_len = header.len();
    let mut seen = std::collections::HashSet::new();
    for name in header.iter() {
        let name = String::from_utf8_lossy(name);
        if name.trim().is_empty() {
            return Err(schema_error(path, "header has an empty column name"));
        }
        if !seen.insert(name.clone()) {
            return Err(schema_error(path, format!("header names column '{name}' twice")));
        }
    }
    // Quotes, CR-only line ends and blank lines (which the csv crate skips and polars would
    // read as a row) all need the re-serialised copy.
    let careful = bytes.contains(&b'"')
        || bytes.windows(2).any(|w| (w[0] == b'\r' && w[1] != b'\n') || w == b"\n\n")
        || bytes.windows(3).any(|w| w == b"\n\r\n")
        || bytes.last() == Some(&b'\r');
    let mut writer =
        careful.then(|| csv::WriterBuilder::new().flexible(false).from_writer(Vec::with_capacity(bytes.len())));
    let internal = |e: csv::Error| Error::Internal(format!("re-serialising CSV: {e}"));
    if let Some(w) = writer.as_mut() {
        w.write_byte_record(&header).map_err(internal)?;
    }
    let mut scan = Scan { records: 0, rejects: Vec::new(), good_rows: Vec::new(), lines: Lines::Plain, clean: None };
    let mut all_lines: Vec<u64> = Vec::new();
    let mut drift = false;
    // Where the current reader's slice starts in `bytes`, and line counting so far.
    let mut base = 0usize;
    let mut counted_to = 0usize;
    let mut line = 1u64;
    let mut record = csv::ByteRecord::new();
    loop {
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| schema_error(path, format!("CSV structure broken after row {} ({e})", scan.records)))?;
        if !more {
            break;
        }
        let mut start = base + record.position().map_or(0, |p| p.byte() as usize);
        while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        let end = (base + reader.position().byte() as usize).min(bytes.len());
        let start = start.min(end);
        line += terminators(&bytes[counted_to.min(start)..start]);
        counted_to = start;
        scan.records += 1;
        let row = scan.records;
        all_lines.push(line);
        drift |= line != row + 1;
        let raw = &bytes[start..end];
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let multi_line = body.iter().any(|&b| b == b'\n' || b == b'\r');
        let odd_quotes = body.iter().filter(|&&b| b == b'"').count() % 2 == 1;
        let reject = |reason: String| EarlyReject { row, line, reason, value: first_line_text(raw) };
        // A multi-line record that is ragged or leaves a quote open is most likely a quote that
        // was never closed and swallowed the lines after it (a legitimate multi-line field with a
        // wrong field count is rarer): its first line is rejected and the rest read again as
        // rows, so the lines it swallowed are not lost.
        if careful && multi_line && (record.len() != header_len || odd_quotes) {
            // A quote opened and not closed swallowed the lines after it: reject the line it
            // opened on and read on from the next line.
            scan.rejects.push(reject("broken quoting: a quote opened on this line is not closed".into()));
            let Some(next) = after_first_line(raw).map(|n| start + n) else { break };
            reader = reader_at(&bytes[next..], false);
            base = next;
            continue;
        }
        if record.len() != header_len {
            scan.rejects.push(reject(format!("row has {} fields, header has {header_len}", record.len())));
        } else if record.iter().any(|f| std::str::from_utf8(f).is_err()) {
            scan.rejects.push(reject("invalid UTF-8 bytes".into()));
        } else if careful && opens_unclosed_quote(body) {
            scan.rejects.push(reject("broken quoting: a quote opened on this line is not closed".into()));
        } else {
            if let Some(w) = writer.as_mut() {
                w.write_byte_record(&record).map_err(internal)?;
            }
            scan.good_rows.push(row);
        }
    }
    if drift {
        scan.lines = Lines::Listed(std::sync::Arc::new(all_lines));
    }
    scan.clean = match writer {
        Some(w) => Some(w.into_inner().map_err(|e| Error::Internal(format!("re-serialising CSV: {e}")))?),
        None if !scan.rejects.is_empty() => Some(rewrite_without(bytes, &scan)?),
        None => None,
    };
    Ok(scan)
}

/// Re-serialises the good records of a file without quotes (so without multi-line records),
/// so the parser never sees a bad one.
fn rewrite_without(bytes: &[u8], scan: &Scan) -> Result<Vec<u8>> {
    let bad: std::collections::HashSet<u64> = scan.rejects.iter().map(|r| r.row).collect();
    let mut reader = reader_at(bytes, true);
    let mut writer = csv::WriterBuilder::new().flexible(false).from_writer(Vec::with_capacity(bytes.len()));
    let internal = |e: csv::Error| Error::Internal(format!("re-serialising CSV: {e}"));
    writer.write_byte_record(reader.byte_headers().map_err(internal)?).map_err(internal)?;
    let mut record = csv::ByteRecord::new();
    let mut row = 0u64;
    while reader.read_byte_record(&mut record).map_err(internal)? {
        row += 1;
        if !bad.contains(&row) {
            writer.write_byte_record(&record).map_err(internal)?;
        }
    }
    writer.into_inner().map_err(|e| Error::Internal(format!("re-serialising CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<RawTable> {
        read_csv_bytes(Path::new("t.csv"), text.to_vec())
    }

    #[test]
    fn parquet_batches_cover_every_row_once_joining_small_groups_and_splitting_large_ones() {
        assert_eq!(parquet_batches(&[3, 3, 3, 3, 1], 5), vec![(0, 6), (6, 6), (12, 1)]);
        assert_eq!(parquet_batches(&[2, 25, 2], 10), vec![(0, 2), (2, 10), (12, 10), (22, 5), (27, 2)]);
        assert_eq!(parquet_batches(&[0], 10), vec![]);
        for groups in [vec![1usize; 17], vec![7, 0, 40, 1, 1, 9], vec![100]] {
            for batch in [1, 3, 8, 50] {
                let got = parquet_batches(&groups, batch);
                let mut at = 0;
                for (start, len) in got {
                    assert_eq!(start, at);
                    assert!(len > 0);
                    at += len;
                }
                assert_eq!(at, groups.iter().sum::<usize>());
            }
        }
    }

    #[test]
    fn ragged_rows_are_rejected_and_the_rest_kept() {
        let t = read(b"a,b\n1,2\n3\n4,5,6\n7,8\n").unwrap();
        assert_eq!(t.read, 4);
        assert_eq!(t.frame.height(), 2);
        let rows: Vec<u64> = t.frame.column(ROW).unwrap().u64().unwrap().into_no_null_iter().collect();
        assert_eq!(rows, vec![1, 4]);
        assert_eq!(t.early_rejects.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn non_utf8_row_is_rejected() {
        let t = read(b"a,b\n1,\xff\xfe\n3,4\n").unwrap();
        assert_eq!((t.read, t.frame.height()), (2, 1));
        assert_eq!(t.early_rejects[0].reason, "invalid UTF-8 bytes");
    }

    #[test]
    fn empty_file_is_an_error_naming_it() {
        let err = read(b"").unwrap_err().to_string();
        assert!(err.contains("t.csv") && err.contains("empty"), "{err}");
    }

    #[test]
    fn header_only_is_zero_rows() {
        let t = read(b"a,b\n").unwrap();
        assert_eq!((t.read, t.frame.height()), (0, 0));
    }

    #[test]
    fn quoted_newlines_keep_row_numbers() {
        let t = read(b"a,b\n\"x\ny\",2\n3\n5,6\n").unwrap();
        let rows: Vec<u64> = t.frame.column(ROW).unwrap().u64().unwrap().into_no_null_iter().collect();
        assert_eq!(rows, vec![1, 3]);
    }
}
