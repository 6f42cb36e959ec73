//! The demo city's geography: districts (real Wuhan outlines), office avenues with towers,
//! ordinary workplaces, residential compounds, our projects and the advertising sites.

use geo::{BoundingRect, Contains, Point};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::spatial::{District, Districts};

/// Districts that make up the urban core (more homes and workplaces than the outer ones).
pub const CORE: [&str; 7] = ["江岸区", "江汉区", "硚口区", "汉阳区", "武昌区", "青山区", "洪山区"];

/// Districts where the wealthier prospects tend to live.
pub const PREMIUM_HOME: [&str; 3] = ["武昌区", "洪山区", "江岸区"];

/// An office avenue: a straight stretch lined with towers.
#[derive(Debug, Clone, Serialize)]
pub struct Avenue {
    pub name: &'static str,
    pub district: String,
    pub from: (f64, f64),
    pub to: (f64, f64),
    /// Share of tower workers employed on this avenue.
    pub weight: f64,
    pub towers: Vec<(f64, f64)>,
}

/// A place with a location (compound, workplace) and the district it lies in.
#[derive(Debug, Clone)]
pub struct Place {
    pub at: (f64, f64),
    pub district: usize,
    pub premium: bool,
}

/// An advertising site as written to `sites`.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub cost: f64,
    pub wkt: String,
}

/// Our projects (developments) customers enquire about.
pub const PROJECTS: [(&str, &str, (f64, f64), f64); 3] = [
    ("P1", "江景壹号 Riverside One", (114.3050, 30.5650), 32_000.0),
    ("P2", "光谷天地 Optics Valley Park", (114.4050, 30.4950), 24_000.0),
    ("P3", "汉口府 Hankou Residence", (114.2900, 30.6150), 28_000.0),
];

/// The whole geography.
#[derive(Debug, Clone)]
pub struct City {
    pub districts: Districts,
    pub avenues: Vec<Avenue>,
    pub workplaces: Vec<Place>,
    pub compounds: Vec<Place>,
    pub premium_compounds: Vec<usize>,
    pub sites: Vec<Site>,
}

/// Metres to degrees at Wuhan's latitude.
const M_PER_DEG_LAT: f64 = 111_320.0;
fn m_per_deg_lng(lat: f64) -> f64 {
    M_PER_DEG_LAT * lat.to_radians().cos()
}

fn offset((lng, lat): (f64, f64), east_m: f64, north_m: f64) -> (f64, f64) {
    (lng + east_m / m_per_deg_lng(lat), lat + north_m / M_PER_DEG_LAT)
}

/// Rounds to ~1 m so coordinates print cleanly and repeat exactly.
fn snap((lng, lat): (f64, f64)) -> (f64, f64) {
    ((lng * 1e5).round() / 1e5, (lat * 1e5).round() / 1e5)
}

fn random_point_in(d: &District, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let Some(b) = d.shape.bounding_rect() else {
        return d.label;
    };
    for _ in 0..1000 {
        let p = (rng.random_range(b.min().x..b.max().x), rng.random_range(b.min().y..b.max().y));
        if d.shape.contains(&Point::new(p.0, p.1)) {
            return snap(p);
        }
    }
    d.label
}

