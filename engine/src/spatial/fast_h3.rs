//! Point to H3 cell, h3o's answer to the bit, in a fraction of its time.
//!
//! h3o finds a point's cell in two steps: the point's face and hex coordinates on that face
//! (`FaceIJK`: the nearest icosahedron face, a gnomonic projection in polar form, which costs an
//! arccosine, a tangent, an azimuth and a sine/cosine, then rounding to the hex lattice), and
//! from those the cell index (integer work: walk up the aperture-7 hierarchy to resolution 0,
//! one digit per level, then look up the base cell and rotate the digits into its frame).
//!
//! [`Indexer`] computes the same `FaceIJK` by vector algebra: the gnomonic coordinates along the
//! face's axes are two dot products over a third (`(p·u)/(p·c)`, `(p·v)/(p·c)`, with `c` the face
//! centre and `u`, `v` the face's i-axis frame in the tangent plane), no trigonometry beyond the
//! point's own sine and cosine. The two computations round differently in the last bits, so the
//! fast one is **certified**: the nearest face must beat the next by a margin, and every decision
//! of the lattice rounding (each comparison of the DGGRID quantisation h3o uses, and the signs of
//! x and y) must hold with a margin larger than both computations' error bounds (including h3o's
//! own loss of precision near a face centre, where it takes `acos(1 - d²/2)`). Where a decision is
//! closer than that, the point goes to h3o itself.
//!
//! From a certified `FaceIJK` the digits are exact integer steps (the same aperture-7 moves h3o
//! makes). What depends on h3o's tables, the base cell of a resolution-0 face position and the
//! number of 60° turns that carry the face's digits into the base cell's frame, is learnt from h3o
//! on the first point seen there that has a digit other than centre: its cell's base cell, and
//! the one rotation that maps our digits onto its digits. Pentagon base cells (whose digits h3o
//! rotates by rules that depend on the digits) are left to h3o. A position that fails to teach
//! a consistent rotation also goes to h3o for good.
//!
//! Identity with h3o is tested on millions of points (uniform on the sphere, dense cities, every
//! resolution) and on points bisected onto cell edges to the last bit (`tests` below, and the
//! `h3_identity` bench example at full size).

use h3o::{LatLng, Resolution};

use super::h3::Res;

/// h3o's constants (`coord/mod.rs`): gnomonic scale of resolution 0, the Class III rotation,
/// and the powers of √7 (the same table, so the scale is the same number).
const INV_RES0_U_GNOMONIC: f64 = 2.618_033_988_749_896;
const AP7_ROT_RADS: f64 = 0.333_473_172_251_832_1;
#[allow(clippy::unreadable_literal, clippy::excessive_precision)]
const SQRT7_POWERS: [f64; 16] = [
    1.0,
    2.6457513110645907,
    7.,
    18.520259177452136,
    49.00000000000001,
    129.64181424216497,
    343.0000000000001,
    907.4926996951549,
    2401.000000000001,
    6352.448897866085,
    16807.000000000007,
    44467.1422850626,
    117649.00000000007,
    311269.9959954382,
    823543.0000000006,
    2178889.971968068,
];
const RSIN60: f64 = 1.154_700_538_379_251_5;

/// Icosahedron face centres (h3o `face::CENTER_POINT`).
#[allow(clippy::unreadable_literal, clippy::excessive_precision)]
const CENTER: [[f64; 3]; 20] = [
    [0.2199307791404606, 0.6583691780274996, 0.7198475378926182],
    [-0.2139234834501421, 0.1478171829550703, 0.9656017935214205],
    [0.1092625278784797, -0.481195157287321, 0.8697775121287253],
    [0.7428567301586791, -0.3593941678278028, 0.5648005936517033],
    [0.8112534709140969, 0.3448953237639384, 0.472138773641393],
    [-0.1055498149613921, 0.9794457296411413, 0.1718874610009365],
    [-0.8075407579970092, 0.1533552485898818, 0.5695261994882688],
    [-0.2846148069787907, -0.8644080972654206, 0.4144792552473539],
    [0.7405621473854482, -0.6673299564565524, -0.0789837646326737],
    [0.8512303986474293, 0.4722343788582681, -0.2289137388687808],
    [-0.7405621473854481, 0.6673299564565524, 0.0789837646326737],
    [-0.8512303986474292, -0.4722343788582682, 0.2289137388687808],
    [0.1055498149613919, -0.9794457296411413, -0.1718874610009365],
    [0.8075407579970092, -0.1533552485898819, -0.5695261994882688],
    [0.2846148069787908, 0.8644080972654204, -0.4144792552473539],
    [-0.7428567301586791, 0.3593941678278027, -0.5648005936517033],
    [-0.811253470914097, -0.3448953237639382, -0.472138773641393],
    [-0.2199307791404607, -0.6583691780274996, -0.7198475378926182],
    [0.213923483450142, -0.1478171829550704, -0.9656017935214205],
    [-0.1092625278784796, 0.481195157287321, -0.8697775121287253],
];

