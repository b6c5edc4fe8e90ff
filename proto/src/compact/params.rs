//! The bounds and default parameters of suite 2, each with its reason
//! (docs/compact-suite.md states the security argument behind the numbers).

/// Length of a chain key in bytes. 128 bits: inverting one salted chain step costs
/// 2^128 hashes classically and 2^64 quantum (Grover) evaluations, and must be done
/// within one disclosure delay to forge anything.
pub const KEY_LEN: usize = 16;

/// Length of the truncated MAC. 64 bits: a forger who does not know the key succeeds
/// with probability 2^-64 per frame, and every try costs a radio frame (≈ 2 s of
/// airtime at SF12) that must reach a gateway before the key is disclosed.
pub const MAC_LEN: usize = 8;

/// Largest chain length an anchor or renewal may announce: 2^16 intervals, 45 days at
/// the default 60 s interval. Bounds the device's traversal memory (two checkpoint
/// levels of 16 and 64 keys) and the verifier's worst-case walk.
pub const MAX_CHAIN: u32 = 1 << 16;

/// Largest disclosure delay, in intervals. A longer delay only adds verification
/// latency; 16 covers any forwarding path that the clock bound allows.
pub const MAX_DELAY: u8 = 16;

/// Shortest interval: 1 s. Shorter intervals would put the disclosure delay within the
/// clock error of an unsynchronised device.
pub const MIN_INTERVAL_MS: u32 = 1_000;

/// Longest interval: one day.
pub const MAX_INTERVAL_MS: u32 = 86_400_000;

/// Largest suite-2 MAC'd frame (attestation with a 16-byte payload: 3 + 8 + 5 + 16 +
/// 1 + 16 + 8 = 57 bytes, rounded up). Anchors (signed, ≈ 106 B) are bounded by
/// [`crate::limits::MAX_FRAME`]; receipts by [`MAX_RECEIPT`]; proofs by
/// [`crate::limits::MAX_PROOF`].
pub const MAX_COMPACT_FRAME: usize = 64;

/// Largest timestamp receipt: 3 + 32 + 32 + 10 + 64 bytes.
pub const MAX_RECEIPT: usize = 141;

/// Most timestamp receipts dating one frame of a divergence proof (distinct witnesses).
/// A proof is as strong as the witnesses dating each frame; a checker wants them from
/// at least two trust zones (docs/compact-suite.md §5), and four leaves room for
/// witnesses the checker does not know without letting a proof grow without bound.
pub const MAX_DATING: usize = 4;

/// Most renewals a divergence proof may walk through: 64 chains, eight years at the
/// default parameters. Beyond that the device re-anchors with a signed anchor.
pub const MAX_PROOF_RENEWALS: usize = 64;

/// Most suite-1 rotations a divergence proof may carry (the key history up to the epoch
/// that signed the anchor).
pub const MAX_PROOF_ROTATIONS: usize = 256;

/// Default interval: 60 s. A battery sensor at SF12 under a 1 % duty cycle sends at most
/// one 50-byte frame every ≈ 230 s, so 60 s intervals waste few keys, and a 2^16 chain
/// lasts 45 days.
pub const DEFAULT_INTERVAL_MS: u32 = 60_000;

/// Default disclosure delay: 2 intervals. A frame sent anywhere in interval i is
/// accepted until the start of interval i + 2, so it has at least one full interval
/// (60 s) for airtime (≤ 2.4 s), forwarding and the clock bound.
pub const DEFAULT_DELAY: u8 = 2;
