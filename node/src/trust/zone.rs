//! Trust zones: the operator's classes of authority for witnesses and devices (a site,
//! an organisation, a network). Zones are what "independent" means in corroboration:
//! two witnesses of one zone are one operator's word twice.

use serde::{Deserialize, Serialize};

/// An operator-defined trust zone. `Zone::NONE` (0) is "not assigned".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Zone(pub u16);

impl Zone {
    /// Not assigned to any zone.
    pub const NONE: Zone = Zone(0);
}

/// The authority score (‰) of devices enrolled in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneWeight {
    pub zone: Zone,
    pub weight: u16,
}

/// A position in the operator's local metric frame (metres east, north and up of a site
/// origin). The core does no geodesy: the operator projects coordinates once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub east_m: i32,
    pub north_m: i32,
    pub up_m: i32,
}

impl Position {
    /// Squared distance in square metres (exact, saturating at `u64::MAX`).
    pub fn distance_sq(&self, other: &Position) -> u64 {
        let d = |a: i32, b: i32| (i64::from(a) - i64::from(b)).unsigned_abs();
        let (x, y, z) = (
            d(self.east_m, other.east_m),
            d(self.north_m, other.north_m),
            d(self.up_m, other.up_m),
        );
        x.saturating_mul(x)
            .saturating_add(y.saturating_mul(y))
            .saturating_add(z.saturating_mul(z))
    }
}
