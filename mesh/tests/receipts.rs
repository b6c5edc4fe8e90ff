//! Receipts from peer gateways, over real libp2p: a gateway that never hears a device on
//! its own radio admits it to full scope only through the receipt batches of the peer
//! gateways it lists as witnesses; the same gateway without the list does not, and an
//! unlisted gateway's receipts are ignored and counted.

mod common;

use common::*;
use slope_mesh::Node;
use slope_mesh::config::Witness;
use slope_mesh::source::{Uplink, now_ms};
use slope_mesh::trust::Admission;
use slope_proto::Observation;

/// A policy a test reaches in seconds: full scope at depth 4 with two witness profiles
/// of two samples each, and a quorum of two witnesses (the gateway alone is one).
fn quick_policy() -> slope_node::trust::Policy {
    let mut p = slope_node::trust::Policy::default();
    p.admission.full_depth = 4;
    p.admission.full_age_ms = 0;
    p.admission.full_witnesses = 2;
    p.admission.full_score = 100;
    p.admission.refuse_score = 0;
    p.context.min_samples = 2;
    p.corroboration.quorum.min_witnesses = 2;
    p
}

/// Frames as a radio hears them now (receipts carry this time; the engine compares it
/// with its own).
fn hear_now(g: &slope_mesh::Handle, frames: &[Vec<u8>]) {
    for f in frames {
        g.radio().push(Uplink {
            frame: f.clone(),
            rx: Observation {
                rssi_dbm: -100,
                snr_qdb: 20,
                freq_hz: 868_100_000,
                foff_hz: None,
                sf: 9,
                time_ms: now_ms(),
            },
        });
    }
}

fn key_hex(seed: u8) -> String {
    hex::encode(identity(seed).signing_key().verifying_key().as_bytes())
}

fn metric(g: &slope_mesh::Handle, line: &str) -> u64 {
    g.metrics()
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A gateway with the quick policy that lists the gateways of `listed` seeds as
/// witnesses (zone = its position + 1).
async fn start(
    dir: &std::path::Path,
    seed: u8,
    boot: &[libp2p::Multiaddr],
    listed: &[u8],
) -> slope_mesh::Handle {
    let mut c = config(dir, boot);
    c.trust.policy = quick_policy();
    c.trust.witnesses = listed
        .iter()
        .zip(1u16..)
        .map(|(s, zone)| Witness {
            key: key_hex(*s),
            zone,
        })
        .collect();
    c.ingest.receipt_wait_ms = 1_500;
    Node::start(c, identity(seed), false).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_scope_only_through_listed_peer_receipts() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    // Two witness gateways with radios (seeds 51, 52) and a third (53) nobody lists; the
    // observer (54) lists 51 and 52, in zones 1 and 2, and hears nothing on its radio.
    let w1 = start(dirs[0].path(), 51, &[], &[]).await;
    let boot = address(&w1).await;
    let boot = std::slice::from_ref(&boot);
    let w2 = start(dirs[1].path(), 52, boot, &[]).await;
    let w3 = start(dirs[2].path(), 53, boot, &[]).await;
    let g = start(dirs[3].path(), 54, boot, &[51, 52]).await;
    for gw in [&w1, &w2, &w3, &g] {
        eventually(20, "every gateway has its peers", || async {
            gw.peers().await.unwrap().len() >= 3
        })
        .await;
    }
    // Let gossipsub build its mesh (a few heartbeats) before publishing.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let (mut dev, mut rng, inception) = incepted(5);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 7, 1000, 0));
    // Every frame heard by the three witness radios at (about) the same time.
    for f in &frames {
        for w in [&w1, &w2, &w3] {
            hear_now(w, std::slice::from_ref(f));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let head = frames.len() as u32;
    eventually(60, "the observer holds the whole slope", || async {
        state(&g, &id).is_some_and(|(_, _, depth, _)| depth >= head)
    })
    .await;
    let rec = g.store().device(&id).unwrap().unwrap();
    assert_eq!(
        rec.admission,
        Admission::Full,
        "full scope through the listed witnesses' receipts: {:?}",
        rec.reasons.lines()
    );
    assert!(rec.grant.is_some());
    // The receipts went to the trust engine with their attestations...
    assert!(metric(&g, "slope_receipts_in_total{kind=\"decided_with\"} ") >= u64::from(head));
    // ...and the unlisted gateway's were ignored, and counted.
    assert!(metric(&g, "slope_dropped_total{kind=\"receipt_unlisted\"} ") > 0);
    // A gateway with the same policy and no list hears the whole slope on its own radio,
    // yet no peer receipt counts there: one witness (itself) is below the quorum, so it
    // stays below full scope.
    let at_w1 = w1.store().device(&id).unwrap().unwrap();
    assert_eq!(at_w1.depth, head);
    assert_ne!(
        at_w1.admission,
        Admission::Full,
        "{:?}",
        at_w1.reasons.lines()
    );
    assert!(metric(&w1, "slope_dropped_total{kind=\"receipt_unlisted\"} ") > 0);
    for gw in [g, w3, w2, w1] {
        gw.shutdown().await;
    }
}
