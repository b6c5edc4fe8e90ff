//! Evidence: what one verified attestation and its receipts show about the device,
//! measured against the device's own hot record — continuity (depth, intervals, loss,
//! dormancy, reboots), corroboration (plausible witnesses, zones, heard-neighbour
//! reports), context (RF profiles, post-actuation expectations, behaviour) and
//! authority. Gathering evidence also updates the hot record (the caller works on a
//! copy and commits it only once the lineage holds the records).

use heapless::Vec;
use serde::{Deserialize, Serialize};
use slope_proto::{Digest, Event, Observation, WitnessId};

use super::device::{Hot, flag};
use super::fixed;
use super::policy::Policy;
use super::profile::{self, Floors, Profile, Sample};
use super::quorum::{Seen, Verdict};
use super::witness::{self, VerifiedReceipt};
use super::zone::{Position, Zone};
use crate::time::Millis;
use crate::verifier::VerifiedAttestation;

/// Largest number of receipts considered per attestation (`Bounds::max_receipts` is
/// capped to it).
pub const MAX_RECEIPTS: usize = 16;
const MAX_OBS: usize = MAX_RECEIPTS + 1;

/// Receipts that did not count, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Discounts {
    /// RSSI stronger than free-space path loss allows at the known distance.
    pub rssi: u8,
    /// Receive time too far from the median of the attestation's observations.
    pub time: u8,
    /// Names another device, position or event.
    pub mismatch: u8,
    /// A second receipt from one witness.
    pub duplicate: u8,
    /// Beyond `Bounds::max_receipts`.
    pub excess: u8,
}

impl Discounts {
    /// Whether any receipt was discounted.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// Everything measured for one attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Attestations received, this one included.
    pub depth: u32,
    pub lost: u32,
    pub interval_ms: u64,
    pub interval_dev_ms: u64,
    pub age_ms: u64,
    /// Silence before this attestation.
    pub silent_ms: u64,
    /// The silence was a dormancy gap (threshold in `dormancy_ms`).
    pub dormant: bool,
    pub dormancy_ms: u64,
    pub dormancy_left: u8,
    pub reboots: u16,
    /// Boot counter went from `.0` back to `.1`.
    pub boot_regression: Option<(u16, u16)>,
    /// Whether this attestation became the head.
    pub head: bool,
    pub quorum: Verdict,
    pub discounts: Discounts,
    /// Heard-neighbour credits counted.
    pub neighbours: u8,
    /// Established profiles among this attestation's witnesses.
    pub established: u8,
    pub deviating: u8,
    /// The deviation that holds at `deviation_witnesses` witnesses (q4 deviations).
    pub magnitude_q4: u16,
    pub deviation: bool,
    pub severe: bool,
    /// Post-actuation check: expected witness and its distance (q4), when checked.
    pub expectation: Option<(WitnessId, u16)>,
    pub mismatch: bool,
    pub behaviour_changes: u16,
    pub zone: Zone,
    pub certified: bool,
    /// Established profiles in total.
    pub profiled: u8,
}

/// What the engine knows beyond the device's record.
pub(crate) struct Inputs<'a> {
    pub policy: &'a Policy,
    pub witnesses: &'a witness::Registry,
    pub local: Option<u16>,
    pub position: Option<Position>,
    pub zone: Zone,
    pub certified: bool,
}

struct Obs {
    slot: u16,
    id: WitnessId,
    zone: Zone,
    sample: Sample,
}

/// What a decision is about: a suite-1 attestation or a suite-2 (compact) one.
pub(crate) struct Subject<'a> {
    /// The position in the device's sequence: a suite-1 `seq`, or a compact interval
    /// number (a separate sequence: see [`Subject::compact`]).
    pub seq: u32,
    /// The digest receipts name (`event` = its link): a suite-1 event digest, or the
    /// compact frame's receipt digest (`compact::receipt_digest`).
    pub digest: Digest,
    /// What the gateway's own radio observed.
    pub rx: Option<&'a Observation>,
    /// The suite-1 event (inception, interaction...); `None` for a compact attestation.
    pub event: Option<&'a Event>,
    /// When the attestation was received, for continuity (silence, intervals, age): the
    /// decision's `now` for suite 1; a compact frame is decided one disclosure delay
    /// after it was received, so its receive time (never later than `now`).
    pub seen: Millis,
}

impl<'a> Subject<'a> {
    pub fn of(att: &'a VerifiedAttestation, now: Millis) -> Self {
        Self {
            seq: att.seq(),
            digest: *att.digest(),
            rx: Some(att.rx()),
            event: Some(att.event()),
            seen: now,
        }
    }
    /// Whether this is a compact attestation (its interval numbers are positions of
    /// their own, tracked apart from suite-1 sequence numbers).
    pub fn compact(&self) -> bool {
        self.event.is_none()
    }
}

