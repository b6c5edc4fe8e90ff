//! The sensor-payload hook: what rides along in each attestation.
//!
//! A board (or an application built on one) implements [`Sensor`]: a few bytes of reading
//! for the attestation's payload (at most `slope_proto::limits::MAX_PAYLOAD`, 16) and
//! the quantised behaviour features whose digest the slope signs (`Slope::set_behaviour`),
//! which verifiers compare with the device's own history. Keep features coarse (a
//! temperature class, not a reading): they must be stable for an honest device.

use slope_proto::limits::MAX_PAYLOAD;

/// One attestation's worth of sensor output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Payload bytes (at most [`MAX_PAYLOAD`]).
    pub payload: heapless::Vec<u8, MAX_PAYLOAD>,
    /// Behaviour features (hashed by the slope; any length up to 16 bytes).
    pub behaviour: heapless::Vec<u8, 16>,
}

/// The application's sensor.
#[allow(async_fn_in_trait)]
pub trait Sensor {
    /// Reads the sensor for the next attestation.
    async fn read(&mut self) -> Reading;
}

/// No sensor: an empty payload and no behaviour features.
#[derive(Debug, Default)]
pub struct NoSensor;

impl Sensor for NoSensor {
    async fn read(&mut self) -> Reading {
        Reading::default()
    }
}
