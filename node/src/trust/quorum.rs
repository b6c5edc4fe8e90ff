//! The witness policy: when is one attestation corroborated? In the spirit of
//! transparency-log witness policies: groups of members (zones or named witnesses), each
//! with a threshold ("2 of these 3 zones"), and how many groups must hold.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use slope_proto::WitnessId;

use super::zone::Zone;

/// One member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Member {
    /// Satisfied when any plausible witness of the zone receipted the attestation.
    Zone(Zone),
    /// Satisfied when this witness receipted the attestation.
    Witness(WitnessId),
}

/// `threshold` of `members` must be satisfied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub members: Vec<Member>,
    pub threshold: u8,
}

/// The witness policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Distinct plausible witnesses required (the receiving gateway counts as one).
    pub min_witnesses: u8,
    /// Distinct trust zones required among them.
    pub min_zones: u8,
    /// Groups; `required` of them must be satisfied.
    pub groups: Vec<Group>,
    pub required: u8,
}

impl Default for Policy {
    /// One witness (the receiving gateway is enough), no zone or group requirement.
    fn default() -> Self {
        Self {
            min_witnesses: 1,
            min_zones: 0,
            groups: Vec::new(),
            required: 0,
        }
    }
}

/// A witness that counted for an attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub witness: WitnessId,
    pub zone: Zone,
}

/// What the policy concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub witnesses: u8,
    pub zones: u8,
    pub groups: u8,
    pub satisfied: bool,
}

impl Policy {
    /// Evaluates the policy over distinct witnesses (`seen` holds no duplicate witness).
    /// The result does not depend on the order of `seen`.
    pub fn evaluate(&self, seen: &[Seen]) -> Verdict {
        let witnesses = seen.len();
        let zones = distinct_zones(seen);
        let groups = self
            .groups
            .iter()
            .filter(|g| {
                let hits = g
                    .members
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| {
                        // A member listed twice counts once.
                        !g.members[..*i].contains(m) && satisfied(m, seen)
                    })
                    .count();
                hits >= usize::from(g.threshold)
            })
            .count();
        Verdict {
            witnesses: clamp_u8(witnesses),
            zones: clamp_u8(zones),
            groups: clamp_u8(groups),
            satisfied: witnesses >= usize::from(self.min_witnesses)
                && zones >= usize::from(self.min_zones)
                && groups >= usize::from(self.required),
        }
    }
}

fn satisfied(m: &Member, seen: &[Seen]) -> bool {
    match m {
        Member::Zone(z) => *z != Zone::NONE && seen.iter().any(|s| s.zone == *z),
        Member::Witness(w) => seen.iter().any(|s| s.witness == *w),
    }
}

/// Distinct assigned zones (`Zone::NONE` is no zone).
fn distinct_zones(seen: &[Seen]) -> usize {
    seen.iter()
        .enumerate()
        .filter(|(i, s)| s.zone != Zone::NONE && !seen[..*i].iter().any(|p| p.zone == s.zone))
        .count()
}

fn clamp_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(w: u8, z: u16) -> Seen {
        Seen {
            witness: WitnessId([w; 8]),
            zone: Zone(z),
        }
    }

    #[test]
    fn two_of_three_zones() {
        let p = Policy {
            min_witnesses: 2,
            min_zones: 0,
            groups: alloc::vec![Group {
                members: alloc::vec![
                    Member::Zone(Zone(1)),
                    Member::Zone(Zone(2)),
                    Member::Zone(Zone(3))
                ],
                threshold: 2,
            }],
            required: 1,
        };
        assert!(!p.evaluate(&[seen(1, 1), seen(2, 1)]).satisfied);
        assert!(p.evaluate(&[seen(1, 1), seen(2, 3)]).satisfied);
        let v = p.evaluate(&[seen(2, 3), seen(1, 1), seen(3, 0)]);
        assert_eq!(
            (v.witnesses, v.zones, v.groups, v.satisfied),
            (3, 2, 1, true)
        );
    }
}
