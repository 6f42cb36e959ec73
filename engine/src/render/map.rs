//! Hex maps: cells coloured by a metric in quantile classes, district outlines and names, a
//! legend, a scale bar and a title.

use plotters::coord::Shift;
use plotters::prelude::*;
use polars::prelude::*;

use super::{class_of, draw_err, quantile_breaks, render_image, short_number, text_style, Drawable, ImageFormat, RAMP};
use crate::error::{Error, Result};
use crate::spatial::geometry::SiteGeometry;
use crate::spatial::{h3, Districts};

/// What to draw.
#[derive(Debug, Clone)]
pub struct MapSpec<'a> {
    /// Cell table with `hex_id` and the metric column.
    pub cells: &'a DataFrame,
    pub metric: &'a str,
    pub title: String,
    pub subtitle: String,
    pub districts: Option<&'a Districts>,
    pub size: (u32, u32),
    /// Sites drawn over the cells (placement plans): geometry, reach radius (m), label.
    pub overlay: Vec<(SiteGeometry, f64, String)>,
}

/// Renders the map as PNG or SVG bytes.
pub fn render_map(spec: &MapSpec, format: ImageFormat) -> Result<Vec<u8>> {
    let layer = Layer::new(spec)?;
    render_image(&MapDrawing { spec, layer: &layer }, format, spec.size)
}

struct MapDrawing<'a> {
    spec: &'a MapSpec<'a>,
    layer: &'a Layer,
}

impl Drawable for MapDrawing<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw(root, self.spec, self.layer)
    }
}

/// A cell whose value is 0.
const ZERO: RGBColor = RGBColor(226, 226, 226);
/// A cell whose value the privacy floor withheld (null): not a 0.
const WITHHELD: RGBColor = RGBColor(178, 190, 205);

/// Cells with their boundary and metric value, and the map's extent.
struct Layer {
    /// (boundary, value, merged): `merged` marks coarser cells the privacy floor made; a value
    /// the floor withheld (null) is NaN, drawn apart from 0.
    hexes: Vec<(Vec<(f64, f64)>, f64, bool)>,
    breaks: Vec<f64>,
    bounds: (f64, f64, f64, f64),
}

impl Layer {
    fn new(spec: &MapSpec) -> Result<Layer> {
        let hex = spec.cells.column("hex_id")?.str()?;
        let metric = spec
            .cells
            .column(spec.metric)
            .map_err(|_| Error::bad_input(format!("no metric column '{}' to map", spec.metric)))?
            .cast(&DataType::Float64)?;
        let values = metric.f64()?;
        let cells: Vec<(u64, f64)> = hex
            .iter()
            .zip(values.iter())
            .filter_map(|(id, v)| Some((id.and_then(|s| u64::from_str_radix(s, 16).ok())?, v.unwrap_or(f64::NAN))))
            .collect();
        // Longitudes are drawn continuous around the cells' mean direction, so a map of Fiji
        // (both sides of 180°) is one place, not two edges of the world joined by a line.
        let centre = mean_longitude(cells.iter().filter_map(|(c, _)| h3::center(*c)).map(|p| p.0));
        let mut hexes = Vec::with_capacity(cells.len());
        for (cell, v) in cells {
            let ring = h3::boundary(cell).into_iter().map(|(x, y)| (near(x, centre), y)).collect();
            hexes.push((ring, v, h3::res_of(cell)));
        }
        // Cells coarser than the finest present are privacy-floor merges: sums over a larger
        // area, so they are faded and kept out of the colour classes.
        let base = hexes.iter().map(|h| h.2).max().unwrap_or(0);
        let mut hexes: Vec<(Vec<(f64, f64)>, f64, bool)> =
            hexes.into_iter().map(|(r, v, res)| (r, v, res < base)).collect();
        // A plan frames its sites; a heatmap frames where its metric is.
        let (mut x0, mut y0, mut x1, mut y1) =
            if spec.overlay.is_empty() { focus(&hexes) } else { overlay_bounds(&spec.overlay) };
        if hexes.is_empty() {
            // Nothing to draw: frame the districts, or a 1-degree box.
            if let Some(b) = spec.districts.and_then(Districts::bounds) {
                (x0, y0, x1, y1) = (b.min().x, b.min().y, b.max().x, b.max().y);
            } else {
                (x0, y0, x1, y1) = (0.0, 0.0, 1.0, 1.0);
            }
        }
        // Bigger cells first so fine ones stay visible on top (merged parents are coarser).
        hexes.sort_by(|a, b| polygon_span(&b.0).total_cmp(&polygon_span(&a.0)));
        let values: Vec<f64> = hexes.iter().filter(|h| !h.2).map(|h| h.1).collect();
        let breaks = quantile_breaks(&values, RAMP.len());
        let pad_x = ((x1 - x0) * 0.06).max(0.01);
        let pad_y = ((y1 - y0) * 0.06).max(0.01);
        Ok(Layer { hexes, breaks, bounds: (x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y) })
    }
}

