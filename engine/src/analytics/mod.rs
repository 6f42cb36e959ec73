//! Analytics: one module per analytic. They take a [`crate::Dataset`] and typed params and
//! return frames or plain structs; they do no file or network I/O.

pub mod attribution;
pub mod heatmap;
pub mod placement;
pub mod privacy;
pub mod referrals;
pub mod segment;

pub use attribution::{attribution, AttributionParams, AttributionResult, By, Model};
pub use heatmap::{heatmap, HeatmapBase, HeatmapParams, HeatmapResult, Location, Reduction};
pub use privacy::{Access, KFloor, Policy, PublicParams, PublicRelease, Suppressed};
pub use segment::Segment;
