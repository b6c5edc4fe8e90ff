//! Cost of deciding a frame on the simulated air at the testnet's scale (10 000 devices,
//! 100 gateways 4 km apart, SF7/SF8, 14 dBm), with each sender's links cached (the
//! default) beside the reference computation (every link evaluated from the model at
//! every frame) measured in the same run.
//!
//! `cargo bench -p slope-radios --bench channel`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use slope_radios::airtime::Modulation;
use slope_radios::radio::TxParams;
use slope_radios::sim::{Channel, Config, NodeConfig, NodeId, Position};
use slope_radios::{Bandwidth, SpreadingFactor};

const DEVICES: usize = 10_000;
const GATEWAYS: usize = 100;
const SPACING_M: f64 = 4_000.0;
/// Frames decided per iteration.
const FRAMES: usize = 1_000;
const CHANNELS: [u32; 3] = [868_100_000, 868_300_000, 868_500_000];

/// A channel laid out like the testnet's default map, each device having sent once (so
/// the cached links are warm, as they are after a run's first minutes).
fn world(cache: bool) -> (Channel, Vec<(NodeId, Modulation)>, u64) {
    let mut rng = ChaCha12Rng::seed_from_u64(7);
    let mut ch = Channel::new(Config::new(7));
    ch.set_link_cache(cache);
    let cols = (GATEWAYS as f64).sqrt().ceil() as usize;
    let side = cols as f64 * SPACING_M;
    for g in 0..GATEWAYS {
        let pos = Position::new(
            ((g % cols) as f64 + 0.5) * SPACING_M,
            ((g / cols) as f64 + 0.5) * SPACING_M,
        );
        ch.add_node(pos, NodeConfig::gateway());
    }
    let devices: Vec<_> = (0..DEVICES)
        .map(|i| {
            let pos = Position::new(rng.gen_range(0.0..side), rng.gen_range(0.0..side));
            let sf = if i % 2 == 0 {
                SpreadingFactor::_7
            } else {
                SpreadingFactor::_8
            };
            let node = ch.add_node(pos, NodeConfig::device());
            (node, Modulation::new(sf, Bandwidth::_125KHz))
        })
        .collect();
    let mut now = 0;
    for chunk in devices.chunks(FRAMES) {
        now = send(&mut ch, &mut rng, chunk.iter().copied(), now);
    }
    (ch, devices, now)
}

/// Every device in `senders` transmits once, 100 ms apart (10 frames a second, as in
/// the testnet's 10 000-device runs: two to four frames on the air at once), then every
/// frame is decided. Returns the time after the last frame.
fn send(
    ch: &mut Channel,
    rng: &mut ChaCha12Rng,
    senders: impl Iterator<Item = (NodeId, Modulation)>,
    mut now: u64,
) -> u64 {
    for (node, modulation) in senders {
        let params = TxParams {
            freq_hz: CHANNELS[rng.gen_range(0..CHANNELS.len())],
            modulation,
            power_dbm: 14,
        };
        let _ = ch.transmit(now, node, &params, &[0x5A; 110]);
        now += 100_000;
    }
    now += 1_000_000;
    black_box(ch.deliveries(now));
    now
}

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.sample_size(20);
    for (name, cache) in [("decide/cached", true), ("decide/reference", false)] {
        let (mut ch, devices, mut now) = world(cache);
        let mut pick = ChaCha12Rng::seed_from_u64(8);
        let mut rng = ChaCha12Rng::seed_from_u64(9);
        // Later senders are past their duty-cycle wait: start an hour later.
        now += 3_600_000_000;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (0..FRAMES)
                        .map(|_| devices[pick.gen_range(0..devices.len())])
                        .collect::<Vec<_>>()
                },
                |senders| {
                    now = send(&mut ch, &mut rng, senders.into_iter(), now) + 3_600_000_000;
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
