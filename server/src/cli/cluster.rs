//! `--engine` and `cluster`: the Ballista scheduler a command or the server reduces on.

#[allow(clippy::wildcard_imports)]
use super::*;

#[cfg(feature = "cluster")]
pub(super) fn dataset_name(dir: &Path) -> String {
    dir.file_name().map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned())
}

#[cfg(feature = "cluster")]
pub(super) type ClusterSession = custmap::cluster::Cluster;
#[cfg(not(feature = "cluster"))]
pub(super) type ClusterSession = std::convert::Infallible;

/// The scheduler `--engine` names for the server; `None` for local.
pub(super) fn cluster_target(engine: &EngineArgs) -> Result<Option<custmap::http::ClusterTarget>, Error> {
    if engine.engine == "local" {
        return Ok(None);
    }
    #[cfg(feature = "cluster")]
    {
        match engine.engine.parse::<custmap::cluster::Engine>()? {
            custmap::cluster::Engine::Local => Ok(None),
            custmap::cluster::Engine::Ballista { host, port } => Ok(Some(custmap::http::ClusterTarget {
                host,
                port,
                timeout: Duration::from_secs(engine.cluster_timeout_s.max(1)),
            })),
        }
    }
    #[cfg(not(feature = "cluster"))]
    {
        Err(Error::BadInput(format!("--engine {}: this custmap was built without the cluster feature (build it with `cargo build --release -p custmap --features cluster`)", engine.engine)))
    }
}

/// The cluster session `--engine` asks for, with the dataset registered and checked; `None`
/// for local.
pub(super) fn connect(engine: &EngineArgs, dir: &Path) -> Result<Option<ClusterSession>, Error> {
    if engine.engine == "local" {
        return Ok(None);
    }
    #[cfg(feature = "cluster")]
    {
        use custmap::cluster::{Cluster, Engine};
        match engine.engine.parse::<Engine>()? {
            Engine::Local => Ok(None),
            Engine::Ballista { host, port } => {
                // The cluster's jobs read timestamps as UTC; a local zone would make the two
                // engines disagree by the offset, so it is refused rather than ignored.
                let tz = super::INGEST.get().copied().unwrap_or_default();
                if tz.utc_offset_minutes != 0 {
                    return Err(Error::BadInput(format!(
                        "--tz {} with --engine {}: the cluster reads timestamps as UTC; convert them to UTC (or use --engine local)",
                        tz.tz_name(),
                        engine.engine
                    )));
                }
                let timeout = Duration::from_secs(engine.cluster_timeout_s.max(1));
                Ok(Some(Cluster::open(&host, port, timeout, dir)?))
            }
        }
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = dir;
        Err(Error::BadInput(format!("--engine {}: this custmap was built without the cluster feature (build it with `cargo build --release -p custmap --features cluster`)", engine.engine)))
    }
}

pub(super) fn run_cluster(command: ClusterCommand) -> Result<(), Error> {
    #[cfg(feature = "cluster")]
    {
        use custmap::cluster::process::{run_executor, run_scheduler, ExecutorOptions, SchedulerOptions};
        match command {
            ClusterCommand::Scheduler { bind, external_host, executor_timeout_s } => {
                run_scheduler(&SchedulerOptions { bind, external_host, executor_timeout_s: executor_timeout_s.max(1) })
            }
            ClusterCommand::Executor { scheduler, bind, grpc_port, external_host, cores, work_dir, heartbeat_s } => {
                run_executor(&ExecutorOptions {
                    scheduler,
                    bind,
                    grpc_port,
                    external_host,
                    cores,
                    work_dir,
                    heartbeat_s: heartbeat_s.max(1),
                })
            }
        }
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = command;
        Err(Error::BadInput(
            "this custmap was built without the cluster feature (build it with `cargo build --release -p custmap --features cluster`)".into(),
        ))
    }
}
