//! Divergence proofs: two validly signed, different events for one device position, two
//! different successors of one event, or two different rotations to one epoch, with the key history a third party needs to
//! check them — and nothing else. [`DivergenceProof::verify`] needs no other state.
//!
//! Layout after the header (kind 4, no signature: the proof *is* signatures):
//!
//! ```text
//! inception : varint length ‖ inception frame
//! rotations : varint length ‖ ( u8 length ‖ rotation frame )*   epochs 1, 2, … in order
//! first     : varint length ‖ event frame
//! second    : varint length ‖ event frame     (first < second, bytewise)
//! ```
//!
//! The rotations are the device's establishment events from epoch 1 up to (at least)
//! the epoch that signed the conflicting events; interactions between them are not
//! needed, because each rotation reveals the key its predecessor committed to.

use crate::crypto;
use crate::envelope::{Header, Kind};
use crate::error::{DecodeError, EncodeError, SignatureError};
use crate::event::{Event, Inception, Rotation, Signed};
use crate::ids::{DeviceId, Digest};
use crate::limits::{HEADER_LEN, MAX_FRAME, MAX_PROOF};

/// A decoded, not yet verified, divergence proof borrowing its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivergenceProof<'a> {
    inception: &'a [u8],
    rotations: &'a [u8],
    first: &'a [u8],
    second: &'a [u8],
}

/// What a valid proof establishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divergence {
    pub device: DeviceId,
    /// Position of the first event (the second is at the same position, or shares its
    /// predecessor).
    pub seq: u32,
    pub first: Digest,
    pub second: Digest,
}

/// Why a divergence proof does not prove a divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// A part of the proof does not decode.
    Decode(DecodeError),
    /// A signature (inception, rotation or conflicting event) does not verify.
    Signature(SignatureError),
    /// A rotation does not reveal the key its predecessor committed to.
    BrokenKeyChain,
    /// The rotations are not epochs 1, 2, … of the device in increasing position.
    RotationOrder,
    /// A conflicting event is signed in an epoch the proof's key history does not reach.
    MissingEpoch(u32),
    /// A conflicting event belongs to another device.
    WrongDevice,
    /// The two events do not conflict (identical, or different positions with
    /// different predecessors).
    NoConflict,
    /// The rotation list goes on past the epochs the two events need (see
    /// [`epochs_needed`]): one conflict has one proof, of bounded size.
    SurplusRotation,
}

/// How many rotations (epochs 1..=n) a proof of `a` and `b` carries: the epoch whose key
/// signed each event — for a rotation, the epoch before it, whose commitment it reveals
/// — the larger of the two. A proof carries exactly these, no more.
pub fn epochs_needed(a: &Event, b: &Event) -> u32 {
    let need = |e: &Event| match e {
        Event::Rotation(r) => r.body().epoch.saturating_sub(1),
        _ => e.epoch(),
    };
    need(a).max(need(b))
}

