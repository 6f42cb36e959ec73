//! `custmap demo`: a synthetic city dataset over the real Wuhan districts, with every SPEC table
//! and `truth.json` describing the effects planted in it.
//!
//! Customers are generated in chunks of [`CHUNK`]; each chunk has its own RNG stream derived from
//! the seed, so output is identical for a seed whatever the thread count, chunks run in parallel,
//! and memory stays bounded at any size (tables are streamed to disk chunk by chunk).

pub mod city;
pub mod people;
pub mod truth;

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::io::SerWriter;
use polars::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::write::write_atomic;
use crate::spatial::districts::WUHAN_GEOJSON;
use city::{City, PROJECTS};
use truth::{Effects, Truth, CHANNELS, CHANNEL_LABELS, CHANNEL_SPEND, PERIODS};

/// Customers per generated chunk.
pub const CHUNK: u64 = 50_000;

/// Table file format of a generated dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoFormat {
    Csv,
    Parquet,
}

impl DemoFormat {
    fn ext(self) -> &'static str {
        match self {
            DemoFormat::Csv => "csv",
            DemoFormat::Parquet => "parquet",
        }
    }
}

/// How many buildings customers live and work in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[cfg_attr(feature = "surface", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Places {
    /// A building stock that grows with the city, as geocoded CRM addresses do: one residential
    /// building per ~33 customers and one office building per ~200 (at 10M customers 300,000 and
    /// 50,000), never fewer than the concentrated city's.
    #[default]
    Realistic,
    /// 2,500 residential compounds and 800 workplaces whatever the size (the city before
    /// building stocks grew; kind to anything that caches per coordinate).
    Concentrated,
}

impl Places {
    /// (ordinary workplaces, residential compounds) for a city of `customers`. The office
    /// avenues' towers come on top.
    #[must_use]
    pub fn stock(self, customers: u64) -> (usize, usize) {
        const WORKPLACES: usize = 800;
        const COMPOUNDS: usize = 2_500;
        match self {
            Places::Concentrated => (WORKPLACES, COMPOUNDS),
            Places::Realistic => {
                let n = usize::try_from(customers).unwrap_or(usize::MAX);
                (WORKPLACES.max(n / 200), COMPOUNDS.max(n / 100 * 3))
            }
        }
    }
}

/// Demo parameters.
#[derive(Debug, Clone, Copy)]
pub struct DemoParams {
    pub customers: u64,
    pub seed: u64,
    pub format: DemoFormat,
    pub places: Places,
}

impl Default for DemoParams {
    fn default() -> Self {
        DemoParams { customers: 10_000, seed: 42, format: DemoFormat::Csv, places: Places::Realistic }
    }
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub dir: PathBuf,
    pub customers: u64,
    pub touchpoints: u64,
    pub deals: u64,
    pub campaigns: usize,
    pub sites: usize,
}

enum Sink {
    Csv(polars::io::csv::write::BatchedWriter<File>),
    Parquet(polars::io::parquet::write::BatchedWriter<File>),
}

/// A table streamed to a temporary file in the output directory, renamed into place at the end.
struct TableSink {
    tmp: tempfile::NamedTempFile,
    sink: Option<Sink>,
    path: PathBuf,
    rows: u64,
}

impl TableSink {
    fn new(dir: &Path, name: &str, format: DemoFormat) -> Result<TableSink> {
        let path = dir.join(format!("{name}.{}", format.ext()));
        let tmp = crate::io::write::temp_file_in(dir)
            .map_err(|e| Error::Write { path: path.clone(), message: e.to_string() })?;
        Ok(TableSink { tmp, sink: None, path, rows: 0 })
    }

    fn write(&mut self, frame: &DataFrame, format: DemoFormat) -> Result<()> {
        if self.sink.is_none() {
            let file =
                self.tmp.reopen().map_err(|e| Error::Write { path: self.path.clone(), message: e.to_string() })?;
            self.sink = Some(match format {
                DemoFormat::Csv => Sink::Csv(CsvWriter::new(file).include_header(true).batched(&frame.schema())?),
                DemoFormat::Parquet => Sink::Parquet(ParquetWriter::new(file).batched(&frame.schema())?),
            });
        }
        match self.sink.as_mut() {
            Some(Sink::Csv(w)) => w.write_batch(frame)?,
            Some(Sink::Parquet(w)) => w.write_batch(frame)?,
            None => {}
        }
        self.rows += frame.height() as u64;
        Ok(())
    }

    fn finish(self) -> Result<u64> {
        match self.sink {
            Some(Sink::Csv(mut w)) => w.finish()?,
            Some(Sink::Parquet(w)) => {
                w.finish()?;
            }
            None => {}
        }
        let fail = |m: String| Error::Write { path: self.path.clone(), message: m };
        self.tmp.as_file().sync_all().map_err(|e| fail(e.to_string()))?;
        self.tmp.persist(&self.path).map_err(|e| fail(e.error.to_string()))?;
        Ok(self.rows)
    }
}

