//! Hand-written SVG plots (no dependency, self-contained): line charts, stacked areas,
//! CDFs and the map. Every function returns one `<svg>` element.

use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 300.0;
const L: f64 = 60.0;
const R: f64 = 150.0;
const T: f64 = 30.0;
const B: f64 = 40.0;

/// Colours for series, in order.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One plotted series.
pub struct Line<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// Escapes text for XML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        L + (v - self.x0) / (self.x1 - self.x0).max(1e-12) * (W - L - R)
    }
    fn y(&self, v: f64) -> f64 {
        H - B - (v - self.y0) / (self.y1 - self.y0).max(1e-12) * (H - T - B)
    }
}

fn open(out: &mut String, title: &str, f: &Frame, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        L,
        esc(title)
    );
    let _ = write!(
        out,
        r##"<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        W - L - R,
        H - T - B
    );
    for k in 0..=4 {
        let fx = f.x0 + (f.x1 - f.x0) * f64::from(k) / 4.0;
        let fy = f.y0 + (f.y1 - f.y0) * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            f.x(fx),
            H - B + 14.0,
            tick(fx)
        );
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            L - 4.0,
            f.y(fy) + 4.0,
            tick(fy)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        L + (W - L - R) / 2.0,
        H - 6.0,
        esc(x_label)
    );
    let _ = write!(
        out,
        r#"<text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(y_label)
    );
}

fn tick(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn legend(out: &mut String, items: &[(&str, &str)]) {
    for (k, (label, color)) in items.iter().enumerate() {
        let y = T + 10.0 + k as f64 * 16.0;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            W - R + 10.0,
            y - 8.0,
            W - R + 24.0,
            y + 1.0,
            esc(label)
        );
    }
}

/// A line chart of several series.
pub fn lines(title: &str, x_label: &str, y_label: &str, series: &[Line]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x1, mut y1) = (1e-9f64, 1e-9f64);
    for &(x, y) in all {
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let f = Frame {
        x0: 0.0,
        x1,
        y0: 0.0,
        y1: y1 * 1.05,
    };
    let mut out = String::new();
    open(&mut out, title, &f, x_label, y_label);
    for s in series {
        let d: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", f.x(x), f.y(y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{dash} points="{}"/>"#,
            s.color,
            d.join(" ")
        );
    }
    let items: Vec<(&str, &str)> = series.iter().map(|s| (s.label, s.color)).collect();
    legend(&mut out, &items);
    out.push_str("</svg>");
    out
}

/// A stacked area chart: `layers[k].2[i]` is layer k's value at `xs[i]`.
pub fn stacked(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[f64],
    layers: &[(&str, &str, Vec<f64>)],
) -> String {
    let totals: Vec<f64> = (0..xs.len())
        .map(|i| {
            layers
                .iter()
                .map(|l| l.2.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let f = Frame {
        x0: 0.0,
        x1: xs.iter().copied().fold(1e-9, f64::max),
        y0: 0.0,
        y1: totals.iter().copied().fold(1e-9, f64::max) * 1.05,
    };
    let mut out = String::new();
    open(&mut out, title, &f, x_label, y_label);
    let mut base = vec![0.0; xs.len()];
    for (_, color, values) in layers {
        let top: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, b)| b + values.get(i).copied().unwrap_or(0.0))
            .collect();
        let mut pts: Vec<String> = xs
            .iter()
            .zip(&top)
            .map(|(&x, &y)| format!("{:.1},{:.1}", f.x(x), f.y(y)))
            .collect();
        pts.extend(
            xs.iter()
                .zip(&base)
                .rev()
                .map(|(&x, &y)| format!("{:.1},{:.1}", f.x(x), f.y(y))),
        );
        let _ = write!(
            out,
            r#"<polygon fill="{color}" fill-opacity="0.75" stroke="none" points="{}"/>"#,
            pts.join(" ")
        );
        base = top;
    }
    let items: Vec<(&str, &str)> = layers.iter().map(|l| (l.0, l.1)).collect();
    legend(&mut out, &items);
    out.push_str("</svg>");
    out
}

/// The empirical CDF of `values`.
pub fn cdf(title: &str, x_label: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let lines_: Vec<Line> = series
        .iter()
        .map(|(label, color, v)| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            let n = v.len().max(1) as f64;
            let mut points = vec![(0.0, 0.0)];
            for (k, x) in v.iter().enumerate() {
                points.push((*x, k as f64 / n));
                points.push((*x, (k + 1) as f64 / n));
            }
            Line {
                label,
                color,
                points,
                dashed: false,
            }
        })
        .collect();
    lines(title, x_label, "fraction", &lines_)
}

/// Points on the map: (x, y) metres, colour, radius, label for the legend.
pub struct Layer<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub radius: f64,
    pub points: &'a [(f64, f64)],
    pub square: bool,
}

/// A map of the area.
pub fn map(title: &str, width_m: f64, height_m: f64, layers: &[Layer]) -> String {
    let f = Frame {
        x0: 0.0,
        x1: width_m.max(1.0) / 1000.0,
        y0: 0.0,
        y1: height_m.max(1.0) / 1000.0,
    };
    let mut out = String::new();
    open(&mut out, title, &f, "east (km)", "north (km)");
    for l in layers {
        for &(x, y) in l.points {
            let (cx, cy) = (f.x(x / 1000.0), f.y(y / 1000.0));
            if l.square {
                let r = l.radius;
                let _ = write!(
                    out,
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" stroke="#000" stroke-width="0.5"/>"##,
                    cx - r,
                    cy - r,
                    2.0 * r,
                    2.0 * r,
                    l.color
                );
            } else {
                let _ = write!(
                    out,
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{}" fill="{}"/>"#,
                    l.radius, l.color
                );
            }
        }
    }
    let items: Vec<(&str, &str)> = layers.iter().map(|l| (l.label, l.color)).collect();
    legend(&mut out, &items);
    out.push_str("</svg>");
    out
}
