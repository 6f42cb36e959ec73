//! Engine integration tests: one binary, a module per area.

mod attribution;
mod common;
mod demo;
mod fuzz;
mod heatmap;
mod ingest;
mod placement;
mod privacy;
mod referrals;
