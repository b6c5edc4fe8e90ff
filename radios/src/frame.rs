//! On-air framing of Slope envelopes.
//!
//! A Slope frame is a LoRaWAN *proprietary* frame, so it can share channels with LoRaWAN
//! and pass through unmodified gateways and network-server bridges:
//!
//! ```text
//! +------+------+------+-----------------------+
//! | 0xE0 | 0x53 | 0x4C | envelope (opaque)     |
//! +------+------+------+-----------------------+
//!  MHDR   "S"    "L"    0 ..= 252 bytes
//! ```
//!
//! MHDR `0xE0` is MType `0b111` (proprietary), RFU `0b000`, Major `0b00` (LoRaWAN R1).
//! The overhead is [`OVERHEAD`] = 3 bytes (LoRaWAN data frames cost 13). There is no MIC:
//! integrity and authenticity come from the envelope's own signature, checked above this
//! layer. Other LoRaWAN frames are classified ([`FrameKind`]) and reported as
//! [`FrameError::NotSlope`] so the caller can count and ignore them.

use crate::airtime::MAX_PHY_PAYLOAD;

/// MHDR of a Slope frame: proprietary MType, LoRaWAN R1 major.
pub const MHDR: u8 = 0xE0;
/// Slope marker following the MHDR: ASCII `"SL"`.
pub const MARKER: [u8; 2] = *b"SL";
/// Bytes a Slope frame adds around its envelope.
pub const OVERHEAD: usize = 1 + MARKER.len();
/// Largest envelope that fits one LoRa frame.
pub const MAX_ENVELOPE: usize = MAX_PHY_PAYLOAD - OVERHEAD;

/// LoRaWAN message type of a frame that is not a Slope frame (MHDR bits 7..5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameKind {
    /// MType 000.
    JoinRequest,
    /// MType 001.
    JoinAccept,
    /// MType 010 or 100: a LoRaWAN uplink.
    DataUp,
    /// MType 011 or 101: a LoRaWAN downlink.
    DataDown,
    /// MType 110 (LoRaWAN 1.1).
    RejoinRequest,
    /// MType 111 but not a Slope frame (another vendor's proprietary frame, or a different
    /// major version or marker).
    OtherProprietary,
}

impl FrameKind {
    /// Classify by MHDR.
    pub const fn of_mhdr(mhdr: u8) -> Self {
        match mhdr >> 5 {
            0b000 => FrameKind::JoinRequest,
            0b001 => FrameKind::JoinAccept,
            0b010 | 0b100 => FrameKind::DataUp,
            0b011 | 0b101 => FrameKind::DataDown,
            0b110 => FrameKind::RejoinRequest,
            _ => FrameKind::OtherProprietary,
        }
    }
}

/// Why bytes are not a Slope frame, or an envelope cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Zero bytes.
    Empty,
    /// A LoRaWAN frame of another kind: count it and ignore it.
    NotSlope(FrameKind),
    /// Starts like a Slope frame but ends inside the marker.
    Truncated,
    /// More than 255 bytes: not a LoRa frame.
    TooLong {
        /// Length given.
        len: usize,
    },
    /// The envelope does not fit one frame.
    EnvelopeTooLong {
        /// Envelope length given.
        len: usize,
    },
    /// The output buffer is too small for the frame.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::Empty => f.write_str("empty frame"),
            FrameError::NotSlope(kind) => write!(f, "not a Slope frame: {kind:?}"),
            FrameError::Truncated => f.write_str("Slope frame truncated inside its marker"),
            FrameError::TooLong { len } => {
                write!(
                    f,
                    "{len} bytes exceed the {MAX_PHY_PAYLOAD}-byte LoRa payload"
                )
            }
            FrameError::EnvelopeTooLong { len } => {
                write!(f, "envelope of {len} bytes exceeds {MAX_ENVELOPE}")
            }
            FrameError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

