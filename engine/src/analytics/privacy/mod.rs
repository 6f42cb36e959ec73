//! Privacy (SPEC §3): who may ask what, the floor, and the public release.
//!
//! One policy covers every surface: the CLI works on the owner's own files (exact figures, the
//! floor of its `--k`); over HTTP an [`Access`] level decides what a request may see:
//! - [`Access::Admin`] and [`Access::Analyst`]: exact aggregates under the operator's floor
//!   ([`Policy::floor`]: a request's `k` may only raise it), which holds for every count and sum
//!   of a cell ([`floor`] for the cells, [`withhold_small`] and [`withhold_in_complement`] for
//!   the figures of fewer people), with segment filters that may not name an identifier, a
//!   coordinate or a near-unique attribute ([`Policy::check_segment`]);
//! - [`Access::Public`]: only the differentially private lattice of [`public`], nothing exact.

pub mod floor;
pub mod ledger;
pub mod noise;
pub mod public;
pub mod segments;

use polars::prelude::{col, lit, when, DataFrame, DataType, Expr, IntoLazy, NULL};
use serde::Serialize;

use crate::analytics::segment::Segment;
use crate::error::{Error, Result};
pub use ledger::Ledger;
pub use public::{PublicParams, PublicRelease};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// No token: differentially private figures only.
    Public,
    /// The analyst token: exact aggregates under the floor.
    Analyst,
    /// The admin token: uploads, and everything an analyst may read.
    Admin,
}

impl Access {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Analyst => "analyst",
            Access::Admin => "admin",
        }
    }

    /// Whether exact (floored) aggregates may be read.
    #[must_use]
    pub fn exact(self) -> bool {
        self >= Access::Analyst
    }
}

/// Customer columns that identify a person or a place: never named by a filter over the API.
pub const IDENTIFYING: [&str; 6] = ["customer_id", "referred_by", "home_lat", "home_lng", "work_lat", "work_lng"];

/// An attribute column whose distinct values exceed this share of the rows is an identifier
/// (a phone number, a name, an e-mail) as far as filters go.
pub const NEAR_UNIQUE_SHARE: f64 = 0.5;

/// The operator's privacy settings, applied to every request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// The lowest floor any request gets (`serve --min-k`).
    pub min_k: KFloor,
    pub public: PublicParams,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { min_k: KFloor::default(), public: PublicParams::default() }
    }
}

impl Policy {
    /// The floor of a request that asked for `requested`: the operator's, or higher.
    pub fn floor(&self, requested: Option<u32>) -> Result<KFloor> {
        match requested {
            None => Ok(self.min_k),
            Some(k) => Ok(KFloor::new(k)?.max(self.min_k)),
        }
    }

    /// Checks a segment filter sent by an API caller: it parses, and names no identifier,
    /// coordinate or near-unique column of `customers`.
    pub fn check_segment(&self, customers: &DataFrame, text: &str) -> Result<()> {
        let restricted = |name: &str| restricted_column(customers, name);
        Segment::parse_restricted(text, customers.schema(), &restricted).map(|_| ())
    }

    /// The filter an API caller's segment is answered with: checked as [`Self::check_segment`],
    /// less every condition that changes it by 1 to k-1 customers
    /// ([`Segment::without_low_effect`]). Runs over every customer: call it off the async
    /// runtime. Answers show the caller's text, never this one (which would tell what went).
    pub fn applied_segment(&self, customers: &DataFrame, text: &str, k: KFloor) -> Result<String> {
        let restricted = |name: &str| restricted_column(customers, name);
        Segment::without_low_effect(text, customers, &restricted, k.get())
    }

    /// [`Self::applied_segment`] and its members (a bit per customer), to find what it is
    /// answered as among the dataset's [`segments::AnsweredSegments`].
    pub fn applied_members(&self, customers: &DataFrame, text: &str, k: KFloor) -> Result<(String, segments::Members)> {
        let applied = self.applied_segment(customers, text, k)?;
        let segment = Segment::parse(&applied, customers.schema())?;
        let members = segments::Members::of(customers, Some(&segment))?;
        Ok((applied, members))
    }
}

/// Why a filter over the API may not name `name`, if it may not.
fn restricted_column(customers: &DataFrame, name: &str) -> Option<String> {
    if IDENTIFYING.contains(&name) {
        return Some(format!("'{name}' identifies a person or a place"));
    }
    let known = crate::io::schema::Table::Customers.columns().iter().any(|c| c.name == name);
    if known {
        return None;
    }
    let column = customers.column(name).ok()?;
    let n = column.len();
    if n < 2 || matches!(column.dtype(), DataType::Boolean) {
        return None;
    }
    let distinct = column.n_unique().ok()?;
    (distinct as f64 > NEAR_UNIQUE_SHARE * n as f64)
        .then(|| format!("'{name}' has a distinct value for most customers ({distinct} of {n}), so it identifies them"))
}

/// Minimum number of customers a published cell must hold (default 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct KFloor(u32);

