//! The `custmap` HTTP server (SPEC §7), as a library so tests can call `app()` directly.

pub mod http;
