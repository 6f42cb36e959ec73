//! Site geometry from WKT, and great-circle distances.

use geo::{Geometry, LineString, Point};

/// A site's geometry: a point or a polyline (bus and metro routes).
#[derive(Debug, Clone, PartialEq)]
pub enum SiteGeometry {
    Point(Point<f64>),
    Line(LineString<f64>),
}

/// Parses a site's WKT: `POINT (lng lat)` or `LINESTRING (lng lat, ...)` with WGS84 coordinates.
///
/// ```
/// use custmap_engine::spatial::geometry::{parse_site_wkt, SiteGeometry};
/// assert!(matches!(parse_site_wkt("POINT (114.3 30.6)"), Ok(SiteGeometry::Point(_))));
/// assert!(parse_site_wkt("POLYGON ((0 0, 1 0, 1 1, 0 0))").is_err());
/// ```
pub fn parse_site_wkt(text: &str) -> Result<SiteGeometry, String> {
    use std::str::FromStr;
    let text = text.trim();
    if let Some(rest) = after_geometry(text).filter(|rest| !rest.trim().is_empty()) {
        return Err(format!("invalid WKT (text after the geometry: '{}')", rest.trim()));
    }
    let parsed = wkt::Wkt::<f64>::from_str(text).map_err(|e| format!("invalid WKT ({e})"))?;
    let geometry: Geometry<f64> = parsed.try_into().map_err(|_| "invalid WKT (empty geometry)".to_string())?;
    let site = match geometry {
        Geometry::Point(p) => SiteGeometry::Point(p),
        Geometry::LineString(l) if l.0.len() >= 2 => SiteGeometry::Line(l),
        Geometry::LineString(_) => return Err("LINESTRING needs at least two points".into()),
        _ => return Err("WKT must be a POINT or a LINESTRING".into()),
    };
    let in_range = |c: geo::Coord<f64>| (-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y);
    let ok = match &site {
        SiteGeometry::Point(p) => in_range(p.0),
        SiteGeometry::Line(l) => l.coords().all(|c| in_range(*c)),
    };
    let null_island = match &site {
        SiteGeometry::Point(p) => p.x() == 0.0 && p.y() == 0.0,
        SiteGeometry::Line(l) => l.coords().any(|c| c.x == 0.0 && c.y == 0.0),
    };
    if !ok {
        Err("WKT coordinates out of range (expected lng lat in WGS84)".into())
    } else if null_island {
        Err("site at (0, 0) (a missing location, not a place)".into())
    } else {
        Ok(site)
    }
}

/// What follows the parenthesis that closes the geometry's first one (`None` without parentheses).
fn after_geometry(text: &str) -> Option<&str> {
    let open = text.find('(')?;
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(&text[open + i + 1..]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Great-circle distance in metres from a (lng, lat) point to a site geometry (to a line's
/// nearest point).
#[must_use]
pub fn distance_to_m(geometry: &SiteGeometry, at: (f64, f64)) -> f64 {
    use geo::{Closest, ClosestPoint};
    match geometry {
        SiteGeometry::Point(p) => haversine_m((p.x(), p.y()), at),
        SiteGeometry::Line(l) => match l.closest_point(&Point::new(at.0, at.1)) {
            Closest::Intersection(p) | Closest::SinglePoint(p) => haversine_m((p.x(), p.y()), at),
            Closest::Indeterminate => f64::INFINITY,
        },
    }
}

/// Great-circle distance in metres between two (lng, lat) points (haversine, mean Earth radius).
#[must_use]
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    use geo::{Distance, Haversine};
    Haversine.distance(Point::new(a.0, a.1), Point::new(b.0, b.1))
}
