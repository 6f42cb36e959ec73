//! The reductions that run on the cluster, as SQL over the dataset's Parquet tables, and the
//! local modelling on their (small) outputs.
//!
//! - [`heatmap_base`]: customers (+ signed deals) -> one row per H3 cell (per cell pair in
//!   `both` mode) with the heatmap's sums, cells from the `h3_cell` UDF on the executors.
//! - [`journeys`]: touchpoints (+ referrals, first signed deals) -> one ordered key path per
//!   customer within the window -> counts of distinct paths with conversions and value, plus
//!   leads and visits per key.
//!
//! Both follow the local engine's rules (`heatmap.rs`, `journeys.rs`) clause by clause; the
//! parity tests hold them to identical answers. The cluster reads the tables as they are, so
//! [`check_clean`] first counts the rows ingest would reject and refuses a dataset that has any,
//! naming each reason: a rejected row is never silently counted or dropped.

use std::fmt::Write as _;

use custmap_engine::analytics::attribution::journeys::{KeyStats, NO_CAMPAIGN, PATH_SEPARATOR, REFERRAL};
use custmap_engine::analytics::attribution::Journeys;
use custmap_engine::analytics::{By, HeatmapBase, Location, Segment};
use custmap_engine::io::schema::{DEAL_STATUSES, EVENTS};
use custmap_engine::polars::prelude::{ChunkAgg, DataFrame, DataType as PlType, Field, Schema, TimeUnit as PlUnit};
use custmap_engine::spatial::Res;
use custmap_engine::Error;
use datafusion::arrow::datatypes::{DataType, TimeUnit};

use super::Cluster;

const DAY_US: i64 = 86_400_000_000;

/// Customer columns the local engine always has (absent ones as nulls), with their SQL type.
const CUSTOMER_COLUMNS: [(&str, &str); 9] = [
    ("home_lat", "DOUBLE"),
    ("home_lng", "DOUBLE"),
    ("work_lat", "DOUBLE"),
    ("work_lng", "DOUBLE"),
    ("budget", "DOUBLE"),
    ("desired_area_sqm", "DOUBLE"),
    ("project_id", "VARCHAR"),
    ("created_at", "DATE"),
    ("referred_by", "VARCHAR"),
];

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

/// The customers with every known column present (absent ones as typed nulls), as a subquery.
fn customers_sql(cluster: &Cluster) -> Result<String, Error> {
    let have = cluster.columns("customers")?;
    let mut sql = String::from("SELECT customers.*");
    for (name, ty) in CUSTOMER_COLUMNS {
        if !have.iter().any(|(n, _)| n == name) {
            let _ = write!(sql, ", CAST(NULL AS {ty}) AS {}", quoted(name));
        }
    }
    sql.push_str(" FROM customers");
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
    for (name, ty) in CUSTOMER_COLUMNS {
        if !fields.iter().any(|f| f.name().as_str() == name) {
            let t = match ty {
                "DOUBLE" => PlType::Float64,
                "DATE" => PlType::Date,
                _ => PlType::String,
            };
            fields.push(Field::new(name.into(), t));
        }
    }
    Ok(Schema::from_iter(fields))
}

/// Counts, per table, the rows the local ingest would reject (SPEC §2) and refuses the dataset
/// if there are any, naming each reason and count: each table's row rules ([`customer_rules`],
/// [`deal_rules`], [`touchpoint_rules`]) counted in one query, then duplicate ids and references
/// to unknown customers.
pub fn check_clean(cluster: &Cluster) -> Result<(), Error> {
    let mut problems = count_bad(cluster, "customers", customer_rules(cluster)?)?;
    problems.extend(duplicates(cluster, "customers", "customer_id")?);
    if cluster.has("deals") {
        problems.extend(count_bad(cluster, "deals", deal_rules(cluster)?)?);
        problems.extend(unknown_customers(cluster, "deals")?);
        problems.extend(duplicates(cluster, "deals", "deal_id")?);
    }
    if cluster.has("touchpoints") {
        problems.extend(count_bad(cluster, "touchpoints", touchpoint_rules(cluster)?)?);
        problems.extend(unknown_customers(cluster, "touchpoints")?);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "the cluster engine needs tables that ingest accepts whole, and {} (`custmap validate DIR` lists the rows; \
             fix them, or use --engine local, which rejects them with reasons)",
            problems.join("; ")
        )))
    }
}

