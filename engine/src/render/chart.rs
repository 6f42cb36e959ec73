//! Charts: grouped bars (ROI by channel, model comparison, funnel) and lines (monthly trend).
//! Labels use the embedded font, so Chinese channel and campaign names render.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_err, render_image, short_number, text_style, Drawable, ImageFormat};
use crate::error::Result;

/// Tableau 10: distinguishable series colours.
const SERIES: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// One named series of values, one per category (`None` = not defined, e.g. ROI without cost).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A chart: categories on x, one or more series.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    pub kind: ChartKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    Bars,
    Lines,
}

/// Renders a chart as PNG or SVG bytes.
pub fn render_chart(chart: &Chart, format: ImageFormat) -> Result<Vec<u8>> {
    let width = (260 + 70 * chart.categories.len() as u32).clamp(900, 1800);
    render_image(chart, format, (width, 700))
}

impl Drawable for Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(draw_err)?;
        let text = text_style;
        root.draw(&Text::new(self.title.clone(), (20, 14), text(24, BLACK))).map_err(draw_err)?;
        root.draw(&Text::new(self.subtitle.clone(), (20, 46), text(14, RGBColor(90, 90, 90)))).map_err(draw_err)?;
        let area = root.margin(75, 10, 10, 10);
        let values = self.series.iter().flat_map(|s| s.values.iter().flatten().copied());
        let (lo, hi) = values.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.08).max(1e-9);
        let (y0, y1) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
        let n = self.categories.len().max(1);
        // Many or long category names are written vertically.
        let longest = self.categories.iter().map(|c| c.chars().count()).max().unwrap_or(0);
        let vertical = n > 10 || longest * n > 110;
        let label_area = if vertical { (longest as u32 * 8 + 20).clamp(70, 260) } else { 50 };
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(label_area)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..n as f64, y0..y1)
            .map_err(draw_err)?;
        let x_style = if vertical { text(13, BLACK).transform(FontTransform::Rotate90) } else { text(14, BLACK) };
        let cats = self.categories.clone();
        let x_fmt = move |x: &f64| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                cats.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(if vertical { 0 } else { n * 2 + 1 })
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|y| short_number(*y))
            .y_desc(self.y_label.as_str())
            .y_label_style(text(14, BLACK))
            .x_label_style(x_style.clone())
            .axis_desc_style(text(15, BLACK))
            .draw()
            .map_err(draw_err)?;
        if vertical {
            // Written top to bottom from just under each category's tick.
            let style = x_style.clone();
            for (i, c) in self.categories.iter().enumerate() {
                let (px, py) = chart.backend_coord(&(i as f64 + 0.5, y0));
                root.draw(&Text::new(c.clone(), (px + 6, py + 8), style.clone())).map_err(draw_err)?;
            }
        }
        let k = self.series.len().max(1) as f64;
        for (si, s) in self.series.iter().enumerate() {
            let color = SERIES[si % SERIES.len()];
            match self.kind {
                ChartKind::Bars => {
                    let w = 0.8 / k;
                    let bars = s.values.iter().enumerate().filter_map(|(ci, v)| {
                        let x0 = ci as f64 + 0.1 + w * si as f64;
                        v.map(|v| Rectangle::new([(x0, 0.0), (x0 + w * 0.92, v)], color.filled()))
                    });
                    chart
                        .draw_series(bars)
                        .map_err(draw_err)?
                        .label(s.name.clone())
                        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
                    let missing = s.values.iter().enumerate().filter(|(_, v)| v.is_none()).map(|(ci, _)| {
                        Text::new("n/a", (ci as f64 + 0.1 + w * si as f64, 0.0), text(11, RGBColor(120, 120, 120)))
                    });
                    chart.draw_series(missing).map_err(draw_err)?;
                }
                ChartKind::Lines => {
                    let pts: Vec<(f64, f64)> =
                        s.values.iter().enumerate().filter_map(|(ci, v)| v.map(|v| (ci as f64 + 0.5, v))).collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), color.stroke_width(3)))
                        .map_err(draw_err)?
                        .label(s.name.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(3)));
                    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(draw_err)?;
                }
            }
        }
        if self.series.len() > 1 {
            chart
                .configure_series_labels()
                .position(if self.kind == ChartKind::Lines {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(text(14, BLACK))
                .draw()
                .map_err(draw_err)?;
        }
        Ok(())
    }
}
