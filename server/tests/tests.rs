//! `custmap` binary tests: one binary, a module per area.

mod browser;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod golden;
mod http;
mod notebooks;
mod parity;
mod privacy;
mod upload;
