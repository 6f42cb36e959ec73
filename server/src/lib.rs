//! The `custmap` command line and HTTP server (SPEC §6, §7), as a library so tests can call
//! `app()` directly.

pub mod http;
pub mod views;
