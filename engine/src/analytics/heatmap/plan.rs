//! The heatmap's row reduction (SPEC §3), described once and run by two executors.
//!
//! The description:
//! - **scan** the customers located by the anchors of a [`Location`] (some anchor's
//!   coordinates given; ingest guarantees latitude and longitude come in pairs);
//! - **join** each with their signed deals ([`SIGNED`]): how many, their summed price, their
//!   largest price ([`Input`]);
//! - **key** by the H3 cells of the anchors at a resolution (a pair of cells in `both` mode);
//! - **sum** the figures [`sums`], each a [`Value`] of one row.
//!
//! The executors:
//! - the local reduction (`super::reduce`) compiles the figures once per build into a table of
//!   what each one is for every class of row ([`Compiled`]: in the segment or not, a buyer or
//!   not, with a budget or not, with a priced deal or not), so a row reads its class and adds
//!   the table's picks: no row walks an expression;
//! - the cluster runs the SQL that [`sql`] renders from the same description, on DataFusion.

use std::fmt::Write as _;

use super::{Anchor, Location};
use crate::error::{Error, Result};

/// A deal counts for the heatmap when its status is this (ingest reads a missing status so).
pub use crate::io::schema::SIGNED;

/// A figure of one customer row, from the row itself or from its signed deals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The customer's stated budget; missing when not stated.
    Budget,
    /// How many signed deals; missing for a customer without one.
    SignedDeals,
    /// The signed deals' summed price; missing without a signed deal.
    Revenue,
    /// The largest signed price; missing without a priced signed deal.
    LargestPrice,
}

impl Input {
    /// The column holding the input in the SQL relation [`sql`] builds.
    fn column(self) -> &'static str {
        match self {
            Input::Budget => "CAST(\"budget\" AS DOUBLE)",
            Input::SignedDeals => "__deals",
            Input::Revenue => "__revenue",
            Input::LargestPrice => "__max_price",
        }
    }
}

/// A yes/no property of a customer row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// The customer is in the segment (everyone when there is no segment).
    InSegment,
    /// The customer has a signed deal.
    Bought,
}

/// A number computed from one customer row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Input(Input),
    /// The first value if the test holds, else the second.
    If(Test, Box<Value>, Box<Value>),
    /// The first of the values that is given (SQL's COALESCE); missing if none is.
    FirstGiven(Vec<Value>),
}

/// Whether a sum is a count or an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
}

fn when(test: Test, then: Value, otherwise: Value) -> Value {
    Value::If(test, Box::new(then), Box::new(otherwise))
}

/// The sums carried from customers to cells, in output order: name, kind, figure per row.
#[must_use]
pub fn sums() -> [(&'static str, Kind, Value); 6] {
    use Value::{FirstGiven, Float, Int};
    [
        ("customers", Kind::Int, Int(1)),
        ("prospects", Kind::Int, when(Test::InSegment, Int(1), Int(0))),
        ("buyers", Kind::Int, when(Test::Bought, Int(1), Int(0))),
        ("deals", Kind::Int, FirstGiven(vec![Value::Input(Input::SignedDeals), Int(0)])),
        ("revenue", Kind::Float, FirstGiven(vec![Value::Input(Input::Revenue), Float(0.0)])),
        // A prospect's purchasing power: the stated budget, else the largest signed price.
        (
            "purchasing_power",
            Kind::Float,
            when(
                Test::InSegment,
                FirstGiven(vec![Value::Input(Input::Budget), Value::Input(Input::LargestPrice), Float(0.0)]),
                Float(0.0),
            ),
        ),
    ]
}

/// The sums' names, in output order.
pub const NAMES: [&str; 6] = ["customers", "prospects", "buyers", "deals", "revenue", "purchasing_power"];

impl Value {
    /// The value as SQL over the relation [`sql`] builds; `segment` is the segment filter's SQL.
    fn sql(&self, segment: &str) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Float(x) => format!("{x:?}"),
            Value::Input(i) => i.column().to_string(),
            Value::If(test, a, b) => {
                let cond = match test {
                    Test::InSegment => format!("({segment})"),
                    Test::Bought => format!("({} IS NOT NULL)", Input::SignedDeals.column()),
                };
                format!("CASE WHEN {cond} THEN {} ELSE {} END", a.sql(segment), b.sql(segment))
            }
            Value::FirstGiven(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| p.sql(segment)).collect();
                format!("COALESCE({})", parts.join(", "))
            }
        }
    }

    /// What the value is for rows of `class`: a constant, an input (given for such rows), or
    /// missing.
    fn pick(&self, class: Class) -> Pick {
        match self {
            Value::Int(n) => Pick::Int(*n),
            Value::Float(x) => Pick::Float(*x),
            Value::Input(i) if class.given(*i) => Pick::Input(*i),
            Value::Input(_) => Pick::Missing,
            Value::If(test, a, b) => {
                if class.holds(*test) {
                    a.pick(class)
                } else {
                    b.pick(class)
                }
            }
            Value::FirstGiven(parts) => {
                parts.iter().map(|p| p.pick(class)).find(|p| *p != Pick::Missing).unwrap_or(Pick::Missing)
            }
        }
    }
}

