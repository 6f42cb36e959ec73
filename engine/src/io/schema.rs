//! The tables of SPEC §2: names, columns, types.

/// Site kinds with a default reach radius (`sites.kind`, any case). Other kinds need `reach_m`.
pub const SITE_KINDS: [&str; 7] =
    ["office_lobby", "cafe", "bar", "billboard", "bus_route", "metro_line", "metro_station"];

/// Microseconds in a day: ingest holds every time as microseconds since 1970 (UTC).
pub const DAY_US: i64 = 86_400_000_000;

/// Logical type a column is converted to at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    F64,
    Date,
    Datetime,
}

impl Kind {
    /// The polars type ingest gives a column of this kind.
    #[must_use]
    pub fn dtype(self) -> polars::prelude::DataType {
        use polars::prelude::{DataType, TimeUnit};
        match self {
            Kind::Str => DataType::String,
            Kind::F64 => DataType::Float64,
            Kind::Date => DataType::Date,
            Kind::Datetime => DataType::Datetime(TimeUnit::Microseconds, None),
        }
    }
}

/// One column a table knows about.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn req(name: &'static str, kind: Kind) -> ColumnSpec {
    ColumnSpec { name, kind, required: true }
}

const fn opt(name: &'static str, kind: Kind) -> ColumnSpec {
    ColumnSpec { name, kind, required: false }
}

/// The tables a dataset directory may hold, in load order (customers first: the others refer to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Customers,
    Campaigns,
    Touchpoints,
    Deals,
    Sites,
    Projects,
}

impl Table {
    pub const ALL: [Table; 6] =
        [Table::Customers, Table::Campaigns, Table::Touchpoints, Table::Deals, Table::Sites, Table::Projects];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Table::Customers => "customers",
            Table::Campaigns => "campaigns",
            Table::Touchpoints => "touchpoints",
            Table::Deals => "deals",
            Table::Sites => "sites",
            Table::Projects => "projects",
        }
    }

    /// Known columns. Columns not listed are kept as attributes.
    #[must_use]
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            Table::Customers => CUSTOMERS,
            Table::Touchpoints => TOUCHPOINTS,
            Table::Deals => DEALS,
            Table::Campaigns => CAMPAIGNS,
            Table::Sites => SITES,
            Table::Projects => PROJECTS,
        }
    }

    #[must_use]
    pub fn column(self, name: &str) -> Option<&'static ColumnSpec> {
        self.columns().iter().find(|c| c.name == name)
    }
}

use Kind::{Date, Datetime, Str, F64};

const CUSTOMERS: &[ColumnSpec] = &[
    req("customer_id", Str),
    opt("home_lat", F64),
    opt("home_lng", F64),
    opt("work_lat", F64),
    opt("work_lng", F64),
    opt("budget", F64),
    opt("desired_area_sqm", F64),
    opt("project_id", Str),
    opt("created_at", Date),
    opt("referred_by", Str),
];

const TOUCHPOINTS: &[ColumnSpec] =
    &[req("customer_id", Str), req("ts", Datetime), req("channel", Str), opt("campaign_id", Str), opt("event", Str)];

const DEALS: &[ColumnSpec] = &[
    req("deal_id", Str),
    req("customer_id", Str),
    req("signed_at", Date),
    req("price", F64),
    opt("project_id", Str),
    opt("area_sqm", F64),
    opt("status", Str),
];

const CAMPAIGNS: &[ColumnSpec] = &[
    req("campaign_id", Str),
    req("channel", Str),
    req("cost", F64),
    opt("name", Str),
    opt("start_date", Date),
    opt("end_date", Date),
    opt("site_id", Str),
];

const SITES: &[ColumnSpec] = &[
    req("site_id", Str),
    req("kind", Str),
    req("cost", F64),
    opt("lat", F64),
    opt("lng", F64),
    opt("wkt", Str),
    opt("name", Str),
    opt("reach_m", F64),
];

const PROJECTS: &[ColumnSpec] = &[req("project_id", Str), req("lat", F64), req("lng", F64), opt("name", Str)];

/// Touchpoint events SPEC §2 allows; a missing event means `lead`.
pub const EVENTS: [&str; 5] = ["lead", "visit", "call", "click", "impression"];

/// Deal statuses; a missing status means `signed`.
pub const DEAL_STATUSES: [&str; 2] = ["signed", "cancelled"];

/// The event a missing `event` means.
pub const LEAD_EVENT: &str = EVENTS[0];

/// The event of a visit to the sales office: a funnel event, never a step of a journey.
pub const VISIT_EVENT: &str = EVENTS[1];

/// The status of a deal that counts (a missing status means it); no other deal converts.
pub const SIGNED: &str = DEAL_STATUSES[0];
