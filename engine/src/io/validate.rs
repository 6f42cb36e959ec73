//! Typing and row-level validation of raw tables.
//!
//! Every rule is a polars expression that flags bad rows; the first rule a row breaks is its
//! reject reason. The rules on typed values are described once in [`super::rules`], and the
//! cluster checks a dataset by the same descriptions. Rules run in three passes: field rules
//! (types, ranges, required values), then uniqueness among the rows that passed, then
//! references to accepted customers. The invariant `accepted + rejected == read` is checked
//! for every table.

use polars::prelude::*;

use super::read::{RawTable, ROW};
use super::rules;
use super::schema::{Kind, Table, DAY_US, SITE_KINDS};
use crate::error::{Error, Result};

/// One reason a row may be rejected.
pub struct Rule {
    pub column: String,
    pub reason: String,
    /// True on rows that break the rule (nulls count as "not broken").
    pub bad: Expr,
}

impl Rule {
    pub fn new(column: &str, reason: impl Into<String>, bad: Expr) -> Self {
        Rule { column: column.into(), reason: reason.into(), bad }
    }
}

impl From<rules::Check> for Rule {
    fn from(check: rules::Check) -> Self {
        Rule { bad: check.bad.expr(), column: check.column, reason: check.reason }
    }
}

/// What happened to a row with a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The row is not used (its own required value, type or range is wrong).
    Rejected,
    /// The row is kept and the one bad optional value (budget, area, a date) is read as missing.
    Nulled,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Rejected => "rejected",
            Outcome::Nulled => "value nulled",
        }
    }
}

/// A rejected row, or a kept row with one value nulled.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub table: &'static str,
    /// 1-based data row (the header is not a row).
    pub row: u64,
    /// 1-based line in the file where the row starts (CSV only; multi-line fields move it).
    pub line: Option<u64>,
    pub column: String,
    pub reason: String,
    /// The offending value as read (shortened); `None` when the row has no single bad value.
    pub value: Option<String>,
    pub outcome: Outcome,
}

/// Ids of rejected customers, each with where and why, so a deal or touchpoint that refers to one
/// says so rather than calling the customer unknown.
pub type RejectedIds = std::collections::HashMap<String, String>;

/// A validated table: typed accepted rows, the rejects, and the values nulled in kept rows.
#[derive(Debug)]
pub struct Validated {
    pub frame: DataFrame,
    pub read: u64,
    pub rejects: Vec<Reject>,
    pub nulled: Vec<Reject>,
    /// For `customers`: the ids of rejected rows (empty for other tables).
    pub rejected_ids: RejectedIds,
    /// The validated table's columns, also those dropped after validation (customers read with
    /// [`IngestOptions::customer_columns`]).
    pub schema: SchemaRef,
    /// Customers read in batches whose ids were not sorted and did not repeat: the table of row
    /// numbers by id the repeat check built, valid for the frame's ids (it indexes them for
    /// deals and touchpoints without hashing every id again).
    pub(crate) id_rows: Option<hashbrown::HashTable<u32>>,
}

const RAW_PREFIX: &str = "__raw_";
const RULE_COL: &str = "__rule";
const VALUE_COL: &str = "__value";
const SOFT_PREFIX: &str = "__soft_";
const DUP_COL: &str = "__dup";

/// Column of `deals` and `touchpoints`: the row of the referenced customer in the accepted
/// customers frame, so analytics reach a customer's columns by index instead of by string join.
pub const CUSTOMER_ROW: &str = "__customer_row";

fn raw_name(name: &str) -> String {
    format!("{RAW_PREFIX}{name}")
}

fn date_opts(format: &str) -> StrptimeOptions {
    StrptimeOptions { format: Some(format.into()), strict: false, exact: true, cache: true }
}

const DATETIME_FORMATS: [&str; 6] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Parses text that [`normalize_timestamps`] left: a naive timestamp in one of
/// [`DATETIME_FORMATS`] or a bare date (midnight). Nothing is truncated: any other text is null,
/// and so a rejected row.
fn parse_datetime(text: Expr) -> Expr {
    let mut tries: Vec<Expr> = DATETIME_FORMATS
        .iter()
        .map(|f| text.clone().str().to_datetime(Some(TimeUnit::Microseconds), None, date_opts(f), lit("raise")))
        .collect();
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        tries.push(text.clone().str().to_date(date_opts(f)).cast(DataType::Datetime(TimeUnit::Microseconds, None)));
    }
    coalesce(&tries)
}

/// How ingest reads values whose meaning the file does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestOptions<'a> {
    /// The dataset's time zone as an offset from UTC in minutes: naive timestamps (no `Z`, no
    /// offset) are local times there. 0 = UTC.
    pub utc_offset_minutes: i32,
    /// Rows per batch when customers and touchpoints are read and validated batch by batch (0: the
    /// default, [`BATCH_ROWS`]). Results do not depend on it.
    pub batch_rows: usize,
    /// The customer columns the caller will read, besides `customer_id` (`None`: all). Every
    /// column is still validated (a bad value rejects its row whatever is kept); the others are
    /// dropped right after, before the larger tables are read. An attribution reads two.
    pub customer_columns: Option<&'a [&'a str]>,
}

/// Customer and touchpoint rows read and validated at a time: polars' default Parquet row group.
/// Smaller batches hold less at once (the 10M no-repeat heatmap peaked at 999 MiB with batches of
/// 2^20 rows, 903 MiB with 2^18) at no measured cost in time.
pub const BATCH_ROWS: usize = 1 << 18;