/// The class of a customer row: everything a [`Value`]'s shape can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Class {
    pub in_segment: bool,
    pub bought: bool,
    pub budget_given: bool,
    pub price_given: bool,
}

impl Class {
    const COUNT: usize = 16;

    fn index(self) -> usize {
        usize::from(self.in_segment)
            | usize::from(self.bought) << 1
            | usize::from(self.budget_given) << 2
            | usize::from(self.price_given) << 3
    }

    fn of_index(i: usize) -> Class {
        Class { in_segment: i & 1 != 0, bought: i & 2 != 0, budget_given: i & 4 != 0, price_given: i & 8 != 0 }
    }

    fn holds(self, test: Test) -> bool {
        match test {
            Test::InSegment => self.in_segment,
            Test::Bought => self.bought,
        }
    }

    fn given(self, input: Input) -> bool {
        match input {
            Input::Budget => self.budget_given,
            Input::SignedDeals | Input::Revenue => self.bought,
            Input::LargestPrice => self.bought && self.price_given,
        }
    }
}

/// A figure resolved for one class of rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    Int(i64),
    Float(f64),
    Input(Input),
    /// Missing: adds nothing (SQL's SUM skips nulls).
    Missing,
}

/// One customer row's inputs, as the local reduction has them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    pub in_segment: bool,
    pub budget: Option<f64>,
    /// The signed deals' count and summed price; `None` for a customer without one.
    pub bought: Option<(i64, f64)>,
    pub largest_price: Option<f64>,
}

impl Row {
    fn class(&self) -> Class {
        Class {
            in_segment: self.in_segment,
            bought: self.bought.is_some(),
            budget_given: self.budget.is_some(),
            price_given: self.largest_price.is_some(),
        }
    }

    fn float(&self, input: Input) -> f64 {
        match input {
            Input::Budget => self.budget.unwrap_or(0.0),
            Input::SignedDeals => self.bought.map_or(0.0, |(n, _)| n as f64),
            Input::Revenue => self.bought.map_or(0.0, |(_, v)| v),
            Input::LargestPrice => self.largest_price.unwrap_or(0.0),
        }
    }
}

/// The figures compiled for every class of row (see the module's doc).
#[derive(Debug, Clone)]
pub struct Compiled {
    picks: [[Pick; 6]; Class::COUNT],
}

impl Compiled {
    /// Compiles [`sums`], checking that each count sum only ever picks whole numbers.
    pub fn new() -> Result<Compiled> {
        let sums = sums();
        let mut picks = [[Pick::Missing; 6]; Class::COUNT];
        for (i, row) in picks.iter_mut().enumerate() {
            for (slot, (name, kind, value)) in row.iter_mut().zip(&sums) {
                let pick = value.pick(Class::of_index(i));
                let whole = matches!(pick, Pick::Int(_) | Pick::Input(Input::SignedDeals) | Pick::Missing);
                if *kind == Kind::Int && !whole {
                    return Err(Error::Internal(format!("the count '{name}' would sum {pick:?}")));
                }
                *slot = pick;
            }
        }
        Ok(Compiled { picks })
    }

