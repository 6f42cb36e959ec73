//! Segment filters: a SQL boolean expression over customer columns, compiled to a polars `Expr`.
//!
//! Only a whitelist of syntax is accepted: column names, literals, comparisons, arithmetic,
//! AND/OR/NOT, IS [NOT] NULL, [NOT] IN (literals), [NOT] BETWEEN, and LIKE with a leading or
//! trailing `%`. Anything else (function calls, subqueries, table references) is refused, so a
//! filter can never read files, call table functions or run anything. Column names and operand
//! types are checked against the customers' schema before anything runs.

use chrono::NaiveDate;
use polars::prelude::{self as pl, lit, DataType, Expr, NamedFrom, Schema};
use sqlparser::ast::{BinaryOperator, Expr as Sql, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::error::{Error, Result};

/// A parsed, checked segment filter.
#[derive(Debug, Clone)]
pub struct Segment {
    pub text: String,
    pub expr: Expr,
    /// The same condition as standard SQL for engines other than polars (the cluster's
    /// DataFusion): quoted column names, float arithmetic, typed date literals, and
    /// `COALESCE(.., false)` so a null condition is false, as in `expr`.
    pub sql: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Num,
    Str,
    Bool,
    Date,
    Null,
    Other,
}

impl Ty {
    fn of(dtype: &DataType) -> Ty {
        match dtype {
            d if d.is_primitive_numeric() => Ty::Num,
            DataType::String => Ty::Str,
            DataType::Boolean => Ty::Bool,
            DataType::Date | DataType::Datetime(..) => Ty::Date,
            DataType::Null => Ty::Null,
            _ => Ty::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Num => "a number",
            Ty::Str => "text",
            Ty::Bool => "true/false",
            Ty::Date => "a date",
            Ty::Null => "NULL",
            Ty::Other => "an unsupported type",
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::bad_input(format!("bad segment filter (where): {}", msg.into()))
}

impl Segment {
    /// Parses `text` and checks it against `schema` (the customers' columns).
    ///
    /// ```
    /// use custmap_engine::analytics::segment::Segment;
    /// use polars::prelude::{DataType, Field, Schema};
    /// let schema = Schema::from_iter([Field::new("budget".into(), DataType::Float64)]);
    /// assert!(Segment::parse("budget >= 3000000", &schema).is_ok());
    /// assert!(Segment::parse("read_csv('x') > 1", &schema).is_err());
    /// assert!(Segment::parse("salary > 1", &schema).is_err());
    /// ```
    pub fn parse(text: &str, schema: &Schema) -> Result<Segment> {
        Self::parse_restricted(text, schema, &|_| None)
    }

    /// Every word of `text` that could name a column (identifiers, quoted or not, and keywords):
    /// a superset of the columns the filter reads, so that a caller can keep only those customer
    /// columns. Text that does not tokenize has none (and is refused when parsed).
    ///
    /// ```
    /// use custmap_engine::analytics::segment::Segment;
    /// assert_eq!(Segment::words("budget >= 3 AND \"home city\" = 'x'"), ["budget", "AND", "home city"]);
    /// ```
    #[must_use]
    pub fn words(text: &str) -> Vec<String> {
        let dialect = GenericDialect {};
        let Ok(tokens) = sqlparser::tokenizer::Tokenizer::new(&dialect, text).tokenize() else { return Vec::new() };
        tokens
            .into_iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w.value),
                _ => None,
            })
            .collect()
    }

    /// [`Self::parse`], refusing the columns for which `restricted` gives a reason. Bounded:
    /// at most [`MAX_FILTER_CHARS`] characters, [`MAX_OPERATORS`] boolean operators and
    /// [`MAX_IN_LIST`] values in one `IN` list, so no filter can exhaust the stack or the CPU.
    pub fn parse_restricted(
        text: &str,
        schema: &Schema,
        restricted: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Segment> {
        if text.len() > MAX_FILTER_CHARS {
            return Err(bad(format!("the filter is {} characters long; the limit is {MAX_FILTER_CHARS}", text.len())));
        }
        let dialect = GenericDialect {};
        let tokens = sqlparser::tokenizer::Tokenizer::new(&dialect, text).tokenize().map_err(|e| bad(e.to_string()))?;
        let operators = tokens
            .iter()
            .filter(|t| matches!(t, Token::Word(w) if ["AND", "OR", "NOT"].contains(&w.value.to_ascii_uppercase().as_str())))
            .count();
        if operators > MAX_OPERATORS {
            return Err(bad(format!(
                "the filter has {operators} AND/OR/NOT operators; the limit is {MAX_OPERATORS} (use IN (...) for lists of values)"
            )));
        }
        // Every other operator (arithmetic, comparison, `||`, and the keyword ones: `IS`, `IN`,
        // `LIKE`, `BETWEEN`, ...) nests the expression one level deeper too: a flat chain of them
        // (`x IS NULL IS NULL ...`) is as deep as it is long. A minus opening a list value or a
        // parenthesis is a negative literal (nested signs are bounded by the parser's recursion).
        let mut others = 0usize;
        let mut previous: Option<&Token> = None;
        for t in &tokens {
            let counted = match t {
                Token::Word(w) => KEYWORD_OPERATORS.contains(&w.value.to_ascii_uppercase().as_str()),
                Token::Minus => !matches!(previous, Some(Token::Comma | Token::LParen) | None),
                Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::Whitespace(_)
                | Token::Comma
                | Token::LParen
                | Token::RParen
                | Token::EOF => false,
                _ => true,
            };
            others += usize::from(counted);
            if !matches!(t, Token::Whitespace(_)) {
                previous = Some(t);
            }
        }
        if others > MAX_OTHER_OPERATORS {
            return Err(bad(format!(
                "the filter has {others} arithmetic or comparison operators; the limit is {MAX_OTHER_OPERATORS}"
            )));
        }
        let mut parser =
            Parser::new(&dialect).with_recursion_limit(64).try_with_sql(text).map_err(|e| bad(e.to_string()))?;
        let ast = parser.parse_expr().map_err(|e| bad(e.to_string()))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(bad(format!("unexpected '{}' after the expression", next.token)));
        }
        Self::from_ast(text, &ast, schema, restricted)
    }

    fn from_ast(
        text: &str,
        ast: &Sql,
        schema: &Schema,
        restricted: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Segment> {
        let compiler = Compiler { schema, restricted, named: std::cell::Cell::new(false) };
        let Part { expr, ty, sql } = compiler.compile(ast)?;
        if !matches!(ty, Ty::Bool | Ty::Null) {
            return Err(bad(format!("the expression is {}, not a true/false condition", ty.name())));
        }
        let mut expr = expr.fill_null(lit(false));
        if !compiler.named.get() {
            // A constant condition (`1 = 1`) holds for every row or none: give it the rows' shape,
            // from the id (the one column every load of customers keeps) where there is one.
            let id = schema.get("customer_id").map(|_| pl::PlSmallStr::from_static("customer_id"));
            if let Some(shape) = id.or_else(|| schema.iter_names().next().cloned()) {
                let any_row = pl::col(shape.clone()).is_null().or(pl::col(shape).is_not_null());
                expr = any_row.and(expr);
            }
        }
        Ok(Segment { text: text.to_string(), expr, sql: format!("COALESCE({sql}, false)") })
    }
}

impl Segment {
    /// A segment filter as given (a CLI `--where`, an API `where`): trimmed, and `None` when
    /// blank, which means everyone. The one rule every surface and engine path applies before
    /// parsing, so `" budget > 1 "` and `"budget > 1"` are one request (and one cache key).
    ///
    /// ```
    /// use custmap_engine::analytics::segment::Segment;
    /// assert_eq!(Segment::given(Some("  budget > 1 ")), Some("budget > 1"));
    /// assert_eq!(Segment::given(Some("  ")), None);
    /// assert_eq!(Segment::given(None), None);
    /// ```
    #[must_use]
    pub fn given(text: Option<&str>) -> Option<&str> {
        text.map(str::trim).filter(|w| !w.is_empty())
    }
}

/// Rounds of low-effect detection before a filter is refused as made of too many of them.
pub const MAX_LOW_EFFECT_ROUNDS: usize = 16;

impl Segment {
    /// Low-effect detection, against isolation inside a larger segment: `(budget >= 3000000) OR
    /// (customer born on ... in project P2)` holds thousands of people, so it clears every floor,
    /// yet it differs from the first condition by one person, and comparing the two answers
    /// tells about them. So each condition joined by AND or OR (at any depth) whose removal would
    /// change whether 1 to k-1 of `customers` are in the segment is removed, one at a time, until
    /// every condition left changes none or at least k (at most [`MAX_LOW_EFFECT_ROUNDS`]
    /// removals; more is refused). Returns the filter as it will be applied (the text
    /// unchanged when nothing was removed). The answer is then the same whether or not the
    /// person matched the removed condition, and which conditions went is not told.
    pub fn without_low_effect(
        text: &str,
        customers: &polars::prelude::DataFrame,
        restricted: &dyn Fn(&str) -> Option<String>,
        k: u32,
    ) -> Result<String> {
        use polars::prelude::IntoLazy;
        let schema = customers.schema();
        Self::parse_restricted(text, schema, restricted)?;
        let dialect = GenericDialect {};
        let mut ast = Parser::new(&dialect)
            .with_recursion_limit(64)
            .try_with_sql(text)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| bad(e.to_string()))?;
        let mut changed = false;
        for round in 0..=MAX_LOW_EFFECT_ROUNDS {
            let mut paths = Vec::new();
            removable(&ast, &mut Vec::new(), &mut paths);
            if paths.is_empty() {
                break;
            }
            let full = Self::from_ast(text, &ast, schema, restricted)?.expr;
            let mut exprs = Vec::with_capacity(paths.len());
            for (i, path) in paths.iter().enumerate() {
                let reduced = Self::from_ast(text, &remove(&ast, path), schema, restricted)?.expr;
                let (a, b) = (full.clone().fill_null(lit(false)), reduced.fill_null(lit(false)));
                let moved = a.neq(b).cast(DataType::UInt32).sum().alias(format!("__e{i}"));
                exprs.push(moved);
            }
            let effects = customers.clone().lazy().select(exprs).collect()?;
            let low = paths.iter().enumerate().find(|(i, _)| {
                let n = effects.column(&format!("__e{i}")).ok().and_then(|c| c.u32().ok()?.get(0)).unwrap_or(0);
                n > 0 && n < k
            });
            let Some((_, path)) = low else { break };
            if round == MAX_LOW_EFFECT_ROUNDS {
                return Err(bad(format!(
                    "the filter has more than {MAX_LOW_EFFECT_ROUNDS} conditions that each change the segment by fewer than {k} customers (the privacy floor); simplify it"
                )));
            }
            ast = remove(&ast, path);
            changed = true;
        }
        Ok(if changed { ast.to_string() } else { text.to_string() })
    }
}

