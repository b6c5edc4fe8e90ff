//! The device's own slope: it gathers entropy, incepts, signs attestations, rotates its
//! key with pre-commitment, erases retired keys, and persists every new state *before*
//! releasing the event that state belongs to.
//!
//! The rule that keeps an honest device from ever looking cloned: the state for
//! position n (including the signed frame for n) is committed through [`Storage`] in one
//! atomic write, and only then is the frame returned to the caller for transmission. A
//! power cut before the write completes leaves the old state, and the frame was never
//! released; a cut after it leaves the new state with the frame stored, and
//! [`Slope::last_frames`] lets the device send that same frame again after reboot.

mod ahead;
mod entropy;
mod error;
mod state;
pub mod storage;

use ed25519_dalek::SigningKey;
use heapless::Vec;
use slope_proto::limits::{MAX_FRAME, MAX_HEARD, MAX_PAYLOAD};
use slope_proto::{Heard, Inception, Interaction, Rotation, Signed, crypto};
use zeroize::Zeroize;

pub use ahead::{Ahead, SignJob};
pub use entropy::{MIN_INCEPT_SAMPLES, MIN_ROTATE_SAMPLES, Pool};
pub use error::Error;
pub use state::{STATE_MAX, State};
pub use storage::Storage;

use crate::time::Millis;
use slope_proto::ids::DeviceId;

/// An encoded frame ready for transmission.
pub type Frame = Vec<u8, MAX_FRAME>;

/// How the device paces its slope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// Announced nominal interval between attestations, seconds (in the inception).
    pub interval_s: u32,
    /// Rotate after this many events in one epoch (0: never by count).
    pub rotate_every: u32,
    /// Rotate when the current key is older than this, milliseconds of device time
    /// (0: never by time).
    pub rotate_after_ms: u64,
    /// Hard limit: refuse to sign with one key for more than this many events when a
    /// rotation is due but cannot happen for lack of fresh entropy.
    pub max_epoch_events: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval_s: 900,
            rotate_every: 96,
            rotate_after_ms: 7 * 24 * 3600 * 1000,
            max_epoch_events: 192,
        }
    }
}

/// What one call to [`Slope::attest`] released, in transmission order: a rotation when
/// one was due, then the interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub frames: Vec<Frame, 2>,
}

/// A device's slope: entropy pool, persisted state and storage.
pub struct Slope<S: Storage> {
    config: Config,
    storage: S,
    pool: Pool,
    state: Option<State>,
    behaviour: [u8; 4],
    boot: u16,
    /// The signing key of the current epoch, expanded once (deriving the public key is
    /// a scalar multiplication, as dear as a signature): rebuilt when the state's key
    /// seed no longer matches it (after a rotation or a restore).
    signer: Option<SigningKey>,
}

impl<S: Storage> Slope<S> {
    /// Starts the device from its storage: a device that was incepted resumes its slope
    /// (with its boot counter one higher), a fresh one waits for entropy and
    /// [`Slope::incept`].
    pub fn restore(config: Config, mut storage: S) -> Result<Self, Error<S::Error>> {
        let mut buf = [0u8; STATE_MAX];
        let state = match storage.load(&mut buf).map_err(Error::Storage)? {
            Some(len) => Some(State::decode(&buf[..len]).ok_or(Error::CorruptState)?),
            None => None,
        };
        buf.zeroize();
        let boot = state.as_ref().map_or(0, |s| s.boot.wrapping_add(1));
        Ok(Self {
            config,
            storage,
            pool: Pool::new(),
            state,
            behaviour: [0; 4],
            boot,
            signer: None,
        })
    }

    /// Mixes one entropy sample into the chain state (ADC noise, timer jitter, RSSI
    /// noise, sensor readings; health-tested by the caller).
    pub fn handle_entropy(&mut self, sample: &[u8]) {
        match &mut self.state {
            Some(state) => {
                state.chain = entropy::ratchet(&state.chain, sample);
                state.fresh_samples = state.fresh_samples.saturating_add(1);
            }
            None => self.pool.mix(sample),
        }
    }

    /// Sets the behaviour features (quantised sensor statistics, uptime class) whose
    /// digest goes into the following attestations.
    pub fn set_behaviour(&mut self, features: &[u8]) {
        let d = blake3::Hasher::new_derive_key("slope v1 behaviour digest")
            .update(features)
            .finalize();
        self.behaviour.copy_from_slice(&d.as_bytes()[..4]);
    }

    /// The device id, once incepted.
    pub fn id(&self) -> Option<DeviceId> {
        self.state.as_ref().map(|s| s.device)
    }

