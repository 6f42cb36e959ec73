//! Ingest: every rejects case of SPEC §2, the accounting invariant, CSV and Parquet alike.

use custmap_engine::io::validate::Reject;
use custmap_engine::{Dataset, Error};
use polars::prelude::*;

use crate::common::{dataset_dir, load};

const CUSTOMERS_OK: &[u8] = b"customer_id,home_lat,home_lng,work_lat,work_lng,budget,desired_area_sqm,district\n\
C1,30.55,114.31,30.60,114.27,4000000,130,Wuchang\n\
C2,30.56,114.32,,,1500000,90,Wuchang\n\
C3,,,30.59,114.26,,,Jianghan\n";

fn reasons(ds: &Dataset, table: &str) -> Vec<(u64, String, String)> {
    ds.rejects
        .iter()
        .filter(|r: &&Reject| r.table == table)
        .map(|r| (r.row, r.column.clone(), r.reason.clone()))
        .collect()
}

fn assert_accounting(ds: &Dataset) {
    for (name, t) in &ds.report.tables {
        assert_eq!(t.accepted + t.rejected, t.read, "{name}: accepted + rejected != read");
        let listed = ds.rejects.iter().filter(|r| r.table == *name).count() as u64;
        assert_eq!(listed, t.rejected, "{name}: rejects listed vs counted");
    }
}

#[test]
fn clean_dataset_is_accepted_whole_and_typed() {
    let (_d, ds) = load(&[("customers.csv", CUSTOMERS_OK)]);
    let ds = ds.unwrap();
    assert_eq!(ds.customers.height(), 3);
    assert!(ds.rejects.is_empty());
    assert_eq!(ds.customers.column("budget").unwrap().dtype(), &DataType::Float64);
    // Extra columns are kept as attributes.
    assert!(ds.customers.column("district").is_ok());
    // Absent optional columns exist, typed, as nulls.
    assert_eq!(ds.customers.column("created_at").unwrap().dtype(), &DataType::Date);
    assert_accounting(&ds);
}

#[test]
fn missing_required_column_is_a_file_error_naming_it() {
    let (_d, ds) = load(&[("customers.csv", b"id,home_lat\nC1,30\n")]);
    let err = ds.unwrap_err();
    assert!(matches!(err, Error::Schema { .. }));
    let msg = err.to_string();
    assert!(msg.contains("customers.csv") && msg.contains("customer_id"), "{msg}");
}

#[test]
fn no_customers_table_is_an_error() {
    let (_d, ds) = load(&[("deals.csv", b"deal_id\n")]);
    assert!(ds.unwrap_err().to_string().contains("customers"));
}

#[test]
fn bad_values_reject_their_rows_with_reasons() {
    let customers = b"customer_id,home_lat,home_lng,work_lat,work_lng,budget,desired_area_sqm,created_at\n\
C1,30.55,114.31,,,abc,100,2025-01-02\n\
C2,30.55,114.31,95.0,114.3,1000,100,2025-01-02\n\
C3,0,0,,,1000,100,2025-01-02\n\
C4,30.55,114.31,,,-5,100,2025-01-02\n\
C5,,,,,1000,100,2025-01-02\n\
C6,30.55,114.31,,,1000,100,2025-13-45\n\
C1,30.55,114.31,,,1000,100,2025-01-02\n\
C7,30.55,,,,1000,100,2025-01-02\n\
,30.55,114.31,,,1000,100,2025-01-02\n\
C8,30.55,114.31,30.6,200,1000,100,2025-01-02\n\
C9,30.55,114.31,,,1000,100,2025-01-02\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    let got = reasons(&ds, "customers");
    let want: Vec<(u64, &str, &str)> = vec![
        (1, "budget", "unparseable number"),
        (2, "work_lat", "work_lat out of range [-90, 90]"),
        (3, "home_lat", "home at (0, 0)"),
        (4, "budget", "budget negative"),
        (5, "home_lat", "no home or work location"),
        (6, "created_at", "unparseable date"),
        (8, "home_lng", "home_lng missing while home_lat is given"),
        (9, "customer_id", "missing customer_id"),
        (10, "work_lng", "work_lng out of range [-180, 180]"),
    ];
    let want: Vec<(u64, String, String)> = want.into_iter().map(|(r, c, m)| (r, c.into(), m.into())).collect();
    // C1 at row 1 is rejected (bad budget), so the second C1 (row 7) is the first valid one and stays.
    assert_eq!(got, want);
    let ids: Vec<&str> = ds.customers.column("customer_id").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(ids, vec!["C1", "C9"]);
    assert_accounting(&ds);
}

