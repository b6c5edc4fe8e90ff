//! Suite 2 (compact, hash-only frames; docs/compact-suite.md) in the pipeline: the
//! gossip form of a compact frame, the receive time the security condition is checked
//! with, and the verify-stage routing. The commit-stage actions are in
//! `commit::compact`.
//!
//! **Receive time.** The verifier keeps a frame for interval `i` only if it was
//! received before `K(i)` could be public (`rx_ms + max_skew < start(i + d)`). A frame
//! heard on this gateway's radio is stamped with this gateway's clock when its batch is
//! formed (never earlier than its reception: a queue delay can only make the check
//! stricter). A frame relayed over gossip travels as a *stamped frame*: the first
//! gateway's timestamp receipt (suite-2 kind 3, signed at reception, after the frame
//! was committed there) followed by the frame. The receipt's time is used only when
//! its signer is a listed witness (`[[trust.witnesses]]`), never later than this
//! gateway's own clock and never more than [`RELAY_BACKDATE_MS`] earlier; from anyone
//! else, this gateway's own reception time is used — it can only make a frame late,
//! never admit one whose key was already public. The lower bound is what keeps a
//! rogue listed witness from back-dating a frame it made after the key's disclosure
//! into this gateway's verifier (docs/compact-suite.md §3, §5): the security condition
//! then holds when `max_skew_ms ≥ δ_dev + δ_gw + RELAY_BACKDATE_MS`.
//!
//! **Gossip form** (topic [`crate::net::topics::COMPACT`]): an anchor is its frame
//! (`01 02 00 …`); an attestation or renewal is `receipt ‖ frame` (`01 02 03 …`), the
//! receipt's length given by its own encoding ([`split_stamped`]).

use slope_proto::compact::params::{MAX_COMPACT_FRAME, MAX_RECEIPT};
use slope_proto::compact::{Kind, Receipt, SUITE, crypto};
use slope_proto::{DeviceId, Observation};

use super::{Input, Verdict};
use crate::lineage::Source;
use crate::pipeline::shards::Shards;
use crate::store::{DeviceRecord, Store, StoreError};

/// Largest stamped frame (receipt ‖ frame).
pub const MAX_STAMPED: usize = MAX_RECEIPT + MAX_COMPACT_FRAME;

/// Largest anchor frame accepted from gossip.
pub const MAX_ANCHOR: usize = 256;

/// Whether `frame` is a suite-2 frame (envelope `01 02`), stamped or not.
pub fn is_compact(frame: &[u8]) -> bool {
    frame.get(1) == Some(&SUITE)
}

/// The gossip message for a compact frame heard here: this gateway's receipt, then
/// the frame.
pub fn stamped_message(receipt: &[u8], frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(receipt.len() + frame.len());
    out.extend_from_slice(receipt);
    out.extend_from_slice(frame);
    out
}

/// Splits a stamped frame into its receipt (decoded, signature NOT checked) and the
/// frame. `None` unless it is a well-formed receipt followed by a suite-2 attestation
/// or renewal header. Never panics.
pub fn split_stamped(bytes: &[u8]) -> Option<(Receipt, &[u8])> {
    // header (3) ‖ witness (32) ‖ frame digest (32) ‖ varint rx_ms ‖ signature (64)
    const FIXED: usize = 3 + 32 + 32;
    let varint = bytes
        .get(FIXED..)?
        .iter()
        .take(10)
        .position(|b| b & 0x80 == 0)?
        + 1;
    let end = FIXED + varint + slope_proto::limits::SIGNATURE_LEN;
    let receipt = Receipt::decode(bytes.get(..end)?).ok()?;
    let frame = bytes.get(end..)?;
    match slope_proto::compact::frame::parse_header(frame).ok()? {
        Kind::Attestation | Kind::Renewal => Some((receipt, frame)),
        _ => None,
    }
}

pub use slope_node::compact::RELAY_BACKDATE_MS;

