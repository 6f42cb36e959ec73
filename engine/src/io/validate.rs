//! Typing and row-level validation of raw tables.
//!
//! Every rule is a polars expression that flags bad rows; the first rule a row breaks is its
//! reject reason. Rules run in three passes: field rules (types, ranges, required values), then
//! uniqueness among the rows that passed, then references to accepted customers. The invariant
//! `accepted + rejected == read` is checked for every table.

use polars::prelude::*;

use super::read::{RawTable, ROW};
use super::schema::{Kind, Table, DEAL_STATUSES, EVENTS};
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

/// A rejected row.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub table: &'static str,
    pub row: u64,
    pub column: String,
    pub reason: String,
}

/// A validated table: typed accepted rows and the rejects.
#[derive(Debug)]
pub struct Validated {
    pub frame: DataFrame,
    pub read: u64,
    pub rejects: Vec<Reject>,
}

const RAW_PREFIX: &str = "__raw_";
const RULE_COL: &str = "__rule";
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

/// Timestamps with a UTC offset (`Z`, `+08:00`, `-0500`; ISO 8601 / RFC 3339) become naive UTC
/// text; naive timestamps and dates are kept as they are (read as UTC); anything else becomes
/// null so that its row is rejected as an unparseable datetime with the raw value kept.
fn normalize_timestamps(column: &Column) -> Result<Column> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
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
        if DATETIME_FORMATS.iter().any(|f| NaiveDateTime::parse_from_str(s, f).is_ok())
            || ["%Y-%m-%d", "%Y/%m/%d"].iter().any(|f| NaiveDate::parse_from_str(s, f).is_ok())
        {
            return Some(s.to_string());
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
    let dtype = match kind {
        Kind::Str => DataType::String,
        Kind::F64 => DataType::Float64,
        Kind::Date => DataType::Date,
        Kind::Datetime => DataType::Datetime(TimeUnit::Microseconds, None),
    };
    lit(NULL).cast(dtype)
}

/// Types the known columns of `raw`, adds absent optional ones as nulls, and returns the
/// lazy frame with the parse-failure and required-value rules for them.
/// Column holding a text timestamp column normalized by [`normalize_timestamps`] (dropped with
/// the raw columns after validation).
fn normalized_name(name: &str) -> String {
    format!("{RAW_PREFIX}utc_{name}")
}

fn typed(table: Table, raw: &RawTable) -> Result<(LazyFrame, Vec<Rule>)> {
    let mut frame = raw.frame.clone();
    for spec in table.columns().iter().filter(|c| c.kind == Kind::Datetime) {
        if let Ok(c) = frame.column(spec.name) {
            if c.dtype() == &DataType::String {
                let normalized = normalize_timestamps(c)?.with_name(normalized_name(spec.name).into());
                frame.with_column(normalized)?;
            }
        }
    }
    let raw = &RawTable { frame, path: raw.path.clone(), read: raw.read, early_rejects: Vec::new() };
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
        let converted = convert(spec.name, dtype, spec.kind);
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
        if spec.kind == Kind::F64 {
            rules.push(Rule::new(
                spec.name,
                "not a finite number",
                col(spec.name).is_nan().or(col(spec.name).is_infinite()),
            ));
        }
        exprs.push(converted.alias(spec.name));
        if spec.required {
            rules.push(Rule::new(spec.name, format!("missing {}", spec.name), col(spec.name).is_null()));
            if spec.kind == Kind::Str {
                let blank = col(spec.name).str().len_bytes().eq(lit(0u32));
                rules.push(Rule::new(spec.name, format!("empty {}", spec.name), blank));
            }
        }
    }
    // Rules in the order users expect to read them: parse failures before range checks.
    rules.sort_by_key(|r| !r.reason.starts_with("unparseable") && !r.reason.starts_with("missing"));
    Ok((raw.frame.clone().lazy().with_columns(exprs), rules))
}

fn out_of_range(column: &str, lo: f64, hi: f64) -> Rule {
    Rule::new(
        column,
        format!("{column} out of range [{lo}, {hi}]"),
        col(column).lt(lit(lo)).or(col(column).gt(lit(hi))),
    )
}

fn negative(column: &str) -> Rule {
    Rule::new(column, format!("{column} negative"), col(column).lt(lit(0.0)))
}

