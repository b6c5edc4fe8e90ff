//! Batched witness receipts: one gateway signature over up to
//! [`MAX_BATCH_ENTRIES`] receipt bodies. A single [`crate::Receipt`] still exists (it
//! fits a LoRa downlink); the batch is what gateways gossip to each other, so a witness
//! signs once per batch and every other gateway checks one signature per batch instead
//! of one per receipt (the tree-head idea of Certificate Transparency, without a tree).
//!
//! Layout (kind 5, suite 1), the body in canonical postcard like every other kind:
//!
//! ```text
//! header   : 01 01 05
//! witness  : 8 B      WitnessId of the signing gateway
//! time_ms  : varint   when the witness closed the batch (its clock, ms since epoch)
//! count    : varint   number of entries, 1..=MAX_BATCH_ENTRIES
//! entries  : count × ( device 8 B ‖ seq varint ‖ event 16 B ‖ observation )
//! signature: 64 B     ed25519 over crypto::receipt_batch_message(header ‖ body)
//! ```
//!
//! Entries are in strictly increasing `(device, seq, event)` order: a batch holds at
//! most one receipt per witnessed event, and one set of entries has one encoding.
//! An entry is a [`Receipt`] body without its `witness`, which the batch names once.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto;
use crate::envelope::{Header, Kind};
use crate::error::{DecodeError, EncodeError, SignatureError};
use crate::ids::{Digest, LinkDigest, ShortId, WitnessId};
use crate::limits::{HEADER_LEN, MAX_BATCH_ENTRIES, MAX_RECEIPT_BATCH, SIGNATURE_LEN};
use crate::receipt::{Observation, Receipt};

/// One receipt of a batch: what the witness saw of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub device: ShortId,
    pub seq: u32,
    /// Link digest of the witnessed event.
    pub event: LinkDigest,
    pub observed: Observation,
}

impl Entry {
    /// The key entries are ordered by (strictly increasing within a batch).
    pub fn order_key(&self) -> (ShortId, u32, LinkDigest) {
        (self.device, self.seq, self.event)
    }

    /// The receipt body this entry stands for, signed by `witness`.
    pub fn receipt(&self, witness: WitnessId) -> Receipt {
        Receipt {
            witness,
            device: self.device,
            seq: self.seq,
            event: self.event,
            observed: self.observed,
        }
    }
}

impl From<&Receipt> for Entry {
    fn from(r: &Receipt) -> Self {
        Self {
            device: r.device,
            seq: r.seq,
            event: r.event,
            observed: r.observed,
        }
    }
}

/// The fields before the entries. `count` is a varint like a postcard sequence length.
#[derive(Serialize, Deserialize)]
struct Head {
    witness: WitnessId,
    time_ms: u64,
    count: u32,
}

/// Largest encoding of a [`Head`]: witness 8, time ≤ 10, count ≤ 5.
const MAX_HEAD: usize = 23;

/// A decoded batched witness receipt, borrowing its input. Decoding checks the form
/// (bounds, canonical encoding, entry order); [`Self::verify_witness`] checks the one
/// signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptBatch<'a> {
    frame: &'a [u8],
    witness: WitnessId,
    time_ms: u64,
    count: u16,
    entries: &'a [u8],
}

