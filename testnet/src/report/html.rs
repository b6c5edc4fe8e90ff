//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external
//! resource) with the figures, the pass criteria and the plots.

use std::fmt::Write;

use super::svg::{self, Layer, Line, PALETTE, esc};
use super::table;
use crate::summary::Summary;
use crate::world::trust::Mode;

const MODE_COLORS: [&str; 7] = [
    "#2ca02c", "#98df8a", "#ffbb78", "#aec7e8", "#c7c7c7", "#d62728", "#9edae5",
];

/// Renders the page.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Slope testnet: {}</title>\
         <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         .pass{{color:#2a2}}.fail{{color:#c22;font-weight:bold}}.na{{color:#888}}\
         pre{{background:#f6f6f6;padding:8px;overflow:auto}}figure{{margin:1.5em 0}}</style></head><body>",
        esc(s.scenario.name())
    );
    let _ = write!(
        out,
        "<h1>Slope testnet — {}</h1><p>{}</p>",
        esc(s.scenario.name()),
        esc(s.scenario.describe())
    );
    let _ = write!(
        out,
        "<p>Seed {}, version {}, {} devices, {} gateways, {} h simulated, {} suite. \
         Reproduce with <code>slope-testnet run --scenario {} --suite {}{} --devices {} --gateways {} --seed {} --duration {}h</code>; \
         the trace digest must be <code>{}</code>.</p>",
        s.seed,
        s.version,
        s.devices,
        s.gateways,
        s.hours,
        s.suite,
        s.scenario.name(),
        s.suite,
        s.chain_len
            .map_or(String::new(), |n| format!(" --chain-len {n}")),
        s.devices,
        s.gateways,
        s.seed,
        s.hours,
        s.trace_digest
    );
    out.push_str(
        "<h2>Pass criteria</h2><table><tr><th></th><th>criterion</th><th>measured</th></tr>",
    );
    for c in &s.criteria {
        let (class, mark) = mark(c.held);
        let _ = write!(
            out,
            "<tr><td class=\"{class}\">{mark}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.detail)
        );
    }
    out.push_str("</table>");
    if let Some(x) = &s.suites {
        out.push_str(
            "<h2>Airtime and transmit energy per device per day</h2><table><tr><th>suite</th>\
             <th>how</th><th>frames</th><th>bytes per frame</th><th>airtime</th><th>energy</th></tr>",
        );
        for (name, f, suite) in [
            (
                "ed25519 (suite 1)",
                &x.ed25519,
                crate::params::Suite::Ed25519,
            ),
            (
                "compact (suite 2)",
                &x.compact,
                crate::params::Suite::Compact,
            ),
        ] {
            let how = if x.measured == suite {
                "measured in this run"
            } else {
                "computed for the same fleet"
            };
            let _ = write!(
                out,
                "<tr><td>{name}</td><td>{how}</td><td>{:.1}</td><td>{:.0} B</td><td>{:.2} s</td><td>{:.2} J</td></tr>",
                f.frames, f.bytes_per_frame, f.airtime_s, f.energy_j
            );
        }
        out.push_str(
            "</table><p>Transmit energy only (airtime × 3.3 V × 44 mA); what the computed \
             figure models is in <code>docs/testnet.md</code>.</p>",
        );
    }
    out.push_str("<h2>Figures</h2><pre>");
    out.push_str(&esc(&table::render(s)));
    out.push_str("</pre>");
    plots(&mut out, s);
    out.push_str(
        "<h2>How to read this report</h2><p>See <code>docs/testnet.md</code>: what each \
         figure measures, the model of radio and gossip behind it, and what it does not \
         model. Wall-clock figures (events per second, memory) depend on the machine; \
         everything else is a function of the parameters and the seed.</p></body></html>",
    );
    out
}

fn plots(out: &mut String, s: &Summary) {
    let hours = |ms: u64| ms as f64 / 3_600_000.0;
    let series: Vec<Line> = s
        .series
        .iter()
        .enumerate()
        .map(|(k, se)| Line {
            label: &se.label,
            color: if se.attacked {
                PALETTE[3 + k % 3]
            } else {
                PALETTE[k % 3]
            },
            points: se
                .points
                .iter()
                .map(|&(t, h, _)| (hours(t), f64::from(h)))
                .collect(),
            dashed: se.attacked,
        })
        .collect();
    figure(
        out,
        &svg::lines(
            "Trust slope: accepted head position at the home gateway",
            "hours",
            "slope position",
            &series,
        ),
        "Solid: honest devices; dashed: attacked identities. A flat stretch is dormancy, a \
         power cut or lost frames; the slope resumes where it stopped, never forks.",
    );
    let quarantined: Vec<String> = s
        .series
        .iter()
        .filter_map(|se| {
            let at = se.points.iter().find(|p| p.2 == Mode::Quarantined)?;
            Some(format!("{} at {:.1} h", se.label, hours(at.0)))
        })
        .collect();
    if !quarantined.is_empty() {
        let _ = write!(out, "<p>Quarantined: {}.</p>", esc(&quarantined.join(", ")));
    }
    let xs: Vec<f64> = s.samples.iter().map(|x| hours(x.t_ms)).collect();
    let mut layers: Vec<(&str, &str, Vec<f64>)> = Mode::ALL
        .iter()
        .enumerate()
        .map(|(k, m)| {
            (
                m.name(),
                MODE_COLORS[k],
                s.samples
                    .iter()
                    .map(|x| x.modes[k] as f64)
                    .collect::<Vec<f64>>(),
            )
        })
        .filter(|l| l.2.iter().any(|v| *v > 0.0))
        .collect();
    layers.push((
        "untracked",
        "#eeeeee",
        s.samples.iter().map(|x| x.untracked as f64).collect(),
    ));
    figure(
        out,
        &svg::stacked(
            "Admissions by mode at each device's home gateway",
            "hours",
            "devices",
            &xs,
            &layers,
        ),
        if s.trust_engine {
            "Modes from the trust engine's grants."
        } else {
            "No trust engine in this run: devices are verified and tracked (unjudged) or \
             quarantined on a divergence proof; graduated admission is not shown."
        },
    );
    if !s.latencies_s.0.is_empty() {
        figure(
            out,
            &svg::cdf(
                "CDF of detection latency",
                "seconds after the clone's first new frame",
                &[
                    ("first gateway", PALETTE[0], s.latencies_s.0.clone()),
                    ("every gateway", PALETTE[3], s.latencies_s.1.clone()),
                ],
            ),
            "From the clone's first new frame on the air to a gateway holding a verified \
             divergence proof (first), and to the last gateway quarantining (every).",
        );
    }
    let m = &s.map;
    let gateways = [Layer {
        label: "gateway",
        color: "#ff7f0e",
        radius: 4.0,
        points: &m.gateways,
        square: true,
    }];
    figure(
        out,
        &map("Map", m, m.rogue, &gateways),
        "Gateways on a jittered grid; devices uniform over the area; the attack marked.",
    );
}

/// The map: devices (honest, attacked), attacker radios, the given gateway layers and
/// the rogue gateway, if any.
pub(crate) fn map(
    title: &str,
    m: &crate::summary::Map,
    rogue: Option<usize>,
    gateways: &[Layer],
) -> String {
    let rogue: Vec<(f64, f64)> = rogue
        .and_then(|r| m.gateways.get(r).copied())
        .into_iter()
        .collect();
    let mut layers = vec![
        Layer {
            label: "honest device",
            color: "#9ecae1",
            radius: 1.5,
            points: &m.honest,
            square: false,
        },
        Layer {
            label: "attacked device",
            color: "#d62728",
            radius: 3.0,
            points: &m.victims,
            square: false,
        },
        Layer {
            label: "attacker radio",
            color: "#000000",
            radius: 3.0,
            points: &m.attackers,
            square: false,
        },
    ];
    layers.extend(gateways.iter().map(|l| Layer { ..*l }));
    layers.push(Layer {
        label: "rogue gateway",
        color: "#7b2d8e",
        radius: 6.0,
        points: &rogue,
        square: true,
    });
    svg::map(title, m.width_m, m.height_m, &layers)
}

/// One plot with its caption.
pub(crate) fn figure(out: &mut String, svg: &str, caption: &str) {
    let _ = write!(
        out,
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        esc(caption)
    );
}

/// The CSS class and the word for a criterion that held, failed or was not evaluated.
pub(crate) fn mark(held: Option<bool>) -> (&'static str, &'static str) {
    match held {
        Some(true) => ("pass", "PASS"),
        Some(false) => ("fail", "FAIL"),
        None => ("na", "not evaluated"),
    }
}
