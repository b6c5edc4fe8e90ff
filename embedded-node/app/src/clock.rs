//! Time for the device role: a monotonic microsecond clock that can be slept on.
//!
//! The boards implement it over `embassy-time`; the host tests over a virtual clock that
//! jumps ([`crate::sim::VirtualClock`]). The clock restarts at 0 on every boot: the slope
//! only needs time differences within one boot (key age, duty cycle), and the durable
//! ordering comes from the slope's own positions.

/// A monotonic clock in microseconds since boot.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Now.
    fn now_us(&self) -> u64;
    /// Returns at `deadline_us` or later (at once when it has passed).
    async fn sleep_until_us(&mut self, deadline_us: u64);

    /// Now, in milliseconds.
    fn now_ms(&self) -> u64 {
        self.now_us() / 1000
    }
}

/// The [`Clock`] over embassy-time (feature `embassy-time`).
#[cfg(feature = "embassy-time")]
#[derive(Debug, Default, Clone, Copy)]
pub struct EmbassyClock;

#[cfg(feature = "embassy-time")]
impl EmbassyClock {
    /// Microseconds since boot (a plain function: the receive-timestamp clock of
    /// `slope_radios::lora::LoraRadio::new`).
    pub fn now() -> u64 {
        embassy_time::Instant::now().as_micros()
    }
}

#[cfg(feature = "embassy-time")]
impl Clock for EmbassyClock {
    fn now_us(&self) -> u64 {
        Self::now()
    }
    async fn sleep_until_us(&mut self, deadline_us: u64) {
        embassy_time::Timer::at(embassy_time::Instant::from_micros(deadline_us)).await;
    }
}
