//! Suite 2 on the node: compact, hash-only attestations (issue 8, docs/compact-suite.md).
//!
//! - [`chain`]: device-side traversal of a 2^16 hash chain in 1.3 KiB (checkpoints).
//! - [`device`]: one MAC'd frame per interval, delayed key disclosure, renewal.
//! - [`persist`]: the device bound to storage, persist before transmit.
//! - [`verifier`] (alloc): buffering until disclosure, the security condition, lost
//!   frames bridged by hashing forward, renewals, divergence detection.
//! - [`verify_proof`]: the stateless check of a suite-2 divergence proof.
//!
//! Routed inside the one verifier by `verifier::compact`; decided by the trust engine
//! (`trust::Engine::handle_compact`, `handle_compact_proof`); run by the testnet
//! (`--suite compact`) and the firmware (feature `compact`). What each integration
//! covers and leaves out: docs/compact-suite.md, "Integration".

pub mod chain;
pub mod device;
pub mod persist;
#[cfg(feature = "alloc")]
pub mod verifier;

#[cfg(feature = "alloc")]
use slope_proto::compact::Dating;
use slope_proto::compact::{CompactProof, Divergence, ProofError};

#[cfg(feature = "alloc")]
use crate::trust::Zone;

/// Decodes and checks a suite-2 divergence proof with no other state, under the clock
/// bound `max_skew_ms` of the security condition. This checks the cryptography and that
/// every receipt is in time, not whose word dates the frames: a checker that acts on a
/// proof uses [`dated_enough`] (the trust engine does).
pub fn verify_proof(bytes: &[u8], max_skew_ms: u64) -> Result<Divergence, ProofError> {
    CompactProof::decode(bytes)?.verify(max_skew_ms)
}

/// How much earlier than its own reception a gateway may date a suite-2 frame relayed
/// to it on a listed witness's word (the first gateway's timestamp receipt). Gossip
/// reaches every gateway in well under a second, so 2 s keeps honest frames dated by
/// their first reception, and bounds what a lying witness can move: a frame it made
/// after the key's disclosure stays late, since the security condition holds when
/// `max_skew_ms ≥ δ_dev + δ_gw + RELAY_BACKDATE_MS` (10 s by default; docs/compact-suite.md
/// §3).
pub const RELAY_BACKDATE_MS: u64 = 2_000;

/// Trust zones whose witnesses must date each frame (and renewal) of a suite-2 proof
/// before a checker acts on it, unless the checker dated the frame itself.
///
/// Why: a suite-2 frame's MAC proves nothing once its key is public, so a proof rests on
/// receipts saying each frame arrived before that; a single witness that back-dates a
/// receipt could make a second frame and frame an honest device. Zones are what
/// "independent" means for witnesses (`trust::zone`): with two, one operator's rogue
/// gateway (or all of one operator's gateways) cannot frame anybody; the price is that
/// a clone heard only inside one zone is proven only to the gateways that dated both
/// frames themselves (docs/compact-suite.md §5).
pub const DATING_ZONES: usize = 2;

/// Whether `dating` is enough to act on: one of its witnesses is the checker itself
/// (`own`: it dated the frame with its own clock), or the witnesses `zone_of` knows as
/// registered and active span [`DATING_ZONES`] zones. A witness with no zone
/// (`Zone::NONE`) counts as a zone of its own: with no zones assigned, two distinct
/// registered witnesses are needed.
#[cfg(feature = "alloc")]
pub fn dated_enough(
    dating: &Dating,
    own: Option<&[u8; 32]>,
    zone_of: impl Fn(&[u8; 32]) -> Option<Zone>,
) -> bool {
    if own.is_some_and(|o| dating.witnesses().contains(o)) {
        return true;
    }
    #[derive(PartialEq)]
    enum Independent {
        Zone(Zone),
        Alone([u8; 32]),
    }
    let mut seen: [Option<Independent>; slope_proto::compact::params::MAX_DATING] =
        Default::default();
    let mut n = 0;
    for w in dating.witnesses() {
        let Some(zone) = zone_of(w) else { continue };
        let id = if zone == Zone::NONE {
            Independent::Alone(*w)
        } else {
            Independent::Zone(zone)
        };
        if !seen[..n].iter().any(|s| s.as_ref() == Some(&id)) {
            if let Some(slot) = seen.get_mut(n) {
                *slot = Some(id);
                n += 1;
            }
        }
    }
    n >= DATING_ZONES
}
