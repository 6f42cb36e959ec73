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

/// A row rejected before typing (ragged or undecodable).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyReject {
    pub row: u64,
    pub reason: String,
}

/// A table as read: its frame (with [`ROW`]), the rows read, and the rows already rejected.
#[derive(Debug)]
pub struct RawTable {
    pub path: PathBuf,
    pub frame: DataFrame,
    pub read: u64,
    pub early_rejects: Vec<EarlyReject>,
}

/// File format of a table, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Parquet,
}

/// Finds `NAME.parquet` or `NAME.csv` in `dir` (Parquet wins when both exist).
#[must_use]
pub fn find_table_file(dir: &Path, name: &str) -> Option<(PathBuf, TableFormat)> {
    let parquet = dir.join(format!("{name}.parquet"));
    if parquet.is_file() {
        return Some((parquet, TableFormat::Parquet));
    }
    let csv = dir.join(format!("{name}.csv"));
    csv.is_file().then_some((csv, TableFormat::Csv))
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

fn schema_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Schema { path: path.into(), message: message.into() }
}

fn read_parquet(path: &Path) -> Result<RawTable> {
    let file = fs::File::open(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let frame = ParquetReader::new(file)
        .with_row_index(Some(RowIndex { name: ROW.into(), offset: 1 }))
        .finish()
        .map_err(|e| schema_error(path, format!("not a readable Parquet file ({e})")))?;
    let frame = frame.lazy().with_column(col(ROW).cast(DataType::UInt64)).collect()?;
    Ok(RawTable { path: path.into(), read: frame.height() as u64, frame, early_rejects: Vec::new() })
}

/// Parses CSV bytes (header row required). `path` only names the source in errors.
pub fn read_csv_bytes(path: &Path, bytes: Vec<u8>) -> Result<RawTable> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(schema_error(path, "file is empty (no header row)"));
    }
    let scan = scan_records(path, &bytes)?;
    let (frame_bytes, row_numbers) = if scan.rejects.is_empty() {
        (bytes, None)
    } else {
        let (clean, rows) = rewrite_without(&bytes, &scan)?;
        (clean, Some(rows))
    };
    let mut frame = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .map_parse_options(|p| p.with_encoding(CsvEncoding::Utf8).with_missing_is_null(true))
        .into_reader_with_file_handle(Cursor::new(frame_bytes))
        .finish()
        .map_err(|e| schema_error(path, format!("not a readable CSV file ({e})")))?;
    let rows: Vec<u64> = match row_numbers {
        Some(rows) => rows,
        None => (1..=frame.height() as u64).collect(),
    };
    if rows.len() != frame.height() {
        return Err(Error::Internal(format!(
            "{}: CSV pre-pass counted {} good rows, parser {}",
            path.display(),
            rows.len(),
            frame.height()
        )));
    }
    frame.with_column(Column::new(ROW.into(), rows))?;
    check_header(path, &frame)?;
    Ok(RawTable { path: path.into(), frame, read: scan.records, early_rejects: scan.rejects })
}

fn strip_bom(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    bytes
}

fn check_header(path: &Path, frame: &DataFrame) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in frame.get_column_names() {
        if name.is_empty() {
            return Err(schema_error(path, "header has an empty column name"));
        }
        if !seen.insert(name.as_str()) {
            return Err(schema_error(path, format!("header names column '{name}' twice")));
        }
    }
    Ok(())
}

struct Scan {
    records: u64,
    header_len: usize,
    rejects: Vec<EarlyReject>,
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes)
}

fn scan_records(path: &Path, bytes: &[u8]) -> Result<Scan> {
    let mut reader = csv_reader(bytes);
    let header = reader.byte_headers().map_err(|e| schema_error(path, format!("unreadable header ({e})")))?.clone();
    if std::str::from_utf8(header.as_slice()).is_err() {
        return Err(schema_error(path, "header is not valid UTF-8"));
    }
    let header_len = header.len();
    let mut records = 0u64;
    let mut rejects = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                records += 1;
                if record.len() != header_len {
                    rejects.push(EarlyReject {
                        row: records,
                        reason: format!("row has {} fields, header has {header_len}", record.len()),
                    });
                } else if std::str::from_utf8(record.as_slice()).is_err() {
                    rejects.push(EarlyReject { row: records, reason: "invalid UTF-8 bytes".into() });
                }
            }
            Err(e) => return Err(schema_error(path, format!("CSV structure broken after row {records} ({e})"))),
        }
    }
    Ok(Scan { records, header_len, rejects })
}

/// Re-serialises the good records so the parser never sees a bad one; returns their row numbers.
fn rewrite_without(bytes: &[u8], scan: &Scan) -> Result<(Vec<u8>, Vec<u64>)> {
    let bad: std::collections::HashSet<u64> = scan.rejects.iter().map(|r| r.row).collect();
    let mut reader = csv_reader(bytes);
    let mut writer = csv::WriterBuilder::new().flexible(false).from_writer(Vec::with_capacity(bytes.len()));
    let internal = |e: csv::Error| Error::Internal(format!("re-serialising CSV: {e}"));
    writer.write_byte_record(reader.byte_headers().map_err(internal)?).map_err(internal)?;
    let mut rows = Vec::with_capacity(scan.records as usize - bad.len());
    let mut record = csv::ByteRecord::new();
    let mut row = 0u64;
    while reader.read_byte_record(&mut record).map_err(internal)? {
        row += 1;
        if !bad.contains(&row) && record.len() == scan.header_len {
            writer.write_byte_record(&record).map_err(internal)?;
            rows.push(row);
        }
    }
    let clean = writer.into_inner().map_err(|e| Error::Internal(format!("re-serialising CSV: {e}")))?;
    Ok((clean, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<RawTable> {
        read_csv_bytes(Path::new("t.csv"), text.to_vec())
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
