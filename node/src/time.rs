//! Time as the protocol core sees it: a caller-supplied count of milliseconds.
//!
//! On a gateway it is milliseconds since the Unix epoch; on a device it may be
//! milliseconds since boot. The core never reads a clock: every `now` is an argument.

/// Milliseconds, supplied by the caller.
pub type Millis = u64;