#[test]
fn duplicate_customer_id_keeps_the_first() {
    let customers = b"customer_id,home_lat,home_lng\nC1,30.5,114.3\nC2,30.5,114.3\nC1,30.6,114.3\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    assert_eq!(reasons(&ds, "customers"), vec![(3, "customer_id".into(), "duplicate customer_id".into())]);
    assert_accounting(&ds);
}

#[test]
fn deals_and_touchpoints_for_unknown_customers_and_bad_dates() {
    let deals = b"deal_id,customer_id,signed_at,price,status\n\
D1,C1,2025-03-01,3000000,signed\n\
D2,NOBODY,2025-03-01,3000000,signed\n\
D3,C2,01/03/2025,2000000,signed\n\
D4,C2,2025-03-02,-1,signed\n\
D5,C2,2025-03-02,100,maybe\n\
D1,C2,2025-03-02,100,signed\n";
    let touchpoints = b"customer_id,ts,channel,event\n\
C1,2025-01-01 10:00:00,wechat,lead\n\
C2,2025-01-01T10:00:00Z,portal,\n\
C9,2025-01-01,portal,lead\n\
C1,yesterday,portal,lead\n\
C1,2025-01-03,portal,purchase\n\
C1,2025-01-03,,lead\n";
    let campaigns = b"campaign_id,channel,cost,start_date,end_date\nK1,wechat,1000,2025-01-01,2025-06-30\nK2,portal,-10,,\nK3,portal,10,2025-06-01,2025-01-01\n";
    let (_d, ds) = load(&[
        ("customers.csv", CUSTOMERS_OK),
        ("deals.csv", deals),
        ("touchpoints.csv", touchpoints),
        ("campaigns.csv", campaigns),
    ]);
    let ds = ds.unwrap();
    let d = reasons(&ds, "deals");
    assert_eq!(
        d,
        vec![
            (2, "customer_id".into(), "deal for unknown customer".into()),
            (3, "signed_at".into(), "unparseable date".into()),
            (4, "price".into(), "price negative".into()),
            (5, "status".into(), "status not one of signed, cancelled".into()),
            (6, "deal_id".into(), "duplicate deal_id".into()),
        ]
    );
    let t = reasons(&ds, "touchpoints");
    assert_eq!(
        t,
        vec![
            (3, "customer_id".into(), "touchpoint for unknown customer".into()),
            (4, "ts".into(), "unparseable datetime".into()),
            (5, "event".into(), "event not one of lead, visit, call, click, impression".into()),
            (6, "channel".into(), "missing channel".into()),
        ]
    );
    let c = reasons(&ds, "campaigns");
    assert_eq!(
        c,
        vec![(2, "cost".into(), "cost negative".into()), (3, "end_date".into(), "end_date before start_date".into())]
    );
    // A missing event defaults to lead.
    let tp = ds.touchpoints.as_ref().unwrap();
    let events: Vec<&str> = tp.column("event").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(events, vec!["lead", "lead"]);
    assert_accounting(&ds);
}

#[test]
fn ragged_and_non_utf8_rows_are_rejected_not_fatal() {
    let customers = b"customer_id,home_lat,home_lng\nC1,30.5,114.3\nC2,30.5\nC3,30.5,114.3,extra\nC4,30.5,\xff\xfe\nC5,30.6,114.3\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    let got = reasons(&ds, "customers");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, 2);
    assert!(got[0].2.contains("2 fields"));
    assert_eq!(got[2], (4, String::new(), "invalid UTF-8 bytes".into()));
    assert_eq!(ds.customers.height(), 2);
    assert_accounting(&ds);
}

#[test]
fn empty_file_is_an_error_naming_it() {
    let (_d, ds) = load(&[("customers.csv", CUSTOMERS_OK), ("deals.csv", b"")]);
    let msg = ds.unwrap_err().to_string();
    assert!(msg.contains("deals.csv") && msg.contains("empty"), "{msg}");
}

#[test]
fn garbage_parquet_is_an_error_not_a_panic() {
    let (_d, ds) = load(&[("customers.parquet", b"PAR1 this is not parquet")]);
    let msg = ds.unwrap_err().to_string();
    assert!(msg.contains("customers.parquet"), "{msg}");
}

