//! The trust stage a simulated gateway runs after its verifier: the integration point
//! of `slope_node::trust`.
//!
//! Today it is the verifier-only stage: a device is quarantined on a verified
//! divergence proof and otherwise [`Mode::Unjudged`] — no graduated admission, no
//! grants, no context deviation. The trust engine (`slope_node::trust::Engine`) plugs in
//! here once it is part of the committed node crate: `attested` becomes
//! `Engine::handle_attestation`, `diverged` becomes `Engine::handle_proof`, and `mode`
//! reads `Engine::grant`. Every figure that needs it (time to full scope, admissions by
//! mode, silent-clone detection from context) says "needs the trust engine" until then.

use std::collections::HashMap;

use serde::Serialize;
use slope_node::verifier::VerifiedAttestation;
use slope_proto::DeviceId;

/// A device's admission at one gateway, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Full,
    Restricted,
    Monitored,
    Deferred,
    Refused,
    Quarantined,
    /// No trust engine ran: the device is verified and tracked, not admitted.
    Unjudged,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 7] = [
        Mode::Full,
        Mode::Restricted,
        Mode::Monitored,
        Mode::Deferred,
        Mode::Refused,
        Mode::Quarantined,
        Mode::Unjudged,
    ];

    /// The mode's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Restricted => "restricted",
            Mode::Monitored => "monitored",
            Mode::Deferred => "deferred",
            Mode::Refused => "refused",
            Mode::Quarantined => "quarantined",
            Mode::Unjudged => "unjudged",
        }
    }
}

/// The trust stage of one gateway.
#[derive(Debug, Default)]
pub struct Stage {
    quarantined: HashMap<DeviceId, u64>,
}

impl Stage {
    /// The verifier-only stage.
    pub fn verifier_only() -> Self {
        Self::default()
    }

    /// Whether this stage runs a trust engine (graduated admission).
    pub fn judges(&self) -> bool {
        false
    }

    /// A verified attestation of a device.
    pub fn attested(&mut self, _now_ms: u64, _att: &VerifiedAttestation) {}

    /// A verified divergence proof for `device`: quarantines it. Returns whether the
    /// device was not quarantined here before.
    pub fn diverged(&mut self, now_ms: u64, device: &DeviceId, _proof: &[u8]) -> bool {
        if self.quarantined.contains_key(device) {
            return false;
        }
        self.quarantined.insert(*device, now_ms);
        true
    }

    /// The device's mode at `now_ms`.
    pub fn mode(&self, device: &DeviceId, _now_ms: u64) -> Mode {
        if self.quarantined.contains_key(device) {
            Mode::Quarantined
        } else {
            Mode::Unjudged
        }
    }

    /// Devices quarantined here.
    pub fn quarantined(&self) -> usize {
        self.quarantined.len()
    }
}
