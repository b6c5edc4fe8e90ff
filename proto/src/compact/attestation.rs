//! The compact attestation (kind 1): one per interval, MAC'd under the interval's key,
//! disclosing the key of interval `interval − delay`.
//!
//! ```text
//! 01 02 01 | short id (8) | interval (varint, 3 B up to 2^21) | disclosed K(i−d) (16) | payload (1 + n) | MAC (8)
//! ```
//!
//! With an 8-byte payload: 3 + 8 + 3 + 16 + 9 + 8 = 47 bytes (budget 51, EU868 DR0).
//! `disclosed` is all zeros when `interval − delay` lies before the device's first
//! chain (nothing to disclose yet); a verifier ignores it then.
//!
//! The body has a fixed layout (two varints, the rest fixed-size), so it is decoded by
//! hand ([`View::parse`], no copy, no second encoding) instead of through postcard and
//! a re-encode check. The hand decoder accepts exactly the canonical postcard encoding
//! and returns the same errors as the postcard path would: the property test
//! `fixed_layout_matches_postcard` and the fuzz target `compact_decode` compare the two.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::crypto::{self, ChainKey};
use super::frame::{Kind, MacedBody, maced_body_end};
use super::params::{KEY_LEN, MAC_LEN};
use crate::error::DecodeError;
use crate::ids::ShortId;
use crate::limits::{HEADER_LEN, MAX_PAYLOAD};

/// The body of a compact attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub device: ShortId,
    /// Global interval, ≥ 1.
    pub interval: u32,
    /// The chain key of global interval `interval − delay`.
    pub disclosed: ChainKey,
    /// Application payload, at most [`MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8, MAX_PAYLOAD>,
}

impl MacedBody for Attestation {
    const KIND: Kind = Kind::Attestation;
    fn device(&self) -> ShortId {
        self.device
    }
    fn interval(&self) -> u32 {
        self.interval
    }
    fn check(&self) -> Result<(), &'static str> {
        if self.interval == 0 {
            return Err(INTERVAL_ZERO);
        }
        Ok(())
    }
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let l = parse_body(body)?;
        Ok(Self {
            device: ShortId(array(&body[..SHORT_ID_LEN])),
            interval: l.interval,
            disclosed: ChainKey(array(&body[l.disclosed..l.disclosed + KEY_LEN])),
            payload: Vec::from_slice(&body[l.payload..l.payload + l.payload_len])
                .map_err(|_| DecodeError::MalformedBody)?,
        })
    }
}

const INTERVAL_ZERO: &str = "compact interval 0";
const SHORT_ID_LEN: usize = 8;

/// Where the fields of a checked attestation body are (offsets into the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    interval: u32,
    disclosed: usize,
    payload: usize,
    payload_len: usize,
}

/// Parses an attestation body by its fixed layout. Accepts exactly the canonical
/// postcard encoding of an [`Attestation`] with a valid interval, and fails with the
/// error the postcard path gives: a structural fault anywhere is `MalformedBody`, then
/// bytes left over are `TrailingBytes`, then a non-minimal varint is `NonCanonical`,
/// then interval 0 is `InvalidField`.
fn parse_body(body: &[u8]) -> Result<Layout, DecodeError> {
    let rest = |at: usize| body.get(at..).ok_or(DecodeError::MalformedBody);
    let mut at = SHORT_ID_LEN;
    // postcard: u32 varint, at most 5 bytes, the 5th at most 0x0f.
    let (interval, n, mut canonical) = varint(rest(at)?, 5, 0x0f)?;
    at += n;
    let disclosed = at;
    at += KEY_LEN;
    // postcard: a sequence length is a usize varint (10 bytes, the 10th at most 0x01).
    let (len, n, minimal) = varint(rest(at)?, 10, 0x01)?;
    canonical &= minimal;
    at += n;
    let payload_len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(DecodeError::MalformedBody)?;
    let payload = at;
    at += payload_len;
    match at.cmp(&body.len()) {
        core::cmp::Ordering::Greater => return Err(DecodeError::MalformedBody),
        core::cmp::Ordering::Less => return Err(DecodeError::TrailingBytes),
        core::cmp::Ordering::Equal => {}
    }
    if !canonical {
        return Err(DecodeError::NonCanonical);
    }
    let interval = u32::try_from(interval).map_err(|_| DecodeError::MalformedBody)?;
    if interval == 0 {
        return Err(DecodeError::InvalidField(INTERVAL_ZERO));
    }
    Ok(Layout {
        interval,
        disclosed,
        payload,
        payload_len,
    })
}

