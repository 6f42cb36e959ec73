//! Scale-out on Apache DataFusion Ballista (SPEC §8).
//!
//! The row-proportional reductions run on the cluster as SQL over the dataset's Parquet tables
//! ([`jobs`]): customers to per-cell counts and sums, touchpoints to per-customer channel paths
//! to path counts. Their outputs are small; the modelling (heatmap metrics, privacy floor,
//! Markov, Shapley and the rule-based models) then runs in the local engine on them, so the
//! answers are those of `--engine local`.
//!
//! The cluster's scheduler and executors are custmap's own ([`process`]): they register the
//! `h3_cell` and `journey` UDFs ([`udf`]), which the stock Ballista binaries cannot resolve.

pub mod jobs;
pub mod process;
pub mod udf;

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use custmap_engine::polars::prelude::{Column, DataFrame};
use custmap_engine::Error;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, UInt64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// Which engine runs a reduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// polars, in this process (the default).
    Local,
    /// A Ballista scheduler at `host:port`.
    Ballista { host: String, port: u16 },
}

impl std::str::FromStr for Engine {
    type Err = Error;
    fn from_str(s: &str) -> Result<Engine, Error> {
        if s == "local" {
            return Ok(Engine::Local);
        }
        let bad = || Error::BadInput(format!("engine '{s}' is not 'local' or 'ballista://HOST:PORT'"));
        let rest = s.strip_prefix("ballista://").ok_or_else(bad)?;
        let (host, port) = rest.trim_end_matches('/').rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Engine::Ballista { host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port })
    }
}

/// Tables the cluster reads, as Parquet files in the dataset directory.
const CLUSTER_TABLES: [&str; 3] = ["customers", "deals", "touchpoints"];

/// A client session on a Ballista cluster, with a dataset's tables registered.
pub struct Cluster {
    rt: tokio::runtime::Runtime,
    ctx: SessionContext,
    endpoint: String,
    timeout: Duration,
    /// Parquet file per registered table.
    pub tables: Vec<(&'static str, PathBuf)>,
}

impl Cluster {
    /// Connects to the scheduler at `host:port`. An unreachable scheduler is an error within
    /// `timeout` (or 10 s, whichever is shorter); every later query is bounded by `timeout`.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Cluster, Error> {
        let endpoint = format!("{host}:{port}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
        let unreachable =
            |why: String| Error::Internal(format!("cannot reach the Ballista scheduler at {endpoint}: {why}"));
        let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(|e| unreachable(e.to_string()))?.collect();
        let probe = timeout.min(Duration::from_secs(10));
        rt.block_on(async {
            match tokio::time::timeout(probe, tokio::net::TcpStream::connect(&addrs[..])).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(unreachable(e.to_string())),
                Err(_) => Err(unreachable(format!("no answer within {} s", probe.as_secs()))),
            }
        })?;
        let ctx =
            rt.block_on(SessionContext::remote(&format!("df://{endpoint}"))).map_err(|e| unreachable(e.to_string()))?;
        // Registered after the context is made: a UDF in the state handed to
        // `remote_with_state` would be dropped.
        ctx.register_udf(udf::h3_cell().as_ref().clone());
        ctx.register_udf(udf::journey().as_ref().clone());
        // Ballista's default (adaptive) planner is kept on purpose: when an executor dies
        // mid-job it rolls the job back and stalls, which the query deadline turns into an
        // error. The static planner reran lost tasks on the survivor but once returned a wrong
        // answer doing so (extra paths), so it is not used. Each reduction is also checked
        // against an independent count before its answer is used (`jobs`).
        Ok(Cluster { rt, ctx, endpoint, timeout, tables: Vec::new() })
    }

    /// Connects, registers the dataset in `dir` and checks its tables are clean
    /// ([`jobs::check_clean`]): a session ready for the reductions.
    pub fn open(host: &str, port: u16, timeout: Duration, dir: &Path) -> Result<Cluster, Error> {
        let mut cluster = Cluster::connect(host, port, timeout)?;
        cluster.register_dataset(dir)?;
        jobs::check_clean(&cluster)?;
        Ok(cluster)
    }

