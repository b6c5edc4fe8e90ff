//! The gossipsub topics.

use libp2p::gossipsub::IdentTopic;

/// Raw attestation frames heard on some gateway's radio.
pub const ATTESTATIONS: &str = "/slope/1/attestations";
/// Witness receipts: the witness's public key, then the signed receipt.
pub const RECEIPTS: &str = "/slope/1/receipts";
/// Encoded divergence proofs.
pub const DIVERGENCES: &str = "/slope/1/divergences";

/// Suite-2 (compact) messages: anchors, and stamped frames (the first gateway's
/// timestamp receipt, then the frame; see `crate::pipeline::compact`).
pub const COMPACT: &str = "/slope/1/compact";

pub fn attestations() -> IdentTopic {
    IdentTopic::new(ATTESTATIONS)
}
pub fn receipts() -> IdentTopic {
    IdentTopic::new(RECEIPTS)
}
pub fn divergences() -> IdentTopic {
    IdentTopic::new(DIVERGENCES)
}
pub fn compact() -> IdentTopic {
    IdentTopic::new(COMPACT)
}
pub fn all() -> [IdentTopic; 4] {
    [attestations(), receipts(), divergences(), compact()]
}