impl KFloor {
    /// ```
    /// use custmap_engine::analytics::KFloor;
    /// assert_eq!(KFloor::new(5).unwrap().get(), 5);
    /// assert!(KFloor::new(0).is_err());
    /// ```
    pub fn new(k: u32) -> Result<Self> {
        if k >= 1 {
            Ok(KFloor(k))
        } else {
            Err(Error::bad_input("k must be at least 1"))
        }
    }

    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for KFloor {
    fn default() -> Self {
        KFloor(5)
    }
}

/// What the floor did to a table: cells folded into their parents, and cells dropped because
/// even the coarsest allowed parent held fewer than `k` customers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub merged: u64,
    pub dropped: u64,
    /// Published cells with some figure withheld (null) because it counts fewer than `k` people,
    /// or (over the API) differs by fewer than `k` from the same figure released before.
    pub withheld: u64,
    /// Cells dropped over the API because a figure they imply would differ from one released
    /// before by 1 to k-1 people (see [`ledger`]); 0 from the CLI.
    pub differencing: u64,
}

/// `figures` of `table` (those it has) set to null on the rows where `mask` holds, their types
/// kept: the one step every rule that withholds a row's figures ends with.
pub fn withhold_where(table: DataFrame, mask: &[bool], figures: &[&str]) -> Result<DataFrame> {
    if !mask.iter().any(|&m| m) {
        return Ok(table);
    }
    let schema = table.schema().clone();
    let mut table = table;
    table.with_column(polars::prelude::Column::new("__withhold".into(), mask))?;
    let exprs: Vec<Expr> = figures
        .iter()
        .filter_map(|f| schema.get(f).map(|t| (*f, t.clone())))
        .map(|(f, t)| when(col("__withhold")).then(lit(NULL)).otherwise(col(f)).cast(t).alias(f))
        .collect();
    Ok(table.lazy().with_columns(exprs).collect()?.drop("__withhold")?)
}

/// The floor on a table's rows: for each `(count, figures)` group, where the count column is
/// between 0 and `k` exclusive, its figures are withheld (null); a figure covered by several
/// groups is withheld when any of them is small. Groups whose count column the table lacks are
/// skipped, as are figures it lacks. Returns the table and how many rows had a figure withheld.
/// The rules of every table (referrals, attribution, funnel) are written where the table is.
pub fn withhold_small(table: DataFrame, k: u64, groups: &[(&str, &[&str])]) -> Result<(DataFrame, usize)> {
    if k <= 1 {
        // No count is 1 to k-1 (a fraction of one person's credit is not a smaller group).
        return Ok((table, 0));
    }
    let has = |c: &str| table.column(c).is_ok();
    let small = |c: &str| {
        let n = col(c).cast(DataType::Float64);
        n.clone().gt(lit(0.0)).and(n.lt(lit(k as f64)))
    };
    let groups: Vec<(&str, &[&str])> = groups.iter().copied().filter(|(c, _)| has(c)).collect();
    let any_small = groups.iter().fold(lit(false), |acc, (c, _)| acc.or(small(c)));
    let mut figures: Vec<&str> = groups.iter().flat_map(|(_, f)| f.iter().copied()).filter(|f| has(f)).collect();
    figures.sort_unstable();
    figures.dedup();
    let nulled: Vec<Expr> = figures
        .iter()
        .map(|f| {
            let covering =
                groups.iter().filter(|(_, fs)| fs.contains(f)).fold(lit(false), |acc, (c, _)| acc.or(small(c)));
            when(covering).then(lit(NULL)).otherwise(col(*f)).alias(*f)
        })
        .collect();
    let withheld = table.clone().lazy().select([any_small.alias("w")]).collect()?.column("w")?.bool()?.sum();
    let out = table.lazy().with_columns(nulled).collect()?;
    Ok((out, withheld.unwrap_or(0) as usize))
}

/// Rows `0..n` grouped by `key`.
pub fn groups_of<K: std::hash::Hash + Eq>(n: usize, key: impl Fn(usize) -> K) -> Vec<Vec<usize>> {
    let mut groups: std::collections::HashMap<K, Vec<usize>> = std::collections::HashMap::new();
    for i in 0..n {
        groups.entry(key(i)).or_default().push(i);
    }
    groups.into_values().collect()
}

/// Within each group of rows (indices into `raw` and `shown`, the same rows before and after
/// the floor), while the rows whose `count` is withheld hold 1 to k-1 between them, the shown
/// row of fewest is withheld too, with its `figures`.
pub fn withhold_in_complement(
    raw: &DataFrame,
    shown: DataFrame,
    groups: &[Vec<usize>],
    k: f64,
    (count, figures): (&str, &[&str]),
) -> Result<DataFrame> {
    let floats = |df: &DataFrame| -> Result<Vec<Option<f64>>> {
        Ok(df.column(count)?.cast(&DataType::Float64)?.f64()?.iter().collect())
    };
    let (truth, now) = (floats(raw)?, floats(&shown)?);
    let mut hide = vec![false; raw.height()];
    for rows in groups {
        let mut hidden: f64 = rows.iter().filter(|&&i| now[i].is_none()).map(|&i| truth[i].unwrap_or(0.0)).sum();
        while hidden > 1e-9 && hidden < k {
            let next = rows
                .iter()
                .copied()
                .filter(|&i| now[i].is_some() && !hide[i])
                .min_by(|&a, &b| truth[a].unwrap_or(0.0).total_cmp(&truth[b].unwrap_or(0.0)));
            let Some(i) = next else { break };
            hide[i] = true;
            hidden += truth[i].unwrap_or(0.0);
        }
    }
    withhold_where(shown, &hide, figures)
}
