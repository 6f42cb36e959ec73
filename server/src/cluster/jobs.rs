//! The reductions that run on the cluster, as SQL over the dataset's Parquet tables, and the
//! local modelling on their (small) outputs.
//!
//! - [`heatmap_base`]: customers (+ signed deals) -> one row per H3 cell (per cell pair in
//!   `both` mode) with the heatmap's sums, cells from the `h3_cell` UDF on the executors.
//! - [`journeys`]: touchpoints (+ referrals, first signed deals) -> one ordered key path per
//!   customer within the window -> counts of distinct paths with conversions and value, plus
//!   leads and visits per key.
//!
//! Neither restates the local engine's reduction. The heatmap's SQL is rendered from the
//! reduction's one description ([`custmap_engine::analytics::heatmap::plan`]), which the local
//! engine compiles too. The journeys' SQL gathers each customer's ordered touches (visits
//! apart), referral and first conversion, as the local builder's inputs are; the `journey` UDF
//! then applies the engine's own per-customer rule (`journeys::customer_rule`, which the local
//! builder calls for every customer). The parity
//! tests hold both to identical answers. The cluster reads the tables as they are, so
//! [`check_clean`] first counts the rows ingest would reject and refuses a dataset that has any,
//! naming each reason: a rejected row is never silently counted or dropped. It runs ingest's
//! own row checks ([`rules`], one description rendered as SQL), not a copy of them.

use std::fmt::Write as _;

use custmap_engine::analytics::attribution::journeys::{
    KeyStats, FIRST_DEAL_ORDER, NO_CAMPAIGN, REFERRAL, TOUCH_ORDER,
};
use custmap_engine::analytics::attribution::Journeys;
use custmap_engine::analytics::heatmap::plan::{self, SIGNED};
use custmap_engine::analytics::{By, HeatmapBase, Location, Segment};
use custmap_engine::io::rules;
use custmap_engine::io::schema::{Kind, Table, DAY_US, LEAD_EVENT, VISIT_EVENT};
use custmap_engine::polars::prelude::{ChunkAgg, DataFrame, DataType as PlType, Field, Schema, TimeUnit as PlUnit};
use custmap_engine::spatial::Res;
use custmap_engine::Error;
use datafusion::arrow::datatypes::{DataType, TimeUnit};

use super::udf::JOURNEY;
use super::Cluster;

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Cluster {
    /// A registered table's columns and types, as the cluster sees them.
    fn columns(&self, table: &str) -> Result<Vec<(String, DataType)>, Error> {
        let df = self
            .rt
            .block_on(self.ctx.table(table))
            .map_err(|e| Error::Internal(format!("cluster table {table}: {e}")))?;
        Ok(df.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect())
    }

    fn has_column(&self, table: &str, column: &str) -> Result<bool, Error> {
        Ok(self.has(table) && self.columns(table)?.iter().any(|(n, _)| n == column))
    }
}

/// `table` with every known column present (absent ones as typed nulls), as a subquery; its
/// own columns as they are (extra columns kept for segment filters).
fn known_columns_sql(cluster: &Cluster, table: Table) -> Result<String, Error> {
    let have = cluster.columns(table.name())?;
    let mut sql = format!("SELECT {}.*", table.name());
    for spec in table.columns() {
        if !have.iter().any(|(n, _)| n == spec.name) {
            let _ = write!(sql, ", CAST(NULL AS {}) AS {}", rules::sql_type(spec.kind), quoted(spec.name));
        }
    }
    let _ = write!(sql, " FROM {}", table.name());
    Ok(sql)
}

/// The customers' schema in polars terms, to check a segment filter as the local engine does.
fn customers_schema(cluster: &Cluster) -> Result<Schema, Error> {
    let mut fields: Vec<Field> = cluster
        .columns("customers")?
        .into_iter()
        .map(|(name, ty)| {
            let t = match ty {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PlType::String,
                DataType::Boolean => PlType::Boolean,
                DataType::Date32 | DataType::Date64 => PlType::Date,
                DataType::Timestamp(..) => PlType::Datetime(PlUnit::Microseconds, None),
                t if t.is_integer() => PlType::Int64,
                t if t.is_floating() => PlType::Float64,
                _ => PlType::Binary,
            };
            Field::new(name.as_str().into(), t)
        })
        .collect();
    for spec in Table::Customers.columns() {
        if !fields.iter().any(|f| f.name().as_str() == spec.name) {
            fields.push(Field::new(spec.name.into(), spec.kind.dtype()));
        }
    }
    Ok(Schema::from_iter(fields))
}

