//! Devices on the air: wake-ups (attest, then queue the frames), transmissions through
//! the channel's duty-cycle tracker (with an independent airtime ledger that counts
//! violations), power cuts and reboots, and receptions at gateways.

use std::sync::Arc;

use rand::Rng;
use slope_proto::Observation;
use slope_radios::duty_cycle::{Refused as DutyRefused, WINDOW_US};
use slope_radios::radio::TxParams;
use slope_radios::region::Region;
use slope_radios::sim::{Delivery, Refused};

use super::device::{Role, Wake};
use super::gateway::{Input, Source};
use super::{Ev, NodeRole, World};
use crate::error::Error;

/// Conducted transmit power of devices, dBm.
pub const TX_POWER_DBM: i8 = 14;
/// Gap between two frames of one release, µs.
const INTER_FRAME_US: u64 = 50_000;
/// 1 % of the one-hour window, the g1 sub-band's budget, µs.
const BUDGET_US: u64 = WINDOW_US / 100;

impl World {
    pub(super) fn on_wake(&mut self, i: usize) -> Result<(), Error> {
        let now_ms = self.now_ms();
        let Some(d) = self.devices.get(i) else {
            return Ok(());
        };
        let interval_us = u64::from(d.config().interval_s) * 1_000_000;
        if d.silent || !d.is_on() {
            return Ok(());
        }
        self.trace.record(self.now_us, 1, &[i as u64]);
        let next = if d.suite() == crate::params::Suite::Compact {
            // One frame per compact interval, at the device's phase in it ±5 % (the
            // clock error, ≤ 2.8 s, never moves a wake-up across an interval boundary).
            let boundary = (self.now_us / interval_us + 1) * interval_us;
            let at = (d.phase() * interval_us as f64) as u64;
            boundary + at - interval_us / 20 + self.rng.gen_range(0..=interval_us / 10)
        } else {
            self.now_us
                + self
                    .rng
                    .gen_range(interval_us * 9 / 10..=interval_us * 11 / 10)
        };
        let dormant = self.attack.dormant_until(i, self.now_us);
        if let Some(until) = dormant
            && until > self.now_us
        {
            self.schedule(until, Ev::Wake(i));
            return Ok(());
        }
        let payload = payload_at(now_ms);
        let outcome = match self.devices.get_mut(i) {
            Some(d) => d.wake(now_ms, &mut self.rng, &payload)?,
            None => return Ok(()),
        };
        match outcome {
            Wake::Frames(frames) => {
                self.counters.signed += frames.len() as u64;
                if let Some(d) = self.devices.get_mut(i) {
                    d.pending.extend(frames);
                    if let (Role::Honest, Some(id)) = (d.role, d.id) {
                        self.identity.entry(id).or_insert(i);
                    }
                }
                self.kick(i);
                self.schedule(next, Ev::Wake(i));
                self.sign_ahead(i, next);
            }
            Wake::PowerCut => {
                self.counters.power_cuts += 1;
                self.trace.record(self.now_us, 2, &[i as u64]);
                let back = self.now_us + self.rng.gen_range(60_000_000..=1_800_000_000);
                self.schedule(back, Ev::PowerOn(i));
            }
        }
        Ok(())
    }

    /// Has the attestation device `i` makes at its wake-up at `at_us` signed ahead on
    /// the second thread, when there is one (see [`super::preverify`]).
    fn sign_ahead(&mut self, i: usize, at_us: u64) {
        if !self.pre.signs() || at_us > self.end_us {
            return;
        }
        let at_ms = at_us / 1000;
        let payload = payload_at(at_ms);
        let Some(d) = self.devices.get_mut(i) else {
            return;
        };
        if let Some(job) = d.sign_ahead(at_ms, &payload)
            && let Some(slot) = self.pre.submit_sign(job, self.now_us, at_us)
        {
            d.expect_ahead(slot);
        }
    }

    pub(super) fn on_power_on(&mut self, i: usize) -> Result<(), Error> {
        let cuts = self.cuts_per_day(i);
        let interval_us = u64::from(self.params.interval_s) * 1_000_000;
        if let Some(d) = self.devices.get_mut(i) {
            d.power_on(&mut self.rng, cuts)?;
        }
        self.trace.record(self.now_us, 4, &[i as u64]);
        self.kick(i);
        let first = self.now_us + self.rng.gen_range(interval_us / 10..=interval_us);
        self.schedule(first, Ev::Wake(i));
        Ok(())
    }

