//! The signature memo every simulated gateway's verifier shares
//! (`slope_node::verifier::SignatureMemo`): signature validity is a pure function of
//! (key, message, signature), so one check serves every gateway that receives the same
//! frame, and a memo changes no outcome, only the work (`node`'s verifier tests check
//! that). Without it each of the ~20 copies of an attestation that reach gateways (radio
//! and gossip) went through a batch verification of its own.
//!
//! The memo is also where the second core's work lands: the pre-verifier
//! ([`super::preverify`]) checks frames as they go on the air and puts the results here
//! before any gateway flushes.
//!
//! Bounded: at most [`CAPACITY`] entries, the oldest dropped first (an entry is needed
//! for the seconds to minutes in which gateways receive one frame; a miss after that
//! costs one check, never a wrong answer).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use slope_node::verifier::SignatureMemo;

/// Entries kept (over an hour of a 10,000-device fleet's attestations; gateways
/// receive the copies of one frame within seconds).
pub const CAPACITY: usize = 1 << 16;

/// The exact (key, message, signature) a result is for: compared in full, so no two
/// triples ever share an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Triple {
    key: [u8; 32],
    message: [u8; 32],
    signature: [u8; 64],
}

impl Triple {
    /// The triple of one signature check.
    pub fn new(key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> Self {
        Self {
            key: *key,
            message: *message,
            signature: *signature,
        }
    }
}

impl std::hash::Hash for Triple {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The bucket only: a signature's and a message digest's first bytes are
        // uniform; equality compares everything.
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[..8]);
            u64::from_le_bytes(w)
        };
        state.write_u64(word(&self.signature) ^ word(&self.message).rotate_left(17));
    }
}

/// Passes a [`Triple`]'s bucket word through.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Counters of the memo (work, not outcomes: they depend on thread timing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub puts: u64,
}

#[derive(Default)]
struct Table {
    map: HashMap<Triple, bool, BuildHasherDefault<Identity>>,
    order: VecDeque<Triple>,
    stats: Stats,
}

impl Table {
    fn put(&mut self, t: Triple, valid: bool) {
        self.stats.puts += 1;
        if self.map.insert(t, valid).is_some() {
            return;
        }
        self.order.push_back(t);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// A handle on the shared memo; clones share one table.
#[derive(Clone, Default)]
pub struct Memo {
    table: Arc<Mutex<Table>>,
}

impl Memo {
    /// Remembers many results at once (one lock).
    pub fn put_many(&self, results: impl IntoIterator<Item = (Triple, bool)>) {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        for (k, v) in results {
            t.put(k, v);
        }
    }

    /// Whether the memo holds a result for `t`.
    pub fn contains(&self, t: Triple) -> bool {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.map.contains_key(&t)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.map.len()
    }

    /// Whether the memo is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits, misses and puts so far.
    pub fn stats(&self) -> Stats {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats
    }
}

impl SignatureMemo for Memo {
    fn get(&self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> Option<bool> {
        let t = Triple::new(key, message, signature);
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let v = table.map.get(&t).copied();
        if v.is_some() {
            table.stats.hits += 1;
        } else {
            table.stats.misses += 1;
        }
        v
    }

    fn put(&mut self, key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64], valid: bool) {
        let t = Triple::new(key, message, signature);
        self.put_many([(t, valid)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_triple_and_bounds_itself() {
        let mut m = Memo::default();
        let other = m.clone();
        let (k, msg, sig) = ([1u8; 32], [2u8; 32], [3u8; 64]);
        assert_eq!(m.get(&k, &msg, &sig), None);
        m.put(&k, &msg, &sig, true);
        // Shared: the clone sees it; any other triple does not.
        assert_eq!(other.get(&k, &msg, &sig), Some(true));
        let mut sig2 = sig;
        sig2[63] ^= 1;
        assert_eq!(other.get(&k, &msg, &sig2), None);
        m.put(&k, &msg, &sig2, false);
        assert_eq!(m.get(&k, &msg, &sig2), Some(false));
        for i in 0..CAPACITY as u64 + 10 {
            let mut s = [0u8; 64];
            s[..8].copy_from_slice(&i.to_le_bytes());
            m.put_many([(Triple::new(&k, &msg, &s), true)]);
        }
        assert_eq!(m.len(), CAPACITY);
        // The oldest went first.
        assert_eq!(m.get(&k, &msg, &sig), None);
    }
}