    /// The last released position, once incepted.
    pub fn seq(&self) -> Option<u32> {
        self.state.as_ref().map(|s| s.seq)
    }

    /// The current key epoch, once incepted.
    pub fn epoch(&self) -> Option<u32> {
        self.state.as_ref().map(|s| s.epoch)
    }

    /// The frames of the last committed release: sent again after a reboot (identical
    /// bytes are duplicates to every verifier, never a divergence).
    pub fn last_frames(&self) -> &[Frame] {
        self.state.as_ref().map_or(&[], |s| &s.last[..])
    }

    /// The current key's establishment frame (inception or latest rotation): worth
    /// re-sending now and then so verifiers that missed it can leave escrow.
    pub fn establishment(&self) -> Option<&[u8]> {
        self.state.as_ref().map(|s| &s.establishment[..])
    }

    /// Whether the cadence calls for a rotation at `now`. Never past
    /// [`slope_proto::limits::MAX_EPOCHS`]: verifiers refuse later epochs (a proof of a
    /// clone past it would not fit), so the device keeps its last key from then on.
    pub fn rotation_due(&self, now: Millis) -> bool {
        let Some(s) = &self.state else { return false };
        if s.epoch >= slope_proto::limits::MAX_EPOCHS {
            return false;
        }
        (self.config.rotate_every > 0 && s.epoch_events >= self.config.rotate_every)
            || (self.config.rotate_after_ms > 0
                && now.saturating_sub(s.epoch_started) >= self.config.rotate_after_ms)
    }

    /// The device's storage (for inspection in tests and firmware diagnostics).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Creates the slope: needs [`MIN_INCEPT_SAMPLES`] entropy samples. Returns the
    /// inception frame, released only after its state is committed.
    pub fn incept(&mut self, now: Millis) -> Result<Frame, Error<S::Error>> {
        if self.state.is_some() {
            return Err(Error::AlreadyIncepted);
        }
        if self.pool.samples() < MIN_INCEPT_SAMPLES {
            return Err(Error::InsufficientEntropy {
                have: self.pool.samples(),
                need: MIN_INCEPT_SAMPLES,
            });
        }
        let mut chain = self.pool.take();
        let mut key_seed = entropy::key_seed(&chain);
        chain = entropy::ratchet(&chain, b"epoch 1");
        let next_seed = entropy::key_seed(&chain);
        let key = SigningKey::from_bytes(&key_seed);
        let body = Inception {
            key: key.verifying_key().to_bytes(),
            next_key: crypto::next_key_digest(
                SigningKey::from_bytes(&next_seed)
                    .verifying_key()
                    .as_bytes(),
            ),
            interval_s: self.config.interval_s,
        };
        let signed = Signed::incept(body, &key).map_err(Error::Encode)?;
        let device = signed.device_id();
        let frame = Frame::from_slice(signed.frame())
            .map_err(|()| Error::Encode(slope_proto::EncodeError::TooLarge))?;
        let mut last = Vec::new();
        let _ = last.push(frame.clone());
        let state = State {
            device,
            seq: 0,
            head: signed.digest(&device),
            epoch: 0,
            key_seed,
            next_seed,
            chain,
            fresh_samples: 0,
            epoch_events: 0,
            epoch_started: now,
            boot: self.boot,
            establishment: frame.clone(),
            last,
        };
        key_seed.zeroize();
        self.commit(state)?;
        Ok(frame)
    }

    /// Signs the next routine attestation, preceded by a rotation when one is due and
    /// enough fresh entropy has been fed ([`MIN_ROTATE_SAMPLES`]). Both are committed in
    /// one write before they are returned.
    pub fn attest(
        &mut self,
        now: Millis,
        payload: &[u8],
        heard: &[Heard],
    ) -> Result<Released, Error<S::Error>> {
        self.attest_by(now, payload, heard, crypto::sign)
    }

    /// [`Self::attest`], with the interaction's signature taken from `ahead` when it is
    /// the signature of exactly the key and message this attestation needs (see
    /// [`Ahead`]); otherwise signed here. The frames and the committed state are the
    /// same bytes either way. Also says whether `ahead` was adopted.
    pub fn attest_ahead(
        &mut self,
        now: Millis,
        payload: &[u8],
        heard: &[Heard],
        ahead: Option<&Ahead>,
    ) -> Result<(Released, bool), Error<S::Error>> {
        let mut adopted = false;
        let released = self.attest_by(now, payload, heard, |key, message| {
            match ahead.and_then(|a| a.adopt(key, message)) {
                Some(signature) => {
                    adopted = true;
                    signature
                }
                None => crypto::sign(key, message),
            }
        })?;
        Ok((released, adopted))
    }

