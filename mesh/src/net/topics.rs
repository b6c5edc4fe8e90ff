//! The gossipsub topics.

use libp2p::gossipsub::IdentTopic;

/// Raw attestation frames heard on some gateway's radio.
pub const ATTESTATIONS: &str = "/slope/1/attestations";
/// Witness receipts: the witness's public key, then the signed receipt.
pub const RECEIPTS: &str = "/slope/1/receipts";
/// Encoded divergence proofs.
pub const DIVERGENCES: &str = "/slope/1/divergences";

pub fn attestations() -> IdentTopic {
    IdentTopic::new(ATTESTATIONS)
}
pub fn receipts() -> IdentTopic {
    IdentTopic::new(RECEIPTS)
}
pub fn divergences() -> IdentTopic {
    IdentTopic::new(DIVERGENCES)
}
pub fn all() -> [IdentTopic; 3] {
    [attestations(), receipts(), divergences()]
}
