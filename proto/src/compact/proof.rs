//! Suite-2 divergence proofs (kind 4): two different frames that verify under one
//! disclosed key for one interval, each with a gateway receipt showing it arrived
//! before that key could be known. Checked with no other state by
//! [`CompactProof::verify`]. Travels over libp2p only.
//!
//! ```text
//! header 01 02 04
//! inception : bytes                       suite-1 inception (device id, key epoch 0)
//! rotations : varint n ‖ bytes^n          suite-1 rotations, epochs 1..=n in order
//! anchor    : bytes                       suite-2 anchor signed by the epoch-n key
//! renewals  : varint m ‖ (bytes renewal ‖ bytes receipt ‖ key [16])^m
//! key       : [16]                        K(i), the key of the conflicting interval
//! first     : bytes frame ‖ bytes receipt
//! second    : bytes frame ‖ bytes receipt  first frame < second frame, bytewise
//! ```
//!
//! `bytes` is a varint length then the bytes; varints are minimal LEB128 (postcard).
//! Each renewal carries its interval's key and a receipt, because a renewal, like an
//! attestation, is only evidence if it arrived before its key was public.

use super::anchor::{Anchor, SignedAnchor};
use super::attestation::Attestation;
use super::crypto::{self, ChainKey};
use super::error::ProofError;
use super::frame::{Kind, Maced, MacedBody, expect_kind, header, parse_header};
use super::params::{KEY_LEN, MAX_PROOF_RENEWALS, MAX_PROOF_ROTATIONS};
use super::receipt::Receipt;
use super::renewal::Renewal;
use crate::crypto as c1;
use crate::error::DecodeError;
use crate::event::{Inception, Rotation};
use crate::ids::DeviceId;
use crate::limits::{HEADER_LEN, MAX_PROOF};
use crate::signed::Signed;

/// A decoded (not yet verified) suite-2 divergence proof, borrowing its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactProof<'a> {
    inception: &'a [u8],
    rotations: &'a [u8],
    n_rotations: usize,
    anchor: &'a [u8],
    renewals: &'a [u8],
    n_renewals: usize,
    key: [u8; KEY_LEN],
    first: (&'a [u8], &'a [u8]),
    second: (&'a [u8], &'a [u8]),
}

/// What a verified proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Divergence {
    /// The device that made two different frames for one interval.
    pub device: DeviceId,
    /// The interval.
    pub interval: u32,
    /// The suite-1 epoch whose key signed the anchor.
    pub epoch: u32,
    /// The gateways (ed25519 public keys) whose receipts date the two frames. The
    /// proof is as strong as the less trusted of them: a checker's policy decides
    /// whether they are registered witnesses.
    pub witnesses: [[u8; 32]; 2],
}

/// The parts of a proof, for [`CompactProof::encode`].
#[derive(Debug, Clone, Copy)]
pub struct Parts<'p> {
    pub inception: &'p [u8],
    pub rotations: &'p [&'p [u8]],
    pub anchor: &'p [u8],
    /// (renewal frame, its receipt, the key of its interval).
    pub renewals: &'p [(&'p [u8], &'p [u8], &'p ChainKey)],
    pub key: &'p ChainKey,
    /// (frame, receipt), in any order: encoding sorts them.
    pub a: (&'p [u8], &'p [u8]),
    pub b: (&'p [u8], &'p [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<usize, DecodeError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            let bits = u32::from(b & 0x7f);
            if i == 4 && bits > 0x0f {
                return Err(DecodeError::MalformedBody);
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::NonCanonical);
                }
                return usize::try_from(v).map_err(|_| DecodeError::MalformedBody);
            }
        }
        Err(DecodeError::MalformedBody)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        self.take(n)
    }
    fn key(&mut self) -> Result<[u8; KEY_LEN], DecodeError> {
        let mut k = [0u8; KEY_LEN];
        k.copy_from_slice(self.take(KEY_LEN)?);
        Ok(k)
    }
}

struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), ProofError> {
        let end = self.pos + b.len();
        let dst = self
            .out
            .get_mut(self.pos..end)
            .ok_or(ProofError::Encode(crate::EncodeError::TooLarge))?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    fn varint(&mut self, mut v: usize) -> Result<(), ProofError> {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return self.put(&[b]);
            }
            self.put(&[b | 0x80])?;
        }
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), ProofError> {
        self.varint(b.len())?;
        self.put(b)
    }
}

/// A MAC'd frame of either kind.
enum AnyMaced {
    Attestation(Maced<Attestation>),
    Renewal(Maced<Renewal>),
}