    pub(super) fn on_reboot(&mut self, i: usize) -> Result<(), Error> {
        let rate = self.params.reboots_per_day;
        if rate > 0.0 {
            let next = self.now_us + exp_us(&mut self.rng, 86_400.0 / rate);
            self.schedule(next, Ev::Reboot(i));
        }
        let cuts = self.cuts_per_day(i);
        let Some(d) = self.devices.get_mut(i) else {
            return Ok(());
        };
        if !d.is_on() || d.silent {
            return Ok(());
        }
        d.power_off();
        d.power_on(&mut self.rng, cuts)?;
        d.reboots += 1;
        d.sending = false;
        self.counters.reboots += 1;
        self.trace.record(self.now_us, 5, &[i as u64]);
        self.kick(i);
        Ok(())
    }

    /// Power cuts per day for device `i` (honest devices only).
    pub(super) fn cuts_per_day(&self, i: usize) -> f64 {
        match self.devices.get(i).map(|d| d.role) {
            Some(Role::Honest) => self.params.power_cuts_per_day,
            _ => 0.0,
        }
    }

    /// Schedules a send now if the device has frames and none is scheduled.
    pub(super) fn kick(&mut self, i: usize) {
        if let Some(d) = self.devices.get_mut(i)
            && !d.sending
            && !d.pending.is_empty()
        {
            d.sending = true;
            self.schedule(self.now_us, Ev::Send(i));
        }
    }

    pub(super) fn on_send(&mut self, i: usize) {
        let Some(d) = self.devices.get_mut(i) else {
            return;
        };
        d.sending = false;
        let Some(frame) = d.pending.front().cloned() else {
            return;
        };
        if !d.is_on() {
            return;
        }
        let (node, modulation, role) = (d.node, d.modulation, d.role);
        let channels = Region::Eu868.default_channels();
        let freq_hz = channels[self.rng.gen_range(0..channels.len())];
        let params = TxParams {
            freq_hz,
            modulation,
            power_dbm: TX_POWER_DBM,
        };
        match self.channel.transmit(self.now_us, node, &params, &frame) {
            Ok(tx) => {
                self.trace.record(self.now_us, 6, &[i as u64, tx.id.0]);
                if let Ok(envelope) = slope_radios::frame::parse_frame(&frame) {
                    self.pre.submit(&Arc::from(envelope), self.now_us);
                }
                self.check_ledger(node.0 as usize, tx.airtime_us);
                let now_ms = self.now_ms();
                match role {
                    Role::Honest => {
                        self.counters.honest_frames += 1;
                        self.counters.honest_airtime_us += u64::from(tx.airtime_us);
                        self.counters.honest_bytes +=
                            frame.len().saturating_sub(slope_radios::frame::OVERHEAD) as u64;
                        if let Some(t) = self.truth.get_mut(i) {
                            t.first_tx_ms.get_or_insert(now_ms);
                        }
                        self.attack.recorded(i, &frame);
                    }
                    Role::Clone { .. } => self.counters.attack_frames += 1,
                    Role::Sybil => self.counters.attack_frames += 1,
                }
                if let Some(d) = self.devices.get_mut(i) {
                    d.pending.pop_front();
                    if !d.pending.is_empty() {
                        d.sending = true;
                        self.queue.push(tx.end_us + INTER_FRAME_US, Ev::Send(i));
                    }
                }
            }
            Err(Refused::Busy { until_us }) => self.retry(i, until_us),
            Err(Refused::Regional(DutyRefused::WaitUntil(t))) => {
                self.counters.duty_cycle_deferrals += 1;
                self.retry(i, t.max(self.now_us + 1));
            }
            Err(_) => {
                // Cannot be sent at all (too long for the data rate): dropped.
                if let Some(d) = self.devices.get_mut(i) {
                    d.pending.pop_front();
                }
                self.kick(i);
            }
        }
    }

    fn retry(&mut self, i: usize, at_us: u64) {
        if let Some(d) = self.devices.get_mut(i) {
            d.sending = true;
        }
        self.schedule(at_us, Ev::Send(i));
    }

