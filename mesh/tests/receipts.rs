//! Receipts from peer gateways, over real libp2p: a gateway that never hears a device on
//! its own radio admits it to full scope only through the receipt batches of the peer
//! gateways it lists as witnesses; the same gateway without the list does not, and an
//! unlisted gateway's receipts are ignored and counted.
//!
//! The receipt window (`ingest.receipt_wait_ms`): three gateways hear the same device on
//! their radios at the same moment; each commits, receipts and gossips at once, and
//! decides the window's length later with the other two gateways' receipts, so each
//! one's trust engine counts them (corroboration, full scope). With the window at 0 each
//! decides at once, before the others' receipts arrive: they are only counted late, and
//! the device stays below full scope. And: decisions still waiting when a gateway stops
//! are taken after its restart, with both lineages intact.

mod common;

use common::*;
use slope_mesh::Node;
use slope_mesh::config::Witness;
use slope_mesh::source::{Uplink, now_ms};
use slope_mesh::trust::{Admission, Reasons};
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

/// A gateway with the quick policy that lists the gateways of `listed` seeds as
/// witnesses (zone = its position + 1).
async fn start(
    dir: &std::path::Path,
    seed: u8,
    boot: &[libp2p::Multiaddr],
    listed: &[u8],
) -> slope_mesh::Handle {
    start_waiting(dir, seed, boot, listed, 1_500).await
}