impl AnyMaced {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match parse_header(bytes)? {
            Kind::Attestation => Ok(Self::Attestation(Maced::decode(bytes)?)),
            Kind::Renewal => Ok(Self::Renewal(Maced::decode(bytes)?)),
            other => Err(DecodeError::UnexpectedKind {
                expected: Kind::Attestation as u8,
                found: other as u8,
            }),
        }
    }
    fn interval(&self) -> u32 {
        match self {
            Self::Attestation(m) => m.body().interval(),
            Self::Renewal(m) => m.body().interval(),
        }
    }
    fn device(&self) -> crate::ids::ShortId {
        match self {
            Self::Attestation(m) => m.body().device(),
            Self::Renewal(m) => m.body().device(),
        }
    }
    fn verify(&self, mac_key: &[u8; 32]) -> bool {
        match self {
            Self::Attestation(m) => m.verify(mac_key),
            Self::Renewal(m) => m.verify(mac_key),
        }
    }
}

/// The chain a proof has reached: (first interval, length, public end).
struct Chain {
    first: u32,
    len: u32,
    anchor: ChainKey,
}

impl Chain {
    fn local(&self, interval: u32) -> Result<u32, ProofError> {
        let l = interval.wrapping_sub(self.first).wrapping_add(1);
        if interval < self.first || l > self.len {
            return Err(ProofError::OutsideChain(interval));
        }
        Ok(l)
    }
    /// Checks that `key` is the key of `interval` and returns its MAC key.
    fn mac_key(
        &self,
        device: &DeviceId,
        interval: u32,
        key: &ChainKey,
    ) -> Result<[u8; 32], ProofError> {
        let l = self.local(interval)?;
        if crypto::walk(device, self.first, l, key, 0) != self.anchor {
            return Err(ProofError::BadKey);
        }
        Ok(crypto::mac_key(key))
    }
}

/// Checks a frame's receipt: signature, names the frame, meets the security condition.
fn check_receipt(
    frame: &[u8],
    receipt: &[u8],
    interval: u32,
    schedule: &Anchor,
    max_skew_ms: u64,
) -> Result<[u8; 32], ProofError> {
    let r = Receipt::decode(receipt)?;
    r.verify()?;
    if r.body().frame != crypto::frame_digest(frame) {
        return Err(ProofError::ReceiptMismatch);
    }
    if !schedule.in_time(interval, r.body().rx_ms, max_skew_ms) {
        return Err(ProofError::Late {
            interval,
            rx_ms: r.body().rx_ms,
        });
    }
    Ok(r.body().witness)
}

