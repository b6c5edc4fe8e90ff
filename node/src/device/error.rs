//! Errors of the device slope.

use core::fmt;

/// Why the device did not produce an event. `S` is the storage's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<S> {
    /// Not enough entropy for a new key: feed more samples.
    InsufficientEntropy { have: u32, need: u32 },
    /// [`super::Slope::incept`] on a device that already has a slope.
    AlreadyIncepted,
    /// An attestation before the inception.
    NotIncepted,
    /// The application payload is longer than the format allows.
    PayloadTooLarge { max: usize },
    /// The position or epoch counter would overflow (2^32 events).
    Exhausted,
    /// Encoding failed (a format rule; a bug if it ever happens).
    Encode(slope_proto::EncodeError),
    /// The stored state does not decode.
    CorruptState,
    /// The storage failed: nothing was released, the previous state stands.
    Storage(S),
    /// The compact chain could not be created (its parameters).
    Compact(crate::compact::device::Error),
}

impl<S: fmt::Debug> fmt::Display for Error<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsufficientEntropy { have, need } => {
                write!(f, "insufficient entropy: {have} samples, {need} needed")
            }
            Self::AlreadyIncepted => f.write_str("device already incepted"),
            Self::NotIncepted => f.write_str("device not incepted"),
            Self::PayloadTooLarge { max } => write!(f, "payload larger than {max} bytes"),
            Self::Exhausted => f.write_str("slope position counter exhausted"),
            Self::Encode(e) => write!(f, "encode: {e}"),
            Self::CorruptState => f.write_str("stored device state is corrupt"),
            Self::Storage(e) => write!(f, "storage: {e:?}"),
            Self::Compact(e) => write!(f, "compact chain: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl<S: fmt::Debug> std::error::Error for Error<S> {}