/// Measures the evidence of `att` and updates `h` with it.
pub(crate) fn gather(
    h: &mut Hot,
    att: &Subject<'_>,
    receipts: &[VerifiedReceipt],
    now: Millis,
    inp: &Inputs<'_>,
) -> Evidence {
    let p = inp.policy;
    let mut ev = Evidence {
        depth: 0,
        lost: 0,
        interval_ms: 0,
        interval_dev_ms: 0,
        age_ms: 0,
        silent_ms: 0,
        dormant: false,
        dormancy_ms: 0,
        dormancy_left: 0,
        reboots: 0,
        boot_regression: None,
        head: false,
        quorum: Verdict {
            witnesses: 0,
            zones: 0,
            groups: 0,
            satisfied: false,
        },
        discounts: Discounts::default(),
        neighbours: 0,
        established: 0,
        deviating: 0,
        magnitude_q4: 0,
        deviation: false,
        severe: false,
        expectation: None,
        mismatch: false,
        behaviour_changes: 0,
        zone: inp.zone,
        certified: inp.certified,
        profiled: 0,
    };
    continuity(h, att, att.seen.min(now), p, &mut ev);
    let obs = observations(h, att, receipts, inp, &mut ev);
    context(h, &obs, p, &mut ev);
    // Heard-neighbour credits accumulated since the last attestation.
    ev.neighbours = h.neighbour_credits.min(p.corroboration.neighbour_cap);
    h.neighbour_credits = 0;
    if ev.quorum.satisfied {
        h.corroborated = h.corroborated.saturating_add(1);
    }
    ev.profiled = h.established(p.context.min_samples);
    ev
}

fn continuity(h: &mut Hot, att: &Subject<'_>, now: Millis, p: &Policy, ev: &mut Evidence) {
    let c = &p.continuity;
    let seq = att.seq;
    let first = h.depth == 0;
    if matches!(att.event, Some(Event::Inception(_))) {
        h.set(flag::ANCHORED, true);
    }
    // Compact intervals are positions of their own: the first compact attestation of a
    // device starts that sequence (no loss counted across the switch of suite).
    let compact_first = att.compact() && !h.has(flag::COMPACT);
    if att.compact() {
        h.set(flag::COMPACT, true);
    }
    let head = if att.compact() {
        &mut h.compact_head
    } else {
        &mut h.head_seq
    };
    let ahead = first || compact_first || seq > *head;
    let positions = if first || compact_first {
        1
    } else {
        seq.saturating_sub(*head)
    };
    if ahead {
        *head = seq;
    }
    if first {
        h.first_seen = now;
        h.last_seen = now;
        ev.head = true;
    } else if ahead {
        h.lost = h.lost.saturating_add(positions - 1);
        let silent = now.saturating_sub(h.last_seen);
        ev.silent_ms = silent;
        let mean = h.interval.mean_ms();
        let threshold = c
            .dormancy_min_ms
            .max(mean.saturating_mul(u64::from(c.dormancy_intervals)));
        ev.dormancy_ms = threshold;
        if silent > threshold {
            ev.dormant = true;
            h.dormancy_left = c.dormancy_probation;
        } else {
            h.interval
                .update(silent / u64::from(positions), h.depth, c.window_log2);
            h.dormancy_left = h.dormancy_left.saturating_sub(1);
        }
        h.last_seen = h.last_seen.max(now);
        ev.head = true;
    } else {
        // Fills a hole below the head, or is historic: no longer lost.
        h.lost = h.lost.saturating_sub(1);
    }
    if let Some(Event::Interaction(i)) = att.event {
        let b = i.body();
        if ev.head {
            if !first && b.boot < h.boot {
                ev.boot_regression = Some((h.boot, b.boot));
            } else if !first && b.boot > h.boot {
                h.reboots = h.reboots.saturating_add(b.boot - h.boot);
            }
            if (!first || h.depth > 0) && b.behaviour != h.behaviour && h.behaviour != [0; 4] {
                h.behaviour_changes = h.behaviour_changes.saturating_add(1);
            }
            h.boot = b.boot;
            h.behaviour = b.behaviour;
        }
    }
    h.depth = h.depth.saturating_add(1);
    ev.depth = h.depth;
    ev.lost = h.lost;
    ev.interval_ms = h.interval.mean_ms();
    ev.interval_dev_ms = u64::from(h.interval.dev_q4s) * 1000 / 16;
    ev.age_ms = now.saturating_sub(h.first_seen);
    ev.dormancy_left = h.dormancy_left;
    ev.reboots = h.reboots;
    ev.behaviour_changes = h.behaviour_changes;
}

