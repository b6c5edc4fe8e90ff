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
/// 64 KiB holds [`MAX_EPOCHS`] rotations. Proofs travel over libp2p, never on air.
pub const MAX_PROOF: usize = 65_536;

/// Largest rotation frame: header 3, short id 8, seq ≤ 5, prev 16, epoch ≤ 5, key 32,
/// next key 32, signature 64 (every varint at its longest).
pub const MAX_ROTATION_FRAME: usize = 165;

/// Highest epoch a device's key history may reach: a divergence proof about events of
/// that epoch still fits [`MAX_PROOF`] with every part at its longest (header, an
/// inception and two events of [`MAX_FRAME`] bytes with their 2-byte lengths, the
/// rotation list's 3-byte length, and `MAX_EPOCHS` rotations of
/// [`MAX_ROTATION_FRAME`] bytes with their 1-byte lengths): 390. Verifiers refuse
/// rotations past it (`VerifyError::EpochLimit`), because a clone of a device beyond it
/// could no longer be proven, and so that no device can grow the key history every
/// verifier holds for it without bound. A device stops rotating there and keeps its
/// last key: at its default cadence (a rotation every 96 events, one a day at a 15-minute
/// interval) after about 13 months; at one rotation a week, after 7.5 years.
pub const MAX_EPOCHS: u32 =
    ((MAX_PROOF - HEADER_LEN - 3 * (2 + MAX_FRAME) - 3) / (1 + MAX_ROTATION_FRAME)) as u32;

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
