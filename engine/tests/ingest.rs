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
        (2, "work_lat", "work_lat out of range [-90, 90]"),
        (3, "home_lat", "home at (0, 0)"),
        (5, "home_lat", "no home or work location"),
        (7, "customer_id", "duplicate customer_id"),
        (8, "home_lng", "home_lng missing while home_lat is given"),
        (9, "customer_id", "missing customer_id"),
        (10, "work_lng", "work_lng out of range [-180, 180]"),
    ];
    let want: Vec<(u64, String, String)> = want.into_iter().map(|(r, c, m)| (r, c.into(), m.into())).collect();
    assert_eq!(got, want);
    // A bad optional value (budget, date) nulls that value and keeps the customer; so C1 at row 1
    // stands and its repeat at row 7 is the duplicate.
    let nulled: Vec<(u64, &str, &str)> =
        ds.nulled.iter().map(|n| (n.row, n.column.as_str(), n.value.as_deref().unwrap_or(""))).collect();
    assert_eq!(nulled, vec![(1, "budget", "abc"), (4, "budget", "-5"), (6, "created_at", "2025-13-45")]);
    assert!(ds.nulled[1].reason.starts_with("budget negative"), "{:?}", ds.nulled[1]);
    let ids: Vec<&str> = ds.customers.column("customer_id").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(ids, vec!["C1", "C4", "C6", "C9"]);
    let budget = ds.customers.column("budget").unwrap().f64().unwrap();
    assert_eq!(budget.iter().collect::<Vec<_>>(), vec![None, None, Some(1000.0), Some(1000.0)]);
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
    let tp = ds.touchpoints.as_ref().unwrap().to_frame().unwrap();
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
    let tp = ds.touchpoints.as_ref().unwrap().to_frame().unwrap();
    let got: Vec<i64> =
        tp.column("ts").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().flatten().collect();
    // Offsets are normalized to UTC; naive times and dates are read as UTC; the rest is rejected.
    assert_eq!(got, [us(2, 0, 0), us(15, 0, 0), us(2, 0, 0), us(10, 0, 250), us(10, 0, 0), us(0, 0, 0)]);
    let bad = reasons(&ds, "touchpoints");
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad.iter().all(|(_, column, reason)| column == "ts" && reason.contains("unparseable datetime")), "{bad:?}");
    assert_eq!(bad.iter().map(|r| r.0).collect::<Vec<_>>(), [7, 8]);
}

fn accepted_ids(ds: &Dataset) -> Vec<String> {
    ds.customers.column("customer_id").unwrap().str().unwrap().iter().flatten().map(str::to_string).collect()
}

/// A customers CSV of `n` rows with a free-text `note` column; row i (1-based) is on line i + 1.
fn customers_csv(n: usize) -> Vec<String> {
    let mut lines = vec!["customer_id,home_lat,home_lng,note".to_string()];
    for i in 1..=n {
        lines.push(format!("C{i:05},30.{:04},114.3,note {i}", i % 10_000));
    }
    lines
}

#[test]
fn regression_a_stray_quote_costs_only_its_row() {
    let mut lines = customers_csv(1000);
    lines[500] = "C00500,30.5,114.3,5\" screen".into();
    lines[600] = "C00600,30.5,114.3,\"unterminated note".into();
    lines[999] = "C00999,30.5,114.3,\"a quoted, multi\nline note\"".into();
    let text = lines.join("\n") + "\n";
    let (_d, ds) = load(&[("customers.csv", text.as_bytes())]);
    let ds = ds.unwrap();
    assert_accounting(&ds);
    // The mid-field quote is a literal character; the unterminated quote costs its own row, and
    // the multi-line quoted note is one value.
    let got = reasons(&ds, "customers");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 600);
    assert!(got[0].2.contains("quote"), "{got:?}");
    assert_eq!(ds.rejects[0].line, Some(601));
    assert_eq!(ds.rejects[0].value.as_deref(), Some("C00600,30.5,114.3,\"unterminated note"));
    assert_eq!(ds.customers.height(), 999);
    let notes = ds.customers.column("note").unwrap().str().unwrap();
    let ids = accepted_ids(&ds);
    let at = |id: &str| ids.iter().position(|x| x == id).unwrap();
    assert_eq!(notes.get(at("C00500")), Some("5\" screen"));
    assert_eq!(notes.get(at("C00601")), Some("note 601"));
    assert_eq!(notes.get(at("C00999")), Some("a quoted, multi\nline note"));
}

#[test]
fn regression_cr_only_line_endings_are_read() {
    for end in ["\r", "\r\n", "\n"] {
        let text = customers_csv(5).join(end) + end;
        let (_d, ds) = load(&[("customers.csv", text.as_bytes())]);
        let ds = ds.unwrap();
        assert_accounting(&ds);
        assert_eq!(ds.customers.height(), 5, "line end {end:?}");
        assert_eq!(ds.customers.column("note").unwrap().str().unwrap().get(4), Some("note 5"));
    }
}

