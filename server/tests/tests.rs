//! `custmap` binary tests: one binary, a module per area.

mod browser;
mod cli;
mod http;
mod notebooks;
mod upload;
