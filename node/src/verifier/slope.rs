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
        slope_proto::crypto::verifying_key(&self.key_bytes_of(epoch)?).ok()
    }

    /// The key of `epoch` as bytes, when known (nothing parsed: what a check answered
    /// ahead, by a batch or the memo, is compared with).
    pub fn key_bytes_of(&self, epoch: u32) -> Option<[u8; 32]> {
        match epoch {
            0 => Some(self.inception.key),
            e => self.rotations.get(e as usize - 1).map(|r| r.key),
        }
    }

    /// The next-key commitment made by the establishment event of `epoch`.
    pub fn commitment_of(&self, epoch: u32) -> Option<Digest> {
        match epoch {
            0 => Some(self.inception.next_key),
            e => self.rotations.get(e as usize - 1).map(|r| r.next_key),
        }
    }

    /// The held entries at position `seq` (more than one only on a divergence): the
    /// window is sorted by position, so a binary search, not a scan of every entry.
    pub fn at(&self, seq: u32) -> &[Held] {
        let lo = self.window.partition_point(|h| h.seq < seq);
        let rest = self.window.get(lo..).unwrap_or_default();
        let n = rest.partition_point(|h| h.seq == seq);
        rest.get(..n).unwrap_or_default()
    }

    /// The highest held position.
    pub fn head(&self) -> Option<&Held> {
        self.window.last()
    }

    /// Inserts `event`'s position, keeping the window sorted and at most `cap` entries
    /// (evicting the lowest positions).
    pub fn insert(&mut self, event: &Event, digest: Digest, cap: usize) {
        insert_into(
            &mut self.window,
            (event.seq(), digest, event.prev()),
            event.frame(),
            cap,
        );
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

/// Inserts a position (seq, digest, prev) and its frame into a window sorted by (seq,
/// digest), keeping at most `cap` entries (evicting the lowest positions). In the steady
/// state (a full window, a position above its lowest) the evicted entry is rewritten in
/// place: the entries below the new one shift down by one and the evicted frame's buffer
/// is reused when the lengths match, so nothing is allocated or freed.
fn insert_into(
    window: &mut Vec<Held>,
    (seq, digest, prev): (u32, Digest, Option<LinkDigest>),
    frame: &[u8],
    cap: usize,
) {
    let cap = cap.max(1);
    let at = window.partition_point(|h| (h.seq, h.digest) < (seq, digest));
    if window.len() == cap {
        // At 0 it would be the lowest entry, inserted and evicted at once.
        if let Some(last) = at.checked_sub(1) {
            window[..at].rotate_left(1);
            let h = &mut window[last];
            (h.seq, h.digest, h.prev) = (seq, digest, prev);
            if h.frame.len() == frame.len() {
                h.frame.copy_from_slice(frame);
            } else {
                h.frame = frame.into();
            }
        }
        return;
    }
    window.insert(
        at,
        Held {
            seq,
            digest,
            prev,
            frame: frame.into(),
        },
    );
    while window.len() > cap {
        window.remove(0);
    }
}

#[cfg(test)]
mod tests {
    //! The in-place insertion against the obvious one (insert, then drop the lowest
    //! entries past the bound): the same window for any sequence of positions, including
    //! repeated positions (a diverged device), positions below the window and frames of
    //! other lengths.

    use super::*;
    use proptest::prelude::*;

    fn obvious(window: &mut Vec<Held>, held: Held, cap: usize) {
        let at = window.partition_point(|h| (h.seq, h.digest) < (held.seq, held.digest));
        window.insert(at, held);
        while window.len() > cap.max(1) {
            window.remove(0);
        }
    }

    proptest! {
        #[test]
        fn in_place_insertion_is_the_obvious_one(
            cap in 0usize..6,
            positions in proptest::collection::vec((0u32..24, 0u8..3, 1usize..5), 0..60),
        ) {
            let mut fast = Vec::new();
            let mut plain = Vec::new();
            for (seq, d, len) in positions {
                let digest = Digest([d; 32]);
                let prev = (seq > 0).then_some(LinkDigest([d ^ 1; 16]));
                let frame: Vec<u8> = (0..len).map(|i| (seq as u8) ^ d ^ i as u8).collect();
                insert_into(&mut fast, (seq, digest, prev), &frame, cap);
                let held = Held { seq, digest, prev, frame: frame.into() };
                obvious(&mut plain, held, cap);
                prop_assert_eq!(&fast, &plain);
            }
        }
    }
}
