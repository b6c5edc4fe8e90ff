//! `report.html` of a live run: one self-contained page (inline CSS and SVG, the
//! simulated layer's plot helpers in [`crate::report::svg`]) with each seed's figures
//! and criteria, the detection-latency CDFs pooled over the seeds, the admissions by
//! mode and the map of the first seed.

use std::fmt::Write;

use super::report::Report;
use crate::report::html::{figure, map};
use crate::report::svg::{self, Layer, PALETTE, esc};

/// Renders the page.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let name = r.scenario.name();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Slope testnet (live): {}</title>\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         td.n{{text-align:right}}.pass{{color:#2a2}}.fail{{color:#c22;font-weight:bold}}.na{{color:#888}}\
         pre{{background:#f6f6f6;padding:8px;overflow:auto}}figure{{margin:1.5em 0}}</style></head><body>",
        esc(name)
    );
    let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
    let _ = write!(
        out,
        "<h1>Slope testnet — {} (live)</h1><p>{}</p><p>{} real <code>slope-mesh</code> gateways \
         (libp2p over loopback TCP, redb, one manual clock) fed by {} simulated devices for {:.1} h, \
         attack size {}, seeds {}; version {}. Result: <b class=\"{}\">{}</b>. Reproduce with \
         <code>slope-testnet run --live --scenario {} --gateways {} --devices {} --duration {}m \
         --attack-size {} --seed {} --seeds {}</code> (not bit-for-bit: real sockets order \
         the gossip; each seed's criteria are checked on their own).</p>",
        esc(name),
        esc(r.scenario.describe()),
        r.gateways,
        r.devices,
        r.hours,
        r.attack_size,
        esc(&seeds.join(", ")),
        r.version,
        if r.passed { "pass" } else { "fail" },
        if r.passed {
            "every seed passed"
        } else {
            "a seed FAILED"
        },
        esc(name),
        r.gateways,
        r.devices,
        (r.hours * 60.0).round(),
        r.attack_size,
        r.seeds.first().copied().unwrap_or(1),
        r.seeds.len()
    );
    per_seed(&mut out, r);
    out.push_str("<h2>Figures over the seeds</h2><pre>");
    out.push_str(&esc(&r.render()));
    out.push_str("</pre>");
    plots(&mut out, r);
    out.push_str(
        "<h2>How to read this report</h2><p>See <code>docs/testnet.md</code>, \"Live layer\": \
         virtual latencies are quantised by the replay window; wall figures include the \
         harness's settling waits and depend on the machine and its load.</p></body></html>",
    );
    out
}

