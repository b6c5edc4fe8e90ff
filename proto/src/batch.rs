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
use crate::limits::{
    HEADER_LEN, MAX_BATCH_ENTRIES, MAX_BATCH_ENTRY, MAX_RECEIPT_BATCH, SIGNATURE_LEN,
};
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
            let (entry, tail) = codec::take_exact::<Entry, MAX_BATCH_ENTRY>(rest)?;
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
        let Ok((entry, tail)) = postcard::take_from_bytes::<Entry>(self.rest) else {
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
