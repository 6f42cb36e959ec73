//! Command-line interface (SPEC §6). Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use custmap::release;
use custmap::requests::{
    requested_floor, AttributionRequest, FunnelRequest, HeatmapRequest, PlacementRequest, ReferralsRequest,
};
use custmap::views::{self, ChartChoice, PlotChoice};
use custmap_engine::analytics::attribution::attribution;
use custmap_engine::analytics::attribution::{attribution_by_place, funnel};
use custmap_engine::analytics::heatmap::heatmap;
use custmap_engine::analytics::placement::{Coverage, PlacementParams, Weight};
use custmap_engine::analytics::{AttributionParams, By, HeatmapParams, HeatmapResult, KFloor, Location};
use custmap_engine::demo::{self, DemoFormat, DemoParams, Places};
use custmap_engine::io::import::{sales_to_tables, SalesColumns};
use custmap_engine::io::schema::Table;
use custmap_engine::io::{write_frame, OutputFormat};
use custmap_engine::render::chart::render_chart;
use custmap_engine::render::map::{render_map, MapSpec};
use custmap_engine::render::ImageFormat;
use custmap_engine::spatial::Res;
use custmap_engine::{Dataset, Error};
use indicatif::{ProgressBar, ProgressStyle};

mod args;
mod attribution;
mod cluster;
mod data;
mod heatmap;
mod placement;
mod referrals;
mod serve;

use self::{args::*, attribution::*, cluster::*, data::*, heatmap::*, placement::*, referrals::*, serve::*};

/// Set from `--tz` before the command runs.
static INGEST: std::sync::OnceLock<custmap_engine::io::validate::IngestOptions> = std::sync::OnceLock::new();

/// Set from `--strict` before the command runs.
static STRICT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Parses arguments, runs the command, and maps errors to one stderr line and an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {} (see custmap --help)", usage_error(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    STRICT.store(cli.strict, std::sync::atomic::Ordering::Relaxed);
    match custmap_engine::io::validate::IngestOptions::parse_tz(&cli.tz) {
        Ok(opts) => {
            let _ = INGEST.set(opts);
        }
        Err(e) => {
            eprintln!("error: --tz: {e}");
            return ExitCode::from(2);
        }
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::from(if e.is_user_error() { 2 } else { 1 })
        }
    }
}

/// Clap's error as one line: the message and what it lists (the missing arguments, say), without
/// the usage block and tips.
fn usage_error(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:"))
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines.join(" ");
    let joined = joined.trim_start_matches("error: ");
    if joined.is_empty() {
        "bad usage".into()
    } else {
        joined.to_string()
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Demo { out, customers, seed, format, places } => run_demo(&out, customers, seed, format, places),
        Command::Validate { dir, json, rejects } => run_validate(&dir, json, rejects),
        Command::Heatmap { dir, request, prior, smooth, engine, out } => {
            let params = HeatmapParams { prior, smooth, ..HeatmapParams::try_from(&request)? };
            run_heatmap(&dir, &params, &request.metric, &engine, &out)
        }
        Command::Attribution { dir, request, geo, res, paths, engine, out } => {
            let params = AttributionParams::try_from(&request)?;
            let k = requested_floor(request.k)?;
            match geo {
                Some(Location::Both) => {
                    Err(Error::BadInput("--geo: a converting customer's place is home or work, not both".into()))
                }
                Some(_) if engine.engine != "local" => Err(Error::BadInput(
                    "--geo needs each converting customer's place: use --engine local for it".into(),
                )),
                Some(geo) => run_geo_attribution(&dir, &params, geo, Res::new(res)?, k, &out),
                None => run_attribution(&dir, &params, request.chart, k, paths.as_deref(), &engine, &out),
            }
        }
        Command::Funnel { dir, request, out } => run_funnel(&dir, request.by, requested_floor(request.k)?, &out),
        Command::Referrals { dir, request, out } => {
            run_referrals(&dir, &custmap_engine::analytics::referrals::ReferralsParams::try_from(&request)?, &out)
        }
        Command::Serve {
            dir,
            addr,
            data_dir,
            max_upload_mb,
            max_upload_rows,
            timeout_s,
            min_k,
            public_epsilon,
            public_delta,
            public_res,
            public_budget_cap,
            heavy_workers,
            heavy_queue,
            engine,
        } => {
            let policy = custmap_engine::analytics::Policy {
                min_k: KFloor::new(min_k)?,
                public: custmap_engine::analytics::PublicParams {
                    epsilon: public_epsilon,
                    delta: public_delta,
                    resolutions: public_res,
                    budget_cap: public_budget_cap,
                },
            };
            policy.public.check()?;
            let secret = |name: &str| std::env::var(name).ok().filter(|t| !t.is_empty());
            let config = custmap::http::Config {
                token: secret("CUSTMAP_TOKEN"),
                analyst_token: secret("CUSTMAP_ANALYST_TOKEN"),
                policy,
                noise_key: custmap::http::state::noise_key_in(&data_dir)?,
                max_upload_bytes: max_upload_mb.saturating_mul(1 << 20),
                max_upload_rows,
                timeout: Duration::from_secs(timeout_s.max(1)),
                heavy_workers: heavy_workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get)),
                heavy_queue,
                cluster: cluster_target(&engine)?,
                ..custmap::http::Config::default()
            };
            run_serve(dir.as_deref(), &addr, &data_dir, config)
        }
        Command::Placement { dir, request, compare_kinds, out } => {
            let params = PlacementParams::try_from(&request)?;
            let radii = request.radii()?.into_iter().collect();
            run_placement(&dir, &params, &radii, compare_kinds, request.plot, requested_floor(request.k)?, &out)
        }
        Command::Cluster(command) => run_cluster(command),
        Command::ImportSales { file, out, lat, lng, price, date } => {
            run_import(&file, &out, &SalesColumns { lat, lng, price, date })
        }
    }
}

