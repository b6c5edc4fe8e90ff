//! The sync protocol (`/slope/sync/1`): peers exchange compact summaries (device → head
//! position, digest prefix) and fetch exactly what they lack. Comparing a summary with
//! our own state is also a divergence check: the same position with another digest
//! means one of the two gateways holds the other branch of a fork, so we fetch it and
//! let the verifier produce the proof.
//!
//! Bounds: a summary page carries at most [`MAX_SUMMARY`] entries; a fetch answers at
//! most [`MAX_FETCH`] frames; requests and responses are size-capped by the codec.

use serde::{Deserialize, Serialize};

/// Entries per summary page, at most.
pub const MAX_SUMMARY: usize = 1024;
/// Frames per fetch response, at most.
pub const MAX_FETCH: usize = 256;
/// Bytes of a request, at most.
pub const MAX_REQUEST: usize = 4 * 1024;
/// Bytes of a response, at most.
pub const MAX_RESPONSE: usize = 2 * 1024 * 1024;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The summary page of devices after `after` (from the first with `None`).
    Summary { after: Option<[u8; 32]>, limit: u16 },
    /// Establishment events, frames above `after` (all retained with `None`) and any
    /// divergence proof of the devices whose id starts with `prefix` (8 to 32 bytes).
    Fetch { prefix: Vec<u8>, after: Option<u32> },
}

/// One device in a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub device: [u8; 32],
    pub head: u32,
    /// First 8 bytes of the head's digest.
    pub digest: [u8; 8],
    pub quarantined: bool,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Summary {
        entries: Vec<Entry>,
        more: bool,
    },
    Frames {
        establishments: Vec<Vec<u8>>,
        frames: Vec<Vec<u8>>,
        proofs: Vec<Vec<u8>>,
    },
    /// The request was refused (malformed or over a bound).
    Refused,
}

/// What to do about one entry of a peer's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing: we are level or ahead and consistent.
    None,
    /// Fetch the device's frames above `after` (and its establishments).
    Fetch {
        device: [u8; 32],
        after: Option<u32>,
    },
}

/// Our view of a device for comparison: head position and digest, and the digest we
/// hold at a given position (for a peer that is behind).
pub trait Local {
    fn head(&self, device: &[u8; 32]) -> Option<(u32, [u8; 32], bool)>;
    fn digest_at(&self, device: &[u8; 32], seq: u32) -> Option<[u8; 32]>;
}

/// Compares a peer's entry with our state.
pub fn compare(local: &impl Local, e: &Entry) -> Action {
    let Some((head, digest, quarantined)) = local.head(&e.device) else {
        return Action::Fetch {
            device: e.device,
            after: None,
        };
    };
    if e.quarantined && !quarantined {
        // The peer holds a proof we do not: fetch it (it is verified here).
        return Action::Fetch {
            device: e.device,
            after: Some(head),
        };
    }
    if e.head > head {
        return Action::Fetch {
            device: e.device,
            after: Some(head),
        };
    }
    let ours = if e.head == head {
        Some(digest)
    } else {
        local.digest_at(&e.device, e.head)
    };
    match ours {
        Some(d) if d[..8] != e.digest => Action::Fetch {
            // A fork candidate: fetch the peer's branch from the position before.
            device: e.device,
            after: e.head.checked_sub(1),
        },
        _ => Action::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct M(HashMap<[u8; 32], (u32, [u8; 32])>);
    impl Local for M {
        fn head(&self, d: &[u8; 32]) -> Option<(u32, [u8; 32], bool)> {
            self.0.get(d).map(|(s, g)| (*s, *g, false))
        }
        fn digest_at(&self, d: &[u8; 32], seq: u32) -> Option<[u8; 32]> {
            self.0.get(d).filter(|(s, _)| *s == seq).map(|(_, g)| *g)
        }
    }

    fn entry(head: u32, digest: u8) -> Entry {
        Entry {
            device: [1; 32],
            head,
            digest: [digest; 8],
            quarantined: false,
        }
    }

    #[test]
    fn compare_cases() {
        let m = M([([1; 32], (5, [7; 32]))].into_iter().collect());
        assert_eq!(compare(&m, &entry(5, 7)), Action::None);
        assert_eq!(
            compare(&m, &entry(6, 0)),
            Action::Fetch {
                device: [1; 32],
                after: Some(5)
            }
        );
        assert_eq!(
            compare(&m, &entry(5, 9)),
            Action::Fetch {
                device: [1; 32],
                after: Some(4)
            },
            "same position, other digest: a fork candidate"
        );
        let empty = M(HashMap::new());
        assert_eq!(
            compare(&empty, &entry(1, 1)),
            Action::Fetch {
                device: [1; 32],
                after: None
            }
        );
    }
}
