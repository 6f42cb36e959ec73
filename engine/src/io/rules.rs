//! The row rules of ingest (SPEC §2), described once.
//!
//! Each rule is a [`Check`]: the column it judges, the reason a row breaking it is given, and
//! the condition that finds such rows ([`Cond`]). The condition runs in two executors:
//! - local ingest ([`super::validate`]) evaluates it as a polars expression ([`Cond::expr`]);
//! - the cluster ([`Cond::sql`]) counts the rows breaking it, to refuse a dataset ingest would
//!   not accept whole.
//!
//! Both read the conditions with SQL's three-valued logic: a condition that is null (a missing
//! value compared) is not broken. Both compare floats by a total order, in which a NaN lies
//! beyond every number (above, or in arrow below when its sign bit is set), so a NaN may break a
//! bound too; the not-finite check, read first, is the reason ingest gives. Both read -0.0 as
//! 0.0 (the cluster's tests hold the two to the same counts on such values).
//!
//! The rules that only local ingest needs stay in `validate`: text that does not parse as its
//! column's type (the cluster refuses a column of the wrong type instead) and the rules over
//! the whole table (repeated ids, references to customers).

use polars::prelude::*;

use super::schema::{ColumnSpec, Kind, Table, DEAL_STATUSES, EVENTS};

/// A condition over one row's typed columns, true on rows that break a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The value is missing.
    Null(String),
    /// The value is given.
    NotNull(String),
    /// Text of zero bytes.
    Empty(String),
    /// A number that is NaN or infinite.
    NotFinite(String),
    /// A number below the bound.
    Below(String, f64),
    /// A number above the bound.
    Above(String, f64),
    /// A number equal to the value.
    Equals(String, f64),
    /// Text that is given and is none of the values.
    NotOneOf(String, &'static [&'static str]),
    /// The first column's value comes before the second's.
    Before(String, String),
    /// Every condition holds.
    All(Vec<Cond>),
    /// Some condition holds.
    Any(Vec<Cond>),
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A float literal both executors read back to the same bits (`{:?}` keeps `.0` and exponents).
fn number(x: f64) -> String {
    format!("{x:?}")
}

impl Cond {
    /// The condition as a polars expression.
    #[must_use]
    pub fn expr(&self) -> Expr {
        match self {
            Cond::Null(c) => col(c.as_str()).is_null(),
            Cond::NotNull(c) => col(c.as_str()).is_not_null(),
            Cond::Empty(c) => col(c.as_str()).str().len_bytes().eq(lit(0u32)),
            Cond::NotFinite(c) => col(c.as_str()).is_nan().or(col(c.as_str()).is_infinite()),
            Cond::Below(c, x) => col(c.as_str()).lt(lit(*x)),
            Cond::Above(c, x) => col(c.as_str()).gt(lit(*x)),
            Cond::Equals(c, x) => col(c.as_str()).eq(lit(*x)),
            Cond::NotOneOf(c, allowed) => {
                let ok = allowed.iter().fold(lit(false), |acc, v| acc.or(col(c.as_str()).eq(lit(*v))));
                col(c.as_str()).is_not_null().and(ok.not())
            }
            Cond::Before(a, b) => col(a.as_str()).lt(col(b.as_str())),
            Cond::All(parts) => parts.iter().map(Cond::expr).reduce(Expr::and).unwrap_or(lit(true)),
            Cond::Any(parts) => parts.iter().map(Cond::expr).reduce(Expr::or).unwrap_or(lit(false)),
        }
    }

    /// The condition as SQL (DataFusion's dialect), over a relation with the table's known
    /// columns typed as ingest types them (numbers as DOUBLE).
    #[must_use]
    pub fn sql(&self) -> String {
        match self {
            Cond::Null(c) => format!("({} IS NULL)", quoted(c)),
            Cond::NotNull(c) => format!("({} IS NOT NULL)", quoted(c)),
            Cond::Empty(c) => format!("(octet_length({}) = 0)", quoted(c)),
            // The largest finite double: only infinities lie beyond it.
            Cond::NotFinite(c) => format!("(isnan({0}) OR abs({0}) > {1})", quoted(c), number(f64::MAX)),
            Cond::Below(c, x) => format!("({} < {})", quoted(c), number(*x)),
            Cond::Above(c, x) => format!("({} > {})", quoted(c), number(*x)),
            Cond::Equals(c, x) => format!("({} = {})", quoted(c), number(*x)),
            Cond::NotOneOf(c, allowed) => {
                let list: Vec<String> = allowed.iter().map(|v| text(v)).collect();
                format!("({0} IS NOT NULL AND {0} NOT IN ({1}))", quoted(c), list.join(", "))
            }
            Cond::Before(a, b) => format!("({} < {})", quoted(a), quoted(b)),
            Cond::All(parts) if parts.is_empty() => "true".into(),
            Cond::Any(parts) if parts.is_empty() => "false".into(),
            Cond::All(parts) => format!("({})", parts.iter().map(Cond::sql).collect::<Vec<_>>().join(" AND ")),
            Cond::Any(parts) => format!("({})", parts.iter().map(Cond::sql).collect::<Vec<_>>().join(" OR ")),
        }
    }

