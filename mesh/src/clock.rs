//! Where the gateway reads the time: the system clock in the daemon, a clock the caller
//! drives when the node is embedded in a simulation (see [`crate::node::Options`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Milliseconds since the Unix epoch, as the node sees them.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> u64;
}

/// A clock shared by the node's tasks.
pub type Shared = Arc<dyn Clock>;

/// The system clock (what `slope gateway` uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Clock for System {
    fn now_ms(&self) -> u64 {
        crate::source::now_ms()
    }
}

/// A clock that moves only when told (simulations, tests); clones share the time.
#[derive(Debug, Clone, Default)]
pub struct Manual(Arc<AtomicU64>);

impl Manual {
    /// A clock standing at `ms`.
    pub fn at(ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(ms)))
    }
    /// Sets the time.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for Manual {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The system clock, shared.
pub fn system() -> Shared {
    Arc::new(System)
}
