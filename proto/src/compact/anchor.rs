//! The anchor (kind 0): the device's suite-1 key commits to a hash chain and its
//! schedule.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | device | [u8; 8] | short id of the suite-1 device |
//! | epoch | u32 varint | suite-1 key epoch whose key signs this anchor |
//! | first | u32 varint | global interval of the chain's position 1 (≥ 1) |
//! | len | u32 varint | chain length, 1..=[`MAX_CHAIN`] |
//! | anchor | [u8; 16] | K(0) = H^len(K(len)), the chain's public end |
//! | start_ms | u64 varint | start of global interval 1, ms since the Unix epoch |
//! | interval_ms | u32 varint | interval duration |
//! | delay | u8 | disclosure delay d in intervals, 1..=[`MAX_DELAY`] |
//!
//! followed by a 64-byte ed25519 signature over
//! `derive_key("slope v2 compact anchor", device id ‖ header ‖ body)`. The full device id
//! is in the signed message but never on air. Size: about 106 bytes (EU868 DR3+), sent
//! once per identity or re-anchoring; routine frames are attestations.

use ed25519_dalek::{SigningKey, VerifyingKey};
use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::crypto::{self, ChainKey};
use super::frame::{Kind, expect_kind, header};
use super::params::{MAX_CHAIN, MAX_DELAY, MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use crate::codec;
use crate::crypto as c1;
use crate::error::{DecodeError, EncodeError, SignatureError};
use crate::ids::{DeviceId, ShortId};
use crate::limits::{HEADER_LEN, MAX_FRAME, SIGNATURE_LEN};

/// The body of an anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub device: ShortId,
    pub epoch: u32,
    pub first: u32,
    pub len: u32,
    pub anchor: ChainKey,
    pub start_ms: u64,
    pub interval_ms: u32,
    pub delay: u8,
}

impl Anchor {
    fn check(&self) -> Result<(), &'static str> {
        if self.first == 0 {
            return Err("anchor first interval is 0");
        }
        if self.len == 0 || self.len > MAX_CHAIN {
            return Err("anchor chain length out of range");
        }
        if self.first.checked_add(self.len).is_none() {
            return Err("anchor chain overflows the interval counter");
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&self.interval_ms) {
            return Err("anchor interval duration out of range");
        }
        if self.delay == 0 || self.delay > MAX_DELAY {
            return Err("anchor disclosure delay out of range");
        }
        Ok(())
    }

    /// Start of global interval `i` (ms since the Unix epoch), saturating.
    pub fn start_of(&self, interval: u32) -> u64 {
        let k = u64::from(interval.saturating_sub(1));
        self.start_ms
            .saturating_add(k.saturating_mul(u64::from(self.interval_ms)))
    }

    /// The global interval that contains time `t` (0 before interval 1 starts).
    pub fn interval_at(&self, t_ms: u64) -> u32 {
        if t_ms < self.start_ms {
            return 0;
        }
        let k = (t_ms - self.start_ms) / u64::from(self.interval_ms);
        u32::try_from(k.saturating_add(1)).unwrap_or(u32::MAX)
    }

    /// The time from which the key of interval `i` may be public: the start of
    /// interval `i + delay` (the device discloses it no earlier).
    pub fn disclosure_of(&self, interval: u32) -> u64 {
        self.start_of(interval.saturating_add(u32::from(self.delay)))
    }

    /// The security condition: a frame for interval `i` received at `rx_ms` (gateway
    /// clock) is acceptable only if `rx_ms + max_skew_ms < start(i + delay)`, i.e. it
    /// arrived before anyone but the device could know the key of interval `i`, even if
    /// the clocks of device and gateway are off by `max_skew_ms` together.
    pub fn in_time(&self, interval: u32, rx_ms: u64, max_skew_ms: u64) -> bool {
        rx_ms.saturating_add(max_skew_ms) < self.disclosure_of(interval)
    }

    /// The last global interval of this chain.
    pub fn last(&self) -> u32 {
        self.first + self.len - 1
    }
}

/// A decoded anchor with its exact frame. The signature is checked by
/// [`SignedAnchor::verify`] against the device's suite-1 key of `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAnchor {
    body: Anchor,
    frame: Vec<u8, MAX_FRAME>,
}

