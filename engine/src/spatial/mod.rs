//! Spatial helpers: H3 cells (h3o), geometry parsing and distances (geo), district outlines.

pub mod districts;
pub mod fast_h3;
pub mod geometry;
pub mod h3;

pub use districts::{District, Districts};
pub use h3::Res;