impl<'a> CompactProof<'a> {
    /// Decodes the structure of a proof (parts are decoded by [`Self::verify`]).
    /// Never panics, never allocates.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        expect_kind(bytes, Kind::Divergence)?;
        if bytes.len() > MAX_PROOF {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max: MAX_PROOF,
            });
        }
        let mut r = Reader {
            buf: bytes,
            pos: HEADER_LEN,
        };
        let inception = r.bytes()?;
        let n_rotations = r.varint()?;
        if n_rotations > MAX_PROOF_ROTATIONS {
            return Err(DecodeError::MalformedBody);
        }
        let start = r.pos;
        for _ in 0..n_rotations {
            r.bytes()?;
        }
        let rotations = &bytes[start..r.pos];
        let anchor = r.bytes()?;
        let n_renewals = r.varint()?;
        if n_renewals > MAX_PROOF_RENEWALS {
            return Err(DecodeError::MalformedBody);
        }
        let start = r.pos;
        for _ in 0..n_renewals {
            r.bytes()?;
            r.bytes()?;
            r.key()?;
        }
        let renewals = &bytes[start..r.pos];
        let key = r.key()?;
        let first = (r.bytes()?, r.bytes()?);
        let second = (r.bytes()?, r.bytes()?);
        if r.pos != bytes.len() {
            return Err(DecodeError::TrailingBytes);
        }
        if first.0 >= second.0 {
            return Err(DecodeError::NonCanonical);
        }
        Ok(Self {
            inception,
            rotations,
            n_rotations,
            anchor,
            renewals,
            n_renewals,
            key,
            first,
            second,
        })
    }

    /// Encodes a proof into `out`, returning its length.
    pub fn encode(parts: &Parts<'_>, out: &mut [u8]) -> Result<usize, ProofError> {
        if parts.rotations.len() > MAX_PROOF_ROTATIONS || parts.renewals.len() > MAX_PROOF_RENEWALS
        {
            return Err(ProofError::Encode(crate::EncodeError::TooLarge));
        }
        let cap = out.len().min(MAX_PROOF);
        let mut w = Writer {
            out: &mut out[..cap],
            pos: 0,
        };
        w.put(&header(Kind::Divergence))?;
        w.bytes(parts.inception)?;
        w.varint(parts.rotations.len())?;
        for r in parts.rotations {
            w.bytes(r)?;
        }
        w.bytes(parts.anchor)?;
        w.varint(parts.renewals.len())?;
        for (frame, receipt, key) in parts.renewals {
            w.bytes(frame)?;
            w.bytes(receipt)?;
            w.put(&key.0)?;
        }
        w.put(&parts.key.0)?;
        let (a, b) = if parts.a.0 <= parts.b.0 {
            (parts.a, parts.b)
        } else {
            (parts.b, parts.a)
        };
        for (frame, receipt) in [a, b] {
            w.bytes(frame)?;
            w.bytes(receipt)?;
        }
        Ok(w.pos)
    }

    /// Checks the proof with no other state. `max_skew_ms` is the clock bound of the
    /// security condition (the checker's policy, normally the verifier's own).
    pub fn verify(&self, max_skew_ms: u64) -> Result<Divergence, ProofError> {
        // Suite-1 key history: inception, then rotations epoch 1, 2, … in order.
        let inception = Signed::<Inception>::decode(self.inception)?;
        let device = inception.device_id();
        let mut key = c1::verifying_key(&inception.body().key)?;
        inception.verify(&device, &key)?;
        let mut commitment = inception.body().next_key;
        let mut epoch = 0u32;
        let mut r = Reader {
            buf: self.rotations,
            pos: 0,
        };
        for _ in 0..self.n_rotations {
            let rot = Signed::<Rotation>::decode(r.bytes()?)?;
            let body = rot.body();
            if body.device != device.short()
                || body.epoch != epoch + 1
                || c1::next_key_digest(&body.key) != commitment
            {
                return Err(ProofError::BrokenKeyChain);
            }
            key = c1::verifying_key(&body.key)?;
            rot.verify(&device, &key)?;
            commitment = body.next_key;
            epoch = body.epoch;
        }

        // The anchor, signed by the last key of that history.
        let anchor = SignedAnchor::decode(self.anchor)?;
        if anchor.body().epoch != epoch {
            return Err(ProofError::AnchorEpoch);
        }
        anchor.verify(&device, &key)?;
        let schedule = anchor.body().clone();
        let mut chain = Chain {
            first: schedule.first,
            len: schedule.len,
            anchor: schedule.anchor.clone(),
        };

        // Renewals, each authenticated by the chain before it and dated in time.
        let mut r = Reader {
            buf: self.renewals,
            pos: 0,
        };
        for _ in 0..self.n_renewals {
            let frame = r.bytes()?;
            let receipt = r.bytes()?;
            let k = ChainKey(r.key()?);
            let renewal = Maced::<Renewal>::decode(frame)?;
            let body = renewal.body();
            if body.device != device.short() {
                return Err(ProofError::WrongDevice);
            }
            let mk = chain.mac_key(&device, body.interval, &k)?;
            if !renewal.verify(&mk) {
                return Err(ProofError::BadMac);
            }
            check_receipt(frame, receipt, body.interval, &schedule, max_skew_ms)?;
            let first = chain
                .first
                .checked_add(chain.len)
                .ok_or(ProofError::OutsideChain(u32::MAX))?;
            if first.checked_add(body.len).is_none() {
                return Err(ProofError::OutsideChain(first));
            }
            chain = Chain {
                first,
                len: body.len,
                anchor: body.anchor.clone(),
            };
        }

        // The two conflicting frames.
        let a = AnyMaced::decode(self.first.0)?;
        let b = AnyMaced::decode(self.second.0)?;
        if a.device() != device.short() || b.device() != device.short() {
            return Err(ProofError::WrongDevice);
        }
        let interval = a.interval();
        if b.interval() != interval || self.first.0 == self.second.0 {
            return Err(ProofError::NoConflict);
        }
        let mk = chain.mac_key(&device, interval, &ChainKey(self.key))?;
        if !a.verify(&mk) || !b.verify(&mk) {
            return Err(ProofError::BadMac);
        }
        let w1 = check_receipt(self.first.0, self.first.1, interval, &schedule, max_skew_ms)?;
        let w2 = check_receipt(
            self.second.0,
            self.second.1,
            interval,
            &schedule,
            max_skew_ms,
        )?;
        Ok(Divergence {
            device,
            interval,
            epoch,
            witnesses: [w1, w2],
        })
    }

    /// The two conflicting frames, in canonical order.
    pub fn frames(&self) -> (&'a [u8], &'a [u8]) {
        (self.first.0, self.second.0)
    }
}