impl SignedAnchor {
    /// Decodes an anchor frame canonically. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        expect_kind(bytes, Kind::Anchor)?;
        if bytes.len() > MAX_FRAME {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max: MAX_FRAME,
            });
        }
        let Some(body_end) = bytes.len().checked_sub(SIGNATURE_LEN) else {
            return Err(DecodeError::Truncated);
        };
        if body_end < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        let body: Anchor = codec::decode_exact(&bytes[HEADER_LEN..body_end])?;
        body.check().map_err(DecodeError::InvalidField)?;
        let frame = Vec::from_slice(bytes).map_err(|_| DecodeError::Truncated)?;
        Ok(Self { body, frame })
    }

    /// Encodes and signs `body` with the device's current suite-1 key.
    pub fn sign(body: Anchor, device: &DeviceId, key: &SigningKey) -> Result<Self, EncodeError> {
        body.check().map_err(EncodeError::InvalidField)?;
        let mut buf = [0u8; MAX_FRAME];
        buf[..HEADER_LEN].copy_from_slice(&header(Kind::Anchor));
        let n = codec::encode_into(&body, &mut buf[HEADER_LEN..MAX_FRAME - SIGNATURE_LEN])?;
        let end = HEADER_LEN + n;
        let sig = c1::sign(key, &crypto::anchor_message(device, &buf[..end]));
        buf[end..end + SIGNATURE_LEN].copy_from_slice(&sig);
        let frame =
            Vec::from_slice(&buf[..end + SIGNATURE_LEN]).map_err(|_| EncodeError::TooLarge)?;
        Ok(Self { body, frame })
    }

    /// Checks the signature under the device's suite-1 key (strict ed25519), and that
    /// the anchor names `device`.
    pub fn verify(&self, device: &DeviceId, key: &VerifyingKey) -> Result<(), SignatureError> {
        if self.body.device != device.short() || key.is_weak() {
            return Err(SignatureError::BadSignature);
        }
        let end = self.frame.len() - SIGNATURE_LEN;
        let sig: &[u8; SIGNATURE_LEN] = self.frame[end..]
            .try_into()
            .map_err(|_| SignatureError::BadSignature)?;
        c1::verify(
            key,
            &crypto::anchor_message(device, &self.frame[..end]),
            sig,
        )
    }

    pub fn body(&self) -> &Anchor {
        &self.body
    }
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The suite-1 epoch an anchor frame names, read without decoding the rest: for a
    /// device that only needs to know whether the anchor it stored was signed before
    /// its last rotation (the full decoder costs ≈ 1.4 KiB of flash). Checks the
    /// header and the varint only — not a substitute for [`SignedAnchor::decode`] on
    /// input from anyone else. `None` when the frame is not an anchor or is too short.
    pub fn epoch_of(frame: &[u8]) -> Option<u32> {
        expect_kind(frame, Kind::Anchor).ok()?;
        // The body starts with the 8-byte short id, then the epoch as a postcard varint.
        let rest = frame.get(HEADER_LEN + 8..)?;
        let mut epoch: u32 = 0;
        for (k, b) in rest.iter().take(5).enumerate() {
            epoch |= u32::from(b & 0x7f).checked_shl(7 * k as u32)?;
            if b & 0x80 == 0 {
                return Some(epoch);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The shortcut reads the epoch the full decoder reads, for any anchor, and
        /// nothing from a frame of another kind.
        #[test]
        fn epoch_of_matches_the_decoder(
            epoch in any::<u32>(),
            first in 1u32..1 << 20,
            start_ms in any::<u64>(),
            seed in any::<u8>(),
        ) {
            let key = SigningKey::from_bytes(&[seed; 32]);
            let device = DeviceId([seed.wrapping_add(1); 32]);
            let body = Anchor {
                device: device.short(),
                epoch,
                first,
                len: MAX_CHAIN,
                anchor: ChainKey([seed; 16]),
                start_ms,
                interval_ms: MIN_INTERVAL_MS,
                delay: 2,
            };
            let signed = SignedAnchor::sign(body, &device, &key).expect("sign");
            let decoded = SignedAnchor::decode(signed.frame()).expect("decode");
            prop_assert_eq!(SignedAnchor::epoch_of(signed.frame()), Some(decoded.body().epoch));
            let mut other = signed.frame().to_vec();
            other[2] = 1; // an attestation's kind byte
            prop_assert_eq!(SignedAnchor::epoch_of(&other), None);
            prop_assert_eq!(SignedAnchor::epoch_of(&signed.frame()[..HEADER_LEN + 8]), None);
        }
    }
}
