//! `custmap cluster scheduler` and `custmap cluster executor`: Ballista's scheduler and executor
//! with custmap's `h3_cell` and `journey` UDFs registered, so plans that use them can be planned
//! and run (the stock binaries cannot resolve them by name). Both log to stderr and stop cleanly
//! on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use custmap_engine::Error;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionConfig;

use super::udf::{h3_cell, journey, H3_CELL, JOURNEY};

/// Scheduler options.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
    /// Host name executors and clients reach this scheduler by (default: the bind address).
    pub external_host: Option<String>,
    /// Seconds without a heartbeat after which an executor is declared dead and its tasks
    /// are run elsewhere.
    pub executor_timeout_s: u64,
}

/// Executor options.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: SocketAddr,
    /// Arrow Flight data port (shuffle partitions are served from here).
    pub bind: SocketAddr,
    /// gRPC port the scheduler pushes tasks to.
    pub grpc_port: u16,
    pub external_host: Option<String>,
    /// Task slots; default: the machine's cores.
    pub cores: Option<usize>,
    /// Where shuffle files are written; default: a temporary directory.
    pub work_dir: Option<String>,
    pub heartbeat_s: u64,
}

/// A session with custmap's UDF, for the scheduler's planner.
fn session_with_udf(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let mut state = default_session_builder(config)?;
    state.register_udf(h3_cell())?;
    state.register_udf(journey())?;
    Ok(state)
}

fn cluster_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|e| cluster_error("cannot start the runtime", e))
}

/// Runs a scheduler until SIGTERM or Ctrl-C.
pub fn run_scheduler(opts: &SchedulerOptions) -> Result<(), Error> {
    let host = opts.external_host.clone().unwrap_or_else(|| opts.bind.ip().to_string());
    let mut config = SchedulerConfig::default()
        .with_hostname(host)
        .with_port(opts.bind.port())
        .with_override_session_builder(Arc::new(session_with_udf));
    config.bind_host = opts.bind.ip().to_string();
    config.executor_timeout_seconds = opts.executor_timeout_s;
    config.no_executors_grace_period_seconds = opts.executor_timeout_s;
    config.expire_dead_executor_interval_seconds = opts.executor_timeout_s.clamp(1, 15);
    let bind = opts.bind;
    runtime()?.block_on(async move {
        let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| cluster_error("scheduler", e))?;
        tracing::info!(%bind, "custmap cluster scheduler listening");
        tokio::select! {
            r = start_server(cluster, bind, Arc::new(config)) => r.map_err(|e| cluster_error("scheduler", e)),
            () = crate::http::shutdown() => {
                tracing::info!("scheduler stopping");
                Ok(())
            }
        }
    })
}

/// Runs an executor until SIGTERM or Ctrl-C (Ballista's executor handles both itself: it tells
/// the scheduler it is leaving, then stops).
pub fn run_executor(opts: &ExecutorOptions) -> Result<(), Error> {
    let mut registry = BallistaFunctionRegistry::default();
    registry.scalar_functions.insert(H3_CELL.to_string(), h3_cell());
    registry.scalar_functions.insert(JOURNEY.to_string(), journey());
    let mut config = ExecutorProcessConfig {
        bind_host: opts.bind.ip().to_string(),
        external_host: opts.external_host.clone().or_else(|| Some(opts.bind.ip().to_string())),
        port: opts.bind.port(),
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler.ip().to_string(),
        scheduler_port: opts.scheduler.port(),
        scheduler_connect_timeout_seconds: 30,
        work_dir: opts.work_dir.clone(),
        executor_heartbeat_interval_seconds: opts.heartbeat_s,
        print_thread_info: false,
        override_function_registry: Some(Arc::new(registry)),
        ..ExecutorProcessConfig::default()
    };
    if let Some(cores) = opts.cores {
        config.vcores = cores.max(1);
    }
    let bind = opts.bind;
    runtime()?.block_on(async move {
        tracing::info!(%bind, grpc_port = config.grpc_port, "custmap cluster executor starting");
        start_executor_process(Arc::new(config)).await.map_err(|e| cluster_error("executor", e))
    })
}
