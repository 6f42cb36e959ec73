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
    let parsed = wkt::Wkt::<f64>::from_str(text.trim()).map_err(|e| format!("invalid WKT ({e})"))?;
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
    if ok {
        Ok(site)
    } else {
        Err("WKT coordinates out of range (expected lng lat in WGS84)".into())
    }
}

/// Great-circle distance in metres between two (lng, lat) points (haversine, mean Earth radius).
#[must_use]
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    use geo::{Distance, Haversine};
    Haversine.distance(Point::new(a.0, a.1), Point::new(b.0, b.1))
}
