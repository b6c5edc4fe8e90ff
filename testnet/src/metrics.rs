//! What a run measures while it runs: counters, the per-identity ground truth the
//! oracles compare detections with, and the time series the report plots.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::world::trust::Mode;

/// Ground truth about one identity (an honest device's id, which a clone shares).
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// When the attacker's first new frame for this identity went on the air, ms.
    pub attacked_at_ms: Option<u64>,
    /// Whether a gateway received a new frame of the original device (a position past
    /// the copied state) after the clone's first frame was received: both spoke, so
    /// the chain alone can catch it.
    pub original_heard_after: bool,
    /// The slope position of the copied state.
    pub copied_at_seq: Option<u32>,
    /// When each gateway quarantined it, ms (`None`: not quarantined there).
    pub quarantined_at: BTreeMap<u16, u64>,
    /// When the identity's device first reached full scope at its home gateway, ms.
    pub full_at_ms: Option<u64>,
    /// When the identity's first frame went on the air, ms.
    pub first_tx_ms: Option<u64>,
    /// Whether a gateway verified a frame of this identity from its radio before the
    /// attack started, and after it started.
    pub heard_before_attack: bool,
    pub heard_after_attack: bool,
    /// Whether the context (RF profile, behaviour) flagged the identity at any gateway
    /// after the attack started (monitored or deferred).
    pub flagged_by_context: bool,
    /// Whether the context flagged it while it was honest (before any attack on it).
    pub flagged_honest: bool,
}

/// Admissions by mode at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_ms: u64,
    /// Count of identities in each mode at their home gateway, in [`Mode::ALL`] order.
    pub modes: [u64; 7],
    /// Identities their home gateway does not track (yet).
    pub untracked: u64,
}

/// A plotted trust slope: the accepted head position of one identity at its home
/// gateway over time, and its mode.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub label: String,
    pub attacked: bool,
    /// (time ms, head position, mode).
    pub points: Vec<(u64, u32, Mode)>,
}