/// The circular mean of longitudes (degrees), 0 when there are none.
fn mean_longitude(lngs: impl Iterator<Item = f64>) -> f64 {
    let (s, c) = lngs.fold((0.0, 0.0), |(s, c), x: f64| (s + x.to_radians().sin(), c + x.to_radians().cos()));
    if s == 0.0 && c == 0.0 {
        0.0
    } else {
        s.atan2(c).to_degrees()
    }
}

/// `lng` moved by whole turns to within 180° of `centre`.
fn near(lng: f64, centre: f64) -> f64 {
    centre + (lng - centre + 180.0).rem_euclid(360.0) - 180.0
}

/// Extent of the cells that hold 95% of the metric (all cells when it is zero everywhere), so
/// a map frames where the value is rather than every outlying cell.
fn focus(hexes: &[(Vec<(f64, f64)>, f64, bool)]) -> (f64, f64, f64, f64) {
    let total: f64 = hexes.iter().map(|h| h.1.max(0.0)).sum();
    let mut order: Vec<&(Vec<(f64, f64)>, f64, bool)> = hexes.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut acc = 0.0;
    let mut bounds = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (ring, v, _) in order {
        if total > 0.0 && acc >= 0.95 * total {
            break;
        }
        acc += v.max(0.0);
        for &(x, y) in ring {
            bounds = (bounds.0.min(x), bounds.1.min(y), bounds.2.max(x), bounds.3.max(y));
        }
    }
    bounds
}

fn overlay_bounds(overlay: &[(SiteGeometry, f64, String)]) -> (f64, f64, f64, f64) {
    let mut b = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (g, radius, _) in overlay {
        let pts: Vec<(f64, f64)> = match g {
            SiteGeometry::Point(p) => vec![(p.x(), p.y())],
            SiteGeometry::Line(l) => l.coords().map(|c| (c.x, c.y)).collect(),
        };
        for (x, y) in pts {
            let dy = radius / 111_320.0;
            let dx = dy / y.to_radians().cos().max(0.05);
            b = (b.0.min(x - dx), b.1.min(y - dy), b.2.max(x + dx), b.3.max(y + dy));
        }
    }
    b
}

