//! Scale-out on a real Ballista cluster: custmap's own scheduler and two executors on 127.0.0.1,
//! started by each test on free ports and stopped after it. The cluster's reductions must give
//! exactly the local engine's answers; a lost executor or an unreachable scheduler must give a
//! clear error, never a wrong answer.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custmap::cluster::{jobs, Cluster};
use custmap_engine::analytics::attribution::{attribution, attribution_of, journeys};
use custmap_engine::analytics::AttributionParams;
use custmap_engine::analytics::{heatmap, By, HeatmapParams, KFloor, Location, Model};
use custmap_engine::io::schema::Table;
use custmap_engine::polars::prelude::*;
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_custmap")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, within: Duration) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < within, "nothing listening on {port} after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process stopped with SIGTERM (then killed) when dropped.
struct Proc(Child);

impl Proc {
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let t = Instant::now();
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status;
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = self.0.kill();
                return self.0.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A scheduler and `n` executors (one task slot each) on free local ports.
struct LocalCluster {
    port: u16,
    executors: Vec<Proc>,
    scheduler: Proc,
}

impl LocalCluster {
    fn start(n: usize) -> LocalCluster {
        let port = free_port();
        let spawn = |args: &[String]| {
            Proc(Command::new(bin()).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn"))
        };
        let scheduler = spawn(&[
            "cluster".into(),
            "scheduler".into(),
            "--bind".into(),
            format!("127.0.0.1:{port}"),
            "--executor-timeout-s".into(),
            "5".into(),
        ]);
        wait_for_port(port, Duration::from_secs(30));
        let mut executors = Vec::new();
        for _ in 0..n {
            let (flight, grpc) = (free_port(), free_port());
            executors.push(spawn(&[
                "cluster".into(),
                "executor".into(),
                "--scheduler".into(),
                format!("127.0.0.1:{port}"),
                "--bind".into(),
                format!("127.0.0.1:{flight}"),
                "--grpc-port".into(),
                grpc.to_string(),
                "--cores".into(),
                "1".into(),
                "--heartbeat-s".into(),
                "1".into(),
            ]));
            wait_for_port(flight, Duration::from_secs(30));
            wait_for_port(grpc, Duration::from_secs(30));
        }
        // Registration follows the ports opening.
        std::thread::sleep(Duration::from_millis(1500));
        LocalCluster { port, executors, scheduler }
    }

    fn session(&self, dir: &Path) -> Cluster {
        self.session_within(dir, Duration::from_secs(120))
    }

    fn session_within(&self, dir: &Path, timeout: Duration) -> Cluster {
        let mut c = Cluster::connect("127.0.0.1", self.port, timeout).expect("connect");
        c.register_dataset(dir).expect("register");
        c
    }

    fn url(&self) -> String {
        format!("ballista://127.0.0.1:{}", self.port)
    }
}

fn demo(customers: u64, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args(["demo", "--out", dir.path().to_str().unwrap(), "--format", "parquet"])
        .args(["--customers", &customers.to_string(), "--seed", &seed.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir
}

/// The journeys built locally and on the cluster agree: paths, conversions, period, and leads
/// and visits per key. Returns the local ones.
fn assert_journeys_equal(ds: &Dataset, c: &Cluster, by: By, window: u32) -> journeys::Journeys {
    let local = journeys::build(ds, by, window).unwrap();
    let remote = jobs::journeys(c, by, window).unwrap();
    let what = format!("journeys by {} window {window}", by.column());
    assert_frames_equal(&local.path_table().unwrap(), &remote.path_table().unwrap(), &what);
    assert_eq!(local.totals(), remote.totals(), "{what}: conversions");
    assert_eq!(local.period, remote.period, "{what}: period");
    let per_key = |j: &journeys::Journeys| {
        let mut v: Vec<(String, u64, u64)> =
            (0..j.keys.len()).map(|k| (j.keys[k].clone(), j.leads[k], j.visits[k])).collect();
        v.sort();
        v
    };
    assert_eq!(per_key(&local), per_key(&remote), "{what}: leads and visits per key");
    local
}

fn assert_frames_equal(local: &DataFrame, cluster: &DataFrame, what: &str) {
    assert_eq!(local.shape(), cluster.shape(), "{what}: shapes differ");
    assert!(local.equals_missing(cluster), "{what}: frames differ\nlocal:\n{local}\ncluster:\n{cluster}");
}

#[test]
fn cluster_reductions_equal_the_local_engine() {
    let city = demo(4000, 7);
    let ds = Dataset::load(city.path()).unwrap();
    let cluster = LocalCluster::start(2);
    let c = cluster.session(city.path());
    jobs::check_clean(&c).expect("the demo city is clean");

    // Heatmaps: several resolutions, every location mode, segments of each operand type.
    let cases: [(u8, Location, Option<&str>); 5] = [
        (7, Location::Work, None),
        (9, Location::Home, Some("budget >= 3000000")),
        (8, Location::Both, Some("age_band IN ('35-44', '45-54') OR budget IS NULL")),
        (11, Location::Work, Some("desired_area_sqm BETWEEN 90 AND 140 AND created_at >= '2025-09-01'")),
        (6, Location::Both, Some("NOT (budget / 2 < 1000000) AND project_id LIKE 'P%'")),
    ];
    for (res, location, segment) in cases {
        let params = HeatmapParams {
            res: Res::new(res).unwrap(),
            location,
            segment: segment.map(str::to_string),
            k: KFloor::new(3).unwrap(),
            ..HeatmapParams::default()
        };
        let local = heatmap(&ds, &params).unwrap();
        let base = jobs::heatmap_base(&c, location, segment, params.res).unwrap();
        let remote = base.at(&params).unwrap();
        let what = format!("heatmap res {res} {} {segment:?}", location.as_str());
        assert!(local.cells.height() > 0, "{what}: empty");
        assert_eq!(local.totals, remote.totals, "{what}: totals");
        assert_eq!(local.suppressed, remote.suppressed, "{what}: suppressed");
        assert_frames_equal(&local.cells, &remote.cells, &what);
    }

    // Journey path counts, leads and visits, by channel and by campaign, two windows.
    for (by, window) in [(By::Channel, 365), (By::Campaign, 365), (By::Channel, 30)] {
        assert_journeys_equal(&ds, &c, by, window);
    }

    // The models on the reduced paths give the local credits (sums in another order: 1e-9).
    let params = AttributionParams {
        models: vec![Model::Markov, Model::Shapley, Model::Linear, Model::PositionBased, Model::FirstTouch],
        ..AttributionParams::default()
    };
    let local = attribution(&ds, &params).unwrap();
    let campaigns = Dataset::load_side_table(city.path(), Table::Campaigns).unwrap().map(|(f, _)| f);
    let remote = attribution_of(&jobs::journeys(&c, By::Channel, 365).unwrap(), campaigns.as_ref(), &params).unwrap();
    assert_eq!(local.table.shape(), remote.table.shape());
    for name in ["conversions", "revenue", "cost", "leads", "visits"] {
        let a = local.table.column(name).unwrap().cast(&DataType::Float64).unwrap();
        let b = remote.table.column(name).unwrap().cast(&DataType::Float64).unwrap();
        for (x, y) in a.f64().unwrap().into_no_null_iter().zip(b.f64().unwrap().into_no_null_iter()) {
            assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{name}: local {x} cluster {y}");
        }
    }
    assert!((local.unattributed.0 - remote.unattributed.0).abs() < 1e-9);
    let time_decay = AttributionParams { models: vec![Model::TimeDecay], ..AttributionParams::default() };
    let err = attribution_of(&jobs::journeys(&c, By::Channel, 365).unwrap(), None, &time_decay).unwrap_err();
    assert!(err.to_string().contains("time_decay"), "{err}");

    // The command line: --engine ballista:// writes the same file as --engine local.
    let tmp = tempfile::tempdir().unwrap();
    let run = |engine: &str, out: &PathBuf| {
        let o = Command::new(bin())
            .args(["heatmap", city.path().to_str().unwrap(), "--res", "9", "--location", "both"])
            .args(["--where", "budget >= 2000000", "--engine", engine, "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{engine}: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    };
    let a = run("local", &tmp.path().join("local.csv"));
    let b = run(&cluster.url(), &tmp.path().join("cluster.csv"));
    assert!(a.len() > 100);
    assert_eq!(a, b, "the CLI's heatmap differs between engines");
    let o = Command::new(bin())
        .args(["attribution", city.path().to_str().unwrap(), "--model", "markov", "--engine", &cluster.url()])
        .args(["--paths", tmp.path().join("paths.csv").to_str().unwrap(), "--out"])
        .arg(tmp.path().join("a.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The server with `--engine ballista://` answers the heatmap route byte for byte as locally.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let target =
        custmap::http::ClusterTarget { host: "127.0.0.1".into(), port: cluster.port, timeout: Duration::from_secs(60) };
    let served = |cluster: Option<custmap::http::ClusterTarget>, uri: &str| {
        let config =
            custmap::http::Config { cluster, analyst_token: Some("cluster-analyst".into()), ..Default::default() };
        let state = custmap::http::AppState::with(custmap::http::Registry::in_memory(vec![ds.clone()]), config);
        let uri = uri.to_string();
        rt.block_on(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::get(uri)
                .header("authorization", "Bearer cluster-analyst")
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = custmap::http::app(state).oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes()
        })
    };
    let heatmap =
        format!("/api/v1/datasets/{}/heatmap?res=9&location=both&k=3&where=budget%20%3E%3D%202000000", ds.name);
    let (local_body, cluster_body) = (served(None, &heatmap), served(Some(target.clone()), &heatmap));
    assert!(local_body.len() > 1000);
    assert_eq!(local_body, cluster_body, "the server's heatmap differs between engines");
    // ... and its attribution to 1e-9 (the same sums in another order).
    let route = format!("/api/v1/datasets/{}/attribution?model=markov", ds.name);
    let rows = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).unwrap()["rows"].clone();
    let (a, b) = (rows(&served(None, &route)), rows(&served(Some(target), &route)));
    assert_eq!(a.as_array().unwrap().len(), b.as_array().unwrap().len());
    for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        for name in ["conversions", "revenue", "cost", "leads"] {
            let (x, y) = (x[name].as_f64().unwrap(), y[name].as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{name}: local {x} cluster {y}");
        }
    }

    // A table ingest would reject is refused with the reason and count, not counted.
    let dirty = tempfile::tempdir().unwrap();
    for t in ["deals", "touchpoints"] {
        std::fs::copy(city.path().join(format!("{t}.parquet")), dirty.path().join(format!("{t}.parquet"))).unwrap();
    }
    let mut customers = ds.customers.head(Some(100)).select(["customer_id", "home_lat", "home_lng"]).unwrap();
    let twice = customers.head(Some(2));
    customers.vstack_mut(&twice).unwrap();
    let mut f = std::fs::File::create(dirty.path().join("customers.parquet")).unwrap();
    ParquetWriter::new(&mut f).finish(&mut customers).unwrap();
    let d = cluster.session(dirty.path());
    let err = jobs::check_clean(&d).unwrap_err().to_string();
    assert!(err.contains("2 rows with duplicate customer_id"), "{err}");
    assert!(err.contains("rows with deal for unknown customer"), "{err}");

    // Both processes stop cleanly on SIGTERM.
    let LocalCluster { mut executors, mut scheduler, .. } = cluster;
    for e in &mut executors {
        assert!(e.stop().success(), "executor did not stop cleanly");
    }
    assert!(scheduler.stop().success(), "scheduler did not stop cleanly");
}

#[test]
fn an_executor_lost_mid_query_never_gives_a_wrong_answer() {
    let city = demo(60_000, 3);
    let ds = Dataset::load_tables(city.path(), &[Table::Touchpoints, Table::Deals]).unwrap();
    let expected = journeys::build(&ds, By::Channel, 365).unwrap().path_table().unwrap();
    let mut cluster = LocalCluster::start(2);
    // Ballista 55 (adaptive planner) rolls back a job whose executor dies mid-stage and stalls;
    // the query's deadline turns that into a clear error. An answer that does come back must be
    // exactly the local one (the independent counts refuse a damaged one).
    let c = cluster.session_within(city.path(), Duration::from_secs(20));
    let query = std::thread::spawn(move || jobs::journeys(&c, By::Channel, 365).map(|j| j.path_table().unwrap()));
    std::thread::sleep(Duration::from_millis(400));
    let victim = &mut cluster.executors[0].0;
    victim.kill().unwrap();
    victim.wait().unwrap();
    let t = Instant::now();
    match query.join().unwrap() {
        Ok(paths) => assert_frames_equal(&expected, &paths, "journeys after losing an executor"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                ["did not answer within 20 s", "cluster query failed", "answer is inconsistent"]
                    .iter()
                    .any(|c| msg.contains(c)),
                "unclear: {msg}"
            );
            assert!(t.elapsed() < Duration::from_secs(25), "not bounded: {:?}", t.elapsed());
            eprintln!("query failed after the executor was lost ({:?}): {msg}", t.elapsed());
        }
    }
}

#[test]
fn an_unreachable_cluster_is_a_clear_error_in_bounded_time() {
    let port = free_port();
    let t = Instant::now();
    let err = Cluster::connect("127.0.0.1", port, Duration::from_secs(5)).err().expect("nothing listens there");
    assert!(t.elapsed() < Duration::from_secs(6));
    assert!(err.to_string().contains(&format!("cannot reach the Ballista scheduler at 127.0.0.1:{port}")), "{err}");

    let city = demo(300, 1);
    let out = city.path().join("h.csv");
    let o = Command::new(bin())
        .args(["heatmap", city.path().to_str().unwrap(), "--engine", &format!("ballista://127.0.0.1:{port}")])
        .args(["--cluster-timeout-s", "3", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach the Ballista scheduler"), "{err}");
    assert!(!out.exists());
    let o = Command::new(bin()).args(["heatmap", ".", "--engine", "spark://x", "--out", "h.csv"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// The cluster's jobs read timestamps as UTC while `--tz` moves naive ones locally: with a zone
/// other than UTC the two engines would disagree by the offset, so the cluster is refused.
#[test]
fn regression_a_local_time_zone_is_refused_on_the_cluster_not_ignored() {
    let city = demo(300, 1);
    let out = city.path().join("a.csv");
    let port = free_port();
    let o = Command::new(bin())
        .args(["--tz", "+08:00", "attribution", city.path().to_str().unwrap()])
        .args(["--engine", &format!("ballista://127.0.0.1:{port}"), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--tz +08:00 with --engine ballista://") && err.contains("reads timestamps as UTC"), "{err}");
    assert!(!out.exists());
}

/// Writes `frame` as `dir/name.parquet`.
fn parquet(dir: &Path, name: &str, mut frame: DataFrame) {
    let mut f = std::fs::File::create(dir.join(format!("{name}.parquet"))).unwrap();
    ParquetWriter::new(&mut f).finish(&mut frame).unwrap();
}

#[test]
fn the_cluster_refuses_by_the_same_checks_as_ingest_with_the_same_counts() {
    // Each bad row breaks one check of ingest's (SPEC §2): ingest names the first a row breaks,
    // the cluster counts each. Deals and touchpoints refer only to customers ingest accepts, so
    // no reference check muddies the counts. A null id is missing, not a repeat (regression:
    // the cluster counted it as a duplicate). -0.0 is 0.0 to both executors: a home at
    // (-0.0, 0.0) is at (0, 0), a price of -0.0 is not negative.
    let dir = tempfile::tempdir().unwrap();
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    parquet(
        dir.path(),
        "customers",
        df!(
            "customer_id" => [Some("C1"), Some("C2"), Some("C3"), None, Some(""), Some("C6"), Some("C7"), Some("C8"),
                              Some("C9"), Some("C10"), Some("C11"), Some("C12"), Some("C13"), Some("C14")],
            "home_lat" => [Some(31.2), None, Some(31.3), Some(31.2), Some(31.2), Some(31.0), Some(95.0), None,
                           Some(0.0), None, Some(31.2), Some(31.2), Some(31.2), Some(-0.0)],
            "home_lng" => [Some(121.4), None, Some(121.5), Some(121.4), Some(121.4), None, Some(121.0), None,
                           Some(0.0), None, Some(121.4), Some(121.4), Some(121.4), Some(0.0)],
            "work_lat" => [None, Some(31.2), None, None, None, None, None, Some(31.0), None, None, None, None, None, None],
            "work_lng" => [None, Some(121.5), None, None, None, None, None, Some(-200.0), None, None, None, None, None, None],
            "budget" => [Some(1e6), None, None, None, None, None, None, None, None, None, Some(-5.0), Some(inf), None, None],
            "desired_area_sqm" => [None, Some(90.0), None, None, None, None, None, None, None, None, None, None, Some(nan), None],
        )
        .unwrap(),
    );
    let day = |d: i32| d;
    let mut deals = df!(
        "deal_id" => [Some("D1"), Some("D2"), Some("D3"), Some("D4"), Some("D5"), Some("D6"), None, Some("D8")],
        "customer_id" => ["C1", "C2", "C3", "C1", "C2", "C3", "C1", "C1"],
        "signed_at" => [day(20_000), day(20_001), day(20_002), day(20_003), day(20_004), day(20_005), day(20_006), day(20_007)],
        "price" => [Some(3e6), Some(-1.0), None, Some(2e6), Some(2e6), Some(inf), Some(1e6), Some(-0.0)],
        "area_sqm" => [Some(90.0), None, None, None, Some(-3.0), None, None, None],
        "status" => [Some("signed"), None, Some("signed"), Some("maybe"), Some("cancelled"), None, None, None],
    )
    .unwrap();
    deals.apply("signed_at", |c| c.cast(&DataType::Date).unwrap()).unwrap();
    parquet(dir.path(), "deals", deals);
    let mut touchpoints = df!(
        "customer_id" => ["C1", "C2", "C3", "C1"],
        "ts" => [Some(1_700_000_000_000_000i64), Some(1_700_000_100_000_000), Some(1_700_000_200_000_000), None],
        "channel" => ["wechat", "douyin", "", "wechat"],
        "event" => [Some("lead"), Some("bogus"), None, Some("visit")],
    )
    .unwrap();
    touchpoints.apply("ts", |c| c.cast(&DataType::Datetime(TimeUnit::Microseconds, None)).unwrap()).unwrap();
    parquet(dir.path(), "touchpoints", touchpoints);

    // What ingest rejects or nulls, counted by table, column and reason.
    let ds = Dataset::load(dir.path()).unwrap();
    let mut local: Vec<(String, String, String, u64)> = Vec::new();
    for r in ds.rejects.iter().chain(&ds.nulled) {
        let reason = r.reason.trim_end_matches("; value read as missing").to_string();
        let key = (r.table.to_string(), r.column.clone(), reason);
        match local.iter_mut().find(|(t, c, why, _)| (t, c, why) == (&key.0, &key.1, &key.2)) {
            Some(entry) => entry.3 += 1,
            None => local.push((key.0, key.1, key.2, 1)),
        }
    }
    local.sort();
    assert_eq!(local.iter().map(|e| e.3).sum::<u64>(), 20, "every bad row found by ingest: {local:?}");

    let cluster = LocalCluster::start(1);
    let c = cluster.session(dir.path());
    let mut remote: Vec<(String, String, String, u64)> = jobs::problems(&c)
        .unwrap()
        .into_iter()
        .map(|p| {
            let reason = p.reason.trim_end_matches(" (ingest reads the value as missing)").to_string();
            (p.table.to_string(), p.column, reason, p.rows.expect("a row count"))
        })
        .collect();
    remote.sort();
    assert_eq!(local, remote, "the cluster's refusal differs from ingest's rejects");
    let err = jobs::check_clean(&c).unwrap_err().to_string();
    assert!(
        err.contains("customers.budget: 1 row with not a finite number (ingest reads the value as missing)"),
        "{err}"
    );

    // A column ingest would parse (numbers as text) is refused by its type, not misread.
    let typed = tempfile::tempdir().unwrap();
    parquet(
        typed.path(),
        "customers",
        df!("customer_id" => ["C1"], "home_lat" => [31.2], "home_lng" => [121.4], "budget" => ["3000000"]).unwrap(),
    );
    let t = cluster.session(typed.path());
    let problems = jobs::problems(&t).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].table, problems[0].column.as_str(), problems[0].rows), ("customers", "budget", None));
    assert!(problems[0].reason.contains("not DOUBLE"), "{}", problems[0]);

    // Whole-number customer ids are ids, as in ingest: checked as their text, not refused.
    let numeric = tempfile::tempdir().unwrap();
    parquet(
        numeric.path(),
        "customers",
        df!("customer_id" => [17i64, 18], "home_lat" => [31.2, 31.3], "home_lng" => [121.4, 121.5]).unwrap(),
    );
    assert_eq!(jobs::problems(&cluster.session(numeric.path())).unwrap(), []);

    // ... but whole-number ids in one table and text in another would join "017" to 17:
    // refused by type, and no reference query runs on them.
    let deals = df!("deal_id" => ["D1"], "customer_id" => ["017"], "signed_at" => [20_000i32], "price" => [1e6])
        .unwrap()
        .lazy()
        .with_column(col("signed_at").cast(DataType::Date))
        .collect()
        .unwrap();
    parquet(numeric.path(), "deals", deals);
    let problems = jobs::problems(&cluster.session(numeric.path())).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].table, problems[0].column.as_str(), problems[0].rows), ("deals", "customer_id", None));
}

#[test]
fn journeys_on_the_cluster_follow_the_engine_rule_on_its_edge_cases_and_deals_need_no_status() {
    // Each customer is one edge of the journey rule, run on the cluster by the engine's own
    // `customer_rule` (the `journey` function) and locally by the builder.
    let dir = tempfile::tempdir().unwrap();
    let day = |d: i32| d;
    let mut customers = df!(
        "customer_id" => ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"],
        "home_lat" => [31.2; 10],
        "home_lng" => [121.4; 10],
        // B: referred, no created_at, with touches (placed just before the first); C: referred,
        // nothing else (placed at the data's end); D: referred after their first touch (not
        // placed); E: referred before it (placed at created_at); I: referred at the very time
        // of their first touch (placed, first); J: referred, with a visit only.
        "referred_by" => [None, Some("A"), Some("A"), Some("A"), Some("A"), None, None, None, Some("A"), Some("A")],
        "created_at" => [None, None, None, Some(day(20_010)), Some(day(19_990)), None, None, None, Some(day(20_011)), None],
    )
    .unwrap();
    customers.apply("created_at", |c| c.cast(&DataType::Date).unwrap()).unwrap();
    parquet(dir.path(), "customers", customers);
    let t = |d: i64, h: i64| (d * 86_400 + h * 3_600) * 1_000_000;
    let mut touchpoints = df!(
        "customer_id" => ["A", "A", "B", "D", "E", "F", "F", "G", "G", "H", "H", "I", "J"],
        "ts" => [t(20_000, 9), t(20_001, 9), t(20_002, 9), t(20_003, 9), t(20_004, 9), t(20_005, 9),
                 t(20_005, 9), t(19_000, 9), t(20_006, 9), t(20_007, 9), t(20_008, 9), t(20_011, 0), t(20_004, 3)],
        // F: two touches at one time (ordered by channel); G: one touch long before the window;
        // H: a visit only, then a touch on a channel named like the referral key.
        "channel" => ["search", "wechat", "search", "douyin", "wechat", "wechat", "douyin", "search",
                      "wechat", "search", "referral", "douyin", "wechat"],
        "campaign_id" => [Some("S1"), None, Some("S1"), None, None, None, None, Some("S1"), None, None, None, None, None],
        "event" => ["lead", "click", "lead", "lead", "lead", "lead", "lead", "lead", "visit", "visit", "lead", "lead", "visit"],
    )
    .unwrap();
    touchpoints.apply("ts", |c| c.cast(&DataType::Datetime(TimeUnit::Microseconds, None)).unwrap()).unwrap();
    parquet(dir.path(), "touchpoints", touchpoints);
    // A converts the day of their second touch; G converts with no touch in a 30-day window.
    let mut deals = df!(
        "deal_id" => ["D1", "D2"],
        "customer_id" => ["A", "G"],
        "signed_at" => [day(20_001), day(20_009)],
        "price" => [3e6, 2e6],
    )
    .unwrap();
    deals.apply("signed_at", |c| c.cast(&DataType::Date).unwrap()).unwrap();
    parquet(dir.path(), "deals", deals);

    let ds = Dataset::load(dir.path()).unwrap();
    assert!(ds.rejects.is_empty(), "{:?}", ds.rejects);
    let cluster = LocalCluster::start(1);
    let c = cluster.session(dir.path());
    jobs::check_clean(&c).unwrap();
    for (by, window) in [(By::Channel, 365), (By::Campaign, 365), (By::Channel, 30)] {
        let local = assert_journeys_equal(&ds, &c, by, window);
        assert!(local.journeys.len() >= 6, "by {} window {window}: the cases make journeys", by.column());
    }
    // The deals have no status column (optional: a missing status is signed). Regression: the
    // cluster's SQL named it anyway, so attribution and the heatmap failed on such a dataset.
    let params = HeatmapParams { res: Res::new(8).unwrap(), k: KFloor::new(1).unwrap(), ..HeatmapParams::default() };
    let params = HeatmapParams { location: Location::Home, ..params };
    let local = heatmap(&ds, &params).unwrap();
    let remote = jobs::heatmap_base(&c, Location::Home, None, params.res).unwrap().at(&params).unwrap();
    assert_eq!(local.totals, remote.totals);
    assert_eq!(local.totals.customers, 10);
    assert_frames_equal(&local.cells, &remote.cells, "heatmap without deal statuses");
}