    /// The columns the condition reads.
    #[must_use]
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Cond::Null(c)
            | Cond::NotNull(c)
            | Cond::Empty(c)
            | Cond::NotFinite(c)
            | Cond::Below(c, _)
            | Cond::Above(c, _)
            | Cond::Equals(c, _)
            | Cond::NotOneOf(c, _) => vec![c.as_str()],
            Cond::Before(a, b) => vec![a.as_str(), b.as_str()],
            Cond::All(parts) | Cond::Any(parts) => parts.iter().flat_map(Cond::columns).collect(),
        }
    }
}

/// One reason a row may be rejected: the column judged, the reason, the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub column: String,
    pub reason: String,
    pub bad: Cond,
}

impl Check {
    fn new(column: &str, reason: impl Into<String>, bad: Cond) -> Self {
        Check { column: column.into(), reason: reason.into(), bad }
    }
}

/// The checks of one column on its own, in the order they are read: a number that is not
/// finite; a required value missing; required text empty.
#[must_use]
pub fn column_checks(spec: &ColumnSpec) -> Vec<Check> {
    let name = spec.name;
    let mut checks = Vec::new();
    if spec.kind == Kind::F64 {
        checks.push(Check::new(name, "not a finite number", Cond::NotFinite(name.into())));
    }
    if spec.required {
        checks.push(Check::new(name, format!("missing {name}"), Cond::Null(name.into())));
        if spec.kind == Kind::Str {
            checks.push(Check::new(name, format!("empty {name}"), Cond::Empty(name.into())));
        }
    }
    checks
}

fn out_of_range(column: &str, lo: f64, hi: f64) -> Check {
    Check::new(
        column,
        format!("{column} out of range [{lo}, {hi}]"),
        Cond::Any(vec![Cond::Below(column.into(), lo), Cond::Above(column.into(), hi)]),
    )
}

fn negative(column: &str) -> Check {
    Check::new(column, format!("{column} negative"), Cond::Below(column.into(), 0.0))
}

fn one_of(column: &str, allowed: &'static [&'static str]) -> Check {
    Check::new(column, format!("{column} not one of {}", allowed.join(", ")), Cond::NotOneOf(column.into(), allowed))
}

/// Checks for one lat/lng pair named `{prefix}lat`, `{prefix}lng`.
fn coordinate_checks(prefix: &str, what: &str) -> Vec<Check> {
    let (lat, lng) = (format!("{prefix}lat"), format!("{prefix}lng"));
    vec![
        Check::new(
            &lng,
            format!("{lng} missing while {lat} is given"),
            Cond::All(vec![Cond::NotNull(lat.clone()), Cond::Null(lng.clone())]),
        ),
        Check::new(
            &lat,
            format!("{lat} missing while {lng} is given"),
            Cond::All(vec![Cond::NotNull(lng.clone()), Cond::Null(lat.clone())]),
        ),
        out_of_range(&lat, -90.0, 90.0),
        out_of_range(&lng, -180.0, 180.0),
        Check::new(
            &lat,
            format!("{what} at (0, 0)"),
            Cond::All(vec![Cond::Equals(lat.clone(), 0.0), Cond::Equals(lng.clone(), 0.0)]),
        ),
    ]
}

/// The checks across columns of a table, read after each column's own.
#[must_use]
pub fn table_checks(table: Table) -> Vec<Check> {
    match table {
        Table::Customers => {
            let mut checks = coordinate_checks("home_", "home");
            checks.extend(coordinate_checks("work_", "work"));
            checks.push(Check::new(
                "home_lat",
                "no home or work location",
                Cond::All(vec![Cond::Null("home_lat".into()), Cond::Null("work_lat".into())]),
            ));
            checks.push(negative("budget"));
            checks.push(negative("desired_area_sqm"));
            checks
        }
        Table::Touchpoints => vec![one_of("event", &EVENTS)],
        Table::Deals => vec![negative("price"), negative("area_sqm"), one_of("status", &DEAL_STATUSES)],
        Table::Campaigns => vec![
            negative("cost"),
            Check::new("end_date", "end_date before start_date", Cond::Before("end_date".into(), "start_date".into())),
        ],
        Table::Sites => {
            let mut checks = coordinate_checks("", "site");
            checks.push(negative("cost"));
            checks.push(negative("reach_m"));
            checks.push(Check::new(
                "wkt",
                "site has neither lat/lng nor wkt",
                Cond::All(vec![Cond::Null("lat".into()), Cond::Null("wkt".into())]),
            ));
            checks
        }
        Table::Projects => coordinate_checks("", "project"),
    }
}

