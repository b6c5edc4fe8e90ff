//! The per-device hot record: everything a decision reads and writes, fixed-size and
//! quantised (see `docs/trust-model.md` for the layout and its measured size).
//!
//! What is *not* here (it lives in the lineage, the durable store): the frames, the
//! receipts, every past decision and grant, the divergence proof itself, operator
//! enrolments (a small cold map in [`super::registry`]).

use slope_proto::{DeviceId, LinkDigest};

use super::grant::Scope;
use super::profile::{PROFILES, Profile};
use super::stat::Interval;
use crate::time::Millis;

/// Flags of the hot record.
pub mod flag {
    /// A divergence proof quarantines the device (until an operator releases it).
    pub const QUARANTINED: u8 = 1 << 0;
    /// Held full scope at least once (no longer a newcomer for the Sybil bound).
    pub const EVER_FULL: u8 = 1 << 1;
    /// Enrolled by an operator (zone, position or certificate in the cold map).
    pub const ENROLLED: u8 = 1 << 2;
    /// The inception was observed (its key history is in the lineage).
    pub const ANCHORED: u8 = 1 << 3;
    /// The current grant is under monitoring.
    pub const MONITORED: u8 = 1 << 4;
    /// The device has spoken suite 2 (compact): `Hot::compact_head` is set.
    pub const COMPACT: u8 = 1 << 5;
}

/// Pin values.
pub mod pin {
    pub const NONE: u8 = 0;
    pub const RESTRICTED: u8 = 1;
    pub const FULL: u8 = 2;
}

/// The hot state of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hot {
    pub id: DeviceId,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub grant_issued: Millis,
    pub grant_expires: Millis,
    /// Lineage index of the decision of the current grant.
    pub grant_decision: u64,
    pub interval: Interval,
    pub head_seq: u32,
    /// Highest compact (suite-2) interval number seen, when `flag::COMPACT` is set:
    /// compact intervals are positions of their own, apart from suite-1 `seq`.
    pub compact_head: u32,
    /// Attestations received.
    pub depth: u32,
    /// Positions never received (lost frames), net of late fills.
    pub lost: u32,
    /// Link digest of the latest decided attestation (late receipts name it).
    pub last_link: LinkDigest,
    pub last_seq: u32,
    pub boot: u16,
    pub reboots: u16,
    pub behaviour: [u8; 4],
    pub behaviour_changes: u16,
    /// Attestations that met the witness policy.
    pub corroborated: u16,
    /// Heard-neighbour reports received in total.
    pub neighbour_total: u16,
    /// Corroboration score, exponentially averaged (‰).
    pub corroboration: u16,
    /// Expected witness (registry slot) of post-actuation checks.
    pub expect_witness: u16,
    /// Heard-neighbour credits since the device's last attestation.
    pub neighbour_credits: u8,
    pub flags: u8,
    /// See [`pin`].
    pub pin: u8,
    /// 0 none, 1 restricted, 2 full (see [`Hot::scope`]).
    pub grant_scope: u8,
    /// Attestations left in dormancy probation.
    pub dormancy_left: u8,
    /// Post-actuation checks left.
    pub expect_left: u8,
    pub profiles: [Profile; PROFILES],
}

impl Hot {
    /// A fresh record.
    pub fn new(id: DeviceId, now: Millis) -> Self {
        Self {
            id,
            first_seen: now,
            last_seen: now,
            grant_issued: 0,
            grant_expires: 0,
            grant_decision: 0,
            interval: Interval::default(),
            head_seq: 0,
            compact_head: 0,
            depth: 0,
            lost: 0,
            last_link: LinkDigest([0; 16]),
            last_seq: 0,
            boot: 0,
            reboots: 0,
            behaviour: [0; 4],
            behaviour_changes: 0,
            corroborated: 0,
            neighbour_total: 0,
            corroboration: 0,
            expect_witness: super::profile::EMPTY,
            neighbour_credits: 0,
            flags: 0,
            pin: pin::NONE,
            grant_scope: 0,
            dormancy_left: 0,
            expect_left: 0,
            profiles: [Profile::default(); PROFILES],
        }
    }

    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    pub fn set(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// The scope of the current grant, if one is in force at `now`.
    pub fn scope(&self, now: Millis) -> Option<Scope> {
        if now < self.grant_issued || now >= self.grant_expires {
            return None;
        }
        match self.grant_scope {
            1 => Some(Scope::Restricted),
            2 => Some(Scope::Full),
            _ => None,
        }
    }

    /// The pinned scope, if any.
    pub fn pinned(&self) -> Option<Scope> {
        match self.pin {
            pin::RESTRICTED => Some(Scope::Restricted),
            pin::FULL => Some(Scope::Full),
            _ => None,
        }
    }

    /// Established witness profiles.
    pub fn established(&self, min_samples: u16) -> u8 {
        self.profiles
            .iter()
            .filter(|p| p.established(min_samples))
            .count() as u8
    }
}

/// Encodes a scope for [`Hot::grant_scope`].
pub fn scope_code(s: Option<Scope>) -> u8 {
    match s {
        None => 0,
        Some(Scope::Restricted) => 1,
        Some(Scope::Full) => 2,
    }
}