/// A reason the cluster refuses a dataset: a column of a type ingest would convert, or rows
/// ingest would reject (or whose value it would read as missing).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub table: &'static str,
    pub column: String,
    pub reason: String,
    /// Rows with the problem; `None` for a problem of the column itself.
    pub rows: Option<u64>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rows {
            Some(1) => write!(f, "{}.{}: 1 row with {}", self.table, self.column, self.reason),
            Some(n) => write!(f, "{}.{}: {n} rows with {}", self.table, self.column, self.reason),
            None => write!(f, "{}.{}: {}", self.table, self.column, self.reason),
        }
    }
}

/// Refuses a dataset that ingest would not accept whole ([`problems`]), naming each reason and
/// count: the cluster reads the tables as they are, so a rejected row would otherwise be
/// silently counted.
pub fn check_clean(cluster: &Cluster) -> Result<(), Error> {
    let problems = problems(cluster)?;
    if problems.is_empty() {
        Ok(())
    } else {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Err(Error::BadInput(format!(
            "the cluster engine needs tables that ingest accepts whole, and {} (`custmap validate DIR` lists the rows; \
             fix them, or use --engine local, which rejects them with reasons)",
            list.join("; ")
        )))
    }
}

/// What ingest would reject (SPEC §2) in the tables the cluster reads: each known column's
/// type, then the rows breaking each of ingest's row checks (the same descriptions,
/// [`rules::checks`], run as SQL), duplicate ids, and references to unknown customers.
pub fn problems(cluster: &Cluster) -> Result<Vec<Problem>, Error> {
    let mut problems = Vec::new();
    // The tables whose columns have the types ingest gives them, with their ids' type.
    let mut typed: Vec<(Table, DataType)> = Vec::new();
    for table in [Table::Customers, Table::Deals, Table::Touchpoints] {
        if table != Table::Customers && !cluster.has(table.name()) {
            continue;
        }
        let types = wrong_types(cluster, table)?;
        if !types.is_empty() {
            // The row checks assume the types; a column of another type is the problem to fix.
            problems.extend(types);
            continue;
        }
        let id = cluster.columns(table.name())?.into_iter().find(|(n, _)| n == "customer_id");
        typed.extend(id.map(|(_, ty)| (table, ty)));
        problems.extend(count_bad(cluster, table)?);
        match table {
            Table::Customers => problems.extend(duplicates(cluster, table, "customer_id")?),
            Table::Deals => problems.extend(duplicates(cluster, table, "deal_id")?),
            Table::Touchpoints | Table::Campaigns | Table::Sites | Table::Projects => {}
        }
    }
    // References to customers, when both sides are typed. Ids join the tables: whole numbers
    // in one and text in another would be compared as numbers ("017" joining 17), which
    // ingest, comparing text, never does, so such a table is refused instead.
    let Some((_, customer_ids)) = typed.iter().find(|(t, _)| *t == Table::Customers).cloned() else {
        return Ok(problems);
    };
    for (table, ty) in typed.iter().filter(|(t, _)| *t != Table::Customers) {
        if ty.is_integer() == customer_ids.is_integer() {
            problems.extend(unknown_customers(cluster, *table)?);
        } else {
            problems.push(Problem {
                table: table.name(),
                column: "customer_id".into(),
                reason: format!(
                    "of type {ty} while customers.customer_id is {customer_ids}: ids must be all text or all whole numbers"
                ),
                rows: None,
            });
        }
    }
    Ok(problems)
}