/// The same, with the receipt window `wait_ms` (`ingest.receipt_wait_ms`).
async fn start_waiting(
    dir: &std::path::Path,
    seed: u8,
    boot: &[libp2p::Multiaddr],
    listed: &[u8],
    wait_ms: u64,
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
    c.ingest.receipt_wait_ms = wait_ms;
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

/// Both lineages verify: the gateway's chain, and the engine's export re-verified with
/// every decision re-derived by replay (as `slope lineage verify --replay`).
fn lineages_verify(g: &slope_mesh::Handle, seed: u8) {
    assert!(g.store().verify_lineage().unwrap().is_ok());
    let key = identity(seed);
    let export = g
        .store()
        .engine_export(key.signing_key())
        .unwrap()
        .expect("an engine lineage");
    let author = key.signing_key().verifying_key().to_bytes();
    slope_node::lineage::verify_replay(&export, &author).expect("engine lineage replays");
}

fn decided_with(g: &slope_mesh::Handle) -> u64 {
    metric(g, "slope_receipts_in_total{kind=\"decided_with\"} ")
}

/// What one gateway's engine decided on the device's head.
#[derive(Debug)]
struct Seen {
    admission: Admission,
    corroboration: u16,
    decided_with: u64,
    late: u64,
}

/// Three gateways (seeds 61, 62, 63), each listing the other two, hear the same frames
/// on their radios at once; what each decided once it decided the whole slope.
async fn three_gateways(wait_ms: u64) -> Vec<Seen> {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let seeds = [61u8, 62, 63];
    let others = |s: u8| -> Vec<u8> { seeds.iter().copied().filter(|o| *o != s).collect() };
    let g1 = start_waiting(dirs[0].path(), 61, &[], &others(61), wait_ms).await;
    let boot = address(&g1).await;
    let boot = std::slice::from_ref(&boot);
    let g2 = start_waiting(dirs[1].path(), 62, boot, &others(62), wait_ms).await;
    let g3 = start_waiting(dirs[2].path(), 63, boot, &others(63), wait_ms).await;
    let gws = [g1, g2, g3];
    for gw in &gws {
        eventually(20, "every gateway has its peers", || async {
            gw.peers().await.unwrap().len() >= 2
        })
        .await;
    }
    // Let gossipsub build its mesh (a few heartbeats) before publishing.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let (mut dev, mut rng, inception) = incepted(9);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 7, 1000, 0));
    for f in &frames {
        for g in &gws {
            hear_now(g, std::slice::from_ref(f));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let head = frames.len() as u32;
    let mut seen = Vec::new();
    for (g, seed) in gws.iter().zip(seeds) {
        // Decided: the engine's record of the head is the device record's.
        eventually(30, "the whole slope decided", || async {
            g.store().device(&id).unwrap().is_some_and(|r| {
                r.depth >= head
                    && matches!(r.reasons, Reasons::Engine { .. })
                    && metric(g, "slope_queue_depth{kind=\"undecided\"} ") == 0
            })
        })
        .await;
        // Receipts still on their way are counted late; give them a moment.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let rec = g.store().device(&id).unwrap().unwrap();
        let Reasons::Engine { weights, .. } = rec.reasons else {
            unreachable!("checked above")
        };
        seen.push(Seen {
            admission: rec.admission,
            corroboration: weights.corroboration,
            decided_with: decided_with(g),
            late: metric(g, "slope_receipts_in_total{kind=\"late\"} "),
        });
        lineages_verify(g, seed);
    }
    for g in gws.into_iter().rev() {
        g.shutdown().await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_wait_for_the_other_gateways_receipts() {
    let with = three_gateways(1_500).await;
    let without = three_gateways(0).await;
    for (w, wo) in with.iter().zip(&without) {
        // With the window, each gateway's engine took the other two's receipts...
        assert!(w.decided_with >= 8, "{with:?}");
        assert_eq!(w.admission, Admission::Full, "{with:?}");
        // ...without it, (almost) none reached the engine: they came after the decision
        // (one may still come first when the peer's radio was the quicker one).
        assert!(wo.decided_with <= 2, "{without:?}");
        assert!(wo.late > 0, "{without:?}");
        assert_ne!(wo.admission, Admission::Full, "{without:?}");
        assert!(w.corroboration > wo.corroboration, "{with:?} {without:?}");
    }
}

/// Decisions still waiting when the gateway stops are taken after its restart (the
/// frames and receipts were committed before): every frame gets its one `Observed`
/// record, and both lineages verify and restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_decisions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A window far longer than the test: nothing is decided before the restart.
    let g = start_waiting(dir.path(), 64, &[], &[], 3_600_000).await;
    let (mut dev, mut rng, inception) = incepted(10);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    // More frames than the verifier keeps per device (8): the restart replays the
    // device from its oldest waiting frame, not only its last ones.
    frames.extend(attest(&mut dev, &mut rng, 12, 1000, 0));
    let head = frames.len() as u32;
    assert!(head > 8);
    hear_now(&g, &frames);
    eventually(20, "committed and receipted", || async {
        state(&g, &id).is_some_and(|(_, _, depth, _)| depth >= head)
            && metric(&g, "slope_receipts_signed_total ") >= u64::from(head)
    })
    .await;
    let observed = |g: &slope_mesh::Handle| {
        g.store()
            .lineage(0, usize::MAX)
            .unwrap()
            .iter()
            .filter(|r| matches!(r.entry, slope_mesh::lineage::Entry::Observed { .. }))
            .count()
    };
    assert_eq!(observed(&g), 0, "nothing decided within the window");
    assert_eq!(
        g.store()
            .undecided()
            .unwrap()
            .iter()
            .map(|(_, u)| u.len())
            .sum::<usize>(),
        frames.len()
    );
    let rec = g.store().device(&id).unwrap().unwrap();
    assert_eq!(rec.admission, Admission::Deferred);
    g.shutdown().await;

    // Restarted with a short window: the waiting decisions are restored and taken.
    let g = start_waiting(dir.path(), 64, &[], &[], 50).await;
    eventually(20, "the waiting decisions are taken", || async {
        g.store().undecided().unwrap().is_empty()
    })
    .await;
    assert_eq!(observed(&g), frames.len(), "one Observed record per frame");
    assert_eq!(
        metric(&g, "slope_decisions_total{kind=\"restored\"} "),
        u64::from(head)
    );
    let rec = g.store().device(&id).unwrap().unwrap();
    assert!(matches!(rec.reasons, Reasons::Engine { .. }), "{rec:?}");
    lineages_verify(&g, 64);
    g.shutdown().await;
    // And the engine's lineage, with the decisions taken after the restart, restores.
    let g = start_waiting(dir.path(), 64, &[], &[], 50).await;
    assert_eq!(g.store().device(&id).unwrap().unwrap().depth, head);
    lineages_verify(&g, 64);
    g.shutdown().await;
}

/// A listed witness that repeats its receipts for frames already decided (the same
/// receptions re-signed in new batches: new gossip messages, so gossipsub's seen-cache
/// does not stop them) is counted and recorded once per (witness, position): the
/// gateway's lineage and the device's witness count do not grow with the repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_late_receipts_are_recorded_once() {
    use slope_mesh::lineage::Entry;
    use slope_proto::batch::Entry as BatchEntry;
    use slope_proto::limits::MAX_RECEIPT_BATCH;

    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // The observer (71) lists 72 and decides at once (no receipt window), so every
    // receipt of 72 arrives late.
    let g = start_waiting(dirs[0].path(), 71, &[], &[72], 0).await;
    let boot = address(&g).await;
    let w = start(dirs[1].path(), 72, std::slice::from_ref(&boot), &[]).await;
    for gw in [&g, &w] {
        eventually(20, "the two gateways are peers", || async {
            !gw.peers().await.unwrap().is_empty()
        })
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let (mut dev, mut rng, inception) = incepted(11);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 4, 1000, 0));
    let head = frames.len() as u32;
    hear_now(&g, &frames);
    eventually(20, "the observer decided the slope", || async {
        state(&g, &id).is_some_and(|(_, _, depth, _)| depth >= head)
    })
    .await;

    // 72's receipts for every committed frame, signed three times.
    let entries: Vec<BatchEntry> = (0..head)
        .map(|seq| {
            let f = g.store().frame(&id, seq).unwrap().expect("committed frame");
            BatchEntry {
                device: id.short(),
                seq,
                event: slope_proto::Digest(f.digest).link(),
                observed: rx(-90),
            }
        })
        .collect();
    let key = identity(72);
    let public = key.signing_key().verifying_key().to_bytes();
    let witness = slope_proto::crypto::witness_id(&public);
    let mut buf = vec![0u8; MAX_RECEIPT_BATCH];
    let t = now_ms();
    let late = |g: &slope_mesh::Handle| metric(g, "slope_receipts_in_total{kind=\"late\"} ");
    for (i, time) in [t, t + 1, t + 2].into_iter().enumerate() {
        let n = slope_proto::ReceiptBatch::sign_into(
            key.signing_key(),
            time,
            entries.iter().copied(),
            &mut buf,
        )
        .unwrap();
        w.publish_raw(
            slope_mesh::net::topics::RECEIPTS,
            slope_mesh::pipeline::receipt_message(&public, &buf[..n]),
        )
        .await
        .unwrap();
        let want = u64::from(head) * (i as u64 + 1);
        eventually(20, "the batch arrived", || async { late(&g) >= want }).await;
    }
    assert_eq!(
        metric(&g, "slope_dropped_total{kind=\"receipt_repeated\"} "),
        2 * u64::from(head)
    );
    let witnessed = g
        .store()
        .lineage(0, usize::MAX)
        .unwrap()
        .iter()
        .filter(|r| matches!(r.entry, Entry::Witnessed { witness: w, .. } if w == witness.0))
        .count();
    assert_eq!(
        witnessed, head as usize,
        "one Witnessed record per position"
    );
    let rec = g.store().device(&id).unwrap().unwrap();
    let stat = rec
        .witnesses
        .iter()
        .find(|s| s.witness == witness.0)
        .expect("72 counted as a witness");
    assert_eq!(stat.count, head, "{rec:?}");
    assert!(g.store().verify_lineage().unwrap().is_ok());
    w.shutdown().await;
    g.shutdown().await;
}