/// A rule: the reason a row is rejected, and the SQL condition that finds such rows.
type Rule = (String, String);

/// The rows of `table` breaking each rule, counted in one query: "table: n rows with reason" per
/// broken rule.
fn count_bad(cluster: &Cluster, table: &str, rules: Vec<Rule>) -> Result<Vec<String>, Error> {
    let mut problems = Vec::new();
    if rules.is_empty() {
        return Ok(problems);
    }
    let select: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, (_, bad))| format!("CAST(SUM(CASE WHEN {bad} THEN 1 ELSE 0 END) AS BIGINT) AS c{i}"))
        .collect();
    let out = cluster.query(&format!("SELECT {} FROM {table}", select.join(", ")))?;
    for (i, (reason, _)) in rules.iter().enumerate() {
        let n = out.column(&format!("c{i}"))?.i64()?.get(0).unwrap_or(0);
        if n > 0 {
            problems.push(format!("{table}: {n} rows with {reason}"));
        }
    }
    Ok(problems)
}

/// Rows of `table` whose `id` repeats another's.
fn duplicates(cluster: &Cluster, table: &str, id: &str) -> Result<Option<String>, Error> {
    let sql = format!("SELECT CAST(COUNT(*) - COUNT(DISTINCT \"{id}\") AS BIGINT) AS n FROM {table}");
    let n = cluster.query(&sql)?.column("n")?.i64()?.get(0).unwrap_or(0);
    Ok((n > 0).then(|| format!("{table}: {n} rows with a duplicate {id}")))
}

/// Rows of `table` whose `customer_id` names no customer.
fn unknown_customers(cluster: &Cluster, table: &str) -> Result<Option<String>, Error> {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table} t LEFT JOIN (SELECT DISTINCT \"customer_id\" AS cid FROM customers) c \
         ON t.\"customer_id\" = c.cid WHERE c.cid IS NULL"
    );
    let n = cluster.query(&sql)?.column("n")?.i64()?.get(0).unwrap_or(0);
    Ok((n > 0).then(|| format!("{table}: {n} rows for an unknown customer")))
}

/// Customers: an id; each place's coordinates both or neither, in range, not (0, 0); some place;
/// budget and desired area not negative.
fn customer_rules(cluster: &Cluster) -> Result<Vec<Rule>, Error> {
    let has = |c: &str| cluster.has_column("customers", c);
    let mut c = vec![(
        "missing customer_id".to_string(),
        "(\"customer_id\" IS NULL OR trim(\"customer_id\") = '')".to_string(),
    )];
    let mut located = Vec::new();
    for p in ["home_", "work_"] {
        let (lat, lng) = (format!("{p}lat"), format!("{p}lng"));
        if !(has(&lat)? && has(&lng)?) {
            continue;
        }
        let (la, lo) = (quoted(&lat), quoted(&lng));
        c.push((
            format!("{lat} or {lng} missing while the other is given"),
            format!("(({la} IS NULL) <> ({lo} IS NULL))"),
        ));
        c.push((format!("{lat} out of range"), format!("({la} < -90 OR {la} > 90 OR isnan({la}))")));
        c.push((format!("{lng} out of range"), format!("({lo} < -180 OR {lo} > 180 OR isnan({lo}))")));
        c.push((format!("{p}location at (0, 0)"), format!("({la} = 0 AND {lo} = 0)")));
        located.push(format!("{la} IS NULL"));
    }
    c.push((
        "no home or work location".into(),
        if located.is_empty() { "true".into() } else { format!("({})", located.join(" AND ")) },
    ));
    for col in ["budget", "desired_area_sqm"] {
        if has(col)? {
            let q = quoted(col);
            c.push((format!("{col} negative or not a number"), format!("({q} < 0 OR isnan({q}))")));
        }
    }
    Ok(c)
}

