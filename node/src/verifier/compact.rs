//! Suite 2 inside the one verifier: frames whose envelope suite byte is 2 are routed
//! here before the suite-1 decoder (which refuses them with `UnknownSuite(2)`).
//!
//! - An anchor (kind 0) is checked against the device's suite-1 key of the anchor's
//!   epoch, taken from this verifier's key history (so suite 2 inherits suite 1's
//!   identity, and nothing else supplies keys). Only the current epoch's key is
//!   accepted: a rotation retires the key that signed an older anchor, and a device
//!   re-anchors after rotating (`compact::verifier::Verifier::add_anchor`: a later
//!   epoch, the same schedule, a chain after every interval used). An anchor for a
//!   device whose inception or rotation has not arrived is refused with
//!   [`VerifyError::UnknownKey`] (not escrowed; the device repeats its anchor, and the
//!   caller may retry it once the establishment arrives).
//! - Attestations and renewals (kinds 1, 2) go to [`crate::compact::verifier`]. The
//!   immediate outcome is [`Outcome::Frame`]; results come later, when a following
//!   frame discloses the key, through [`super::Verifier::poll_outcome`] as
//!   [`Outcome::Event`] (a verified [`VerifiedCompact`], a renewal, a
//!   [`Conflict`] — a suite-2 divergence — or a bad MAC).
//!
//! Bounds (docs/compact-suite.md, "Bounds"): compact state exists only for devices
//! whose anchor verified under a key this verifier holds, so the device bound of
//! suite 1 bounds it too; frames waiting for their key are bounded per device and in
//! total (new frames refused at either bound, `Reject::PendingFull`); results waiting
//! to be polled are bounded (oldest dropped, counted).

use slope_proto::DeviceId;
use slope_proto::compact::{self as c2, Kind};

pub use crate::compact::verifier::{
    AnchorError, Config, Conflict, Event, Outcome as FrameOutcome, Received, Reject,
    VerifiedCompact,
};

use super::VerifyError;

/// What the one verifier says about a suite-2 frame (inside
/// [`super::Outcome::Compact`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// An anchor verified under the device's current suite-1 key: its chain is tracked
    /// (also returned when the same anchor arrives again).
    Anchored {
        device: DeviceId,
        first: u32,
        len: u32,
    },
    /// An attestation or renewal was accepted for checking (buffered until its key is
    /// disclosed, checked at once, or a duplicate). Never a verdict on its MAC.
    Frame(FrameOutcome),
    /// A result of the checks, from [`super::Verifier::poll_outcome`] only.
    Event(Event),
}

/// Whether a frame speaks suite 2 (byte 1 of the envelope header).
pub(crate) fn is_compact(frame: &[u8]) -> bool {
    frame.get(1) == Some(&c2::SUITE)
}

/// The header's kind byte, when the frame is long enough to have one.
pub(crate) fn kind(frame: &[u8]) -> Option<Kind> {
    c2::frame::parse_header(frame).ok()
}

/// Maps a refused anchor to the verifier's error.
pub(crate) fn anchor_error(e: AnchorError) -> VerifyError {
    match e {
        AnchorError::Decode(d) => VerifyError::Decode(d),
        AnchorError::Signature(_) => VerifyError::BadSignature,
        other => VerifyError::Anchor(other),
    }
}
