//! Entropy intake and the chain-state ratchet.
//!
//! Every sample is absorbed with `blake3::derive_key`-mode hashing under
//! `slope v1 chain ratchet`: `chain' = H(chain ‖ len(sample) ‖ sample)`. Signing key seeds
//! are derived from the chain under `slope v1 signing key`. The protocol core cannot
//! judge entropy quality: the caller health-tests its sources (see the firmware's
//! repetition-count and adaptive-proportion tests); the core only refuses to create
//! keys from too few samples.

use zeroize::Zeroize;

/// Samples needed before inception. With health-tested sources giving at least one bit
/// of min-entropy per sample (a conservative figure for ADC LSB noise and timer jitter),
/// 256 samples give the 256 bits a 32-byte key seed needs.
pub const MIN_INCEPT_SAMPLES: u32 = 256;

/// Fresh samples needed since the last establishment event before a rotation: the next
/// key after a rotation must not be computable from a state captured before it.
pub const MIN_ROTATE_SAMPLES: u32 = 128;

pub const CTX_RATCHET: &str = "slope v1 chain ratchet";
pub const CTX_SIGNING_KEY: &str = "slope v1 signing key";

/// The pre-inception entropy pool (in RAM only: a reboot before inception starts over).
pub struct Pool {
    chain: [u8; 32],
    samples: u32,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    pub fn new() -> Self {
        Self {
            chain: [0; 32],
            samples: 0,
        }
    }
    /// Absorbs one sample.
    pub fn mix(&mut self, sample: &[u8]) {
        self.chain = ratchet(&self.chain, sample);
        self.samples = self.samples.saturating_add(1);
    }
    /// Samples absorbed so far.
    pub fn samples(&self) -> u32 {
        self.samples
    }
    /// Hands the chain state over (the pool is left empty).
    pub(crate) fn take(&mut self) -> [u8; 32] {
        let chain = self.chain;
        self.chain.zeroize();
        self.samples = 0;
        chain
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.chain.zeroize();
    }
}

/// One ratchet step.
pub fn ratchet(chain: &[u8; 32], sample: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CTX_RATCHET);
    h.update(chain);
    h.update(&(sample.len() as u64).to_le_bytes());
    h.update(sample);
    *h.finalize().as_bytes()
}

/// The signing key seed derived from a chain state.
pub fn key_seed(chain: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(CTX_SIGNING_KEY, chain)
}