impl IngestOptions<'_> {
    /// Parses `UTC`, `Z`, or an offset `+08:00` / `-0500` / `+8` (fixed offsets: named zones
    /// with daylight saving are not supported).
    pub fn parse_tz(text: &str) -> Result<IngestOptions<'static>> {
        let t = text.trim();
        let bad = || {
            Error::bad_input(format!(
                "time zone '{text}' is not UTC or a fixed offset like +08:00 (named zones are not supported)"
            ))
        };
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("gmt") {
            return Ok(IngestOptions::default());
        }
        let sign = match t.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad()),
        };
        let digits = t[1..].replace(':', "");
        let (h, m) = match digits.len() {
            1 | 2 => (digits.parse::<i32>().map_err(|_| bad())?, 0),
            4 => (digits[..2].parse::<i32>().map_err(|_| bad())?, digits[2..].parse::<i32>().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        if h > 14 || m > 59 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(IngestOptions { utc_offset_minutes: sign * (h * 60 + m), ..IngestOptions::default() })
    }

    /// Rows per batch of customers or touchpoints.
    #[must_use]
    pub fn batch_rows(&self) -> usize {
        if self.batch_rows == 0 {
            BATCH_ROWS
        } else {
            self.batch_rows
        }
    }

    /// The zone as text: `UTC` or `+08:00`.
    #[must_use]
    pub fn tz_name(&self) -> String {
        let m = self.utc_offset_minutes;
        if m == 0 {
            "UTC".into()
        } else {
            format!("{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60)
        }
    }
}

/// Timestamps with a UTC offset (`Z`, `+08:00`, `-0500`; ISO 8601 / RFC 3339) become naive UTC
/// text; naive timestamps and dates are local times of `opts`' zone, moved to UTC; anything else
/// becomes null so that its row is rejected as an unparseable datetime with the raw value kept.
fn normalize_timestamps(column: &Column, opts: IngestOptions<'_>) -> Result<Column> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let offset = chrono::Duration::minutes(i64::from(opts.utc_offset_minutes));
    let to_utc = move |local: NaiveDateTime| (local - offset).format("%Y-%m-%dT%H:%M:%S%.f").to_string();
    const OFFSET_FORMATS: [&str; 4] =
        ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"];
    let normalize = |s: &str| -> Option<String> {
        let s = s.trim();
        let utc = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'));
        if let Some(naive) = utc {
            return DATETIME_FORMATS
                .iter()
                .any(|f| NaiveDateTime::parse_from_str(naive, f).is_ok())
                .then(|| naive.to_string());
        }
        if let Some(local) = DATETIME_FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(s, f).ok()) {
            return Some(if offset.is_zero() { s.to_string() } else { to_utc(local) });
        }
        if let Some(day) = ["%Y-%m-%d", "%Y/%m/%d"].iter().find_map(|f| NaiveDate::parse_from_str(s, f).ok()) {
            return Some(if offset.is_zero() { s.to_string() } else { to_utc(day.and_hms_opt(0, 0, 0)?) });
        }
        OFFSET_FORMATS
            .iter()
            .find_map(|f| DateTime::parse_from_str(s, f).ok())
            .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string())
    };
    let out: StringChunked = column.str()?.iter().map(|v| v.and_then(normalize)).collect();
    Ok(out.with_name(column.name().clone()).into_column())
}

fn parse_date(text: Expr) -> Expr {
    coalesce(&[
        text.clone().str().to_date(date_opts("%Y-%m-%d")),
        text.clone().str().to_date(date_opts("%Y/%m/%d")),
        text.str().slice(lit(0), lit(10)).str().to_date(date_opts("%Y-%m-%d")),
    ])
}

/// Expression converting column `name` (of source type `dtype`) to `kind`.
fn convert(name: &str, dtype: &DataType, kind: Kind) -> Expr {
    let c = col(name);
    let is_text = matches!(dtype, DataType::String);
    match kind {
        Kind::Str if is_text => c,
        Kind::Str => c.cast(DataType::String),
        Kind::F64 if is_text => c.str().strip_chars(lit(NULL)).cast(DataType::Float64),
        Kind::F64 if dtype.is_primitive_numeric() => c.cast(DataType::Float64),
        Kind::F64 => lit(NULL).cast(DataType::Float64),
        Kind::Date if is_text => parse_date(c.str().strip_chars(lit(NULL))),
        Kind::Date if matches!(dtype, DataType::Date | DataType::Datetime(..)) => c.cast(DataType::Date),
        Kind::Date => lit(NULL).cast(DataType::Date),
        Kind::Datetime if is_text => parse_datetime(col(normalized_name(name))),
        Kind::Datetime if matches!(dtype, DataType::Date | DataType::Datetime(..)) => {
            c.cast(DataType::Datetime(TimeUnit::Microseconds, None))
        }
        Kind::Datetime => lit(NULL).cast(DataType::Datetime(TimeUnit::Microseconds, None)),
    }
}

fn null_of(kind: Kind) -> Expr {
    lit(NULL).cast(kind.dtype())
}

/// Types the known columns of `raw`, adds absent optional ones as nulls, and returns the
/// lazy frame with the parse-failure and required-value rules for them.
/// Column holding a text timestamp column normalized by [`normalize_timestamps`] (dropped with
/// the raw columns after validation).
fn normalized_name(name: &str) -> String {
    format!("{RAW_PREFIX}utc_{name}")
}