    /// The figures of one row, in the order of [`sums`]: counts, then amounts.
    #[inline]
    pub fn figures(&self, row: &Row) -> ([i64; 4], [f64; 2]) {
        let picks = &self.picks[row.class().index()];
        let int = |p: Pick| match p {
            Pick::Int(n) => n,
            Pick::Input(Input::SignedDeals) => row.bought.map_or(0, |(n, _)| n),
            _ => 0,
        };
        let float = |p: Pick| match p {
            Pick::Int(n) => n as f64,
            Pick::Float(x) => x,
            Pick::Input(i) => row.float(i),
            Pick::Missing => 0.0,
        };
        ([int(picks[0]), int(picks[1]), int(picks[2]), int(picks[3])], [float(picks[4]), float(picks[5])])
    }
}

/// The name a cell column of an anchor has in reduced cells (`home_cell`, `work_cell`).
#[must_use]
pub fn cell_column(lat: &str) -> &'static str {
    if lat == Anchor::HOME.lat {
        "home_cell"
    } else {
        "work_cell"
    }
}

/// Where a cluster's tables are, and how it computes cells.
pub struct SqlSources<'a> {
    /// A relation of the customers with every known column (absent ones as typed nulls).
    pub customers: &'a str,
    /// A relation of the deals with every known column (absent ones as typed nulls), if any.
    pub deals: Option<&'a str>,
    /// The SQL function computing a cell: `f(lat DOUBLE, lng DOUBLE, res INT) -> UBIGINT`.
    pub cell_fn: &'a str,
}

