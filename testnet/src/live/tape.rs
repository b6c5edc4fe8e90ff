//! The radio side of a live run: the simulated world (the same fleet, geometry, channel,
//! honest misbehaviour and attack as the simulated layer, from the same seed) runs
//! first with its tape on, and every reception at a gateway's radio is kept, in order,
//! with the ground truth the oracles need. Devices do not hear gateways, so what they
//! transmit does not depend on what the gateways do: replaying the tape into real
//! gateways is what those gateways' radios would have heard.

use crate::error::Error;
use crate::params::Params;
use crate::world::{Reception, World};

/// A recorded run: the finished world (truth, devices, attack) and its receptions.
pub struct Tape {
    pub world: World,
    pub receptions: Vec<Reception>,
}

impl Tape {
    /// Runs the simulated world for `params` and keeps its receptions.
    pub fn record(params: &Params) -> Result<Self, Error> {
        let mut world = World::new(params.clone())?;
        world.tape = Some(Vec::new());
        world.run(&mut |_| {})?;
        let receptions = world.tape.take().unwrap_or_default();
        Ok(Self { world, receptions })
    }

    /// The receptions grouped in windows of `step_ms` of virtual time: (window end,
    /// receptions), empty windows skipped.
    pub fn windows(&self, step_ms: u64) -> Vec<(u64, &[Reception])> {
        let step = step_ms.max(1);
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.receptions.len() {
            let end_ms = (self.receptions[start].at_ms / step + 1) * step;
            let n = self.receptions[start..]
                .iter()
                .take_while(|r| r.at_ms < end_ms)
                .count()
                .max(1);
            out.push((end_ms, &self.receptions[start..start + n]));
            start += n;
        }
        out
    }

    /// Receptions of frames the attacker forged and replayed, and receptions that
    /// repeat an earlier one at the same gateway (a second RF chain, a forwarder loop).
    pub fn tagged(&self) -> (u64, u64, u64) {
        let (mut forged, mut replayed) = (0, 0);
        let mut seen = std::collections::HashSet::new();
        let mut repeats = 0;
        for r in &self.receptions {
            match self.world.attack.attacker_frame(&r.envelope) {
                Some(true) => forged += 1,
                Some(false) => replayed += 1,
                None => {}
            }
            if !seen.insert((r.gateway, blake3::hash(&r.envelope))) {
                repeats += 1;
            }
        }
        (forged, replayed, repeats)
    }
}