/// A LEB128 varint of at most `max_bytes` bytes whose last byte is at most `max_last`
/// when all `max_bytes` are used (postcard's rule). Returns the value, the bytes used
/// and whether the encoding is minimal.
fn varint(bytes: &[u8], max_bytes: usize, max_last: u8) -> Result<(u64, usize, bool), DecodeError> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(max_bytes).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i + 1 == max_bytes && b > max_last {
                return Err(DecodeError::MalformedBody);
            }
            return Ok((value, i + 1, i == 0 || b != 0));
        }
    }
    Err(DecodeError::MalformedBody)
}

/// Copies a slice whose length the caller has checked into an array (never panics:
/// a shorter slice leaves zeros).
fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(s) {
        *o = *b;
    }
    out
}

/// A checked compact attestation frame, borrowed from the input: the verifier's hot
/// path reads the fields in place and copies nothing. Accepts exactly the frames
/// [`super::Maced::<Attestation>::decode`] accepts (same errors too). The MAC is not
/// checked here: [`View::verify`] checks it once the key is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View<'a> {
    frame: &'a [u8],
    layout: Layout,
}

impl<'a> View<'a> {
    /// Checks a whole attestation frame (header, bounds, body). Never panics, never
    /// allocates, never copies.
    pub fn parse(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let end = maced_body_end(frame, Kind::Attestation)?;
        let layout = parse_body(&frame[HEADER_LEN..end])?;
        Ok(Self { frame, layout })
    }
    /// The sending device's short id.
    pub fn device(&self) -> ShortId {
        ShortId(array(&self.frame[HEADER_LEN..HEADER_LEN + SHORT_ID_LEN]))
    }
    /// The global interval (≥ 1).
    pub fn interval(&self) -> u32 {
        self.layout.interval
    }
    /// The disclosed key K(interval − delay).
    pub fn disclosed(&self) -> ChainKey {
        let at = HEADER_LEN + self.layout.disclosed;
        ChainKey(array(&self.frame[at..at + KEY_LEN]))
    }
    /// The application payload.
    pub fn payload(&self) -> &'a [u8] {
        let at = HEADER_LEN + self.layout.payload;
        &self.frame[at..at + self.layout.payload_len]
    }
    /// The exact frame.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }
    /// Header and body: what the MAC covers.
    pub fn maced_bytes(&self) -> &'a [u8] {
        &self.frame[..self.frame.len() - MAC_LEN]
    }
    /// The 8-byte MAC.
    pub fn mac(&self) -> [u8; MAC_LEN] {
        array(&self.frame[self.frame.len() - MAC_LEN..])
    }
    /// Whether the MAC verifies under `mac_key` (constant-time comparison).
    pub fn verify(&self, mac_key: &[u8; 32]) -> bool {
        crypto::mac_eq(&crypto::mac(mac_key, self.maced_bytes()), &self.mac())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec;
    use crate::compact::Maced;

    /// The postcard path the fixed layout replaces: the reference it must match.
    fn reference(body: &[u8]) -> Result<Attestation, DecodeError> {
        let value: Attestation = codec::decode_exact(body)?;
        value.check().map_err(DecodeError::InvalidField)?;
        Ok(value)
    }

    fn body(interval: u32, payload: &[u8]) -> std::vec::Vec<u8> {
        let a = Attestation {
            device: ShortId([9; 8]),
            interval,
            disclosed: ChainKey([7; KEY_LEN]),
            payload: Vec::from_slice(payload).unwrap_or_default(),
        };
        let mut buf = [0u8; 64];
        let n = codec::encode_into(&a, &mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }

    /// LEB128 of `v` followed by `pad` redundant bytes (a non-minimal encoding).
    fn padded_varint(out: &mut std::vec::Vec<u8>, mut v: u64, pad: usize) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                if pad == 0 {
                    out.push(b);
                } else {
                    out.push(b | 0x80);
                    out.extend(core::iter::repeat_n(0x80, pad - 1));
                    out.push(0);
                }
                return;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn hand_picked_non_canonical_and_malformed_bodies() {
        let good = body(20_000, &[1; 8]);
        assert!(Attestation::decode_body(&good).is_ok());
        // Over-long interval varint (0x85 0x00 for 5).
        let mut long = good[..8].to_vec();
        long.extend([0x85, 0x00]);
        long.extend(&good[8 + 3..]);
        assert_eq!(
            Attestation::decode_body(&long),
            Err(DecodeError::NonCanonical)
        );
        assert_eq!(reference(&long), Err(DecodeError::NonCanonical));
        // Interval beyond u32.
        let mut over = good[..8].to_vec();
        over.extend([0xff, 0xff, 0xff, 0xff, 0x10]);
        over.extend(&good[8 + 3..]);
        assert_eq!(
            Attestation::decode_body(&over),
            Err(DecodeError::MalformedBody)
        );
        // Payload longer than 16.
        let mut big = good[..8 + 3 + 16].to_vec();
        big.push(17);
        big.extend([0; 17]);
        assert_eq!(
            Attestation::decode_body(&big),
            Err(DecodeError::MalformedBody)
        );
        // Trailing byte, and a missing one.
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            Attestation::decode_body(&trailing),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(
            Attestation::decode_body(&good[..good.len() - 1]),
            Err(DecodeError::MalformedBody)
        );
        let zero = body(0, &[]);
        assert_eq!(
            Attestation::decode_body(&zero),
            Err(DecodeError::InvalidField(INTERVAL_ZERO))
        );
    }

    #[test]
    fn view_reads_the_fields_of_a_sealed_frame() {
        let a = Attestation {
            device: ShortId([3; 8]),
            interval: 77_777,
            disclosed: ChainKey([5; KEY_LEN]),
            payload: Vec::from_slice(&[1, 2, 3]).unwrap_or_default(),
        };
        let key = [4u8; 32];
        let sealed = Maced::seal(a.clone(), &key).expect("seal");
        let v = View::parse(sealed.frame()).expect("parse");
        assert_eq!(v.device(), a.device);
        assert_eq!(v.interval(), a.interval);
        assert_eq!(v.disclosed(), a.disclosed);
        assert_eq!(v.payload(), &a.payload[..]);
        assert_eq!(v.maced_bytes(), sealed.maced_bytes());
        assert_eq!(&v.mac(), sealed.mac());
        assert!(v.verify(&key));
        assert!(!v.verify(&[5; 32]));
    }

    proptest! {
        /// Any body bytes: the fixed layout and the postcard path agree exactly (value
        /// or error).
        #[test]
        fn fixed_layout_matches_postcard(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            prop_assert_eq!(Attestation::decode_body(&bytes), reference(&bytes));
        }

        /// Valid bodies with one byte changed: still in agreement (reaches the deep
        /// branches that random bytes rarely do).
        #[test]
        fn fixed_layout_matches_postcard_near_valid(
            interval in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..=16),
            at in any::<usize>(),
            to in any::<u8>(),
            cut in any::<bool>(),
        ) {
            let mut b = body(interval, &payload);
            let i = at % b.len();
            if cut { b.truncate(i) } else { b[i] = to }
            prop_assert_eq!(Attestation::decode_body(&b), reference(&b));
        }

        /// Bodies whose varints are written with extra continuation bytes (over-long,
        /// and beyond the type's width): the two paths agree on every one.
        #[test]
        fn fixed_layout_matches_postcard_padded_varints(
            interval in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..=17),
            pad_interval in 0usize..6,
            pad_len in 0usize..11,
        ) {
            let mut b = std::vec![9u8; 8];
            padded_varint(&mut b, u64::from(interval), pad_interval);
            b.extend([7u8; KEY_LEN]);
            padded_varint(&mut b, payload.len() as u64, pad_len);
            b.extend(&payload);
            prop_assert_eq!(Attestation::decode_body(&b), reference(&b));
        }

        /// Whole frames: the view and the owned decoder agree.
        #[test]
        fn view_matches_owned_decode(bytes in proptest::collection::vec(any::<u8>(), 0..70)) {
            let mut framed = std::vec![1u8, 2, 1];
            framed.extend(&bytes);
            for f in [&bytes[..], &framed[..]] {
                let owned = Maced::<Attestation>::decode(f);
                let view = View::parse(f);
                prop_assert_eq!(owned.as_ref().err(), view.as_ref().err());
                if let (Ok(o), Ok(v)) = (owned, view) {
                    prop_assert_eq!(o.frame(), v.frame());
                    prop_assert_eq!(o.body().interval, v.interval());
                }
            }
        }
    }
}
