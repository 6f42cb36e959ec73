//! `custmap` binary tests: one binary, a module per command area.

mod cli;
mod http;