/// Whether a column of arrow type `ty` holds what ingest types as `kind` without parsing text.
fn holds(kind: Kind, ty: &DataType) -> bool {
    match kind {
        // Whole-number ids (exports often type them so) read as their decimal text, as ingest does.
        Kind::Str => ty.is_integer() || matches!(ty, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
        Kind::F64 => {
            ty.is_integer() || ty.is_floating() || matches!(ty, DataType::Decimal128(..) | DataType::Decimal256(..))
        }
        Kind::Date => matches!(ty, DataType::Date32),
        Kind::Datetime => matches!(ty, DataType::Timestamp(..) | DataType::Date32),
    }
}

/// The known columns of `table` that are required and absent, or of a type ingest would have
/// to parse or convert: the cluster reads the tables as they are, so it refuses them.
fn wrong_types(cluster: &Cluster, table: Table) -> Result<Vec<Problem>, Error> {
    let have = cluster.columns(table.name())?;
    let mut problems = Vec::new();
    for spec in table.columns() {
        let reason = match have.iter().find(|(n, _)| n == spec.name) {
            None if spec.required => "a required column, absent".to_string(),
            Some((_, ty)) if !holds(spec.kind, ty) => {
                format!("of type {ty}, not {} (ingest would parse or convert it)", rules::sql_type(spec.kind))
            }
            _ => continue,
        };
        problems.push(Problem { table: table.name(), column: spec.name.into(), reason, rows: None });
    }
    Ok(problems)
}

/// The table's known columns as ingest types them: numbers as DOUBLE, text as VARCHAR (whole
/// numbers as their decimal text), absent optional columns as typed nulls.
fn typed_sql(cluster: &Cluster, table: Table) -> Result<String, Error> {
    let have = cluster.columns(table.name())?;
    let columns: Vec<String> = table
        .columns()
        .iter()
        .map(|spec| {
            let q = quoted(spec.name);
            let ty = rules::sql_type(spec.kind);
            if !have.iter().any(|(n, _)| n == spec.name) {
                format!("CAST(NULL AS {ty}) AS {q}")
            } else if spec.kind == Kind::F64 || spec.kind == Kind::Str {
                format!("CAST({q} AS {ty}) AS {q}")
            } else {
                q
            }
        })
        .collect();
    Ok(format!("SELECT {} FROM {}", columns.join(", "), table.name()))
}

/// The rows of `table` breaking each of ingest's checks, counted in one query: "table: n rows
/// with reason" per broken check.
fn count_bad(cluster: &Cluster, table: Table) -> Result<Vec<Problem>, Error> {
    let checks = rules::checks(table);
    let select: Vec<String> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| format!("CAST(SUM(CASE WHEN {} THEN 1 ELSE 0 END) AS BIGINT) AS c{i}", c.bad.sql()))
        .collect();
    let out = cluster.query(&format!("SELECT {} FROM ({}) t", select.join(", "), typed_sql(cluster, table)?))?;
    let soft = rules::soft_columns(table);
    let mut problems = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        let n = out.column(&format!("c{i}"))?.i64()?.get(0).unwrap_or(0);
        if n > 0 {
            let nulled =
                if soft.contains(&check.column.as_str()) { " (ingest reads the value as missing)" } else { "" };
            problems.push(Problem {
                table: table.name(),
                column: check.column.clone(),
                reason: format!("{}{nulled}", check.reason),
                rows: Some(n as u64),
            });
        }
    }
    Ok(problems)
}

/// Rows of `table` whose `id` repeats another's.
fn duplicates(cluster: &Cluster, table: Table, id: &str) -> Result<Option<Problem>, Error> {
    let sql =
        format!("SELECT CAST(COUNT({0}) - COUNT(DISTINCT {0}) AS BIGINT) AS n FROM {1}", quoted(id), table.name());
    let n = cluster.query(&sql)?.column("n")?.i64()?.get(0).unwrap_or(0);
    Ok((n > 0).then(|| Problem {
        table: table.name(),
        column: id.into(),
        reason: format!("duplicate {id}"),
        rows: Some(n as u64),
    }))
}

