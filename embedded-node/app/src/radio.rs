//! What the device role needs from a radio beyond `slope_radios::radio::Radio`.
//!
//! `Radio::receive` takes no channel: the receiver is tuned beforehand with
//! [`Tune::listen_on`], and put in its low-power state with [`Tune::idle`] when a receive
//! window closes (a SX126x left in receive draws about 5 mA).

use slope_radios::airtime::Modulation;

/// Tuning and power control of a receiver.
#[allow(async_fn_in_trait)]
pub trait Tune {
    /// The channel and modulation the next `receive` calls listen with.
    fn listen_on(&mut self, freq_hz: u32, modulation: Modulation);
    /// Low power until the next transmit or receive.
    async fn idle(&mut self);
}

impl Tune for crate::sim::SimRadio {
    fn listen_on(&mut self, _freq_hz: u32, _modulation: Modulation) {}
    async fn idle(&mut self) {}
}
