//! The verify stage across cores: one [`Verifier`] per shard, each owning the devices
//! whose short id falls in it, verifying its part of a batch on its own thread.
//!
//! Why this changes no outcome: everything the verifier decides is per device (its key
//! state, window, escrow keyed by the missing event of that device, divergences), and a
//! device's frames always reach the same shard in their input order. What is split is
//! only the bounds: each shard tracks at most `max_devices / n` devices and escrows at
//! most `escrow_total / n` frames (rounded up), so a flood concentrated on one shard's
//! ids meets its wall a little earlier than with one verifier.

use slope_node::verifier::{Config, Outcome, Verifier};
use slope_proto::{DeviceId, Digest, Event, Observation, ShortId};

/// Frames a shard is worth its thread for: below this a batch is verified inline.
const PARALLEL_MIN: usize = 32;

/// The sharded verifier.
pub struct Shards {
    shards: Vec<Verifier>,
    config: Config,
    /// Wall time the calling thread waited for the other shards, since
    /// [`Self::take_waited`].
    waited: std::time::Duration,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("shards", &self.shards.len())
            .field("devices", &self.device_count())
            .finish()
    }
}

impl Shards {
    /// `n` shards (at least one) sharing the bounds of `config`.
    pub fn new(config: Config, n: usize) -> Self {
        let n = n.clamp(1, 64);
        let per = Config {
            max_devices: config.max_devices.div_ceil(n),
            escrow_total: config.escrow_total.div_ceil(n),
            released_max: config.released_max.div_ceil(n),
            ..config
        };
        Self {
            shards: (0..n).map(|_| Verifier::new(per)).collect(),
            config,
            waited: std::time::Duration::ZERO,
        }
    }

    /// The configuration as given (before it was split).
    /// Verifier shards (one per core).
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Never: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn index(&self, short: &ShortId) -> usize {
        usize::from(short.0[0]) % self.shards.len()
    }

    /// The shard of a frame: by the short id it names (an undecodable frame goes to
    /// shard 0, which rejects it).
    fn route(&self, frame: &[u8]) -> usize {
        match Event::decode(frame) {
            Ok(e) => self.index(&e.short_id()),
            Err(_) => 0,
        }
    }

    /// Verifies a batch: each shard its own frames, in parallel; outcomes in input order,
    /// equal to those of one verifier with the same bounds.
    pub fn handle_batch(&mut self, now: u64, frames: &[(&[u8], Observation)]) -> Vec<Outcome> {
        if self.shards.len() == 1 {
            return self.shards[0].handle_batch(now, frames);
        }
        let mut parts: Vec<Vec<(&[u8], Observation)>> = vec![Vec::new(); self.shards.len()];
        let mut slots: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, (f, rx)) in frames.iter().enumerate() {
            let s = self.route(f);
            parts[s].push((f, *rx));
            slots[s].push(i);
        }
        let (results, waited): (Vec<Vec<Outcome>>, _) = if frames.len() < PARALLEL_MIN {
            let results = self
                .shards
                .iter_mut()
                .zip(&parts)
                .map(|(v, p)| v.handle_batch(now, p))
                .collect();
            (results, std::time::Duration::ZERO)
        } else {
            std::thread::scope(|s| {
                let mut shards = self.shards.iter_mut().zip(&parts);
                let first = shards.next();
                let handles: Vec<_> = shards
                    .map(|(v, p)| s.spawn(move || v.handle_batch(now, p)))
                    .collect();
                let mut out = vec![
                    first
                        .map(|(v, p)| v.handle_batch(now, p))
                        .unwrap_or_default(),
                ];
                let t = std::time::Instant::now();
                for h in handles {
                    // A verifier panic is a bug; propagate it as such.
                    out.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
                }
                (out, t.elapsed())
            })
        };
        self.waited += waited;
        let mut out: Vec<Option<Outcome>> = (0..frames.len()).map(|_| None).collect();
        for (outcomes, slots) in results.into_iter().zip(slots) {
            for (o, i) in outcomes.into_iter().zip(slots) {
                out[i] = Some(o);
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or(Outcome::Rejected(
                    slope_node::verifier::VerifyError::Unexpected,
                ))
            })
            .collect()
    }

    /// Wall time the caller waited for the other shards to finish their part of a
    /// batch since the last call (a core without work, unless something else ran).
    pub fn take_waited(&mut self) -> std::time::Duration {
        std::mem::take(&mut self.waited)
    }

    /// Outcomes of escrowed frames released by an establishment event.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.shards.iter_mut().find_map(Verifier::poll_outcome)
    }

    /// Devices tracked, in all shards.
    pub fn device_count(&self) -> usize {
        self.shards.iter().map(Verifier::device_count).sum()
    }

    fn of(&self, device: &DeviceId) -> &Verifier {
        &self.shards[self.index(&device.short())]
    }

    /// The head the verifier holds for `device`.
    pub fn head(&self, device: &DeviceId) -> Option<(u32, Digest)> {
        self.of(device).head(device)
    }

    /// A suite-2 frame received at `rx_ms`, on the shard of the short id it names
    /// (bytes 3..11 of every suite-2 frame; the anchor lands beside its device's
    /// suite-1 key). See [`super::compact`].
    pub fn handle_compact(&mut self, rx_ms: u64, frame: &[u8], rx: Observation) -> Outcome {
        let i = frame
            .get(3)
            .map_or(0, |b| usize::from(*b) % self.shards.len());
        self.shards[i].handle_attestation(rx_ms, frame, rx)
    }

    /// Expires escrowed frames and suite-2 frames that waited too long for their key,
    /// in every shard; returns how many suite-2 frames were dropped.
    pub fn handle_timeout(&mut self, now: u64) -> usize {
        let before = self.compact_pending();
        for v in &mut self.shards {
            v.handle_timeout(now);
        }
        before.saturating_sub(self.compact_pending())
    }

    /// Suite-2 devices tracked, in all shards.
    pub fn compact_devices(&self) -> usize {
        self.shards.iter().map(|v| v.compact().device_count()).sum()
    }

    /// Suite-2 frames waiting for their keys, in all shards.
    pub fn compact_pending(&self) -> usize {
        self.shards
            .iter()
            .map(|v| v.compact().pending_total())
            .sum()
    }

    /// Forgets a divergence of `device` (operator release).
    pub fn release(&mut self, device: &DeviceId) -> bool {
        let i = self.index(&device.short());
        self.shards[i].release(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_frames_are_rejected_in_order() {
        let mut s = Shards::new(Config::default(), 3);
        let rx = crate::pipeline::quiet_rx();
        let junk: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; usize::from(i)]).collect();
        let frames: Vec<(&[u8], Observation)> = junk.iter().map(|f| (&f[..], rx)).collect();
        let out = s.handle_batch(0, &frames);
        assert_eq!(out.len(), 40);
        assert!(out.iter().all(|o| matches!(o, Outcome::Rejected(_))));
    }
}
