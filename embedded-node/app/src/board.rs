//! What every board does once its peripherals are up (feature `embassy-time`): run the
//! device role until a fatal error, then wait and reset; on a wiring error, report it and
//! stay put (resetting would only loop).
//!
//! A board's `main` builds its clocks, flash, entropy sources and `LoraRadio`, then
//! hands them to [`run`]; everything after that is board-independent.

use core::fmt::Debug;

use embassy_time::Timer;
use slope_node::device::storage::Slots;
use slope_radios::radio::{Radio, Tune};

use crate::clock::EmbassyClock;
use crate::harvest::Sources;
use crate::log::dbg;
use crate::node::{Config, Fatal, Node, StorageError};
use crate::sensor::NoSensor;

/// Boots the device role from the slope in `slots` and runs it. Returns only by
/// `reset`: after a fatal error (nothing was released for the state that failed to
/// commit) the board waits 5 s, so that a log reader sees why, and starts over from
/// flash.
pub async fn run<R, M, S>(config: Config, slots: M, radio: R, sources: S, reset: fn() -> !) -> !
where
    R: Radio + Tune,
    M: Slots,
    S: Sources,
    Fatal<StorageError<M>>: Debug,
{
    let fatal = match Node::boot(config, slots, radio, EmbassyClock, sources, NoSensor) {
        Ok(mut node) => node.run().await,
        Err(f) => f,
    };
    error!("device role stopped: {}; resetting", dbg(&fatal));
    Timer::after_secs(5).await;
    reset()
}

/// A board wiring error: report it and stay put.
pub async fn halt<E: Debug>(e: E) -> ! {
    error!("board setup failed: {}", dbg(&e));
    loop {
        Timer::after_secs(3600).await;
    }
}

/// The configured plan has no channel or data rate to listen on (a wiring error for
/// [`halt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoReceiveChannel;