/// Frame `envelope` into `out`; returns the frame length (`envelope.len() + 3`).
pub fn encode_frame(envelope: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    if envelope.len() > MAX_ENVELOPE {
        return Err(FrameError::EnvelopeTooLong {
            len: envelope.len(),
        });
    }
    let needed = envelope.len() + OVERHEAD;
    let out = out
        .get_mut(..needed)
        .ok_or(FrameError::BufferTooSmall { needed })?;
    let (head, body) = out.split_at_mut(OVERHEAD);
    head.copy_from_slice(&[MHDR, MARKER[0], MARKER[1]]);
    body.copy_from_slice(envelope);
    Ok(needed)
}

/// The envelope of a Slope frame, or why `bytes` is not one.
pub fn parse_frame(bytes: &[u8]) -> Result<&[u8], FrameError> {
    if bytes.len() > MAX_PHY_PAYLOAD {
        return Err(FrameError::TooLong { len: bytes.len() });
    }
    let (&mhdr, rest) = bytes.split_first().ok_or(FrameError::Empty)?;
    if mhdr != MHDR {
        return Err(FrameError::NotSlope(FrameKind::of_mhdr(mhdr)));
    }
    match rest.split_at_checked(MARKER.len()) {
        Some((marker, envelope)) if marker == MARKER => Ok(envelope),
        Some(_) => Err(FrameError::NotSlope(FrameKind::OtherProprietary)),
        None if MARKER.starts_with(rest) => Err(FrameError::Truncated),
        None => Err(FrameError::NotSlope(FrameKind::OtherProprietary)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 255];
        let n = encode_frame(b"hello", &mut buf).unwrap();
        assert_eq!(n, 8);
        assert_eq!(&buf[..3], &[0xE0, 0x53, 0x4C]);
        assert_eq!(parse_frame(&buf[..n]), Ok(&b"hello"[..]));
        assert_eq!(parse_frame(&[0xE0, 0x53, 0x4C]), Ok(&[][..]));
    }

    #[test]
    fn limits() {
        let mut buf = [0u8; 300];
        assert_eq!(encode_frame(&[0; 252], &mut buf), Ok(255));
        assert_eq!(
            encode_frame(&[0; 253], &mut buf),
            Err(FrameError::EnvelopeTooLong { len: 253 })
        );
        assert_eq!(
            encode_frame(&[0; 10], &mut buf[..12]),
            Err(FrameError::BufferTooSmall { needed: 13 })
        );
        assert_eq!(
            parse_frame(&buf[..256]),
            Err(FrameError::TooLong { len: 256 })
        );
    }

    #[test]
    fn other_frames_are_classified() {
        use FrameKind::*;
        let cases: [(&[u8], FrameError); 10] = [
            (&[], FrameError::Empty),
            (&[0x00, 1, 2], FrameError::NotSlope(JoinRequest)),
            (&[0x20, 1, 2], FrameError::NotSlope(JoinAccept)),
            (&[0x40, 1, 2], FrameError::NotSlope(DataUp)),
            (&[0x80, 1, 2], FrameError::NotSlope(DataUp)),
            (&[0x60, 1, 2], FrameError::NotSlope(DataDown)),
            (&[0xC0, 1, 2], FrameError::NotSlope(RejoinRequest)),
            (&[0xE1, 0x53, 0x4C], FrameError::NotSlope(OtherProprietary)),
            (&[0xE0, 0x53, 0x4D], FrameError::NotSlope(OtherProprietary)),
            (&[0xE0, 0x53], FrameError::Truncated),
        ];
        for (bytes, err) in cases {
            assert_eq!(parse_frame(bytes), Err(err), "{bytes:02x?}");
        }
        assert_eq!(parse_frame(&[0xE0]), Err(FrameError::Truncated));
        assert_eq!(
            parse_frame(&[0xE0, 0x00]),
            Err(FrameError::NotSlope(OtherProprietary))
        );
    }
}
