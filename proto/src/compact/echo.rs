//! The time echo (kind 5): a gateway's short, **unsigned** downlink telling a device
//! "I received your frame at this time", sent in the device's echo window after an
//! attestation it heard (docs/protocol.md, "Time echo"; docs/compact-suite.md §3).
//!
//! ```text
//! 01 02 05 | device (8) | seq (u32 varint) | digest (8) | rx_ms (u64 varint) | witness (8)
//! ```
//!
//! | field | type | meaning |
//! |---|---|---|
//! | device | [u8; 8] | short id of the device whose frame was heard |
//! | seq | u32 varint, ≥ 1 | its position (suite 1) or compact interval (suite 2) |
//! | digest | [u8; 8] | first 8 bytes of the heard frame's link digest (suite 1: event digest; suite 2: frame digest) |
//! | rx_ms | u64 varint, ≥ 1 | the gateway's receive time of that frame, ms since the Unix epoch |
//! | witness | [u8; 8] | the gateway's witness id (the one its receipts carry) |
//!
//! The body is the canonical postcard encoding of these five fields in order (two
//! varints, the rest fixed-size) and is decoded by hand ([`Echo::decode`], no serde
//! in the firmware image), accepting exactly the canonical encoding: the property test
//! `echo_matches_postcard` and the fuzz target `compact_echo` compare the two paths.
//!
//! Size: 36 bytes at a 3-byte interval and a 2026 timestamp (6 varint bytes), 39 on air
//! with the radio framing; at most [`MAX_ECHO`] = 42.
//!
//! **Unsigned on purpose.** The device holds no gateway key, so a signature (64 bytes,
//! more than the EU868 DR0 payload on its own) is something it could not check: it
//! would add bytes, not safety. The device's clock policy (`slope-firmware`'s
//! `timesync`) treats every echo as possibly forged: forward steps bounded by the
//! crystal's drift, backward steps only when every sample agrees, a first clock only
//! from a quorum of distinct witnesses. What a forger *can* do: delay or deny the
//! device's synchronisation (push it back, or make rounds disagree), and, if it
//! controls everything the device hears before its first quorum, set its first clock.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::frame::{Kind, expect_kind, header};
use crate::error::{DecodeError, EncodeError};
use crate::ids::{ShortId, WitnessId};
use crate::limits::HEADER_LEN;

/// Length of the digest prefix an echo carries.
pub const DIGEST_PREFIX: usize = 8;

/// Largest echo: 3 + 8 + 5 + 8 + 10 + 8 bytes.
pub const MAX_ECHO: usize = HEADER_LEN + 8 + 5 + DIGEST_PREFIX + 10 + 8;

const SEQ_ZERO: &str = "echo seq 0";
const TIME_ZERO: &str = "echo rx_ms 0";

/// A time echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Echo {
    /// The device whose frame was heard.
    pub device: ShortId,
    /// Its position (suite 1) or compact interval (suite 2), ≥ 1.
    pub seq: u32,
    /// The first 8 bytes of the heard frame's link digest.
    pub digest: [u8; DIGEST_PREFIX],
    /// The gateway's receive time of the frame, ms since the Unix epoch (≥ 1).
    pub rx_ms: u64,
    /// The gateway's witness id.
    pub witness: WitnessId,
}

