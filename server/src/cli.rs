//! Command-line interface (SPEC §6). Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use custmap::views::{self, ChartChoice};
use custmap_engine::analytics::attribution::{attribution_by_place, funnel};
use custmap_engine::analytics::placement::{Coverage, PlacementParams, ReachMode, Weight};
use custmap_engine::analytics::{
    attribution, heatmap, AttributionParams, By, HeatmapParams, HeatmapResult, KFloor, Location, Model,
};
use custmap_engine::demo::{self, DemoFormat, DemoParams};
use custmap_engine::io::import::{sales_to_tables, SalesColumns};
use custmap_engine::io::schema::Table;
use custmap_engine::io::{write_frame, OutputFormat};
use custmap_engine::render::chart::render_chart;
use custmap_engine::render::map::{render_map, MapSpec};
use custmap_engine::render::ImageFormat;
use custmap_engine::spatial::Res;
use custmap_engine::{Dataset, Error};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(
    name = "custmap",
    version,
    about = "Customer-map analytics on H3 hexagons: purchasing-power heatmaps from CRM records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Fail (exit 2) when any input row was rejected, instead of going on without it.
    #[arg(long, global = true)]
    strict: bool,
    /// Time zone of timestamps that carry none (`2025-01-05 10:00`): UTC (default) or a fixed
    /// offset like +08:00. Timestamps with `Z` or an offset are read as written.
    #[arg(long, global = true, default_value = "UTC", allow_hyphen_values = true)]
    tz: String,
}

/// Set from `--tz` before the command runs.
static INGEST: std::sync::OnceLock<custmap_engine::io::validate::IngestOptions> = std::sync::OnceLock::new();

