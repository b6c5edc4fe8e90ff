//! Prometheus metrics (`/metrics`): ingest, verification latency, queues and drops,
//! peers, gossip bytes, divergences, admissions by mode.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A single label `kind`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

/// Shorthand for a label.
pub fn kind(kind: &'static str) -> Kind {
    Kind { kind }
}

/// Every metric of a node. Cheap to clone (shared counters).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Frames entering the pipeline, by source (radio, gossip, sync, escrow).
    pub ingest: Family<Kind, Counter>,
    /// Verifier outcomes, by kind.
    pub outcomes: Family<Kind, Counter>,
    /// Seconds per verified batch (decode + batch ed25519 + classification).
    pub verify_seconds: Histogram,
    /// Frames per verified batch.
    pub batch_size: Histogram,
    /// Seconds per durable commit.
    pub commit_seconds: Histogram,
    /// Verified batches per ingest commit (group commit: several waiting batches, one
    /// transaction, one fsync).
    pub group_batches: Histogram,
    /// CPU seconds the commit stage's thread spent on ingest groups (decide, write,
    /// commit, sign; from the thread's own CPU clock, so a loaded machine does not
    /// inflate it). Linux only; stays 0 elsewhere.
    pub commit_cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Wall seconds the verify stage stood waiting, by what for: `commit_bound` (the
    /// group commit still running with `ingest.commit_max` attestations verified and
    /// waiting), `commit` (the commit still running when the verify stage had nothing
    /// more to verify; on a busy gateway, time there is a core without work), `verify`
    /// (the calling thread waiting for the verifier shards' threads to hand back a
    /// batch while they verify: not a core without work). Until session 7 there was
    /// `shard` (one shard done, waiting for the others at the end of every batch); the
    /// shards no longer wait for each other.
    pub verify_wait_seconds: Family<Kind, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Queue depth, by queue.
    pub queue_depth: Family<Kind, Gauge>,
    /// Items dropped, by queue or reason.
    pub dropped: Family<Kind, Counter>,
    /// Connected peers.
    pub peers: Gauge,
    /// gossip payload bytes, by direction (in, out).
    pub gossip_bytes: Family<Kind, Counter>,
    /// gossip validation results (accept, ignore, reject).
    pub validation: Family<Kind, Counter>,
    /// Devices quarantined by a verified divergence proof.
    pub divergences: Counter,
    /// Decisions by admission mode.
    pub admissions: Family<Kind, Counter>,
    /// Witness receipts signed by this gateway (entries of its receipt batches).
    pub receipts_signed: Counter,
    /// Peers' receipts, by fate: `decided_with` (given to the trust engine with their
    /// attestation), `late` (their attestation was already decided: counted in the
    /// device record only), `pending` (held for an attestation not yet here).
    pub receipts_in: Family<Kind, Counter>,
    /// Decisions taken after the receipt window (`ingest.receipt_wait_ms`), by how:
    /// `waited` (the window was over), `early` (the bound of attestations waiting was
    /// reached), `restored` (waiting at a restart, queued again), `lost` (waiting at a
    /// restart, but its frame was no longer in the store: never decided).
    pub decisions: Family<Kind, Counter>,
    /// Sync requests, by kind (summary, fetch) and direction.
    pub sync: Family<Kind, Counter>,
    /// Suite-2 (compact) frames and results, by kind: `frame_in` (every suite-2 frame
    /// entering the verifier), `anchored`, `buffered`, `checked`, `duplicate`,
    /// `rejected_*` (by reason), then later `authenticated`, `bad_mac`, `renewed`,
    /// `renewal_conflict`, `divergence`, `divergence_unproven`, `expired`.
    pub compact: Family<Kind, Counter>,
    /// Time echoes (`downlink`), by fate: `sent`, `send_failed`, or why none was sent
    /// (`not_attestation`, `unknown_device`, `ambiguous_device`, `too_soon`,
    /// `duty_cycle`, `no_region`, `table_full`, `store_error`).
    pub echo: Family<Kind, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("slope");
        let m = Self {
            registry: Arc::new(Registry::default()),
            ingest: Family::default(),
            outcomes: Family::default(),
            verify_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            group_batches: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            commit_cpu_seconds: Counter::default(),
            verify_wait_seconds: Family::default(),
            queue_depth: Family::default(),
            dropped: Family::default(),
            peers: Gauge::default(),
            gossip_bytes: Family::default(),
            validation: Family::default(),
            divergences: Counter::default(),
            admissions: Family::default(),
            receipts_signed: Counter::default(),
            receipts_in: Family::default(),
            decisions: Family::default(),
            sync: Family::default(),
            compact: Family::default(),
            echo: Family::default(),
        };
        r.register(
            "ingest_frames",
            "Frames entering the ingest pipeline, by source",
            m.ingest.clone(),
        );
        r.register(
            "verifier_outcomes",
            "Verifier outcomes, by kind",
            m.outcomes.clone(),
        );
        r.register(
            "verify_batch_seconds",
            "Seconds to verify one batch",
            m.verify_seconds.clone(),
        );
        r.register(
            "verify_batch_frames",
            "Frames per verified batch",
            m.batch_size.clone(),
        );
        r.register(
            "commit_seconds",
            "Seconds per durable store commit",
            m.commit_seconds.clone(),
        );
        r.register(
            "commit_group_batches",
            "Verified batches per ingest commit (group commit)",
            m.group_batches.clone(),
        );
        r.register(
            "commit_cpu_seconds",
            "CPU seconds of the commit stage's thread on ingest groups",
            m.commit_cpu_seconds.clone(),
        );
        r.register(
            "verify_wait_seconds",
            "Wall seconds the verify stage waited, by what for (commit_bound, commit, verify)",
            m.verify_wait_seconds.clone(),
        );
        r.register(
            "queue_depth",
            "Items waiting, by queue",
            m.queue_depth.clone(),
        );
        r.register(
            "dropped",
            "Items dropped, by queue or reason",
            m.dropped.clone(),
        );
        r.register("peers", "Connected libp2p peers", m.peers.clone());
        r.register(
            "gossip_bytes",
            "gossipsub payload bytes, by direction",
            m.gossip_bytes.clone(),
        );
        r.register(
            "gossip_validation",
            "gossip validation results",
            m.validation.clone(),
        );
        r.register(
            "divergences",
            "Devices quarantined by a verified divergence proof",
            m.divergences.clone(),
        );
        r.register(
            "admissions",
            "Trust decisions, by admission mode",
            m.admissions.clone(),
        );
        r.register(
            "receipts_signed",
            "Witness receipts signed",
            m.receipts_signed.clone(),
        );
        r.register(
            "receipts_in",
            "Peers' witness receipts, by fate",
            m.receipts_in.clone(),
        );
        r.register(
            "decisions",
            "Decisions taken after the receipt window, by how (waited, early, restored, lost)",
            m.decisions.clone(),
        );
        r.register("sync", "Sync protocol messages, by kind", m.sync.clone());
        r.register(
            "compact",
            "Suite-2 (compact) frames and verifier results, by kind",
            m.compact.clone(),
        );
        r.register(
            "echo",
            "Time echoes to devices, sent or skipped by reason",
            m.echo.clone(),
        );
        Self {
            registry: Arc::new(r),
            ..m
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// CPU time the calling thread has run, seconds (Linux: `/proc/thread-self/schedstat`);
/// `None` where it cannot be read.
pub fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes() {
        let m = super::Metrics::new();
        m.ingest.get_or_create(&super::kind("radio")).inc();
        let text = m.encode();
        assert!(
            text.contains("slope_ingest_frames_total{kind=\"radio\"} 1"),
            "{text}"
        );
        assert!(text.contains("slope_verify_batch_seconds"));
    }
}
