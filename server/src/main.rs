//! `custmap`: command line for the custmap engine.

mod cli;

// polars allocates large columns often; jemalloc (what polars itself ships with) reuses them.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CUSTMAP_LOG")
                .unwrap_or_else(|_| "warn,custmap=info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    cli::main()
}