impl Echo {
    fn check(&self) -> Result<(), &'static str> {
        if self.seq == 0 {
            return Err(SEQ_ZERO);
        }
        if self.rx_ms == 0 {
            return Err(TIME_ZERO);
        }
        Ok(())
    }

    /// Encodes the whole frame (header included). Fails only on a zero `seq` or
    /// `rx_ms`.
    pub fn encode(&self) -> Result<Vec<u8, MAX_ECHO>, EncodeError> {
        self.check().map_err(EncodeError::InvalidField)?;
        let mut out = Vec::new();
        let mut put = |bytes: &[u8]| {
            out.extend_from_slice(bytes)
                .map_err(|_| EncodeError::TooLarge)
        };
        put(&header(Kind::Echo))?;
        put(&self.device.0)?;
        let mut v = [0u8; 10];
        put(varint_into(u64::from(self.seq), &mut v))?;
        put(&self.digest)?;
        put(varint_into(self.rx_ms, &mut v))?;
        put(&self.witness.0)?;
        Ok(out)
    }

    /// Decodes a whole echo frame canonically. Never panics, never allocates. Errors:
    /// the header's, `Oversize` above [`MAX_ECHO`], `MalformedBody` for a body cut
    /// short or a varint out of range, `TrailingBytes`, `NonCanonical` for a
    /// non-minimal varint, `InvalidField` for a zero `seq` or `rx_ms`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        expect_kind(bytes, Kind::Echo)?;
        if bytes.len() > MAX_ECHO {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max: MAX_ECHO,
            });
        }
        let mut r = Reader {
            bytes: &bytes[HEADER_LEN..],
            canonical: true,
        };
        let device = ShortId(r.array()?);
        let seq = r.varint(5, 0x0f)?;
        let digest = r.array()?;
        let rx_ms = r.varint(10, 0x01)?;
        let witness = WitnessId(r.array()?);
        if !r.bytes.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        if !r.canonical {
            return Err(DecodeError::NonCanonical);
        }
        let echo = Self {
            device,
            seq: u32::try_from(seq).map_err(|_| DecodeError::MalformedBody)?,
            digest,
            rx_ms,
            witness,
        };
        echo.check().map_err(DecodeError::InvalidField)?;
        Ok(echo)
    }

    /// Whether this echo names the frame `seq` of `device` whose link digest starts
    /// with `link`.
    pub fn names(&self, device: ShortId, seq: u32, link: &[u8]) -> bool {
        self.device == device && self.seq == seq && link.get(..DIGEST_PREFIX) == Some(&self.digest)
    }
}

