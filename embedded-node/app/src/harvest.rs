//! Entropy harvesting: every source of the board, each behind its own health test, mixed
//! into samples that carry a stated amount of min-entropy.
//!
//! A board lists its sources ([`Sources`]): the TRNG where there is one, ADC noise, timer
//! jitter. The radio's noise (RSSI and SNR of every frame heard) is always added as the
//! last source, [`RADIO_NOISE`]. Each symbol goes through that source's
//! [`HealthTest`]; symbols that pass are gathered, round-robin across sources, until they
//! carry at least [`SAMPLE_EIGHTHS`] eighths of a bit of claimed min-entropy, and then
//! handed to the slope as one sample (`Slope::handle_entropy`). The slope wants
//! `MIN_INCEPT_SAMPLES` = 256 samples of at least one bit each; with two bits per sample
//! the claim is met twice over.
//!
//! A source that fails its health test is logged once and never read again this boot;
//! the harvester carries on with the others and says so when none is left.

use heapless::Vec;

use crate::health::{HealthTest, MinEntropy, Status, Verdict};

/// Sources a harvester can watch, the radio's included.
pub const MAX_SOURCES: usize = 6;

/// Claimed min-entropy of one sample handed to the slope: 2 bits, in eighths.
pub const SAMPLE_EIGHTHS: u16 = 16;

/// Largest sample: enough half-bit symbols (with their source tags) for
/// [`SAMPLE_EIGHTHS`], with room to spare.
const SAMPLE_MAX: usize = 32;

/// A raw entropy source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    /// Short name, for reports.
    pub name: &'static str,
    /// Min-entropy per 8-bit symbol the source is trusted to deliver.
    pub min_entropy: MinEntropy,
}

/// The radio's noise: the low bits of the RSSI and SNR of frames heard.
pub const RADIO_NOISE: SourceInfo = SourceInfo {
    name: "radio rssi/snr",
    min_entropy: MinEntropy::HalfBit,
};

/// The board's entropy sources, read one 8-bit symbol at a time.
#[allow(async_fn_in_trait)]
pub trait Sources {
    /// The sources, in a fixed order (at most [`MAX_SOURCES`] − 1).
    fn list(&self) -> &'static [SourceInfo];
    /// One raw symbol from source `index`, or `None` when the read itself failed.
    async fn sample(&mut self, index: usize) -> Option<u8>;
}

/// Health-tested mixing of all sources into slope samples.
pub struct Harvester {
    sources: Vec<(SourceInfo, HealthTest), MAX_SOURCES>,
    radio: usize,
    pending: Vec<u8, SAMPLE_MAX>,
    credited: u16,
    delivered: u32,
}

/// What a call to [`Harvester::harvest`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Harvest {
    /// Samples handed to the sink.
    pub delivered: u32,
    /// Whether every board source has failed (only the radio's noise is left).
    pub exhausted: bool,
}

impl Harvester {
    /// Watches `board` (extra sources beyond [`MAX_SOURCES`] − 1 are ignored) and the
    /// radio's noise.
    pub fn new(board: &[SourceInfo]) -> Self {
        let mut sources = Vec::new();
        for info in board.iter().take(MAX_SOURCES - 1) {
            let _ = sources.push((*info, HealthTest::new(info.min_entropy)));
        }
        let radio = sources.len();
        let _ = sources.push((RADIO_NOISE, HealthTest::new(RADIO_NOISE.min_entropy)));
        Self {
            sources,
            radio,
            pending: Vec::new(),
            credited: 0,
            delivered: 0,
        }
    }

    /// Each source with its health status, the radio's last.
    pub fn report(&self) -> impl Iterator<Item = (&'static str, Status)> + '_ {
        self.sources.iter().map(|(i, t)| (i.name, t.status()))
    }

    /// Samples delivered since boot.
    pub fn delivered(&self) -> u32 {
        self.delivered
    }

    /// Whether board source `index` may still be read.
    fn usable(&self, index: usize) -> bool {
        self.sources
            .get(index)
            .is_some_and(|(_, t)| !matches!(t.status(), Status::Failed(_)))
    }

    /// Offers one symbol of source `index`; a completed sample goes to `sink`.
    pub fn offer(&mut self, index: usize, symbol: u8, sink: &mut impl FnMut(&[u8])) {
        let Some((info, test)) = self.sources.get_mut(index) else {
            return;
        };
        match test.check(symbol) {
            Verdict::Discard => {}
            Verdict::Failed(failure) => {
                warn!(
                    "entropy source {} failed its health test and is dropped: {}",
                    info.name, failure
                );
            }
            Verdict::Credit => {
                let credit = info.min_entropy.eighths();
                // Tag each symbol with its source: the same byte from two sources is two
                // different inputs.
                if self
                    .pending
                    .extend_from_slice(&[index as u8, symbol])
                    .is_err()
                {
                    // Cannot happen with SAMPLE_MAX >= 2 * 16 / 4; flush rather than lose it.
                    self.flush(sink);
                    return;
                }
                self.credited = self.credited.saturating_add(credit);
                if self.credited >= SAMPLE_EIGHTHS {
                    self.flush(sink);
                }
            }
        }
    }

    /// Offers the radio's measurement of one received frame.
    pub fn offer_radio(&mut self, rssi_dbm: i16, snr_qdb: i16, sink: &mut impl FnMut(&[u8])) {
        // The low byte of each: the dB-scale values move by a few units frame to frame,
        // and only that jitter is claimed (half a bit per symbol).
        self.offer(self.radio, rssi_dbm as u8, sink);
        self.offer(self.radio, snr_qdb as u8, sink);
    }

    fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        sink(&self.pending);
        zeroize::Zeroize::zeroize(&mut self.pending[..]);
        self.pending.clear();
        self.credited = 0;
        self.delivered = self.delivered.saturating_add(1);
    }