#[test]
fn regression_rejects_show_the_value_and_the_file_line() {
    let text = b"customer_id,home_lat,home_lng,note\nC1,30.5,114.3,\"two\nlines\"\nC2,95,114.3,x\nC3,30.5\n";
    let (_d, ds) = load(&[("customers.csv", text)]);
    let ds = ds.unwrap();
    let r: Vec<(u64, Option<u64>, Option<&str>)> =
        ds.rejects.iter().map(|r| (r.row, r.line, r.value.as_deref())).collect();
    // Row 2 starts on line 4: row 1's note spans lines 2 and 3.
    assert_eq!(r, vec![(2, Some(4), Some("95")), (3, Some(5), Some("C3,30.5"))]);
    let frame = ds.rejects_frame().unwrap();
    let names: Vec<&str> = frame.get_column_names().into_iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["table", "row", "line", "column", "reason", "value", "outcome"]);
}

#[test]
fn regression_a_bad_optional_value_does_not_cascade() {
    let customers = b"customer_id,home_lat,home_lng,budget,desired_area_sqm\nA,30.5,114.3,lots,90\nB,,,100,90\n";
    let deals = b"deal_id,customer_id,signed_at,price,area_sqm\nD1,A,2025-03-01,100,big\nD2,B,2025-03-01,100,90\nD3,Z,2025-03-01,100,90\n";
    let touchpoints = b"customer_id,ts,channel\nA,2025-01-01,web\nB,2025-01-01,web\n";
    let (_d, ds) = load(&[("customers.csv", customers), ("deals.csv", deals), ("touchpoints.csv", touchpoints)]);
    let ds = ds.unwrap();
    assert_accounting(&ds);
    // A's budget and D1's area are nulled; A, D1 and A's touchpoint stay.
    assert_eq!(accepted_ids(&ds), ["A"]);
    assert_eq!(ds.deals.as_ref().unwrap().height(), 1);
    assert_eq!(ds.touchpoints.as_ref().unwrap().len(), 1);
    let nulled: Vec<(&str, &str)> = ds.nulled.iter().map(|n| (n.table, n.column.as_str())).collect();
    assert_eq!(nulled, [("customers", "budget"), ("deals", "area_sqm")]);
    assert_eq!(ds.report.tables["customers"].values_nulled, 1);
    // B is rejected for its own fault, and what refers to B says so; Z is truly unknown.
    let d = reasons(&ds, "deals");
    assert_eq!(d[0].2, "deal for a rejected customer (customers row 2: no home or work location)");
    assert_eq!(d[1].2, "deal for unknown customer");
    let t = reasons(&ds, "touchpoints");
    assert!(t[0].2.starts_with("touchpoint for a rejected customer (customers row 2"), "{t:?}");
}

#[test]
fn regression_zip_codes_keep_their_leading_zeros() {
    let customers = b"customer_id,home_lat,home_lng,zip,beds,phone\nA,30.5,114.3,000100,3,+8613800000000\nB,30.5,114.3,430071,2,+8613800000001\n";
    let (_d, ds) = load(&[("customers.csv", customers)]);
    let ds = ds.unwrap();
    let zip = ds.customers.column("zip").unwrap();
    assert_eq!(zip.str().unwrap().get(0), Some("000100"));
    assert_eq!(ds.customers.column("phone").unwrap().str().unwrap().get(0), Some("+8613800000000"));

    // Plain numbers still become numbers, for --where comparisons.
    assert_eq!(ds.customers.column("beds").unwrap().f64().unwrap().get(0), Some(3.0));
    // So do integers a double cannot hold exactly (ID card numbers).
    let ids =
        b"customer_id,home_lat,home_lng,id_card\nA,30.5,114.3,420106199001011234\nB,30.5,114.3,420106199001011235\n";
    let (_d, ds) = load(&[("customers.csv", ids)]);
    let ds = ds.unwrap();
    assert_eq!(ds.customers.column("id_card").unwrap().str().unwrap().get(1), Some("420106199001011235"));
}

#[test]
fn regression_ambiguous_table_files_are_errors_naming_them() {
    let (_d, ds) = load(&[("customers.csv", CUSTOMERS_OK), ("customers.parquet", b"PAR1")]);
    let msg = ds.unwrap_err().to_string();
    assert!(msg.contains("customers.csv") && msg.contains("customers.parquet"), "{msg}");
    let (_d, ds) = load(&[("customers.csv", CUSTOMERS_OK), ("Deals.csv", b"deal_id\n")]);
    let msg = ds.unwrap_err().to_string();
    assert!(msg.contains("Deals.csv") && msg.contains("deals.csv"), "{msg}");
    let dup = b"customer_id,home_lat,home_lng,home_lat\nA,30.5,114.3,31\n";
    let (_d, ds) = load(&[("customers.csv", dup)]);
    assert!(ds.unwrap_err().to_string().contains("'home_lat' twice"));
}

