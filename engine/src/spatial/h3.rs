//! H3 cells for coordinate columns, computed in parallel, and coarser cells by bit operations.

use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// A checked H3 resolution, 0 to 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Res(u8);

impl Res {
    /// The finest resolution; cells are computed at this resolution once and rolled up.
    pub const FINEST: Res = Res(15);

    /// Checks a resolution given by a user.
    ///
    /// ```
    /// use custmap_engine::spatial::Res;
    /// assert_eq!(Res::new(9).unwrap().get(), 9);
    /// assert!(Res::new(16).is_err());
    /// ```
    pub fn new(res: u8) -> Result<Self> {
        if res <= 15 {
            Ok(Res(res))
        } else {
            Err(Error::bad_input(format!("resolution {res} out of range [0, 15]")))
        }
    }

    #[must_use]
    pub fn get(self) -> u8 {
        self.0
    }

    fn h3o(self) -> Resolution {
        // In range by construction.
        Resolution::try_from(self.0).unwrap_or(Resolution::Fifteen)
    }

    /// The next coarser resolution, if any.
    #[must_use]
    pub fn coarser(self) -> Option<Res> {
        self.0.checked_sub(1).map(Res)
    }
}

const RES_SHIFT: u64 = 52;
const RES_MASK: u64 = 0xF << RES_SHIFT;

/// The ancestor of `cell` at resolution `res` (`res` must not be finer than the cell's own).
///
/// Pure bit arithmetic on the H3 index layout: set the resolution field and mark every digit
/// finer than `res` as unused (7). Equal to `h3o::CellIndex::parent`, checked by a property test.
#[must_use]
pub fn parent_bits(cell: u64, res: Res) -> u64 {
    let r = u64::from(res.0);
    let unused_digits = 15 - r;
    let digits_mask = (1u64 << (3 * unused_digits)) - 1;
    ((cell & !RES_MASK) | (r << RES_SHIFT)) | digits_mask
}

/// Resolution of a raw H3 cell index.
#[must_use]
pub fn res_of(cell: u64) -> u8 {
    ((cell & RES_MASK) >> RES_SHIFT) as u8
}

/// Cells at `res` for coordinate pairs; `None` where either coordinate is missing or invalid.
/// Runs on the rayon pool in chunks; equal consecutive coordinates (common: many customers
/// share a building) reuse the previous cell.
#[must_use]
pub fn cells(lat: &[Option<f64>], lng: &[Option<f64>], res: Res) -> Vec<Option<u64>> {
    let r = res.h3o();
    lat.par_chunks(16 * 1024)
        .zip(lng.par_chunks(16 * 1024))
        .flat_map_iter(|(lat, lng)| {
            let mut last: Option<((f64, f64), Option<u64>)> = None;
            lat.iter().zip(lng).map(move |(&la, &lo)| {
                let (la, lo) = (la?, lo?);
                if let Some((key, cell)) = last {
                    if key == (la, lo) {
                        return cell;
                    }
                }
                let cell = cell_h3o(la, lo, r);
                last = Some(((la, lo), cell));
                cell
            })
        })
        .collect()
}

/// The cell at `res` of one coordinate pair; `None` if it is out of range or not finite.
#[must_use]
pub fn cell(lat: f64, lng: f64, res: Res) -> Option<u64> {
    cell_h3o(lat, lng, res.h3o())
}

fn cell_h3o(lat: f64, lng: f64, r: Resolution) -> Option<u64> {
    let valid = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng);
    valid.then(|| LatLng::new(lat, lng).ok()).flatten().map(|p| u64::from(p.to_cell(r)))
}

/// The H3 string of a cell (what kepler.gl reads in a `hex_id` column).
#[must_use]
pub fn hex_string(cell: u64) -> String {
    format!("{cell:x}")
}

/// Boundary of a cell as (lng, lat) vertices, not closed.
#[must_use]
pub fn boundary(cell: u64) -> Vec<(f64, f64)> {
    CellIndex::try_from(cell).map(|c| c.boundary().iter().map(|p| (p.lng(), p.lat())).collect()).unwrap_or_default()
}

/// Centre of a cell as (lng, lat).
#[must_use]
pub fn center(cell: u64) -> Option<(f64, f64)> {
    CellIndex::try_from(cell).ok().map(|c| {
        let p = LatLng::from(c);
        (p.lng(), p.lat())
    })
}

/// Cells within grid distance `k` of `cell`, with their distance.
#[must_use]
pub fn disk_with_distances(cell: u64, k: u32) -> Vec<(u64, u32)> {
    CellIndex::try_from(cell)
        .map(|c| c.grid_disk_distances::<Vec<_>>(k).into_iter().map(|(n, d)| (u64::from(n), d)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parent_bits_matches_h3o(lat in -89.9f64..89.9, lng in -179.9f64..179.9, fine in 0u8..=15, coarse in 0u8..=15) {
            prop_assume!(coarse <= fine);
            let cell = LatLng::new(lat, lng).unwrap().to_cell(Resolution::try_from(fine).unwrap());
            let want = cell.parent(Resolution::try_from(coarse).unwrap()).unwrap();
            prop_assert_eq!(parent_bits(u64::from(cell), Res(coarse)), u64::from(want));
        }
    }

    #[test]
    fn cells_handle_missing_and_repeats() {
        let lat = [Some(30.5), Some(30.5), None, Some(95.0)];
        let lng = [Some(114.3), Some(114.3), Some(114.3), Some(114.3)];
        let got = cells(&lat, &lng, Res(9));
        assert!(got[0].is_some());
        assert_eq!(got[0], got[1]);
        assert_eq!(got[2], None);
        assert_eq!(got[3], None);
        assert_eq!(res_of(got[0].unwrap()), 9);
    }
}