/// The plausible observations of this attestation: the local radio's, then receipts
/// that name this event, from distinct witnesses, in time and within free-space bounds.
fn observations(
    h: &Hot,
    att: &Subject<'_>,
    receipts: &[VerifiedReceipt],
    inp: &Inputs<'_>,
    ev: &mut Evidence,
) -> Vec<Obs, MAX_OBS> {
    let p = inp.policy;
    let max = usize::from(p.bounds.max_receipts).min(MAX_RECEIPTS);
    let mut obs: Vec<Obs, MAX_OBS> = Vec::new();
    let mut times: Vec<u64, MAX_OBS> = Vec::new();
    let mut candidates: Vec<(&VerifiedReceipt, u16), MAX_RECEIPTS> = Vec::new();
    if let Some(slot) = inp.local
        && let Some(w) = inp.witnesses.get(slot)
        && let Some(rx) = att.rx
        // Relayed (gossip, sync): the local radio heard nothing, so it is no witness.
        && !rx.is_relayed()
    {
        let _ = times.push(rx.time_ms);
        let _ = obs.push(Obs {
            slot,
            id: w.id,
            zone: w.zone,
            sample: Sample::of(rx),
        });
    }
    let link = att.digest.link();
    let short = h.id.short();
    for (i, r) in receipts.iter().enumerate() {
        if i >= max {
            ev.discounts.excess = ev.discounts.excess.saturating_add(1);
            continue;
        }
        let b = r.body();
        if b.device != short || b.seq != att.seq || b.event != link {
            ev.discounts.mismatch = ev.discounts.mismatch.saturating_add(1);
            continue;
        }
        let dup =
            Some(r.slot()) == inp.local || candidates.iter().any(|(c, _)| c.slot() == r.slot());
        if dup {
            ev.discounts.duplicate = ev.discounts.duplicate.saturating_add(1);
            continue;
        }
        let _ = times.push(b.observed.time_ms);
        let _ = candidates.push((r, r.slot()));
    }
    // The median receive time (lower median: deterministic for even counts).
    times.sort_unstable();
    let median = times
        .get(times.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0);
    let c = &p.context;
    let mut fspl = fixed::Fspl::default();
    for (r, slot) in candidates {
        let Some(w) = inp.witnesses.get(slot) else {
            continue;
        };
        let o = &r.body().observed;
        if o.time_ms.abs_diff(median) > c.time_tolerance_ms {
            ev.discounts.time = ev.discounts.time.saturating_add(1);
            continue;
        }
        // Free-space bound: without both positions, the 1 m bound still applies.
        let d2 = match (inp.position, w.position) {
            (Some(a), Some(b)) => a.distance_sq(&b),
            _ => 1,
        };
        let max_rssi = i64::from(c.device_eirp_dbm + c.witness_gain_dbi) * 100
            - fspl.hundredths(d2, o.freq_hz)
            + i64::from(c.fspl_margin_db) * 100;
        if i64::from(o.rssi_dbm) * 100 > max_rssi {
            ev.discounts.rssi = ev.discounts.rssi.saturating_add(1);
            continue;
        }
        let _ = obs.push(Obs {
            slot,
            id: w.id,
            zone: w.zone,
            sample: Sample::of(o),
        });
    }
    let seen: Vec<Seen, MAX_OBS> = obs
        .iter()
        .map(|o| Seen {
            witness: o.id,
            zone: o.zone,
        })
        .collect();
    ev.quorum = p.corroboration.quorum.evaluate(&seen);
    obs
}

/// Compares the observations with the device's RF profiles, checks the grant's
/// expectation, then folds the samples into the profiles.
fn context(h: &mut Hot, obs: &[Obs], p: &Policy, ev: &mut Evidence) {
    let c = &p.context;
    let floors = Floors {
        rssi_q4: c.rssi_floor_q4,
        snr_q4: c.snr_floor_q4,
        foff_4hz: c.foff_floor_4hz,
    };
    let mut dists: Vec<u16, MAX_OBS> = Vec::new();
    for o in obs {
        if let Some(pr) = find(&h.profiles, o.slot)
            && pr.established(c.min_samples)
        {
            let d = pr.distance_q4(&o.sample, &floors, c.min_samples);
            let _ = dists.push(d);
            if o.slot == h.expect_witness && h.expect_left > 0 {
                ev.expectation = Some((o.id, d));
                ev.mismatch = d >= c.deviation_q4;
                h.expect_left -= 1;
            }
        }
    }
    ev.established = dists.len() as u8;
    ev.deviating = dists.iter().filter(|d| **d >= c.deviation_q4).count() as u8;
    dists.sort_unstable_by(|a, b| b.cmp(a));
    let k = usize::from(c.deviation_witnesses.max(1)).min(dists.len());
    if k > 0 {
        ev.magnitude_q4 = dists[k - 1];
        ev.deviation = ev.magnitude_q4 >= c.deviation_q4;
        ev.severe = ev.magnitude_q4 >= c.severe_q4;
    }
    if ev.severe {
        // Not the device's radio (or not where it was): keep the profile as it is.
        return;
    }
    for o in obs {
        if let Some(i) = profile::slot_for(&h.profiles, o.slot, c.min_samples) {
            let pr = &mut h.profiles[i];
            if pr.witness != o.slot {
                *pr = Profile {
                    witness: o.slot,
                    ..Profile::default()
                };
            }
            pr.update(&o.sample, c.window_log2);
        }
    }
}

fn find(profiles: &[Profile], slot: u16) -> Option<&Profile> {
    profiles.iter().find(|p| p.witness == slot)
}