    /// The signing the next [`Self::attest`]`(now, payload, heard)` will need, for a
    /// host that signs it ahead on another core ([`SignJob::sign`], then
    /// [`Self::attest_ahead`]): right as long as the state does not change before then
    /// (another release, a reboot, other behaviour features); a wrong one is never
    /// adopted. `None` when not incepted, when a rotation is due at `now` (that
    /// wake-up signs a rotation first, under the next key), or on an input `attest`
    /// refuses.
    pub fn sign_ahead(&mut self, now: Millis, payload: &[u8], heard: &[Heard]) -> Option<SignJob> {
        if self.rotation_due(now) {
            return None;
        }
        let current = self.state.as_ref()?;
        let payload = Vec::from_slice(payload).ok()?;
        let body =
            interaction::<S::Error>(current, self.boot, self.behaviour, payload, heard).ok()?;
        let mut message = [0u8; 32];
        Signed::sign_by(body, &current.device, |m| {
            message = *m;
            [0; slope_proto::limits::SIGNATURE_LEN]
        })
        .ok()?;
        let key = signer(&mut self.signer, &current.key_seed).clone();
        Some(SignJob { key, message })
    }

    /// [`Self::attest`] with the interaction's signature from `sign(key, message)`.
    fn attest_by(
        &mut self,
        now: Millis,
        payload: &[u8],
        heard: &[Heard],
        sign: impl FnOnce(&SigningKey, &[u8; 32]) -> [u8; slope_proto::limits::SIGNATURE_LEN],
    ) -> Result<Released, Error<S::Error>> {
        let Some(current) = &self.state else {
            return Err(Error::NotIncepted);
        };
        let payload: Vec<u8, MAX_PAYLOAD> =
            Vec::from_slice(payload).map_err(|()| Error::PayloadTooLarge { max: MAX_PAYLOAD })?;
        let mut next = current.clone();
        next.boot = self.boot;
        let mut frames = Vec::new();

        if self.rotation_due(now) {
            if next.fresh_samples >= MIN_ROTATE_SAMPLES {
                let rotation = self.rotate(&mut next, now)?;
                let _ = frames.push(rotation);
            } else if next.epoch_events >= self.config.max_epoch_events {
                return Err(Error::InsufficientEntropy {
                    have: next.fresh_samples,
                    need: MIN_ROTATE_SAMPLES,
                });
            }
        }

        let body = interaction(&next, next.boot, self.behaviour, payload, heard)?;
        let key = signer(&mut self.signer, &next.key_seed);
        let signed =
            Signed::sign_by(body, &next.device, |m| sign(key, m)).map_err(Error::Encode)?;
        next.seq = signed.body().seq;
        next.head = signed.digest(&next.device);
        next.epoch_events = next.epoch_events.saturating_add(1);
        let frame = Frame::from_slice(signed.frame())
            .map_err(|()| Error::Encode(slope_proto::EncodeError::TooLarge))?;
        let _ = frames.push(frame);
        next.last = frames.clone();
        self.commit(next)?;
        Ok(Released { frames })
    }

    /// Builds the rotation into `next`: reveals the pre-committed key, commits to a new
    /// one drawn from the ratcheted chain, and erases the retired key seed.
    fn rotate(&self, next: &mut State, now: Millis) -> Result<Frame, Error<S::Error>> {
        let epoch = next.epoch.checked_add(1).ok_or(Error::Exhausted)?;
        next.chain = entropy::ratchet(&next.chain, &epoch.to_le_bytes());
        let new_next = entropy::key_seed(&next.chain);
        let key = SigningKey::from_bytes(&next.next_seed);
        let body = Rotation {
            device: next.device.short(),
            seq: next.seq.checked_add(1).ok_or(Error::Exhausted)?,
            prev: next.head.link(),
            epoch,
            key: key.verifying_key().to_bytes(),
            next_key: crypto::next_key_digest(
                SigningKey::from_bytes(&new_next).verifying_key().as_bytes(),
            ),
        };
        let signed = Signed::sign(body, &next.device, &key).map_err(Error::Encode)?;
        next.key_seed.zeroize();
        next.key_seed = next.next_seed;
        next.next_seed = new_next;
        next.epoch = epoch;
        next.seq = signed.body().seq;
        next.head = signed.digest(&next.device);
        next.epoch_events = 0;
        next.epoch_started = now;
        next.fresh_samples = 0;
        let frame = Frame::from_slice(signed.frame())
            .map_err(|()| Error::Encode(slope_proto::EncodeError::TooLarge))?;
        next.establishment = frame.clone();
        Ok(frame)
    }

