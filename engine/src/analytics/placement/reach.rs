//! Which prospects each site reaches: an anchor of theirs (home, work, or in commute mode the
//! straight home -> work segment) within the site's radius of its geometry (point or polyline),
//! by great-circle distance. An R-tree over anchors (in local metres) finds candidates; the
//! exact test uses haversine distances and closest points on great circles.

use std::collections::HashMap;

use geo::{Closest, Distance, Haversine, HaversineClosestPoint, Intersects, Line, LineString, Point};
use rstar::primitives::{GeomWithData, Line as RLine};
use rstar::{RTree, AABB};

use crate::spatial::geometry::SiteGeometry;

/// How a prospect can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "surface", derive(clap::ValueEnum, utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReachMode {
    Home,
    Work,
    /// Home or work.
    Both,
    /// Home, work, or anywhere on the straight home -> work segment.
    Commute,
}

/// Which anchor reached a prospect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Home,
    Work,
    Commute,
}

/// A prospect's places (lng, lat).
#[derive(Debug, Clone, Copy)]
pub struct Prospect {
    pub home: Option<(f64, f64)>,
    pub work: Option<(f64, f64)>,
}

fn pt(p: (f64, f64)) -> Point<f64> {
    Point::new(p.0, p.1)
}

/// Great-circle distance (m) from a point to a polyline.
#[must_use]
pub fn point_to_line_m(p: Point<f64>, line: &LineString<f64>) -> f64 {
    match line.haversine_closest_point(&p) {
        Closest::Intersection(q) | Closest::SinglePoint(q) => Haversine.distance(p, q),
        Closest::Indeterminate => f64::INFINITY,
    }
}

/// Great-circle distance (m) from a segment to a site geometry (0 when they cross).
#[must_use]
pub fn segment_to_site_m(seg: Line<f64>, site: &SiteGeometry) -> f64 {
    let seg_ls = LineString::from(vec![seg.start, seg.end]);
    match site {
        SiteGeometry::Point(p) => point_to_line_m(*p, &seg_ls),
        SiteGeometry::Line(l) => {
            if seg_ls.intersects(l) {
                return 0.0;
            }
            let ends =
                [seg.start, seg.end].iter().map(|c| point_to_line_m(Point::from(*c), l)).fold(f64::INFINITY, f64::min);
            let verts = l.points().map(|v| point_to_line_m(v, &seg_ls)).fold(f64::INFINITY, f64::min);
            ends.min(verts)
        }
    }
}

/// Great-circle distance (m) from a point to a site geometry.
#[must_use]
pub fn point_to_site_m(p: Point<f64>, site: &SiteGeometry) -> f64 {
    match site {
        SiteGeometry::Point(q) => Haversine.distance(p, *q),
        SiteGeometry::Line(l) => point_to_line_m(p, l),
    }
}

/// Local equirectangular metres around a reference latitude (for the index only).
struct Local {
    kx: f64,
    ky: f64,
}

impl Local {
    fn new(lat0: f64) -> Local {
        Local { kx: 111_320.0 * lat0.to_radians().cos(), ky: 110_574.0 }
    }
    fn xy(&self, (lng, lat): (f64, f64)) -> [f64; 2] {
        [lng * self.kx, lat * self.ky]
    }
}

/// Per site: the (prospect, anchor) pairs it reaches, each pair once.
#[must_use]
pub fn coverage(prospects: &[Prospect], sites: &[(SiteGeometry, f64)], mode: ReachMode) -> Vec<Vec<(u32, Anchor)>> {
    let lat0 = prospects.iter().find_map(|p| p.home.or(p.work)).map_or(0.0, |p| p.1);
    let local = Local::new(lat0);
    let use_home = matches!(mode, ReachMode::Home | ReachMode::Both | ReachMode::Commute);
    let use_work = matches!(mode, ReachMode::Work | ReachMode::Both | ReachMode::Commute);
    // Anchors grouped by exact coordinate (CRM addresses repeat: towers, compounds), so each
    // distinct place is indexed and distance-tested once.
    let mut places: HashMap<(u64, u64), usize> = HashMap::new();
    let mut at: Vec<(f64, f64)> = Vec::new();
    let mut who: Vec<Vec<(u32, Anchor)>> = Vec::new();
    let mut segments = Vec::new();
    for (i, p) in prospects.iter().enumerate() {
        let i = i as u32;
        let anchors = [(use_home, p.home, Anchor::Home), (use_work, p.work, Anchor::Work)];
        for (on, place, anchor) in anchors {
            let (true, Some(c)) = (on, place) else { continue };
            let slot = *places.entry((c.0.to_bits(), c.1.to_bits())).or_insert_with(|| {
                at.push(c);
                who.push(Vec::new());
                at.len() - 1
            });
            who[slot].push((i, anchor));
        }
        if let (ReachMode::Commute, Some(h), Some(w)) = (mode, p.home, p.work) {
            segments.push(GeomWithData::new(RLine::new(local.xy(h), local.xy(w)), i));
        }
    }
    let point_tree =
        RTree::bulk_load(at.iter().enumerate().map(|(k, c)| GeomWithData::new(local.xy(*c), k)).collect::<Vec<_>>());
    let segment_tree = RTree::bulk_load(segments);
    sites
        .iter()
        .map(|(geometry, radius)| {
            // Search box: the geometry's extent grown by the radius plus 2% for the projection.
            let coords: Vec<(f64, f64)> = match geometry {
                SiteGeometry::Point(p) => vec![(p.x(), p.y())],
                SiteGeometry::Line(l) => l.coords().map(|c| (c.x, c.y)).collect(),
            };
            let xy: Vec<[f64; 2]> = coords.iter().map(|c| local.xy(*c)).collect();
            let pad = radius * 1.02 + 1.0;
            let lo = [
                xy.iter().map(|p| p[0]).fold(f64::MAX, f64::min) - pad,
                xy.iter().map(|p| p[1]).fold(f64::MAX, f64::min) - pad,
            ];
            let hi = [
                xy.iter().map(|p| p[0]).fold(f64::MIN, f64::max) + pad,
                xy.iter().map(|p| p[1]).fold(f64::MIN, f64::max) + pad,
            ];
            let envelope = AABB::from_corners(lo, hi);
            let mut reached: Vec<(u32, Anchor)> = Vec::new();
            for cand in point_tree.locate_in_envelope_intersecting(&envelope) {
                if point_to_site_m(pt(at[cand.data]), geometry) <= *radius {
                    reached.extend_from_slice(&who[cand.data]);
                }
            }
            for cand in segment_tree.locate_in_envelope_intersecting(&envelope) {
                let i = cand.data;
                let p = &prospects[i as usize];
                if let (Some(h), Some(w)) = (p.home, p.work) {
                    if segment_to_site_m(Line::new(pt(h), pt(w)), geometry) <= *radius {
                        reached.push((i, Anchor::Commute));
                    }
                }
            }
            reached.sort_by_key(|(i, a)| (*i, *a as u8));
            reached.dedup();
            reached
        })
        .collect()
}