/// Deals: an id, a signing time, a price not negative, a known status, an area not negative.
fn deal_rules(cluster: &Cluster) -> Result<Vec<Rule>, Error> {
    let statuses = DEAL_STATUSES.map(text).join(", ");
    let mut d = vec![
        ("missing deal_id".to_string(), "\"deal_id\" IS NULL".to_string()),
        ("missing signed_at".into(), "\"signed_at\" IS NULL".into()),
        (
            "price missing, negative or not a number".into(),
            "(\"price\" IS NULL OR \"price\" < 0 OR isnan(\"price\"))".into(),
        ),
    ];
    if cluster.has_column("deals", "status")? {
        d.push(("an unknown status".into(), format!("(\"status\" IS NOT NULL AND \"status\" NOT IN ({statuses}))")));
    }
    if cluster.has_column("deals", "area_sqm")? {
        d.push(("area_sqm negative".into(), "\"area_sqm\" < 0".into()));
    }
    Ok(d)
}

/// Touchpoints: a time, a channel, a known event.
fn touchpoint_rules(cluster: &Cluster) -> Result<Vec<Rule>, Error> {
    let events = EVENTS.map(text).join(", ");
    let mut t = vec![
        ("missing ts".to_string(), "\"ts\" IS NULL".to_string()),
        ("missing channel".into(), "(\"channel\" IS NULL OR trim(\"channel\") = '')".into()),
    ];
    if cluster.has_column("touchpoints", "event")? {
        t.push(("an unknown event".into(), format!("(\"event\" IS NOT NULL AND \"event\" NOT IN ({events}))")));
    }
    Ok(t)
}

/// The anchors of a location: (latitude column, longitude column, cell column).
fn anchors(location: Location) -> &'static [(&'static str, &'static str, &'static str)] {
    const HOME: (&str, &str, &str) = ("home_lat", "home_lng", "home_cell");
    const WORK: (&str, &str, &str) = ("work_lat", "work_lng", "work_cell");
    match location {
        Location::Home => &[HOME],
        Location::Work => &[WORK],
        Location::Both => &[HOME, WORK],
    }
}