fn typed(table: Table, raw: &RawTable, opts: IngestOptions<'_>) -> Result<(LazyFrame, Vec<Rule>)> {
    let mut frame = raw.frame.clone();
    for spec in table.columns().iter().filter(|c| c.kind == Kind::Datetime) {
        if let Ok(c) = frame.column(spec.name) {
            if c.dtype() == &DataType::String {
                let normalized = normalize_timestamps(c, opts)?.with_name(normalized_name(spec.name).into());
                frame.with_column(normalized)?;
            }
        }
    }
    let raw = &RawTable {
        frame,
        path: raw.path.clone(),
        read: raw.read,
        early_rejects: Vec::new(),
        lines: super::read::Lines::None,
    };
    let schema = raw.frame.schema();
    for spec in table.columns().iter().filter(|c| c.required) {
        if !schema.contains(spec.name) {
            return Err(Error::Schema {
                path: raw.path.clone(),
                message: format!("missing required column '{}'", spec.name),
            });
        }
    }
    let mut exprs = Vec::new();
    let mut rules = Vec::new();
    for spec in table.columns() {
        let Some(dtype) = schema.get(spec.name) else {
            exprs.push(null_of(spec.kind).alias(spec.name));
            continue;
        };
        let mut converted = convert(spec.name, dtype, spec.kind);
        // Typed timestamps without a zone (Parquet's "not adjusted to UTC") are local times of
        // the dataset's zone, as naive text is; those with a zone are instants already.
        if spec.kind == Kind::Datetime
            && matches!(dtype, DataType::Datetime(_, None) | DataType::Date)
            && opts.utc_offset_minutes != 0
        {
            let offset_us = i64::from(opts.utc_offset_minutes) * 60_000_000;
            // A time the shift would carry past the 64-bit range (corrupt data: hundreds of
            // thousands of years away) is rejected, never wrapped round to another time.
            // (Nanoseconds lie 1,000 times inside the range of microseconds.)
            let (lo_us, hi_us) = (i64::MIN + offset_us.max(0), i64::MAX + offset_us.min(0));
            // Integer division rounds toward zero: inward for both bounds.
            let bounds = match dtype {
                DataType::Datetime(TimeUnit::Microseconds, _) => Some((lo_us, hi_us)),
                DataType::Datetime(TimeUnit::Milliseconds, _) => Some((lo_us / 1_000, hi_us / 1_000)),
                DataType::Date => Some((lo_us / DAY_US, hi_us / DAY_US)),
                _ => None,
            };
            if let Some((lo, hi)) = bounds {
                let raw = col(raw_name(spec.name)).cast(DataType::Int64);
                rules.push(Rule::new(
                    spec.name,
                    format!("{} {OUT_OF_RANGE_IN_ZONE} {}", spec.name, opts.tz_name()),
                    raw.clone().lt(lit(lo)).or(raw.gt(lit(hi))),
                ));
            }
            converted = (converted.cast(DataType::Int64) - lit(offset_us))
                .cast(DataType::Datetime(TimeUnit::Microseconds, None));
        }
        if spec.kind != Kind::Str {
            exprs.push(col(spec.name).alias(raw_name(spec.name)));
            let what = match spec.kind {
                Kind::F64 => "unparseable number",
                Kind::Date => "unparseable date",
                _ => "unparseable datetime",
            };
            rules.push(Rule::new(
                spec.name,
                what,
                col(raw_name(spec.name)).is_not_null().and(col(spec.name).is_null()),
            ));
        }
        exprs.push(converted.alias(spec.name));
        rules.extend(rules::column_checks(spec).into_iter().map(Rule::from));
    }
    // Rules in the order users expect to read them: parse failures before range checks.
    // A time out of range in the zone comes first: converting it may fail and read as unparseable.
    rules.sort_by_key(|r| {
        !r.reason.starts_with("unparseable")
            && !r.reason.starts_with("missing")
            && !r.reason.contains(OUT_OF_RANGE_IN_ZONE)
    });
    Ok((raw.frame.clone().lazy().with_columns(exprs), rules))
}

/// Applies `rules` to `lf`; returns the rows that break none, and the rejects.
///
/// Rows are flagged with one OR over the rules' boolean masks (cheap on every row); which rule a
/// row broke first is worked out on the rejected rows only.
pub fn apply_rules(table: Table, lf: LazyFrame, rules: &[Rule]) -> Result<(DataFrame, Vec<Reject>)> {
    let any_bad = rules.iter().fold(lit(false), |acc, r| acc.or(r.bad.clone().fill_null(lit(false))));
    let flagged = lf.with_column(any_bad.alias(RULE_COL)).collect()?;
    let mask = flagged.column(RULE_COL)?.bool()?.clone();
    if mask.sum().unwrap_or(0) == 0 {
        // The common case: nothing to reject, no copy.
        return Ok((flagged.drop(RULE_COL)?, Vec::new()));
    }
    let accepted = flagged.filter(&!&mask)?.drop(RULE_COL)?;
    let mut which = lit(NULL).cast(DataType::UInt32);
    for (i, rule) in rules.iter().enumerate().rev() {
        which = when(rule.bad.clone().fill_null(lit(false))).then(lit(i as u32)).otherwise(which);
    }
    let schema = flagged.schema().clone();
    let mut value = lit(NULL).cast(DataType::String);
    for rule in rules.iter().rev() {
        value = when(rule.bad.clone().fill_null(lit(false))).then(value_of(&schema, &rule.column)).otherwise(value);
    }
    let rejected =
        flagged.filter(&mask)?.lazy().select([col(ROW), which.alias(RULE_COL), value.alias(VALUE_COL)]).collect()?;
    let rows = rejected.column(ROW)?.u64()?;
    let rule_ix = rejected.column(RULE_COL)?.u32()?;
    let values = rejected.column(VALUE_COL)?.str()?;
    let mut rejects = Vec::with_capacity(rejected.height());
    for ((row, i), v) in rows.iter().zip(rule_ix.iter()).zip(values.iter()) {
        let (Some(row), Some(i)) = (row, i) else {
            return Err(Error::Internal(format!("{}: a flagged row broke no rule", table.name())));
        };
        let rule = &rules[i as usize];
        rejects.push(Reject {
            table: table.name(),
            row,
            line: None,
            column: rule.column.clone(),
            reason: rule.reason.clone(),
            value: v.map(super::read::shorten),
            outcome: Outcome::Rejected,
        });
    }
    Ok((accepted, rejects))
}

