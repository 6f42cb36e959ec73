//! H3 cells for coordinate columns, computed in parallel, and coarser cells by bit operations.

use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;

use super::fast_h3::Indexer;

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
    lat.par_chunks(16 * 1024)
        .zip(lng.par_chunks(16 * 1024))
        .flat_map_iter(|(lat, lng)| {
            let mut indexer = Indexer::new(res);
            let mut last: Option<((f64, f64), Option<u64>)> = None;
            lat.iter().zip(lng).map(move |(&la, &lo)| {
                let (la, lo) = (la?, lo?);
                if let Some((key, cell)) = last {
                    if key == (la, lo) {
                        return cell;
                    }
                }
                let cell = indexer.cell(la, lo);
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

/// A cell's outline as RFC 7946 polygons, (lng, lat) rings closed and counter-clockwise: one
/// polygon for most cells; two for a cell that crosses the antimeridian (split at ±180°, so no
/// edge spans the globe); a cell around a pole is closed along the pole's latitude.
#[must_use]
pub fn outline(cell: u64) -> Vec<Vec<(f64, f64)>> {
    let vertices = boundary(cell);
    if vertices.len() < 3 {
        return Vec::new();
    }
    // Longitudes made continuous: each step is the short way round.
    let mut ring: Vec<(f64, f64)> = Vec::with_capacity(vertices.len() + 4);
    ring.push(vertices[0]);
    for &(lng, lat) in &vertices[1..] {
        let prev = ring[ring.len() - 1].0;
        ring.push((prev + wrap180(lng - prev), lat));
    }
    let back = ring[ring.len() - 1].0 + wrap180(vertices[0].0 - ring[ring.len() - 1].0);
    let winding = back - ring[0].0;
    if winding.abs() > 180.0 {
        // The outline goes once round a pole: close it along the pole.
        let mean_lat = vertices.iter().map(|v| v.1).sum::<f64>() / vertices.len() as f64;
        let pole = if mean_lat > 0.0 { 90.0 } else { -90.0 };
        ring.push((back, vertices[0].1));
        ring.push((back, pole));
        ring.push((ring[0].0, pole));
    }
    let mut pieces = Vec::new();
    for shift in [-360.0, 0.0, 360.0] {
        let piece = clip_lng(&ring, -180.0 + shift, 180.0 + shift);
        if piece.len() >= 3 && area2(&piece).abs() > 1e-18 {
            let mut piece: Vec<(f64, f64)> = piece.into_iter().map(|(x, y)| (x - shift, y)).collect();
            if area2(&piece) < 0.0 {
                piece.reverse();
            }
            piece.push(piece[0]);
            pieces.push(piece);
        }
    }
    pieces
}

/// `d` brought into (-180, 180].
fn wrap180(d: f64) -> f64 {
    let w = (d + 180.0).rem_euclid(360.0) - 180.0;
    if w == -180.0 {
        180.0
    } else {
        w
    }
}

/// Twice the signed (shoelace) area of an open ring: positive when counter-clockwise.
fn area2(ring: &[(f64, f64)]) -> f64 {
    (0..ring.len())
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum()
}

/// Sutherland-Hodgman clip of an open ring to the longitudes `lo..=hi`.
fn clip_lng(ring: &[(f64, f64)], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let mut out = ring.to_vec();
    for (edge, keep_above) in [(lo, true), (hi, false)] {
        let inside = |p: (f64, f64)| if keep_above { p.0 >= edge } else { p.0 <= edge };
        let input = std::mem::take(&mut out);
        for i in 0..input.len() {
            let (a, b) = (input[i], input[(i + 1) % input.len()]);
            let cross = || {
                let t = (edge - a.0) / (b.0 - a.0);
                (edge, a.1 + t * (b.1 - a.1))
            };
            match (inside(a), inside(b)) {
                (true, true) => out.push(b),
                (true, false) => out.push(cross()),
                (false, true) => {
                    out.push(cross());
                    out.push(b);
                }
                (false, false) => {}
            }
        }
    }
    out
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

    fn cell_at(lat: f64, lng: f64, res: u8) -> u64 {
        u64::from(LatLng::new(lat, lng).unwrap().to_cell(Resolution::try_from(res).unwrap()))
    }

    fn ccw_closed_in_range(piece: &[(f64, f64)]) -> bool {
        let open = &piece[..piece.len() - 1];
        piece.first() == piece.last()
            && area2(open) > 0.0
            && piece.iter().all(|(x, y)| (-180.0..=180.0).contains(x) && (-90.0..=90.0).contains(y))
    }

    #[test]
    fn regression_antimeridian_cells_are_split_not_spanning_the_globe() {
        // Fiji straddles 180°: a res-2 cell there crosses it.
        let cell = cell_at(-17.0, 179.99, 2);
        let pieces = outline(cell);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        for piece in &pieces {
            assert!(ccw_closed_in_range(piece), "{piece:?}");
            let xs: Vec<f64> = piece.iter().map(|p| p.0).collect();
            let span = xs.iter().copied().fold(f64::MIN, f64::max) - xs.iter().copied().fold(f64::MAX, f64::min);
            assert!(span < 10.0, "a piece spans {span} degrees: {piece:?}");
        }
        // The two pieces' areas add up to the unwrapped cell's.
        let total: f64 = pieces.iter().map(|p| area2(&p[..p.len() - 1])).sum();
        let ordinary = outline(cell_at(-17.0, 170.0, 2));
        assert!(total > 0.3 * area2(&ordinary[0][..ordinary[0].len() - 1]));
    }

    #[test]
    fn ordinary_cells_are_one_counter_clockwise_ring() {
        for (lat, lng) in [(30.5, 114.3), (-33.9, 151.2), (51.5, -0.1), (40.7, -74.0)] {
            let pieces = outline(cell_at(lat, lng, 9));
            assert_eq!(pieces.len(), 1);
            assert!(ccw_closed_in_range(&pieces[0]), "{:?}", pieces[0]);
            assert_eq!(pieces[0].len(), 7);
        }
    }

    #[test]
    fn polar_cells_close_along_the_pole() {
        for lat in [89.99, -89.99] {
            let pieces = outline(cell_at(lat, 10.0, 1));
            assert!(!pieces.is_empty());
            for piece in &pieces {
                assert!(ccw_closed_in_range(piece), "{piece:?}");
            }
            let pole = lat.signum() * 90.0;
            assert!(pieces.iter().flatten().any(|p| p.1 == pole), "{pieces:?}");
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
