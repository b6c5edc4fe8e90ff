//! The escrow: events that cannot be verified yet because an establishment event (the
//! device's inception, or a rotation) has not arrived.
//!
//! Policy at the bounds (all from [`super::Config`]):
//! - at most `escrow_per_key` frames wait for one missing event: a new one evicts the
//!   oldest waiting for the same event;
//! - at most `escrow_total` frames in all: a new one evicts the oldest overall;
//! - a frame waits at most `escrow_ttl_ms`; expired frames are dropped on the next call.
//!
//! Escrowed frames are unverified (their key is unknown), so anyone can fill the escrow:
//! the bounds make that cost a fixed amount of memory, and an honest frame evicted by a
//! flood is fetched again by the mesh's sync once the establishment event is known.
//! Identical frames are held once.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use slope_proto::Observation;

use super::outcome::Missing;
use crate::time::Millis;

pub(crate) struct Entry {
    pub missing: Missing,
    pub frame: Box<[u8]>,
    pub rx: Observation,
    pub at: Millis,
}

/// Counters of what the escrow dropped, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscrowStats {
    pub held: usize,
    pub evicted_per_key: u64,
    pub evicted_total: u64,
    pub expired: u64,
}

pub(crate) struct Escrow {
    entries: VecDeque<Entry>,
    per_key: usize,
    total: usize,
    ttl: Millis,
    stats: EscrowStats,
}

impl Escrow {
    pub fn new(per_key: usize, total: usize, ttl: Millis) -> Self {
        Self {
            entries: VecDeque::new(),
            per_key: per_key.max(1),
            total: total.max(1),
            ttl,
            stats: EscrowStats::default(),
        }
    }

    pub fn stats(&self) -> EscrowStats {
        EscrowStats {
            held: self.entries.len(),
            ..self.stats
        }
    }

    /// Holds `frame` until `missing` arrives, applying the bounds.
    pub fn hold(&mut self, missing: Missing, frame: &[u8], rx: Observation, now: Millis) {
        self.expire(now);
        let mut same = 0;
        let mut oldest_same = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.missing == missing {
                if &*e.frame == frame {
                    return;
                }
                same += 1;
                oldest_same.get_or_insert(i);
            }
        }
        if same >= self.per_key {
            if let Some(i) = oldest_same {
                self.entries.remove(i);
                self.stats.evicted_per_key += 1;
            }
        }
        while self.entries.len() >= self.total {
            self.entries.pop_front();
            self.stats.evicted_total += 1;
        }
        self.entries.push_back(Entry {
            missing,
            frame: frame.into(),
            rx,
            at: now,
        });
    }

    /// Takes every frame waiting for `missing` (oldest first), or for any matching
    /// predicate.
    pub fn take(&mut self, mut wanted: impl FnMut(&Missing) -> bool) -> Vec<Entry> {
        let mut out = Vec::new();
        if self.entries.is_empty() {
            return out;
        }
        let mut kept = VecDeque::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if wanted(&e.missing) {
                out.push(e);
            } else {
                kept.push_back(e);
            }
        }
        self.entries = kept;
        out
    }

    /// Drops every frame older than the time-to-live.
    pub fn expire(&mut self, now: Millis) {
        let ttl = self.ttl;
        let before = self.entries.len();
        self.entries.retain(|e| now.saturating_sub(e.at) <= ttl);
        self.stats.expired += (before - self.entries.len()) as u64;
    }

    /// When the next frame expires.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.entries
            .iter()
            .map(|e| e.at.saturating_add(self.ttl))
            .min()
    }
}
