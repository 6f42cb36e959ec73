//! A dataset: a directory of validated tables, with the ingest report and the rejects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use super::read::{find_table_file, read_table, read_table_batches};
use super::schema::Table;
use super::touchpoints::{Builder, Touchpoints};
use super::validate::{rejects_frame, validate, validate_with, CustomerBatches, IngestOptions, Reject, Validated};
use crate::error::{Error, Result};
use crate::spatial::Districts;

/// Counts for one table (SPEC §9: `{read, accepted, rejected}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableReport {
    pub read: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted rows with one optional value read as missing (listed in the rejects file with
    /// outcome `value nulled`).
    pub values_nulled: u64,
}

/// The ingest report of a dataset.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub tables: BTreeMap<&'static str, TableReport>,
    /// The zone naive timestamps were read in (`UTC` or `+08:00`).
    pub time_zone: String,
}

/// Optional district outlines a dataset may carry, drawn on maps.
pub const DISTRICTS_FILE: &str = "districts.geojson";

/// A loaded dataset. Frames hold accepted rows only, every known column typed (absent optional
/// columns are present as nulls); extra customer columns are kept as attributes. Touchpoints,
/// the largest table, are held compactly (see [`Touchpoints`]).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub dir: PathBuf,
    pub customers: DataFrame,
    /// Every validated customer column and its type, including those a caller chose not to keep
    /// ([`IngestOptions::customer_columns`]): what a segment filter is checked against, so an
    /// unknown column is named against the whole table.
    pub customer_schema: SchemaRef,
    pub touchpoints: Option<Touchpoints>,
    pub deals: Option<DataFrame>,
    pub campaigns: Option<DataFrame>,
    pub sites: Option<DataFrame>,
    pub projects: Option<DataFrame>,
    pub districts: Option<Districts>,
    pub report: IngestReport,
    pub rejects: Vec<Reject>,
    /// Values nulled in accepted rows (bad optional values), each with its reason.
    pub nulled: Vec<Reject>,
}

impl Dataset {
    /// Loads and validates every table in `dir`. Only `customers` is mandatory.
    pub fn load(dir: &Path) -> Result<Dataset> {
        Self::load_tables(dir, &Table::ALL)
    }

    /// Loads and validates `customers` plus the listed tables (those present in `dir`); the
    /// others are left unread. A heatmap needs customers and deals only, and skipping the
    /// touchpoints is most of the work at scale.
    pub fn load_tables(dir: &Path, tables: &[Table]) -> Result<Dataset> {
        Self::load_with(dir, tables, IngestOptions::default())
    }

    /// [`Dataset::load_tables`] with ingest options (the time zone of naive timestamps).
    pub fn load_with(dir: &Path, tables: &[Table], opts: IngestOptions<'_>) -> Result<Dataset> {
        let meta = std::fs::metadata(dir).map_err(|source| Error::Read { path: dir.into(), source })?;
        if !meta.is_dir() {
            return Err(Error::Schema { path: dir.into(), message: "not a directory".into() });
        }
        let mut report = IngestReport { time_zone: opts.tz_name(), ..IngestReport::default() };
        let mut rejects = Vec::new();
        let mut nulled = Vec::new();
        let mut frames: BTreeMap<Table, DataFrame> = BTreeMap::new();
        let Some((path, format)) = find_table_file(dir, Table::Customers.name())? else {
            return Err(Error::Schema {
                path: dir.into(),
                message: "no customers.csv or customers.parquet (the one mandatory table)".into(),
            });
        };
        let mut customers = load_customers(&path, format, opts)?;
        report.tables.insert(Table::Customers.name(), counts_of(&customers));
        rejects.append(&mut customers.rejects);
        nulled.append(&mut customers.nulled);
        // One index of the accepted ids for every table that refers to customers.
        let ids = customers.frame.column("customer_id")?.str()?.rechunk();
        let index = super::refs::Index::with_rows(&ids, customers.id_rows.take())?;
        let mut touchpoints = None;
        for table in Table::ALL.into_iter().filter(|t| *t != Table::Customers && tables.contains(t)) {
            let Some((path, format)) = find_table_file(dir, table.name())? else { continue };
            if table == Table::Touchpoints {
                let (t, counts) = load_touchpoints(&path, format, &customers, &index, opts, &mut rejects, &mut nulled)?;
                report.tables.insert(table.name(), counts);
                touchpoints = Some(t);
                continue;
            }
            let mut v = validate_with(table, read_table(&path, format)?, Some(&customers), Some(&index), opts)?;
            report.tables.insert(table.name(), counts_of(&v));
            rejects.append(&mut v.rejects);
            nulled.append(&mut v.nulled);
            frames.insert(table, v.frame);
        }
        drop(index);
        let customer_schema = customers.schema.clone();
        let customers = customers.frame;
        let districts = load_districts(dir)?;
        Ok(Dataset {
            name: dir.file_name().map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned()),
            dir: dir.into(),
            customers,
            customer_schema,
            touchpoints,
            deals: frames.remove(&Table::Deals),
            campaigns: frames.remove(&Table::Campaigns),
            sites: frames.remove(&Table::Sites),
            projects: frames.remove(&Table::Projects),
            districts,
            report,
            rejects,
            nulled,
        })
    }

    /// Loads and validates one table that does not refer to customers (campaigns, sites,
    /// projects) on its own, with its rejects; `None` when `dir` has no such table. For runs that
    /// reduce customers elsewhere (a cluster) and need only the small tables here.
    pub fn load_side_table(dir: &Path, table: Table) -> Result<Option<(DataFrame, Vec<Reject>)>> {
        if matches!(table, Table::Customers | Table::Deals | Table::Touchpoints) {
            return Err(Error::Internal(format!("{} refers to customers; load the dataset", table.name())));
        }
        let Some((path, format)) = find_table_file(dir, table.name())? else { return Ok(None) };
        let v = validate(table, read_table(&path, format)?, None, IngestOptions::default())?;
        Ok(Some((v.frame, v.rejects)))
    }

    /// The rejects and the nulled values as one frame (`table, row, line, column, reason, value,
    /// outcome`), in table order then row order.
    pub fn rejects_frame(&self) -> Result<DataFrame> {
        let order = |t: &str| Table::ALL.iter().position(|x| x.name() == t).unwrap_or(usize::MAX);
        let mut all: Vec<Reject> = self.rejects.iter().chain(&self.nulled).cloned().collect();
        all.sort_by_key(|r| (order(r.table), r.row));
        rejects_frame(&all)
    }

    /// Row counts of the accepted tables, by table name.
    #[must_use]
    pub fn row_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        out.insert("customers", self.customers.height());
        if let Some(t) = &self.touchpoints {
            out.insert("touchpoints", t.len());
        }
        let optional = [
            ("deals", &self.deals),
            ("campaigns", &self.campaigns),
            ("sites", &self.sites),
            ("projects", &self.projects),
        ];
        for (name, frame) in optional {
            if let Some(f) = frame {
                out.insert(name, f.height());
            }
        }
        out
    }
}