    /// The independent duty-cycle check: the node's own ledger of airtime in the last
    /// hour (all its channels are in one sub-band), counted against 1 %.
    pub(super) fn check_ledger(&mut self, node: usize, airtime_us: u32) {
        if self.ledger.len() <= node {
            self.ledger.resize_with(node + 1, Default::default);
        }
        let now = self.now_us;
        let l = &mut self.ledger[node];
        while l
            .front()
            .is_some_and(|(s, a)| s + u64::from(*a) + WINDOW_US <= now + u64::from(airtime_us))
        {
            l.pop_front();
        }
        l.push_back((now, airtime_us));
        let used: u64 = l.iter().map(|(_, a)| u64::from(*a)).sum();
        if used > BUDGET_US {
            self.counters.duty_cycle_violations += 1;
        }
    }

    pub(super) fn on_delivery(&mut self, d: Delivery) {
        let Some(NodeRole::Gateway(g)) = self.roles.get(d.to.0 as usize).copied() else {
            return;
        };
        self.counters.receptions += 1;
        if self.rng.r#gen::<f64>() < self.params.frame_loss {
            self.counters.receptions_lost += 1;
            return;
        }
        // One copy of the envelope per transmission, shared by every gateway that hears
        // it (deliveries of one transmission come together).
        let envelope = match &self.last_rx {
            Some((tx, e)) if *tx == d.tx.0 => e.clone(),
            _ => {
                let Ok(envelope) = slope_radios::frame::parse_frame(&d.bytes) else {
                    return;
                };
                let e: Arc<[u8]> = envelope.into();
                self.last_rx = Some((d.tx.0, e.clone()));
                e
            }
        };
        // A clone's attack starts when a gateway first receives one of its new frames
        // (a clone no gateway hears can neither be caught nor do anything).
        if let Some(NodeRole::Device(i)) = self.roles.get(d.from.0 as usize).copied()
            && let Some(Role::Clone { of }) = self.devices.get(i).map(|x| x.role)
            && self.attack.is_new_frame(&d.bytes)
            && let Some(t) = self.truth.get_mut(of)
        {
            t.attacked_at_ms.get_or_insert(d.meta.timestamp_us / 1000);
        }
        if let Some(NodeRole::Device(i)) = self.roles.get(d.from.0 as usize).copied()
            && self.devices.get(i).is_some_and(|x| x.role == Role::Honest)
            && let Some(t) = self.truth.get_mut(i)
            && t.attacked_at_ms.is_some()
            && let Some(copied) = t.copied_at_seq
            && super::device::frame_position(&envelope).is_some_and(|p| p > copied)
        {
            t.original_heard_after = true;
        }
        let from_attacker = matches!(self.roles.get(d.from.0 as usize), Some(NodeRole::Attacker));
        if from_attacker {
            self.attack.received(&envelope, &mut self.counters);
        }
        let rx = Observation {
            rssi_dbm: d.meta.rssi_dbm,
            snr_qdb: d.meta.snr.quarter_db(),
            freq_hz: d.meta.freq_hz,
            foff_hz: d.meta.freq_offset_hz,
            sf: u32::from(d.meta.sf) as u8,
            time_ms: self.now_ms(),
        };
        self.trace.record(self.now_us, 7, &[u64::from(g), d.tx.0]);
        let input = Input {
            envelope,
            rx,
            source: Source::Radio,
            relay: None,
        };
        self.attack
            .duplicate(g, &input, self.now_us, &mut self.rng, &mut self.queue);
        self.deliver(g, input);
    }

    /// Queues a frame at gateway `g` and schedules its flush.
    pub(super) fn deliver(&mut self, g: u16, input: Input) {
        if let Some(tape) = &mut self.tape
            && input.source == Source::Radio
        {
            tape.push(super::Reception {
                at_ms: self.now_us / 1000,
                gateway: g,
                envelope: input.envelope.clone(),
                rx: input.rx,
            });
        }
        let Some(gw) = self.gateways.get_mut(usize::from(g)) else {
            return;
        };
        gw.receive(input);
        if !gw.flush_scheduled {
            gw.flush_scheduled = true;
            self.queue
                .push(super::tick_after(self.now_us), Ev::Flush(g));
        }
    }
}

/// A device's payload at a wake-up at `at_ms`: the time in seconds. The wake-up and
/// the signing ahead of it must build the same one (a different payload is a different
/// message: the signature made ahead would never be adopted).
fn payload_at(at_ms: u64) -> [u8; 8] {
    (at_ms / 1000).to_le_bytes()
}

/// An exponential draw with mean `mean_s` seconds, in µs.
pub fn exp_us(rng: &mut impl Rng, mean_s: f64) -> u64 {
    let u: f64 = rng.r#gen::<f64>();
    (-(1.0 - u).ln() * mean_s * 1e6).min(1e18) as u64
}