/// Rules for one lat/lng pair named `{prefix}lat`, `{prefix}lng`.
fn coordinate_rules(prefix: &str, what: &str) -> Vec<Rule> {
    let (lat, lng) = (format!("{prefix}lat"), format!("{prefix}lng"));
    vec![
        Rule::new(
            &lng,
            format!("{lng} missing while {lat} is given"),
            col(&lat).is_not_null().and(col(&lng).is_null()),
        ),
        Rule::new(
            &lat,
            format!("{lat} missing while {lng} is given"),
            col(&lng).is_not_null().and(col(&lat).is_null()),
        ),
        out_of_range(&lat, -90.0, 90.0),
        out_of_range(&lng, -180.0, 180.0),
        Rule::new(&lat, format!("{what} at (0, 0)"), col(&lat).eq(lit(0.0)).and(col(&lng).eq(lit(0.0)))),
    ]
}

fn one_of(column: &str, allowed: &[&str]) -> Rule {
    let ok = allowed.iter().fold(lit(false), |acc, v| acc.or(col(column).eq(lit(*v))));
    Rule::new(column, format!("{column} not one of {}", allowed.join(", ")), col(column).is_not_null().and(ok.not()))
}

fn table_rules(table: Table) -> Vec<Rule> {
    match table {
        Table::Customers => {
            let mut rules = coordinate_rules("home_", "home");
            rules.extend(coordinate_rules("work_", "work"));
            rules.push(Rule::new(
                "home_lat",
                "no home or work location",
                col("home_lat").is_null().and(col("work_lat").is_null()),
            ));
            rules.push(negative("budget"));
            rules.push(negative("desired_area_sqm"));
            rules
        }
        Table::Touchpoints => vec![one_of("event", &EVENTS)],
        Table::Deals => vec![negative("price"), negative("area_sqm"), one_of("status", &DEAL_STATUSES)],
        Table::Campaigns => vec![
            negative("cost"),
            Rule::new("end_date", "end_date before start_date", col("end_date").lt(col("start_date"))),
        ],
        Table::Sites => {
            let mut rules = coordinate_rules("", "site");
            rules.push(negative("cost"));
            rules.push(negative("reach_m"));
            rules.push(Rule::new(
                "wkt",
                "site has neither lat/lng nor wkt",
                col("lat").is_null().and(col("wkt").is_null()),
            ));
            rules
        }
        Table::Projects => coordinate_rules("", "project"),
    }
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
    let rejected = flagged.filter(&mask)?.lazy().select([col(ROW), which.alias(RULE_COL)]).collect()?;
    let rows = rejected.column(ROW)?.u64()?;
    let rule_ix = rejected.column(RULE_COL)?.u32()?;
    let mut rejects = Vec::with_capacity(rejected.height());
    for (row, i) in rows.iter().zip(rule_ix.iter()) {
        let (Some(row), Some(i)) = (row, i) else {
            return Err(Error::Internal(format!("{}: a flagged row broke no rule", table.name())));
        };
        let rule = &rules[i as usize];
        rejects.push(Reject { table: table.name(), row, column: rule.column.clone(), reason: rule.reason.clone() });
    }
    Ok((accepted, rejects))
}

