//! Heard-neighbour evidence: the Slope devices this device heard since its last
//! attestation, for the next one's `heard` list.
//!
//! Frames from the air are only checked for form here (the device holds no one's keys):
//! a neighbour report is evidence for the verifiers, who weigh it, not a claim this device
//! can prove. The table is bounded ([`TRACKED`]); when it is full a new neighbour replaces
//! the weakest one only if it was heard stronger, since the slope keeps the strongest
//! `MAX_HEARD` anyway.

use heapless::Vec;
use slope_proto::{Heard, NeighbourId};

/// Neighbours remembered between two attestations.
pub const TRACKED: usize = 16;

/// Neighbours heard since the last drain.
#[derive(Debug, Default)]
pub struct Neighbours {
    own: Option<NeighbourId>,
    heard: Vec<Heard, TRACKED>,
    dropped: u32,
}

impl Neighbours {
    /// Sets this device's own id, whose echoes are ignored.
    pub fn set_own(&mut self, id: NeighbourId) {
        self.own = Some(id);
    }

    /// Records that `id` was heard at position `seq` with `rssi_dbm`.
    pub fn hear(&mut self, id: NeighbourId, seq: u32, rssi_dbm: i16) {
        if self.own == Some(id) {
            return;
        }
        let rssi = rssi_dbm.clamp(-128, 127) as i8;
        if let Some(h) = self.heard.iter_mut().find(|h| h.id == id) {
            h.seq = h.seq.max(seq);
            h.rssi_dbm = h.rssi_dbm.max(rssi);
            return;
        }
        let new = Heard {
            id,
            seq,
            rssi_dbm: rssi,
        };
        if self.heard.push(new).is_ok() {
            return;
        }
        let weakest = self
            .heard
            .iter()
            .enumerate()
            .min_by_key(|(_, h)| h.rssi_dbm)
            .map(|(i, h)| (i, h.rssi_dbm));
        match weakest {
            Some((i, w)) if rssi > w => self.heard[i] = new,
            _ => {}
        }
        self.dropped = self.dropped.saturating_add(1);
    }

    /// Neighbours heard since the last call, emptying the table.
    pub fn drain(&mut self) -> Vec<Heard, TRACKED> {
        core::mem::take(&mut self.heard)
    }

    /// Neighbours heard so far in this round.
    pub fn len(&self) -> usize {
        self.heard.len()
    }

    /// Whether none was heard in this round.
    pub fn is_empty(&self) -> bool {
        self.heard.is_empty()
    }

    /// Reports lost to the bound since boot.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NeighbourId {
        NeighbourId([b; 4])
    }

    #[test]
    fn keeps_highest_seq_and_strongest_signal_and_ignores_itself() {
        let mut n = Neighbours::default();
        n.set_own(id(0));
        n.hear(id(0), 5, -50);
        n.hear(id(1), 3, -100);
        n.hear(id(1), 7, -110);
        n.hear(id(1), 6, -90);
        let heard = n.drain();
        assert_eq!(heard.len(), 1);
        assert_eq!((heard[0].seq, heard[0].rssi_dbm), (7, -90));
        assert!(n.is_empty());
    }

    #[test]
    fn bounded_and_keeps_the_strongest() {
        let mut n = Neighbours::default();
        for i in 0..40u8 {
            n.hear(id(i), 1, -140 + i16::from(i));
        }
        let heard = n.drain();
        assert_eq!(heard.len(), TRACKED);
        assert!(heard.iter().all(|h| h.rssi_dbm >= -116));
        assert_eq!(n.dropped(), 40 - TRACKED as u32);
        // RSSI is clamped to the wire's i8 range.
        n.hear(id(99), 1, -300);
        assert_eq!(n.drain()[0].rssi_dbm, -128);
    }
}
