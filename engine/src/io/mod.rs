//! Reading, validating and writing tables.
//!
//! Data flows `read` (bytes -> all-column frame with a row number) -> `validate` (typed columns,
//! row-level rejects with reasons) -> [`dataset::Dataset`]. Writers in `write` are atomic.

pub mod dataset;
pub mod import;
pub mod read;
mod refs;
pub mod rules;
pub mod schema;
pub mod touchpoints;
pub mod validate;
pub mod write;

pub use dataset::{Dataset, IngestReport, TableReport};
pub use write::{write_frame, OutputFormat};