/// The value a rule on `column` judged, as text: the raw value when the column was converted.
fn value_of(schema: &Schema, column: &str) -> Expr {
    let raw = raw_name(column);
    let name = if schema.contains(&raw) { raw } else { column.to_string() };
    // A typed date or time beyond what a calendar prints (chrono's years ±262,143; a reason to
    // reject it) is shown as its count of units since 1970-01-01; polars would panic printing it.
    let (unit, per_day) = match schema.get(&name) {
        Some(DataType::Date) => ("days".to_string(), 1),
        Some(DataType::Datetime(unit, _)) => {
            let per_day = match unit {
                TimeUnit::Milliseconds => DAY_US / 1_000,
                TimeUnit::Microseconds => DAY_US,
                TimeUnit::Nanoseconds => DAY_US * 1_000,
            };
            (unit.to_string(), per_day)
        }
        Some(_) => return col(&name).cast(DataType::String),
        None => return lit(NULL).cast(DataType::String),
    };
    let count = col(&name).cast(DataType::Int64);
    let limit = PRINTABLE_DAYS.saturating_mul(per_day);
    let printable = count.clone().gt_eq(lit(-limit)).and(count.clone().lt_eq(lit(limit)));
    let as_calendar = when(printable).then(col(&name)).otherwise(lit(NULL)).cast(DataType::String);
    coalesce(&[as_calendar, count.cast(DataType::String) + lit(format!(" {unit} since 1970-01-01"))])
}

/// Days from 1970 a calendar surely prints (chrono reaches about 95.7 million).
const PRINTABLE_DAYS: i64 = 90_000_000;

/// What the reason of a time a zone would shift past the 64-bit range says.
const OUT_OF_RANGE_IN_ZONE: &str = "out of range in time zone";

/// Nulls the values that break a soft rule (typed and raw), and returns them as `Nulled` rows.
fn null_soft_values(table: Table, lf: LazyFrame, soft: &[Rule]) -> Result<(LazyFrame, Vec<Reject>)> {
    if soft.is_empty() {
        return Ok((lf, Vec::new()));
    }
    let frame = lf.collect()?;
    let mut columns: Vec<&str> = Vec::new();
    for r in soft {
        if !columns.contains(&r.column.as_str()) {
            columns.push(&r.column);
        }
    }
    // One report per bad value: a row with a bad budget and a bad area gets two.
    let mut nulled = Vec::new();
    for c in &columns {
        let of_column: Vec<Rule> = soft
            .iter()
            .filter(|r| r.column == *c)
            .map(|r| Rule { column: r.column.clone(), reason: r.reason.clone(), bad: r.bad.clone() })
            .collect();
        nulled.extend(apply_rules(table, frame.clone().lazy(), &of_column)?.1);
    }
    if nulled.is_empty() {
        return Ok((frame.lazy(), nulled));
    }
    let schema = frame.schema().clone();
    let masks: Vec<Expr> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let bad = soft
                .iter()
                .filter(|r| r.column == *c)
                .fold(lit(false), |acc, r| acc.or(r.bad.clone().fill_null(lit(false))));
            bad.alias(format!("{SOFT_PREFIX}{i}"))
        })
        .collect();
    let mut nulling = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        let mask = col(format!("{SOFT_PREFIX}{i}"));
        for name in [c.to_string(), raw_name(c)] {
            if schema.contains(&name) {
                nulling.push(when(mask.clone()).then(lit(NULL)).otherwise(col(&name)).alias(&name));
            }
        }
    }
    let helpers: Vec<String> = (0..columns.len()).map(|i| format!("{SOFT_PREFIX}{i}")).collect();
    let lf = frame.lazy().with_columns(masks).with_columns(nulling).drop(cols(helpers));
    for n in &mut nulled {
        n.outcome = Outcome::Nulled;
        n.reason = format!("{}; value read as missing", n.reason);
    }
    Ok((lf, nulled))
}

/// How [`repeated_ids`] found the ids.
enum IdOrder {
    /// Sorted: repeats are neighbours.
    Sorted,
    /// Not sorted: the table of row numbers by id built to find repeats (a repeated id's later
    /// rows are not in it).
    Hashed(hashbrown::HashTable<u32>),
}