/// Azimuth of each face's Class II i-axis from its centre (h3o `face::AXES_AZ_RADS_CII`).
#[allow(clippy::unreadable_literal, clippy::excessive_precision)]
const AXES_AZ_RADS_CII: [f64; 20] = [
    5.6199582685239395,
    5.7603390817141875,
    0.78021365439343,
    0.4304693639799999,
    6.130269123335111,
    2.692877706530643,
    2.982963003477244,
    3.532912002790141,
    3.494305004259568,
    3.0032141694995382,
    5.930472956509812,
    0.13837848409025486,
    0.4487149470591504,
    0.15862965011254937,
    5.891865957979238,
    2.711123289609793,
    3.294508837434268,
    3.80481969224544,
    3.6644388790551923,
    2.361378999196363,
];

/// A certified face must be nearer than the next by this much (squared chord; both codes compute
/// it to ~1e-16).
const FACE_MARGIN: f64 = 1e-12;

/// Relative error budget of a hex coordinate, in units of the resolution's scale: covers the
/// dot products here and h3o's polar form, ~1e-16 each, with a factor of 100 to spare.
const REL_MARGIN: f64 = 1e-14;

/// Resolution-0 positions: 20 faces, each coordinate of the normalised (i, j, k) in 0..=3.
const POSITIONS: usize = 20 * 64;

/// A digit turned 60° counter-clockwise (`ROT60[d]`), centre (0) and the unused 7 fixed.
const ROT60: [u8; 8] = [0, 5, 3, 1, 6, 4, 2, 7];

/// `TURNS[r][d]`: digit `d` turned `r` times.
const TURNS: [[u8; 8]; 6] = {
    let mut t = [[0u8; 8]; 6];
    let mut r = 0;
    while r < 6 {
        let mut d = 0;
        while d < 8 {
            t[r][d] = if r == 0 { d as u8 } else { ROT60[t[r - 1][d] as usize] };
            d += 1;
        }
        r += 1;
    }
    t
};

/// Levels computed per point before the coarser ones are looked up: a coarse ancestor (four
/// levels up: 2,401 times the cell's area) is shared by most points of a city, so its digits
/// come from a small cache.
const FINE_LEVELS: usize = 4;

/// Slots of the ancestor cache (a power of two).
const ANCESTOR_SLOTS: usize = 1 << 10;

/// A cached ancestor: its face and position at its level, its digits and resolution-0 position.
#[derive(Debug, Clone, Copy)]
struct Ancestor {
    face: usize,
    ij: [i64; 2],
    digits: [u8; 16],
    position: usize,
}

/// What a resolution-0 position maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// Not seen yet.
    Unknown,
    /// The cell's mode, resolution-free base cell bits; the digits' rotation once learnt.
    Cell { bits: u64, rot: Option<u8> },
    /// Pentagon base cell, or the rotation could not be learnt: h3o answers.
    H3o,
}

type V3 = [f64; 3];