/// Set from `--strict` before the command runs.
static STRICT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Csv,
    Parquet,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReachArg {
    Home,
    Work,
    Both,
    Commute,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlotArg {
    Map,
    Curve,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WeightArg {
    Count,
    Budget,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GeoArg {
    Home,
    Work,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ByArg {
    Channel,
    Campaign,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReferralsArg {
    Referrer,
    Channel,
    Cell,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LocationArg {
    Home,
    Work,
    Both,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a synthetic city dataset (all tables) plus truth.json with its planted effects.
    #[command(allow_negative_numbers = true)]
    Demo {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Table file format.
        #[arg(long, value_enum, default_value = "csv")]
        format: FormatArg,
    },
    /// Ingest a dataset directory and report accepted and rejected rows per table.
    Validate {
        dir: PathBuf,
        /// Print the report as JSON: {"tables": {NAME: {read, accepted, rejected, values_nulled}}, "time_zone"}.
        #[arg(long)]
        json: bool,
        /// Where to write the rejects CSV (table, row, line, column, reason, value, outcome); default
        /// DIR/rejects.csv.
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// Aggregate customers into H3 cells; format from --out's extension
    /// (.parquet .csv .geojson .arrow .json .png .svg).
    #[command(allow_negative_numbers = true)]
    Heatmap {
        dir: PathBuf,
        #[arg(long, default_value_t = 8)]
        res: u8,
        #[arg(long, value_enum, default_value = "work")]
        location: LocationArg,
        /// Segment filter, a SQL boolean expression over customer columns.
        #[arg(long = "where")]
        where_: Option<String>,
        /// Privacy floor: minimum customers per published cell.
        #[arg(long, default_value_t = 5)]
        k: u32,
        /// Prior strength m of the empirical-Bayes shrinkage.
        #[arg(long, default_value_t = 10.0)]
        prior: f64,
        /// k-ring smoothing radius for purchasing power (0 = off).
        #[arg(long, default_value_t = 0)]
        smooth: u32,
        /// Metric that colours a map (.png/.svg).
        #[arg(long, default_value = "purchasing_power")]
        metric: String,
        #[command(flatten)]
        engine: EngineArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Credit conversions and revenue to channels or campaigns; cost, CPL, CPA, ROI, ROAS.
    /// Format from --out's extension (.csv .parquet .arrow .json).
    #[command(allow_negative_numbers = true)]
    Attribution {
        dir: PathBuf,
        /// first_touch, last_touch, linear, time_decay, position_based, markov, shapley, or all.
        #[arg(long, default_value = "markov")]
        model: String,
        #[arg(long, value_enum, default_value = "channel")]
        by: ByArg,
        /// Lookback window in days.
        #[arg(long, default_value_t = 365)]
        window: u32,
        /// Half-life of the time_decay model, in days.
        #[arg(long, default_value_t = 30.0)]
        half_life: f64,
        /// Order of the Markov chain.
        #[arg(long, default_value_t = 1)]
        order: u8,
        /// Chart for .png/.svg: roi (by channel), compare (models side by side) or monthly
        /// (deals per month by first-touch channel). Default: compare for several models, else roi.
        /// With a table format, `monthly` writes the monthly series (month, key, leads, deals, revenue).
        #[arg(long, value_enum)]
        chart: Option<ChartChoice>,
        /// Attribute by place instead: conversions per H3 cell x channel, by where converting
        /// customers live or work (first model only; table or .geojson).
        #[arg(long, value_enum)]
        geo: Option<GeoArg>,
        /// H3 resolution of --geo.
        #[arg(long, default_value_t = 8)]
        res: u8,
        /// Also write the distinct journeys (path, conversions, nulls, value) to this table file:
        /// the input of other attribution tools, for comparing or auditing.
        #[arg(long)]
        paths: Option<PathBuf>,
        /// Privacy floor of --geo: minimum converting customers per published cell.
        #[arg(long, default_value_t = 5)]
        k: u32,
        #[command(flatten)]
        engine: EngineArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Lead -> visit -> deal funnel per first-touch channel or campaign, with stage rates and
    /// median days between stages. Format from --out's extension (table or .png/.svg chart).
    Funnel {
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "channel")]
        by: ByArg,
        #[arg(long)]
        out: PathBuf,
    },
    /// Referral chains: each advocate's direct and chain referrals, buyers and revenue
    /// (--by referrer), what each acquisition channel is worth once the customers its customers
    /// referred are counted (--by channel), or where advocates live or work (--by cell). Format
    /// from --out's extension (.csv .parquet .arrow .json; .json adds the member-value summary
    /// and the ignored links; .png/.svg draw the multiplier by channel, the top advocates, or
    /// the advocates map for --by cell; --by cell also .geojson).
    #[command(allow_negative_numbers = true)]
    Referrals {
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "referrer")]
        by: ReferralsArg,
        /// Privacy floor of --by channel and cell: minimum root customers or advocates per row.
        #[arg(long, default_value_t = 5)]
        k: u32,
        /// H3 resolution of --by cell.
        #[arg(long, default_value_t = 7)]
        res: u8,
        /// The advocates' place for --by cell.
        #[arg(long, value_enum, default_value = "home")]
        location: GeoArg,
        #[arg(long)]
        out: PathBuf,
    },
    /// Choose ad sites within a budget to reach the most target prospects (each counted once
    /// across home, work and commute). .json gets the full report; .csv/.parquet/.arrow the
    /// chosen sites (or, with --compare-kinds, the whole budget on one kind at a time).
    #[command(allow_negative_numbers = true)]
    Placement {
        dir: PathBuf,
        #[arg(long)]
        budget: f64,
        /// Target prospects: a SQL boolean expression over customer columns.
        #[arg(long = "where")]
        where_: Option<String>,
        #[arg(long, value_enum, default_value = "both")]
        reach: ReachArg,
        /// Count prospects (count) or weigh them by budget (purchasing power).
        #[arg(long, value_enum, default_value = "count")]
        weight: WeightArg,
        /// Sites that must be in the plan (comma-separated site ids).
        #[arg(long, value_delimiter = ',')]
        must_include: Vec<String>,
        /// Sites never to choose (comma-separated site ids).
        #[arg(long, value_delimiter = ',')]
        exclude: Vec<String>,
        /// Write the per-kind baselines (towers vs bus routes ...) instead of the plan's sites.
        #[arg(long)]
        compare_kinds: bool,
        /// Reach radius per kind in metres, overriding the sites' reach_m and the defaults
        /// (e.g. office_lobby=150,cafe=300).
        #[arg(long, value_delimiter = ',')]
        reach_m: Vec<String>,
        /// Seconds the solver may search before reporting its best plan with a certified gap.
        #[arg(long, default_value_t = custmap_engine::analytics::placement::DEFAULT_TIME_LIMIT_S)]
        time_limit: f64,
        /// For .png/.svg: the plan on a map of the target prospects (map) or reach versus budget (curve).
        #[arg(long, value_enum, default_value = "map")]
        plot: PlotArg,
        /// Privacy floor: no figure of the report counts 1 to k-1 prospects.
        #[arg(long, default_value_t = 5)]
        k: u32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve the dashboard and the HTTP API (SPEC §7) for a dataset directory; with no DIR, for
    /// a demo city generated at start (10,000 customers, seed 42). Uploads (POST
    /// /api/v1/datasets) need CUSTMAP_TOKEN set and are kept in --data-dir.
    #[command(allow_negative_numbers = true)]
    Serve {
        dir: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Where uploaded datasets are stored and reloaded from at start.
        #[arg(long, default_value = "custmap-data")]
        data_dir: PathBuf,
        /// Largest upload body, MiB.
        #[arg(long, default_value_t = 512)]
        max_upload_mb: usize,
        /// Most rows an upload may hold, all tables together.
        #[arg(long, default_value_t = 20_000_000)]
        max_upload_rows: u64,
        /// Longest a request may run before it is answered 503, seconds.
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
        /// The privacy floor for analysts: every count and sum of a served cell covers at least
        /// this many people; a request's k can only raise it.
        #[arg(long, default_value_t = 5)]
        min_k: u32,
        /// Total epsilon of the public (no token) differentially private release, per dataset.
        #[arg(long, default_value_t = 8.0)]
        public_epsilon: f64,
        /// Total delta of the public release, per dataset.
        #[arg(long, default_value_t = 1e-6)]
        public_delta: f64,
        /// The H3 resolutions of the public release (comma list).
        #[arg(long, value_delimiter = ',', default_value = "6,7,8,9")]
        public_res: Vec<u8>,
        /// The public release clamps each customer's purchasing power to this many yuan.
        #[arg(long, default_value_t = 10_000_000.0)]
        public_budget_cap: f64,
        /// Engine computations run at once (default: the machine's cores).
        #[arg(long)]
        heavy_workers: Option<usize>,
        /// Engine computations that may wait for a worker; beyond, requests get 503 at once.
        #[arg(long, default_value_t = 16)]
        heavy_queue: usize,
        /// Where heatmap reductions run: `local`, or `ballista://HOST:PORT` for Parquet datasets
        /// (the other routes stay local).
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Run a Ballista scheduler or executor with custmap's functions, for `--engine ballista://`.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Turn a flat sales file (one sale per row: lat, lng, price) into a dataset directory.
    ImportSales {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "latitude")]
        lat: String,
        #[arg(long, default_value = "longitude")]
        lng: String,
        #[arg(long, default_value = "price")]
        price: String,
        /// Signing date recorded for every sale (YYYY-MM-DD).
        #[arg(long)]
        date: chrono::NaiveDate,
    },
}

/// Where the row-proportional reductions run (SPEC §8).
#[derive(clap::Args, Debug, Clone)]
struct EngineArgs {
    /// `local` (polars, in this process) or `ballista://HOST:PORT` (a custmap cluster scheduler;
    /// the dataset's Parquet tables must be at the same path on every executor).
    #[arg(long, default_value = "local")]
    engine: String,
    /// Longest a cluster query may take, seconds.
    #[arg(long, default_value_t = 600)]
    cluster_timeout_s: u64,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// A scheduler: plans queries and hands tasks to the executors.
    Scheduler {
        /// Address to listen on (gRPC for clients and executors).
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
        /// Host name others reach this scheduler by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Seconds without a heartbeat before an executor is declared dead and its work moved.
        #[arg(long, default_value_t = 60)]
        executor_timeout_s: u64,
    },
    /// An executor: runs tasks and serves their results over Arrow Flight.
    Executor {
        /// The scheduler's address.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: std::net::SocketAddr,
        /// Arrow Flight data address (shuffle partitions are fetched from here).
        #[arg(long, default_value = "127.0.0.1:50051")]
        bind: std::net::SocketAddr,
        /// gRPC port the scheduler sends tasks to.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Host name others reach this executor by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Concurrent tasks (default: the machine's cores).
        #[arg(long)]
        cores: Option<usize>,
        /// Directory for shuffle files (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 10)]
        heartbeat_s: u64,
    },
}

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
        Command::Demo { out, customers, seed, format } => run_demo(&out, customers, seed, format),
        Command::Validate { dir, json, rejects } => run_validate(&dir, json, rejects),
        Command::Heatmap { dir, res, location, where_, k, prior, smooth, metric, engine, out } => {
            let params = HeatmapParams {
                res: Res::new(res)?,
                location: match location {
                    LocationArg::Home => Location::Home,
                    LocationArg::Work => Location::Work,
                    LocationArg::Both => Location::Both,
                },
                segment: where_,
                k: KFloor::new(k)?,
                prior,
                smooth,
                ..HeatmapParams::default()
            };
            run_heatmap(&dir, &params, &metric, &engine, &out)
        }
        Command::Attribution { dir, model, by, window, half_life, order, chart, geo, res, k, paths, engine, out } => {
            let params = AttributionParams {
                models: Model::parse_list(&model)?,
                by: by.into(),
                window_days: window,
                half_life_days: half_life,
                markov_order: order,
            };
            match geo {
                Some(_) if engine.engine != "local" => Err(Error::BadInput(
                    "--geo needs each converting customer's place: use --engine local for it".into(),
                )),
                Some(geo) => {
                    let location = match geo {
                        GeoArg::Home => Location::Home,
                        GeoArg::Work => Location::Work,
                    };
                    run_geo_attribution(&dir, &params, location, Res::new(res)?, KFloor::new(k)?, &out)
                }
                None => run_attribution(&dir, &params, chart, paths.as_deref(), &engine, &out),
            }
        }
        Command::Funnel { dir, by, out } => run_funnel(&dir, by.into(), &out),
        Command::Referrals { dir, by, k, res, location, out } => {
            use custmap_engine::analytics::referrals::{ReferralsBy, ReferralsParams};
            let params = ReferralsParams {
                by: match by {
                    ReferralsArg::Referrer => ReferralsBy::Referrer,
                    ReferralsArg::Channel => ReferralsBy::Channel,
                    ReferralsArg::Cell => ReferralsBy::Cell,
                },
                k: KFloor::new(k)?,
                res: Res::new(res)?,
                location: match location {
                    GeoArg::Home => Location::Home,
                    GeoArg::Work => Location::Work,
                },
            };
            run_referrals(&dir, &params, &out)
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
        Command::Placement {
            dir,
            budget,
            where_,
            reach,
            weight,
            must_include,
            exclude,
            compare_kinds,
            reach_m,
            time_limit,
            plot,
            k,
            out,
        } => {
            let params = PlacementParams {
                budget,
                segment: where_,
                reach: match reach {
                    ReachArg::Home => ReachMode::Home,
                    ReachArg::Work => ReachMode::Work,
                    ReachArg::Both => ReachMode::Both,
                    ReachArg::Commute => ReachMode::Commute,
                },
                weight: match weight {
                    WeightArg::Count => Weight::Count,
                    WeightArg::Budget => Weight::Budget,
                },
                must_include,
                exclude,
                time_limit_s: time_limit,
            };
            let radii = parse_radii(&reach_m)?;
            run_placement(&dir, &params, &radii, compare_kinds, plot, KFloor::new(k)?, &out)
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

fn run_demo(out: &Path, customers: u64, seed: u64, format: FormatArg) -> Result<(), Error> {
    let format = match format {
        FormatArg::Csv => DemoFormat::Csv,
        FormatArg::Parquet => DemoFormat::Parquet,
    };
    let bar = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(customers);
        pb.set_style(
            ProgressStyle::with_template("{spinner} customers {bar:40} {pos}/{len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let summary = demo::generate(out, &DemoParams { customers, seed, format }, &|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    println!(
        "wrote {}: {} customers, {} touchpoints, {} deals, {} campaigns, {} sites, 3 projects, districts.geojson, truth.json",
        out.display(),
        summary.customers,
        summary.touchpoints,
        summary.deals,
        summary.campaigns,
        summary.sites
    );
    Ok(())
}

/// Loads a dataset for an analysis, saying on stderr how many rows of each table were rejected
/// (and values nulled) and where to see why; with `--strict` any rejected row is exit 2.
fn load(dir: &Path, tables: &[Table]) -> Result<Dataset, Error> {
    let pb = spinner("reading and validating tables");
    let ds = Dataset::load_with(dir, tables, INGEST.get().copied().unwrap_or_default());
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

/// Prints the ingest report whatever happens to the rejects file, then exits 0 only for a clean
/// dataset: rejected rows are exit 2 (so `validate` can gate a pipeline), an unwritable rejects
/// file with nothing rejected is a warning.
fn run_validate(dir: &Path, json: bool, rejects: Option<PathBuf>) -> Result<(), Error> {
    let ds = load(dir, &Table::ALL)?;
    let rejects_path = rejects.unwrap_or_else(|| dir.join("rejects.csv"));
    let written = write_frame(&ds.rejects_frame()?, &rejects_path);
    report_validation(&ds, dir, json, &rejects_path);
    match (ds.rejects.len(), written) {
        (0, Ok(())) => Ok(()),
        (0, Err(e)) => {
            eprintln!("warning: no rows rejected, but the rejects file was not written: {e}");
            Ok(())
        }
        (n, Ok(())) => Err(Error::BadInput(format!("{n} rows rejected; see {}", rejects_path.display()))),
        (n, Err(e)) => Err(Error::BadInput(format!(
            "{n} rows rejected, and the rejects file was not written ({e}); pass --rejects FILE"
        ))),
    }
}

fn report_validation(ds: &custmap_engine::Dataset, dir: &Path, json: bool, rejects_path: &Path) {
    if json {
        let doc = serde_json::json!({ "tables": ds.report.tables, "time_zone": ds.report.time_zone });
        println!("{doc}");
        return;
    }
    println!("dataset {} (timestamps without an offset read as {})", dir.display(), ds.report.time_zone);
    println!("{:<12} {:>10} {:>10} {:>10}", "table", "read", "accepted", "rejected");
    for (name, t) in &ds.report.tables {
        println!("{name:<12} {:>10} {:>10} {:>10}", t.read, t.accepted, t.rejected);
    }
    let mut reasons: std::collections::BTreeMap<(String, String), u64> = std::collections::BTreeMap::new();
    for r in ds.rejects.iter().chain(&ds.nulled) {
        *reasons.entry((r.table.to_string(), r.reason.clone())).or_default() += 1;
    }
    for ((table, reason), n) in &reasons {
        println!("  {table}: {n} x {reason}");
    }
    if !ds.nulled.is_empty() {
        println!("values nulled (rows kept): {}", ds.nulled.len());
    }
    println!(
        "rejects: {} rows -> {} (table, row, line, column, reason, value, outcome)",
        ds.rejects.len(),
        rejects_path.display()
    );
}

fn run_heatmap(dir: &Path, params: &HeatmapParams, metric: &str, engine: &EngineArgs, out: &Path) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    params.check()?;
    let (name, districts, result) = match connect(engine, dir)? {
        None => {
            let ds = load(dir, &[Table::Deals])?;
            let pb = spinner("aggregating cells");
            let result = heatmap(&ds, params)?;
            pb.finish_and_clear();
            (ds.name, ds.districts, result)
        }
        #[cfg(feature = "cluster")]
        Some(cluster) => {
            let pb = spinner("reducing cells on the cluster");
            let base =
                custmap::cluster::jobs::heatmap_base(&cluster, params.location, params.segment.as_deref(), params.res)?;
            let result = base.at(params)?;
            pb.finish_and_clear();
            (dataset_name(dir), custmap_engine::io::dataset::load_districts(dir)?, result)
        }
    };
    match format {
        OutputFormat::Png | OutputFormat::Svg => {
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            if result.cells.column(metric).is_err() {
                return Err(Error::BadInput(format!("unknown metric '{metric}' (columns: {})", metric_names(&result))));
            }
            let spec = MapSpec {
                cells: &result.cells,
                metric,
                title: views::map_title(metric, params),
                subtitle: views::map_subtitle(&result, params),
                districts: districts.as_ref(),
                size: (1400, 1000),
                overlay: Vec::new(),
            };
            let bytes = render_map(&spec, image)?;
            custmap_engine::io::write::write_atomic(out, |w| {
                std::io::Write::write_all(w, &bytes)
                    .map_err(|e| Error::Write { path: out.into(), message: e.to_string() })
            })?;
        }
        OutputFormat::Json => {
            let doc = views::heatmap_json(&name, &result)?;
            custmap_engine::io::write::write_atomic(out, |w| {
                serde_json::to_writer(w, &doc).map_err(|e| Error::Internal(e.to_string()))
            })?;
        }
        _ => write_frame(&result.cells, out)?,
    }
    println!(
        "wrote {} cells to {} (res {}, {}, k = {}: {} small cells merged into parents, {} dropped, {} with a figure withheld)",
        result.cells.height(),
        out.display(),
        params.res.get(),
        params.location.as_str(),
        params.k.get(),
        result.suppressed.merged,
        result.suppressed.dropped,
        result.suppressed.withheld
    );
    Ok(())
}

#[cfg(feature = "cluster")]
fn dataset_name(dir: &Path) -> String {
    dir.file_name().map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned())
}

#[cfg(feature = "cluster")]
type ClusterSession = custmap::cluster::Cluster;
#[cfg(not(feature = "cluster"))]
type ClusterSession = std::convert::Infallible;

/// The scheduler `--engine` names for the server; `None` for local.
fn cluster_target(engine: &EngineArgs) -> Result<Option<custmap::http::ClusterTarget>, Error> {
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
fn connect(engine: &EngineArgs, dir: &Path) -> Result<Option<ClusterSession>, Error> {
    if engine.engine == "local" {
        return Ok(None);
    }
    #[cfg(feature = "cluster")]
    {
        use custmap::cluster::{Cluster, Engine};
        match engine.engine.parse::<Engine>()? {
            Engine::Local => Ok(None),
            Engine::Ballista { host, port } => {
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

fn run_cluster(command: ClusterCommand) -> Result<(), Error> {
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

fn metric_names(result: &HeatmapResult) -> String {
    result
        .cells
        .get_column_names()
        .iter()
        .filter(|n| n.as_str() != "hex_id")
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<ByArg> for By {
    fn from(b: ByArg) -> By {
        match b {
            ByArg::Channel => By::Channel,
            ByArg::Campaign => By::Campaign,
        }
    }
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

fn run_attribution(
    dir: &Path,
    params: &AttributionParams,
    chart: Option<ChartChoice>,
    paths: Option<&Path>,
    engine: &EngineArgs,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if let Some(p) = paths {
        if !matches!(OutputFormat::from_path(p)?, OutputFormat::Csv | OutputFormat::Parquet | OutputFormat::Arrow) {
            return Err(Error::BadInput(format!(
                "--paths {}: write the paths as .csv, .parquet or .arrow",
                p.display()
            )));
        }
    }
    if format == OutputFormat::GeoJson {
        return Err(Error::BadInput(format!("{}: attribution writes tables or charts, not GeoJSON", out.display())));
    }
    params.check()?;
    #[cfg(feature = "cluster")]
    if let Some(cluster) = connect(engine, dir)? {
        return run_cluster_attribution(dir, &cluster, params, chart, paths, out);
    }
    #[cfg(not(feature = "cluster"))]
    connect(engine, dir)?;
    let ds = load(dir, &[Table::Touchpoints, Table::Deals, Table::Campaigns])?;
    let pb = spinner("attributing");
    let result = attribution(&ds, params)?;
    pb.finish_and_clear();
    if let Some(p) = paths {
        write_paths(&funnel::journeys_for(&ds, params)?, p)?;
    }
    if let Some(image) = image_format(format) {
        let chart = chart.unwrap_or(if params.models.len() > 1 { ChartChoice::Compare } else { ChartChoice::Roi });
        let months = if chart == ChartChoice::Monthly {
            Some(funnel::monthly(&funnel::journeys_for(&ds, params)?, params.by)?)
        } else {
            None
        };
        let spec = views::attribution_chart(&result, months.as_ref(), chart)?;
        write_bytes(out, &render_chart(&spec, image)?)?;
        println!("wrote a {chart:?} chart to {}", out.display());
        return Ok(());
    }
    if chart == Some(ChartChoice::Monthly) {
        // The monthly series as a table.
        let months = funnel::monthly(&funnel::journeys_for(&ds, params)?, params.by)?;
        write_frame(&months, out)?;
        println!("wrote {} month x {} rows to {}", months.height(), params.by.column(), out.display());
        return Ok(());
    }
    write_attribution(&ds.name, params, &result, out)
}

fn write_paths(j: &custmap_engine::analytics::attribution::Journeys, p: &Path) -> Result<(), Error> {
    let table = j.path_table()?;
    write_frame(&table, p)?;
    println!("wrote {} distinct paths to {}", table.height(), p.display());
    Ok(())
}

/// Attribution with the journeys reduced on a cluster: the path-count models, charts and tables.
#[cfg(feature = "cluster")]
fn run_cluster_attribution(
    dir: &Path,
    cluster: &custmap::cluster::Cluster,
    params: &AttributionParams,
    chart: Option<ChartChoice>,
    paths: Option<&Path>,
    out: &Path,
) -> Result<(), Error> {
    if chart == Some(ChartChoice::Monthly) {
        return Err(Error::BadInput("the monthly series needs each lead's dates: use --engine local for it".into()));
    }
    let pb = spinner("reducing journeys on the cluster");
    let j = custmap::cluster::jobs::journeys(cluster, params.by, params.window_days)?;
    pb.finish_and_clear();
    let campaigns = custmap_engine::Dataset::load_side_table(dir, Table::Campaigns)?;
    if let Some((_, rejects)) = campaigns.as_ref().filter(|(_, r)| !r.is_empty()) {
        println!("campaigns: {} rows rejected (custmap validate DIR lists them)", rejects.len());
    }
    let result =
        custmap_engine::analytics::attribution::attribution_of(&j, campaigns.as_ref().map(|(f, _)| f), params)?;
    if let Some(p) = paths {
        write_paths(&j, p)?;
    }
    if let Some(image) = image_format(OutputFormat::from_path(out)?) {
        let chart = chart.unwrap_or(if params.models.len() > 1 { ChartChoice::Compare } else { ChartChoice::Roi });
        let spec = views::attribution_chart(&result, None, chart)?;
        write_bytes(out, &render_chart(&spec, image)?)?;
        println!("wrote a {chart:?} chart to {}", out.display());
        return Ok(());
    }
    write_attribution(&dataset_name(dir), params, &result, out)
}

/// Writes an attribution table (JSON with its qualifiers, or a table format) and reports it.
fn write_attribution(
    name: &str,
    params: &AttributionParams,
    result: &custmap_engine::analytics::AttributionResult,
    out: &Path,
) -> Result<(), Error> {
    if OutputFormat::from_path(out)? == OutputFormat::Json {
        let doc = views::attribution_json(name, result)?;
        custmap_engine::io::write::write_atomic(out, |w| {
            serde_json::to_writer(w, &doc).map_err(|e| Error::Internal(e.to_string()))
        })?;
    } else {
        write_frame(&result.table, out)?;
    }
    let why: Vec<String> = result.unattributed_reasons.iter().map(|(reason, n, _)| format!("{n} {reason}")).collect();
    println!(
        "wrote {} rows to {} ({} of {} conversions left unattributed{}; window {} days)",
        result.table.height(),
        out.display(),
        result.unattributed.0,
        result.conversions.0,
        if why.is_empty() { String::new() } else { format!(": {}", why.join(", ")) },
        params.window_days
    );
    if let Some(se) = result.shapley_std_error {
        println!(
            "shapley: more than {} {}s, so sampled ({} permutations); largest standard error {se:.4} conversions",
            custmap_engine::analytics::attribution::shapley::EXACT_MAX,
            params.by.column(),
            custmap_engine::analytics::attribution::shapley::SAMPLES
        );
    }
    Ok(())
}

fn run_geo_attribution(
    dir: &Path,
    params: &AttributionParams,
    location: Location,
    res: Res,
    k: KFloor,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if image_format(format).is_some() {
        return Err(Error::BadInput("--geo writes a table (.csv .parquet .arrow .json .geojson)".into()));
    }
    let ds = load(dir, &[Table::Touchpoints, Table::Deals, Table::Campaigns])?;
    let (table, suppressed) = attribution_by_place(&ds, params, location, res, k)?;
    write_frame(&table, out)?;
    println!(
        "wrote {} cell x {} rows to {} ({} attribution by {} place, res {}, k = {}: {} small cells merged, {} dropped)",
        table.height(),
        params.by.column(),
        out.display(),
        params.models[0].name(),
        location.as_str(),
        res.get(),
        k.get(),
        suppressed.merged,
        suppressed.dropped
    );
    Ok(())
}

fn parse_radii(items: &[String]) -> Result<std::collections::HashMap<String, f64>, Error> {
    items
        .iter()
        .map(|item| {
            let (kind, m) = item
                .split_once('=')
                .ok_or_else(|| Error::BadInput(format!("--reach-m '{item}' is not KIND=METRES")))?;
            let m: f64 =
                m.trim().parse().map_err(|_| Error::BadInput(format!("--reach-m '{item}': '{m}' is not a number")))?;
            if !(m.is_finite() && m >= 0.0) {
                return Err(Error::BadInput(format!("--reach-m '{item}': radius must be >= 0")));
            }
            Ok((kind.trim().to_string(), m))
        })
        .collect()
}

fn run_placement(
    dir: &Path,
    params: &PlacementParams,
    radii: &std::collections::HashMap<String, f64>,
    compare_kinds: bool,
    plot: PlotArg,
    k: KFloor,
    out: &Path,
) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    if format == OutputFormat::GeoJson {
        return Err(Error::BadInput(format!(
            "{}: placement writes .json (the report), a table (.csv .parquet .arrow) or the reach-versus-budget curve (.png .svg)",
            out.display()
        )));
    }
    params.check()?;
    let ds = load(dir, &[Table::Sites])?;
    let pb = spinner("computing reach");
    let coverage = Coverage::build(&ds, params.segment.as_deref(), params.reach, params.weight, radii)?;
    let mut report = coverage.plan(params)?;
    report.floor(k)?;
    pb.finish_and_clear();
    if let Some(image) = image_format(format) {
        let bytes = match plot {
            PlotArg::Map => {
                let heat = heatmap(&ds, &views::placement_heatmap_params(params, k))?;
                views::placement_map(&ds, &coverage, &report, params, &heat, image)?
            }
            PlotArg::Curve => views::reach_curve(&report, params, image)?,
        };
        write_bytes(out, &bytes)?;
    } else if format == OutputFormat::Json {
        let doc = serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?;
        custmap_engine::io::write::write_atomic(out, |w| {
            serde_json::to_writer_pretty(w, &doc).map_err(|e| Error::Internal(e.to_string()))
        })?;
    } else {
        let rows =
            if compare_kinds { serde_json::to_value(&report.baselines) } else { serde_json::to_value(&report.sites) }
                .map_err(|e| Error::Internal(e.to_string()))?;
        write_frame(&custmap_engine::io::write::json_rows_to_frame(&rows)?, out)?;
    }
    let reach = match report.weight {
        Weight::Count => format!("reach {:.0} of {} prospects", report.reach, report.prospects),
        Weight::Budget => format!(
            "reach {:.0} of {:.0} yuan of purchasing power ({} prospects)",
            report.reach, report.total_weight, report.prospects
        ),
    };
    println!(
        "plan: {} sites, cost {:.0} of {:.0}, {reach} ({}) -> {}",
        report.sites.len(),
        report.cost,
        report.budget,
        if report.proven_optimal {
            "proven optimal".to_string()
        } else {
            format!("upper bound {:.1}, gap at most {:.2}%", report.upper_bound, report.gap * 100.0)
        },
        out.display()
    );
    Ok(())
}

fn run_serve(dir: Option<&Path>, addr: &str, data_dir: &Path, config: custmap::http::Config) -> Result<(), Error> {
    // Keeps a generated demo city alive for as long as the server runs.
    let mut demo_dir = None;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let tmp = tempfile::tempdir().map_err(|e| Error::Internal(format!("temporary directory: {e}")))?;
            let city = tmp.path().join("demo");
            eprintln!("generating the demo city ({} customers) ...", DemoParams::default().customers);
            demo::generate(&city, &DemoParams::default(), &|_, _| {})?;
            demo_dir = Some(tmp);
            city
        }
    };
    let ds = load(&dir, &Table::ALL)?;
    let registry = custmap::http::Registry::open(data_dir, vec![ds])?;
    let names: Vec<String> = registry.list().iter().map(|e| e.dataset.name.clone()).collect();
    let writes = if config.token.is_some() { "uploads on" } else { "uploads off (set CUSTMAP_TOKEN)" };
    let exact = if config.analyst_token.is_some() || config.token.is_some() {
        format!("exact figures with a token, floor k = {}", config.policy.min_k.get())
    } else {
        "exact figures off (set CUSTMAP_ANALYST_TOKEN)".to_string()
    };
    let public = format!(
        "public: differentially private heatmaps, epsilon {} per dataset, res {:?}",
        config.policy.public.epsilon, config.policy.public.resolutions
    );
    let runtime = tokio::runtime::Runtime::new().map_err(|e| Error::Internal(format!("runtime: {e}")))?;
    eprintln!(
        "serving {} on http://{addr}/ (API under /api/v1/; {public}; {exact}; {writes}, data directory {}); Ctrl-C to stop",
        names.join(", "),
        data_dir.display()
    );
    let state = custmap::http::AppState::with(registry, config);
    let result = runtime.block_on(custmap::http::serve(state, addr));
    drop(demo_dir);
    result.map_err(|e| Error::Write { path: addr.into(), message: format!("cannot serve: {e}") })
}

fn run_funnel(dir: &Path, by: By, out: &Path) -> Result<(), Error> {
    let format = OutputFormat::from_path(out)?;
    let ds = load(dir, &[Table::Touchpoints, Table::Deals])?;
    let params = AttributionParams { by, ..AttributionParams::default() };
    let table = funnel::funnel(&funnel::journeys_for(&ds, &params)?, by)?;
    if let Some(image) = image_format(format) {
        let spec = views::funnel_chart(&table, by)?;
        write_bytes(out, &render_chart(&spec, image)?)?;
    } else {
        write_frame(&table, out)?;
    }
    println!("wrote the funnel of {} {}s to {}", table.height(), by.column(), out.display());
    Ok(())
}

fn run_referrals(
    dir: &Path,
    params: &custmap_engine::analytics::referrals::ReferralsParams,
    out: &Path,
) -> Result<(), Error> {
    use custmap_engine::analytics::referrals::{referrals, ReferralsBy};
    let format = OutputFormat::from_path(out)?;
    let ds = load(dir, &[Table::Touchpoints, Table::Deals])?;
    let result = referrals(&ds, params)?;
    let cells = params.by == ReferralsBy::Cell;
    match format {
        OutputFormat::Json => {
            let doc = views::referrals_json(&ds.name, &result, params.k.get())?;
            custmap_engine::io::write::write_atomic(out, |w| {
                serde_json::to_writer_pretty(w, &doc).map_err(|e| Error::Internal(e.to_string()))
            })?;
        }
        OutputFormat::Png | OutputFormat::Svg if cells => {
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            let spec = MapSpec {
                cells: &result.table,
                metric: "referred_customers",
                title: "Where advocates live: customers they referred".into(),
                subtitle: format!(
                    "res {}, {} of advocates, k = {} ({} small cells dropped)",
                    params.res.get(),
                    params.location.as_str(),
                    params.k.get(),
                    result.dropped
                ),
                districts: ds.districts.as_ref(),
                size: (1400, 1000),
                overlay: Vec::new(),
            };
            write_bytes(out, &render_map(&spec, image)?)?;
        }
        OutputFormat::Png | OutputFormat::Svg => {
            let image = if format == OutputFormat::Png { ImageFormat::Png } else { ImageFormat::Svg };
            write_bytes(out, &render_chart(&views::referrals_chart(&result)?, image)?)?;
        }
        OutputFormat::GeoJson if !cells => {
            return Err(Error::BadInput(
                "referrals by referrer or channel are tables (.csv .parquet .arrow .json) or charts (.png .svg)".into(),
            ));
        }
        _ => write_frame(&result.table, out)?,
    }
    let s = &result.summary;
    let pct = |x: Option<f64>| x.map_or_else(|| "n/a".to_string(), |v| format!("{:.1}%", v * 100.0));
    println!(
        "wrote {} rows to {}: {} advocates referred {} of {} customers; referred buyers {} of all buyers, \
         revenue {}; conversion referred {} vs others {}; {} referral links ignored",
        result.table.height(),
        out.display(),
        s.advocates,
        s.referred_customers,
        s.customers,
        pct(s.referred_share_of_buyers),
        pct(s.referred_share_of_revenue),
        pct(s.referred_conversion),
        pct(s.other_conversion),
        s.ignored_links
    );
    Ok(())
}

fn run_import(file: &Path, out: &Path, cols: &SalesColumns) -> Result<(), Error> {
    let (customers, deals) = sales_to_tables(file, cols)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Write { path: out.into(), message: e.to_string() })?;
    write_frame(&customers, &out.join("customers.csv"))?;
    write_frame(&deals, &out.join("deals.csv"))?;
    println!("wrote {}: {} customers, {} deals", out.display(), customers.height(), deals.height());
    Ok(())
}
