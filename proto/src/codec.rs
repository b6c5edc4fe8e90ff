//! The canonical postcard codec: one message, one byte string.
//!
//! Postcard alone accepts some non-minimal encodings (for example an over-long varint).
//! Every body decoded here is encoded again and compared with its input, so a message
//! has exactly one accepted encoding and therefore exactly one digest. The bodies are
//! small (at most [`crate::limits::MAX_FRAME`] bytes, or a proof's fixed-size header),
//! so the second encoding costs a fraction of a microsecond.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::limits::MAX_FRAME;

/// Decodes `bytes` as exactly one canonical `T`.
pub fn decode_exact<'a, T>(bytes: &'a [u8]) -> Result<T, DecodeError>
where
    T: Deserialize<'a> + Serialize,
{
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|_| DecodeError::MalformedBody)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    let mut again = [0u8; MAX_FRAME];
    let encoded = postcard::to_slice(&value, &mut again).map_err(|_| DecodeError::NonCanonical)?;
    if &encoded[..] != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Decodes one canonical `T` from the front of `bytes` (at most `N` encoded bytes) and
/// returns it with the bytes after it: for bodies made of several values in a row.
pub fn take_exact<'a, T, const N: usize>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), DecodeError>
where
    T: Deserialize<'a> + Serialize,
{
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|_| DecodeError::MalformedBody)?;
    let used = &bytes[..bytes.len() - rest.len()];
    let mut again = [0u8; N];
    let encoded = postcard::to_slice(&value, &mut again).map_err(|_| DecodeError::NonCanonical)?;
    if &encoded[..] != used {
        return Err(DecodeError::NonCanonical);
    }
    Ok((value, rest))
}

/// Encodes `value` into `out`, returning the number of bytes written.
pub fn encode_into<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, EncodeError> {
    postcard::to_slice(value, out)
        .map(|b| b.len())
        .map_err(|_| EncodeError::TooLarge)
}
