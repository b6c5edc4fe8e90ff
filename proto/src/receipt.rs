//! Witness receipts: a gateway's signed statement that it received a device's event,
//! with what it observed on the radio. Receipts are the raw material of corroboration
//! (`slope-node`'s trust engine) and of context (per-witness RF profiles).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::envelope::Kind;
use crate::error::{EncodeError, SignatureError};
use crate::ids::{LinkDigest, ShortId, WitnessId};
use crate::signed::{Body, Signed};

/// What the witness observed when it received the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Received signal strength, dBm.
    pub rssi_dbm: i16,
    /// Signal-to-noise ratio in quarter dB (−20 dB is −80).
    pub snr_qdb: i16,
    /// Centre frequency, Hz.
    pub freq_hz: u32,
    /// Frequency offset of the received signal, Hz, when the radio reports it.
    pub foff_hz: Option<i32>,
    /// Spreading factor (5..=12).
    pub sf: u8,
    /// Receive time by the witness's clock, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Observation {
    /// What a gateway passes for an attestation its own radio did not hear (it came by
    /// gossip or sync): no radio figures, frequency 0 (no LoRa channel is at 0 Hz).
    /// The trust engine does not count the gateway's radio as a witness of it.
    pub const fn relayed(time_ms: u64) -> Self {
        Self {
            rssi_dbm: 0,
            snr_qdb: 0,
            freq_hz: 0,
            foff_hz: None,
            sf: 7,
            time_ms,
        }
    }

    /// Whether this stands for no reception by the local radio ([`Self::relayed`]).
    pub const fn is_relayed(&self) -> bool {
        self.freq_hz == 0
    }

    /// Rules of the format that the types alone do not express.
    pub fn check(&self) -> Result<(), &'static str> {
        if !(5..=12).contains(&self.sf) {
            return Err("spreading factor outside 5..=12");
        }
        Ok(())
    }
}

/// A witness receipt body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub witness: WitnessId,
    pub device: ShortId,
    pub seq: u32,
    /// Link digest of the witnessed event.
    pub event: LinkDigest,
    pub observed: Observation,
}

impl Body for Receipt {
    const KIND: Kind = Kind::Receipt;
    fn check(&self) -> Result<(), &'static str> {
        self.observed.check()
    }
}

impl Signed<Receipt> {
    /// Encodes and signs a receipt with the witness's key. The receipt's `witness` field
    /// must be [`crypto::witness_id`] of that key.
    pub fn witness(body: Receipt, key: &SigningKey) -> Result<Self, EncodeError> {
        if body.witness != crypto::witness_id(key.verifying_key().as_bytes()) {
            return Err(EncodeError::InvalidField(
                "witness id does not match the signing key",
            ));
        }
        Self::sign_with(body, crypto::receipt_message, key)
    }

    /// Checks the receipt's signature under the witness's public key, and that the key
    /// is the one the receipt names.
    pub fn verify_witness(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        if self.body().witness != crypto::witness_id(key.as_bytes()) {
            return Err(SignatureError::BadKey);
        }
        crypto::verify(
            key,
            &crypto::receipt_message(self.signed_bytes()),
            self.signature(),
        )
    }
}