pub(crate) fn pick_weighted(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

impl City {
    /// Builds the city for a seed with `(workplaces, compounds)` ordinary buildings. Deterministic.
    pub fn build(rng: &mut ChaCha8Rng, (n_workplaces, n_compounds): (usize, usize)) -> City {
        let districts = Districts::wuhan();
        let avenues = build_avenues(rng);
        let weights: Vec<f64> =
            districts.0.iter().map(|d| if CORE.contains(&d.name.as_str()) { 1.0 } else { 0.25 }).collect();
        let place = |rng: &mut ChaCha8Rng, premium_bias: bool| {
            let di = pick_weighted(&weights, rng);
            let d = &districts.0[di];
            let premium = premium_bias && PREMIUM_HOME.contains(&d.name.as_str()) && rng.random_bool(0.5);
            Place { at: random_point_in(d, rng), district: di, premium }
        };
        let workplaces: Vec<Place> = (0..n_workplaces).map(|_| place(rng, false)).collect();
        let compounds: Vec<Place> = (0..n_compounds).map(|_| place(rng, true)).collect();
        let premium_compounds = compounds.iter().enumerate().filter(|(_, c)| c.premium).map(|(i, _)| i).collect();
        let sites = build_sites(&districts, &avenues, rng);
        City { districts, avenues, workplaces, compounds, premium_compounds, sites }
    }

    /// Index of the district containing a point (by polygon), if any.
    #[must_use]
    pub fn district_of(&self, p: (f64, f64)) -> Option<usize> {
        let pt = Point::new(p.0, p.1);
        self.districts.0.iter().position(|d| d.shape.contains(&pt))
    }

    /// Names of the districts that hold the office avenues.
    #[must_use]
    pub fn hot_districts(&self) -> Vec<String> {
        let mut v: Vec<String> = self.avenues.iter().map(|a| a.district.clone()).collect();
        v.dedup();
        v
    }
}

/// The planted office avenues: name, district, a start point inside it, bearing (deg from east).
pub const AVENUES: [(&str, &str, (f64, f64), f64, f64); 3] = [
    ("建设大道 Jianshe Avenue", "江汉区", (114.2520, 30.5900), 40.0, 0.40),
    ("中北路 Zhongbei Road", "武昌区", (114.3300, 30.5450), 70.0, 0.35),
    ("珞喻路 Luoyu Road (Optics Valley)", "洪山区", (114.3700, 30.5050), 0.0, 0.25),
];

fn build_avenues(rng: &mut ChaCha8Rng) -> Vec<Avenue> {
    AVENUES
        .iter()
        .map(|&(name, district, start, bearing, weight)| {
            let length_m = 3_000.0;
            let (dx, dy) = (bearing.to_radians().cos(), bearing.to_radians().sin());
            let to = offset(start, dx * length_m, dy * length_m);
            let towers = (0..40)
                .map(|i| {
                    let along = length_m * (f64::from(i) + 0.5) / 40.0;
                    let side = if i % 2 == 0 { 1.0 } else { -1.0 } * rng.random_range(40.0..120.0);
                    snap(offset(start, dx * along - dy * side, dy * along + dx * side))
                })
                .collect();
            Avenue { name, district: district.to_string(), from: snap(start), to: snap(to), weight, towers }
        })
        .collect()
}

fn point_wkt((lng, lat): (f64, f64)) -> String {
    format!("POINT ({lng} {lat})")
}

fn build_sites(districts: &Districts, avenues: &[Avenue], rng: &mut ChaCha8Rng) -> Vec<Site> {
    let mut sites = Vec::new();
    let core: Vec<&District> = districts.0.iter().filter(|d| CORE.contains(&d.name.as_str())).collect();
    for (a, avenue) in avenues.iter().enumerate() {
        for (t, tower) in avenue.towers.iter().enumerate() {
            sites.push(Site {
                id: format!("LOBBY-{}-{:02}", a + 1, t + 1),
                kind: "office_lobby",
                name: format!("{} tower {} lobby", avenue.name, t + 1),
                cost: (rng.random_range(20.0..50.0_f64) * 1000.0).round(),
                wkt: point_wkt(*tower),
            });
            if t % 2 == 0 {
                let cafe = snap(offset(*tower, rng.random_range(-150.0..150.0), rng.random_range(-150.0..150.0)));
                sites.push(Site {
                    id: format!("CAFE-{}-{:02}", a + 1, t / 2 + 1),
                    kind: "cafe",
                    name: format!("café near {} tower {}", avenue.name, t + 1),
                    cost: (rng.random_range(8.0..15.0_f64) * 1000.0).round(),
                    wkt: point_wkt(cafe),
                });
            }
            if t % 4 == 1 {
                let bar = snap(offset(*tower, rng.random_range(-200.0..200.0), rng.random_range(-200.0..200.0)));
                sites.push(Site {
                    id: format!("BAR-{}-{:02}", a + 1, t / 4 + 1),
                    kind: "bar",
                    name: format!("bar near {} tower {}", avenue.name, t + 1),
                    cost: (rng.random_range(10.0..20.0_f64) * 1000.0).round(),
                    wkt: point_wkt(bar),
                });
            }
        }
    }
    for i in 0..60 {
        let d = core[rng.random_range(0..core.len())];
        sites.push(Site {
            id: format!("CAFE-X-{:02}", i + 1),
            kind: "cafe",
            name: format!("café in {}", d.name),
            cost: (rng.random_range(6.0..12.0_f64) * 1000.0).round(),
            wkt: point_wkt(random_point_in(d, rng)),
        });
    }
    for i in 0..80 {
        let d = core[rng.random_range(0..core.len())];
        sites.push(Site {
            id: format!("BILLBOARD-{:02}", i + 1),
            kind: "billboard",
            name: format!("billboard in {}", d.name),
            cost: (rng.random_range(60.0..150.0_f64) * 1000.0).round(),
            wkt: point_wkt(random_point_in(d, rng)),
        });
    }
    for (kind, count, stops, step_m, cost) in
        [("bus_route", 12, 12, 900.0, 150.0_f64..300.0), ("metro_line", 4, 14, 1600.0, 400.0_f64..800.0)]
    {
        for i in 0..count {
            let d = core[rng.random_range(0..core.len())];
            let mut p = random_point_in(d, rng);
            let mut heading: f64 = rng.random_range(0.0..360.0);
            let mut pts = vec![p];
            for _ in 1..stops {
                heading += rng.random_range(-35.0..35.0);
                p = snap(offset(p, heading.to_radians().cos() * step_m, heading.to_radians().sin() * step_m));
                pts.push(p);
            }
            let coords: Vec<String> = pts.iter().map(|(x, y)| format!("{x} {y}")).collect();
            sites.push(Site {
                id: format!("{}-{:02}", kind.to_uppercase().replace('_', "-"), i + 1),
                kind,
                name: format!("{} {} ({} start)", kind.replace('_', " "), i + 1, d.name),
                cost: (rng.random_range(cost.clone()) * 1000.0).round(),
                wkt: format!("LINESTRING ({})", coords.join(", ")),
            });
        }
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn avenues_and_their_towers_lie_in_their_declared_districts() {
        let city = City::build(&mut ChaCha8Rng::seed_from_u64(1), (800, 2_500));
        for a in &city.avenues {
            for t in &a.towers {
                let found = city.district_of(*t).map(|d| city.districts.0[d].name.as_str());
                assert_eq!(found, Some(a.district.as_str()), "{} tower at {t:?}", a.name);
            }
        }
    }
}