#[test]
fn regression_sites_unknown_kinds_wkt_junk_null_island_and_two_locations() {
    let sites = b"site_id,kind,cost,lat,lng,wkt,reach_m\n\
S1,Cafe,1000,30.5,114.3,,\n\
S2,kiosk,1000,30.5,114.3,,\n\
S3,kiosk,1000,30.5,114.3,,200\n\
S4,cafe,1000,,,POINT (0 0),\n\
S5,cafe,1000,,,POINT (114.3 30.5) junk,\n\
S6,cafe,1000,30.5,114.3,POINT (114.3 31.2),\n\
S7,cafe,1000,30.5,114.3,POINT (114.3 30.5),\n";
    let (_d, ds) = load(&[("customers.csv", CUSTOMERS_OK), ("sites.csv", sites)]);
    let ds = ds.unwrap();
    assert_accounting(&ds);
    let got = reasons(&ds, "sites");
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4, 5, 6], "{got:?}");
    assert!(got[0].2.contains("unknown site kind") && got[0].2.contains("office_lobby"), "{got:?}");
    assert!(got[1].2.contains("(0, 0)"), "{got:?}");
    assert!(got[2].2.contains("junk"), "{got:?}");
    assert!(got[3].2.contains("disagree"), "{got:?}");
    let kinds: Vec<&str> = ds.sites.as_ref().unwrap().column("kind").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(kinds, ["cafe", "kiosk", "cafe"]);
}

#[test]
fn regression_naive_timestamps_are_read_in_the_dataset_time_zone() {
    use custmap_engine::io::validate::IngestOptions;
    let customers = b"customer_id,home_lat,home_lng\nA,30.55,114.31\n";
    let touchpoints = b"customer_id,ts,channel\nA,2025-01-05 10:00:00,web\nA,2025-01-05T10:00:00Z,web\n";
    let dir = dataset_dir(&[("customers.csv", customers), ("touchpoints.csv", touchpoints)]);
    let opts = IngestOptions::parse_tz("+08:00").unwrap();
    let ds = Dataset::load_with(dir.path(), &custmap_engine::io::schema::Table::ALL, opts).unwrap();
    assert_eq!(ds.report.time_zone, "+08:00");
    let ts = ds.touchpoints.as_ref().unwrap().to_frame().unwrap().column("ts").unwrap().cast(&DataType::Int64).unwrap();
    let hour = |us: i64| (us / 3_600_000_000) % 24;
    let got: Vec<i64> = ts.i64().unwrap().iter().flatten().map(hour).collect();
    // 10:00 in +08:00 is 02:00 UTC; a timestamp with Z is read as written.
    assert_eq!(got, [2, 10]);
    for bad in ["Asia/Shanghai", "+25:00", "8"] {
        assert!(IngestOptions::parse_tz(bad).is_err(), "{bad}");
    }
    assert_eq!(IngestOptions::parse_tz("-0530").unwrap().tz_name(), "-05:30");
}

