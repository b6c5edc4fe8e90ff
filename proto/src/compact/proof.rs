//! Suite-2 divergence proofs (kind 4): two different frames that verify under one
//! disclosed key for one interval, each dated by gateway receipts showing it arrived
//! before that key could be known. Checked with no other state by
//! [`CompactProof::verify`] (cryptography and dating) and
//! [`CompactProof::verify_with`] (plus the checker's policy on who dated each frame).
//! Travels over libp2p only.
//!
//! ```text
//! header 01 02 04
//! inception : bytes                       suite-1 inception (device id, key epoch 0)
//! rotations : varint n ‖ bytes^n          suite-1 rotations, epochs 1..=n in order
//! anchor    : bytes                       suite-2 anchor signed by the epoch-n key
//! renewals  : varint m ‖ (bytes renewal ‖ dating ‖ key [16])^m
//! key       : [16]                        K(i), the key of the conflicting interval
//! first     : bytes frame ‖ dating
//! second    : bytes frame ‖ dating        first frame < second frame, bytewise
//! dating    : varint k ‖ bytes receipt^k  1 ≤ k ≤ MAX_DATING, witnesses strictly ascending
//! ```
//!
//! `bytes` is a varint length then the bytes; varints are minimal LEB128 (postcard).
//! Each renewal carries its interval's key and its dating, because a renewal, like an
//! attestation, is only evidence if it arrived before its key was public.
//!
//! **Why several receipts per frame.** Once `K(i)` is public anyone can MAC a frame for
//! interval `i`; only the receipts say the frame existed before that. A single
//! witness that back-dates a receipt could therefore make a second frame and frame an
//! honest device. Each frame (and renewal) carries up to [`MAX_DATING`] receipts of
//! distinct witnesses, every one valid and in time, so a checker can require the
//! dating of independent witnesses (two trust zones, or itself) before it acts
//! (docs/compact-suite.md §5).

use super::anchor::{Anchor, SignedAnchor};
use super::attestation::Attestation;
use super::crypto::{self, ChainKey};
use super::error::ProofError;
use super::frame::{Kind, Maced, MacedBody, expect_kind, header, parse_header};
use super::params::{KEY_LEN, MAX_DATING, MAX_PROOF_RENEWALS, MAX_PROOF_ROTATIONS};
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
    first: Item<'a>,
    second: Item<'a>,
}

/// A dated item of a proof: a frame and the encoded list of its receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item<'a> {
    frame: &'a [u8],
    /// `n` receipts, each `bytes`.
    receipts: &'a [u8],
    n: usize,
}

/// The witnesses (ed25519 public keys) whose valid, in-time receipts date one frame of a
/// proof: distinct, in ascending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dating {
    keys: [[u8; 32]; MAX_DATING],
    len: u8,
}

impl Dating {
    /// The witnesses, ascending.
    pub fn witnesses(&self) -> &[[u8; 32]] {
        &self.keys[..usize::from(self.len)]
    }
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
    /// The witnesses whose receipts date each of the two frames (canonical order). The
    /// proof is as strong as the dating of its less well dated frame: a checker's
    /// policy ([`CompactProof::verify_with`]) decides whose word it takes.
    pub dating: [Dating; 2],
}

/// A renewal in [`Parts`]: its frame, the receipts dating it, the key of its interval.
pub type DatedRenewal<'p> = (&'p [u8], &'p [&'p [u8]], &'p ChainKey);