/// Rows of `table` whose `customer_id` names no customer.
fn unknown_customers(cluster: &Cluster, table: Table) -> Result<Option<Problem>, Error> {
    let table_name = table.name();
    // A missing or empty id is counted by the row checks already.
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table_name} t LEFT JOIN (SELECT DISTINCT \"customer_id\" AS cid FROM customers) c \
         ON t.\"customer_id\" = c.cid WHERE c.cid IS NULL AND t.\"customer_id\" IS NOT NULL \
         AND octet_length(CAST(t.\"customer_id\" AS VARCHAR)) > 0"
    );
    let n = cluster.query(&sql)?.column("n")?.i64()?.get(0).unwrap_or(0);
    let what = if table == Table::Deals { "deal" } else { "touchpoint" };
    Ok((n > 0).then(|| Problem {
        table: table_name,
        column: "customer_id".into(),
        reason: format!("{what} for unknown customer"),
        rows: Some(n as u64),
    }))
}

/// The heatmap reduction on the cluster: per cell (pair) at `res`, the sums of SPEC §3, for the
/// customers located by `location` and the segment `where_`. The SQL is rendered from the
/// reduction's description ([`plan`]), the one the local engine compiles.
pub fn heatmap_base(
    cluster: &Cluster,
    location: Location,
    where_: Option<&str>,
    res: Res,
) -> Result<HeatmapBase, Error> {
    let segment = Segment::given(where_).map(|w| Segment::parse(w, &customers_schema(cluster)?)).transpose()?;
    let in_segment = segment.as_ref().map_or_else(|| "true".to_string(), |s| s.sql.clone());
    let customers = known_columns_sql(cluster, Table::Customers)?;
    let deals = cluster.has("deals").then(|| known_columns_sql(cluster, Table::Deals)).transpose()?;
    let from = plan::SqlSources { customers: &customers, deals: deals.as_deref(), cell_fn: "h3_cell" };
    let (reduction, located) = plan::sql(location, &in_segment, res.get(), &from);
    let groups = cluster.query(&reduction)?;
    // An independent count, as a separate job: rows lost or counted twice (a lost executor)
    // make the answer unusable, never silently wrong.
    let check = cluster.query(&located)?;
    consistent("located customers", sum_i64(&groups, "customers")?, first_i64(&check, "n")?)?;
    Ok(HeatmapBase::from_cells(groups, location, segment.map(|s| s.text), res)?)
}

fn sum_i64(frame: &DataFrame, column: &str) -> Result<i64, Error> {
    Ok(frame.column(column)?.cast(&PlType::Int64)?.i64()?.sum().unwrap_or(0))
}

fn first_i64(frame: &DataFrame, column: &str) -> Result<i64, Error> {
    Ok(frame.column(column)?.cast(&PlType::Int64)?.i64()?.get(0).unwrap_or(0))
}

/// Refuses a cluster answer whose total disagrees with an independent count of the same thing.
fn consistent(what: &str, answer: i64, count: i64) -> Result<(), Error> {
    if answer == count {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "the cluster's answer is inconsistent ({answer} {what} in the reduction, {count} counted on their own), \
             so it was not used; an executor may have been lost mid-query: run it again"
        )))
    }
}

/// SQL turning a timestamp column into microseconds since the epoch, whatever its unit.
fn micros(column: &str, ty: &DataType) -> Result<String, Error> {
    let raw = format!("CAST({} AS BIGINT)", quoted(column));
    Ok(match ty {
        DataType::Timestamp(TimeUnit::Microsecond, _) => raw,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => format!("({raw} / 1000)"),
        DataType::Timestamp(TimeUnit::Millisecond, _) => format!("({raw} * 1000)"),
        DataType::Timestamp(TimeUnit::Second, _) => format!("({raw} * 1000000)"),
        DataType::Date32 => format!("(CAST(CAST({} AS INT) AS BIGINT) * {DAY_US})", quoted(column)),
        other => return Err(Error::BadInput(format!("touchpoints.{column} is {other}, not a timestamp"))),
    })
}