fn dot(a: &V3, b: &V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalized(v: V3) -> V3 {
    let n = dot(&v, &v).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

fn cross(a: &V3, b: &V3) -> V3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// The frame `(u, v)` of a face for an i-axis at azimuth `az`: x = (p·u)/(p·c), y = (p·v)/(p·c)
/// are `tan(r) cos θ`, `tan(r) sin θ` with θ = az - azimuth(c -> p), h3o's polar coordinates.
fn frame(c: &V3, az: f64) -> (V3, V3) {
    let pole = [0.0, 0.0, 1.0];
    let pc = dot(&pole, c);
    let north = normalized([pole[0] - pc * c[0], pole[1] - pc * c[1], pole[2] - pc * c[2]]);
    let east = cross(&north, c);
    let (s, co) = az.sin_cos();
    let u = [co * north[0] + s * east[0], co * north[1] + s * east[1], co * north[2] + s * east[2]];
    let v = [s * north[0] - co * east[0], s * north[1] - co * east[1], s * north[2] - co * east[2]];
    (u, v)
}

/// The cosine of an angle under which a point is nearer to a face centre than to any other by a
/// wide margin: half the smallest angle between two face centres (20.9°), less 2°. At that
/// angle the squared chords to the nearest and the next centre differ by over 0.05, far above
/// [`FACE_MARGIN`].
fn near_cos() -> f64 {
    let mut min_angle = std::f64::consts::PI;
    for (a, ca) in CENTER.iter().enumerate() {
        for cb in &CENTER[a + 1..] {
            min_angle = min_angle.min(dot(ca, cb).clamp(-1.0, 1.0).acos());
        }
    }
    (min_angle / 2.0 - 2f64.to_radians()).cos()
}

/// Points to cells at one resolution, exactly as h3o, with a certified fast path.
#[derive(Debug, Clone)]
pub struct Indexer {
    res: Res,
    h3o_res: Resolution,
    /// Per face: centre, and the axes frame of this resolution's class.
    faces: [(V3, V3, V3); 20],
    scale: f64,
    bases: Vec<Base>,
    ancestors: Vec<Option<Ancestor>>,
    /// The face of the last point searched, and the dot product with its centre above which a
    /// point is certainly nearest it (well inside its half the angle between adjacent centres).
    last_face: usize,
    near_cos: f64,
    /// Points the fast path could not certify (answered by h3o).
    pub uncertified: u64,
    /// Points in pentagon base cells (answered by h3o).
    pub pentagon: u64,
    /// Every point h3o answered (uncertified, pentagon, and the first of a base position).
    pub h3o_calls: u64,
}

impl Indexer {
    #[must_use]
    pub fn new(res: Res) -> Indexer {
        let class3 = res.get() % 2 == 1;
        let faces = std::array::from_fn(|f| {
            let az = if class3 { AXES_AZ_RADS_CII[f] - AP7_ROT_RADS } else { AXES_AZ_RADS_CII[f] };
            let (u, v) = frame(&CENTER[f], az);
            (CENTER[f], u, v)
        });
        Indexer {
            res,
            h3o_res: Resolution::try_from(res.get()).unwrap_or(Resolution::Fifteen),
            faces,
            scale: INV_RES0_U_GNOMONIC * SQRT7_POWERS[usize::from(res.get())],
            bases: vec![Base::Unknown; POSITIONS],
            ancestors: vec![None; ANCESTOR_SLOTS],
            last_face: 0,
            near_cos: near_cos(),
            uncertified: 0,
            pentagon: 0,
            h3o_calls: 0,
        }
    }

    #[must_use]
    pub fn res(&self) -> Res {
        self.res
    }

    /// The cell of (`lat`, `lng`) in degrees; `None` when out of range or not finite (as
    /// [`super::h3::cell`]).
    pub fn cell(&mut self, lat: f64, lng: f64) -> Option<u64> {
        if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)) {
            return None;
        }
        let Some((face, ijk)) = self.face_ijk(lat, lng) else {
            self.uncertified += 1;
            return self.h3o(lat, lng);
        };
        let Some((position, digits)) = self.digits(face, ijk) else {
            self.uncertified += 1;
            return self.h3o(lat, lng);
        };
        let r = usize::from(self.res.get());
        let centre = digits[1..=r].iter().all(|&d| d == 0);
        match self.bases[position] {
            Base::Cell { bits, rot: Some(rot) } => return Some(assemble(bits, &digits, r, rot)),
            Base::Cell { bits, rot: None } if centre => return Some(assemble(bits, &digits, r, 0)),
            Base::H3o => {
                self.pentagon += 1;
                return self.h3o(lat, lng);
            }
            Base::Cell { .. } | Base::Unknown => {}
        }
        let cell = self.h3o(lat, lng)?;
        self.bases[position] = learn(cell, &digits, r);
        Some(cell)
    }

    fn h3o(&mut self, lat: f64, lng: f64) -> Option<u64> {
        self.h3o_calls += 1;
        LatLng::new(lat, lng).ok().map(|p| u64::from(p.to_cell(self.h3o_res)))
    }

    /// The digits of the cell with face position (`face`, `ijk`) at this resolution (index 1 to
    /// res; unrotated, in the face's frame), and its resolution-0 position; `None` if that
    /// position is outside the range h3o's tables cover.
    ///
    /// The finest [`FINE_LEVELS`] digits are computed; the rest, those of the ancestor there,
    /// come from the ancestor cache when it has them (a pure function of the ancestor's face and
    /// position, so a hit is the same answer).
    fn digits(&mut self, face: usize, ij: [i64; 2]) -> Option<(usize, [u8; 16])> {
        let mut digits = [0u8; 16];
        let mut ij = ij;
        let res = usize::from(self.res.get());
        let ancestor_level = res.saturating_sub(FINE_LEVELS);
        for level in (ancestor_level + 1..=res).rev() {
            digits[level] = up_step(&mut ij, level)?;
        }
        if ancestor_level == 0 {
            return Some((position(face, ij)?, digits));
        }
        let slot = {
            let h = (ij[0] as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (ij[1] as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                ^ (face as u64);
            (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - ANCESTOR_SLOTS.trailing_zeros())) as usize
        };
        if let Some(a) = self.ancestors[slot].filter(|a| a.face == face && a.ij == ij) {
            digits[1..=ancestor_level].copy_from_slice(&a.digits[1..=ancestor_level]);
            return Some((a.position, digits));
        }
        let at = ij;
        for level in (1..=ancestor_level).rev() {
            digits[level] = up_step(&mut ij, level)?;
        }
        let position = position(face, ij)?;
        self.ancestors[slot] = Some(Ancestor { face, ij: at, digits, position });
        Some((position, digits))
    }

    /// The point's face and normalised lattice coordinates, when every decision that makes them
    /// is certain; `None` when one is too close to call.
    fn face_ijk(&mut self, lat: f64, lng: f64) -> Option<(usize, [i64; 2])> {
        let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
        let (sin_lng, cos_lng) = lng.to_radians().sin_cos();
        let p = [cos_lng * cos_lat, sin_lng * cos_lat, sin_lat];
        // The nearest face centre, and by how much; a point well inside the last point's face
        // (nearer its centre than `near_cos` allows any other centre to be) skips the search.
        let best = if dot(&p, &self.faces[self.last_face].0) > self.near_cos {
            self.last_face
        } else {
            let (mut best, mut d1, mut d2) = (0usize, f64::MAX, f64::MAX);
            for (f, (c, _, _)) in self.faces.iter().enumerate() {
                let d = (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2);
                if d < d1 {
                    (d2, d1, best) = (d1, d, f);
                } else if d < d2 {
                    d2 = d;
                }
            }
            if d2 - d1 <= FACE_MARGIN {
                return None;
            }
            self.last_face = best;
            best
        };
        let (c, u, v) = &self.faces[best];
        let pc = dot(&p, c);
        let (gx, gy) = (dot(&p, u) / pc, dot(&p, v) / pc);
        let (x, y) = (gx * self.scale, gy * self.scale);
        // h3o's radius comes from acos(1 - d²/2), which loses precision as r -> 0: its error is
        // ~1e-16 / r radians; r ≈ |g| here.
        let g = (gx * gx + gy * gy).sqrt();
        let margin = self.scale * REL_MARGIN * (1.0 + 1.0 / g.max(1e-300));
        let (i, j) = quantize(x, y, margin)?;
        Some((best, [i64::from(i), i64::from(j)]))
    }
}

/// h3o's cell from the base cell bits and our digits turned `rot` times.
fn assemble(bits: u64, digits: &[u8; 16], res: usize, rot: u8) -> u64 {
    let mut cell = bits | ((res as u64) << 52);
    for (level, &d) in digits.iter().enumerate().skip(1) {
        let d = if level <= res { turn(d, rot) } else { 7 };
        cell |= u64::from(d) << (3 * (15 - level));
    }
    cell
}

/// What h3o's `cell` teaches about its resolution-0 position, given our `digits` for it.
fn learn(cell: u64, digits: &[u8; 16], res: usize) -> Base {
    let Ok(index) = h3o::CellIndex::try_from(cell) else { return Base::H3o };
    if index.base_cell().is_pentagon() {
        return Base::H3o;
    }
    let bits = cell & !((0xF << 52) | ((1 << 45) - 1));
    let theirs = |level: usize| ((cell >> (3 * (15 - level))) & 7) as u8;
    if digits[1..=res].iter().all(|&d| d == 0) {
        return if (1..=res).all(|l| theirs(l) == 0) { Base::Cell { bits, rot: None } } else { Base::H3o };
    }
    (0..6u8)
        .find(|&rot| (1..=res).all(|l| turn(digits[l], rot) == theirs(l)))
        .map_or(Base::H3o, |rot| Base::Cell { bits, rot: Some(rot) })
}

fn turn(digit: u8, rot: u8) -> u8 {
    TURNS[usize::from(rot % 6)][usize::from(digit & 7)]
}

/// One aperture-7 step up from a cell at `level`, in two-axis coordinates (`ij` = (i - k, j - k)
/// of h3o's (i, j, k), the same for every normalisation of it): `ij` becomes the parent's, and
/// the cell's digit (the unit step from the parent's centre child to it) is returned; `None`
/// if that step is not a unit one (never, for a lattice position).
fn up_step(ij: &mut [i64; 2], level: usize) -> Option<u8> {
    let [i, j] = *ij;
    // h3o's upAp7 (Class III child, counter-clockwise) or upAp7r, and the parent's centre child
    // by downAp7 / downAp7r, both reduced to two axes.
    let (parent, centre) = if level % 2 == 1 {
        let [pi, pj] = [div7(3 * i - j), div7(i + 2 * j)];
        ([pi, pj], [2 * pi + pj, 3 * pj - pi])
    } else {
        let [pi, pj] = [div7(2 * i + j), div7(3 * j - i)];
        ([pi, pj], [3 * pi - pj, pi + 2 * pj])
    };
    *ij = parent;
    let (di, dj) = (i - centre[0], j - centre[1]);
    if !((-1..=1).contains(&di) && (-1..=1).contains(&dj)) {
        return None;
    }
    // Unit steps in two axes: k (-1,-1) 1, j (0,1) 2, jk (-1,0) 3, i (1,0) 4, ik (0,-1) 5,
    // ij (1,1) 6; (-1,1) and (1,-1) are not unit steps.
    const DIGIT: [u8; 9] = [1, 3, 8, 5, 0, 2, 8, 4, 6];
    let d = DIGIT[usize::try_from((di + 1) * 3 + dj + 1).ok()?];
    (d < 7).then_some(d)
}

/// The index of a resolution-0 face position (two axes) among [`POSITIONS`]; `None` outside
/// the range h3o's tables cover.
fn position(face: usize, [i, j]: [i64; 2]) -> Option<usize> {
    // Normalised (i, j, k): no negative component, at least one zero.
    let m = i.min(j).min(0);
    let (i, j, k) = (i - m, j - m, -m);
    if !((0..=3).contains(&i) && (0..=3).contains(&j) && (0..=3).contains(&k)) {
        return None;
    }
    Some(face * 64 + usize::try_from(i * 16 + j * 4 + k).ok()?)
}

/// `n / 7` rounded to the nearest integer (never a tie: 7 is odd).
fn div7(n: i64) -> i64 {
    (2 * n + 7).div_euclid(14)
}

/// h3o's DGGRID quantisation of (x, y) to the hex lattice (`impl From<Vec2d> for CoordIJK`),
/// returning (i, j) before normalisation, or `None` when any decision it takes (a floor, a
/// comparison, a sign) is within `margin` of going the other way.
#[allow(clippy::cast_possible_truncation)]
fn quantize(x: f64, y: f64, margin: f64) -> Option<(i32, i32)> {
    let clear = |a: f64, b: f64| (a - b).abs() > margin;
    if !(clear(x, 0.0) && clear(y, 0.0)) {
        return None;
    }
    let a1 = x.abs();
    let a2 = y.abs();
    let x2 = a2 * RSIN60;
    let x1 = a1 + x2 / 2.;
    let m1 = x1 as i32;
    let m2 = x2 as i32;
    let r1 = x1 - f64::from(m1);
    let r2 = x2 - f64::from(m2);
    // x1, x2 are within a few units of margin of (a1, a2) scaled by at most 1.2.
    let m = margin * 2.0;
    let clear = |a: f64, b: f64| (a - b).abs() > m;
    if !(clear(r1, 0.0) && clear(r1, 1.0) && clear(r2, 0.0) && clear(r2, 1.0)) {
        return None;
    }
    let (mut i, mut j) = if r1 < 0.5 {
        if !clear(r1, 0.5) {
            return None;
        }
        if r1 < 1. / 3. {
            if !(clear(r1, 1. / 3.) && clear(r2, f64::midpoint(1., r1))) {
                return None;
            }
            (m1, m2 + i32::from(r2 >= f64::midpoint(1., r1)))
        } else {
            if !(clear(r1, 1. / 3.) && clear(1. - r1, r2) && clear(r2, 2. * r1)) {
                return None;
            }
            (m1 + i32::from((1. - r1) <= r2 && r2 < (2. * r1)), m2 + i32::from(r2 >= (1. - r1)))
        }
    } else if r1 < 2. / 3. {
        if !(clear(r1, 0.5) && clear(r1, 2. / 3.) && clear(r2, 1. - r1) && clear(2.0 * r1 - 1., r2)) {
            return None;
        }
        (m1 + i32::from(2.0f64.mul_add(r1, -1.) >= r2 || r2 >= (1. - r1)), m2 + i32::from(r2 >= (1. - r1)))
    } else {
        if !(clear(r1, 2. / 3.) && clear(r2, r1 / 2.)) {
            return None;
        }
        (m1 + 1, m2 + i32::from(r2 >= (r1 / 2.)))
    };
    if x < 0. {
        let offset = j % 2;
        let axis_i = i32::midpoint(j, offset);
        let diff = i - axis_i;
        i -= 2 * diff + offset;
    }
    if y < 0. {
        i -= (2 * j + 1) / 2;
        j = -j;
    }
    Some((i, j))
}

/// Identity checks against h3o, shared by the unit tests (small samples) and the `h3_identity`
/// bench example (millions of points).
#[doc(hidden)]
pub mod check {
    use rand::{Rng, SeedableRng};

    use super::{Indexer, Res};

    /// What one check saw: points compared, points the fast path could not certify, cell
    /// edges found (edge check only), and the first few disagreements (lat, lng, res).
    #[derive(Debug, Default)]
    pub struct Report {
        pub points: u64,
        pub uncertified: u64,
        pub h3o_calls: u64,
        pub edges: u64,
        pub mismatches: Vec<(f64, f64, u8)>,
    }

    impl Report {
        /// Compares one point: the indexer against h3o.
        pub fn compare(&mut self, ix: &mut Indexer, lat: f64, lng: f64) {
            self.points += 1;
            let res = ix.res();
            if ix.cell(lat, lng) != super::super::h3::cell(lat, lng, res) {
                if self.mismatches.len() < 10 {
                    self.mismatches.push((lat, lng, res.get()));
                } else {
                    self.mismatches[9] = (lat, lng, res.get());
                }
            }
        }
    }

    fn res(r: u8) -> Res {
        Res::new(r.min(15)).unwrap_or(Res::FINEST)
    }

    /// `n` points uniform on the sphere at `r`, then `n` in a dense 30 km city box.
    #[must_use]
    pub fn sphere_and_city(r: u8, n: u64, seed: u64) -> Report {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut report = Report::default();
        let mut ix = Indexer::new(res(r));
        for _ in 0..n {
            let z: f64 = rng.random_range(-1.0..1.0);
            report.compare(&mut ix, z.asin().to_degrees(), rng.random_range(-180.0..180.0));
        }
        for _ in 0..n {
            report.compare(&mut ix, rng.random_range(30.4..30.7), rng.random_range(114.1..114.5));
        }
        report.uncertified = ix.uncertified;
        report.h3o_calls = ix.h3o_calls;
        report
    }

    /// Points bisected onto cell edges (and face seams) to the last bit, from `tries` random
    /// segments at `r`: both ends of each edge and their neighbouring floats.
    #[must_use]
    pub fn edges(r: u8, tries: u64, seed: u64) -> Report {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut report = Report::default();
        let mut ix = Indexer::new(res(r));
        let h3o = |p: (f64, f64)| super::super::h3::cell(p.0, p.1, res(r));
        for _ in 0..tries {
            let z: f64 = rng.random_range(-1.0..1.0);
            let a = (z.asin().to_degrees(), rng.random_range(-180.0..180.0));
            let step = 3.0 * 0.5f64.powi(i32::from(r)) * rng.random_range(0.2..1.0);
            let b = ((a.0 + step).clamp(-90.0, 90.0), (a.1 + step * 1.3).clamp(-180.0, 180.0));
            let ca = h3o(a);
            if ca == h3o(b) {
                continue;
            }
            // Bisect until the two ends are adjacent floats.
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            let at = |t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            for _ in 0..80 {
                let mid = f64::midpoint(lo, hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                if h3o(at(mid)) == ca {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            report.edges += 1;
            for p in [at(lo), at(hi)] {
                for (dl, dg) in [(0i64, 0i64), (1, 0), (-1, 0), (0, 1), (0, -1)] {
                    let lat = f64::from_bits(p.0.to_bits().wrapping_add_signed(dl));
                    let lng = f64::from_bits(p.1.to_bits().wrapping_add_signed(dg));
                    report.compare(&mut ix, lat, lng);
                }
            }
        }
        report.uncertified = ix.uncertified;
        report.h3o_calls = ix.h3o_calls;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform points on the sphere and dense city points at every resolution: every answer is
    /// h3o's, and most city points are certified.
    #[test]
    fn equals_h3o_on_the_sphere_and_in_a_city() {
        for res in 0..=15u8 {
            let report = check::sphere_and_city(res, 20_000, 7 + u64::from(res));
            assert_eq!(report.mismatches, [], "res {res}");
            assert!(report.uncertified < 400, "res {res}: {} of 40,000 points uncertified", report.uncertified);
            // Pentagon base cells are ~4% of the sphere: the fast path answers nearly all else.
            assert!(report.h3o_calls < 3_000, "res {res}: h3o answered {} of 40,000 points", report.h3o_calls);
        }
    }

    /// Points bisected onto cell edges (and face seams) to the last bit: two points a few ulps
    /// apart in different cells, both answered as h3o answers them.
    #[test]
    fn equals_h3o_on_cell_edges_to_the_last_bit() {
        let mut edges = 0;
        for res in [0u8, 3, 7, 8, 9, 10, 12, 15] {
            let report = check::edges(res, 400, 11 + u64::from(res));
            assert_eq!(report.mismatches, [], "res {res}");
            edges += report.edges;
        }
        assert!(edges > 1_000, "only {edges} edges found");
    }

    /// Around each of the twelve pentagons, at every resolution: h3o's answer (the indexer
    /// leaves pentagon base cells to h3o), and the hexagon base cells beside them are exact.
    #[test]
    fn equals_h3o_around_the_pentagons() {
        let pentagons: Vec<LatLng> =
            h3o::CellIndex::base_cells().filter(|c| c.is_pentagon()).map(LatLng::from).collect();
        assert_eq!(pentagons.len(), 12);
        for res in 0..=15u8 {
            let mut ix = Indexer::new(Res::new(res).unwrap());
            let mut report = check::Report::default();
            for p in &pentagons {
                for step in 0..400u32 {
                    let (a, d) = (f64::from(step) * 0.7, 12.0 * 0.93f64.powi(i32::try_from(step % 100).unwrap()));
                    let lat = (p.lat() + d * a.sin()).clamp(-90.0, 90.0);
                    let lng = (p.lng() + d * a.cos() + 540.0).rem_euclid(360.0) - 180.0;
                    report.compare(&mut ix, lat, lng);
                }
            }
            assert_eq!(report.mismatches, [], "res {res}");
            assert!(ix.pentagon > 0, "res {res}: no point fell in a pentagon base cell");
        }
    }

    #[test]
    fn out_of_range_and_non_finite_are_none() {
        let mut ix = Indexer::new(Res::new(9).unwrap());
        for (lat, lng) in [(91.0, 0.0), (0.0, 181.0), (f64::NAN, 1.0), (1.0, f64::INFINITY)] {
            assert_eq!(ix.cell(lat, lng), None);
        }
        assert_eq!(ix.cell(90.0, 180.0), crate::spatial::h3::cell(90.0, 180.0, Res::new(9).unwrap()));
    }
}