/// The parts of a proof, for [`CompactProof::encode`].
#[derive(Debug, Clone, Copy)]
pub struct Parts<'p> {
    pub inception: &'p [u8],
    pub rotations: &'p [&'p [u8]],
    pub anchor: &'p [u8],
    /// Each renewal: (frame, its receipts, the key of its interval).
    pub renewals: &'p [DatedRenewal<'p>],
    pub key: &'p ChainKey,
    /// (frame, receipts), in any order: encoding sorts the frames, and each frame's
    /// receipts by witness, keeping one receipt per witness (the first given). At least
    /// one and at most [`MAX_DATING`] distinct witnesses per frame.
    pub a: (&'p [u8], &'p [&'p [u8]]),
    pub b: (&'p [u8], &'p [&'p [u8]]),
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
    /// A frame and its receipt list (structure only).
    fn item(&mut self) -> Result<Item<'a>, DecodeError> {
        let frame = self.bytes()?;
        let n = self.varint()?;
        if n == 0 || n > MAX_DATING {
            return Err(DecodeError::MalformedBody);
        }
        let start = self.pos;
        for _ in 0..n {
            self.bytes()?;
        }
        Ok(Item {
            frame,
            receipts: &self.buf[start..self.pos],
            n,
        })
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
    /// A frame's receipts: one per witness (the first given), ascending by witness.
    fn dating(&mut self, receipts: &[&[u8]]) -> Result<(), ProofError> {
        self.dating_capped(receipts, false)
    }

    /// [`Self::dating`]; with `cap`, receipts of witnesses beyond `MAX_DATING` are
    /// dropped instead of refused.
    fn dating_capped(&mut self, receipts: &[&[u8]], cap: bool) -> Result<(), ProofError> {
        let mut kept: [([u8; 32], &[u8]); MAX_DATING] = [([0; 32], &[]); MAX_DATING];
        let mut n = 0;
        for r in receipts {
            let w = Receipt::decode(r)?.body().witness;
            if kept[..n].iter().any(|(k, _)| *k == w) || (cap && n == MAX_DATING) {
                continue;
            }
            let slot =
                kept.get_mut(n)
                    .ok_or(ProofError::Encode(crate::EncodeError::TooManyEntries {
                        count: n + 1,
                        max: MAX_DATING,
                    }))?;
            *slot = (w, r);
            n += 1;
        }
        if n == 0 {
            return Err(ProofError::Encode(crate::EncodeError::InvalidField(
                "a proof frame needs at least one receipt",
            )));
        }
        let kept = &mut kept[..n];
        kept.sort_unstable_by_key(|k| k.0);
        self.varint(n)?;
        for (_, r) in kept.iter() {
            self.bytes(r)?;
        }
        Ok(())
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

/// Checks every receipt of an item (valid, names the frame, in time) and that their
/// witnesses are distinct and ascending; returns them.
fn check_dating(
    frame: &[u8],
    receipts: &[u8],
    n: usize,
    interval: u32,
    schedule: &Anchor,
    max_skew_ms: u64,
) -> Result<Dating, ProofError> {
    let mut dating = Dating {
        keys: [[0; 32]; MAX_DATING],
        len: 0,
    };
    let mut r = Reader {
        buf: receipts,
        pos: 0,
    };
    for i in 0..n.min(MAX_DATING) {
        let w = check_receipt(frame, r.bytes()?, interval, schedule, max_skew_ms)?;
        if i > 0 && w <= dating.keys[i - 1] {
            return Err(ProofError::Decode(DecodeError::NonCanonical));
        }
        dating.keys[i] = w;
        dating.len += 1;
    }
    Ok(dating)
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
            r.item()?;
            r.key()?;
        }
        let renewals = &bytes[start..r.pos];
        let key = r.key()?;
        let first = r.item()?;
        let second = r.item()?;
        if r.pos != bytes.len() {
            return Err(DecodeError::TrailingBytes);
        }
        if first.frame >= second.frame {
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
        for (frame, receipts, key) in parts.renewals {
            w.bytes(frame)?;
            w.dating(receipts)?;
            w.put(&key.0)?;
        }
        w.put(&parts.key.0)?;
        let (a, b) = if parts.a.0 <= parts.b.0 {
            (parts.a, parts.b)
        } else {
            (parts.b, parts.a)
        };
        for (frame, receipts) in [a, b] {
            w.bytes(frame)?;
            w.dating(receipts)?;
        }
        Ok(w.pos)
    }

    /// Checks the proof with no other state: key history, anchor, renewals, MACs, and
    /// every receipt (valid, naming its frame, in time). `max_skew_ms` is the clock
    /// bound of the security condition (the checker's policy, normally the verifier's
    /// own). It does not judge *who* dated the frames: see [`Self::verify_with`].
    pub fn verify(&self, max_skew_ms: u64) -> Result<Divergence, ProofError> {
        self.verify_with(max_skew_ms, |_| true)
    }

    /// [`Self::verify`], and `accept` must take the dating of every renewal and of both
    /// frames ([`ProofError::Undated`] otherwise): the checker's policy on whose word
    /// dates a frame (a trust engine asks for witnesses of two trust zones, or itself).
    pub fn verify_with(
        &self,
        max_skew_ms: u64,
        mut accept: impl FnMut(&Dating) -> bool,
    ) -> Result<Divergence, ProofError> {
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
            let item = r.item()?;
            let frame = item.frame;
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
            let dating = check_dating(
                frame,
                item.receipts,
                item.n,
                body.interval,
                &schedule,
                max_skew_ms,
            )?;
            if !accept(&dating) {
                return Err(ProofError::Undated {
                    interval: body.interval,
                });
            }
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
        let a = AnyMaced::decode(self.first.frame)?;
        let b = AnyMaced::decode(self.second.frame)?;
        if a.device() != device.short() || b.device() != device.short() {
            return Err(ProofError::WrongDevice);
        }
        let interval = a.interval();
        if b.interval() != interval || self.first.frame == self.second.frame {
            return Err(ProofError::NoConflict);
        }
        let mk = chain.mac_key(&device, interval, &ChainKey(self.key))?;
        if !a.verify(&mk) || !b.verify(&mk) {
            return Err(ProofError::BadMac);
        }
        let mut dating = [Dating {
            keys: [[0; 32]; MAX_DATING],
            len: 0,
        }; 2];
        for (slot, item) in dating.iter_mut().zip([&self.first, &self.second]) {
            *slot = check_dating(
                item.frame,
                item.receipts,
                item.n,
                interval,
                &schedule,
                max_skew_ms,
            )?;
            if !accept(slot) {
                return Err(ProofError::Undated { interval });
            }
        }
        Ok(Divergence {
            device,
            interval,
            epoch,
            dating,
        })
    }

    /// Re-encodes the proof into `out` with `receipt(frame)` added to the dating of
    /// every renewal and frame it gives one for: a checker that received a frame in time
    /// itself adds its own receipt (its own word, `dated_enough` in the node). Added
    /// receipts come first; existing ones of other witnesses are kept while
    /// [`MAX_DATING`] allows. Nothing is verified here.
    pub fn with_receipts<'r>(
        &self,
        mut receipt: impl FnMut(&[u8]) -> Option<&'r [u8]>,
        out: &mut [u8],
    ) -> Result<usize, ProofError> {
        let cap = out.len().min(MAX_PROOF);
        let mut w = Writer {
            out: &mut out[..cap],
            pos: 0,
        };
        let mut item = |w: &mut Writer<'_>, it: &Item<'a>| -> Result<(), ProofError> {
            let mut list: [&[u8]; MAX_DATING + 1] = [&[]; MAX_DATING + 1];
            let mut n = 0;
            if let Some(r) = receipt(it.frame) {
                list[0] = r;
                n = 1;
            }
            let mut r = Reader {
                buf: it.receipts,
                pos: 0,
            };
            for _ in 0..it.n {
                let b = r.bytes()?;
                if let Some(slot) = list.get_mut(n) {
                    *slot = b;
                    n += 1;
                }
            }
            w.bytes(it.frame)?;
            w.dating_capped(&list[..n], true)
        };
        w.put(&header(Kind::Divergence))?;
        w.bytes(self.inception)?;
        w.varint(self.n_rotations)?;
        w.put(self.rotations)?;
        w.bytes(self.anchor)?;
        w.varint(self.n_renewals)?;
        let mut r = Reader {
            buf: self.renewals,
            pos: 0,
        };
        for _ in 0..self.n_renewals {
            let it = r.item()?;
            item(&mut w, &it)?;
            w.put(&r.key()?)?;
        }
        w.put(&self.key)?;
        item(&mut w, &self.first)?;
        item(&mut w, &self.second)?;
        Ok(w.pos)
    }

    /// Every dated frame of the proof, renewals first, then the two conflicting frames.
    pub fn for_each_frame(&self, mut f: impl FnMut(&'a [u8])) {
        let mut r = Reader {
            buf: self.renewals,
            pos: 0,
        };
        for _ in 0..self.n_renewals {
            // The structure was checked by `decode`.
            if let (Ok(it), Ok(_)) = (r.item(), r.key()) {
                f(it.frame);
            }
        }
        f(self.first.frame);
        f(self.second.frame);
    }

    /// The two conflicting frames, in canonical order.
    pub fn frames(&self) -> (&'a [u8], &'a [u8]) {
        (self.first.frame, self.second.frame)
    }
}
