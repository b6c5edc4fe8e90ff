//! What the verifier holds for one device: its key history, its current key, and a
//! window of the most recent positions with their frames.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ed25519_dalek::VerifyingKey;
use slope_proto::{Digest, Event, Inception, LinkDigest, Rotation, Signed};

/// An establishment event as the verifier keeps it: the frame (for proofs and for peers
/// that need it) and the three fields the key history uses. A third of the size of a
/// decoded `Signed<_>`, which reserves a full radio frame inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Establishment {
    pub frame: Box<[u8]>,
    pub seq: u32,
    pub key: [u8; 32],
    pub next_key: Digest,
}

impl Establishment {
    pub fn inception(e: &Signed<Inception>) -> Self {
        Self {
            frame: e.frame().into(),
            seq: 0,
            key: e.body().key,
            next_key: e.body().next_key,
        }
    }
    pub fn rotation(e: &Signed<Rotation>) -> Self {
        Self {
            frame: e.frame().into(),
            seq: e.body().seq,
            key: e.body().key,
            next_key: e.body().next_key,
        }
    }
}

/// One held event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub seq: u32,
    pub digest: Digest,
    pub prev: Option<LinkDigest>,
    pub frame: Box<[u8]>,
}

/// The verifier's record of one device.
pub(crate) struct DeviceSlope {
    pub inception: Establishment,
    /// `rotations[i]` establishes epoch `i + 1`.
    pub rotations: Vec<Establishment>,
    /// The key of the current epoch, parsed once.
    pub key: VerifyingKey,
    /// The most recent positions, sorted by (seq, digest); two entries share a seq only
    /// when the device has diverged.
    pub window: Vec<Held>,
    /// The lowest-position divergence proof found so far (canonical: the same set of
    /// events gives the same proof whatever the arrival order).
    pub diverged: Option<(u32, Box<[u8]>)>,
}

impl DeviceSlope {
    pub fn epoch(&self) -> u32 {
        self.rotations.len() as u32
    }

    /// Position of the establishment event of `epoch`.
    pub fn established_at(&self, epoch: u32) -> Option<u32> {
        match epoch {
            0 => Some(0),
            e => self.rotations.get(e as usize - 1).map(|r| r.seq),
        }
    }

    /// The key of `epoch`, when known.
    pub fn key_of(&self, epoch: u32) -> Option<VerifyingKey> {
        if epoch == self.epoch() {
            return Some(self.key);
        }
        let bytes = match epoch {
            0 => &self.inception.key,
            e => &self.rotations.get(e as usize - 1)?.key,
        };
        slope_proto::crypto::verifying_key(bytes).ok()
    }

    /// The next-key commitment made by the establishment event of `epoch`.
    pub fn commitment_of(&self, epoch: u32) -> Option<Digest> {
        match epoch {
            0 => Some(self.inception.next_key),
            e => self.rotations.get(e as usize - 1).map(|r| r.next_key),
        }
    }

    /// The highest held position.
    pub fn head(&self) -> Option<&Held> {
        self.window.last()
    }

    /// Inserts, keeping the window sorted and at most `cap` entries (evicting the
    /// lowest positions).
    pub fn insert(&mut self, held: Held, cap: usize) {
        let at = self
            .window
            .partition_point(|h| (h.seq, h.digest) < (held.seq, held.digest));
        self.window.insert(at, held);
        while self.window.len() > cap.max(1) {
            self.window.remove(0);
        }
    }

    /// The rotation frames needed to prove events up to `epoch`.
    pub fn rotation_frames(&self, epoch: u32) -> Vec<&[u8]> {
        self.rotations
            .iter()
            .take(epoch as usize)
            .map(|r| &r.frame[..])
            .collect()
    }

    /// Records a proof if it is lower (or, at the same position, bytewise smaller) than
    /// the one held.
    pub fn record_divergence(&mut self, seq: u32, proof: &[u8]) {
        let better = match &self.diverged {
            None => true,
            Some((s, p)) => (seq, proof) < (*s, &p[..]),
        };
        if better {
            self.diverged = Some((seq, proof.into()));
        }
    }
}

/// A decoded event's position facts, for classification.
pub(crate) fn held_of(event: &Event, digest: Digest) -> Held {
    Held {
        seq: event.seq(),
        digest,
        prev: event.prev(),
        frame: event.frame().into(),
    }
}