/// Writes the demo city to `dir`. `progress(done, total)` is called after each batch of chunks.
pub fn generate(dir: &Path, params: &DemoParams, progress: &dyn Fn(u64, u64)) -> Result<DemoSummary> {
    if params.customers == 0 {
        return Err(Error::bad_input("--customers must be at least 1"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Write { path: dir.into(), message: e.to_string() })?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let city = City::build(&mut rng, params.places.stock(params.customers));
    let effects = Effects::planted();
    let format = params.format;

    let mut customers = TableSink::new(dir, "customers", format)?;
    let mut touchpoints = TableSink::new(dir, "touchpoints", format)?;
    let mut deals = TableSink::new(dir, "deals", format)?;
    let chunks = params.customers.div_ceil(CHUNK);
    let wave = rayon::current_num_threads().max(1) as u64 * 2;
    let mut done = 0u64;
    for wave_start in (0..chunks).step_by(wave as usize) {
        let ids: Vec<u64> = (wave_start..(wave_start + wave).min(chunks)).collect();
        let frames: Vec<Result<people::ChunkFrames>> = ids
            .par_iter()
            .map(|&chunk| {
                let first = chunk * CHUNK;
                let count = CHUNK.min(params.customers - first);
                people::generate(&city, &effects, params.seed, chunk, first, count)
            })
            .collect();
        for f in frames {
            let f = f?;
            done += f.customers.height() as u64;
            customers.write(&f.customers, format)?;
            touchpoints.write(&f.touchpoints, format)?;
            deals.write(&f.deals, format)?;
        }
        progress(done, params.customers);
    }

    let campaigns = campaigns_frame(params.customers)?;
    let sites = sites_frame(&city)?;
    let projects = projects_frame()?;
    for (name, frame) in [("campaigns", &campaigns), ("sites", &sites), ("projects", &projects)] {
        let mut t = TableSink::new(dir, name, format)?;
        t.write(frame, format)?;
        t.finish()?;
    }
    let summary = DemoSummary {
        dir: dir.into(),
        customers: customers.finish()?,
        touchpoints: touchpoints.finish()?,
        deals: deals.finish()?,
        campaigns: campaigns.height(),
        sites: sites.height(),
    };
    write_atomic(&dir.join("districts.geojson"), |w| {
        use std::io::Write;
        w.write_all(WUHAN_GEOJSON.as_bytes()).map_err(|e| Error::Internal(e.to_string()))
    })?;
    let truth = Truth::new(&city, params.seed, params.customers, params.places);
    write_atomic(&dir.join("truth.json"), |w| {
        serde_json::to_writer_pretty(w, &truth).map_err(|e| Error::Internal(e.to_string()))
    })?;
    Ok(summary)
}

fn campaigns_frame(customers: u64) -> Result<DataFrame> {
    let scale = customers as f64 / 10_000.0;
    let (mut id, mut channel, mut cost, mut name, mut start, mut end) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (c, (label, spend)) in CHANNELS.iter().zip(CHANNEL_LABELS.iter().zip(CHANNEL_SPEND)) {
        if spend == 0.0 {
            continue;
        }
        for (p, period) in PERIODS.iter().enumerate() {
            let (a, b) = truth::period_dates(p);
            id.push(format!("CMP-{c}-{}", p + 1));
            channel.push(*c);
            cost.push((spend * scale / 2.0).round());
            name.push(format!("{label} {}", period.2));
            start.push(a);
            end.push(b);
        }
    }
    let n = id.len();
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("campaign_id".into(), id),
            Column::new("channel".into(), channel),
            Column::new("cost".into(), cost),
            Column::new("name".into(), name),
            Column::new("start_date".into(), start),
            Column::new("end_date".into(), end),
        ],
    )?)
}

fn sites_frame(city: &City) -> Result<DataFrame> {
    let s = &city.sites;
    Ok(DataFrame::new(
        s.len(),
        vec![
            Column::new("site_id".into(), s.iter().map(|x| x.id.as_str()).collect::<Vec<_>>()),
            Column::new("kind".into(), s.iter().map(|x| x.kind).collect::<Vec<_>>()),
            Column::new("cost".into(), s.iter().map(|x| x.cost).collect::<Vec<_>>()),
            Column::new("wkt".into(), s.iter().map(|x| x.wkt.as_str()).collect::<Vec<_>>()),
            Column::new("name".into(), s.iter().map(|x| x.name.as_str()).collect::<Vec<_>>()),
        ],
    )?)
}

fn projects_frame() -> Result<DataFrame> {
    Ok(DataFrame::new(
        PROJECTS.len(),
        vec![
            Column::new("project_id".into(), PROJECTS.iter().map(|p| p.0).collect::<Vec<_>>()),
            Column::new("lat".into(), PROJECTS.iter().map(|p| p.2 .1).collect::<Vec<_>>()),
            Column::new("lng".into(), PROJECTS.iter().map(|p| p.2 .0).collect::<Vec<_>>()),
            Column::new("name".into(), PROJECTS.iter().map(|p| p.1).collect::<Vec<_>>()),
        ],
    )?)
}
