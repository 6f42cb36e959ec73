//! Mutation fuzzing of every reader of user input: CSV bytes, WKT, `--where` text, districts
//! GeoJSON. Seeds are valid inputs; each case mutates one seed a few times (flip, insert, delete,
//! duplicate a span, splice in a hostile token) and checks that the reader answers (a value or a
//! clear error) without panicking, with accepted + rejected = read for CSV.
//!
//! The default run is a few seconds; `CUSTMAP_FUZZ_SECS=600 cargo test --release --workspace
//! --test engine fuzz -- --nocapture` runs each target for that long. Inputs that ever failed are
//! kept in `tests/fuzz_corpus/` and replayed first.

use std::time::{Duration, Instant};

use custmap_engine::analytics::Segment;
use custmap_engine::io::read::read_csv_bytes;
use custmap_engine::io::schema::Table;
use custmap_engine::io::validate::{validate, IngestOptions};
use custmap_engine::spatial::geometry::parse_site_wkt;
use custmap_engine::spatial::Districts;
use polars::prelude::{DataType, Field, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\"\"",
    b"\r",
    b"\n",
    b"\r\n",
    b",",
    b"\xff",
    b"\xe4\xb8",
    b"\0",
    b"(",
    b")",
    b"NaN",
    b"-inf",
    b"1e309",
    b"9999999999999999999999",
    b" AND ",
    b" OR ",
    b"NOT ",
    b"IN (",
    b"'",
    b"--",
    b"/*",
    b"[",
    b"]",
    b"{",
    b"}",
    b"POINT",
    b"EMPTY",
    b"-0",
    b"\xef\xbb\xbf",
];

fn mutate(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if b.is_empty() { 0 } else { rng.random_range(0..=b.len()) };
        match rng.random_range(0..5) {
            0 if at < b.len() => b[at] = rng.random(),
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                b.splice(at..at, t.iter().copied());
            }
            2 if at < b.len() => {
                let end = (at + rng.random_range(1..16)).min(b.len());
                b.drain(at..end);
            }
            3 if at < b.len() => {
                let end = (at + rng.random_range(1..64)).min(b.len());
                let span = b[at..end].to_vec();
                b.splice(at..at, span);
            }
            _ => b.truncate(at),
        }
    }
    b
}

fn budget() -> Duration {
    let secs = std::env::var("CUSTMAP_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    Duration::from_secs(secs)
}

/// Runs `check` on the corpus files of `target`, then on mutations of `seeds` for the budget.
fn fuzz(target: &str, seeds: &[&[u8]], check: impl Fn(&[u8])) -> u64 {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus").join(target);
    if let Ok(entries) = std::fs::read_dir(&corpus) {
        for e in entries.flatten() {
            check(&std::fs::read(e.path()).unwrap());
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed ^ target.len() as u64);
    let (start, limit) = (Instant::now(), budget());
    let mut cases = 0u64;
    while start.elapsed() < limit {
        let seed = seeds[rng.random_range(0..seeds.len())];
        let input = mutate(&mut rng, seed);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        if run.is_err() {
            std::fs::create_dir_all(&corpus).unwrap();
            let path = corpus.join(format!("crash-{cases}"));
            std::fs::write(&path, &input).unwrap();
            panic!("{target}: input kept in {}", path.display());
        }
        cases += 1;
    }
    eprintln!("fuzz {target}: {cases} cases in {:?}", start.elapsed());
    cases
}

#[test]
fn fuzz_csv_reader_and_validation() {
    let seeds: &[&[u8]] = &[
        b"customer_id,home_lat,home_lng,budget,created_at,note\nC1,30.5,114.3,1000,2025-01-02,a\nC2,30.6,114.2,,2025/01/03,\"x, y\"\nC3,,,5,,\"multi\nline\"\n",
        b"customer_id,ts,channel,event\nC1,2025-01-01T10:00:00+08:00,web,lead\nC1,2025-01-02 10:00,web,visit\n",
        b"customer_id,home_lat,home_lng\r\nA,30.5,114.3\r\nB,91,114.3\r\n",
    ];
    let path = std::path::Path::new("fuzz.csv");
    fuzz("csv", seeds, |bytes| {
        let table = if bytes.starts_with(b"customer_id,ts") { Table::Touchpoints } else { Table::Customers };
        let Ok(raw) = read_csv_bytes(path, bytes.to_vec()) else { return };
        let read = raw.read;
        if table == Table::Touchpoints {
            return;
        }
        match validate(table, raw, None, IngestOptions::default()) {
            Ok(v) => assert_eq!(v.frame.height() as u64 + v.rejects.len() as u64, read),
            Err(custmap_engine::Error::Internal(e)) => panic!("internal error: {e}"),
            Err(_) => {}
        }
    });
}

#[test]
fn fuzz_wkt_parser() {
    let seeds: &[&[u8]] =
        &[b"POINT (114.3 30.5)", b"LINESTRING (114.2 30.5, 114.4 30.5, 114.5 30.6)", b"POINT EMPTY", b"POINT(1 2)"];
    fuzz("wkt", seeds, |bytes| {
        let _ = parse_site_wkt(&String::from_utf8_lossy(bytes));
    });
}

#[test]
fn fuzz_where_parser() {
    let seeds: &[&[u8]] = &[
        b"budget >= 3000000 AND desired_area_sqm >= 120",
        b"district IN ('Wuchang', 'Jianghan') OR NOT (budget < 5)",
        b"age_band = '35-44' AND budget BETWEEN 1 AND 2",
        b"(budget > 1 OR budget < 0) AND district IS NOT NULL",
    ];
    let schema = Schema::from_iter([
        Field::new("budget".into(), DataType::Float64),
        Field::new("desired_area_sqm".into(), DataType::Float64),
        Field::new("district".into(), DataType::String),
        Field::new("age_band".into(), DataType::String),
    ]);
    fuzz("where", seeds, |bytes| {
        let _ = Segment::parse(&String::from_utf8_lossy(bytes), &schema);
    });
}

#[test]
fn fuzz_districts_geojson() {
    let seeds: &[&[u8]] = &[
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"A"},"geometry":{"type":"Polygon","coordinates":[[[114.2,30.5],[114.3,30.5],[114.3,30.6],[114.2,30.5]]]}}]}"#,
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"B"},"geometry":{"type":"MultiPolygon","coordinates":[[[[179.9,-17],[180,-17],[180,-16.9],[179.9,-17]]],[[[-180,-17],[-179.9,-17],[-180,-16.9],[-180,-17]]]]}}]}"#,
    ];
    fuzz("geojson", seeds, |bytes| {
        let _ = Districts::from_geojson(&String::from_utf8_lossy(bytes));
    });
}
