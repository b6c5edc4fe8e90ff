//! The outputs of a run: the terminal table ([`table`]), `results.json` and the
//! self-contained `report.html` ([`html`], with hand-written SVG plots from [`svg`]).

pub mod html;
pub mod svg;
pub mod table;

use std::path::Path;

use crate::error::Error;
use crate::summary::Summary;

/// Writes `results.json` and `report.html` into `dir` (created if needed).
pub fn write(dir: &Path, summary: &Summary) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(summary)?;
    std::fs::write(&json, text).map_err(io(&json))?;
    let html = dir.join("report.html");
    std::fs::write(&html, html::render(summary)).map_err(io(&html))?;
    Ok(())
}