/// The reduction as SQL: one row per cell (pair) at `res` with the [`sums`]; `segment` is the
/// segment filter's SQL (`true` for everyone). Also returns the SQL of an independent count
/// of the located customers, to check the answer against.
#[must_use]
pub fn sql(location: Location, segment: &str, res: u8, from: &SqlSources<'_>) -> (String, String) {
    let deals = if let Some(deals) = from.deals {
        format!(
            "SELECT \"customer_id\" AS __cid, COUNT(*) AS {}, SUM(CAST(\"price\" AS DOUBLE)) AS {}, \
             MAX(CAST(\"price\" AS DOUBLE)) AS {} \
             FROM ({deals}) deals WHERE COALESCE(\"status\", '{SIGNED}') = '{SIGNED}' GROUP BY \"customer_id\"",
            Input::SignedDeals.column(),
            Input::Revenue.column(),
            Input::LargestPrice.column(),
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS __cid, CAST(NULL AS BIGINT) AS __deals, CAST(NULL AS DOUBLE) AS __revenue, \
         CAST(NULL AS DOUBLE) AS __max_price WHERE false"
            .to_string()
    };
    let anchors = location.anchors();
    let quoted = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    let mut figures = String::new();
    for a in anchors {
        let _ = write!(
            figures,
            "{}(CAST({} AS DOUBLE), CAST({} AS DOUBLE), {res}) AS {}, ",
            from.cell_fn,
            quoted(a.lat),
            quoted(a.lng),
            cell_column(a.lat)
        );
    }
    let sums = sums();
    let values: Vec<String> = sums.iter().map(|(name, _, v)| format!("{} AS {name}", v.sql(segment))).collect();
    figures.push_str(&values.join(", "));
    let located: Vec<String> = anchors.iter().map(|a| format!("{} IS NOT NULL", quoted(a.lat))).collect();
    let located = located.join(" OR ");
    let keys: Vec<&str> = anchors.iter().map(|a| cell_column(a.lat)).collect();
    let keys = keys.join(", ");
    let totals: Vec<String> = sums
        .iter()
        .map(|(name, kind, _)| {
            let ty = if *kind == Kind::Int { "BIGINT" } else { "DOUBLE" };
            format!("CAST(SUM({name}) AS {ty}) AS {name}")
        })
        .collect();
    let reduction = format!(
        "WITH d AS ({deals}), \
         c AS (SELECT cu.*, d.__deals, d.__revenue, d.__max_price FROM ({customers}) cu LEFT JOIN d ON cu.\"customer_id\" = d.__cid), \
         r AS (SELECT {figures} FROM c WHERE {located}) \
         SELECT {keys}, {totals} FROM r GROUP BY {keys}",
        customers = from.customers,
        totals = totals.join(", "),
    );
    let check = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ({}) c WHERE {located}", from.customers);
    (reduction, check)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures straight from the description, walking the values (the reference).
    fn walk(v: &Value, row: &Row) -> Option<f64> {
        match v {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            Value::Input(i) => row.class().given(*i).then(|| row.float(*i)),
            Value::If(t, a, b) => {
                if row.class().holds(*t) {
                    walk(a, row)
                } else {
                    walk(b, row)
                }
            }
            Value::FirstGiven(parts) => parts.iter().find_map(|p| walk(p, row)),
        }
    }

    #[test]
    fn compiled_figures_equal_the_description_for_every_class_of_row() {
        let compiled = Compiled::new().unwrap();
        for i in 0..Class::COUNT {
            let c = Class::of_index(i);
            if c.price_given && !c.bought {
                continue; // no such row: a largest price comes from a signed deal
            }
            let row = Row {
                in_segment: c.in_segment,
                budget: c.budget_given.then_some(2_500_000.0),
                bought: c.bought.then_some((3, 7_000_000.0)),
                largest_price: c.price_given.then_some(4_000_000.0),
            };
            let (ints, floats) = compiled.figures(&row);
            let got = [ints[0] as f64, ints[1] as f64, ints[2] as f64, ints[3] as f64, floats[0], floats[1]];
            for ((name, _, value), got) in sums().iter().zip(got) {
                assert_eq!(walk(value, &row).unwrap_or(0.0), got, "{name} for {c:?}");
            }
        }
        assert_eq!(sums().map(|s| s.0), NAMES);
    }

    /// The figures as the reduction computed them before the description existed (SPEC §3's
    /// words, written out by hand): an independent reference for every class of row.
    #[test]
    fn compiled_figures_equal_the_hand_written_rule() {
        let compiled = Compiled::new().unwrap();
        for bits in 0..16u8 {
            let (p, bought, has_budget, priced) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
            if priced && !bought {
                continue;
            }
            let row = Row {
                in_segment: p,
                budget: has_budget.then_some(1_250_000.5),
                bought: bought.then_some((2, 6_100_000.25)),
                largest_price: priced.then_some(3_300_000.75),
            };
            let mut pp = if p { row.budget.unwrap_or(0.0) } else { 0.0 };
            if bought && p && row.budget.is_none() {
                pp += row.largest_price.unwrap_or(0.0);
            }
            let (deals, revenue) = row.bought.unwrap_or((0, 0.0));
            let want = ([1, i64::from(p), i64::from(bought), deals], [revenue, pp]);
            let got = compiled.figures(&row);
            assert_eq!((got.0, got.1.map(f64::to_bits)), (want.0, want.1.map(f64::to_bits)), "{row:?}");
        }
    }

    #[test]
    fn purchasing_power_is_the_budget_else_the_largest_price_for_prospects_only() {
        let compiled = Compiled::new().unwrap();
        let buyer = Row { in_segment: true, budget: None, bought: Some((2, 9e6)), largest_price: Some(5e6) };
        assert_eq!(compiled.figures(&buyer), ([1, 1, 1, 2], [9e6, 5e6]));
        let stated = Row { budget: Some(3e6), ..buyer };
        assert_eq!(compiled.figures(&stated).1, [9e6, 3e6]);
        let outside = Row { in_segment: false, ..stated };
        assert_eq!(compiled.figures(&outside), ([1, 0, 1, 2], [9e6, 0.0]));
        let nobody = Row::default();
        assert_eq!(compiled.figures(&nobody), ([1, 0, 0, 0], [0.0, 0.0]));
    }

    #[test]
    fn sql_renders_every_figure_and_the_located_filter() {
        let from =
            SqlSources { customers: "SELECT * FROM customers", deals: Some("SELECT * FROM deals"), cell_fn: "h3_cell" };
        let (sql, check) = sql(Location::Both, "\"budget\" >= 1", 9, &from);
        for name in NAMES {
            assert!(sql.contains(&format!("AS {name}")), "{name}: {sql}");
        }
        assert!(
            sql.contains(
                "CASE WHEN (\"budget\" >= 1) THEN COALESCE(CAST(\"budget\" AS DOUBLE), __max_price, 0.0) ELSE 0.0 END"
            ),
            "{sql}"
        );
        assert!(sql.contains("GROUP BY home_cell, work_cell"), "{sql}");
        assert!(check.ends_with("WHERE \"home_lat\" IS NOT NULL OR \"work_lat\" IS NOT NULL"), "{check}");
    }
}
