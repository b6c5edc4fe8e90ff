//! What every board does once its peripherals are up (feature `embassy-time`): run the
//! device role until a fatal error, then wait and reset; on a wiring error, report it and
//! stay put (resetting would only loop).
//!
//! A board's `main` builds its clocks, flash, entropy sources and lora-phy `LoRa`, then
//! hands them to [`run_lora`] (feature `lora`; [`run`] for any other radio); everything
//! after that is board-independent.

use core::fmt::Debug;

use embassy_time::Timer;
use slope_node::device::storage::Slots;
use slope_radios::radio::{Radio, Tune};

use crate::clock::EmbassyClock;
use crate::harvest::Sources;
use crate::log::dbg;
use crate::node::{Config, Fatal, Node, StorageError};
use crate::sensor::NoSensor;

/// Boots the device role from the slope in `slots` (and the compact state in
/// `compact`) and runs it. Returns only by `reset`: after a fatal error (nothing was
/// released for the state that failed to commit) the board waits 5 s, so that a log
/// reader sees why, and starts over from flash.
pub async fn run<R, M, K, S>(
    config: Config,
    slots: M,
    compact: K,
    radio: R,
    sources: S,
    reset: fn() -> !,
) -> !
where
    R: Radio + Tune,
    M: Slots,
    K: Slots,
    S: Sources,
    Fatal<StorageError<M>>: Debug,
{
    // No await while the boot result is alive (nor inside a match on it): the task's
    // future, which is static RAM, then holds one node, not two.
    let booted = Node::boot_with(
        config,
        slots,
        Some(compact),
        radio,
        EmbassyClock,
        sources,
        NoSensor,
    );
    let (mut node, mut fatal) = (None, None);
    match booted {
        Ok(n) => node = Some(n),
        Err(f) => fatal = Some(f),
    }
    if let Some(n) = node.as_mut() {
        fatal = Some(n.run().await);
    }
    if let Some(fatal) = &fatal {
        error!("device role stopped: {}; resetting", dbg(fatal));
    }
    Timer::after_secs(5).await;
    reset()
}

/// [`run`] over a lora-phy radio (feature `lora`): the radio starts listening on the
/// plan's first receive channel (the device role retunes it before every window), with
/// receive timestamps from embassy-time.
#[cfg(feature = "lora")]
pub async fn run_lora<RK, DLY, M, K, S>(
    config: Config,
    slots: M,
    compact: K,
    lora: lora_phy::LoRa<RK, DLY>,
    sources: S,
    reset: fn() -> !,
) -> !
where
    RK: lora_phy::mod_traits::RadioKind,
    DLY: lora_phy::DelayNs,
    M: Slots,
    K: Slots,
    S: Sources,
    Fatal<StorageError<M>>: Debug,
{
    use slope_radios::lora::{LoraRadio, RxConfig};
    let Some((freq_hz, modulation)) = config.plan.first_listen() else {
        halt(NoReceiveChannel).await
    };
    let rx = RxConfig {
        freq_hz,
        modulation,
    };
    let radio = LoraRadio::new(lora, EmbassyClock::now, rx);
    run(config, slots, compact, radio, sources, reset).await
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
