//! Device key history replay for [`super::verify()`]: the inceptions and rotations that a
//! log carries as observations are enough to re-check every attestation frame in it.
//!
//! A frame whose key is not known yet (a rotation logged after an interaction it
//! establishes) waits until the establishing rotation appears; a frame of a device
//! whose inception never appears in the log is *unanchored*: reported, not verified.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ed25519_dalek::VerifyingKey;
use slope_proto::{DeviceId, Digest, Event, crypto};

/// Why a frame fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    Decode,
    WrongDevice,
    WrongDigest,
    Signature,
    KeyChain,
}

#[derive(Default)]
struct Device {
    keys: Vec<VerifyingKey>,
    commitment: Option<Digest>,
    pending: Vec<(u64, Vec<u8>)>,
}

/// Key histories of every device seen so far.
#[derive(Default)]
pub struct Keys {
    devices: BTreeMap<DeviceId, Device>,
    pub verified: u64,
}

impl Keys {
    /// Checks (or parks) the frame of record `index`.
    pub fn observe(
        &mut self,
        index: u64,
        device: &DeviceId,
        digest: &Digest,
        frame: &[u8],
    ) -> Result<(), (u64, FrameFault)> {
        let event = Event::decode(frame).map_err(|_| (index, FrameFault::Decode))?;
        if event.short_id() != device.short() {
            return Err((index, FrameFault::WrongDevice));
        }
        if event.digest(device) != *digest {
            return Err((index, FrameFault::WrongDigest));
        }
        let d = self.devices.entry(*device).or_default();
        match try_verify(d, device, &event) {
            Step::Done => {
                self.verified += 1;
                // A new key may release parked frames.
                while let Some(pos) = d
                    .pending
                    .iter()
                    .position(|(_, f)| Event::decode(f).is_ok_and(|e| ready(d, &e)))
                {
                    let (i, f) = d.pending.remove(pos);
                    let e = Event::decode(&f).map_err(|_| (i, FrameFault::Decode))?;
                    match try_verify(d, device, &e) {
                        Step::Done => self.verified += 1,
                        Step::Wait => d.pending.push((i, f)),
                        Step::Fail(x) => return Err((i, x)),
                    }
                }
                Ok(())
            }
            Step::Wait => {
                d.pending.push((index, frame.to_vec()));
                Ok(())
            }
            Step::Fail(x) => Err((index, x)),
        }
    }

    /// After the whole log: frames still waiting. Devices with a known inception whose
    /// frames still wait are faults (`Err` with the first record); frames of devices
    /// never anchored are counted.
    pub fn finish(&self) -> Result<u64, u64> {
        let mut unanchored = 0u64;
        for d in self.devices.values() {
            if d.keys.is_empty() {
                unanchored += d.pending.len() as u64;
            } else if let Some((i, _)) = d.pending.first() {
                return Err(*i);
            }
        }
        Ok(unanchored)
    }
}

enum Step {
    Done,
    Wait,
    Fail(FrameFault),
}

fn ready(d: &Device, e: &Event) -> bool {
    match e {
        Event::Inception(_) => true,
        Event::Rotation(r) => !d.keys.is_empty() && (r.body().epoch as usize) <= d.keys.len(),
        Event::Interaction(i) => (i.body().epoch as usize) < d.keys.len(),
    }
}

fn try_verify(d: &mut Device, device: &DeviceId, e: &Event) -> Step {
    if !ready(d, e) {
        return Step::Wait;
    }
    match e {
        Event::Inception(i) => {
            if i.device_id() != *device {
                return Step::Fail(FrameFault::WrongDevice);
            }
            let Ok(k) = crypto::verifying_key(&i.body().key) else {
                return Step::Fail(FrameFault::Signature);
            };
            if i.verify(device, &k).is_err() {
                return Step::Fail(FrameFault::Signature);
            }
            if d.keys.is_empty() {
                d.keys.push(k);
                d.commitment = Some(i.body().next_key);
            }
            Step::Done
        }
        Event::Rotation(r) => {
            let b = r.body();
            let Ok(k) = crypto::verifying_key(&b.key) else {
                return Step::Fail(FrameFault::Signature);
            };
            if r.verify(device, &k).is_err() {
                return Step::Fail(FrameFault::Signature);
            }
            let epoch = b.epoch as usize;
            if epoch == d.keys.len() {
                if d.commitment != Some(crypto::next_key_digest(&b.key)) {
                    return Step::Fail(FrameFault::KeyChain);
                }
                d.keys.push(k);
                d.commitment = Some(b.next_key);
            } else if d.keys.get(epoch) != Some(&k) {
                return Step::Fail(FrameFault::KeyChain);
            }
            Step::Done
        }
        Event::Interaction(i) => match d.keys.get(i.body().epoch as usize) {
            Some(k) if i.verify(device, k).is_ok() => Step::Done,
            _ => Step::Fail(FrameFault::Signature),
        },
    }
}