/// The journey reduction on the cluster, rebuilt locally as weighted journeys: the same paths,
/// counts, leads and visits as the local `journeys::build`, without per-customer rows.
pub fn journeys(cluster: &Cluster, by: By, window_days: u32) -> Result<Journeys, Error> {
    if !cluster.has("touchpoints") {
        return Err(Error::BadInput("attribution needs a touchpoints table".into()));
    }
    let (tp, conv) = sources(cluster)?;
    let at_conv = format!("(cv.day * {DAY_US} + {})", DAY_US - 1);

    // The data's end: the latest touch (any event) or first conversion.
    let bounds = cluster.query(&format!(
        "WITH tp AS ({tp}), conv AS ({conv}) \
         SELECT (SELECT MIN(ts) FROM tp) AS t0, (SELECT MAX(ts) FROM tp) AS t1, \
                (SELECT MAX(day * {DAY_US} + {}) FROM conv) AS c1",
        DAY_US - 1
    ))?;
    let get = |c: &str| -> Result<Option<i64>, Error> { Ok(bounds.column(c)?.i64()?.get(0)) };
    let end = get("t1")?.unwrap_or(0).max(get("c1")?.unwrap_or(i64::MIN));
    let start_tp = get("t0")?.unwrap_or(0);

    let (referral_key, key) = match by {
        By::Channel => (REFERRAL.to_string(), "channel"),
        By::Campaign => ("(referral)".to_string(), "campaign"),
    };
    // Each customer's journey by the engine's own rule (the `journey` function): their touches
    // that are not visits, in order, with their referral and first conversion.
    let per_customer = format!(
        "WITH tp AS ({tp}), conv AS ({conv}), \
         t AS (SELECT cid, array_agg(named_struct('ts', ts, 'k', {key}) ORDER BY {touch_order}) AS touches \
               FROM tp WHERE event <> '{VISIT_EVENT}' GROUP BY cid), \
         r AS ({referred}), \
         u AS (SELECT COALESCE(t.cid, r.cid) AS cid, t.touches, r.cid IS NOT NULL AS referred, r.created \
               FROM t FULL OUTER JOIN r ON t.cid = r.cid), \
         x AS (SELECT {JOURNEY}(u.touches, u.referred, u.created, {at_conv}, CAST({end} AS BIGINT), \
                               CAST({window} AS BIGINT), {rk}) AS j, cv.day, cv.price \
               FROM u LEFT JOIN conv cv ON u.cid = cv.cid), \
         y AS (SELECT get_field(j, 'path') AS path, get_field(j, 'lead') AS lead, \
                      get_field(j, 'referral_at') AS ref_at, day, price FROM x)",
        referred = referred_customers(cluster)?,
        touch_order = TOUCH_ORDER.join(", "),
        window = i64::from(window_days) * DAY_US,
        rk = text(&referral_key),
    );
    let paths = cluster.query(&format!(
        "{per_customer} \
         SELECT path, CAST(SUM(CASE WHEN day IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS conversions, \
                CAST(SUM(CASE WHEN day IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS nulls, \
                CAST(SUM(COALESCE(price, 0.0)) AS DOUBLE) AS value \
         FROM y WHERE path IS NOT NULL GROUP BY path ORDER BY path"
    ))?;
    // Leads per lead key, when referral touches were placed, and journeys: a second job over
    // the customers, small in its output.
    let leads = cluster.query(&format!(
        "{per_customer} \
         SELECT lead, CAST(COUNT(*) AS BIGINT) AS n, MIN(ref_at) AS ref0, CAST(COUNT(path) AS BIGINT) AS journeys \
         FROM y WHERE lead IS NOT NULL GROUP BY lead"
    ))?;
    // Rows lost or counted twice between the two jobs (a lost executor) make the answer
    // unusable, never silently wrong.
    consistent("journeys", sum_i64(&paths, "conversions")? + sum_i64(&paths, "nulls")?, sum_i64(&leads, "journeys")?)?;
    // Keys: every key of any touchpoint (visits too), with its visits; and the referral key
    // when a referral touch was placed.
    let keys = cluster.query(&format!(
        "WITH tp AS ({tp}) \
         SELECT {key} AS key, CAST(SUM(CASE WHEN event = '{VISIT_EVENT}' THEN 1 ELSE 0 END) AS BIGINT) AS visits \
         FROM tp GROUP BY {key}"
    ))?;
    let ref0 = leads.column("ref0")?.i64()?.min();
    let stats = key_stats(&keys, &leads, ref0.map(|_| referral_key.as_str()))?;
    let start = ref0.map_or(start_tp, |r| r.min(start_tp));
    Ok(Journeys::from_paths(&paths, &stats, (start, end))?)
}

