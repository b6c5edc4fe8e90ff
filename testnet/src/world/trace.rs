//! The event trace digest: every event the world processes, and every verdict a
//! gateway reaches, is fed to one blake3 hasher. Two runs with one seed print the same
//! digest; a test runs a scenario twice and compares.

/// A running digest of the trace.
#[derive(Debug, Clone)]
pub struct Trace {
    hasher: blake3::Hasher,
    events: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key("slope v1 testnet trace"),
            events: 0,
        }
    }
}

impl Trace {
    /// Records one event: its time, a kind tag and its fields.
    pub fn record(&mut self, at_us: u64, kind: u8, fields: &[u64]) {
        self.hasher.update(&at_us.to_le_bytes());
        self.hasher.update(&[kind]);
        for f in fields {
            self.hasher.update(&f.to_le_bytes());
        }
        self.events += 1;
    }

    /// Records bytes (a frame, a proof) by content.
    pub fn record_bytes(&mut self, bytes: &[u8]) {
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Events recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The digest so far, hex.
    pub fn digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}