/// A LEB128 encoding of `value` in `buf`.
fn varint_into(mut value: u64, buf: &mut [u8; 10]) -> &[u8] {
    let mut n = 0;
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[n] = b;
            return &buf[..=n];
        }
        buf[n] = b | 0x80;
        n += 1;
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    canonical: bool,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(DecodeError::MalformedBody)?;
        self.bytes = rest;
        Ok(*head)
    }

    /// A postcard varint of at most `max_bytes`, the last at most `max_last` when all
    /// are used; a non-minimal one clears `canonical`.
    fn varint(&mut self, max_bytes: usize, max_last: u8) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, &b) in self.bytes.iter().take(max_bytes).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i + 1 == max_bytes && b > max_last {
                    return Err(DecodeError::MalformedBody);
                }
                self.canonical &= i == 0 || b != 0;
                self.bytes = &self.bytes[i + 1..];
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use proptest::prelude::*;

    fn echo() -> impl Strategy<Value = Echo> {
        (
            any::<[u8; 8]>(),
            1u32..,
            any::<[u8; 8]>(),
            1u64..,
            any::<[u8; 8]>(),
        )
            .prop_map(|(d, seq, digest, rx_ms, w)| Echo {
                device: ShortId(d),
                seq,
                digest,
                rx_ms,
                witness: WitnessId(w),
            })
    }

    /// The postcard path the hand decoder stands for.
    fn reference(bytes: &[u8]) -> Result<Echo, DecodeError> {
        expect_kind(bytes, Kind::Echo)?;
        if bytes.len() > MAX_ECHO {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max: MAX_ECHO,
            });
        }
        let e: Echo = codec::decode_exact(&bytes[HEADER_LEN..])?;
        e.check().map_err(DecodeError::InvalidField)?;
        Ok(e)
    }

    proptest! {
        #[test]
        fn echo_roundtrips_and_is_the_postcard_encoding(e in echo()) {
            let bytes = e.encode().unwrap();
            prop_assert!(bytes.len() <= MAX_ECHO);
            prop_assert_eq!(Echo::decode(&bytes), Ok(e));
            let mut pc = [0u8; 64];
            let n = codec::encode_into(&e, &mut pc).unwrap();
            prop_assert_eq!(&bytes[HEADER_LEN..], &pc[..n]);
        }

        #[test]
        fn echo_matches_postcard(body in proptest::collection::vec(any::<u8>(), 0..48)) {
            let mut frame = std::vec![1u8, 2, 5];
            frame.extend_from_slice(&body);
            prop_assert_eq!(Echo::decode(&frame), reference(&frame));
        }

        #[test]
        fn echo_near_valid_bytes_match_postcard(e in echo(), at in 0usize..64, b in any::<u8>(), cut in 0usize..4) {
            let mut frame = e.encode().unwrap().to_vec();
            let i = at % frame.len();
            if i >= HEADER_LEN {
                frame[i] = b;
            }
            frame.truncate(frame.len() - cut.min(frame.len() - HEADER_LEN));
            prop_assert_eq!(Echo::decode(&frame), reference(&frame));
        }
    }

    fn sample() -> Echo {
        Echo {
            device: ShortId([0x7c; 8]),
            seq: 150_000,
            digest: [0xab; 8],
            rx_ms: 1_790_000_000_000,
            witness: WitnessId([0x11; 8]),
        }
    }

    #[test]
    fn size_fits_eu868_dr0_with_the_radio_framing() {
        let e = sample().encode().unwrap();
        assert_eq!(e.len(), 36);
        // EU868 DR0 (SF12): 51 bytes of MAC payload; the radio framing adds 3.
        assert!(e.len() + 3 <= 51);
        assert_eq!(&e[..3], &[1, 2, 5]);
        assert_eq!(Echo::decode(&e), Ok(sample()));
    }

    #[test]
    fn refuses_what_it_does_not_encode() {
        let e = sample().encode().unwrap();
        let mut long = e.clone();
        long.push(0).unwrap();
        assert_eq!(Echo::decode(&long), Err(DecodeError::TrailingBytes));
        assert_eq!(
            Echo::decode(&e[..e.len() - 1]),
            Err(DecodeError::MalformedBody)
        );
        assert_eq!(Echo::decode(&e[..2]), Err(DecodeError::Truncated));
        // seq = 1 written as 0x81 0x00: not minimal.
        let mut raw: Vec<u8, 64> = Vec::from_slice(&[1, 2, 5]).unwrap();
        raw.extend_from_slice(&[0; 8]).unwrap();
        raw.extend_from_slice(&[0x81, 0x00]).unwrap();
        raw.extend_from_slice(&[0; 8]).unwrap();
        raw.extend_from_slice(&[5]).unwrap();
        raw.extend_from_slice(&[0; 8]).unwrap();
        assert_eq!(Echo::decode(&raw), Err(DecodeError::NonCanonical));
        let zero = Echo { seq: 0, ..sample() };
        assert_eq!(zero.encode(), Err(EncodeError::InvalidField(SEQ_ZERO)));
        let zero = Echo {
            rx_ms: 0,
            ..sample()
        };
        assert_eq!(zero.encode(), Err(EncodeError::InvalidField(TIME_ZERO)));
        let mut other = e.clone();
        other[2] = 1;
        assert!(matches!(
            Echo::decode(&other),
            Err(DecodeError::UnexpectedKind { .. })
        ));
    }

    #[test]
    fn names_its_frame_only() {
        let e = sample();
        let link = [0xab; 16];
        assert!(e.names(ShortId([0x7c; 8]), 150_000, &link));
        assert!(!e.names(ShortId([0x7d; 8]), 150_000, &link));
        assert!(!e.names(ShortId([0x7c; 8]), 150_001, &link));
        let mut other = link;
        other[7] ^= 1;
        assert!(!e.names(ShortId([0x7c; 8]), 150_000, &other));
        assert!(!e.names(ShortId([0x7c; 8]), 150_000, &link[..7]));
    }
}
