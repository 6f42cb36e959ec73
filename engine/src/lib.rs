//! custmap engine: validated ingest of CRM tables, H3 aggregates with a privacy floor, and
//! rendering. No HTTP and no CLI here; see `ARCHITECTURE.md` at the repository root.

pub mod analytics;
pub mod demo;
pub mod error;
pub mod io;
pub mod render;
pub mod spatial;

pub use error::{Error, Result};
pub use io::dataset::Dataset;
/// The polars version the engine's frames come from, for callers that read them.
pub use polars;