/// The heatmap reduction on the cluster: per cell (pair) at `res`, the sums of SPEC §3, for the
/// customers located by `location` and the segment `where_`.
pub fn heatmap_base(
    cluster: &Cluster,
    location: Location,
    where_: Option<&str>,
    res: Res,
) -> Result<HeatmapBase, Error> {
    let segment = Segment::given(where_).map(|w| Segment::parse(w, &customers_schema(cluster)?)).transpose()?;
    let prospect = segment.as_ref().map_or_else(|| "true".to_string(), |s| s.sql.clone());
    let deals = if cluster.has("deals") {
        "SELECT \"customer_id\" AS __cid, COUNT(*) AS __deals, SUM(\"price\") AS __revenue, MAX(\"price\") AS __max_price \
         FROM deals WHERE COALESCE(\"status\", 'signed') = 'signed' GROUP BY \"customer_id\""
            .to_string()
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS __cid, CAST(NULL AS BIGINT) AS __deals, CAST(NULL AS DOUBLE) AS __revenue, \
         CAST(NULL AS DOUBLE) AS __max_price WHERE false"
            .to_string()
    };
    let a = anchors(location);
    let cells: Vec<String> = a
        .iter()
        .map(|(lat, lng, cell)| {
            format!(
                "h3_cell(CAST({} AS DOUBLE), CAST({} AS DOUBLE), {}) AS {cell}",
                quoted(lat),
                quoted(lng),
                res.get()
            )
        })
        .collect();
    let located: Vec<String> = a.iter().map(|(lat, _, _)| format!("{} IS NOT NULL", quoted(lat))).collect();
    let keys: Vec<&str> = a.iter().map(|(_, _, cell)| *cell).collect();
    let sql = format!(
        "WITH d AS ({deals}), \
         c AS (SELECT cu.*, d.__deals, d.__revenue, d.__max_price FROM ({customers}) cu LEFT JOIN d ON cu.\"customer_id\" = d.__cid), \
         r AS (SELECT {cells}, \
                 CASE WHEN {prospect} THEN 1 ELSE 0 END AS p, \
                 CASE WHEN __deals IS NULL THEN 0 ELSE 1 END AS b, \
                 COALESCE(__deals, 0) AS n, COALESCE(__revenue, 0.0) AS v, \
                 CASE WHEN {prospect} THEN COALESCE(\"budget\", __max_price, 0.0) ELSE 0.0 END AS pp \
               FROM c WHERE {located}) \
         SELECT {keys}, CAST(COUNT(*) AS BIGINT) AS customers, CAST(SUM(p) AS BIGINT) AS prospects, \
                CAST(SUM(b) AS BIGINT) AS buyers, CAST(SUM(n) AS BIGINT) AS deals, \
                CAST(SUM(v) AS DOUBLE) AS revenue, CAST(SUM(pp) AS DOUBLE) AS purchasing_power \
         FROM r GROUP BY {keys}",
        customers = customers_sql(cluster)?,
        cells = cells.join(", "),
        located = located.join(" OR "),
        keys = keys.join(", "),
    );
    let groups = cluster.query(&sql)?;
    // An independent count, as a separate job: rows lost or counted twice (a lost executor)
    // make the answer unusable, never silently wrong.
    let check = cluster.query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ({customers}) c WHERE {located}",
        customers = customers_sql(cluster)?,
        located = located.join(" OR "),
    ))?;
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
    let referrals = referral_touches(cluster, end)?;
    let common = format!(
        "WITH tp AS ({tp}), conv AS ({conv}), \
         firsts AS (SELECT cid, MIN(ts) AS first_ts FROM tp WHERE event <> 'visit' GROUP BY cid), \
         ref AS ({referrals}), \
         touches AS (SELECT cid, ts, 1 AS prio, channel, campaign, {key} AS k FROM tp WHERE event <> 'visit' \
                     UNION ALL SELECT cid, ts, 0 AS prio, {r} AS channel, '(referral)' AS campaign, {rk} AS k FROM ref)",
        r = text(REFERRAL),
        rk = text(&referral_key),
    );
    let horizon = format!("COALESCE({at_conv}, {end})");
    let window = i64::from(window_days) * DAY_US;
    let sep = text(&PATH_SEPARATOR.to_string());
    let paths = cluster.query(&format!(
        "{common}, \
         j AS (SELECT t.cid, t.ts, t.prio, t.channel, t.campaign, t.k FROM touches t LEFT JOIN conv cv ON t.cid = cv.cid \
               WHERE t.ts <= {horizon} AND t.ts >= {horizon} - {window}), \
         paths AS (SELECT cid, string_agg(k, {sep} ORDER BY ts, prio, channel, campaign) AS path FROM j GROUP BY cid), \
         who AS (SELECT DISTINCT cid FROM touches), \
         per AS (SELECT COALESCE(p.path, '') AS path, cv.day, cv.price FROM who w LEFT JOIN paths p ON w.cid = p.cid \
                 LEFT JOIN conv cv ON w.cid = cv.cid WHERE p.path IS NOT NULL OR cv.day IS NOT NULL) \
         SELECT path, CAST(SUM(CASE WHEN day IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS conversions, \
                CAST(SUM(CASE WHEN day IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS nulls, \
                CAST(SUM(COALESCE(price, 0.0)) AS DOUBLE) AS value \
         FROM per GROUP BY path ORDER BY path"
    ))?;
    // Keys: every key of any touchpoint (visits too) and the referral key when used; leads
    // by first touch ever; visits per key.
    let keys = cluster.query(&format!(
        "{common}, \
         allk AS (SELECT {key} AS k, channel FROM tp UNION ALL SELECT k, channel FROM touches WHERE prio = 0), \
         firsttouch AS (SELECT k, ROW_NUMBER() OVER (PARTITION BY cid ORDER BY ts, prio, channel, campaign) AS rn FROM touches), \
         leads AS (SELECT k, COUNT(*) AS n FROM firsttouch WHERE rn = 1 GROUP BY k), \
         visits AS (SELECT {key} AS k, COUNT(*) AS n FROM tp WHERE event = 'visit' GROUP BY {key}), \
         ks AS (SELECT k, MIN(channel) AS channel FROM allk GROUP BY k) \
         SELECT ks.k AS key, ks.channel AS channel, CAST(COALESCE(leads.n, 0) AS BIGINT) AS leads, \
                CAST(COALESCE(visits.n, 0) AS BIGINT) AS visits, \
                (SELECT MIN(ts) FROM ref) AS ref0 \
         FROM ks LEFT JOIN leads ON ks.k = leads.k LEFT JOIN visits ON ks.k = visits.k ORDER BY ks.k"
    ))?;
    // Independent counts, as a separate job: journeys and customers with a touch.
    let check = cluster.query(&format!(
        "{common}, \
         j AS (SELECT t.cid FROM touches t LEFT JOIN conv cv ON t.cid = cv.cid \
               WHERE t.ts <= {horizon} AND t.ts >= {horizon} - {window}), \
         who AS (SELECT DISTINCT cid FROM touches) \
         SELECT (SELECT CAST(COUNT(*) AS BIGINT) FROM who) AS who, \
                (SELECT CAST(COUNT(*) AS BIGINT) FROM who w LEFT JOIN conv cv ON w.cid = cv.cid \
                 WHERE cv.day IS NOT NULL OR w.cid IN (SELECT cid FROM j)) AS journeys"
    ))?;
    consistent(
        "journeys",
        sum_i64(&paths, "conversions")? + sum_i64(&paths, "nulls")?,
        first_i64(&check, "journeys")?,
    )?;
    consistent("customers with a touch", sum_i64(&keys, "leads")?, first_i64(&check, "who")?)?;
    let stats = key_stats(&keys)?;
    let ref0 = keys.column("ref0")?.i64()?.get(0);
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
         COALESCE({event}, 'lead') AS event FROM touchpoints",
        ts = micros("ts", &ts_ty)?,
        nc = text(NO_CAMPAIGN),
    );
    let conv = if cluster.has("deals") {
        "SELECT cid, day, price FROM (SELECT \"customer_id\" AS cid, CAST(CAST(\"signed_at\" AS INT) AS BIGINT) AS day, \
         \"price\" AS price, ROW_NUMBER() OVER (PARTITION BY \"customer_id\" ORDER BY \"signed_at\", \"deal_id\") AS rn \
         FROM deals WHERE COALESCE(\"status\", 'signed') = 'signed') x WHERE rn = 1"
            .to_string()
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS cid, CAST(NULL AS BIGINT) AS day, CAST(NULL AS DOUBLE) AS price WHERE false"
            .into()
    };
    Ok((tp, conv))
}