/// True on rows whose id repeats an earlier row's, and how the ids were found. Sorted ids (most
/// exports) are checked by comparing neighbours, in the same pass that finds them sorted;
/// otherwise by hashing.
fn repeated_ids(frame: &DataFrame, id: &str) -> Result<(Column, IdOrder)> {
    let ids = frame.column(id)?.str()?;
    let mut prev: Option<&str> = None;
    let mut repeated = Vec::with_capacity(ids.len());
    let mut sorted = true;
    for v in ids.iter() {
        if let (Some(a), Some(b)) = (prev, v) {
            if b < a {
                sorted = false;
                break;
            }
        }
        repeated.push(v.is_some() && v == prev);
        prev = v.or(prev);
    }
    if sorted {
        let repeated = BooleanChunked::from_slice(DUP_COL.into(), &repeated);
        return Ok((repeated.into_column(), IdOrder::Sorted));
    }
    drop(repeated);
    // Not sorted: each id looked up among the earlier rows' in a table of row numbers (4 bytes an
    // id; hashing 10^8 ids as polars strings took 3.3 GB).
    let ids = ids.rechunk();
    let Some(array) = ids.downcast_iter().next() else {
        return Err(Error::Internal(format!("{id}: no chunk to check for repeats")));
    };
    let rows = u32::try_from(array.len()).ok().filter(|n| *n < u32::MAX).ok_or_else(|| {
        Error::Internal(format!("{} rows of {id} are more than can be checked for repeats", array.len()))
    })?;
    let mut seen = super::refs::RowsById::new(array);
    let repeated: BooleanChunked = (0..rows).map(|row| Some(seen.insert(row).is_some())).collect();
    Ok((repeated.with_name(DUP_COL.into()).into_column(), IdOrder::Hashed(seen.into_rows())))
}

fn id_column(table: Table) -> &'static str {
    match table {
        Table::Customers | Table::Touchpoints => "customer_id",
        Table::Deals => "deal_id",
        Table::Campaigns => "campaign_id",
        Table::Sites => "site_id",
        Table::Projects => "project_id",
    }
}

/// Validates one raw table. `customers` is the validated customers table, needed by tables that
/// refer to customers.
pub fn validate(
    table: Table,
    raw: RawTable,
    customers: Option<&Validated>,
    opts: IngestOptions<'_>,
) -> Result<Validated> {
    validate_with(table, raw, customers, None, opts)
}

/// [`validate`] with the accepted customer ids already indexed (`index`, built once from
/// `customers`), for a table validated batch by batch. Only touchpoints are: every rule of theirs
/// is on one row or against the customers (they have no id of their own to be unique), so a
/// batch validates as it would within the whole table. (Numeric extra columns are decided per
/// batch, but the touchpoints kept drop extra columns.)
pub(crate) fn validate_with(
    table: Table,
    raw: RawTable,
    customers: Option<&Validated>,
    index: Option<&super::refs::Index<'_>>,
    opts: IngestOptions<'_>,
) -> Result<Validated> {
    validate_part(table, raw, customers, index, opts, Part::Whole)
}

/// Whether a raw table is a whole table or one batch of customers (see [`CustomerBatches`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    /// A batch of customers: every per-row rule applies; the rules over the whole table (unique
    /// ids, numeric extra columns) are left to [`CustomerBatches::finish`], and the row numbers
    /// are kept for it.
    CustomerBatch,
}

fn validate_part(
    table: Table,
    raw: RawTable,
    customers: Option<&Validated>,
    index: Option<&super::refs::Index<'_>>,
    opts: IngestOptions<'_>,
    part: Part,
) -> Result<Validated> {
    let mut rejects: Vec<Reject> = raw
        .early_rejects
        .iter()
        .map(|r| Reject {
            table: table.name(),
            row: r.row,
            line: Some(r.line),
            column: String::new(),
            reason: r.reason.clone(),
            value: Some(r.value.clone()),
            outcome: Outcome::Rejected,
        })
        .collect();

    // Pass 1: types, required values, ranges; bad optional values are nulled, not rejected.
    let (lf, mut rules) = typed(table, &raw, opts)?;
    rules.extend(rules::table_checks(table).into_iter().map(Rule::from));
    let (soft, hard): (Vec<Rule>, Vec<Rule>) =
        rules.into_iter().partition(|r| rules::soft_columns(table).contains(&r.column.as_str()));
    let (lf, mut nulled) = null_soft_values(table, lf, &soft)?;
    let (mut frame, pass1) = apply_rules(table, lf, &hard)?;
    rejects.extend(pass1);

    // Pass 2: uniqueness of the table's own id among the rows that passed.
    if table != Table::Touchpoints && part == Part::Whole {
        let id = id_column(table);
        frame.with_column(repeated_ids(&frame, id)?.0)?;
        let dup = Rule::new(id, format!("duplicate {id}"), col(DUP_COL));
        let (kept, dups) = apply_rules(table, frame.lazy(), &[dup])?;
        frame = kept.drop(DUP_COL)?;
        rejects.extend(dups);
    }

    // Pass 3: references to customers.
    if matches!(table, Table::Touchpoints | Table::Deals) {
        let customers = customers.ok_or_else(|| Error::Internal("customers must be validated first".into()))?;
        let refs = frame.column("customer_id")?.str()?;
        let rows = match index {
            Some(index) => index.resolve(refs, CUSTOMER_ROW),
            None => super::refs::resolve(customers.frame.column("customer_id")?.str()?, refs, CUSTOMER_ROW)?,
        };
        frame.with_column(rows.into_column())?;
        let what = if table == Table::Deals { "deal" } else { "touchpoint" };
        let rule = Rule::new("customer_id", format!("{what} for unknown customer"), col(CUSTOMER_ROW).is_null());
        let (kept, mut orphans) = apply_rules(table, frame.lazy(), &[rule])?;
        for orphan in &mut orphans {
            if let Some(why) = orphan.value.as_ref().and_then(|id| customers.rejected_ids.get(id)) {
                orphan.reason = format!("{what} for a rejected customer ({why})");
            }
        }
        frame = kept;
        rejects.extend(orphans);
    }

    if table == Table::Sites {
        let (kept, bad_sites) = check_sites(frame)?;
        frame = kept;
        rejects.extend(bad_sites);
    }

    let rejected_ids = if table == Table::Customers { rejected_ids(&raw, &rejects)? } else { RejectedIds::new() };
    frame = finish(table, frame, part)?;
    let accepted = frame.height() as u64;
    if accepted + rejects.len() as u64 != raw.read {
        return Err(Error::Internal(format!(
            "{}: accepted {accepted} + rejected {} != read {}",
            table.name(),
            rejects.len(),
            raw.read
        )));
    }
    // A nulled value in a row rejected for another reason is not news.
    let rejected_rows: std::collections::HashSet<u64> = rejects.iter().map(|r| r.row).collect();
    nulled.retain(|n| !rejected_rows.contains(&n.row));
    for r in rejects.iter_mut().chain(nulled.iter_mut()) {
        r.line = r.line.or_else(|| raw.line_of(r.row));
    }
    rejects.sort_by_key(|r| r.row);
    nulled.sort_by_key(|r| r.row);
    let schema = frame.schema().clone();
    Ok(Validated { frame, read: raw.read, rejects, nulled, rejected_ids, schema, id_rows: None })
}

