//! Suite 2, one gateway's record of each device's compact chains — what a divergence
//! proof in a renewed chain needs besides the two frames: the chains the verifier
//! follows (the anchor's, then one per verified renewal), the latest key disclosed in
//! each (from authenticated attestations), and the renewal frames received (from the
//! radio or relayed with a receipt). With those, every renewal from the anchor to the
//! conflicting chain goes into the proof with its interval's key (walked back from the
//! latest disclosed key of its chain) and the receipt that dates it.
//!
//! Bounded: [`CHAINS_MAX`] chains and [`RENEWALS_MAX`] renewal frames per device (the
//! oldest dropped: a proof that needs a dropped one stays unproven, counted).

use std::collections::HashMap;
use std::sync::Arc;

use slope_proto::DeviceId;
use slope_proto::compact::crypto::{ChainKey, mac_key, walk};
use slope_proto::compact::{Maced, Renewal};

/// Chains remembered per device.
pub const CHAINS_MAX: usize = 16;
/// Renewal frames remembered per device.
pub const RENEWALS_MAX: usize = 16;

/// One chain: its first interval, its length, and the latest key disclosed in it.
#[derive(Debug, Clone)]
struct Chain {
    first: u32,
    len: u32,
    latest: Option<(u32, ChainKey)>,
}

impl Chain {
    fn contains(&self, interval: u32) -> bool {
        interval >= self.first && interval - self.first < self.len
    }
}

/// A renewal frame received here.
#[derive(Debug, Clone)]
pub struct Heard {
    pub frame: Arc<[u8]>,
    pub interval: u32,
}

#[derive(Debug, Default)]
struct Device {
    delay: u32,
    chains: Vec<Chain>,
    renewals: Vec<Heard>,
}

/// Every device's chains at one gateway.
#[derive(Debug, Default)]
pub struct Chains {
    devices: HashMap<DeviceId, Device>,
}

/// A renewal ready for a proof: (frame, its interval's key).
pub type Part = (Arc<[u8]>, ChainKey);

impl Chains {
    /// The anchor verified: the device's first chain and its disclosure delay.
    pub fn anchored(&mut self, device: DeviceId, first: u32, len: u32, delay: u8) {
        let d = self.devices.entry(device).or_default();
        d.delay = u32::from(delay);
        if d.chains.is_empty() {
            d.chains.push(Chain {
                first,
                len,
                latest: None,
            });
        }
    }

    /// A renewal verified: the next chain starts at `first`.
    pub fn renewed(&mut self, device: &DeviceId, first: u32, len: u32) {
        let Some(d) = self.devices.get_mut(device) else {
            return;
        };
        if d.chains.iter().any(|c| c.first == first) {
            return;
        }
        if d.chains.len() >= CHAINS_MAX {
            d.chains.remove(0);
        }
        d.chains.push(Chain {
            first,
            len,
            latest: None,
        });
    }

    /// An authenticated attestation for `interval` disclosed `key` (the key of
    /// `interval − delay`).
    pub fn disclosed(&mut self, device: &DeviceId, interval: u32, key: ChainKey) {
        let Some(d) = self.devices.get_mut(device) else {
            return;
        };
        let Some(j) = interval.checked_sub(d.delay).filter(|j| *j > 0) else {
            return;
        };
        if let Some(c) = d.chains.iter_mut().find(|c| c.contains(j))
            && c.latest.as_ref().is_none_or(|(m, _)| *m < j)
        {
            c.latest = Some((j, key));
        }
    }

    /// A renewal frame for `interval` was taken for checking.
    pub fn heard(&mut self, device: DeviceId, interval: u32, frame: Arc<[u8]>) {
        let d = self.devices.entry(device).or_default();
        if d.renewals.iter().any(|h| h.frame == frame) {
            return;
        }
        if d.renewals.len() >= RENEWALS_MAX {
            d.renewals.remove(0);
        }
        d.renewals.push(Heard { frame, interval });
    }

    /// The renewals a proof for `interval` needs, from the anchor's chain to the one
    /// holding `interval`, each with its interval's key; `None` when one is missing
    /// (no renewal frame of that chain verifies under a key known here).
    pub fn parts(&self, device: &DeviceId, interval: u32) -> Option<Vec<Part>> {
        let d = self.devices.get(device)?;
        let k = d.chains.iter().position(|c| c.contains(interval))?;
        let mut out = Vec::with_capacity(k);
        for (c, next) in d.chains.iter().zip(d.chains.iter().skip(1)).take(k) {
            let (m, km) = c.latest.as_ref()?;
            let part = d.renewals.iter().find_map(|h| {
                if !c.contains(h.interval) || h.interval > *m {
                    return None;
                }
                let renewal = Maced::<Renewal>::decode(&h.frame).ok()?;
                if renewal.body().len != next.len {
                    return None;
                }
                let key = walk(
                    device,
                    c.first,
                    m - c.first + 1,
                    km,
                    h.interval - c.first + 1,
                );
                renewal
                    .verify(&mac_key(&key))
                    .then(|| (h.frame.clone(), key))
            })?;
            out.push(part);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slope_node::compact::device::{Device as Chain2, Schedule};
    use slope_proto::compact::attestation::View;

    const T: u64 = 60_000;

    fn at(i: u32) -> u64 {
        u64::from(i - 1) * T + 1_000
    }

    #[test]
    fn a_renewals_key_is_walked_back_from_the_latest_disclosure() {
        let device = DeviceId([4; 32]);
        let schedule = Schedule {
            start_ms: 0,
            interval_ms: T as u32,
            delay: 2,
        };
        // Chain 1 covers intervals 1..=8; renewals in 6 and 7; chain 2 from 9.
        let mut d = Chain2::new(device, &[1; 32], schedule, 1, 8).expect("chain");
        let mut c = Chains::default();
        c.anchored(device, 1, 8, 2);
        let mut renewals = Vec::new();
        for i in 1..=12u32 {
            if i == 6 || i == 7 {
                if i == 6 {
                    d.prepare_renewal(&[2; 32], 8).expect("prepare");
                }
                let r = d.renew(at(i)).expect("renew");
                let frame: Arc<[u8]> = r.frame().into();
                c.heard(device, i, frame.clone());
                renewals.push(frame);
                continue;
            }
            let f = d.attest(at(i), &[i as u8]).expect("attest");
            let view = View::parse(f.frame()).expect("view");
            c.disclosed(&device, view.interval(), view.disclosed());
            if i == 8 {
                c.renewed(&device, 9, 8);
            }
        }
        // Interval 5 is in the anchor's chain: no renewal needed.
        assert_eq!(c.parts(&device, 5).map(|p| p.len()), Some(0));
        // Interval 11 is in chain 2: one renewal, whose key verifies its MAC.
        let parts = c.parts(&device, 11).expect("parts");
        assert_eq!(parts.len(), 1);
        let (frame, key) = &parts[0];
        assert!(renewals.contains(frame));
        let m = Maced::<Renewal>::decode(frame).expect("renewal");
        assert!(m.verify(&mac_key(key)));
        // An interval past every known chain, or a device never anchored: nothing.
        assert!(c.parts(&device, 40).is_none());
        assert!(c.parts(&DeviceId([5; 32]), 3).is_none());
    }
}