/// The referral touches as SQL: a referred customer's `created_at` (else just before their first
/// touch, else the data's `end`), kept when no touch of theirs comes earlier.
fn referral_touches(cluster: &Cluster, end: i64) -> Result<String, Error> {
    Ok(if cluster.has_column("customers", "referred_by")? {
        let created = if cluster.has_column("customers", "created_at")? {
            format!("CAST(CAST(c.\"created_at\" AS INT) AS BIGINT) * {DAY_US}")
        } else {
            "CAST(NULL AS BIGINT)".into()
        };
        format!(
            "SELECT cid, at AS ts FROM (SELECT c.\"customer_id\" AS cid, COALESCE({created}, f.first_ts - 1, {end}) AS at, \
             f.first_ts FROM customers c LEFT JOIN firsts f ON c.\"customer_id\" = f.cid WHERE c.\"referred_by\" IS NOT NULL) r \
             WHERE r.first_ts IS NULL OR r.at <= r.first_ts"
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS cid, CAST(NULL AS BIGINT) AS ts WHERE false".into()
    })
}

/// Per key: its name, channel, leads and visits, from the keys query.
fn key_stats(keys: &DataFrame) -> Result<Vec<KeyStats>, Error> {
    let names = keys.column("key")?.str()?;
    let channels = keys.column("channel")?.str()?;
    let leads = keys.column("leads")?.i64()?;
    let visits = keys.column("visits")?.i64()?;
    Ok((0..keys.height())
        .map(|i| KeyStats {
            key: names.get(i).unwrap_or_default().to_string(),
            channel: channels.get(i).unwrap_or_default().to_string(),
            leads: leads.get(i).unwrap_or(0) as u64,
            visits: visits.get(i).unwrap_or(0) as u64,
        })
        .collect())
}