#[test]
fn regression_decimal_and_int128_parquet_columns_are_numbers_not_a_panic() {
    let dir = dataset_dir(&[("customers.csv", CUSTOMERS_OK)]);
    let price = Series::new("price".into(), [3_000_000.25f64, 1_500_000.5]).cast(&DataType::Decimal(18, 2)).unwrap();
    let big = Series::new("external_id".into(), [1i128 << 80, 7]);
    let small = Series::new("floor".into(), [12i128, 7]);
    let mut deals = DataFrame::new(
        2,
        vec![
            Column::new("deal_id".into(), ["D1", "D2"]),
            Column::new("customer_id".into(), ["C1", "C2"]),
            Column::new("signed_at".into(), ["2025-03-01", "2025-03-02"]),
            price.into_column(),
            big.into_column(),
            small.into_column(),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("deals.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut deals).unwrap();
    let ds = Dataset::load(dir.path()).unwrap();
    assert_accounting(&ds);
    let d = ds.deals.as_ref().unwrap();
    assert_eq!(d.column("price").unwrap().f64().unwrap().get(0), Some(3_000_000.25));
    // A 128-bit id beyond 2^53 stays exact as text; small ones become numbers.
    assert_eq!(d.column("external_id").unwrap().str().unwrap().get(0), Some((1i128 << 80).to_string().as_str()));
    assert_eq!(d.column("floor").unwrap().f64().unwrap().get(0), Some(12.0));
}

mod corruption {
    //! Random byte-level corruption of a valid CSV: no panic, accepted + rejected = read, and
    //! every row the corruption did not touch is accepted with its values.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Damage {
        Truncate(usize),
        Insert(usize, Vec<u8>),
        Delete(usize),
        LineEnds(&'static str),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        let bytes = prop_oneof![
            Just(b"\"".to_vec()),
            Just(b"\xff\xfe".to_vec()),
            Just(b"\r".to_vec()),
            Just(b",".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\"\"".to_vec()),
        ];
        prop_oneof![
            (0usize..10_000).prop_map(Damage::Truncate),
            ((0usize..10_000), bytes).prop_map(|(at, b)| Damage::Insert(at, b)),
            (0usize..10_000).prop_map(Damage::Delete),
            prop_oneof![Just("\r"), Just("\r\n")].prop_map(Damage::LineEnds),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn corruption_costs_only_the_rows_it_touches(d in damage()) {
            let lines = customers_csv(60);
            let header = lines[0].len() + 1;
            let text = lines.join("\n") + "\n";
            let mut bytes = text.clone().into_bytes();
            let span = bytes.len() - header;
            // Which data rows (1-based) the damage touches: the row of the damaged byte, and the
            // next one when a line end is damaged (two rows joined). Truncation touches the row
            // it cuts and drops the rest.
            let row_at = |at: usize| text[..at].matches('\n').count();
            let mut touched: Vec<usize> = Vec::new();
            let mut kept_rows = 60;
            match &d {
                Damage::Truncate(at) => {
                    let at = header + at % span;
                    bytes.truncate(at);
                    kept_rows = row_at(at) - 1;
                    touched.push(row_at(at));
                }
                Damage::Insert(at, b) => {
                    let at = header + at % span;
                    touched.extend([row_at(at), row_at(at) + 1]);
                    bytes.splice(at..at, b.iter().copied());
                }
                Damage::Delete(at) => {
                    let at = header + at % span;
                    touched.extend([row_at(at), row_at(at) + 1]);
                    bytes.remove(at);
                }
                Damage::LineEnds(end) => bytes = text.replace('\n', end).into_bytes(),
            }
            let (_d, ds) = load(&[("customers.csv", &bytes)]);
            let ds = ds.unwrap();
            assert_accounting(&ds);
            let ids = accepted_ids(&ds);
            let notes = ds.customers.column("note").unwrap().str().unwrap();
            for row in (1..=kept_rows).filter(|r| !touched.contains(r)) {
                let id = format!("C{row:05}");
                let at = ids.iter().position(|x| *x == id);
                prop_assert!(at.is_some(), "untouched row {row} lost: {d:?}; rejects {:?}", ds.rejects);
                let want = format!("note {row}");
                prop_assert_eq!(notes.get(at.unwrap()), Some(want.as_str()));
            }
        }
    }
}

#[test]
fn regression_review_utf8_is_checked_per_field_and_ragged_multiline_rows_do_not_resync() {
    // Two halves of one UTF-8 character in two fields: the row is rejected, not the file.
    let (_d, ds) =
        load(&[("customers.csv", b"customer_id,home_lat,home_lng,note\nA,30.5,114.3,\xC3\nB,30.5,114.3,ok\n")]);
    let ds = ds.unwrap();
    assert_accounting(&ds);
    assert_eq!(accepted_ids(&ds), ["B"]);
    // A multi-line record with one field too many: its first line is rejected and the line after
    // it read again (and rejected on its own), so no row after it is swallowed.
    let text = b"customer_id,home_lat,home_lng,note\nA,30.5,114.3,\"x\ny\",extra\nB,30.5,114.3,ok\n";
    let (_d, ds) = load(&[("customers.csv", text)]);
    let ds = ds.unwrap();
    assert_accounting(&ds);
    assert_eq!(accepted_ids(&ds), ["B"]);
    // Two bad optional values in one row are two reports.
    let (_d, ds) =
        load(&[("customers.csv", b"customer_id,home_lat,home_lng,budget,desired_area_sqm\nA,30.5,114.3,abc,-5\n")]);
    let ds = ds.unwrap();
    let cols: Vec<&str> = ds.nulled.iter().map(|n| n.column.as_str()).collect();
    assert_eq!(cols, ["budget", "desired_area_sqm"]);
}

#[test]
fn measure_table_counts_rows_without_decoding() {
    use custmap_engine::io::read::{measure_table, TableFormat};
    let dir = dataset_dir(&[]);
    // A quoted field spanning two lines is one record; the long field's record starts on line 3.
    let csv = dir.path().join("t.csv");
    let long = "x".repeat(5000);
    std::fs::write(&csv, format!("a,b,c\n1,\"two\nlines\",3\n4,{long},6\n7,8,9\n")).unwrap();
    let shape = measure_table(&csv, TableFormat::Csv, u64::MAX, usize::MAX).unwrap();
    assert_eq!((shape.rows, shape.columns, shape.longest_field, shape.longest_field_line), (3, 3, 5000, 4));
    // Stops at the first field over the limit, having read two records.
    let early = measure_table(&csv, TableFormat::Csv, u64::MAX, 100).unwrap();
    assert_eq!((early.rows, early.longest_field), (2, 5000));

    let mut df = df!("customer_id" => ["A", "B", "C", "D"], "budget" => [1i64, 2, 3, 4]).unwrap();
    let pq = dir.path().join("t.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap()).finish(&mut df).unwrap();
    let shape = measure_table(&pq, TableFormat::Parquet, 0, 0).unwrap();
    assert_eq!((shape.rows, shape.columns, shape.longest_field), (4, 2, 0));
    // The footer's uncompressed size: 4 ids and 4 integers are at least 32 bytes of data.
    assert!(shape.uncompressed_bytes >= 32, "{shape:?}");
}

/// Touchpoints are read and validated in batches: any batch size gives the same table, counts
/// and rejects (rows, lines, reasons, values), from CSV (early rejects, a multi-line field) and
/// from Parquet with many row groups.
#[test]
fn touchpoints_read_in_batches_load_the_same_for_any_batch_size() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let customers =
        b"customer_id,home_lat,home_lng,referred_by\nA,30.55,114.31,\nB,30.56,114.32,A\nC,oops,114.3,\nD,30.5,114.3,\n";
    let touchpoints: &[u8] = b"customer_id,ts,channel,campaign_id,event,note\n\
A,2025-01-05 10:00:00,web,c2,lead,x\n\
B,2025-01-06T09:00:00+08:00,douyin,,click,y\n\
B,2025-01-07,web,c1,visit,\"two\nlines\"\n\
A,2025-01-08 11:00:00,billboard\n\
Z,2025-01-08 11:00:00,web,c1,lead,unknown\n\
C,2025-01-08 11:00:00,web,c1,lead,rejected customer\n\
D,not a time,web,c1,lead,bad ts\n\
D,2025-01-09 12:00:00,\xff\xfe,c1,lead,bad utf8\n\
D,2025-01-09 12:00:00,wechat,c3,call,ok\n\
A,2025-01-10 12:00:00,,c3,lead,no channel\n\
B,2025-01-11 08:00:00,wechat,c2,impression,ok\n\
D,2025-01-12 08:00:00,web,,sms,bad event\n";
    // Naive text is read in +08:00; the Parquet file below holds those times as UTC instants
    // without a zone, so it is read in UTC.
    let tz = std::cell::Cell::new("+08:00");
    let load_with = |dir: &std::path::Path, batch_rows: usize| {
        let opts = IngestOptions { batch_rows, ..IngestOptions::parse_tz(tz.get()).unwrap() };
        Dataset::load_with(dir, &Table::ALL, opts).unwrap()
    };
    let summary = |ds: &Dataset| {
        let rejects: Vec<_> = ds
            .rejects
            .iter()
            .chain(&ds.nulled)
            .map(|r| (r.table, r.row, r.line, r.column.clone(), r.reason.clone(), r.value.clone()))
            .collect();
        (ds.touchpoints.clone().unwrap(), format!("{:?}", ds.report), rejects)
    };
    let csv_dir = dataset_dir(&[("customers.csv", customers), ("touchpoints.csv", touchpoints)]);
    let whole = summary(&load_with(csv_dir.path(), usize::MAX / 2));
    assert_eq!(whole.0.len(), 5, "{whole:?}");
    assert_eq!(whole.0.channels, ["douyin", "web", "wechat"]);
    let t = &whole.1;
    assert!(t.contains("\"touchpoints\": TableReport { read: 12, accepted: 5, rejected: 7"), "{t}");
    for batch in [1, 2, 3, 5] {
        assert_eq!(summary(&load_with(csv_dir.path(), batch)), whole, "CSV in batches of {batch}");
    }
    // The same accepted rows from Parquet written in row groups of 2.
    let csv_ds = load_with(csv_dir.path(), 0);
    let mut frame = csv_ds.touchpoints.as_ref().unwrap().to_frame().unwrap();
    let ids: Vec<String> = frame
        .column("__customer_row")
        .unwrap()
        .idx()
        .unwrap()
        .into_no_null_iter()
        .map(|r| csv_ds.customers.column("customer_id").unwrap().str().unwrap().get(r as usize).unwrap().to_string())
        .collect();
    frame.with_column(Column::new("customer_id".into(), ids)).unwrap();
    let mut frame = frame.drop("__customer_row").unwrap();
    let pq_dir = dataset_dir(&[("customers.csv", customers)]);
    let file = std::fs::File::create(pq_dir.path().join("touchpoints.parquet")).unwrap();
    ParquetWriter::new(file).with_row_group_size(Some(1)).finish(&mut frame).unwrap();
    tz.set("UTC");
    let pq_whole = load_with(pq_dir.path(), usize::MAX / 2);
    assert_eq!(pq_whole.touchpoints, csv_ds.touchpoints);
    for batch in [1, 2, 3] {
        assert_eq!(summary(&load_with(pq_dir.path(), batch)), summary(&pq_whole), "Parquet in batches of {batch}");
    }
}

/// Customers are read and validated in batches: any batch size gives what validating the whole
/// file gives (the same accepted rows and column types, the same rejects with their rows, lines
/// and values). The rules over the whole table are the ones at risk: an id repeated in a later
/// batch (sorted ids and not), a nulled value in a row then rejected as a repeat, and an extra
/// column numeric in the first batches but not in the last.
#[test]
fn customers_read_in_batches_load_the_same_as_the_whole_file() {
    use custmap_engine::io::read::{read_table, TableFormat};
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::{validate, IngestOptions};
    let unsorted: &[u8] = b"customer_id,home_lat,home_lng,budget,beds,floor,note\n\
B,30.5,114.3,100,2,7,x\n\
A,30.5,114.3,abc,3,8,\"two\nlines\"\n\
B,30.6,114.3,200,1,9,repeat of B\n\
C,95,114.3,100,2,1,bad latitude\n\
C,30.5,114.3,100,4,2,first accepted C\n\
A,30.5,114.3,-5,2,3,repeat of A with a nulled budget\n\
D,30.5,114.3,,5,4,ok\n\
E,30.5,114.3,1,x,5,beds not a number\n";
    let sorted: &[u8] = b"customer_id,home_lat,home_lng,budget,beds\nA,30.5,114.3,1,1\nA,30.5,114.3,2,2\nB,91,114.3,3,3\nB,30.5,114.3,4,4\nB,30.5,114.3,-4,5\nC,30.5,114.3,6,6\nC,30.5,114.3,7,7\n";
    type Summary = (DataFrame, Vec<(u64, Option<u64>, String, String, Option<String>)>, usize, u64);
    let summary = |frame: DataFrame, rejects: &[Reject], nulled: &[Reject], read: u64| -> Summary {
        let listed =
            rejects.iter().chain(nulled).map(|r| (r.row, r.line, r.column.clone(), r.reason.clone(), r.value.clone()));
        (frame, listed.collect(), rejects.len(), read)
    };
    let check = |dir: &std::path::Path, file: &str, batches: &[usize]| {
        let raw =
            read_table(&dir.join(file), if file.ends_with(".csv") { TableFormat::Csv } else { TableFormat::Parquet })
                .unwrap();
        let whole = validate(Table::Customers, raw, None, IngestOptions::default()).unwrap();
        let whole = summary(whole.frame, &whole.rejects, &whole.nulled, whole.read);
        for &batch_rows in batches {
            let opts = IngestOptions { batch_rows, ..IngestOptions::default() };
            let ds = Dataset::load_with(dir, &[], opts).unwrap();
            let counts = ds.report.tables["customers"];
            let got = summary(ds.customers.clone(), &ds.rejects, &ds.nulled, counts.read);
            assert!(got.0.equals_missing(&whole.0), "{file} in batches of {batch_rows}: {:?} vs {:?}", got.0, whole.0);
            assert_eq!(got.1, whole.1, "{file} in batches of {batch_rows}");
            assert_eq!((got.2, got.3), (whole.2, whole.3), "{file} in batches of {batch_rows}");
            assert_eq!(counts.accepted + counts.rejected, counts.read);
        }
        whole
    };
    let dir = dataset_dir(&[("customers.csv", unsorted)]);
    let whole = check(dir.path(), "customers.csv", &[1, 2, 3, 5, 0]);
    let ids: Vec<_> =
        whole.0.column("customer_id").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
    assert_eq!(ids, ["B", "A", "C", "D", "E"]);
    assert_eq!(whole.0.column("floor").unwrap().dtype(), &DataType::Float64);
    assert_eq!(whole.0.column("beds").unwrap().dtype(), &DataType::String);
    let reasons: Vec<(u64, &str)> = whole.1.iter().map(|r| (r.0, r.3.as_str())).collect();
    assert!(
        reasons.contains(&(3, "duplicate customer_id")) && reasons.contains(&(6, "duplicate customer_id")),
        "{reasons:?}"
    );
    // The repeat of A's nulled budget is not reported: its row is rejected.
    assert!(!whole.1.iter().any(|r| r.0 == 6 && r.2 == "budget"), "{:?}", whole.1);
    // The two-line field moves later rows' lines.
    assert_eq!(whole.1.iter().find(|r| r.0 == 3).map(|r| r.1), Some(Some(5)));

    let dir = dataset_dir(&[("customers.csv", sorted)]);
    let whole = check(dir.path(), "customers.csv", &[1, 2, 3, 4]);
    assert_eq!(whole.2, 4, "{:?}", whole.1);
    // The same rows from Parquet in row groups of 1.
    let mut frame = whole.0.clone();
    let dir = dataset_dir(&[]);
    ParquetWriter::new(std::fs::File::create(dir.path().join("customers.parquet")).unwrap())
        .with_row_group_size(Some(1))
        .finish(&mut frame)
        .unwrap();
    check(dir.path(), "customers.parquet", &[1, 2, 0]);
}

/// Unsorted customer ids are checked for repeats through a table of row numbers, and that table
/// then resolves the deals' and touchpoints' references: each reference must reach its own
/// customer's row, in batches or whole, with a repeat (which moves rows, so the table is rebuilt)
/// or without.
#[test]
fn unsorted_customer_ids_resolve_references_through_the_repeat_check_table() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::{IngestOptions, CUSTOMER_ROW};
    let deals: &[u8] = b"deal_id,customer_id,signed_at,price\nd1,K3,2025-01-13,100\nd2,K1,2025-01-08,50\nd3,ZZ,2025-01-08,50\nd4,K20,2025-01-09,70\nd5,K2,2025-01-10,80\n";
    let touchpoints: &[u8] =
        b"customer_id,ts,channel\nK2,2025-01-05 10:00:00,web\nK20,2025-01-06 10:00:00,ad\nK3,2025-01-07 10:00:00,web\n";
    for repeat in [false, true] {
        let mut customers = String::from("customer_id,home_lat,home_lng\n");
        for id in ["K3", "K1", "K20", "K2", "K11"] {
            customers.push_str(&format!("{id},30.5,114.3\n"));
        }
        if repeat {
            customers.insert_str("customer_id,home_lat,home_lng\n".len(), "K1,30.5,114.3\n");
        }
        let dir = dataset_dir(&[
            ("customers.csv", customers.as_bytes()),
            ("deals.csv", deals),
            ("touchpoints.csv", touchpoints),
        ]);
        for batch_rows in [2, 0] {
            let opts = IngestOptions { batch_rows, ..IngestOptions::default() };
            let ds = Dataset::load_with(dir.path(), &Table::ALL, opts).unwrap();
            let ids = ds.customers.column("customer_id").unwrap().str().unwrap().clone();
            let deals = ds.deals.as_ref().unwrap();
            let reached: Vec<(String, String)> = deals
                .column("deal_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .zip(deals.column(CUSTOMER_ROW).unwrap().idx().unwrap().iter())
                .map(|(d, r)| (d.unwrap().to_string(), ids.get(r.unwrap() as usize).unwrap().to_string()))
                .collect();
            let want = [("d1", "K3"), ("d2", "K1"), ("d4", "K20"), ("d5", "K2")];
            let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            assert_eq!(reached, want, "repeat {repeat}, batches of {batch_rows}");
            let tp = ds.touchpoints.as_ref().unwrap();
            let touched: Vec<&str> = tp.customer_row.iter().map(|r| ids.get(*r as usize).unwrap()).collect();
            assert_eq!(touched, ["K2", "K20", "K3"], "repeat {repeat}, batches of {batch_rows}");
            assert_eq!(reasons(&ds, "deals").len(), 1);
        }
    }
}

/// A Parquet timestamp without a zone is a local time of the dataset's zone, as naive text is:
/// it was read as UTC whatever `--tz` said, so a +08:00 CRM export's touches were 8 hours late.
#[test]
fn regression_naive_parquet_timestamps_are_read_in_the_dataset_time_zone() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let at = |h: u32| {
        chrono::NaiveDate::from_ymd_opt(2025, 1, 5).unwrap().and_hms_opt(h, 0, 0).unwrap().and_utc().timestamp_micros()
    };
    let ts = Int64Chunked::from_vec("ts".into(), vec![at(10), at(23)]).into_datetime(TimeUnit::Microseconds, None);
    let mut frame = DataFrame::new(
        2,
        vec![
            Column::new("customer_id".into(), ["A", "A"]),
            ts.into_column(),
            Column::new("channel".into(), ["web", "ad"]),
        ],
    )
    .unwrap();
    let dir = dataset_dir(&[("customers.csv", b"customer_id,home_lat,home_lng\nA,30.55,114.31\n")]);
    ParquetWriter::new(std::fs::File::create(dir.path().join("touchpoints.parquet")).unwrap())
        .finish(&mut frame)
        .unwrap();
    let read = |tz: &str| {
        let ds = Dataset::load_with(dir.path(), &Table::ALL, IngestOptions::parse_tz(tz).unwrap()).unwrap();
        ds.touchpoints.unwrap().ts
    };
    assert_eq!(read("UTC"), [at(10), at(23)]);
    assert_eq!(read("+08:00"), [at(2), at(15)]);
}

/// A naive Parquet timestamp near the end of the 64-bit range, shifted into UTC by the dataset's
/// zone, wrapped round to a time hundreds of thousands of years away on the other side: it is
/// rejected with the value shown, and the other rows keep their times.
#[test]
fn regression_a_time_zone_shift_never_wraps_an_extreme_timestamp() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let ok = chrono::NaiveDate::from_ymd_opt(2025, 1, 5).unwrap().and_hms_opt(10, 0, 0).unwrap().and_utc();
    let ok = ok.timestamp_micros();
    let ts = Int64Chunked::from_vec("ts".into(), vec![ok, i64::MIN + 1, i64::MAX - 1])
        .into_datetime(TimeUnit::Microseconds, None);
    let mut frame = DataFrame::new(
        3,
        vec![
            Column::new("customer_id".into(), ["A", "A", "A"]),
            ts.into_column(),
            Column::new("channel".into(), ["web"; 3]),
        ],
    )
    .unwrap();
    let dir = dataset_dir(&[("customers.csv", b"customer_id,home_lat,home_lng\nA,30.55,114.31\n")]);
    ParquetWriter::new(std::fs::File::create(dir.path().join("touchpoints.parquet")).unwrap())
        .finish(&mut frame)
        .unwrap();
    for (tz, bad_row) in [("+08:00", 2), ("-05:00", 3)] {
        let ds = Dataset::load_with(dir.path(), &Table::ALL, IngestOptions::parse_tz(tz).unwrap()).unwrap();
        let rejects: Vec<_> = ds.rejects.iter().filter(|r| r.table == "touchpoints").collect();
        assert_eq!(rejects.len(), 1, "{tz}: {rejects:?}");
        assert_eq!(rejects[0].row, bad_row, "{tz}");
        assert!(rejects[0].reason.starts_with("ts out of range in time zone"), "{}", rejects[0].reason);
        assert!(rejects[0].value.is_some(), "the value is shown");
        // The other rows keep their times, shifted exactly (the far one too: it fits).
        let hours: i64 = if tz == "+08:00" { 8 } else { -5 };
        let shift = hours * 3_600_000_000;
        let far = if hours > 0 { i64::MAX - 1 } else { i64::MIN + 1 };
        let mut times = ds.touchpoints.unwrap().ts;
        times.sort_unstable();
        let mut want = vec![ok - shift, far - shift];
        want.sort_unstable();
        assert_eq!(times, want, "{tz}");
    }
}

/// The same for times typed as milliseconds and as dates (a date column may hold touch times):
/// the last representable values are rejected under a zone, with the value shown as a count,
/// never a panic printing a date no calendar has.
#[test]
fn regression_a_time_zone_shift_never_wraps_an_extreme_millisecond_or_date() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let day = 20_093i32; // 2025-01-05
    let dates = Int32Chunked::from_vec("ts".into(), vec![day, i32::MIN + 1, i32::MAX - 1]).into_date();
    let ms = Int64Chunked::from_vec(
        "ts".into(),
        vec![i64::from(day) * 86_400_000, i64::MIN / 1_000 + 5, i64::MAX / 1_000 - 5],
    )
    .into_datetime(TimeUnit::Milliseconds, None);
    for (what, ts) in [("date", dates.into_column()), ("ms", ms.into_column())] {
        let mut frame = DataFrame::new(
            3,
            vec![Column::new("customer_id".into(), ["A", "A", "A"]), ts, Column::new("channel".into(), ["web"; 3])],
        )
        .unwrap();
        let dir = dataset_dir(&[("customers.csv", b"customer_id,home_lat,home_lng\nA,30.55,114.31\n")]);
        ParquetWriter::new(std::fs::File::create(dir.path().join("touchpoints.parquet")).unwrap())
            .finish(&mut frame)
            .unwrap();
        for tz in ["+08:00", "-05:00"] {
            let ds = Dataset::load_with(dir.path(), &Table::ALL, IngestOptions::parse_tz(tz).unwrap()).unwrap();
            let rejects: Vec<_> = ds.rejects.iter().filter(|r| r.table == "touchpoints").collect();
            assert!(!rejects.is_empty(), "{what} {tz}");
            for r in &rejects {
                assert!(r.row >= 2, "{what} {tz}: the ordinary time is kept: {r:?}");
                assert!(r.reason.starts_with("ts out of range in time zone"), "{what} {tz}: {r:?}");
                assert!(r.value.as_deref().is_some_and(|v| v.contains("since 1970-01-01")), "{what} {tz}: {r:?}");
            }
            let times = ds.touchpoints.unwrap().ts;
            let hours: i64 = if tz == "+08:00" { 8 } else { -5 };
            assert!(
                times.contains(&(i64::from(day) * 86_400_000_000 - hours * 3_600_000_000)),
                "{what} {tz}: {times:?}"
            );
        }
    }
}