fn spinner(message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner().with_message(message.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Loads a dataset for an analysis, saying on stderr how many rows of each table were rejected
/// (and values nulled) and where to see why; with `--strict` any rejected row is exit 2.
fn load(dir: &Path, tables: &[Table]) -> Result<Dataset, Error> {
    load_columns(dir, tables, None)
}

/// [`load`] keeping only the listed customer columns (besides the id) once they are validated.
fn load_columns(dir: &Path, tables: &[Table], customer_columns: Option<&[&str]>) -> Result<Dataset, Error> {
    let pb = spinner("reading and validating tables");
    let opts =
        custmap_engine::io::validate::IngestOptions { customer_columns, ..INGEST.get().copied().unwrap_or_default() };
    let ds = Dataset::load_with(dir, tables, opts);
    pb.finish_and_clear();
    let ds = ds?;
    if let Some(line) = reject_line(&ds) {
        eprintln!("{line} (why: custmap validate {})", dir.display());
        let rejected: u64 = ds.report.tables.values().map(|t| t.rejected).sum();
        if rejected > 0 && STRICT.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::BadInput(format!("--strict: {rejected} input rows were rejected")));
        }
    }
    Ok(ds)
}

/// "rejected: 24 of 34 customers, 2 of 10 deals; values nulled: 3 customers", or `None` for a
/// clean dataset.
fn reject_line(ds: &Dataset) -> Option<String> {
    let rejected: Vec<String> = ds
        .report
        .tables
        .iter()
        .filter(|(_, t)| t.rejected > 0)
        .map(|(name, t)| format!("{} of {} {name}", t.rejected, t.read))
        .collect();
    let nulled: Vec<String> = ds
        .report
        .tables
        .iter()
        .filter(|(_, t)| t.values_nulled > 0)
        .map(|(name, t)| format!("{} {name}", t.values_nulled))
        .collect();
    let mut parts = Vec::new();
    if !rejected.is_empty() {
        parts.push(format!("rejected: {}", rejected.join(", ")));
    }
    if !nulled.is_empty() {
        parts.push(format!("values nulled: {}", nulled.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn image_format(format: OutputFormat) -> Option<ImageFormat> {
    match format {
        OutputFormat::Png => Some(ImageFormat::Png),
        OutputFormat::Svg => Some(ImageFormat::Svg),
        _ => None,
    }
}

fn write_bytes(out: &Path, bytes: &[u8]) -> Result<(), Error> {
    custmap_engine::io::write::write_atomic(out, |w| {
        std::io::Write::write_all(w, bytes).map_err(|e| Error::Write { path: out.into(), message: e.to_string() })
    })
}

/// Writes a result's document, the bytes a server replies with for the same request.
fn write_json(out: &Path, doc: &serde_json::Value) -> Result<(), Error> {
    write_bytes(out, &release::json_bytes(doc))
}
