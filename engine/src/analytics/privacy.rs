//! The privacy floor of SPEC §3: no exported cell describes fewer than `k` customers.

use serde::Serialize;

use crate::error::{Error, Result};

/// Minimum number of customers a published cell must hold (default 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KFloor(u32);

impl KFloor {
    /// ```
    /// use custmap_engine::analytics::KFloor;
    /// assert_eq!(KFloor::new(5).unwrap().get(), 5);
    /// assert!(KFloor::new(0).is_err());
    /// ```
    pub fn new(k: u32) -> Result<Self> {
        if k >= 1 {
            Ok(KFloor(k))
        } else {
            Err(Error::bad_input("k must be at least 1"))
        }
    }

    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for KFloor {
    fn default() -> Self {
        KFloor(5)
    }
}

/// What the floor did to a table: cells folded into their parents, and cells dropped because
/// even the coarsest allowed parent held fewer than `k` customers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub merged: u64,
    pub dropped: u64,
}