impl<'a> ReceiptBatch<'a> {
    /// Decodes a batch: header, canonical body, signature, nothing else. Never panics,
    /// never allocates.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Header::expect(bytes, Kind::ReceiptBatch, MAX_RECEIPT_BATCH)?;
        if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
            return Err(DecodeError::Truncated);
        }
        let body = &bytes[HEADER_LEN..bytes.len() - SIGNATURE_LEN];
        let (head, entries) = codec::take_exact::<Head, MAX_HEAD>(body)?;
        let count = usize::try_from(head.count).unwrap_or(usize::MAX);
        if count == 0 {
            return Err(DecodeError::InvalidField("receipt batch without entries"));
        }
        if count > MAX_BATCH_ENTRIES {
            return Err(DecodeError::TooManyEntries {
                count,
                max: MAX_BATCH_ENTRIES,
            });
        }
        let mut rest = entries;
        let mut previous = None;
        for _ in 0..count {
            let (entry, tail) = take_entry(rest)?;
            entry.observed.check().map_err(DecodeError::InvalidField)?;
            check_order(&mut previous, &entry).map_err(DecodeError::InvalidField)?;
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Self {
            frame: bytes,
            witness: head.witness,
            time_ms: head.time_ms,
            // count ≤ MAX_BATCH_ENTRIES (256), checked above.
            count: u16::try_from(count).unwrap_or(u16::MAX),
            entries,
        })
    }

    /// Encodes and signs a batch of `entries` (in strictly increasing
    /// [`Entry::order_key`] order, at least one, at most [`MAX_BATCH_ENTRIES`]) into
    /// `out`, returning the frame's length. Needs no allocation: `out` of
    /// [`MAX_RECEIPT_BATCH`] bytes always suffices.
    pub fn sign_into(
        key: &SigningKey,
        time_ms: u64,
        entries: impl IntoIterator<Item = Entry>,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let witness = crypto::witness_id(key.verifying_key().as_bytes());
        let header = out.get_mut(..HEADER_LEN).ok_or(EncodeError::TooLarge)?;
        header.copy_from_slice(&Header::bytes(Kind::ReceiptBatch));
        let head_len = codec::encode_into(
            &(witness, time_ms),
            out.get_mut(HEADER_LEN..).ok_or(EncodeError::TooLarge)?,
        )?;
        // Room for a two-byte count (MAX_BATCH_ENTRIES needs two); closed up below
        // when one byte suffices.
        let count_at = HEADER_LEN + head_len;
        let first_entry = count_at + 2;
        let mut at = first_entry;
        let mut count = 0usize;
        let mut previous = None;
        let mut entries = entries.into_iter();
        for entry in entries.by_ref() {
            if count == MAX_BATCH_ENTRIES {
                return Err(EncodeError::TooManyEntries {
                    count: count + 1 + entries.count(),
                    max: MAX_BATCH_ENTRIES,
                });
            }
            entry.observed.check().map_err(EncodeError::InvalidField)?;
            check_order(&mut previous, &entry).map_err(EncodeError::InvalidField)?;
            let slot = out.get_mut(at..).ok_or(EncodeError::TooLarge)?;
            at += codec::encode_into(&entry, slot)?;
            count += 1;
        }
        if count == 0 {
            return Err(EncodeError::InvalidField("receipt batch without entries"));
        }
        let mut varint = [0u8; 2];
        let count_len = codec::encode_into(&u32::try_from(count).unwrap_or(u32::MAX), &mut varint)?;
        out.copy_within(first_entry..at, count_at + count_len);
        out[count_at..count_at + count_len].copy_from_slice(&varint[..count_len]);
        let signed_len = at - (2 - count_len);
        let total = signed_len + SIGNATURE_LEN;
        if total > MAX_RECEIPT_BATCH {
            return Err(EncodeError::TooLarge);
        }
        let message = crypto::receipt_batch_message(&out[..signed_len]);
        out.get_mut(signed_len..total)
            .ok_or(EncodeError::TooLarge)?
            .copy_from_slice(&crypto::sign(key, &message));
        Ok(total)
    }

    /// The signing gateway.
    pub fn witness(&self) -> WitnessId {
        self.witness
    }

    /// When the witness closed the batch (its own clock, ms since the Unix epoch).
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// Number of entries, 1..=[`MAX_BATCH_ENTRIES`].
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Always false: a decoded batch holds at least one entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, in their (strictly increasing) order.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            rest: self.entries,
            left: self.count,
        }
    }

    /// Entry `index`, if the batch has that many.
    pub fn entry(&self, index: usize) -> Option<Entry> {
        self.entries().nth(index)
    }

    /// Every entry as the [`Receipt`] body it stands for (witness filled in).
    pub fn receipts(&self) -> impl ExactSizeIterator<Item = Receipt> + 'a {
        let witness = self.witness;
        self.entries().map(move |e| e.receipt(witness))
    }

    /// Checks the batch's one signature under the witness's public key, and that the
    /// key is the one the batch names. One failure condemns every entry: there is no
    /// per-entry signature to fall back to.
    pub fn verify_witness(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        if self.witness != crypto::witness_id(key.as_bytes()) {
            return Err(SignatureError::BadKey);
        }
        crypto::verify(key, &self.message(), self.signature())
    }

    /// The 32-byte message the signature covers (for batch verification).
    pub fn message(&self) -> [u8; 32] {
        crypto::receipt_batch_message(self.signed_bytes())
    }

    /// The digest naming this frame ([`crypto::receipt_batch_digest`]).
    pub fn digest(&self) -> Digest {
        crypto::receipt_batch_digest(self.frame)
    }

    /// The whole frame, as received.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }

    /// The frame without its signature.
    pub fn signed_bytes(&self) -> &'a [u8] {
        &self.frame[..self.frame.len() - SIGNATURE_LEN]
    }

    /// The raw signature.
    pub fn signature(&self) -> &'a [u8; SIGNATURE_LEN] {
        let tail = &self.frame[self.frame.len() - SIGNATURE_LEN..];
        // decode() checked the frame ends with SIGNATURE_LEN bytes.
        match tail.try_into() {
            Ok(sig) => sig,
            Err(_) => unreachable!("a decoded batch always ends with a signature"),
        }
    }
}

