//! Every bound of the wire format, in one place, each with the reason for its value.

/// Largest frame of any on-air message (inception, rotation, interaction, receipt).
/// LoRa's PHY payload is at most 255 bytes; Slope's radio framing takes 3 of them.
pub const MAX_FRAME: usize = 252;

/// Largest application payload in a routine attestation. Identity is Slope's job; a few
/// bytes of sensor reading ride along, a real application payload goes elsewhere.
pub const MAX_PAYLOAD: usize = 16;

/// Largest number of heard neighbours one attestation reports (the device keeps the
/// strongest ones when it heard more).
pub const MAX_HEARD: usize = 4;

/// Largest divergence proof in bytes. A proof carries the device's key history
/// (inception and every rotation up to the key that signed the conflicting events);
/// 64 KiB holds about 350 rotations. Proofs travel over libp2p, never on air.
pub const MAX_PROOF: usize = 65_536;

/// Largest number of entries in one batched witness receipt
/// ([`crate::batch::ReceiptBatch`]). 256 entries is a few seconds of a busy gateway's
/// receptions; the figure is a trade between one signature's cost spread over many
/// receipts and the latency of waiting for a batch to fill.
pub const MAX_BATCH_ENTRIES: usize = 256;

/// Largest encoded size of one batch entry: short id 8, seq ≤ 5, event link 16, and an
/// observation with every varint at its longest (rssi 3, snr 3, freq 5, foff 6, sf 1,
/// time 10).
pub const MAX_BATCH_ENTRY: usize = 57;

/// Largest batched witness receipt in bytes. [`MAX_BATCH_ENTRIES`] entries of
/// [`MAX_BATCH_ENTRY`] bytes plus header, witness, time, count and signature need
/// 14 678 bytes; 16 KiB leaves room and stays far below a gossipsub message (64 KiB).
/// Batches travel over libp2p, never on air.
pub const MAX_RECEIPT_BATCH: usize = 16_384;

/// Length of an ed25519 signature, appended raw to every signed frame.
pub const SIGNATURE_LEN: usize = 64;

/// Length of the envelope header: version, suite, kind.
pub const HEADER_LEN: usize = 3;