/// Customers validated batch by batch into one table, exactly as [`validate`] would the whole
/// file: each batch gets every per-row rule as it is read; [`Self::finish`] then applies the two
/// rules over the whole table, once: a repeated id is rejected among all the rows that passed
/// (its first row stands, as in a whole table; sorted ids are checked by comparing neighbours),
/// and an extra text column becomes numbers only when every value in the file reads as one.
/// Columns not in `keep` (besides `customer_id`) are validated and dropped batch by batch, so
/// the whole table is never held with every column.
pub(crate) struct CustomerBatches<'k> {
    opts: IngestOptions<'k>,
    parts: Vec<DataFrame>,
    lines: super::read::Lines,
    read: u64,
    rejects: Vec<Reject>,
    nulled: Vec<Reject>,
    rejected_ids: RejectedIds,
    /// The validated columns of the first batch, before any was dropped.
    schema: Option<SchemaRef>,
    /// Kept number columns, gathered batch by batch into one contiguous array each, with room for
    /// the rows the file says it holds: a column of per-batch chunks has to be copied whole to be
    /// indexed by row, and that copy was the peak of a heatmap's memory.
    floats: Vec<Floats>,
    /// The kept columns' order.
    order: Vec<PlSmallStr>,
}

/// One kept `Float64` column of [`CustomerBatches`].
struct Floats {
    name: PlSmallStr,
    values: Vec<f64>,
    valid: polars_arrow::bitmap::MutableBitmap,
}

impl Floats {
    fn push(&mut self, column: &Float64Chunked) {
        for array in column.downcast_iter() {
            self.values.extend_from_slice(array.values());
            match array.validity() {
                Some(v) => self.valid.extend_from_bitmap(v),
                None => self.valid.extend_constant(array.len(), true),
            }
        }
    }

    fn finish(self) -> Column {
        let valid = (self.valid.unset_bits() > 0).then(|| self.valid.into());
        Float64Chunked::from_vec_validity(self.name, self.values, valid).into_column()
    }
}

