//! Behaviour of the channel simulator: range, capture, SF orthogonality, half duplex, duty
//! cycle, determinism, scale, and the `Radio` adapter.

use proptest::prelude::*;
use slope_radios::airtime::Modulation;
use slope_radios::duty_cycle::Refused as Regional;
use slope_radios::radio::{Radio, TxParams};
use slope_radios::sim::{
    Air, Channel, Config, Delivery, NodeConfig, NodeId, Position, Propagation, Refused,
};
use slope_radios::{Bandwidth, SpreadingFactor};

const F: u32 = 868_100_000;

fn params(sf: SpreadingFactor) -> TxParams {
    TxParams {
        freq_hz: F,
        modulation: Modulation::new(sf, Bandwidth::_125KHz),
        power_dbm: 14,
    }
}

/// No shadowing: outcomes depend on geometry only.
fn flat(seed: u64) -> Config {
    Config {
        propagation: Propagation {
            shadowing_sigma_db: 0.0,
            ..Propagation::default()
        },
        ..Config::new(seed)
    }
}

fn heard_by(ds: &[Delivery], node: NodeId) -> Vec<NodeId> {
    ds.iter().filter(|d| d.to == node).map(|d| d.from).collect()
}

#[test]
fn range_depends_on_spreading_factor() {
    let mut ch = Channel::new(flat(1));
    let gw = ch.add_node(Position::new(0.0, 0.0), NodeConfig::gateway());
    // Outdoor mast model, 14 dBm + 3 dBi: SF7 reaches ~3.5 km, SF12 ~12 km.
    let near = ch.add_node(Position::new(2000.0, 0.0), NodeConfig::device());
    let far = ch.add_node(Position::new(8000.0, 0.0), NodeConfig::device());
    ch.transmit(0, near, &params(SpreadingFactor::_7), b"a")
        .unwrap();
    ch.transmit(0, far, &params(SpreadingFactor::_12), b"b")
        .unwrap();
    let t = ch.transmit(3_000_000, far, &params(SpreadingFactor::_7), b"c");
    // The far node is still within its duty cycle budget.
    assert!(t.is_ok(), "{t:?}");
    let ds = ch.deliveries(10_000_000);
    assert_eq!(heard_by(&ds, gw), vec![near, far]);
    assert_eq!(ds.len(), 2, "the far node's SF7 frame must not arrive");
    let d = &ds[0];
    assert_eq!(&d.bytes[..], b"a");
    assert_eq!(d.meta.freq_hz, F);
    assert_eq!(d.meta.sf, SpreadingFactor::_7);
    assert!(
        d.meta.rssi_dbm < -90 && d.meta.rssi_dbm > -125,
        "{:?}",
        d.meta
    );
    assert_eq!(d.meta.timestamp_us, 25_856); // SF7, 1 byte: 25.856 ms
}

#[test]
fn collision_and_capture() {
    // Equal power: both lost.
    let mut ch = Channel::new(flat(2));
    let gw = ch.add_node(Position::new(0.0, 0.0), NodeConfig::gateway());
    let a = ch.add_node(Position::new(200.0, 0.0), NodeConfig::device());
    let b = ch.add_node(Position::new(-200.0, 0.0), NodeConfig::device());
    ch.transmit(0, a, &params(SpreadingFactor::_9), &[1; 20])
        .unwrap();
    ch.transmit(50_000, b, &params(SpreadingFactor::_9), &[2; 20])
        .unwrap();
    assert!(heard_by(&ch.deliveries(u64::MAX / 2), gw).is_empty());
    assert_eq!(ch.stats().lost_collision, 2);

    // b much farther (> 6 dB weaker): a is captured, b lost.
    let mut ch = Channel::new(flat(2));
    let gw = ch.add_node(Position::new(0.0, 0.0), NodeConfig::gateway());
    let a = ch.add_node(Position::new(100.0, 0.0), NodeConfig::device());
    let b = ch.add_node(Position::new(-500.0, 0.0), NodeConfig::device());
    ch.transmit(0, a, &params(SpreadingFactor::_9), &[1; 20])
        .unwrap();
    ch.transmit(50_000, b, &params(SpreadingFactor::_9), &[2; 20])
        .unwrap();
    assert_eq!(heard_by(&ch.deliveries(u64::MAX / 2), gw), vec![a]);

    // Different spreading factors do not collide.
    let mut ch = Channel::new(flat(2));
    let gw = ch.add_node(Position::new(0.0, 0.0), NodeConfig::gateway());
    let a = ch.add_node(Position::new(200.0, 0.0), NodeConfig::device());
    let b = ch.add_node(Position::new(-200.0, 0.0), NodeConfig::device());
    ch.transmit(0, a, &params(SpreadingFactor::_9), &[1; 20])
        .unwrap();
    ch.transmit(50_000, b, &params(SpreadingFactor::_10), &[2; 20])
        .unwrap();
    assert_eq!(heard_by(&ch.deliveries(u64::MAX / 2), gw), vec![a, b]);
}

