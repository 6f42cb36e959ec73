//! The `custmap` command line and HTTP server (SPEC §6, §7), as a library so tests can call
//! `app()` directly.

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod http;
pub mod release;
pub mod requests;
pub mod views;