/// The paths (child indices from the root) of every condition joined by AND or OR.
fn removable(ast: &Sql, path: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
    match ast {
        Sql::Nested(inner) => {
            path.push(0);
            removable(inner, path, out);
            path.pop();
        }
        Sql::UnaryOp { op: UnaryOperator::Not, expr } => {
            path.push(0);
            removable(expr, path, out);
            path.pop();
        }
        Sql::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            for (i, child) in [(0u8, left), (1, right)] {
                path.push(i);
                out.push(path.clone());
                removable(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `ast` with the condition at `path` taken out of its AND / OR (the other side stands alone).
fn remove(ast: &Sql, path: &[u8]) -> Sql {
    let Some((&step, rest)) = path.split_first() else { return ast.clone() };
    match ast {
        Sql::Nested(inner) => Sql::Nested(Box::new(remove(inner, rest))),
        Sql::UnaryOp { op, expr } => Sql::UnaryOp { op: op.clone(), expr: Box::new(remove(expr, rest)) },
        Sql::BinaryOp { left, op, right } if rest.is_empty() => {
            let _ = op;
            if step == 0 {
                (**right).clone()
            } else {
                (**left).clone()
            }
        }
        Sql::BinaryOp { left, op, right } => {
            let (l, r) = if step == 0 {
                (remove(left, rest), (**right).clone())
            } else {
                ((**left).clone(), remove(right, rest))
            };
            Sql::BinaryOp { left: Box::new(l), op: op.clone(), right: Box::new(r) }
        }
        other => other.clone(),
    }
}

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_CHARS: usize = 16_384;
/// Most AND / OR / NOT operators in one filter.
pub const MAX_OPERATORS: usize = 64;
/// Keywords that join two expressions (or take one and return another) and so nest like operators.
const KEYWORD_OPERATORS: &[&str] = &[
    "IS", "IN", "LIKE", "ILIKE", "SIMILAR", "BETWEEN", "REGEXP", "RLIKE", "GLOB", "COLLATE", "AT", "ESCAPE", "DIV",
    "XOR", "MATCH", "OVERLAPS", "MEMBER", "OPERATOR",
];

/// Most other operators (arithmetic, comparison, concatenation, `IS`, `IN`, `LIKE`, ...) in one filter.
pub const MAX_OTHER_OPERATORS: usize = 128;
/// Most values in one `IN (...)` list.
pub const MAX_IN_LIST: usize = 2_000;

/// A compiled piece of a filter: the polars expression, its type and its SQL text.
struct Part {
    expr: Expr,
    ty: Ty,
    sql: String,
}

fn part(expr: Expr, ty: Ty, sql: String) -> Part {
    Part { expr, ty, sql }
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct Compiler<'a> {
    schema: &'a Schema,
    /// Why a column may not be named, if it may not.
    restricted: &'a dyn Fn(&str) -> Option<String>,
    /// Whether the filter names any column.
    named: std::cell::Cell<bool>,
}

impl Compiler<'_> {
    fn column(&self, name: &str) -> Result<Part> {
        if name.starts_with("__") {
            return Err(bad(format!("unknown column '{name}'")));
        }
        if self.schema.get(name).is_some() {
            if let Some(why) = (self.restricted)(name) {
                return Err(bad(format!("{why}; filters here may not name it")));
            }
        }
        self.named.set(true);
        match self.schema.get(name) {
            Some(dtype) => Ok(part(pl::col(name), Ty::of(dtype), format!("\"{}\"", name.replace('"', "\"\"")))),
            None => {
                let known: Vec<&str> =
                    self.schema.iter_names().map(|n| n.as_str()).filter(|n| !n.starts_with("__")).collect();
                Err(bad(format!("unknown column '{name}' (customer columns: {})", known.join(", "))))
            }
        }
    }

    fn compile(&self, ast: &Sql) -> Result<Part> {
        match ast {
            Sql::Identifier(ident) => self.column(&ident.value),
            Sql::Nested(inner) => self.compile(inner),
            Sql::Value(v) => literal(&v.value),
            Sql::IsNull(e) => {
                let p = self.compile(e)?;
                Ok(part(p.expr.is_null(), Ty::Bool, format!("({} IS NULL)", p.sql)))
            }
            Sql::IsNotNull(e) => {
                let p = self.compile(e)?;
                Ok(part(p.expr.is_not_null(), Ty::Bool, format!("({} IS NOT NULL)", p.sql)))
            }
            Sql::UnaryOp { op, expr } => {
                let p = self.compile(expr)?;
                match op {
                    UnaryOperator::Not => Ok(part(
                        self.expect(p.expr, p.ty, Ty::Bool, "NOT")?.not(),
                        Ty::Bool,
                        format!("(NOT {})", p.sql),
                    )),
                    UnaryOperator::Minus => Ok(part(
                        lit(0.0) - self.expect(p.expr, p.ty, Ty::Num, "-")?,
                        Ty::Num,
                        format!("(0.0 - CAST({} AS DOUBLE))", p.sql),
                    )),
                    UnaryOperator::Plus => Ok(part(self.expect(p.expr, p.ty, Ty::Num, "+")?, Ty::Num, p.sql)),
                    other => Err(bad(format!("operator {other} is not allowed"))),
                }
            }
            Sql::BinaryOp { left, op, right } => self.binary(left, op, right),
            Sql::Between { expr, negated, low, high } => {
                let ge = self.binary(expr, &BinaryOperator::GtEq, low)?;
                let le = self.binary(expr, &BinaryOperator::LtEq, high)?;
                let both = ge.expr.and(le.expr);
                let sql = format!("({} AND {})", ge.sql, le.sql);
                Ok(if *negated {
                    part(both.not(), Ty::Bool, format!("(NOT {sql})"))
                } else {
                    part(both, Ty::Bool, sql)
                })
            }
            Sql::InList { expr, list, negated } => {
                if list.is_empty() {
                    return Err(bad("IN () needs at least one value"));
                }
                if list.len() > MAX_IN_LIST {
                    return Err(bad(format!("IN has {} values; the limit is {MAX_IN_LIST}", list.len())));
                }
                if let Some(p) = self.in_set(expr, list, *negated)? {
                    return Ok(p);
                }
                let mut any = lit(false);
                let mut sql = Vec::with_capacity(list.len());
                for item in list {
                    let eq = self.binary(expr, &BinaryOperator::Eq, item)?;
                    any = any.or(eq.expr);
                    sql.push(eq.sql);
                }
                let sql = format!("(false OR {})", sql.join(" OR "));
                Ok(if *negated { part(any.not(), Ty::Bool, format!("(NOT {sql})")) } else { part(any, Ty::Bool, sql) })
            }
            Sql::Like { negated, any: false, expr, pattern, escape_char: None } => {
                let p = self.compile(expr)?;
                let e = self.expect(p.expr, p.ty, Ty::Str, "LIKE")?;
                let Sql::Value(v) = pattern.as_ref() else {
                    return Err(bad("LIKE needs a quoted pattern"));
                };
                let Value::SingleQuotedString(pat) = &v.value else {
                    return Err(bad("LIKE needs a quoted pattern"));
                };
                let (m, sql) = like(e, &p.sql, pat)?;
                Ok(if *negated { part(m.not(), Ty::Bool, format!("(NOT {sql})")) } else { part(m, Ty::Bool, sql) })
            }
            Sql::Function(f) => Err(bad(format!("function calls such as {}() are not allowed", f.name))),
            Sql::Subquery(_) | Sql::Exists { .. } | Sql::InSubquery { .. } => Err(bad("subqueries are not allowed")),
            Sql::CompoundIdentifier(parts) => Err(bad(format!(
                "'{}' is not a customer column (use plain column names)",
                parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(".")
            ))),
            other => Err(bad(format!("'{other}' is not allowed in a segment filter"))),
        }
    }

    /// `x [NOT] IN (literals)` of one type as a hash-set membership test (linear in the list),
    /// or `None` to compile it value by value (dates, mixed types).
    fn in_set(&self, expr: &Sql, list: &[Sql], negated: bool) -> Result<Option<Part>> {
        let x = self.compile(expr)?;
        let mut nums = Vec::new();
        let mut strs = Vec::new();
        for item in list {
            let Sql::Value(v) = item else { return Ok(None) };
            match (&v.value, x.ty) {
                (Value::Number(n, _), Ty::Num) => match n.parse::<f64>() {
                    Ok(x) if x.is_finite() => nums.push(x),
                    _ => return Err(bad(format!("bad number {n}"))),
                },
                (Value::SingleQuotedString(s), Ty::Str) => strs.push(s.clone()),
                _ => return Ok(None),
            }
        }
        let (set, sql_items): (pl::Series, Vec<String>) = if x.ty == Ty::Num {
            (pl::Series::new("in".into(), &nums), nums.iter().map(|n| format!("CAST({n:?} AS DOUBLE)")).collect())
        } else {
            (pl::Series::new("in".into(), &strs), strs.iter().map(|s| quote(s)).collect())
        };
        let lhs = if x.ty == Ty::Num { x.expr.cast(DataType::Float64) } else { x.expr };
        let lhs_sql = if x.ty == Ty::Num { format!("CAST({} AS DOUBLE)", x.sql) } else { x.sql };
        let member = lhs.is_in(lit(set).implode(true), false);
        let sql = format!("({lhs_sql} IN ({}))", sql_items.join(", "));
        Ok(Some(if negated {
            part(member.not(), Ty::Bool, format!("(NOT {sql})"))
        } else {
            part(member, Ty::Bool, sql)
        }))
    }

    fn expect(&self, e: Expr, ty: Ty, want: Ty, op: &str) -> Result<Expr> {
        if ty == want || ty == Ty::Null {
            Ok(e)
        } else {
            Err(bad(format!("{op} needs {}, got {}", want.name(), ty.name())))
        }
    }

    fn binary(&self, left: &Sql, op: &BinaryOperator, right: &Sql) -> Result<Part> {
        let Part { expr: l, ty: lt, sql: ls } = self.compile(left)?;
        let Part { expr: r, ty: rt, sql: rs } = self.compile(right)?;
        use BinaryOperator as B;
        match op {
            B::And | B::Or => {
                let l = self.expect(l, lt, Ty::Bool, "AND/OR")?;
                let r = self.expect(r, rt, Ty::Bool, "AND/OR")?;
                let (e, word) = if *op == B::And { (l.and(r), "AND") } else { (l.or(r), "OR") };
                Ok(part(e, Ty::Bool, format!("({ls} {word} {rs})")))
            }
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                let l = self.expect(l, lt, Ty::Num, "arithmetic")?;
                let r = self.expect(r, rt, Ty::Num, "arithmetic")?;
                let (e, sym) = match op {
                    B::Plus => (l + r, "+"),
                    B::Minus => (l - r, "-"),
                    B::Multiply => (l * r, "*"),
                    B::Divide => (l.cast(DataType::Float64) / r.cast(DataType::Float64), "/"),
                    _ => (l % r, "%"),
                };
                Ok(part(e, Ty::Num, format!("(CAST({ls} AS DOUBLE) {sym} CAST({rs} AS DOUBLE))")))
            }
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                no_compound_condition(left, lt)?;
                no_compound_condition(right, rt)?;
                let ((l, ls), (r, rs)) = comparable((l, lt, ls), left, (r, rt, rs), right)?;
                let (e, sym) = match op {
                    B::Eq => (l.eq(r), "="),
                    B::NotEq => (l.neq(r), "<>"),
                    B::Lt => (l.lt(r), "<"),
                    B::LtEq => (l.lt_eq(r), "<="),
                    B::Gt => (l.gt(r), ">"),
                    _ => (l.gt_eq(r), ">="),
                };
                Ok(part(e, Ty::Bool, format!("({ls} {sym} {rs})")))
            }
            other => Err(bad(format!("operator {other} is not allowed"))),
        }
    }
}

/// An operand: its polars expression, type and SQL text.
type Operand = (Expr, Ty, String);

/// Makes two operands comparable: same type, or a date column against a quoted date.
/// Numbers compare as doubles on both engines.
/// A true/false operand of a comparison or an `IN` must be a column or a literal: conditions
/// are joined with AND, OR and NOT, where low-effect detection sees them. (`((B) OR (A)) = true`
/// and `(B) <> (A)` hid an isolating condition inside one comparison.)
fn no_compound_condition(sql: &Sql, ty: Ty) -> Result<()> {
    let mut inner = sql;
    while let Sql::Nested(e) = inner {
        inner = e;
    }
    if ty == Ty::Bool && !matches!(inner, Sql::Identifier(_) | Sql::Value(_)) {
        return Err(bad(format!(
            "'{sql}' is a condition: join conditions with AND, OR and NOT, not by comparing them"
        )));
    }
    Ok(())
}

fn comparable(l: Operand, lsql: &Sql, r: Operand, rsql: &Sql) -> Result<((Expr, String), (Expr, String))> {
    let num = |s: String, ty: Ty| if ty == Ty::Num { format!("CAST({s} AS DOUBLE)") } else { s };
    match (l.1, r.1) {
        (a, b) if a == b && a != Ty::Other => Ok(((l.0, num(l.2, a)), (r.0, num(r.2, b)))),
        (Ty::Null, _) | (_, Ty::Null) => Ok(((l.0, l.2), (r.0, r.2))),
        (Ty::Date, Ty::Str) => Ok(((l.0, l.2), date_literal(rsql)?)),
        (Ty::Str, Ty::Date) => Ok((date_literal(lsql)?, (r.0, r.2))),
        (a, b) => Err(bad(format!("cannot compare {} with {} in '{lsql} ... {rsql}'", a.name(), b.name()))),
    }
}

fn date_literal(sql: &Sql) -> Result<(Expr, String)> {
    if let Sql::Value(v) = sql {
        if let Value::SingleQuotedString(s) = &v.value {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| bad(format!("'{s}' is not a date (YYYY-MM-DD)")))?;
            return Ok((lit(d), format!("DATE '{}'", d.format("%Y-%m-%d"))));
        }
    }
    Err(bad(format!("dates compare with a quoted 'YYYY-MM-DD', not {sql}")))
}