impl Series {
    /// An empty series.
    pub fn new(label: String, attacked: bool) -> Self {
        Self {
            label,
            attacked,
            points: Vec::new(),
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Events signed by devices (honest and attackers).
    pub signed: u64,
    /// Frames put on the air by honest devices.
    pub honest_frames: u64,
    /// Airtime of honest devices, µs, and their envelope bytes on the air.
    pub honest_airtime_us: u64,
    pub honest_bytes: u64,
    /// Frames put on the air by attackers (clones, forgers, replayers, sybils).
    pub attack_frames: u64,
    /// Transmissions deferred by the duty-cycle tracker (waited, then sent).
    pub duty_cycle_deferrals: u64,
    /// Windows in which a node's own airtime ledger (kept apart from the radio's
    /// tracker) exceeded the sub-band's duty cycle. Must be 0.
    pub duty_cycle_violations: u64,
    /// Receptions at gateways delivered by the radio model.
    pub receptions: u64,
    /// Receptions dropped by the scenario's extra frame loss.
    pub receptions_lost: u64,
    /// Attestation deliveries by gossip, and their bytes (payload and overhead, every hop).
    pub gossip_deliveries: u64,
    pub gossip_bytes: u64,
    /// Gossip copies a gateway's seen-cache dropped before its verifier saw them (the
    /// gateway had already received or published that message id), and publications
    /// refused because the publisher had already received the message by gossip.
    pub gossip_seen_dropped: u64,
    pub gossip_publish_duplicate: u64,
    /// Proof messages sent hop by hop, and their bytes.
    pub proof_messages: u64,
    pub proof_bytes: u64,
    /// Sync requests (establishment events for escrowed frames), and reply bytes.
    pub sync_requests: u64,
    pub sync_bytes: u64,
    pub power_cuts: u64,
    pub reboots: u64,
    /// Forged frames received by a gateway, and how many were accepted as new.
    pub forged_received: u64,
    pub forged_accepted: u64,
    /// Replayed frames received, and how many a gateway took as a new position (an
    /// authentic frame it had missed).
    pub replayed_received: u64,
    pub replayed_new: u64,
    /// Fake divergence proofs a rogue gateway sent.
    pub fake_proofs_sent: u64,
    /// Receipt batches delivered to gateways (one per receiver), and their bytes
    /// (payload and overhead, every hop).
    pub receipt_deliveries: u64,
    pub receipt_bytes: u64,
    /// Trust-engine decisions on radio-heard attestations, and those that had at least
    /// one other witness's receipt.
    pub decisions: u64,
    pub decisions_with_receipts: u64,
    /// Decisions that had a receipt of the rogue gateway; of those, the ones where the
    /// witness policy counted more than the local radio, the honest receipts and one
    /// witness for the rogue (must be 0), and the ones at full scope with no honest
    /// receipt (the rogue's word was the only corroboration).
    pub rogue_receipted: u64,
    pub rogue_over_one_witness: u64,
    pub rogue_only_full: u64,
}

/// p50 / p99 / max of a sample, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub n: usize,
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl Quantiles {
    /// Nearest-rank quantiles of `ms` (milliseconds), in seconds.
    pub fn of_ms(mut ms: Vec<u64>) -> Option<Self> {
        if ms.is_empty() {
            return None;
        }
        ms.sort_unstable();
        let q = |p: f64| {
            let rank = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
            ms[rank - 1] as f64 / 1000.0
        };
        Some(Self {
            n: ms.len(),
            p50_s: q(0.50),
            p99_s: q(0.99),
            max_s: q(1.0),
        })
    }
}

/// The reference measured beside a run: this machine's ed25519 rates, now, on this
/// thread (sign with the `fast` tables; strict one-by-one verification, what a gateway's
/// fallback does; batch verification of 64, what `handle_batch` does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Reference {
    pub ed25519_sign_per_s: f64,
    pub ed25519_verify_per_s: f64,
    pub ed25519_batch64_verify_per_s: f64,
}

impl Reference {
    /// Measures `n` signatures and checks (a fraction of a second).
    pub fn measure(n: usize) -> Self {
        use ed25519_dalek::{Signature, Signer, SigningKey};
        let n = n.max(64);
        let keys: Vec<SigningKey> = (0..64u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let msgs: Vec<[u8; 32]> = (0..n)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect();
        let t = std::time::Instant::now();
        let sigs: Vec<Signature> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 64].sign(m))
            .collect();
        let sign = n as f64 / t.elapsed().as_secs_f64().max(1e-9);
        let vks: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
        let t = std::time::Instant::now();
        let ok = msgs
            .iter()
            .zip(&sigs)
            .enumerate()
            .filter(|(i, (m, s))| vks[i % 64].verify_strict(&m[..], s).is_ok())
            .count();
        let verify = ok as f64 / t.elapsed().as_secs_f64().max(1e-9);
        let t = std::time::Instant::now();
        let mut batched = 0;
        for (chunk, sc) in msgs.chunks(64).zip(sigs.chunks(64)) {
            let m: Vec<&[u8]> = chunk.iter().map(|m| &m[..]).collect();
            let k = &vks[..chunk.len()];
            // Keys in the same order as signing (i % 64 with chunks of 64 aligned).
            if ed25519_dalek::verify_batch(&m, sc, k).is_ok() {
                batched += chunk.len();
            }
        }
        let batch = batched as f64 / t.elapsed().as_secs_f64().max(1e-9);
        Self {
            ed25519_sign_per_s: sign,
            ed25519_verify_per_s: verify,
            ed25519_batch64_verify_per_s: batch,
        }
    }
}

/// CPU time (user + system) this process used so far, seconds (Linux
/// `/proc/self/stat`, at 100 ticks per second; `None` elsewhere). On a shared machine it
/// is the honest measure of cost: wall time also counts other processes' turns.
pub fn cpu_s() -> Option<f64> {
    stat_cpu_s("/proc/self/stat")
}

/// CPU time of the calling thread so far, seconds (Linux `/proc/thread-self/stat`).
pub fn thread_cpu_s() -> Option<f64> {
    stat_cpu_s("/proc/thread-self/stat")
}

fn stat_cpu_s(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Peak resident memory of this process, MiB (Linux `VmHWM`; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let q = Quantiles::of_ms((1..=100).map(|s| s * 1000).collect());
        assert_eq!(
            q,
            Some(Quantiles {
                n: 100,
                p50_s: 50.0,
                p99_s: 99.0,
                max_s: 100.0
            })
        );
        assert_eq!(Quantiles::of_ms(vec![]), None);
        assert_eq!(Quantiles::of_ms(vec![7]).map(|q| q.p99_s), Some(0.007));
    }
}
