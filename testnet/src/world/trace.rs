//! The event trace digest: every event the world processes, and every verdict a
//! gateway reaches, is fed to one blake3 hasher. Two runs with one seed print the same
//! digest; a test runs a scenario twice and compares.
//!
//! The bytes are gathered in a buffer of [`BUF`] bytes and hashed when it fills: blake3
//! is a streaming hash, so the digest is that of the same byte stream, and an update of
//! many chunks runs several times faster than one of 9 to 25 bytes (the trace was
//! hashed event by event before, ≈ 3 % of the event loop).

/// Bytes gathered before they are hashed (16 chunks of blake3).
pub const BUF: usize = 16 * 1024;

/// Trace records not yet hashed: what one gateway's work at a tick writes (on whichever
/// thread), appended to the [`Trace`] in the order the sequential loop would have
/// written them (`World::run_tick`).
#[derive(Debug, Clone, Default)]
pub struct Records {
    buf: Vec<u8>,
    events: u64,
}

impl Records {
    /// Empty, with room for `bytes` (a gateway's work at a tick records a few events:
    /// one allocation rather than a growth per doubling).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            events: 0,
        }
    }

    /// Records one event: its time, a kind tag and its fields.
    pub fn record(&mut self, at_us: u64, kind: u8, fields: &[u64]) {
        self.buf.extend_from_slice(&at_us.to_le_bytes());
        self.buf.push(kind);
        for f in fields {
            self.buf.extend_from_slice(&f.to_le_bytes());
        }
        self.events += 1;
    }

    /// Records bytes (a frame, a proof) by content.
    pub fn record_bytes(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }
}

/// A running digest of the trace.
#[derive(Debug, Clone)]
pub struct Trace {
    hasher: blake3::Hasher,
    rec: Records,
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key("slope v1 testnet trace"),
            rec: Records {
                buf: Vec::with_capacity(BUF),
                events: 0,
            },
        }
    }
}

impl Trace {
    /// Records one event: its time, a kind tag and its fields.
    pub fn record(&mut self, at_us: u64, kind: u8, fields: &[u64]) {
        self.rec.record(at_us, kind, fields);
        self.spill();
    }

    /// Records bytes (a frame, a proof) by content.
    pub fn record_bytes(&mut self, bytes: &[u8]) {
        self.rec.record_bytes(bytes);
        self.spill();
    }

    /// Appends records gathered elsewhere (and empties them): the same stream as if
    /// they had been recorded here.
    pub fn absorb(&mut self, r: &mut Records) {
        self.rec.buf.extend_from_slice(&r.buf);
        self.rec.events += r.events;
        r.buf.clear();
        r.events = 0;
        self.spill();
    }

    /// Hashes the buffer once it holds [`BUF`] bytes.
    fn spill(&mut self) {
        if self.rec.buf.len() >= BUF {
            self.hasher.update(&self.rec.buf);
            self.rec.buf.clear();
        }
    }

    /// Events recorded.
    pub fn events(&self) -> u64 {
        self.rec.events
    }

    /// The digest so far, hex.
    pub fn digest(&self) -> String {
        let mut h = self.hasher.clone();
        h.update(&self.rec.buf);
        h.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffered digest is blake3 of the same stream hashed piece by piece, across
    /// several spills and with a tail left in the buffer.
    #[test]
    fn buffering_keeps_the_digest() {
        let mut t = Trace::default();
        let mut plain = blake3::Hasher::new_derive_key("slope v1 testnet trace");
        for i in 0..5_000u64 {
            t.record(i * 7, (i % 13) as u8, &[i, i ^ 0xdead]);
            plain.update(&(i * 7).to_le_bytes());
            plain.update(&[(i % 13) as u8]);
            plain.update(&i.to_le_bytes());
            plain.update(&(i ^ 0xdead).to_le_bytes());
            if i % 100 == 0 {
                let bytes = vec![i as u8; (i % 700) as usize];
                t.record_bytes(&bytes);
                plain.update(&(bytes.len() as u64).to_le_bytes());
                plain.update(&bytes);
            }
            if i % 1_000 == 17 {
                assert_eq!(t.digest(), plain.finalize().to_hex().to_string());
            }
        }
        assert_eq!(t.events(), 5_000);
        assert_eq!(t.digest(), plain.finalize().to_hex().to_string());
    }

    /// Records gathered apart and absorbed give the stream recorded in place.
    #[test]
    fn absorbed_records_keep_the_digest() {
        let (mut direct, mut merged) = (Trace::default(), Trace::default());
        let mut r = Records::default();
        for i in 0..3_000u64 {
            direct.record(i, 1, &[i]);
            if i % 3 == 0 {
                merged.absorb(&mut r);
                merged.record(i, 1, &[i]);
            } else {
                r.record(i, 1, &[i]);
            }
            if i % 500 == 0 {
                direct.record_bytes(&[i as u8; 40]);
                r.record_bytes(&[i as u8; 40]);
            }
        }
        merged.absorb(&mut r);
        assert_eq!(direct.events(), merged.events());
        assert_eq!(direct.digest(), merged.digest());
        // Out of order is another stream.
        let mut swapped = Trace::default();
        swapped.record(1, 1, &[1]);
        swapped.record(0, 1, &[0]);
        let mut straight = Trace::default();
        straight.record(0, 1, &[0]);
        straight.record(1, 1, &[1]);
        assert_ne!(swapped.digest(), straight.digest());
    }
}