#[test]
fn half_duplex_and_busy() {
    let mut ch = Channel::new(flat(3));
    let gw = ch.add_node(Position::new(0.0, 0.0), NodeConfig::gateway());
    let a = ch.add_node(Position::new(100.0, 0.0), NodeConfig::device());
    ch.transmit(0, gw, &params(SpreadingFactor::_7), &[0; 10])
        .unwrap();
    assert!(matches!(
        ch.transmit(1_000, gw, &params(SpreadingFactor::_7), &[0; 10]),
        Err(Refused::Busy { .. })
    ));
    ch.transmit(10_000, a, &params(SpreadingFactor::_7), &[1; 10])
        .unwrap();
    assert!(heard_by(&ch.deliveries(1_000_000), gw).is_empty());
    assert_eq!(ch.stats().lost_half_duplex, 1);
    assert!(matches!(
        ch.transmit(0, a, &params(SpreadingFactor::_7), &[1; 10]),
        Err(Refused::InThePast { .. })
    ));
}

#[test]
fn duty_cycle_is_enforced_per_node() {
    let mut ch = Channel::new(flat(4));
    let a = ch.add_node(Position::new(0.0, 0.0), NodeConfig::device());
    let mut t = 0;
    let mut sent = 0;
    let refusal = loop {
        match ch.transmit(t, a, &params(SpreadingFactor::_12), &[0; 50]) {
            Ok(tx) => {
                sent += 1;
                t = tx.end_us;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(sent, 15); // 36 s budget / 2.302 s
    assert!(matches!(refusal, Refused::Regional(Regional::WaitUntil(_))));
    assert!(matches!(
        ch.transmit(t, a, &params(SpreadingFactor::_12), &[0; 65]),
        Err(Refused::Regional(Regional::PayloadTooLarge { .. }))
    ));
}

/// A random scenario: `n` devices and a few gateways, each device sends once.
fn scenario(
    seed: u64,
    n: u32,
    gateways: u32,
    side_m: f64,
    span_us: u64,
) -> (Vec<Delivery>, slope_radios::sim::Stats) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ch = Channel::new(Config::new(seed));
    for _ in 0..gateways {
        ch.add_node(
            Position::new(rng.gen_range(0.0..side_m), rng.gen_range(0.0..side_m)),
            NodeConfig::gateway(),
        );
    }
    let mut sends = Vec::new();
    for i in 0..n {
        let id = ch.add_node(
            Position::new(rng.gen_range(0.0..side_m), rng.gen_range(0.0..side_m)),
            NodeConfig::device(),
        );
        let sf = [
            SpreadingFactor::_7,
            SpreadingFactor::_9,
            SpreadingFactor::_12,
        ][i as usize % 3];
        let f = [868_100_000, 868_300_000, 868_500_000][rng.gen_range(0..3)];
        sends.push((rng.gen_range(0..span_us), id, sf, f));
    }
    sends.sort_by_key(|s| s.0);
    let mut out = Vec::new();
    for (t, id, sf, f) in sends {
        out.extend(ch.deliveries(t));
        let p = TxParams {
            freq_hz: f,
            ..params(sf)
        };
        let _ = ch.transmit(t, id, &p, &id.0.to_le_bytes());
    }
    out.extend(ch.deliveries(u64::MAX / 2));
    (out, *ch.stats())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn deterministic_for_a_seed(seed in any::<u64>()) {
        let a = scenario(seed, 300, 5, 3000.0, 60_000_000);
        let b = scenario(seed, 300, 5, 3000.0, 60_000_000);
        prop_assert_eq!(&a, &b);
        prop_assert!(a.1.delivered > 0);
    }
}

#[test]
fn different_seeds_differ() {
    assert_ne!(
        scenario(1, 300, 5, 3000.0, 60_000_000),
        scenario(2, 300, 5, 3000.0, 60_000_000)
    );
}

#[test]
fn ten_thousand_nodes_hundred_gateways() {
    // 10 000 devices over 20 km x 20 km, one frame each in 10 minutes.
    let (ds, stats) = scenario(42, 10_000, 100, 20_000.0, 600_000_000);
    assert_eq!(stats.transmitted, 10_000);
    assert_eq!(stats.delivered as usize, ds.len());
    assert!(stats.delivered > 1_000, "{stats:?}");
}

#[test]
fn radio_adapter_runs_device_code() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ch = Channel::new(flat(5));
        let gw = ch.add_node(Position::new(0.0, 0.0), NodeConfig::gateway());
        let dev = ch.add_node(Position::new(100.0, 0.0), NodeConfig::device());
        let air = Air::new(ch, 4);
        let mut gw_radio = air.radio(gw).unwrap();
        let mut dev_radio = air.radio(dev).unwrap();
        let rx = tokio::spawn(async move {
            let mut buf = [0u8; 255];
            let (n, meta) = gw_radio.receive(&mut buf).await.unwrap();
            (buf[..n].to_vec(), meta)
        });
        let tx = tokio::spawn(async move {
            dev_radio
                .transmit(b"hello", params(SpreadingFactor::_7))
                .await
        });
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        assert!(!tx.is_finished(), "transmit must last its airtime");
        air.advance(1_000_000);
        let report = tx.await.unwrap().unwrap();
        assert_eq!(report.airtime_us, 30_976);
        let (bytes, meta) = rx.await.unwrap();
        assert_eq!(bytes, b"hello");
        assert_eq!(meta.timestamp_us, 30_976);
        assert_eq!(air.now_us(), 1_000_000);
    });
}