    /// Reads the board's sources round-robin until `want` samples were delivered, or
    /// every board source has failed, or `budget` symbols were read.
    pub async fn harvest<S: Sources>(
        &mut self,
        board: &mut S,
        want: u32,
        budget: u32,
        mut sink: impl FnMut(&[u8]),
    ) -> Harvest {
        let start = self.delivered;
        let mut read = 0u32;
        let count = self.radio;
        while self.delivered - start < want && read < budget {
            let mut any = false;
            for index in 0..count {
                if !self.usable(index) {
                    continue;
                }
                any = true;
                read += 1;
                if let Some(symbol) = board.sample(index).await {
                    self.offer(index, symbol, &mut sink);
                }
            }
            if !any {
                break;
            }
        }
        let exhausted = !(0..count).any(|i| self.usable(i));
        if exhausted {
            warn!("every board entropy source has failed");
        } else if self.delivered - start < want {
            info!(
                "entropy: {} of {} samples after {} symbols",
                self.delivered - start,
                want,
                read
            );
        }
        Harvest {
            delivered: self.delivered - start,
            exhausted,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::health::Failure;
    use std::vec::Vec as StdVec;

    struct Board {
        rng: u64,
    }

    const LIST: &[SourceInfo] = &[
        SourceInfo {
            name: "good",
            min_entropy: MinEntropy::TwoBits,
        },
        SourceInfo {
            name: "stuck",
            min_entropy: MinEntropy::OneBit,
        },
    ];

    impl Sources for Board {
        fn list(&self) -> &'static [SourceInfo] {
            LIST
        }
        async fn sample(&mut self, index: usize) -> Option<u8> {
            match index {
                0 => {
                    self.rng = self
                        .rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    Some((self.rng >> 33) as u8)
                }
                _ => Some(0x42),
            }
        }
    }

    #[test]
    fn a_stuck_source_is_dropped_and_the_good_one_feeds_the_slope() {
        let mut board = Board { rng: 1 };
        let mut h = Harvester::new(board.list());
        let mut samples: StdVec<StdVec<u8>> = StdVec::new();
        let got = embassy_futures::block_on(
            h.harvest(&mut board, 300, 100_000, |s| samples.push(s.to_vec())),
        );
        assert_eq!(got.delivered, 300);
        assert!(!got.exhausted);
        let report: StdVec<_> = h.report().collect();
        assert_eq!(report[0], ("good", Status::Healthy));
        assert!(matches!(
            report[1],
            ("stuck", Status::Failed(Failure::RepetitionCount { .. }))
        ));
        assert_eq!(report[2], ("radio rssi/snr", Status::Startup { seen: 0 }));
        // Only the good source is in the samples: one 2-bit symbol each, tagged 0.
        assert!(samples.iter().all(|s| s.len() == 2 && s[0] == 0));
    }

    #[test]
    fn all_sources_failing_is_reported() {
        struct Dead;
        impl Sources for Dead {
            fn list(&self) -> &'static [SourceInfo] {
                &LIST[1..]
            }
            async fn sample(&mut self, _: usize) -> Option<u8> {
                Some(0)
            }
        }
        let mut h = Harvester::new(Dead.list());
        let got = embassy_futures::block_on(h.harvest(&mut Dead, 10, 100_000, |_| {}));
        assert_eq!(
            got,
            Harvest {
                delivered: 0,
                exhausted: true
            }
        );
    }

    #[test]
    fn radio_noise_is_credited_after_its_own_startup() {
        let mut h = Harvester::new(&[]);
        let mut n = 0;
        let mut x = 7u32;
        for _ in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            h.offer_radio(-100 - (x >> 28) as i16, (x >> 20) as i16, &mut |_| n += 1);
        }
        // 4000 symbols, 1024 of start-up, half a bit each, 2 bits per sample.
        assert_eq!(n, (4000 - 1024) / 4);
    }
}