#[test]
fn sites_reject_bad_wkt_and_locations() {
    let sites = b"site_id,kind,cost,lat,lng,wkt,reach_m\n\
S1,cafe,1000,30.5,114.3,,\n\
S2,bus_route,5000,,,\"LINESTRING (114.3 30.5, 114.4 30.6)\",\n\
S3,bus_route,5000,,,\"LINESTRING (114.3 30.5\",\n\
S4,billboard,5000,,,\"POLYGON ((0 0, 1 0, 1 1, 0 0))\",\n\
S5,cafe,1000,,,,\n\
S6,cafe,-1,30.5,114.3,,\n\
S7,cafe,10,30.5,114.3,,-50\n";
    let (_d, ds) = load(&[("customers.csv", CUSTOMERS_OK), ("sites.csv", sites)]);
    let ds = ds.unwrap();
    let got = reasons(&ds, "sites");
    let rows: Vec<u64> = got.iter().map(|r| r.0).collect();
    assert_eq!(rows, vec![3, 4, 5, 6, 7]);
    assert!(got[0].2.starts_with("invalid WKT"), "{:?}", got[0]);
    assert_eq!(got[1].2, "WKT must be a POINT or a LINESTRING");
    assert_eq!(got[2].2, "site has neither lat/lng nor wkt");
    assert_eq!(got[3].2, "cost negative");
    assert_eq!(got[4].2, "reach_m negative");
    assert_accounting(&ds);
}

#[test]
fn parquet_tables_validate_like_csv() {
    let dir = dataset_dir(&[]);
    let mut df = df!(
        "customer_id" => ["A", "B", "B", "C"],
        "home_lat" => [Some(30.5), Some(130.0), Some(30.5), None],
        "home_lng" => [Some(114.3), Some(114.3), Some(114.3), None],
        "budget" => [Some(1i64), Some(2), Some(3), Some(4)],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("customers.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    let ds = Dataset::load(dir.path()).unwrap();
    let got = reasons(&ds, "customers");
    assert_eq!(
        got,
        vec![
            (2, "home_lat".into(), "home_lat out of range [-90, 90]".into()),
            (4, "home_lat".into(), "no home or work location".into()),
        ]
    );
    // Integer budgets are read as numbers.
    assert_eq!(ds.customers.column("budget").unwrap().f64().unwrap().get(1), Some(3.0));
    assert_accounting(&ds);
}

#[test]
fn duplicates_in_sorted_ids_are_found_by_neighbours() {
    let customers = b"customer_id,home_lat,home_lng\nA,30.5,114.3\nA,30.5,114.3\nB,30.5,114.3\nC,30.5,114.3\nC,30.5,114.3\nC,30.5,114.3\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    let rows: Vec<u64> = reasons(&ds, "customers").iter().map(|r| r.0).collect();
    assert_eq!(rows, vec![2, 5, 6]);
    assert_accounting(&ds);
}

#[test]
fn regression_time_zones_are_not_dropped() {
    let customers = b"customer_id,home_lat,home_lng\nA,30.55,114.31\n";
    let touchpoints = "customer_id,ts,channel\n\
A,2025-01-05T10:00:00+08:00,web\n\
A,2025-01-05T10:00:00-05:00,web\n\
A,2025-01-05 10:00:00+0800,web\n\
A,2025-01-05T10:00:00.250Z,web\n\
A,2025-01-05 10:00:00,web\n\
A,2025-01-05,web\n\
A,2025-01-05 10:00:00 CST,web\n\
A,2025-01-05 10:00:00 garbage,web\n";
    let (_d, ds) = load(&[("customers.csv", customers), ("touchpoints.csv", touchpoints.as_bytes())]);
    let ds = ds.unwrap();
    assert_accounting(&ds);
    let us = |h: u32, m: u32, ms: i64| {
        let t = chrono::NaiveDate::from_ymd_opt(2025, 1, 5).unwrap().and_hms_opt(h, m, 0).unwrap();
        t.and_utc().timestamp_micros() + ms * 1000
    };
    let tp = ds.touchpoints.as_ref().unwrap();
    let got: Vec<i64> =
        tp.column("ts").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().flatten().collect();
    // Offsets are normalized to UTC; naive times and dates are read as UTC; the rest is rejected.
    assert_eq!(got, [us(2, 0, 0), us(15, 0, 0), us(2, 0, 0), us(10, 0, 250), us(10, 0, 0), us(0, 0, 0)]);
    let bad = reasons(&ds, "touchpoints");
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad.iter().all(|(_, column, reason)| column == "ts" && reason.contains("unparseable datetime")), "{bad:?}");
    assert_eq!(bad.iter().map(|r| r.0).collect::<Vec<_>>(), [7, 8]);
}