    /// Registers the dataset's Parquet tables (customers required; deals and touchpoints when
    /// present). Executors read the same paths, so the directory must be visible to every
    /// executor at the same path (a shared or replicated file system).
    pub fn register_dataset(&mut self, dir: &Path) -> Result<(), Error> {
        let dir = dir.canonicalize().map_err(|source| Error::Read { path: dir.into(), source })?;
        for name in CLUSTER_TABLES {
            let parquet = dir.join(format!("{name}.parquet"));
            if !parquet.is_file() {
                if dir.join(format!("{name}.csv")).is_file() {
                    return Err(Error::BadInput(format!(
                        "{}: the cluster engine reads Parquet tables, and {name} is CSV (write the dataset as \
                         Parquet, e.g. custmap demo --format parquet)",
                        dir.display()
                    )));
                }
                if name == "customers" {
                    return Err(Error::BadInput(format!("{}: no customers.parquet", dir.display())));
                }
                continue;
            }
            let path = parquet.to_string_lossy().to_string();
            self.rt
                .block_on(self.ctx.register_parquet(name, &path, ParquetReadOptions::default()))
                .map_err(|e| Error::Schema { path: parquet.clone(), message: e.to_string() })?;
            self.tables.push((name, parquet));
        }
        Ok(())
    }

    /// Whether `table` was registered.
    #[must_use]
    pub fn has(&self, table: &str) -> bool {
        self.tables.iter().any(|(n, _)| *n == table)
    }

    /// The Parquet file of a registered table.
    #[must_use]
    pub fn path(&self, table: &str) -> Option<&Path> {
        self.tables.iter().find(|(n, _)| *n == table).map(|(_, p)| p.as_path())
    }

    /// Runs `sql` on the cluster and returns the (small) result as a polars frame.
    pub fn query(&self, sql: &str) -> Result<DataFrame, Error> {
        tracing::debug!(endpoint = %self.endpoint, %sql, "cluster query");
        let run = async {
            let df = self.ctx.sql(sql).await?;
            df.collect().await
        };
        let batches = self
            .rt
            .block_on(async { tokio::time::timeout(self.timeout, run).await })
            .map_err(|_| {
                Error::Internal(format!(
                    "the cluster at {} did not answer within {} s (a lost executor stalls a Ballista job; \
                     check the executors, or raise --cluster-timeout-s for big data)",
                    self.endpoint,
                    self.timeout.as_secs()
                ))
            })?
            .map_err(|e| {
                Error::Internal(format!("cluster query failed ({}): {}", self.endpoint, one_line(&e.to_string())))
            })?;
        to_polars(&batches)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Arrow record batches (the cluster's answer) as a polars frame. Covers the types the jobs
/// produce: integers, floats, text.
pub fn to_polars(batches: &[RecordBatch]) -> Result<DataFrame, Error> {
    let Some(first) = batches.first() else {
        return Err(Error::Internal("the cluster returned no batch".into()));
    };
    let schema = first.schema();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let name = field.name().as_str();
        let arrays = batches.iter().map(|b| b.column(i));
        // One polars column from the same column of every batch.
        macro_rules! gather {
            ($a:ident => $values:expr) => {
                Column::new(name.into(), arrays.flat_map(|$a| $values.collect::<Vec<_>>()).collect::<Vec<_>>())
            };
        }
        let text = |s: Option<&str>| s.map(str::to_string);
        let column = match field.data_type() {
            DataType::Int64 => gather!(a => a.as_primitive::<Int64Type>().iter()),
            DataType::Int32 => gather!(a => a.as_primitive::<Int32Type>().iter()),
            DataType::UInt64 => gather!(a => a.as_primitive::<UInt64Type>().iter()),
            DataType::Float64 => gather!(a => a.as_primitive::<Float64Type>().iter()),
            DataType::Utf8 => gather!(a => a.as_string::<i32>().iter().map(text)),
            DataType::LargeUtf8 => gather!(a => a.as_string::<i64>().iter().map(text)),
            DataType::Utf8View => gather!(a => a.as_string_view().iter().map(text)),
            other => return Err(Error::Internal(format!("cluster column {name} has unexpected type {other}"))),
        };
        columns.push(column);
    }
    debug_assert!(batches.iter().all(|b| b.columns().iter().all(|c| c.len() == b.num_rows())));
    Ok(DataFrame::new(rows, columns)?)
}
