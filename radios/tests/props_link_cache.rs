//! The link cache decides exactly what the reference computation decides: the same
//! deliveries (receiver, signal, SNR, order) and the same counters, bit for bit, whatever
//! the layout, the moves, the receivers switched on and off, and the cache's bound.

use proptest::prelude::*;
use slope_radios::airtime::Modulation;
use slope_radios::radio::TxParams;
use slope_radios::sim::{Channel, Config, Listen, NodeConfig, NodeId, Position, Propagation};
use slope_radios::{Bandwidth, SpreadingFactor};

const FREQS: [u32; 2] = [868_100_000, 868_300_000];
const SFS: [SpreadingFactor; 3] = [
    SpreadingFactor::_7,
    SpreadingFactor::_9,
    SpreadingFactor::_12,
];

#[derive(Debug, Clone)]
enum Op {
    /// Node (index modulo the node count), frequency, spreading factor, power (dBm).
    Transmit(usize, usize, usize, i8),
    /// Move time on by this many µs and take the deliveries.
    Advance(u64),
    Move(usize, Position),
    Listen(usize, u8),
    Add(Position, u8, u8),
}

fn position() -> impl Strategy<Value = Position> {
    (-8_000.0..8_000.0f64, -8_000.0..8_000.0f64).prop_map(|(x, y)| Position::new(x, y))
}

fn listen(k: u8) -> Listen {
    match k % 4 {
        0 | 1 => Listen::Off,
        2 => Listen::Gateway,
        _ => Listen::Channel {
            freq_hz: FREQS[0],
            modulation: Modulation::new(SpreadingFactor::_7, Bandwidth::_125KHz),
        },
    }
}

/// A node of the initial layout has a 0 or 3 dBi antenna; a node added later may have a
/// larger one (up to 12 dBi), which widens the reach of every frame.
fn node_config(listen_kind: u8, gain: u8, added: bool) -> NodeConfig {
    let gain = if added { gain % 4 * 4 } else { gain % 2 * 3 };
    NodeConfig {
        antenna_gain_dbi: f64::from(gain),
        listen: listen(listen_kind),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<usize>(), 0..FREQS.len(), 0..SFS.len(), prop_oneof![Just(-4i8), Just(2), Just(14)])
            .prop_map(|(n, f, s, p)| Op::Transmit(n, f, s, p)),
        4 => (0..400_000u64).prop_map(Op::Advance),
        1 => (any::<usize>(), position()).prop_map(|(n, p)| Op::Move(n, p)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(n, l)| Op::Listen(n, l)),
        2 => (position(), any::<u8>(), any::<u8>()).prop_map(|(p, l, g)| Op::Add(p, l, g)),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        any::<u64>(),
        prop_oneof![Just(0.0), Just(3.57), Just(7.8)],
        prop_oneof![Just(0.0), Just(4.0)],
        prop_oneof![Just(500.0), Just(1_000.0), Just(20_000.0)],
    )
        .prop_map(|(seed, sigma, fading, cell)| Config {
            propagation: Propagation {
                shadowing_sigma_db: sigma,
                ..Propagation::default()
            },
            fading_sigma_db: fading,
            grid_cell_m: cell,
            ..Config::new(seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cached_links_decide_as_the_reference(
        config in config(),
        nodes in prop::collection::vec((position(), any::<u8>(), any::<u8>()), 2..24),
        ops in prop::collection::vec(op(), 1..160),
        links_max in prop_oneof![Just(usize::MAX), 0..40usize],
    ) {
        let mut cached = Channel::new(config);
        cached.set_links_max(links_max);
        let mut reference = Channel::new(config);
        reference.set_link_cache(false);
        for ch in [&mut cached, &mut reference] {
            for &(p, l, g) in &nodes {
                ch.add_node(p, node_config(l, g, false));
            }
        }
        let mut now = 0u64;
        for op in &ops {
            let n = cached.len();
            match *op {
                Op::Transmit(i, f, s, power_dbm) => {
                    let params = TxParams {
                        freq_hz: FREQS[f],
                        modulation: Modulation::new(SFS[s], Bandwidth::_125KHz),
                        power_dbm,
                    };
                    let node = NodeId((i % n) as u32);
                    let a = cached.transmit(now, node, &params, &[i as u8; 12]);
                    let b = reference.transmit(now, node, &params, &[i as u8; 12]);
                    prop_assert_eq!(a, b);
                }
                Op::Advance(dt) => {
                    now += dt;
                    let a = cached.deliveries(now);
                    let b = reference.deliveries(now);
                    // `RxMeta` holds rounded figures: compare them and the order.
                    prop_assert_eq!(&a, &b);
                }
                Op::Move(i, p) => {
                    let node = NodeId((i % n) as u32);
                    prop_assert_eq!(cached.move_node(node, p), reference.move_node(node, p));
                }
                Op::Listen(i, l) => {
                    let node = NodeId((i % n) as u32);
                    prop_assert_eq!(
                        cached.set_listen(node, listen(l)),
                        reference.set_listen(node, listen(l))
                    );
                }
                Op::Add(p, l, g) => {
                    prop_assert_eq!(
                        cached.add_node(p, node_config(l, g, true)),
                        reference.add_node(p, node_config(l, g, true))
                    );
                }
            }
            prop_assert_eq!(cached.stats(), reference.stats());
        }
        prop_assert_eq!(cached.deliveries(u64::MAX), reference.deliveries(u64::MAX));
        prop_assert_eq!(cached.stats(), reference.stats());
    }
}

/// A node with a larger antenna than any before widens every frame's reach, even when it
/// does not listen: a sender's cached receivers must be looked for again.
#[test]
fn a_larger_antenna_widens_cached_reach() {
    let config = Config {
        propagation: Propagation {
            shadowing_sigma_db: 0.0,
            ..Propagation::default()
        },
        grid_cell_m: 500.0,
        ..Config::new(3)
    };
    let params = TxParams {
        freq_hz: FREQS[0],
        modulation: Modulation::new(SpreadingFactor::_7, Bandwidth::_125KHz),
        power_dbm: -4,
    };
    let mut stats = Vec::new();
    for cache in [true, false] {
        let mut ch = Channel::new(config);
        ch.set_link_cache(cache);
        ch.add_node(Position::new(3_000.0, 0.0), NodeConfig::gateway());
        let device = ch.add_node(Position::new(0.0, 0.0), NodeConfig::device());
        ch.transmit(0, device, &params, b"a").unwrap();
        assert!(ch.deliveries(1_000_000).is_empty());
        // The gateway is beyond the frame's reach: not even evaluated.
        assert_eq!(ch.stats().below_sensitivity, 0);
        ch.add_node(
            Position::new(-5_000.0, 0.0),
            NodeConfig {
                antenna_gain_dbi: 30.0,
                listen: Listen::Off,
            },
        );
        ch.transmit(10_000_000, device, &params, b"b").unwrap();
        assert!(ch.deliveries(11_000_000).is_empty());
        // Now within the (most favourable) reach, and evaluated: under sensitivity.
        assert_eq!(ch.stats().below_sensitivity, 1);
        stats.push(*ch.stats());
    }
    assert_eq!(stats[0], stats[1]);
}