/// True on rows whose id repeats an earlier row's. Sorted ids (most exports) are checked by
/// comparing neighbours, in one pass; otherwise by hashing.
fn repeated_ids(frame: &DataFrame, id: &str) -> Result<Column> {
    let ids = frame.column(id)?.str()?;
    let mut sorted = true;
    let mut prev: Option<&str> = None;
    for v in ids.iter() {
        if let (Some(a), Some(b)) = (prev, v) {
            if b < a {
                sorted = false;
                break;
            }
        }
        prev = v.or(prev);
    }
    if sorted {
        let mut prev: Option<&str> = None;
        let repeated: BooleanChunked = ids
            .iter()
            .map(|v| {
                let dup = v.is_some() && v == prev;
                prev = v.or(prev);
                Some(dup)
            })
            .collect();
        return Ok(repeated.with_name(DUP_COL.into()).into_column());
    }
    let firsts = frame.clone().lazy().select([col(id).is_first_distinct().not().alias(DUP_COL)]).collect()?;
    Ok(firsts.column(DUP_COL)?.clone())
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

/// Validates one raw table. `customers` are the accepted customer ids, needed by tables that
/// refer to customers.
pub fn validate(table: Table, raw: RawTable, customers: Option<&DataFrame>) -> Result<Validated> {
    let mut rejects: Vec<Reject> = raw
        .early_rejects
        .iter()
        .map(|r| Reject { table: table.name(), row: r.row, column: String::new(), reason: r.reason.clone() })
        .collect();

    // Pass 1: types, required values, ranges.
    let (lf, mut rules) = typed(table, &raw)?;
    rules.extend(table_rules(table));
    let (mut frame, pass1) = apply_rules(table, lf, &rules)?;
    rejects.extend(pass1);

    // Pass 2: uniqueness of the table's own id among the rows that passed.
    if table != Table::Touchpoints {
        let id = id_column(table);
        frame.with_column(repeated_ids(&frame, id)?)?;
        let dup = Rule::new(id, format!("duplicate {id}"), col(DUP_COL));
        let (kept, dups) = apply_rules(table, frame.lazy(), &[dup])?;
        frame = kept.drop(DUP_COL)?;
        rejects.extend(dups);
    }

    // Pass 3: references to customers.
    if matches!(table, Table::Touchpoints | Table::Deals) {
        let customers = customers.ok_or_else(|| Error::Internal("customers must be validated first".into()))?;
        let rows = super::refs::resolve(
            customers.column("customer_id")?.str()?,
            frame.column("customer_id")?.str()?,
            CUSTOMER_ROW,
        )?;
        frame.with_column(rows.into_column())?;
        let what = if table == Table::Deals { "deal" } else { "touchpoint" };
        let rule = Rule::new("customer_id", format!("{what} for unknown customer"), col(CUSTOMER_ROW).is_null());
        let (kept, orphans) = apply_rules(table, frame.lazy(), &[rule])?;
        frame = kept;
        rejects.extend(orphans);
    }

    if table == Table::Sites {
        let (kept, bad_wkt) = check_wkt(frame)?;
        frame = kept;
        rejects.extend(bad_wkt);
    }

    frame = finish(table, frame)?;
    let accepted = frame.height() as u64;
    if accepted + rejects.len() as u64 != raw.read {
        return Err(Error::Internal(format!(
            "{}: accepted {accepted} + rejected {} != read {}",
            table.name(),
            rejects.len(),
            raw.read
        )));
    }
    rejects.sort_by_key(|r| r.row);
    Ok(Validated { frame, read: raw.read, rejects })
}

/// Drops helper columns and fills documented defaults.
fn finish(table: Table, frame: DataFrame) -> Result<DataFrame> {
    let helpers: Vec<PlSmallStr> = frame
        .get_column_names()
        .into_iter()
        .filter(|n| n.starts_with(RAW_PREFIX) || n.as_str() == ROW)
        .cloned()
        .collect();
    let mut lf = frame.lazy().drop(cols(helpers));
    lf = match table {
        Table::Touchpoints => lf.with_column(col("event").fill_null(lit("lead"))),
        Table::Deals => lf.with_column(col("status").fill_null(lit("signed"))),
        _ => lf,
    };
    numeric_attributes(table, lf.collect()?)
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
        let looks_numeric = text.str()?.iter().flatten().take(1000).all(|v| v.trim().parse::<f64>().is_ok());
        if !looks_numeric {
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

/// Site geometries must be POINT or LINESTRING WKT; parsed per row (sites tables are small).
fn check_wkt(frame: DataFrame) -> Result<(DataFrame, Vec<Reject>)> {
    let wkts = frame.column("wkt")?.str()?;
    let rows = frame.column(ROW)?.u64()?;
    let mut keep = Vec::with_capacity(frame.height());
    let mut rejects = Vec::new();
    for (text, row) in wkts.iter().zip(rows.into_no_null_iter()) {
        let problem = text.and_then(|t| crate::spatial::geometry::parse_site_wkt(t).err());
        keep.push(problem.is_none());
        if let Some(reason) = problem {
            rejects.push(Reject { table: "sites", row, column: "wkt".into(), reason });
        }
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    Ok((frame.filter(&mask)?, rejects))
}

/// The rejects as a frame with columns `table, row, column, reason`.
pub fn rejects_frame(rejects: &[Reject]) -> Result<DataFrame> {
    Ok(DataFrame::new(
        rejects.len(),
        vec![
            Column::new("table".into(), rejects.iter().map(|r| r.table).collect::<Vec<_>>()),
            Column::new("row".into(), rejects.iter().map(|r| r.row).collect::<Vec<_>>()),
            Column::new("column".into(), rejects.iter().map(|r| r.column.as_str()).collect::<Vec<_>>()),
            Column::new("reason".into(), rejects.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>()),
        ],
    )?)
}
