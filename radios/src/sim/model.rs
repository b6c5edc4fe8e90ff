//! The physical-layer model of the simulator: path loss, shadowing, noise floor,
//! sensitivity, SNR demodulation floors. Pure functions of their parameters; see
//! `docs/radio-model.md` for the sources of the defaults.

use lora_modulation::{Bandwidth, SpreadingFactor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Log-distance path loss with log-normal shadowing:
/// `PL(d) = pl_d0_db + 10 · exponent · log10(d / d0_m) + X`, `X ~ N(0, σ²)` per link,
/// truncated at ±3σ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Propagation {
    /// Reference distance in metres.
    pub d0_m: f64,
    /// Mean path loss at the reference distance, dB.
    pub pl_d0_db: f64,
    /// Path-loss exponent.
    pub exponent: f64,
    /// Standard deviation of the shadowing, dB.
    pub shadowing_sigma_db: f64,
}

impl Default for Propagation {
    /// [`Propagation::outdoor_mast`].
    fn default() -> Self {
        Self::outdoor_mast()
    }
}

impl Propagation {
    /// Petäjäjärvi et al., "On the coverage of LPWANs: range evaluation and channel
    /// attenuation model for LoRa technology" (ITST 2015), 868 MHz, gateway on a 24 m mast,
    /// nodes at ground level: PL(1 km) = 128.95 dB, n = 2.32, σ = 7.8 dB.
    pub const fn outdoor_mast() -> Self {
        Self {
            d0_m: 1000.0,
            pl_d0_db: 128.95,
            exponent: 2.32,
            shadowing_sigma_db: 7.8,
        }
    }

    /// Bor et al., "Do LoRa low-power wide-area networks scale?" (MSWiM 2016), measured in
    /// a built-up area with indoor nodes: PL(40 m) = 127.41 dB, n = 2.08, σ = 3.57 dB.
    pub const fn dense_urban() -> Self {
        Self {
            d0_m: 40.0,
            pl_d0_db: 127.41,
            exponent: 2.08,
            shadowing_sigma_db: 3.57,
        }
    }

    /// Mean path loss at `distance_m` (distances under 1 m count as 1 m).
    pub fn mean_path_loss_db(&self, distance_m: f64) -> f64 {
        let d = distance_m.max(1.0);
        self.pl_d0_db + 10.0 * self.exponent * (d / self.d0_m).log10()
    }

    /// Largest distance at which the path loss can be as low as `max_loss_db`, counting the
    /// most favourable shadowing (−3σ).
    pub fn max_distance_m(&self, max_loss_db: f64) -> f64 {
        let mean = max_loss_db + 3.0 * self.shadowing_sigma_db;
        self.d0_m * 10f64.powf((mean - self.pl_d0_db) / (10.0 * self.exponent))
    }

    /// Shadowing of the link between `a` and `b` (symmetric, stable for `seed`), dB.
    pub fn shadowing_db(&self, seed: u64, a: u32, b: u32) -> f64 {
        if self.shadowing_sigma_db == 0.0 {
            return 0.0;
        }
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, (u64::from(lo) << 32) | u64::from(hi)));
        let z = standard_normal(&mut rng).clamp(-3.0, 3.0);
        z * self.shadowing_sigma_db
    }
}

/// One draw of N(0, 1) (Box–Muller).
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>(); // (0, 1]
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
}

/// SplitMix64 finaliser of `seed ^ x`: decorrelates per-link seeds.
pub(crate) fn mix(seed: u64, x: u64) -> u64 {
    let mut z = seed ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Thermal noise floor of a receiver: `−174 dBm/Hz + 10·log10(BW) + NF`.
pub fn noise_floor_dbm(bw: Bandwidth, noise_figure_db: f64) -> f64 {
    -174.0 + 10.0 * f64::from(bw.hz()).log10() + noise_figure_db
}

/// Minimum SNR at which a LoRa demodulator still decodes (SX1276 datasheet table 13).
pub const fn snr_floor_db(sf: SpreadingFactor) -> f64 {
    match sf {
        SpreadingFactor::_5 => -2.5,
        SpreadingFactor::_6 => -5.0,
        SpreadingFactor::_7 => -7.5,
        SpreadingFactor::_8 => -10.0,
        SpreadingFactor::_9 => -12.5,
        SpreadingFactor::_10 => -15.0,
        SpreadingFactor::_11 => -17.5,
        SpreadingFactor::_12 => -20.0,
    }
}

/// Sensitivity: the weakest signal that decodes, `noise floor + SNR floor`.
pub fn sensitivity_dbm(sf: SpreadingFactor, bw: Bandwidth, noise_figure_db: f64) -> f64 {
    noise_floor_dbm(bw, noise_figure_db) + snr_floor_db(sf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitivities_match_datasheet_order() {
        let s7 = sensitivity_dbm(SpreadingFactor::_7, Bandwidth::_125KHz, 6.0);
        let s12 = sensitivity_dbm(SpreadingFactor::_12, Bandwidth::_125KHz, 6.0);
        assert!((s7 - -124.53).abs() < 0.1, "{s7}");
        assert!((s12 - -137.03).abs() < 0.1, "{s12}");
    }

    #[test]
    fn shadowing_is_symmetric_stable_and_bounded() {
        let p = Propagation::dense_urban();
        let mut sum = 0.0;
        let mut sum2 = 0.0;
        for i in 0..2000u32 {
            let s = p.shadowing_db(7, i, i + 1);
            assert_eq!(s, p.shadowing_db(7, i + 1, i));
            assert!(s.abs() <= 3.0 * p.shadowing_sigma_db + 1e-9);
            sum += s;
            sum2 += s * s;
        }
        let mean = sum / 2000.0;
        let sd = (sum2 / 2000.0 - mean * mean).sqrt();
        assert!(mean.abs() < 0.3, "{mean}");
        assert!((sd - 3.57).abs() < 0.3, "{sd}");
        assert_ne!(p.shadowing_db(7, 1, 2), p.shadowing_db(8, 1, 2));
    }

    #[test]
    fn max_distance_inverts_path_loss() {
        let p = Propagation {
            shadowing_sigma_db: 0.0,
            ..Propagation::default()
        };
        let d = p.max_distance_m(150.0);
        assert!((p.mean_path_loss_db(d) - 150.0).abs() < 1e-9);
    }
}
