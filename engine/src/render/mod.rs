//! Rendering with plotters: hex maps (PNG and SVG). Every label uses the embedded font, which
//! covers Latin and GB 2312 Chinese, so district and campaign names render on any machine.

pub mod chart;
pub mod map;

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// Latin + GB 2312 subset of WenQuanYi Micro Hei (Apache-2.0, see `data/fonts/LICENSE.md`).
pub const FONT: &[u8] = include_bytes!("../../../data/fonts/custmap-sans.ttf");

/// The font family every text style in custmap uses.
pub const FAMILY: &str = "sans-serif";

static FONT_ONCE: Once = Once::new();

/// Registers the embedded font with plotters (idempotent).
pub fn ensure_font() {
    FONT_ONCE.call_once(|| {
        // A failure would be a defective embedded asset; rendering then shows no text, which
        // the render tests catch.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, FONT);
    });
}

/// Image format of a rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

/// Text in the embedded font.
pub(crate) fn text_style(size: u32, color: RGBColor) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&color)
}

/// Something that draws itself on any plotters backend.
pub trait Drawable {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<()>;
}

/// Renders `item` as PNG or SVG bytes of `size` pixels.
pub fn render_image<D: Drawable>(item: &D, format: ImageFormat, size: (u32, u32)) -> Result<Vec<u8>> {
    ensure_font();
    let (w, h) = size;
    match format {
        ImageFormat::Png => {
            let mut rgb = vec![255u8; (w * h * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                item.draw(&root)?;
                root.present().map_err(draw_err)?;
            }
            encode_png(rgb, (w, h))
        }
        ImageFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                item.draw(&root)?;
                root.present().map_err(draw_err)?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// Converts a plotters drawing error into an engine error.
pub(crate) fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Internal(format!("drawing failed: {e}"))
}

/// Encodes an RGB buffer as PNG.
pub(crate) fn encode_png(rgb: Vec<u8>, size: (u32, u32)) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(size.0, size.1, rgb)
        .ok_or_else(|| Error::Internal("bitmap buffer has the wrong size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageOutputFormat::Png)
        .map_err(|e| Error::Internal(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}

/// A sequential colour ramp (light yellow to dark red, ColorBrewer YlOrRd, 7 classes).
pub const RAMP: [RGBColor; 7] = [
    RGBColor(255, 255, 178),
    RGBColor(254, 217, 118),
    RGBColor(254, 178, 76),
    RGBColor(253, 141, 60),
    RGBColor(252, 78, 42),
    RGBColor(227, 26, 28),
    RGBColor(177, 0, 38),
];

/// Class breaks: upper bounds of `classes` quantile classes over the positive values.
#[must_use]
pub fn quantile_breaks(values: &[f64], classes: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    if v.is_empty() || classes == 0 {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let mut breaks: Vec<f64> = (1..=classes).map(|i| v[(i * v.len()).div_ceil(classes) - 1]).collect();
    breaks.dedup_by(|a, b| a == b);
    breaks
}

/// The class of `x` given `breaks` (upper bounds).
#[must_use]
pub fn class_of(x: f64, breaks: &[f64]) -> usize {
    breaks.iter().position(|b| x <= *b).unwrap_or(breaks.len().saturating_sub(1))
}

/// A short human number: 1234567 -> "1.23M", 0.123 -> "0.123".
#[must_use]
pub fn short_number(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}
