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
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use slope_proto::Observation;

use super::outcome::Missing;
use crate::time::Millis;

pub(crate) struct Entry {
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

/// The escrow, indexed by the missing event so that holding a frame and releasing the
/// frames one establishment event unblocks cost a map lookup and the few frames of that
/// key, never a scan of everything held (a flood of unknown identities fills the escrow
/// to `total`; before this index every frame then paid for a pass over all of it).
///
/// `waiting` holds each key's frames oldest first, tagged with an arrival number;
/// `order` lists (arrival number, key) for every frame in arrival order, for the
/// overall-oldest eviction and the time-to-live. Frames leave a key's queue only from
/// its front (per-key eviction, overall eviction, expiry) or all at once (release), so
/// an `order` record is live exactly when its key's queue starts at or before its
/// number; dead records are skipped when met and compacted when they outnumber the
/// live ones.
pub(crate) struct Escrow {
    waiting: BTreeMap<Missing, VecDeque<(u64, Entry)>>,
    order: VecDeque<(u64, Missing)>,
    next: u64,
    len: usize,
    per_key: usize,
    total: usize,
    ttl: Millis,
    stats: EscrowStats,
}

impl Escrow {
    pub fn new(per_key: usize, total: usize, ttl: Millis) -> Self {
        Self {
            waiting: BTreeMap::new(),
            order: VecDeque::new(),
            next: 0,
            len: 0,
            per_key: per_key.max(1),
            total: total.max(1),
            ttl,
            stats: EscrowStats::default(),
        }
    }

    pub fn stats(&self) -> EscrowStats {
        EscrowStats {
            held: self.len,
            ..self.stats
        }
    }

    /// Holds `frame` until `missing` arrives, applying the bounds.
    pub fn hold(&mut self, missing: Missing, frame: &[u8], rx: Observation, now: Millis) {
        self.expire(now);
        if let Some(q) = self.waiting.get_mut(&missing) {
            if q.iter().any(|(_, e)| &*e.frame == frame) {
                return;
            }
            if q.len() >= self.per_key && q.pop_front().is_some() {
                self.len -= 1;
                self.stats.evicted_per_key += 1;
            }
        }
        while self.len >= self.total && self.pop_oldest().is_some() {
            self.stats.evicted_total += 1;
        }
        let n = self.next;
        self.next += 1;
        self.waiting.entry(missing).or_default().push_back((
            n,
            Entry {
                frame: frame.into(),
                rx,
                at: now,
            },
        ));
        self.order.push_back((n, missing));
        self.len += 1;
        if self.order.len() > 2 * self.len + 64 {
            let waiting = &self.waiting;
            self.order.retain(|(n, m)| live(waiting, *n, m));
        }
    }

    /// Takes every frame waiting for an event in `keys` (oldest first within a key).
    pub fn take(&mut self, keys: impl core::ops::RangeBounds<Missing>) -> Vec<Entry> {
        let found: Vec<Missing> = self.waiting.range(keys).map(|(m, _)| *m).collect();
        let mut out = Vec::new();
        for m in found {
            if let Some(q) = self.waiting.remove(&m) {
                self.len -= q.len();
                out.extend(q.into_iter().map(|(_, e)| e));
            }
        }
        out
    }

    /// Drops every frame older than the time-to-live (in arrival order: a frame held
    /// with an earlier `now` than the one before it waits for that one to expire).
    pub fn expire(&mut self, now: Millis) {
        while let Some(&(n, m)) = self.order.front() {
            let Some(at) = self.entry_at(n, &m) else {
                self.order.pop_front();
                continue;
            };
            if now.saturating_sub(at) <= self.ttl {
                return;
            }
            if self.pop_oldest().is_some() {
                self.stats.expired += 1;
            }
        }
    }

    /// When the next frame expires.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.order
            .iter()
            .find_map(|(n, m)| self.entry_at(*n, m))
            .map(|at| at.saturating_add(self.ttl))
    }

    /// The receive time of live frame `n` of key `m`.
    fn entry_at(&self, n: u64, m: &Missing) -> Option<Millis> {
        let (first, e) = self.waiting.get(m)?.front()?;
        (*first == n).then_some(e.at)
    }

    /// Removes the overall oldest frame.
    fn pop_oldest(&mut self) -> Option<Entry> {
        while let Some((n, m)) = self.order.pop_front() {
            let Some(q) = self.waiting.get_mut(&m) else {
                continue;
            };
            if q.front().is_some_and(|(first, _)| *first == n) {
                let (_, e) = q.pop_front()?;
                if q.is_empty() {
                    self.waiting.remove(&m);
                }
                self.len -= 1;
                return Some(e);
            }
        }
        None
    }
}

/// Whether arrival `n` of key `m` is still held.
fn live(waiting: &BTreeMap<Missing, VecDeque<(u64, Entry)>>, n: u64, m: &Missing) -> bool {
    waiting
        .get(m)
        .and_then(|q| q.front())
        .is_some_and(|(first, _)| *first <= n)
}

