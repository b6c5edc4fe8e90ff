//! The gateway's lineage: every observation, decision, grant, quarantine, revocation and
//! operator action, appended to a hash-chained log in the store. Each record carries the
//! blake3 digest of the previous record's stored bytes; the head (next index, last digest)
//! is committed in the same transaction, so truncation, reordering or an edited record
//! is found by [`verify`], and an exported log can be re-verified by anyone.

use serde::{Deserialize, Serialize};

use crate::trust::{Admission, Grant, Reasons, Scope};

/// Derivation context of record digests.
pub const CONTEXT: &str = "slope v1 mesh lineage record";

/// Where a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Radio,
    Gossip,
    Sync,
    Escrow,
}

/// One lineage entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// The trust stage's decision on a verified, committed attestation (one record per
    /// attestation, written when the decision is taken: at once, or
    /// `ingest.receipt_wait_ms` after the commit for a frame heard on this gateway's
    /// radio; with the trust engine, `reasons` is its typed decision and names the
    /// engine lineage record that holds it in full).
    Observed {
        device: [u8; 32],
        seq: u32,
        digest: [u8; 32],
        source: Source,
        admission: Admission,
        reasons: Reasons,
    },
    /// A decision not tied to a new observation (an operator pin, a peer's receipt).
    Decided {
        device: [u8; 32],
        seq: u32,
        admission: Admission,
        reasons: Reasons,
    },
    /// A grant was issued or changed scope.
    Granted { device: [u8; 32], grant: Grant },
    /// Another gateway's witness receipt was verified and counted.
    Witnessed {
        device: [u8; 32],
        seq: u32,
        witness: [u8; 8],
    },
    /// A verified divergence proof quarantined the device.
    Quarantined {
        device: [u8; 32],
        seq: u32,
        proof_digest: [u8; 32],
    },
    /// A grant was revoked.
    Revoked { device: [u8; 32], reason: String },
    /// Operator: released from quarantine.
    Released { device: [u8; 32], note: String },
    /// Operator: pinned (or unpinned) a scope.
    Pinned {
        device: [u8; 32],
        scope: Option<Scope>,
        note: String,
    },
    /// Suite 2: an anchor (a compact chain signed by the device's suite-1 key of
    /// `epoch`) was verified and committed.
    Anchored {
        device: [u8; 32],
        epoch: u32,
        first: u32,
        len: u32,
    },
    /// Suite 2: a compact attestation for `interval` was authenticated (its MAC under
    /// a key disclosed later, received in time), and the decision on it. `digest` is
    /// the suite-2 frame digest.
    Compact {
        device: [u8; 32],
        interval: u32,
        digest: [u8; 32],
        source: Source,
        admission: Admission,
        reasons: Reasons,
    },
}

impl Entry {
    /// The device the entry is about.
    pub fn device(&self) -> &[u8; 32] {
        match self {
            Self::Observed { device, .. }
            | Self::Decided { device, .. }
            | Self::Granted { device, .. }
            | Self::Witnessed { device, .. }
            | Self::Quarantined { device, .. }
            | Self::Revoked { device, .. }
            | Self::Released { device, .. }
            | Self::Pinned { device, .. }
            | Self::Anchored { device, .. }
            | Self::Compact { device, .. } => device,
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub index: u64,
    /// Digest of the previous record's stored bytes (zeros for the first).
    pub prev: [u8; 32],
    pub time_ms: u64,
    pub entry: Entry,
}

/// The digest of a record's stored bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT);
    h.update(bytes);
    *h.finalize().as_bytes()
}

/// Why a lineage does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineageError {
    #[error("record {0} does not decode")]
    Decode(u64),
    #[error("record stored at {stored} says it is index {claimed}")]
    Index { stored: u64, claimed: u64 },
    #[error("record {0} does not link to the digest of record {prev}", prev = .0.saturating_sub(1))]
    Link(u64),
    #[error("the log ends at {found} records but its committed head says {expected}")]
    Truncated { expected: u64, found: u64 },
    #[error("the last record's digest differs from the committed head")]
    Head,
}

/// A streaming verifier: push stored records in index order, then [`Chain::finish`].
#[derive(Debug, Default)]
pub struct Chain {
    prev: [u8; 32],
    count: u64,
}

impl Chain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next stored record.
    pub fn push(&mut self, stored: u64, bytes: &[u8]) -> Result<(), LineageError> {
        let record: Record =
            postcard::from_bytes(bytes).map_err(|_| LineageError::Decode(stored))?;
        if record.index != stored || stored != self.count {
            return Err(LineageError::Index {
                stored,
                claimed: record.index,
            });
        }
        if record.prev != self.prev {
            return Err(LineageError::Link(stored));
        }
        self.prev = digest(bytes);
        self.count += 1;
        Ok(())
    }

    /// Checks the end of the log against the committed head `(next_index, last_digest)`.
    pub fn finish(self, head: (u64, [u8; 32])) -> Result<u64, LineageError> {
        if self.count != head.0 {
            return Err(LineageError::Truncated {
                expected: head.0,
                found: self.count,
            });
        }
        if self.prev != head.1 {
            return Err(LineageError::Head);
        }
        Ok(self.count)
    }
}

/// Verifies stored records in index order against the committed head
/// `(next_index, last_digest)`. Returns the number of records.
pub fn verify<I>(records: I, head: (u64, [u8; 32])) -> Result<u64, LineageError>
where
    I: IntoIterator<Item = (u64, Vec<u8>)>,
{
    let mut chain = Chain::new();
    for (stored, bytes) in records {
        chain.push(stored, &bytes)?;
    }
    chain.finish(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Stored = Vec<(u64, Vec<u8>)>;

    fn chain(n: u64) -> (Stored, (u64, [u8; 32])) {
        let mut prev = [0u8; 32];
        let mut out = Vec::new();
        for i in 0..n {
            let r = Record {
                index: i,
                prev,
                time_ms: i,
                entry: Entry::Released {
                    device: [i as u8; 32],
                    note: String::new(),
                },
            };
            let bytes = postcard::to_allocvec(&r).unwrap();
            prev = digest(&bytes);
            out.push((i, bytes));
        }
        (out, (n, prev))
    }

    #[test]
    fn verifies_and_catches_tampering() {
        let (recs, head) = chain(5);
        assert_eq!(verify(recs.clone(), head), Ok(5));
        let mut t = recs.clone();
        t.pop();
        assert!(matches!(
            verify(t, head),
            Err(LineageError::Truncated { .. })
        ));
        let mut e = recs.clone();
        let last = e[2].1.len() - 1;
        e[2].1[last] ^= 1;
        assert!(verify(e, head).is_err());
        let mut r = recs;
        r.swap(1, 2);
        assert!(verify(r, head).is_err());
    }
}
