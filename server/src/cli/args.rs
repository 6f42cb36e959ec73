//! The command line's grammar (clap): every command, its options and their defaults.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Parser, Debug)]
#[command(
    name = "custmap",
    version,
    about = "Customer-map analytics on H3 hexagons: purchasing-power heatmaps from CRM records"
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
    /// Fail (exit 2) when any input row was rejected, instead of going on without it.
    #[arg(long, global = true)]
    pub(super) strict: bool,
    /// Time zone of timestamps that carry none (`2025-01-05 10:00`): UTC (default) or a fixed
    /// offset like +08:00. Timestamps with `Z` or an offset are read as written.
    #[arg(long, global = true, default_value = "UTC", allow_hyphen_values = true)]
    pub(super) tz: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum FormatArg {
    Csv,
    Parquet,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
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
        /// The building stock: realistic (grows with the city: ~300,000 residential and 50,000
        /// office buildings at 10M customers) or concentrated (2,500 and 800 at any size).
        #[arg(long, value_enum, default_value_t = Places::Realistic)]
        places: Places,
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
        #[command(flatten)]
        request: HeatmapRequest,
        /// Prior strength m of the empirical-Bayes shrinkage.
        #[arg(long, default_value_t = 10.0)]
        prior: f64,
        /// k-ring smoothing radius for purchasing power (0 = off).
        #[arg(long, default_value_t = 0)]
        smooth: u32,
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
        #[command(flatten)]
        request: AttributionRequest,
        /// Attribute by place instead: conversions per H3 cell x channel, by where converting
        /// customers live or work (first model only; table or .geojson).
        #[arg(long, value_enum)]
        geo: Option<Location>,
        /// H3 resolution of --geo.
        #[arg(long, default_value_t = 8)]
        res: u8,
        /// Also write the distinct journeys (path, conversions, nulls, value) to this table file:
        /// the input of other attribution tools, for comparing or auditing.
        #[arg(long)]
        paths: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Lead -> visit -> deal funnel per first-touch channel or campaign, with stage rates and
    /// median days between stages. Format from --out's extension (table or .png/.svg chart).
    Funnel {
        dir: PathBuf,
        #[command(flatten)]
        request: FunnelRequest,
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
        #[command(flatten)]
        request: ReferralsRequest,
        #[arg(long)]
        out: PathBuf,
    },
    /// Choose ad sites within a budget to reach the most target prospects (each counted once
    /// across home, work and commute). .json gets the full report; .csv/.parquet/.arrow the
    /// chosen sites (or, with --compare-kinds, the whole budget on one kind at a time).
    #[command(allow_negative_numbers = true)]
    Placement {
        dir: PathBuf,
        #[command(flatten)]
        request: PlacementRequest,
        /// Write the per-kind baselines (towers vs bus routes ...) instead of the plan's sites.
        #[arg(long)]
        compare_kinds: bool,
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
        /// Total epsilon of the public (no token) differentially private release, per dataset version.
        #[arg(long, default_value_t = 8.0)]
        public_epsilon: f64,
        /// Total delta of the public release, per dataset version.
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
pub(super) struct EngineArgs {
    /// `local` (polars, in this process) or `ballista://HOST:PORT` (a custmap cluster scheduler;
    /// the dataset's Parquet tables must be at the same path on every executor).
    #[arg(long, default_value = "local")]
    pub(super) engine: String,
    /// Longest a cluster query may take, seconds.
    #[arg(long, default_value_t = 600)]
    pub(super) cluster_timeout_s: u64,
}

#[derive(Subcommand, Debug)]
pub(super) enum ClusterCommand {
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
