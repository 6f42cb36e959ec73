//! One error type for the engine, with variants by phase.
//!
//! The split matters to callers: [`Error::is_user_error`] tells the CLI to exit with 2 and the
//! server to answer 4xx; everything else is a runtime failure (exit 1, 5xx without details).

use std::path::PathBuf;

/// Engine result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter or expression the caller gave is invalid (bad `--where`, resolution 16, ...).
    #[error("{0}")]
    BadInput(String),

    /// A table file exists but cannot be used as a whole (unreadable, empty, missing a required
    /// column). Row-level problems never land here: they become rejects.
    #[error("{}: {message}", path.display())]
    Schema { path: PathBuf, message: String },

    /// A dataset directory or table file could not be read at all.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Writing an output failed (disk full, permission denied, ...).
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },

    /// The columnar engine failed while computing a result.
    #[error("compute failed: {0}")]
    Compute(#[from] polars::error::PolarsError),

    /// A bug: an invariant the engine relies on did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// `true` when the caller can fix the problem by changing their input or parameters.
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::BadInput(_) | Error::Schema { .. } | Error::Read { .. })
    }

    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Error::BadInput(message.into())
    }
}