/// The entries of a decoded batch.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
    left: u16,
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.left == 0 {
            return None;
        }
        // decode() checked every entry; a failure here cannot happen and would end the
        // iteration rather than panic.
        let Ok((entry, tail)) = take_entry(self.rest) else {
            self.left = 0;
            return None;
        };
        self.rest = tail;
        self.left -= 1;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.left);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Entries<'_> {}

/// Decodes one canonical entry from the front of `bytes`: the same bytes that
/// `codec::take_exact::<Entry, MAX_BATCH_ENTRY>` accepts, with the same values (a
/// property test holds them equal), read directly instead of through serde and a
/// re-encoding — a receiver reads every entry of every batch it gets.
fn take_entry(bytes: &[u8]) -> Result<(Entry, &[u8]), DecodeError> {
    let mut r = Reader {
        rest: bytes,
        non_canonical: false,
    };
    let device = ShortId(r.array()?);
    let seq = r.varint(32)? as u32;
    let event = LinkDigest(r.array()?);
    let rssi_dbm = zigzag16(r.varint(16)?);
    let snr_qdb = zigzag16(r.varint(16)?);
    let freq_hz = r.varint(32)? as u32;
    let foff_hz = match r.byte()? {
        0 => None,
        1 => {
            let z = r.varint(32)? as u32;
            Some(((z >> 1) as i32) ^ -((z & 1) as i32))
        }
        _ => return Err(DecodeError::MalformedBody),
    };
    let sf = r.byte()?;
    let time_ms = r.varint(64)?;
    if r.non_canonical {
        return Err(DecodeError::NonCanonical);
    }
    let entry = Entry {
        device,
        seq,
        event,
        observed: Observation {
            rssi_dbm,
            snr_qdb,
            freq_hz,
            foff_hz,
            sf,
            time_ms,
        },
    };
    Ok((entry, r.rest))
}

/// Zigzag-decodes a postcard `i16` (read as a 16-bit varint).
fn zigzag16(z: u64) -> i16 {
    let z = z as u16;
    ((z >> 1) as i16) ^ -((z & 1) as i16)
}

/// A cursor over an entry's bytes. Like postcard followed by the re-encoding check of
/// `codec::take_exact`: a malformed field ends the read at once (`MalformedBody`), an
/// encoding that is well formed but not the shortest is noted and refused once the
/// whole entry has been read (`NonCanonical`).
struct Reader<'a> {
    rest: &'a [u8],
    non_canonical: bool,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::MalformedBody)?;
        self.rest = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::MalformedBody)?;
        self.rest = rest;
        Ok(*head)
    }

    /// A postcard (LEB128) varint of an unsigned integer of `bits` bits (16, 32 or
    /// 64): at most ⌈bits / 7⌉ bytes, the last of them within the bits left.
    fn varint(&mut self, bits: u32) -> Result<u64, DecodeError> {
        let max_bytes = bits.div_ceil(7);
        let last_max = (1u8 << (bits % 7)) - 1;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > last_max {
                    return Err(DecodeError::MalformedBody);
                }
                if i > 0 && b == 0 {
                    self.non_canonical = true;
                }
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedBody)
    }
}

