//! The persisted device state: everything needed to continue the slope after a reboot,
//! including the frames of the last release (so they can be sent again, byte for byte).

use heapless::Vec;
use serde::{Deserialize, Serialize};
use slope_proto::limits::MAX_FRAME;
use slope_proto::{DeviceId, Digest};
use zeroize::Zeroize;

use crate::time::Millis;

/// Upper bound of an encoded [`State`].
pub const STATE_MAX: usize = 1024;

/// The device's durable state. Key seeds and the chain state are erased from memory
/// when a value is dropped; a retired key seed is overwritten in the next committed
/// state, so it leaves the device's storage with that commit.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub device: DeviceId,
    /// Last released position.
    pub seq: u32,
    /// Digest of the event at `seq`.
    pub head: Digest,
    pub epoch: u32,
    pub key_seed: [u8; 32],
    pub next_seed: [u8; 32],
    pub chain: [u8; 32],
    /// Entropy samples absorbed since the last establishment event.
    pub fresh_samples: u32,
    /// Events signed in the current epoch.
    pub epoch_events: u32,
    /// Device time the current epoch began.
    pub epoch_started: Millis,
    pub boot: u16,
    /// The current key's establishment event.
    pub establishment: Vec<u8, MAX_FRAME>,
    /// The frames of the last release.
    pub last: Vec<Vec<u8, MAX_FRAME>, 2>,
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("State")
            .field("device", &self.device)
            .field("seq", &self.seq)
            .field("epoch", &self.epoch)
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Encodes into `buf`, returning the length.
    pub fn encode(&self, buf: &mut [u8]) -> Option<usize> {
        postcard::to_slice(self, buf).ok().map(|b| b.len())
    }
    /// Decodes a stored state.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.key_seed.zeroize();
        self.next_seed.zeroize();
        self.chain.zeroize();
    }
}