fn literal(v: &Value) -> Result<Part> {
    match v {
        Value::Number(n, _) => {
            let x: f64 = n.parse().map_err(|_| bad(format!("bad number {n}")))?;
            if !x.is_finite() {
                return Err(bad(format!("bad number {n}")));
            }
            Ok(part(lit(x), Ty::Num, format!("CAST({x:?} AS DOUBLE)")))
        }
        Value::SingleQuotedString(s) => Ok(part(lit(s.clone()), Ty::Str, quote(s))),
        Value::Boolean(b) => Ok(part(lit(*b), Ty::Bool, b.to_string())),
        Value::Null => Ok(part(lit(pl::NULL), Ty::Null, "NULL".into())),
        Value::DoubleQuotedString(s) => Err(bad(format!("\"{s}\": quote text with single quotes"))),
        other => Err(bad(format!("literal {other} is not allowed"))),
    }
}

/// `LIKE` with a leading or trailing `%` only; the SQL keeps `LIKE`, whose pattern then has no
/// other wildcard, so both engines agree.
fn like(e: Expr, sql: &str, pattern: &str) -> Result<(Expr, String)> {
    let inner = pattern.trim_start_matches('%').trim_end_matches('%');
    if inner.contains(['%', '_']) {
        return Err(bad("LIKE supports only a leading and/or trailing % (e.g. '武昌%')"));
    }
    let (lead, trail) = (pattern.starts_with('%'), pattern.ends_with('%') && pattern.len() > 1);
    let m = match (lead, trail) {
        (false, false) => e.eq(lit(inner.to_string())),
        (false, true) => e.str().starts_with(lit(inner.to_string())),
        (true, false) => e.str().ends_with(lit(inner.to_string())),
        (true, true) => return Err(bad("LIKE '%text%' is not supported; use a leading or trailing % only")),
    };
    Ok((m, format!("({sql} LIKE {})", quote(pattern))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn customers() -> DataFrame {
        df!(
            "budget" => [Some(1.0e6), Some(4.0e6), None, Some(5.0e6)],
            "desired_area_sqm" => [80.0, 130.0, 150.0, 100.0],
            "district" => ["武昌区", "江汉区", "武昌区", "洪山区"],
        )
        .unwrap()
    }

    fn eval(text: &str) -> Result<Vec<bool>> {
        let df = customers();
        let seg = Segment::parse(text, &df.schema())?;
        let out = df.lazy().select([seg.expr.alias("m")]).collect()?;
        Ok(out.column("m")?.bool()?.iter().map(|b| b.unwrap_or(false)).collect())
    }

    #[test]
    fn spec_example() {
        assert_eq!(eval("budget >= 3000000 AND desired_area_sqm >= 120").unwrap(), [false, true, false, false]);
    }

    #[test]
    fn null_budget_never_matches() {
        assert_eq!(eval("NOT budget < 3000000").unwrap(), [false, true, false, true]);
    }

    #[test]
    fn in_between_like_and_null() {
        assert_eq!(eval("district IN ('江汉区', '洪山区')").unwrap(), [false, true, false, true]);
        assert_eq!(eval("desired_area_sqm BETWEEN 100 AND 140").unwrap(), [false, true, false, true]);
        assert_eq!(eval("district LIKE '武昌%'").unwrap(), [true, false, true, false]);
        assert_eq!(eval("budget IS NULL").unwrap(), [false, false, true, false]);
    }

    #[test]
    fn refuses_what_could_reach_outside() {
        for text in [
            "read_csv('/etc/passwd') IS NOT NULL",
            "budget > (SELECT 1)",
            "EXISTS (SELECT * FROM customers)",
            "t.budget > 1",
            "budget > 1; DROP TABLE x",
        ] {
            let err = eval(text).unwrap_err();
            assert!(err.is_user_error(), "{text}: {err}");
        }
    }

    #[test]
    fn regression_long_flat_and_chain_is_refused_not_a_stack_overflow() {
        let text = format!("budget >= 1{}", " AND budget >= 1".repeat(800));
        let err = eval(&text).unwrap_err();
        assert!(err.to_string().contains("the limit is 64"), "{err}");
        // Up to the limit it compiles and runs.
        let ok = format!("budget >= 1{}", " AND budget >= 1".repeat(MAX_OPERATORS));
        assert_eq!(eval(&ok).unwrap(), [true, true, false, true]);
    }

    #[test]
    fn regression_long_arithmetic_chain_is_refused_not_a_stack_overflow() {
        for op in ["+", "*", "-", "/"] {
            let text = format!("budget{} > 0", format!(" {op} 1").repeat(900));
            let err = eval(&text).unwrap_err();
            assert!(err.to_string().contains("the limit is 128"), "{op}: {err}");
        }
        let text = format!("district{} = 'x'", " || 'a'".repeat(900));
        assert!(eval(&text).unwrap_err().to_string().contains("the limit is 128"));
        // Keyword chains the parser builds without recursing: refused the same way.
        for chain in [" IS NULL", " IN (true)", " LIKE 'a'"] {
            let text = format!("budget{}", chain.repeat(900));
            assert!(eval(&text).unwrap_err().to_string().contains("the limit is 128"), "{chain}");
        }
        // Negative values in a list are literals, not operators.
        let list: Vec<String> = (1..=500).map(|i| format!("-{i}")).collect();
        assert!(eval(&format!("budget IN ({})", list.join(", "))).is_ok());
        // Under the limit it compiles and runs, on a thread with a small stack.
        let ok = format!("budget{} > 0", " + 1".repeat(MAX_OTHER_OPERATORS - 1));
        let handle = std::thread::Builder::new().stack_size(1 << 20).spawn(move || eval(&ok).map(|_| ())).unwrap();
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn regression_constant_filter_is_true_or_false_for_every_row() {
        assert_eq!(eval("1 = 1").unwrap(), [true; 4]);
        assert_eq!(eval("1 = 2").unwrap(), [false; 4]);
        assert_eq!(eval("NULL IS NULL").unwrap(), [true; 4]);
    }

    #[test]
    fn regression_long_in_list_is_a_hash_set() {
        let many: Vec<String> = (0..MAX_IN_LIST).map(|i| format!("'{i}'")).collect();
        let text = format!("district IN ('江汉区',{})", many[..MAX_IN_LIST - 1].join(","));
        assert_eq!(eval(&text).unwrap(), [false, true, false, false]);
        let nums =
            format!("budget NOT IN (4000000, {})", (0..500).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        assert_eq!(eval(&nums).unwrap(), [true, false, false, true]);
        let too_many =
            format!("budget IN ({})", (0..=MAX_IN_LIST).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let err = eval(&too_many).unwrap_err().to_string();
        assert!(err.contains(&format!("IN has {} values; the limit is", MAX_IN_LIST + 1)), "{err}");
    }

    #[test]
    fn restricted_columns_are_named_in_the_error() {
        let df = customers();
        let no_district = |c: &str| (c == "district").then(|| format!("'{c}' identifies a place"));
        let err = Segment::parse_restricted("district = 'x'", df.schema(), &no_district).unwrap_err();
        assert!(err.to_string().contains("'district' identifies a place"), "{err}");
        assert!(Segment::parse_restricted("budget > 1", df.schema(), &no_district).is_ok());
    }

    #[test]
    fn a_condition_that_moves_fewer_than_k_customers_is_removed() {
        let customers = df!(
            "customer_id" => (0..40).map(|i| format!("C{i}")).collect::<Vec<_>>(),
            "budget" => (0..40).map(|i| Some(f64::from(i) * 100_000.0)).collect::<Vec<_>>(),
            "age_band" => (0..40).map(|i| if i == 7 { "45-54" } else { "35-44" }).collect::<Vec<_>>(),
        )
        .unwrap();
        let none = |_: &str| None;
        let run = |t: &str| Segment::without_low_effect(t, &customers, &none, 5).unwrap();
        // The victim (i = 7, budget 700000) isolated inside a large segment: removed.
        assert_eq!(run("budget >= 2000000 OR age_band = '45-54'"), "budget >= 2000000");
        assert_eq!(run("budget >= 500000 AND NOT age_band = '45-54'"), "budget >= 500000");
        // A condition changing no one stays: the answer is the same as without it.
        let same = "budget >= 2000000 AND NOT age_band = '45-54'";
        assert_eq!(run(same), same);
        assert_eq!(run("(budget >= 2000000 OR (age_band = '45-54' AND budget > 0))"), "(budget >= 2000000)");
        // Whether or not the victim matches, the applied filter is the same.
        assert_eq!(run("budget >= 2000000 OR (age_band = '45-54' AND budget > 800000)"), "budget >= 2000000");
        // Conditions that move k or more (or none) stay, text unchanged.
        assert_eq!(run("budget >= 2000000 OR budget < 500000"), "budget >= 2000000 OR budget < 500000");
        assert_eq!(run("budget >= 2000000"), "budget >= 2000000");
        assert_eq!(run("budget >= 2000000 OR budget >= 3000000"), "budget >= 2000000 OR budget >= 3000000");
        // Conditions compared with = or <> would hide one from the detection: refused.
        for hidden in [
            "((budget >= 2000000) OR (age_band = '45-54')) = true",
            "(budget >= 2000000) <> (age_band = '45-54')",
            "(age_band = '45-54') IN (true)",
            "true = (budget >= 2000000 OR age_band = '45-54')",
        ] {
            let err = Segment::without_low_effect(hidden, &customers, &none, 5).unwrap_err().to_string();
            assert!(
                err.contains("is a condition") || err.contains("not allowed") || err.contains("cannot"),
                "{hidden}: {err}"
            );
        }
    }

    #[test]
    fn names_the_problem() {
        assert!(eval("salary > 1").unwrap_err().to_string().contains("unknown column 'salary'"));
        assert!(eval("district > 5").unwrap_err().to_string().contains("cannot compare"));
        assert!(eval("budget + 1").unwrap_err().to_string().contains("not a true/false"));
        assert!(eval("budget >=").is_err());
    }
}
