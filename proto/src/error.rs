//! Typed errors of decoding, encoding and signature checks.

use core::fmt;

/// Why a byte string is not a valid Slope message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the smallest message of its kind (header, body, signature).
    Truncated,
    /// Longer than the largest message of its kind ([`crate::limits`]).
    Oversize { len: usize, max: usize },
    /// The version byte names a version this implementation does not speak.
    UnknownVersion(u8),
    /// The suite byte names a suite this implementation does not speak.
    UnknownSuite(u8),
    /// The kind byte names no message kind.
    UnknownKind(u8),
    /// The kind is valid but not the one the caller asked for.
    UnexpectedKind { expected: u8, found: u8 },
    /// The body is not a valid postcard encoding of the kind's fields (bad tag, bad
    /// varint, a list longer than its bound, ...).
    MalformedBody,
    /// Bytes left over after the body (before the signature, for signed messages).
    TrailingBytes,
    /// The body decodes, but encoding it again gives other bytes (for example a
    /// non-minimal varint): only canonical encodings are accepted, so one message has
    /// exactly one byte string and one digest.
    NonCanonical,
    /// A field breaks a rule of the format itself (sequence 0 outside an inception, a
    /// rotation at epoch 0, ...).
    InvalidField(&'static str),
    /// A list holds more entries than its bound (for example a receipt batch above
    /// [`crate::limits::MAX_BATCH_ENTRIES`]).
    TooManyEntries { count: usize, max: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("message truncated"),
            Self::Oversize { len, max } => write!(f, "message of {len} bytes exceeds {max}"),
            Self::UnknownVersion(v) => write!(f, "unknown version {v}"),
            Self::UnknownSuite(s) => write!(f, "unknown suite {s}"),
            Self::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            Self::UnexpectedKind { expected, found } => {
                write!(f, "expected message kind {expected}, found {found}")
            }
            Self::MalformedBody => f.write_str("malformed message body"),
            Self::TrailingBytes => f.write_str("trailing bytes after message body"),
            Self::NonCanonical => f.write_str("non-canonical encoding"),
            Self::InvalidField(what) => write!(f, "invalid field: {what}"),
            Self::TooManyEntries { count, max } => {
                write!(f, "{count} entries exceed the bound of {max}")
            }
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message would exceed its kind's maximum size.
    TooLarge,
    /// A field breaks a rule of the format (see [`DecodeError::InvalidField`]).
    InvalidField(&'static str),
    /// A list would hold more entries than its bound.
    TooManyEntries { count: usize, max: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("encoded message too large"),
            Self::InvalidField(what) => write!(f, "invalid field: {what}"),
            Self::TooManyEntries { count, max } => {
                write!(f, "{count} entries exceed the bound of {max}")
            }
        }
    }
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The public key bytes are not a valid, non-weak ed25519 point.
    BadKey,
    /// The signature does not verify under the key.
    BadSignature,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadKey => f.write_str("invalid or weak public key"),
            Self::BadSignature => f.write_str("signature does not verify"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
#[cfg(feature = "std")]
impl std::error::Error for SignatureError {}