fn polygon_span(ring: &[(f64, f64)]) -> f64 {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for &(x, _) in ring {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    hi - lo
}

/// Maps (lng, lat) into the map panel with equal metres per pixel on both axes.
struct Projection {
    origin: (f64, f64),
    scale: f64,
    coslat: f64,
    offset: (i32, i32),
    height: i32,
}

impl Projection {
    fn new(bounds: (f64, f64, f64, f64), panel: (i32, i32, i32, i32)) -> Projection {
        let (x0, y0, x1, y1) = bounds;
        let coslat = ((y0 + y1) / 2.0).to_radians().cos().max(0.05);
        let (pw, ph) = (f64::from(panel.2 - panel.0), f64::from(panel.3 - panel.1));
        let scale = (pw / ((x1 - x0) * coslat)).min(ph / (y1 - y0));
        let used = (((x1 - x0) * coslat * scale) as i32, ((y1 - y0) * scale) as i32);
        let offset = (panel.0 + (panel.2 - panel.0 - used.0) / 2, panel.1 + (panel.3 - panel.1 - used.1) / 2);
        Projection { origin: (x0, y0), scale, coslat, offset, height: used.1 }
    }

    fn px(&self, (lng, lat): (f64, f64)) -> (i32, i32) {
        let x = (lng - self.origin.0) * self.coslat * self.scale;
        let y = (lat - self.origin.1) * self.scale;
        (self.offset.0 + x.round() as i32, self.offset.1 + self.height - y.round() as i32)
    }

    /// Metres per pixel (1 degree of latitude ~ 111.32 km).
    fn metres_per_px(&self) -> f64 {
        111_320.0 / self.scale
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &MapSpec, layer: &Layer) -> Result<()> {
    let (w, h) = (spec.size.0 as i32, spec.size.1 as i32);
    root.fill(&WHITE).map_err(draw_err)?;
    let legend_w = 210;
    let panel = (20, 80, w - legend_w - 20, h - 50);
    let proj = Projection::new(layer.bounds, panel);
    let inside = |p: (i32, i32)| p.0 >= panel.0 - 2 && p.0 <= panel.2 + 2 && p.1 >= panel.1 - 2 && p.1 <= panel.3 + 2;

    // Districts below the cells, clipped to the panel by skipping outside points.
    let districts = spec.districts.map(|d| d.0.as_slice()).unwrap_or(&[]);
    for d in districts {
        for poly in &d.shape.0 {
            let pts: Vec<(i32, i32)> = poly.exterior().coords().map(|c| proj.px((c.x, c.y))).collect();
            if pts.iter().any(|p| inside(*p)) {
                let clipped: Vec<(i32, i32)> =
                    pts.iter().map(|&(x, y)| (x.clamp(panel.0, panel.2), y.clamp(panel.1, panel.3))).collect();
                root.draw(&Polygon::new(clipped.clone(), RGBColor(243, 243, 240).filled())).map_err(draw_err)?;
                root.draw(&PathElement::new(clipped, RGBColor(150, 150, 150).stroke_width(1))).map_err(draw_err)?;
            }
        }
    }

    for (ring, v, merged) in &layer.hexes {
        let pts: Vec<(i32, i32)> = ring.iter().map(|p| proj.px(*p)).collect();
        if pts.is_empty() || !pts.iter().all(|p| inside(*p)) {
            continue;
        }
        let color = if v.is_nan() {
            WITHHELD
        } else if *v > 0.0 {
            RAMP[class_of(*v, &layer.breaks)]
        } else {
            ZERO
        };
        let alpha = if *merged { 0.3 } else { 0.9 };
        root.draw(&Polygon::new(pts.clone(), color.mix(alpha).filled())).map_err(draw_err)?;
        let mut outline = pts;
        outline.push(outline[0]);
        root.draw(&PathElement::new(outline, RGBColor(120, 60, 40).mix(0.35).stroke_width(1))).map_err(draw_err)?;
    }

    for d in districts {
        let p = proj.px(d.label);
        if inside(p) && p.1 > panel.1 + 10 {
            root.draw(&Text::new(d.name.clone(), (p.0 - 18, p.1 - 8), text_style(15, RGBColor(70, 70, 70))))
                .map_err(draw_err)?;
        }
    }

    // Sites over the cells: reach circles around points, routes as thick lines, rank labels.
    let site_color = RGBColor(20, 60, 160);
    for (geometry, radius, label) in &spec.overlay {
        let at = match geometry {
            SiteGeometry::Point(p) => {
                let c = proj.px((p.x(), p.y()));
                let r = ((radius / proj.metres_per_px()).round() as i32).max(4);
                if inside(c) {
                    root.draw(&Circle::new(c, r, site_color.mix(0.25).filled())).map_err(draw_err)?;
                    root.draw(&Circle::new(c, r, site_color.stroke_width(2))).map_err(draw_err)?;
                }
                c
            }
            SiteGeometry::Line(l) => {
                let pts: Vec<(i32, i32)> = l.coords().map(|c| proj.px((c.x, c.y))).filter(|p| inside(*p)).collect();
                root.draw(&PathElement::new(pts.clone(), site_color.mix(0.8).stroke_width(3))).map_err(draw_err)?;
                pts.first().copied().unwrap_or((-100, -100))
            }
        };
        if inside(at) {
            root.draw(&Text::new(label.clone(), (at.0 + 5, at.1 - 16), text_style(13, site_color)))
                .map_err(draw_err)?;
        }
    }

    // Title and subtitle.
    root.draw(&Text::new(spec.title.clone(), (20, 16), text_style(24, BLACK))).map_err(draw_err)?;
    root.draw(&Text::new(spec.subtitle.clone(), (20, 50), text_style(15, RGBColor(90, 90, 90)))).map_err(draw_err)?;

    let any_merged = layer.hexes.iter().any(|h| h.2);
    let any_withheld = layer.hexes.iter().any(|h| h.1.is_nan());
    draw_legend(root, spec.metric, &layer.breaks, (any_merged, any_withheld), (w - legend_w, 90))?;
    draw_scale_bar(root, &proj, (30, h - 30))?;
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    metric: &str,
    breaks: &[f64],
    (any_merged, any_withheld): (bool, bool),
    at: (i32, i32),
) -> Result<()> {
    let (x, mut y) = at;
    root.draw(&Text::new(metric.replace('_', " "), (x, y), text_style(16, BLACK))).map_err(draw_err)?;
    y += 28;
    let mut lower = 0.0;
    for (i, upper) in breaks.iter().enumerate() {
        let color = RAMP[class_of(*upper, breaks).min(RAMP.len() - 1)];
        root.draw(&Rectangle::new([(x, y), (x + 26, y + 18)], color.filled())).map_err(draw_err)?;
        let label = if i == 0 {
            format!("≤ {}", short_number(*upper))
        } else {
            format!("{} – {}", short_number(lower), short_number(*upper))
        };
        root.draw(&Text::new(label, (x + 34, y + 2), text_style(14, BLACK))).map_err(draw_err)?;
        lower = *upper;
        y += 24;
    }
    root.draw(&Rectangle::new([(x, y), (x + 26, y + 18)], ZERO.filled())).map_err(draw_err)?;
    root.draw(&Text::new("0", (x + 34, y + 2), text_style(14, BLACK))).map_err(draw_err)?;
    if any_withheld {
        y += 24;
        root.draw(&Rectangle::new([(x, y), (x + 26, y + 18)], WITHHELD.filled())).map_err(draw_err)?;
        root.draw(&Text::new("withheld (< k people)", (x + 34, y + 2), text_style(14, BLACK))).map_err(draw_err)?;
    }
    y += 30;
    root.draw(&Text::new("quantile classes", (x, y), text_style(12, RGBColor(110, 110, 110)))).map_err(draw_err)?;
    if any_merged {
        let note = ["faded: small cells merged", "into a coarser parent", "(privacy floor k)"];
        for (i, line) in note.iter().enumerate() {
            let pos = (x, y + 22 + 16 * i as i32);
            root.draw(&Text::new(*line, pos, text_style(12, RGBColor(110, 110, 110)))).map_err(draw_err)?;
        }
    }
    Ok(())
}

fn draw_scale_bar<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, proj: &Projection, at: (i32, i32)) -> Result<()> {
    let target_px = 140.0;
    let metres = proj.metres_per_px() * target_px;
    let nice = [1.0, 2.0, 5.0]
        .iter()
        .flat_map(|m| (0..7).map(move |e| m * 10f64.powi(e)))
        .filter(|m| *m <= metres)
        .fold(1.0, f64::max);
    let px = (nice / proj.metres_per_px()).round() as i32;
    let (x, y) = at;
    let black = BLACK.stroke_width(2);
    root.draw(&PathElement::new(vec![(x, y), (x + px, y)], black)).map_err(draw_err)?;
    root.draw(&PathElement::new(vec![(x, y - 6), (x, y + 1)], black)).map_err(draw_err)?;
    root.draw(&PathElement::new(vec![(x + px, y - 6), (x + px, y + 1)], black)).map_err(draw_err)?;
    let label = if nice >= 1000.0 { format!("{} km", nice / 1000.0) } else { format!("{nice} m") };
    root.draw(&Text::new(label, (x + px + 8, y - 9), text_style(14, BLACK))).map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a figure the privacy floor withheld (null) was drawn in the 0 colour and
    /// read as 0 in the legend; it now has its own colour and legend line.
    #[test]
    fn regression_a_withheld_value_is_not_drawn_as_zero() {
        let map = |buyers: [Option<i64>; 2]| {
            let cells = df!("hex_id" => ["8840a40827fffff", "8840a40865fffff"], "buyers" => buyers).unwrap();
            let spec = MapSpec {
                cells: &cells,
                metric: "buyers",
                title: "buyers".into(),
                subtitle: String::new(),
                districts: None,
                size: (640, 480),
                overlay: Vec::new(),
            };
            let withheld = Layer::new(&spec).unwrap().hexes.iter().filter(|h| h.1.is_nan()).count();
            (withheld, String::from_utf8(render_map(&spec, ImageFormat::Svg).unwrap()).unwrap())
        };
        let (withheld, svg) = map([None, Some(0)]);
        assert_eq!(withheld, 1);
        assert!(svg.contains("withheld"), "the legend names the withheld colour");
        let (withheld, svg) = map([Some(0), Some(0)]);
        assert_eq!(withheld, 0);
        assert!(!svg.contains("withheld"));
    }
}