/// The touchpoints (customer, time in microseconds, channel, campaign or the no-campaign key,
/// event, `lead` when absent) and each customer's first signed deal (signing day, price), as SQL.
fn sources(cluster: &Cluster) -> Result<(String, String), Error> {
    let tp_cols = cluster.columns("touchpoints")?;
    let ts_ty = tp_cols
        .iter()
        .find(|(n, _)| n == "ts")
        .map(|(_, t)| t.clone())
        .ok_or_else(|| Error::BadInput("touchpoints has no ts column".into()))?;
    let has_tp = |c: &str| tp_cols.iter().any(|(n, _)| n == c);
    let campaign = if has_tp("campaign_id") { "\"campaign_id\"" } else { "CAST(NULL AS VARCHAR)" };
    let event = if has_tp("event") { "\"event\"" } else { "CAST(NULL AS VARCHAR)" };
    let tp = format!(
        "SELECT \"customer_id\" AS cid, {ts} AS ts, \"channel\" AS channel, COALESCE({campaign}, {nc}) AS campaign, \
         COALESCE({event}, '{LEAD_EVENT}') AS event FROM touchpoints",
        ts = micros("ts", &ts_ty)?,
        nc = text(NO_CAMPAIGN),
    );
    let conv = if cluster.has("deals") {
        format!(
            "SELECT cid, day, price FROM (SELECT \"customer_id\" AS cid, CAST(CAST(\"signed_at\" AS INT) AS BIGINT) AS day, \
             CAST(\"price\" AS DOUBLE) AS price, \
             ROW_NUMBER() OVER (PARTITION BY \"customer_id\" ORDER BY {deal_order}) AS rn \
             FROM ({deals}) deals WHERE COALESCE(\"status\", '{SIGNED}') = '{SIGNED}') x WHERE rn = 1",
            deals = known_columns_sql(cluster, Table::Deals)?,
            deal_order = FIRST_DEAL_ORDER.map(|c| format!("\"{c}\"")).join(", "),
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS cid, CAST(NULL AS BIGINT) AS day, CAST(NULL AS DOUBLE) AS price WHERE false"
            .into()
    };
    Ok((tp, conv))
}

/// The referred customers as SQL: id, and the start of their `created_at` in microseconds (null
/// when unknown).
fn referred_customers(cluster: &Cluster) -> Result<String, Error> {
    Ok(if cluster.has_column("customers", "referred_by")? {
        let created = if cluster.has_column("customers", "created_at")? {
            format!("CAST(CAST(\"created_at\" AS INT) AS BIGINT) * {DAY_US}")
        } else {
            "CAST(NULL AS BIGINT)".into()
        };
        format!("SELECT \"customer_id\" AS cid, {created} AS created FROM customers WHERE \"referred_by\" IS NOT NULL")
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS cid, CAST(NULL AS BIGINT) AS created WHERE false".into()
    })
}

/// Per key, in name order: its name, leads and visits, from the keys and leads queries;
/// `referral` names the referral key when a referral touch was placed.
fn key_stats(keys: &DataFrame, leads: &DataFrame, referral: Option<&str>) -> Result<Vec<KeyStats>, Error> {
    let mut stats: std::collections::BTreeMap<String, KeyStats> = std::collections::BTreeMap::new();
    let names = keys.column("key")?.str()?;
    let visits = keys.column("visits")?.i64()?;
    for i in 0..keys.height() {
        let key = names.get(i).unwrap_or_default().to_string();
        let visits = visits.get(i).unwrap_or(0) as u64;
        stats.insert(key.clone(), KeyStats { key, leads: 0, visits });
    }
    if let Some(r) = referral {
        stats.entry(r.to_string()).or_insert_with(|| KeyStats { key: r.to_string(), leads: 0, visits: 0 });
    }
    let lead_keys = leads.column("lead")?.str()?;
    let counts = leads.column("n")?.i64()?;
    for i in 0..leads.height() {
        let key = lead_keys.get(i).unwrap_or_default();
        let Some(entry) = stats.get_mut(key) else {
            return Err(Error::Internal(format!("the cluster's lead key '{key}' is not a key of any touch")));
        };
        entry.leads += counts.get(i).unwrap_or(0) as u64;
    }
    Ok(stats.into_values().collect())
}