/// Keeping only some customer columns (what an attribution run does) validates every column all
/// the same: a row with a bad value in a dropped column is still rejected, and counted.
#[test]
fn customer_columns_not_kept_are_still_validated() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let customers = b"customer_id,home_lat,home_lng,budget,referred_by\nA,30.5,114.3,100,\nB,95.0,114.3,100,A\nC,30.5,114.3,oops,A\n";
    let dir = dataset_dir(&[("customers.csv", customers)]);
    let all = Dataset::load(dir.path()).unwrap();
    let opts = IngestOptions { customer_columns: Some(&["referred_by"]), ..IngestOptions::default() };
    let lean = Dataset::load_with(dir.path(), &Table::ALL, opts).unwrap();
    let names: Vec<&str> = lean.customers.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["customer_id", "referred_by"]);
    assert_eq!(format!("{:?}", lean.report), format!("{:?}", all.report));
    assert_eq!(reasons(&lean, "customers"), reasons(&all, "customers"));
    assert_eq!(reasons(&lean, "customers").len(), 1, "B's latitude");
    assert_eq!(accepted_ids(&lean), ["A", "C"]);
    assert_eq!(all.customers.column("budget").unwrap().f64().unwrap().get(1), None, "C's budget nulled");
}

/// A 128-bit id column's type is judged over the whole column (text when any id is beyond
/// 2^53): read in batches, a batch of small ids became numbers ("7.0") and its touchpoints were
/// rejected as for unknown customers. Such a file is read as one batch.
#[test]
fn regression_int128_ids_read_alike_in_batches() {
    use custmap_engine::io::schema::Table;
    use custmap_engine::io::validate::IngestOptions;
    let ids = [7i128, 1i128 << 80];
    let write = |dir: &std::path::Path, name: &str, mut frame: DataFrame| {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        ParquetWriter::new(file).with_row_group_size(Some(1)).finish(&mut frame).unwrap();
    };
    let dir = dataset_dir(&[]);
    let customers = DataFrame::new(
        2,
        vec![
            Series::new("customer_id".into(), ids).into_column(),
            Column::new("home_lat".into(), [30.5, 30.6]),
            Column::new("home_lng".into(), [114.3, 114.4]),
        ],
    )
    .unwrap();
    write(dir.path(), "customers.parquet", customers);
    let touchpoints = DataFrame::new(
        3,
        vec![
            Series::new("customer_id".into(), [ids[0], ids[1], ids[0]]).into_column(),
            Column::new("ts".into(), ["2025-01-01", "2025-01-02", "2025-01-03"]),
            Column::new("channel".into(), ["web", "web", "ad"]),
        ],
    )
    .unwrap();
    write(dir.path(), "touchpoints.parquet", touchpoints);
    for batch_rows in [1, 0] {
        let opts = IngestOptions { batch_rows, ..IngestOptions::default() };
        let ds = Dataset::load_with(dir.path(), &Table::ALL, opts).unwrap();
        assert_eq!(
            ds.touchpoints.as_ref().unwrap().customer_row,
            [0, 1, 0],
            "batches of {batch_rows}: {:?}",
            ds.rejects
        );
    }
}
