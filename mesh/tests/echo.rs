//! Time echoes end to end over real UDP: a fake packet forwarder (PULL_DATA, then
//! PUSH_DATA with a device's frames) in front of a gateway whose forwarder source has
//! an `Echoer`. An attestation of a known device is answered by a PULL_RESP whose
//! `txpk` is timestamped at the uplink's `tmst` + 2 s on 869.525 MHz at SF12BW125 and
//! carries an echo of exactly that frame; garbage, an attestation of an unknown
//! device, and a second attestation within the gap get none (and are counted).

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use slope_mesh::downlink::{Config as EchoConfig, Echoer};
use slope_mesh::source::forwarder::ForwarderSource;
use slope_proto::Event;
use slope_proto::compact::{Echo, Message};
use slope_radios::frame::parse_frame;
use tokio::net::UdpSocket;

const TMST: u32 = 3_512_348_611;

fn pull_data() -> Vec<u8> {
    let mut d = vec![2, 0x56, 0x78, 0x02];
    d.extend_from_slice(&FORWARDER_EUI);
    d
}

/// The next PULL_RESP's `txpk`, skipping acknowledgements, or `None` after `ms`.
async fn next_txpk(sock: &UdpSocket, ms: u64) -> Option<serde_json::Value> {
    let mut buf = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .ok()?
            .unwrap();
        if n > 4 && buf[3] == 0x03 {
            let v: serde_json::Value = serde_json::from_slice(&buf[4..n]).unwrap();
            return Some(v["txpk"].clone());
        }
    }
}

fn echo_of(txpk: &serde_json::Value) -> Echo {
    let data = base64::engine::general_purpose::STANDARD
        .decode(txpk["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(txpk["size"].as_u64(), Some(data.len() as u64));
    let envelope = parse_frame(&data).unwrap();
    match slope_proto::compact::decode(envelope).unwrap() {
        Message::Echo(e) => e,
        other => panic!("not an echo: {other:?}"),
    }
}

fn count(g: &slope_mesh::Handle, label: &str) -> u64 {
    let text = g.metrics().encode();
    let key = format!("slope_echo_total{{kind=\"{label}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_devices_attestation_gets_one_echo_in_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), 1, &[]).await;
    let source = ForwarderSource::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = source.server.local_addr();
    let source = source.with_echo(Echoer::new(
        EchoConfig::default(),
        identity(1).witness_id(),
        g.store().clone(),
        g.metrics().clone(),
    ));
    let _task = g.radio().spawn(source);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server).await.unwrap();
    sock.send(&pull_data()).await.unwrap();

    // The device becomes known (inception and a first attestation committed); its
    // first attestation came too early for an echo.
    let (mut dev, mut rng, inception) = incepted(7);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 1, 1_000, 0));
    sock.send(&push_data(&frames, TMST)).await.unwrap();
    let store = g.store().clone();
    eventually(30, "device committed", || {
        let store = store.clone();
        async move { store.device(&id).unwrap().is_some() }
    })
    .await;
    // Whatever the early frames got (nothing: unknown, or an inception).
    while next_txpk(&sock, 300).await.is_some() {}

    // Garbage on the air, well framed or not: never a transmission.
    let garbage = vec![
        vec![1u8, 1, 2, 0xff, 0xff],
        vec![1u8, 2, 1, 0, 0, 0],
        vec![9u8; 40],
    ];
    sock.send(&push_data(&garbage, TMST)).await.unwrap();
    assert!(
        next_txpk(&sock, 1_000).await.is_none(),
        "garbage was echoed"
    );

    // The next attestation (a rotation may precede it: only the interaction is echoed).
    let next = attest(&mut dev, &mut rng, 1, 120_000, 1);
    let interaction = next.last().unwrap().clone();
    let Ok(Event::Interaction(i)) = Event::decode(&interaction) else {
        panic!("the last frame is an interaction")
    };
    let seq = i.body().seq;
    let link = Event::Interaction(i).digest(&id).link();
    let tmst = TMST.wrapping_add(10_000_000);
    sock.send(&push_data(&next, tmst)).await.unwrap();
    let txpk = next_txpk(&sock, 10_000).await.expect("an echo");
    assert_eq!(txpk["imme"], false);
    assert_eq!(
        txpk["tmst"].as_u64(),
        Some(u64::from(tmst.wrapping_add(2_000_000)))
    );
    assert_eq!(txpk["freq"].as_f64(), Some(869.525));
    assert_eq!(txpk["datr"], "SF12BW125");
    assert_eq!(txpk["codr"], "4/5");
    assert_eq!(txpk["ipol"], false);
    let echo = echo_of(&txpk);
    assert!(echo.names(id.short(), seq, &link.0), "{echo:?}");
    assert_eq!(echo.witness, identity(1).witness_id());
    let now = slope_mesh::source::now_ms();
    assert!(echo.rx_ms <= now && echo.rx_ms + 30_000 > now);
    assert_eq!(count(&g, "sent"), 1);

    // A second attestation in the same gap: none.
    let again = attest(&mut dev, &mut rng, 1, 180_000, 2);
    sock.send(&push_data(&again, tmst.wrapping_add(5_000_000)))
        .await
        .unwrap();
    assert!(
        next_txpk(&sock, 1_500).await.is_none(),
        "two echoes in one gap"
    );
    assert!(count(&g, "too_soon") >= 1);
    assert!(count(&g, "not_attestation") >= 3);

    // Another device the gateway does not know: none.
    let (mut other, mut orng, _) = incepted(8);
    let stranger = attest(&mut other, &mut orng, 1, 1_000, 0);
    sock.send(&push_data(&stranger, TMST)).await.unwrap();
    assert!(
        next_txpk(&sock, 1_000).await.is_none(),
        "unknown device echoed"
    );
    assert!(count(&g, "unknown_device") >= 1);
    assert_eq!(count(&g, "sent"), 1);
    g.shutdown().await;
}