    /// Hands the device over to the compact suite (docs/compact-suite.md): creates its
    /// compact chain for global intervals `first..first + len` under `schedule`, and the
    /// anchor that commits to it, signed with the live suite-1 key of the current epoch
    /// (the one verifier checks it against that key). Send the anchor before the first
    /// compact frame; persist the returned device with `compact::persist`.
    ///
    /// The chain state is derived from the current key seed, the device and `first`
    /// (`derive_key("slope v1 compact chain state", key seed ‖ first)`), never from the
    /// entropy pool's unpersisted state: calling this again for the same epoch and
    /// `first` — after a power cut, say — gives the same chain and the same anchor, so a
    /// device can never anchor two chains over one interval in one epoch (which would
    /// look like a compact divergence). After a rotation the new key gives a new chain;
    /// re-anchor then. Nothing is written to storage. Costs `len` hashes.
    pub fn anchor_compact(
        &self,
        schedule: crate::compact::device::Schedule,
        first: u32,
        len: u32,
    ) -> Result<
        (
            crate::compact::device::Device,
            slope_proto::compact::SignedAnchor,
        ),
        Error<S::Error>,
    > {
        let Some(s) = &self.state else {
            return Err(Error::NotIncepted);
        };
        let mut chain_state: [u8; 32] =
            *blake3::Hasher::new_derive_key("slope v1 compact chain state")
                .update(&s.key_seed)
                .update(&first.to_le_bytes())
                .finalize()
                .as_bytes();
        let device =
            crate::compact::device::Device::new(s.device, &chain_state, schedule, first, len);
        chain_state.zeroize();
        let device = device.map_err(Error::Compact)?;
        let key = SigningKey::from_bytes(&s.key_seed);
        let anchor =
            slope_proto::compact::SignedAnchor::sign(device.anchor(s.epoch), &s.device, &key)
                .map_err(Error::Encode)?;
        Ok((device, anchor))
    }

    /// Persists `state` atomically, then adopts it. On a storage error the in-memory
    /// state stays as it was and nothing is released.
    fn commit(&mut self, state: State) -> Result<(), Error<S::Error>> {
        let mut buf = [0u8; STATE_MAX];
        let len = state
            .encode(&mut buf)
            .ok_or(Error::Encode(slope_proto::EncodeError::TooLarge))?;
        let written = self.storage.store(&buf[..len]);
        buf.zeroize();
        written.map_err(Error::Storage)?;
        self.state = Some(state);
        Ok(())
    }
}

/// The signing key for `seed` from `cache` (a device's expanded key), expanded
/// once per epoch. Inlined, as [`interaction`]: the firmware image is within a few
/// hundred bytes of its flash budget (inlined, `attest` is smaller than before them).
#[inline(always)]
fn signer<'a>(cache: &'a mut Option<SigningKey>, seed: &[u8; 32]) -> &'a SigningKey {
    if cache.as_ref().is_some_and(|k| k.as_bytes() != seed) {
        *cache = None;
    }
    cache.get_or_insert_with(|| SigningKey::from_bytes(seed))
}

/// The interaction that follows `state`'s position, made at boot `boot`.
#[inline(always)]
fn interaction<E>(
    state: &State,
    boot: u16,
    behaviour: [u8; 4],
    payload: Vec<u8, MAX_PAYLOAD>,
    heard: &[Heard],
) -> Result<Interaction, Error<E>> {
    Ok(Interaction {
        device: state.device.short(),
        seq: state.seq.checked_add(1).ok_or(Error::Exhausted)?,
        prev: state.head.link(),
        epoch: state.epoch,
        boot,
        behaviour,
        heard: strongest(heard),
        payload,
    })
}

/// Keeps the strongest [`MAX_HEARD`] neighbours, in a canonical order (strongest first,
/// then by id) so the same set heard gives the same attestation.
fn strongest(heard: &[Heard]) -> Vec<Heard, MAX_HEARD> {
    let mut best: Vec<Heard, MAX_HEARD> = Vec::new();
    for h in heard {
        if best.iter().any(|b| b.id == h.id) {
            continue;
        }
        if best.is_full() {
            let weakest = best
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| (b.rssi_dbm, core::cmp::Reverse(b.id)))
                .map(|(i, b)| (i, *b));
            match weakest {
                Some((i, w))
                    if (h.rssi_dbm, core::cmp::Reverse(h.id))
                        > (w.rssi_dbm, core::cmp::Reverse(w.id)) =>
                {
                    best[i] = *h;
                }
                _ => continue,
            }
        } else {
            let _ = best.push(*h);
        }
    }
    best.sort_unstable_by(|a, b| b.rssi_dbm.cmp(&a.rssi_dbm).then(a.id.cmp(&b.id)));
    best
}