/// What a compact gossip message is, once its form and receipt are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The receive time to check the frame with (see the module doc).
    pub rx_ms: u64,
    /// Whether the receipt's time was taken (its signer is listed).
    pub stamped_by_listed: bool,
}

/// Checks a message from the compact gossip topic before it enters the pipeline: form,
/// size, and for a stamped frame the receipt's signature and that it names this frame.
/// `Err` is the gossip verdict (malformed or badly signed: the sender is to blame).
pub fn admit(bytes: &[u8], listed: &[([u8; 32], u16)], now: u64) -> Result<Admitted, Verdict> {
    match slope_proto::compact::frame::parse_header(bytes) {
        Ok(Kind::Anchor) if bytes.len() <= MAX_ANCHOR => Ok(Admitted {
            rx_ms: now,
            stamped_by_listed: false,
        }),
        Ok(Kind::Receipt) if bytes.len() <= MAX_STAMPED => {
            let (receipt, frame) = split_stamped(bytes).ok_or(Verdict::Reject)?;
            if receipt.verify().is_err() || receipt.body().frame != crypto::frame_digest(frame) {
                return Err(Verdict::Reject);
            }
            let stamp = receipt.body();
            let listed = listed.iter().any(|(k, _)| *k == stamp.witness);
            Ok(Admitted {
                rx_ms: if listed {
                    stamp
                        .rx_ms
                        .clamp(now.saturating_sub(RELAY_BACKDATE_MS), now)
                } else {
                    now
                },
                stamped_by_listed: listed,
            })
        }
        _ => Err(Verdict::Reject),
    }
}

/// The receive time a compact input is checked with: this gateway's batch time for
/// its own radio, else the time [`admit`] chose (carried in the input's observation).
pub(super) fn rx_ms<T>(input: &Input<T>, now: u64) -> u64 {
    match input.source {
        Source::Radio => now,
        _ => input.rx.time_ms,
    }
}

/// The frame of a compact input: a stamped frame (from the network only) without its
/// receipt; `None` for a stamped form that does not split.
pub(super) fn frame_of<T>(input: &Input<T>) -> Option<&[u8]> {
    let bytes = input.frame.as_slice();
    if input.source != Source::Radio && bytes.get(2) == Some(&(Kind::Receipt as u8)) {
        return split_stamped(bytes).map(|(_, f)| f);
    }
    Some(bytes)
}

