//! District outlines (administrative polygons) read from GeoJSON, used for map outlines, the
//! demo city and for naming where a cell lies.

use geo::{BoundingRect, Contains, Coord, LineString, MultiPolygon, Point, Polygon, Rect};
use serde_json::Value;

/// One named district.
#[derive(Debug, Clone)]
pub struct District {
    pub id: String,
    pub name: String,
    /// Label point (lng, lat): the GeoJSON `cp` property when present, else the bbox centre.
    pub label: (f64, f64),
    pub shape: MultiPolygon<f64>,
}

/// A set of districts.
#[derive(Debug, Clone, Default)]
pub struct Districts(pub Vec<District>);

/// The Wuhan districts embedded in the binary (MIT, see `data/wuhan_districts.LICENSE`).
pub const WUHAN_GEOJSON: &str = include_str!("../../../data/wuhan_districts.geojson");

impl Districts {
    /// The embedded Wuhan districts.
    #[must_use]
    pub fn wuhan() -> Districts {
        // The embedded file is tested; failure here would be a build defect.
        Districts::from_geojson(WUHAN_GEOJSON).unwrap_or_default()
    }

    /// Parses a GeoJSON FeatureCollection of Polygon / MultiPolygon features with a `name`.
    pub fn from_geojson(text: &str) -> Result<Districts, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        let features = doc["features"].as_array().ok_or("not a FeatureCollection")?;
        let mut out = Vec::new();
        for (i, f) in features.iter().enumerate() {
            let geometry = &f["geometry"];
            let shape = match geometry["type"].as_str() {
                Some("Polygon") => MultiPolygon(vec![polygon(&geometry["coordinates"])?]),
                Some("MultiPolygon") => MultiPolygon(
                    geometry["coordinates"]
                        .as_array()
                        .ok_or("MultiPolygon without coordinates")?
                        .iter()
                        .map(polygon)
                        .collect::<Result<_, _>>()?,
                ),
                _ => continue,
            };
            let props = &f["properties"];
            let name = props["name"].as_str().map(str::to_owned).unwrap_or_else(|| format!("district {}", i + 1));
            let id = match &f["id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => name.clone(),
            };
            let bbox = shape.bounding_rect().ok_or("district without points")?;
            let label = props["cp"]
                .as_array()
                .and_then(|cp| Some((cp.first()?.as_f64()?, cp.get(1)?.as_f64()?)))
                .unwrap_or_else(|| (bbox.center().x, bbox.center().y));
            out.push(District { id, name, label, shape });
        }
        Ok(Districts(out))
    }

    /// The districts as a GeoJSON FeatureCollection (MultiPolygons with `id`, `name` and the
    /// label point `cp`), rounded to 1e-5 degrees (about a metre).
    #[must_use]
    pub fn to_geojson(&self) -> Value {
        let round = |x: f64| (x * 1e5).round() / 1e5;
        let ring = |l: &LineString<f64>| -> Value {
            l.0.iter().map(|c| serde_json::json!([round(c.x), round(c.y)])).collect()
        };
        let features: Vec<Value> = self
            .0
            .iter()
            .map(|d| {
                let polygons: Vec<Value> = d
                    .shape
                    .0
                    .iter()
                    .map(|p| std::iter::once(p.exterior()).chain(p.interiors()).map(ring).collect())
                    .collect();
                serde_json::json!({
                    "type": "Feature",
                    "id": d.id,
                    "properties": {"name": d.name, "cp": [d.label.0, d.label.1]},
                    "geometry": {"type": "MultiPolygon", "coordinates": polygons},
                })
            })
            .collect();
        serde_json::json!({"type": "FeatureCollection", "features": features})
    }

    /// The district containing a (lng, lat) point.
    #[must_use]
    pub fn locate(&self, lng: f64, lat: f64) -> Option<&District> {
        let p = Point::new(lng, lat);
        self.0.iter().find(|d| d.shape.contains(&p))
    }

    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&District> {
        self.0.iter().find(|d| d.name == name)
    }

    /// Bounding box of all districts.
    #[must_use]
    pub fn bounds(&self) -> Option<Rect<f64>> {
        let mut it = self.0.iter().filter_map(|d| d.shape.bounding_rect());
        let first = it.next()?;
        Some(it.fold(first, |a, b| {
            Rect::new(
                Coord { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                Coord { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
            )
        }))
    }
}

fn ring(value: &Value) -> Result<LineString<f64>, String> {
    let coords = value.as_array().ok_or("ring is not an array")?;
    coords
        .iter()
        .map(|c| {
            let x = c.get(0).and_then(Value::as_f64).ok_or("bad coordinate")?;
            let y = c.get(1).and_then(Value::as_f64).ok_or("bad coordinate")?;
            Ok(Coord { x, y })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(LineString::new)
}

fn polygon(value: &Value) -> Result<Polygon<f64>, String> {
    let rings = value.as_array().ok_or("polygon is not an array")?;
    let mut rings = rings.iter().map(ring);
    let exterior = rings.next().ok_or("polygon without rings")??;
    Ok(Polygon::new(exterior, rings.collect::<Result<_, _>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wuhan_has_thirteen_named_districts() {
        let d = Districts::wuhan();
        assert_eq!(d.0.len(), 13);
        let wuchang = d.by_name("武昌区").expect("Wuchang");
        assert_eq!(d.locate(wuchang.label.0, wuchang.label.1).map(|x| x.name.as_str()), Some("武昌区"));
    }

    /// The embedded font was a GB 2312 subset, and 硚 (of 硚口区) lies outside GB 2312: the
    /// map drew that district's name with a missing-glyph box.
    #[test]
    fn regression_every_district_name_has_a_glyph_in_the_embedded_font() {
        let face = ttf_parser::Face::parse(crate::render::FONT, 0).unwrap();
        for d in &Districts::wuhan().0 {
            for c in d.name.chars() {
                assert!(face.glyph_index(c).is_some(), "no glyph for {c} of {}", d.name);
            }
        }
    }

    #[test]
    fn geojson_round_trips() {
        let d = Districts::wuhan();
        let back = Districts::from_geojson(&d.to_geojson().to_string()).unwrap();
        assert_eq!(back.0.len(), d.0.len());
        for (a, b) in d.0.iter().zip(&back.0) {
            assert_eq!((&a.id, &a.name), (&b.id, &b.name));
            let (pa, pb) = (a.shape.0[0].exterior(), b.shape.0[0].exterior());
            assert_eq!(pa.0.len(), pb.0.len());
            assert!((pa.0[0].x - pb.0[0].x).abs() < 1e-5);
        }
    }
}