/// One row per seed, then each seed's criteria.
fn per_seed(out: &mut String, r: &Report) {
    out.push_str(
        "<h2>Per seed</h2><table><tr><th>seed</th><th>result</th><th>clones heard</th>\
         <th>detected everywhere</th><th>false quarantines</th><th>latency p50, virtual s</th>\
         <th>every gateway max, virtual s</th><th>every gateway max, wall s</th>\
         <th>re-convergence, virtual / wall s</th><th>gossip out per attestation, B</th>\
         <th>wall s</th><th>CPU s</th><th>peak RSS MiB</th></tr>",
    );
    let opt = |v: Option<f64>, prec: usize| v.map_or("–".into(), |x| format!("{x:.prec$}"));
    for s in &r.runs {
        let reconv = s.partition.as_ref().map_or("–".into(), |p| {
            format!(
                "{} / {}",
                opt(p.reconvergence_s, 1),
                opt(p.reconvergence_wall_s, 2)
            )
        });
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{:.0}</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            s.seed,
            if s.passed { "pass" } else { "fail" },
            if s.passed { "PASS" } else { "FAIL" },
            s.attacked,
            s.detected_everywhere,
            s.false_quarantines,
            opt(s.detection_latency.map(|q| q.p50_s), 0),
            opt(s.everywhere_latency.map(|q| q.max_s), 0),
            opt(s.everywhere_latency_wall.map(|q| q.max_s), 2),
            reconv,
            s.gossip_bytes_out_per_attestation,
            s.perf.wall_s,
            opt(s.perf.cpu_s, 0),
            opt(s.perf.peak_rss_mib, 0)
        );
    }
    out.push_str("</table>");
    out.push_str("<h2>Pass criteria</h2><table><tr><th>seed</th><th></th><th>criterion</th><th>measured</th></tr>");
    for s in &r.runs {
        for c in &s.criteria {
            let (class, mark) = crate::report::html::mark(c.held);
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"{class}\">{mark}</td><td>{}</td><td>{}</td></tr>",
                s.seed,
                esc(&c.name),
                esc(&c.detail)
            );
        }
    }
    out.push_str("</table>");
    // Admissions by mode, summed over the gateways of each seed.
    let modes: Vec<&str> = r
        .runs
        .iter()
        .flat_map(|s| s.admissions.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !modes.is_empty() {
        out.push_str("<h2>Decisions by admission mode (all gateways)</h2><table><tr><th>seed</th>");
        for m in &modes {
            let _ = write!(out, "<th>{}</th>", esc(m));
        }
        out.push_str("</tr>");
        for s in &r.runs {
            let _ = write!(out, "<tr><td>{}</td>", s.seed);
            for m in &modes {
                let _ = write!(
                    out,
                    "<td class=\"n\">{}</td>",
                    s.admissions.get(m).copied().unwrap_or(0)
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
}

fn plots(out: &mut String, r: &Report) {
    let pool = |f: fn(&super::readback::Latencies) -> &Vec<f64>| -> Vec<f64> {
        r.runs
            .iter()
            .flat_map(|s| f(&s.latencies).clone())
            .collect()
    };
    let (first, every, wall) = (
        pool(|l| &l.first_s),
        pool(|l| &l.every_s),
        pool(|l| &l.every_wall_s),
    );
    if !first.is_empty() {
        figure(
            out,
            &svg::cdf(
                "CDF of detection latency, virtual time, all seeds",
                "seconds after the clone's first new frame",
                &[
                    ("first gateway", PALETTE[0], first),
                    ("every gateway", PALETTE[3], every),
                ],
            ),
            "From the clone's first new frame at a gateway to the first gateway's and the last \
             gateway's quarantine, on the nodes' clock (to within one replay window), pooled \
             over the seeds.",
        );
    }
    if !wall.is_empty() {
        figure(
            out,
            &svg::cdf(
                "CDF of detection latency, wall time, all seeds",
                "wall seconds from the injection to the last gateway's announcement",
                &[("every gateway", PALETTE[2], wall)],
            ),
            "How long the real nodes took to spread and verify the proof, settling waits \
             included.",
        );
    }
    let Some(s) = r.runs.first() else { return };
    let m = &s.map;
    let (mut west, mut east) = (Vec::new(), Vec::new());
    for (g, p) in m.gateways.iter().enumerate() {
        if s.sides.get(g).copied().unwrap_or(false) {
            east.push(*p);
        } else {
            west.push(*p);
        }
    }
    let cut = s.partition.is_some();
    let gateways = [
        Layer {
            label: if cut { "gateway, west side" } else { "gateway" },
            color: "#ff7f0e",
            radius: 4.0,
            points: &west,
            square: true,
        },
        Layer {
            label: "gateway, east side",
            color: "#2ca02c",
            radius: 4.0,
            points: &east,
            square: true,
        },
    ];
    let rogue = s.rogue.as_ref().map(|x| x.rogue);
    figure(
        out,
        &map(&format!("Map (seed {})", s.seed), m, rogue, &gateways),
        if cut {
            "The two sides of the cut; the clones of west-quarter devices speak from the east."
        } else {
            "Gateways on a jittered grid; devices uniform over the area; the attack marked."
        },
    );
}