#[cfg(test)]
mod tests {
    //! The indexed escrow against the obvious one (a list scanned on every call): the
    //! same frames held, evicted, expired and released, for any sequence of calls with
    //! a clock that does not go back.

    use super::*;
    use proptest::prelude::*;
    use slope_proto::{DeviceId, ShortId};

    #[derive(Debug, Clone)]
    enum Op {
        Hold { key: u8, frame: u8, dt: u16 },
        TakeInception(u8),
        TakeRotations { device: u8, upto: u32 },
        Expire(u16),
    }

    fn key(k: u8) -> Missing {
        match k % 4 {
            0 | 1 => Missing::Inception(ShortId([k / 4 % 3; 8])),
            _ => Missing::Rotation {
                device: DeviceId([k / 4 % 2; 32]),
                epoch: u32::from(k % 3),
            },
        }
    }

    /// The reference: arrival-ordered list, scanned.
    #[derive(Default)]
    struct Model {
        held: Vec<(Missing, u8, Millis)>,
        stats: EscrowStats,
    }

    impl Model {
        fn expire(&mut self, now: Millis, ttl: Millis) {
            let before = self.held.len();
            self.held.retain(|(_, _, at)| now - at <= ttl);
            self.stats.expired += (before - self.held.len()) as u64;
        }
        fn hold(
            &mut self,
            m: Missing,
            f: u8,
            now: Millis,
            per_key: usize,
            total: usize,
            ttl: Millis,
        ) {
            self.expire(now, ttl);
            if self.held.iter().any(|(k, g, _)| *k == m && *g == f) {
                return;
            }
            if self.held.iter().filter(|(k, _, _)| *k == m).count() >= per_key {
                let i = self.held.iter().position(|(k, _, _)| *k == m).unwrap();
                self.held.remove(i);
                self.stats.evicted_per_key += 1;
            }
            while self.held.len() >= total {
                self.held.remove(0);
                self.stats.evicted_total += 1;
            }
            self.held.push((m, f, now));
        }
        fn take(&mut self, keys: impl core::ops::RangeBounds<Missing>) -> Vec<u8> {
            let mut out: Vec<(Missing, usize, u8)> = Vec::new();
            let mut kept = Vec::new();
            for (i, h) in self.held.drain(..).enumerate() {
                if keys.contains(&h.0) {
                    out.push((h.0, i, h.1));
                } else {
                    kept.push(h);
                }
            }
            self.held = kept;
            out.sort();
            out.into_iter().map(|(_, _, f)| f).collect()
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), 0u8..4, 0u16..300).prop_map(|(key, frame, dt)| Op::Hold { key, frame, dt }),
            1 => any::<u8>().prop_map(Op::TakeInception),
            1 => (any::<u8>(), 0u32..3).prop_map(|(device, upto)| Op::TakeRotations { device, upto }),
            1 => (0u16..600).prop_map(Op::Expire),
        ]
    }

    proptest! {
        #[test]
        fn indexed_escrow_equals_the_scanned_list(
            ops in proptest::collection::vec(op(), 1..200),
            per_key in 1usize..4,
            total in 1usize..12,
        ) {
            let ttl = 1_000;
            let mut e = Escrow::new(per_key, total, ttl);
            let mut m = Model::default();
            let mut now: Millis = 0;
            let rx = Observation { rssi_dbm: -90, snr_qdb: 0, freq_hz: 868_100_000, foff_hz: None, sf: 9, time_ms: 0 };
            for op in ops {
                match op {
                    Op::Hold { key: k, frame, dt } => {
                        now += u64::from(dt);
                        e.hold(key(k), &[frame], rx, now);
                        m.hold(key(k), frame, now, per_key, total, ttl);
                    }
                    Op::TakeInception(k) => {
                        let k = Missing::Inception(ShortId([k % 3; 8]));
                        let got: Vec<u8> = e.take(k..=k).iter().map(|x| x.frame[0]).collect();
                        prop_assert_eq!(got, m.take(k..=k));
                    }
                    Op::TakeRotations { device, upto } => {
                        let device = DeviceId([device % 2; 32]);
                        let r = Missing::Rotation { device, epoch: 0 }..=Missing::Rotation { device, epoch: upto };
                        let got: Vec<u8> = e.take(r.clone()).iter().map(|x| x.frame[0]).collect();
                        prop_assert_eq!(got, m.take(r));
                    }
                    Op::Expire(dt) => {
                        now += u64::from(dt);
                        e.expire(now);
                        m.expire(now, ttl);
                    }
                }
                prop_assert_eq!(e.stats(), EscrowStats { held: m.held.len(), ..m.stats });
                prop_assert_eq!(e.next_expiry(), m.held.first().map(|h| h.2 + ttl));
                prop_assert!(e.order.len() <= 2 * e.len + 65, "dead records are compacted");
            }
        }
    }
}