/// A validated table's counts.
fn counts_of(v: &Validated) -> TableReport {
    TableReport {
        read: v.read,
        accepted: v.frame.height() as u64,
        rejected: v.rejects.len() as u64,
        values_nulled: v.nulled.len() as u64,
    }
}

/// Reads the customers batch by batch ([`IngestOptions::batch_rows`] rows) and validates them
/// as one table ([`CustomerBatches`]), keeping only [`IngestOptions::customer_columns`].
fn load_customers(path: &Path, format: super::read::TableFormat, opts: IngestOptions<'_>) -> Result<Validated> {
    let mut batches = CustomerBatches::new(opts);
    read_table_batches(path, format, opts.batch_rows(), |raw, rows| batches.push(raw, rows))?;
    batches.finish()
}

/// Reads the touchpoints batch by batch ([`IngestOptions::batch_rows`] rows), validates each
/// batch against the customers (one index of their ids for every batch) and folds its accepted
/// rows into the compact table, so the whole table never exists as a frame. Every batch is
/// accounted for (accepted + rejected = read) as it goes; the table's counts are their sums.
fn load_touchpoints(
    path: &Path,
    format: super::read::TableFormat,
    customers: &Validated,
    index: &super::refs::Index<'_>,
    opts: IngestOptions<'_>,
    rejects: &mut Vec<Reject>,
    nulled: &mut Vec<Reject>,
) -> Result<(Touchpoints, TableReport)> {
    let mut builder = Builder::default();
    let mut counts = TableReport { read: 0, accepted: 0, rejected: 0, values_nulled: 0 };
    let (first_reject, first_nulled) = (rejects.len(), nulled.len());
    read_table_batches(path, format, opts.batch_rows(), |raw, rows_in_file| {
        if counts.read == 0 {
            // The columns are allocated once, for the rows the file says it holds.
            builder.reserve(usize::try_from(rows_in_file).unwrap_or(0));
        }
        let mut v = validate_with(Table::Touchpoints, raw, Some(customers), Some(index), opts)?;
        let c = counts_of(&v);
        counts.read += c.read;
        counts.accepted += c.accepted;
        counts.rejected += c.rejected;
        counts.values_nulled += c.values_nulled;
        rejects.append(&mut v.rejects);
        nulled.append(&mut v.nulled);
        builder.push(&v.frame)
    })?;
    // In row order, as one table's rejects are (a CSV's early rejects came with the first batch).
    rejects[first_reject..].sort_by_key(|r| r.row);
    nulled[first_nulled..].sort_by_key(|r| r.row);
    Ok((builder.finish(), counts))
}

/// The dataset's district outlines, if it has a districts file.
pub fn load_districts(dir: &Path) -> Result<Option<Districts>> {
    let path = dir.join(DISTRICTS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
    Districts::from_geojson(&text).map(Some).map_err(|message| Error::Schema { path, message })
}