/// Rebuilds the suite-2 state of a page of devices after their suite-1 state: each
/// device's anchors, then its stored frames in interval order, each with the receive
/// time it was first checked with (so every check comes out as it did; the results are
/// drained and dropped by the caller, as they were acted on before).
pub(super) fn replay(
    verifier: &mut Shards,
    store: &Store,
    page: &[(DeviceId, DeviceRecord)],
) -> Result<(), StoreError> {
    for (id, _) in page {
        let anchors = store.compact_anchors(id)?;
        if anchors.is_empty() {
            continue;
        }
        for a in anchors {
            verifier.handle_compact(0, &a, Observation::relayed(0));
        }
        for f in store.compact_frames(id)? {
            verifier.handle_compact(f.rx_ms, &f.frame, f.rx);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn frame() -> Vec<u8> {
        // A well-formed attestation header is enough for splitting.
        let mut f = vec![1, SUITE, Kind::Attestation as u8];
        f.extend_from_slice(&[7u8; 40]);
        f
    }

    #[test]
    fn stamped_frames_split_back_and_check() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let f = frame();
        for rx_ms in [0u64, 127, 128, 1_700_000_000_000, u64::MAX] {
            let r = Receipt::sign(&key, crypto::frame_digest(&f), rx_ms).unwrap();
            let m = stamped_message(r.frame(), &f);
            let (back, rest) = split_stamped(&m).expect("splits");
            assert_eq!(back, r);
            assert_eq!(rest, &f[..]);
            let listed = [(key.verifying_key().to_bytes(), 0u16)];
            let a = admit(&m, &listed, 1_000).expect("admitted");
            assert_eq!(a.rx_ms, rx_ms.min(1_000));
            assert!(a.stamped_by_listed);
            // Unlisted signer: our own time.
            assert_eq!(admit(&m, &[], 1_000).unwrap().rx_ms, 1_000);
        }
    }

    /// A listed witness can date a relayed frame earlier than its arrival here by at
    /// most `RELAY_BACKDATE_MS` (a rogue witness's back-dated receipt of a frame made
    /// after the key's disclosure stays late).
    #[test]
    fn a_listed_witness_back_dates_by_at_most_the_relay_allowance() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let listed = [(key.verifying_key().to_bytes(), 0u16)];
        let f = frame();
        let now = 1_700_000_000_000u64;
        for (stamp, want) in [
            (now - 500, now - 500),
            (now - RELAY_BACKDATE_MS, now - RELAY_BACKDATE_MS),
            (now - 3_600_000, now - RELAY_BACKDATE_MS),
            (0, now - RELAY_BACKDATE_MS),
            (now + 9, now),
        ] {
            let r = Receipt::sign(&key, crypto::frame_digest(&f), stamp).unwrap();
            let a = admit(&stamped_message(r.frame(), &f), &listed, now).expect("admitted");
            assert_eq!(a.rx_ms, want, "stamp {stamp}");
        }
    }

    #[test]
    fn a_receipt_for_another_frame_or_a_broken_signature_is_rejected() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let f = frame();
        let r = Receipt::sign(&key, [0; 32], 10).unwrap();
        assert_eq!(
            admit(&stamped_message(r.frame(), &f), &[], 10),
            Err(Verdict::Reject)
        );
        let r = Receipt::sign(&key, crypto::frame_digest(&f), 10).unwrap();
        let mut m = stamped_message(r.frame(), &f);
        let sig = r.frame().len() - 1;
        m[sig] ^= 1;
        assert_eq!(admit(&m, &[], 10), Err(Verdict::Reject));
    }

    #[test]
    fn truncations_never_split_or_panic() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let f = frame();
        let r = Receipt::sign(&key, crypto::frame_digest(&f), 99).unwrap();
        let m = stamped_message(r.frame(), &f);
        for n in 0..r.frame().len() + 3 {
            assert!(split_stamped(&m[..n]).is_none(), "{n}");
            assert!(admit(&m[..n], &[], 1).is_err());
        }
    }

    proptest::proptest! {
        /// Any bytes: splitting and admission never panic; what splits re-joins to its
        /// input; an unlisted signer never sets the receive time.
        #[test]
        fn any_bytes_split_and_admit_without_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Some((r, f)) = split_stamped(&data) {
                proptest::prop_assert_eq!(stamped_message(r.frame(), f), data.clone());
            }
            if let Ok(a) = admit(&data, &[], 42) {
                proptest::prop_assert_eq!(a.rx_ms, 42);
            }
        }

        /// A stamped frame with any receive time and any frame body splits back, and a
        /// bit flip anywhere in its receipt is rejected.
        #[test]
        fn stamped_frames_round_trip_and_flips_are_rejected(
            rx_ms in proptest::num::u64::ANY,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            flip in proptest::num::usize::ANY,
        ) {
            let key = SigningKey::from_bytes(&[6; 32]);
            let mut f = vec![1, SUITE, Kind::Attestation as u8];
            f.extend_from_slice(&body);
            let r = Receipt::sign(&key, crypto::frame_digest(&f), rx_ms).unwrap();
            let m = stamped_message(r.frame(), &f);
            let (back, rest) = split_stamped(&m).unwrap();
            proptest::prop_assert_eq!(back, r.clone());
            proptest::prop_assert_eq!(rest, &f[..]);
            let mut bad = m.clone();
            let i = 3 + flip % (r.frame().len() - 3);
            bad[i] ^= 1;
            proptest::prop_assert!(admit(&bad, &[], 7).is_err());
        }
    }
}