impl<'k> CustomerBatches<'k> {
    pub fn new(opts: IngestOptions<'k>) -> Self {
        CustomerBatches {
            opts,
            parts: Vec::new(),
            lines: super::read::Lines::None,
            read: 0,
            rejects: Vec::new(),
            nulled: Vec::new(),
            rejected_ids: RejectedIds::new(),
            schema: None,
            floats: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Validates the next batch (batches come in row order); `rows_in_file` sizes the columns.
    pub fn push(&mut self, raw: RawTable, rows_in_file: u64) -> Result<()> {
        // Every batch of a file carries the same line map.
        self.lines = raw.lines.clone();
        let mut v = validate_part(Table::Customers, raw, None, None, self.opts, Part::CustomerBatch)?;
        self.read += v.read;
        self.rejects.append(&mut v.rejects);
        self.nulled.append(&mut v.nulled);
        for (id, why) in v.rejected_ids {
            self.rejected_ids.entry(id).or_insert(why);
        }
        let validated = v.frame.schema().clone();
        let mut frame = match self.opts.customer_columns {
            Some(keep) => {
                let kept: Vec<PlSmallStr> = v
                    .frame
                    .get_column_names_owned()
                    .into_iter()
                    .filter(|n| matches!(n.as_str(), "customer_id" | ROW) || keep.contains(&n.as_str()))
                    .collect();
                v.frame.select(kept)?
            }
            None => v.frame,
        };
        if self.schema.is_none() {
            self.schema = Some(validated);
            self.order = frame.get_column_names_owned();
            let room = usize::try_from(rows_in_file).unwrap_or(0);
            for c in frame.columns().iter().filter(|c| c.dtype() == &DataType::Float64) {
                let mut values = Vec::new();
                let mut valid = polars_arrow::bitmap::MutableBitmap::new();
                // A footer's count is not trusted for allocation: without room, columns grow.
                if values.try_reserve_exact(room).is_ok() {
                    valid.reserve(room);
                }
                self.floats.push(Floats { name: c.name().clone(), values, valid });
            }
        }
        for f in &mut self.floats {
            let column = frame
                .drop_in_place(&f.name)
                .map_err(|_| Error::Internal(format!("customers: a batch lacks the column '{}'", f.name)))?;
            f.push(column.f64()?);
        }
        self.parts.push(frame);
        Ok(())
    }

    /// The validated table: repeated ids rejected, extra columns typed, counts checked.
    pub fn finish(self) -> Result<Validated> {
        let CustomerBatches {
            parts, lines, read, mut rejects, mut nulled, rejected_ids, schema, floats, order, ..
        } = self;
        let mut parts = parts.into_iter();
        let mut frame = parts.next().ok_or_else(|| Error::Internal("customers: no batch was read".into()))?;
        for part in parts {
            frame.vstack_mut_owned(part)?;
        }
        for f in floats {
            frame.with_column(f.finish())?;
        }
        let mut frame = frame.select(order)?;
        // One chunk of ids before anything reads them (else the repeat check and the rechunk
        // below would each copy them).
        let ids = frame.column("customer_id")?.rechunk();
        frame.with_column(ids)?;
        let (repeated, order) = repeated_ids(&frame, "customer_id")?;
        let sorted = matches!(order, IdOrder::Sorted);
        frame.with_column(repeated)?;
        let dup = Rule::new("customer_id", "duplicate customer_id", col(DUP_COL));
        let (kept, mut dups) = apply_rules(Table::Customers, frame.lazy(), &[dup])?;
        let mut frame = kept.drop(DUP_COL)?;
        // The table of unsorted ids serves the references too, unless dropped repeats moved rows.
        let id_rows = match order {
            IdOrder::Hashed(rows) if dups.is_empty() => Some(rows),
            _ => None,
        };
        for d in &mut dups {
            d.line = lines.line_of(d.row);
        }
        // A nulled value in a row rejected for another reason is not news (repeats come in row order).
        nulled.retain(|n| dups.binary_search_by_key(&n.row, |d| d.row).is_err());
        rejects.append(&mut dups);
        let _ = frame.drop_in_place(ROW)?;
        let mut frame = numeric_attributes(Table::Customers, frame)?;
        // One chunk per column, as a whole file's read gives (analytics index rows directly),
        // a column at a time so that at most one column exists twice.
        for name in frame.get_column_names_owned() {
            if frame.column(&name)?.n_chunks() > 1 {
                let one = frame.column(&name)?.rechunk();
                frame.with_column(one)?;
            }
        }
        if sorted {
            // Found sorted above: said once, so that indexing the ids need not check again.
            let mut ids = frame.column("customer_id")?.clone();
            ids.set_sorted_flag(polars::series::IsSorted::Ascending);
            frame.with_column(ids)?;
        }
        // The whole table's columns: those kept as typed now, the dropped ones as validated.
        let mut whole = Schema::clone(&schema.unwrap_or_else(|| frame.schema().clone()));
        whole.shift_remove(ROW);
        for (name, dtype) in frame.schema().iter() {
            whole.insert(name.clone(), dtype.clone());
        }
        let schema = SchemaRef::new(whole);
        let accepted = frame.height() as u64;
        if accepted + rejects.len() as u64 != read {
            return Err(Error::Internal(format!(
                "customers: accepted {accepted} + rejected {} != read {read}",
                rejects.len()
            )));
        }
        rejects.sort_by_key(|r| r.row);
        nulled.sort_by_key(|r| r.row);
        Ok(Validated { frame, read, rejects, nulled, rejected_ids, schema, id_rows })
    }
}

/// The customer ids of rejected customer rows (a repeated id is not listed: its first row
/// stands), each with "customers row N: reason".
fn rejected_ids(raw: &RawTable, rejects: &[Reject]) -> Result<RejectedIds> {
    let mut out = RejectedIds::new();
    if rejects.is_empty() {
        return Ok(out);
    }
    let why: std::collections::HashMap<u64, &Reject> = rejects.iter().map(|r| (r.row, r)).collect();
    let ids = raw.frame.column("customer_id")?.cast(&DataType::String)?;
    let rows = raw.frame.column(ROW)?.u64()?.clone();
    for (id, row) in ids.str()?.iter().zip(rows.iter()) {
        if let (Some(id), Some(r)) = (id, row.and_then(|row| why.get(&row))) {
            if !r.reason.starts_with("duplicate") {
                out.entry(id.to_string()).or_insert_with(|| format!("customers row {}: {}", r.row, r.reason));
            }
        }
    }
    Ok(out)
}

/// Drops helper columns and fills documented defaults (a batch of customers keeps its row
/// numbers and leaves the extra columns' types to the whole table).
fn finish(table: Table, frame: DataFrame, part: Part) -> Result<DataFrame> {
    let helpers: Vec<PlSmallStr> = frame
        .get_column_names()
        .into_iter()
        .filter(|n| n.starts_with(RAW_PREFIX) || (n.as_str() == ROW && part == Part::Whole))
        .cloned()
        .collect();
    let mut lf = frame.lazy().drop(cols(helpers));
    lf = match table {
        Table::Touchpoints => lf.with_column(col("event").fill_null(lit(super::schema::LEAD_EVENT))),
        Table::Deals => lf.with_column(col("status").fill_null(lit(super::schema::SIGNED))),
        _ => lf,
    };
    match part {
        Part::Whole => numeric_attributes(table, lf.collect()?),
        Part::CustomerBatch => Ok(lf.collect()?),
    }
}

/// Extra text columns (CSV reads everything as text) become numbers when every non-null value
/// parses as one, so attributes such as `beds` work in `--where` comparisons.
fn numeric_attributes(table: Table, mut frame: DataFrame) -> Result<DataFrame> {
    let extras: Vec<PlSmallStr> = frame
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::String && table.column(c.name()).is_none())
        .map(|c| c.name().clone())
        .collect();
    for name in extras {
        let text = frame.column(&name)?.clone();
        // Cheap look at the first values before converting a whole column.
        let looks_numeric = text.str()?.iter().flatten().take(1000).all(reads_as_number);
        if !looks_numeric || !text.str()?.iter().flatten().all(reads_as_number) {
            continue;
        }
        let trimmed = text.str()?.apply_values(|s| std::borrow::Cow::Owned(s.trim().to_string())).into_column();
        let parsed = trimmed.cast(&DataType::Float64)?;
        if parsed.null_count() == text.null_count() && text.len() > text.null_count() {
            frame.with_column(parsed.with_name(name.clone()))?;
        }
    }
    Ok(frame)
}

/// True when `v` is a number whose text a conversion would not change in meaning: `000100` (a
/// zip code), `+86…` (a phone number) and integers beyond 2^53 (ids) stay text.
fn reads_as_number(v: &str) -> bool {
    let t = v.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit();
    // An integer beyond 2^53 (an 18-digit ID card number, a 128-bit id) is not exact as a double.
    let long_integer =
        digits.bytes().all(|b| b.is_ascii_digit()) && digits.parse::<u64>().map_or(true, |v| v > 1 << 53);
    !leading_zero && !long_integer && !t.starts_with('+') && t.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Farthest a site's lat/lng may sit from its WKT geometry (metres) before the row is ambiguous.
const SITE_AGREEMENT_M: f64 = 100.0;

/// Per-row site checks (sites tables are small): the kind is a known one (any case; stored lower
/// case) or comes with its own `reach_m`; the WKT parses whole as a POINT or LINESTRING, not at
/// (0, 0); and a row giving both lat/lng and WKT gives the same place.
fn check_sites(frame: DataFrame) -> Result<(DataFrame, Vec<Reject>)> {
    use crate::spatial::geometry::{distance_to_m, parse_site_wkt};
    let wkts = frame.column("wkt")?.str()?;
    let kinds = frame.column("kind")?.str()?;
    let reach = frame.column("reach_m")?.f64()?;
    let lat = frame.column("lat")?.f64()?;
    let lng = frame.column("lng")?.f64()?;
    let rows = frame.column(ROW)?.u64()?;
    let mut keep = Vec::with_capacity(frame.height());
    let mut normalized: Vec<Option<String>> = Vec::with_capacity(frame.height());
    let mut rejects = Vec::new();
    for i in 0..frame.height() {
        let kind = kinds.get(i).map(|k| k.trim().to_lowercase());
        let known = kind.as_deref().is_some_and(|k| SITE_KINDS.contains(&k));
        let problem: Option<(&str, String, Option<String>)> = if !known && reach.get(i).is_none() {
            Some((
                "kind",
                format!("unknown site kind with no reach_m (known kinds: {}; or give reach_m)", SITE_KINDS.join(", ")),
                kinds.get(i).map(str::to_string),
            ))
        } else if let Some(text) = wkts.get(i) {
            match parse_site_wkt(text) {
                Err(reason) => Some(("wkt", reason, Some(text.to_string()))),
                Ok(geometry) => match (lat.get(i), lng.get(i)) {
                    (Some(la), Some(lo)) if distance_to_m(&geometry, (lo, la)) > SITE_AGREEMENT_M => Some((
                        "wkt",
                        format!(
                            "lat/lng and wkt disagree ({:.0} m apart); give one location",
                            distance_to_m(&geometry, (lo, la))
                        ),
                        Some(format!("{la}, {lo} vs {text}")),
                    )),
                    _ => None,
                },
            }
        } else {
            None
        };
        keep.push(problem.is_none());
        normalized.push(kind);
        if let (Some((column, reason, value)), Some(row)) = (problem, rows.get(i)) {
            rejects.push(Reject {
                table: "sites",
                row,
                line: None,
                column: column.into(),
                reason,
                value: value.as_deref().map(super::read::shorten),
                outcome: Outcome::Rejected,
            });
        }
    }
    let mut frame = frame;
    frame.with_column(Column::new("kind".into(), normalized))?;
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    Ok((frame.filter(&mask)?, rejects))
}

/// Rejects (and nulled values) as a frame with columns `table, row, line, column, reason, value,
/// outcome`.
pub fn rejects_frame(rejects: &[Reject]) -> Result<DataFrame> {
    Ok(DataFrame::new(
        rejects.len(),
        vec![
            Column::new("table".into(), rejects.iter().map(|r| r.table).collect::<Vec<_>>()),
            Column::new("row".into(), rejects.iter().map(|r| r.row).collect::<Vec<_>>()),
            Column::new("line".into(), rejects.iter().map(|r| r.line).collect::<Vec<_>>()),
            Column::new("column".into(), rejects.iter().map(|r| r.column.as_str()).collect::<Vec<_>>()),
            Column::new("reason".into(), rejects.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>()),
            Column::new("value".into(), rejects.iter().map(|r| r.value.as_deref()).collect::<Vec<_>>()),
            Column::new("outcome".into(), rejects.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>()),
        ],
    )?)
}
