//! Why a suite-2 divergence proof does not hold.

use core::fmt;

use crate::error::{DecodeError, EncodeError, SignatureError};

/// Why a [`super::CompactProof`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// A part of the proof does not decode.
    Decode(DecodeError),
    /// The proof does not fit its bounds when encoding.
    Encode(EncodeError),
    /// An ed25519 signature (inception, rotation, anchor, receipt) does not verify.
    Signature(SignatureError),
    /// A rotation does not reveal the key its predecessor committed to, or the
    /// rotations are not epochs 1, 2, … in order.
    BrokenKeyChain,
    /// The anchor is signed in an epoch other than the last one of the key history.
    AnchorEpoch,
    /// A frame belongs to another device.
    WrongDevice,
    /// A frame's interval lies outside the chain the proof has reached.
    OutsideChain(u32),
    /// A disclosed key does not hash to the chain's anchor.
    BadKey,
    /// A frame's MAC does not verify under the disclosed key.
    BadMac,
    /// A receipt names another frame.
    ReceiptMismatch,
    /// A receipt's time does not meet the security condition: the frame may have been
    /// made after its key was disclosed.
    Late { interval: u32, rx_ms: u64 },
    /// The two frames are identical, or not in canonical (bytewise) order.
    NoConflict,
    /// The checker's policy does not take the witnesses dating the frame (or renewal)
    /// of this interval as enough ([`super::CompactProof::verify_with`]).
    Undated { interval: u32 },
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "proof part does not decode: {e}"),
            Self::Encode(e) => write!(f, "proof does not encode: {e}"),
            Self::Signature(e) => write!(f, "proof signature: {e}"),
            Self::BrokenKeyChain => f.write_str("key history broken or out of order"),
            Self::AnchorEpoch => f.write_str("anchor not signed by the last key of the history"),
            Self::WrongDevice => f.write_str("frame of another device"),
            Self::OutsideChain(i) => write!(f, "interval {i} outside the proven chain"),
            Self::BadKey => f.write_str("disclosed key does not reach the chain anchor"),
            Self::BadMac => f.write_str("MAC does not verify"),
            Self::ReceiptMismatch => f.write_str("receipt names another frame"),
            Self::Late { interval, rx_ms } => {
                write!(
                    f,
                    "frame for interval {interval} received at {rx_ms} ms, after its key could be known"
                )
            }
            Self::NoConflict => f.write_str("frames identical or not in canonical order"),
            Self::Undated { interval } => write!(
                f,
                "frame for interval {interval} not dated by witnesses the checker takes"
            ),
        }
    }
}

impl From<DecodeError> for ProofError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}
impl From<SignatureError> for ProofError {
    fn from(e: SignatureError) -> Self {
        Self::Signature(e)
    }
}
impl From<EncodeError> for ProofError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProofError {}