fn check_order(
    previous: &mut Option<(ShortId, u32, LinkDigest)>,
    entry: &Entry,
) -> Result<(), &'static str> {
    let key = entry.order_key();
    if previous.is_some_and(|p| key <= p) {
        return Err("receipt batch entries not in strictly increasing order");
    }
    *previous = Some(key);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_BATCH_ENTRY;
    use proptest::prelude::*;

    /// The serde path the direct reader replaces: postcard, then the re-encoding check.
    fn by_serde(bytes: &[u8]) -> Result<(Entry, &[u8]), DecodeError> {
        codec::take_exact::<Entry, MAX_BATCH_ENTRY>(bytes)
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (
            any::<[u8; 8]>(),
            any::<u32>(),
            any::<[u8; 16]>(),
            (any::<i16>(), any::<i16>(), any::<u32>()),
            (any::<Option<i32>>(), any::<u8>(), any::<u64>()),
        )
            .prop_map(
                |(device, seq, event, (rssi_dbm, snr_qdb, freq_hz), (foff_hz, sf, time_ms))| {
                    Entry {
                        device: ShortId(device),
                        seq,
                        event: LinkDigest(event),
                        observed: Observation {
                            rssi_dbm,
                            snr_qdb,
                            freq_hz,
                            foff_hz,
                            sf,
                            time_ms,
                        },
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every encoded entry, and every corruption of one (a byte changed, the tail
        /// cut, a byte stretched, bytes appended), reads the same through both paths: same entry and rest,
        /// or the same error.
        #[test]
        fn direct_reader_matches_serde(
            e in entry(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![any::<u8>(), prop::sample::select(&[0u8, 1, 2, 3, 4, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0xff][..])],
            cut in 0usize..60,
            tail in prop::collection::vec(any::<u8>(), 0..4),
            how in 0u8..4,
        ) {
            let mut buf = [0u8; MAX_BATCH_ENTRY];
            let n = codec::encode_into(&e, &mut buf).unwrap();
            let mut bytes = buf[..n].to_vec();
            match how {
                0 => { let i = at.index(bytes.len()); bytes[i] = byte; }
                1 => bytes.truncate(cut.min(bytes.len())),
                // Stretch: a byte gets the continuation bit and a zero byte follows
                // (a varint's last byte becomes a longer encoding of the same value).
                3 => {
                    let i = at.index(bytes.len());
                    bytes[i] |= 0x80;
                    bytes.insert(i + 1, 0);
                }
                _ => {}
            }
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(take_entry(&bytes), by_serde(&bytes));
            if how == 2 {
                prop_assert_eq!(take_entry(&bytes).map(|(e, _)| e), Ok(e));
            }
        }

        /// Arbitrary bytes too (mostly refused, and refused the same way).
        #[test]
        fn direct_reader_matches_serde_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(take_entry(&bytes), by_serde(&bytes));
        }
    }

    /// Varints that are well formed but longer than needed are `NonCanonical`; one byte
    /// too many or a last byte over the type's bits is malformed.
    #[test]
    fn varint_edges() {
        let read = |b: &[u8], bits| {
            Reader {
                rest: b,
                non_canonical: false,
            }
            .varint(bits)
        };
        assert_eq!(read(&[0x7f], 16), Ok(127));
        assert_eq!(read(&[0xff, 0xff, 0x03], 16), Ok(65535));
        assert_eq!(
            read(&[0xff, 0xff, 0x04], 16),
            Err(DecodeError::MalformedBody)
        );
        assert_eq!(
            read(&[0x80, 0x80, 0x80, 0x00], 16),
            Err(DecodeError::MalformedBody)
        );
        let mut r = Reader {
            rest: &[0x81, 0x00],
            non_canonical: false,
        };
        assert_eq!(r.varint(32), Ok(1));
        assert!(r.non_canonical);
        let mut max64 = [0xffu8; 10];
        max64[9] = 0x01;
        assert_eq!(read(&max64, 64), Ok(u64::MAX));
        max64[9] = 0x02;
        assert_eq!(read(&max64, 64), Err(DecodeError::MalformedBody));
    }
}
