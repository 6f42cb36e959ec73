//! Engine integration tests: one binary, a module per area.

mod common;
mod demo;
mod heatmap;
mod ingest;