impl core::fmt::Display for ProofError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "proof part does not decode: {e}"),
            Self::Signature(e) => write!(f, "proof signature: {e}"),
            Self::BrokenKeyChain => f.write_str("rotation does not reveal the committed key"),
            Self::RotationOrder => f.write_str("rotations out of order"),
            Self::SurplusRotation => {
                f.write_str("rotations beyond the epochs the conflicting events need")
            }
            Self::MissingEpoch(e) => write!(f, "key history does not reach epoch {e}"),
            Self::WrongDevice => f.write_str("event of another device"),
            Self::NoConflict => f.write_str("the two events do not conflict"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProofError {}

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

impl<'a> DivergenceProof<'a> {
    /// Decodes a proof's structure (not its signatures: see [`Self::verify`]).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Header::expect(bytes, Kind::Divergence, MAX_PROOF)?;
        let mut rest = &bytes[HEADER_LEN..];
        let inception = take_bytes(&mut rest)?;
        let rotations = take_bytes(&mut rest)?;
        let first = take_bytes(&mut rest)?;
        let second = take_bytes(&mut rest)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        for part in [inception, first, second] {
            if part.len() > MAX_FRAME {
                return Err(DecodeError::InvalidField("proof event larger than a frame"));
            }
        }
        if first >= second {
            return Err(DecodeError::InvalidField(
                "proof events not in canonical order",
            ));
        }
        let proof = Self {
            inception,
            rotations,
            first,
            second,
        };
        // The rotation list must at least split into frames.
        for r in proof.rotation_frames() {
            r?;
        }
        Ok(proof)
    }

    /// Encodes a proof into `out`, ordering the two events canonically. Returns the
    /// number of bytes written.
    pub fn encode(
        inception: &[u8],
        rotations: &[&[u8]],
        a: &[u8],
        b: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let mut w = Writer { out, at: 0 };
        w.put(&Header::bytes(Kind::Divergence))?;
        w.put_bytes(inception)?;
        let rot_len: usize = rotations.iter().map(|r| 1 + r.len()).sum();
        w.put_varint(rot_len)?;
        for r in rotations {
            let len = u8::try_from(r.len()).map_err(|_| EncodeError::TooLarge)?;
            w.put(&[len])?;
            w.put(r)?;
        }
        w.put_bytes(first)?;
        w.put_bytes(second)?;
        if w.at > MAX_PROOF {
            return Err(EncodeError::TooLarge);
        }
        Ok(w.at)
    }

    /// The two conflicting event frames, in canonical order.
    pub fn events(&self) -> (&'a [u8], &'a [u8]) {
        (self.first, self.second)
    }

    /// The inception frame.
    pub fn inception(&self) -> &'a [u8] {
        self.inception
    }

    /// The rotation frames, in order.
    pub fn rotation_frames(&self) -> impl Iterator<Item = Result<&'a [u8], DecodeError>> + 'a {
        let mut rest = self.rotations;
        core::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let len = usize::from(len);
            if tail.len() < len {
                rest = &[];
                return Some(Err(DecodeError::Truncated));
            }
            let (frame, next) = tail.split_at(len);
            rest = next;
            Some(Ok(frame))
        })
    }

    /// Checks the proof with no other state: the inception, the key history, both
    /// signatures, and that the two events conflict.
    pub fn verify(&self) -> Result<Divergence, ProofError> {
        let inception = Signed::<Inception>::decode(self.inception)?;
        let device = inception.device_id();
        let k0 = crypto::verifying_key(&inception.body().key)?;
        inception.verify(&device, &k0)?;

        let first = Event::decode(self.first)?;
        let second = Event::decode(self.second)?;
        for e in [&first, &second] {
            if matches!(e, Event::Inception(_)) || e.short_id() != device.short() {
                return Err(ProofError::WrongDevice);
            }
        }
        let (d1, d2) = (first.digest(&device), second.digest(&device));
        let both_rotate_to_one_epoch =
            matches!((&first, &second), (Event::Rotation(_), Event::Rotation(_)))
                && first.epoch() == second.epoch();
        let conflict = first.seq() == second.seq()
            || first.prev() == second.prev()
            || both_rotate_to_one_epoch;
        if d1 == d2 || !conflict {
            return Err(ProofError::NoConflict);
        }

        // Walk the key history, checking each conflicting event when its epoch's key
        // (or, for a rotation, its predecessor's commitment) is known.
        let mut pending = [Some(&first), Some(&second)];
        let mut key = k0;
        let mut key_seq = 0u32;
        let mut commitment = inception.body().next_key;
        let mut epoch = 0u32;
        check_pending(&mut pending, &device, epoch, key_seq, &key, &commitment)?;
        for frame in self.rotation_frames() {
            if pending.iter().all(Option::is_none) {
                // Every frame of the list must be needed: no padding, no history
                // beyond the conflict (else one conflict has many byte strings).
                return Err(ProofError::SurplusRotation);
            }
            let rot = Signed::<Rotation>::decode(frame?)?;
            let body = rot.body();
            if body.device != device.short() || body.epoch != epoch + 1 || body.seq <= key_seq {
                return Err(ProofError::RotationOrder);
            }
            if crypto::next_key_digest(&body.key) != commitment {
                return Err(ProofError::BrokenKeyChain);
            }
            let next = crypto::verifying_key(&body.key)?;
            rot.verify(&device, &next)?;
            key = next;
            key_seq = body.seq;
            commitment = body.next_key;
            epoch = body.epoch;
            check_pending(&mut pending, &device, epoch, key_seq, &key, &commitment)?;
        }
        if let Some(e) = pending.iter().flatten().next() {
            return Err(ProofError::MissingEpoch(e.epoch()));
        }
        Ok(Divergence {
            device,
            seq: first.seq(),
            first: d1,
            second: d2,
        })
    }
}

/// Checks every pending event that the key state of `epoch` can decide.
fn check_pending(
    pending: &mut [Option<&Event>; 2],
    device: &DeviceId,
    epoch: u32,
    key_seq: u32,
    key: &ed25519_dalek::VerifyingKey,
    commitment: &Digest,
) -> Result<(), ProofError> {
    for slot in pending.iter_mut() {
        let Some(event) = *slot else { continue };
        match event {
            Event::Interaction(e) if e.body().epoch == epoch => {
                if e.body().seq <= key_seq {
                    return Err(ProofError::RotationOrder);
                }
                e.verify(device, key)?;
            }
            // A conflicting rotation to epoch+1: it must reveal the key committed now.
            Event::Rotation(r) if r.body().epoch == epoch + 1 => {
                if r.body().seq <= key_seq {
                    return Err(ProofError::RotationOrder);
                }
                if crypto::next_key_digest(&r.body().key) != *commitment {
                    return Err(ProofError::BrokenKeyChain);
                }
                r.verify(device, &crypto::verifying_key(&r.body().key)?)?;
            }
            _ => continue,
        }
        *slot = None;
    }
    Ok(())
}

/// Reads a varint length (canonical: minimal) and that many bytes.
fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let mut len: usize = 0;
    let mut shift = 0u32;
    loop {
        let (&b, tail) = rest.split_first().ok_or(DecodeError::Truncated)?;
        *rest = tail;
        if shift >= 21 {
            // Three varint bytes cover MAX_PROOF; a fourth is never needed.
            return Err(DecodeError::MalformedBody);
        }
        len |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            if b == 0 && shift > 7 {
                return Err(DecodeError::NonCanonical);
            }
            break;
        }
    }
    if rest.len() < len {
        return Err(DecodeError::Truncated);
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(bytes)
}

struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .at
            .checked_add(bytes.len())
            .ok_or(EncodeError::TooLarge)?;
        self.out
            .get_mut(self.at..end)
            .ok_or(EncodeError::TooLarge)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
    fn put_varint(&mut self, mut v: usize) -> Result<(), EncodeError> {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return self.put(&[byte]);
            }
            self.put(&[byte | 0x80])?;
        }
    }
    fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.put_varint(bytes.len())?;
        self.put(bytes)
    }
}