/// Every check of a table on typed values: each column's own, then those across columns.
#[must_use]
pub fn checks(table: Table) -> Vec<Check> {
    let mut all: Vec<Check> = table.columns().iter().flat_map(column_checks).collect();
    all.extend(table_checks(table));
    all
}

/// Values of a table's row that ingest reads as missing rather than rejecting the row when
/// they break a check (a budget typed as `abc` says nothing against the customer's location
/// or purchases).
#[must_use]
pub fn soft_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Customers => &["budget", "desired_area_sqm", "created_at"],
        Table::Deals => &["area_sqm"],
        Table::Campaigns => &["name"],
        Table::Sites => &["name"],
        Table::Touchpoints | Table::Projects => &[],
    }
}

/// The SQL type ingest gives a column of `kind`.
#[must_use]
pub fn sql_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "VARCHAR",
        Kind::F64 => "DOUBLE",
        Kind::Date => "DATE",
        Kind::Datetime => "TIMESTAMP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `cond` with polars on a frame; nulls read as "not broken", as in ingest.
    fn flags(frame: &DataFrame, cond: &Cond) -> Vec<bool> {
        let out = frame.clone().lazy().with_column(cond.expr().fill_null(lit(false)).alias("bad")).collect().unwrap();
        out.column("bad").unwrap().bool().unwrap().iter().map(|b| b.unwrap_or(false)).collect()
    }

    #[test]
    fn conditions_flag_the_rows_they_name() {
        let frame = df!(
            "x" => [Some(-1.0), Some(0.0), Some(f64::NAN), Some(f64::INFINITY), None, Some(2.0)],
            "y" => [Some(0.0), Some(0.0), Some(1.0), None, Some(1.0), Some(1.0)],
            "s" => [Some("lead"), Some(""), Some("visit"), Some("nope"), None, Some("lead")],
        )
        .unwrap();
        let x = || "x".to_string();
        assert_eq!(flags(&frame, &Cond::Below(x(), 0.0)), [true, false, false, false, false, false]);
        // NaN orders above every number, in polars as in arrow (the cluster's executor).
        assert_eq!(flags(&frame, &Cond::Above(x(), 1.0)), [false, false, true, true, false, true]);
        assert_eq!(flags(&frame, &Cond::NotFinite(x())), [false, false, true, true, false, false]);
        assert_eq!(flags(&frame, &Cond::Null(x())), [false, false, false, false, true, false]);
        assert_eq!(flags(&frame, &Cond::Empty("s".into())), [false, true, false, false, false, false]);
        assert_eq!(flags(&frame, &Cond::NotOneOf("s".into(), &EVENTS)), [false, true, false, true, false, false]);
        assert_eq!(
            flags(&frame, &Cond::All(vec![Cond::Equals(x(), 0.0), Cond::Equals("y".into(), 0.0)])),
            [false, true, false, false, false, false]
        );
        assert_eq!(flags(&frame, &Cond::Before(x(), "y".into())), [true, false, false, false, false, false]);
        assert_eq!(flags(&frame, &Cond::Any(vec![])), [false; 6]);
    }

    #[test]
    fn sql_quotes_names_and_text_and_keeps_float_bits() {
        let c = Cond::NotOneOf("st\"atus".into(), &["it's"]);
        assert_eq!(c.sql(), "(\"st\"\"atus\" IS NOT NULL AND \"st\"\"atus\" NOT IN ('it''s'))");
        assert_eq!(Cond::Below("lat".into(), -90.0).sql(), "(\"lat\" < -90.0)");
        assert_eq!(Cond::NotFinite("x".into()).sql(), "(isnan(\"x\") OR abs(\"x\") > 1.7976931348623157e308)");
        assert_eq!(Cond::All(vec![]).sql(), "true");
    }

    #[test]
    fn every_table_checks_only_its_own_columns() {
        for table in Table::ALL {
            for check in checks(table) {
                assert!(table.column(&check.column).is_some(), "{}: {}", table.name(), check.column);
                for c in check.bad.columns() {
                    assert!(table.column(c).is_some(), "{}: {} reads {c}", table.name(), check.reason);
                }
            }
        }
    }
}
