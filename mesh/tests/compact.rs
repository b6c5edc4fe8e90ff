//! Suite 2 (compact, hash-only frames) across real gateways over libp2p on loopback
//! TCP, in one process, on one manual clock: a device incepts in suite 1, anchors and
//! speaks compact at one gateway and every gateway converges; a compact clone heard at
//! another gateway is quarantined everywhere on a proof each gateway verified; forged
//! compact gossip is rejected and penalised and changes nothing; a restart keeps the
//! compact state (frames waiting for their keys included).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use libp2p::Multiaddr;
use slope_mesh::clock::Manual;
use slope_mesh::config::Witness;
use slope_mesh::lineage::Entry;
use slope_mesh::net::topics;
use slope_mesh::node::Options;
use slope_mesh::{Handle, Node};
use slope_node::compact::device::{Device as Chain, Schedule};
use slope_proto::DeviceId;

/// Start of compact interval 1 (and the clock's start).
const START: u64 = 1_700_000_000_000;
const T: u64 = 60_000;

/// A gateway on the shared manual clock, listing the gateways `listed` (identity
/// seeds) as witnesses; gossip is decided at once (no wait for receipts).
async fn gateway_on(
    dir: &Path,
    seed: u8,
    bootstrap: &[Multiaddr],
    clock: &Manual,
    listed: &[u8],
) -> Handle {
    start(dir, seed, bootstrap, clock, listed, false).await
}

/// [`gateway_on`] with the HTTP API served on a free loopback port.
async fn gateway_on_with_api(dir: &Path, seed: u8, clock: &Manual, listed: &[u8]) -> Handle {
    start(dir, seed, &[], clock, listed, true).await
}

async fn start(
    dir: &Path,
    seed: u8,
    bootstrap: &[Multiaddr],
    clock: &Manual,
    listed: &[u8],
    serve_api: bool,
) -> Handle {
    let mut c = config(dir, bootstrap);
    c.ingest.receipt_wait_ms = 0;
    c.trust.witnesses = listed
        .iter()
        .map(|s| Witness {
            key: hex::encode(identity(*s).signing_key().verifying_key().to_bytes()),
            zone: u16::from(*s),
        })
        .collect();
    let options = Options {
        serve_api,
        clock: Arc::new(clock.clone()),
        ..Options::default()
    };
    Node::start_with(c, identity(seed), options).await.unwrap()
}

/// A device incepted in suite 1 with two attestations, and its compact chain (interval
/// 1 starts at [`START`], T = 60 s, delay 2). `chain()` makes the same chain again (a
/// clone of the device's state).
struct Speaker {
    id: DeviceId,
    suite1: Vec<Vec<u8>>,
    anchor: Vec<u8>,
    chain: Chain,
    device: Device,
}

fn schedule() -> Schedule {
    Schedule {
        start_ms: START,
        interval_ms: T as u32,
        delay: 2,
    }
}

fn speaker(seed: u64) -> Speaker {
    let (mut dev, mut rng, inception) = incepted(seed);
    let id = device_id(&dev);
    let mut suite1 = vec![inception];
    suite1.extend(attest(&mut dev, &mut rng, 2, 1000, 0));
    let (chain, anchor) = dev.anchor_compact(schedule(), 1, 4096).unwrap();
    Speaker {
        id,
        suite1,
        anchor: anchor.frame().to_vec(),
        chain,
        device: dev,
    }
}

impl Speaker {
    /// The same chain again: what a clone of the device's flash would continue.
    fn clone_chain(&self) -> Chain {
        self.device.anchor_compact(schedule(), 1, 4096).unwrap().0
    }
}

/// The time 1 s into interval `k`.
fn during(k: u32) -> u64 {
    START + u64::from(k - 1) * T + 1_000
}

/// The compact frame of interval `k` (the clock is set into it).
fn frame(chain: &mut Chain, clock: &Manual, k: u32, tag: u8) -> Vec<u8> {
    clock.set(during(k));
    chain
        .attest(during(k), &[tag, k as u8, 0, 0, 0, 0, 0, 0])
        .unwrap()
        .frame()
        .to_vec()
}

fn compact_frames(g: &Handle, id: &DeviceId) -> u64 {
    g.store()
        .compact_device(id)
        .unwrap()
        .map_or(0, |c| c.frames)
}

/// (head interval, authenticated, quarantined) of a device's compact chain.
fn compact_state(g: &Handle, id: &DeviceId) -> (Option<u32>, u64, bool) {
    let c = g.store().compact_device(id).unwrap().unwrap_or_default();
    (
        c.head_interval,
        c.authenticated,
        state(g, id).is_some_and(|s| s.3),
    )
}

/// Suite 1, then the anchor, heard at `g`; waits until both are committed there.
async fn establish(g: &Handle, s: &Speaker) {
    hear(g, &s.suite1);
    eventually(20, "suite-1 slope committed", || async {
        state(g, &s.id).is_some_and(|st| st.2 as usize == s.suite1.len())
    })
    .await;
    hear(g, std::slice::from_ref(&s.anchor));
    eventually(20, "anchor committed", || async {
        g.store().compact_device(&s.id).unwrap().is_some()
    })
    .await;
}

/// Hears one compact frame at `g` and waits until it is committed there.
async fn speak(g: &Handle, id: &DeviceId, f: Vec<u8>) {
    let before = compact_frames(g, id);
    hear(g, &[f]);
    eventually(20, "compact frame committed", || async {
        compact_frames(g, id) > before
    })
    .await;
}

/// The gateway lineage and the trust engine's lineage both verify (what
/// `slope lineage verify` checks), the engine's also by replay.
fn lineages_verify(g: &Handle, seed: u8) {
    let store = g.store();
    assert_eq!(
        store.verify_lineage().unwrap(),
        Ok(store.lineage_head().unwrap().0)
    );
    let key = identity(seed);
    let export = store
        .engine_export(key.signing_key())
        .unwrap()
        .expect("engine lineage");
    let author = key.signing_key().verifying_key().to_bytes();
    slope_node::lineage::verify(&export, &author).expect("engine lineage verifies");
    slope_node::lineage::verify_replay(&export, &author).expect("engine lineage replays");
}

async fn mesh(dirs: &[tempfile::TempDir], clock: &Manual) -> Vec<Handle> {
    let seeds: Vec<u8> = (1..=dirs.len() as u8).collect();
    // The first serves its API (the tests read proofs and devices through it too).
    let first = start(dirs[0].path(), 1, &[], clock, &seeds, true).await;
    let boot = address(&first).await;
    let mut gws = vec![first];
    for (i, d) in dirs.iter().enumerate().skip(1) {
        gws.push(
            gateway_on(
                d.path(),
                seeds[i],
                std::slice::from_ref(&boot),
                clock,
                &seeds,
            )
            .await,
        );
    }
    for g in &gws {
        eventually(20, "every gateway has a peer", || async {
            !g.peers().await.unwrap().is_empty()
        })
        .await;
    }
    // Let the gossipsub meshes form (heartbeat 100 ms).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    gws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_frames_at_one_gateway_converge_everywhere_and_a_clone_is_quarantined() {
    let clock = Manual::at(START);
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let gws = mesh(&dirs, &clock).await;
    let mut s = speaker(21);
    let id = s.id;
    establish(&gws[0], &s).await;

    // (a) Eight compact intervals at gateway 0: intervals 1..=6 are authenticated
    // (each frame discloses the key of two intervals before), 7 and 8 wait.
    // Gateway 2's radio hears each frame too, after gossip brought it: it witnesses
    // it, and gateway 0 decides each frame with that receipt.
    for k in 1..=8 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&gws[0], &id, f.clone()).await;
        eventually(20, "gateway 2 has the frame by gossip", || async {
            compact_frames(&gws[2], &id) >= u64::from(k)
        })
        .await;
        hear(&gws[2], &[f]);
        eventually(20, "gateway 0 holds gateway 2's receipt", || async {
            metric(&gws[0], "slope_receipts_in_total{kind=\"pending\"}") >= u64::from(k)
        })
        .await;
    }
    assert_eq!(
        metric(&gws[0], "slope_receipts_in_total{kind=\"decided_with\"}"),
        6,
        "every authenticated frame decided with gateway 2's receipt"
    );
    let witness2 = identity(3).witness_id().0;
    let rec = gws[0].store().device(&id).unwrap().unwrap();
    assert!(rec.witnesses.iter().any(|w| w.witness == witness2));
    for (i, g) in gws.iter().enumerate() {
        eventually(
            30,
            &format!("gateway {i} converges on the compact chain"),
            || async { compact_state(g, &id) == (Some(6), 6, false) },
        )
        .await;
        let frames = g.store().compact_frames(&id).unwrap();
        assert_eq!(frames.len(), 8, "gateway {i} holds every frame");
        assert!(
            frames.iter().all(|f| f.rx_ms == during(f.interval)),
            "gateway {i} checked every frame with gateway 0's receive time"
        );
        let records = g.store().lineage_of(&id, 1000).unwrap();
        let compact = records
            .iter()
            .filter(|r| matches!(r.entry, Entry::Compact { .. }))
            .count();
        assert_eq!(
            compact, 6,
            "gateway {i}: one lineage record per authenticated frame"
        );
        lineages_verify(g, i as u8 + 1);
    }
    // The suite-1 state is the same everywhere too.
    let want = state(&gws[0], &id);
    for g in &gws {
        assert_eq!(state(g, &id), want);
    }

    // (b) A clone (the same chain from the same flash) speaks interval 9 at gateway 1,
    // with other content, while the device speaks it at gateway 0; the device's next
    // two frames disclose the key of interval 9.
    let mut twin = s.clone_chain();
    let original = frame(&mut s.chain, &clock, 9, 0);
    let cloned = frame(&mut twin, &clock, 9, 0xc1);
    assert_ne!(original, cloned);
    speak(&gws[0], &id, original.clone()).await;
    speak(&gws[1], &id, cloned).await;
    for k in 10..=11 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&gws[0], &id, f).await;
    }
    let witnesses = [
        identity(1).signing_key().verifying_key().to_bytes(),
        identity(2).signing_key().verifying_key().to_bytes(),
    ];
    for (i, g) in gws.iter().enumerate() {
        eventually(
            30,
            &format!("gateway {i} quarantines the clone"),
            || async { state(g, &id).is_some_and(|st| st.3) },
        )
        .await;
        let proof = g.store().divergence(&id).unwrap().expect("proof stored");
        let d = slope_node::compact::verify_proof(&proof, 10_000).expect("proof verifies");
        assert_eq!((d.device, d.interval), (id, 9));
        // Each frame is dated by the gateway whose radio heard it, and by this gateway
        // itself (it received both in time) or a second witness.
        let own = identity(i as u8 + 1)
            .signing_key()
            .verifying_key()
            .to_bytes();
        let (first, _) = slope_proto::compact::CompactProof::decode(&proof)
            .expect("decodes")
            .frames();
        let heard_by = if first == original.as_slice() {
            [witnesses[0], witnesses[1]]
        } else {
            [witnesses[1], witnesses[0]]
        };
        for (dating, radio) in d.dating.iter().zip(heard_by) {
            let w = dating.witnesses();
            assert!(
                w.contains(&radio),
                "gateway {i}: dated by its radio gateway"
            );
            assert!(w.contains(&own) || w.len() >= 2, "gateway {i}: {w:?}");
        }
        let rec = g.store().device(&id).unwrap().unwrap();
        assert!(rec.grant.is_none(), "grant revoked at gateway {i}");
        lineages_verify(g, i as u8 + 1);
    }
    // The API re-verifies the suite-2 proof with the suite-2 verifier.
    let listed = api_get(&gws[0], "/v1/divergences").await;
    assert_eq!(listed[0]["suite"], 2, "{listed}");
    assert_eq!(listed[0]["verified"], true, "{listed}");
    assert_eq!(listed[0]["seq"], 9, "{listed}");
    assert_eq!(api_get(&gws[0], "/v1/status").await["divergences"], 1);
    for g in gws {
        g.shutdown().await;
    }
    // `slope db check` passes on every data directory (the suite-2 proof verifies, the
    // compact tables decode and match their keys).
    for d in &dirs {
        let check = slope_mesh::store::Store::check(&d.path().join(slope_mesh::store::DB_FILE));
        assert!(check.ok(), "{:?}", check.problems);
        // Frames 1..=11 and the clone's; a frame after the quarantine is not kept.
        assert_eq!(check.divergences, 1);
        assert!(
            (11..=12).contains(&check.compact_frames),
            "{}",
            check.compact_frames
        );
    }
}

/// Gossip messages the victim rejected.
fn rejects(g: &Handle) -> u64 {
    metric(g, "slope_gossip_validation_total{kind=\"reject\"}")
}

/// Forgery `n` (round `r` makes each message differ): a frame whose disclosed key does
/// not hash to the chain under a valid receipt; the real frame under a receipt whose
/// signature is broken; an anchor whose signature is broken; garbage with a suite-2
/// header; a garbage suite-2 proof.
fn forgery(
    n: usize,
    r: u8,
    next: &[u8],
    anchor: &[u8],
    key: &slope_mesh::identity::Identity,
) -> (&'static str, Vec<u8>) {
    use slope_proto::compact::{Receipt, crypto};
    let stamped = |frame: &[u8], rx_ms: u64, break_sig: bool| {
        let stamp = Receipt::sign(key.signing_key(), crypto::frame_digest(frame), rx_ms).unwrap();
        let mut m = stamp.frame().to_vec();
        if break_sig {
            let last = m.len() - 1;
            m[last] ^= 1;
        }
        m.extend_from_slice(frame);
        m
    };
    match n {
        0 => {
            let mut forged = next.to_vec();
            forged[20] ^= r;
            (topics::COMPACT, stamped(&forged, during(5), false))
        }
        1 => (
            topics::COMPACT,
            stamped(next, during(5) + u64::from(r), true),
        ),
        2 => {
            let mut bad = anchor.to_vec();
            let last = bad.len() - 1;
            bad[last] ^= r;
            (topics::COMPACT, bad)
        }
        3 => (topics::COMPACT, vec![1, 2, 3, r, 0xff, 0xff]),
        _ => (topics::DIVERGENCES, vec![1, 2, 4, r, 9, 9, 9]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_compact_gossip_is_rejected_penalised_and_changes_nothing() {
    let clock = Manual::at(START);
    let dv = tempfile::tempdir().unwrap();
    // The victim lists only itself: the attacker's receipts date nothing.
    let victim = gateway_on(dv.path(), 31, &[], &clock, &[31]).await;
    let mut s = speaker(5);
    let id = s.id;
    establish(&victim, &s).await;
    for k in 1..=4 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&victim, &id, f).await;
    }
    let before = (
        victim.store().device(&id).unwrap(),
        victim.store().compact_device(&id).unwrap(),
        victim.store().compact_frames(&id).unwrap(),
        victim.store().lineage_head().unwrap(),
    );

    let boot = address(&victim).await;
    // The device's real frame for interval 5, never heard by the victim.
    let next = frame(&mut s.chain, &clock, 5, 0);
    // One attacker per forgery: a single rejected message already graylists a peer
    // (score below -80), after which nothing more it sends is even validated.
    for (n, what) in [
        "bad disclosure",
        "broken receipt",
        "bad anchor",
        "garbage",
        "proof",
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 32 + n as u8;
        let da = tempfile::tempdir().unwrap();
        let attacker = gateway_on(
            da.path(),
            seed,
            std::slice::from_ref(&boot),
            &clock,
            &[seed],
        )
        .await;
        let attacker_id = attacker.peer_id();
        eventually(20, "connected", || async {
            victim
                .peers()
                .await
                .unwrap()
                .iter()
                .any(|p| p.peer_id == attacker_id.to_string())
        })
        .await;
        let rejected = rejects(&victim);
        let key = identity(seed);
        let mut round = 0u8;
        eventually(
            30,
            &format!("{what}: attacker's score drops below zero"),
            || {
                round = round.wrapping_add(1);
                let (topic, m) = forgery(n, round, &next, &s.anchor, &key);
                let (attacker, victim) = (&attacker, &victim);
                async move {
                    attacker.publish_raw(topic, m).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    victim
                        .peers()
                        .await
                        .unwrap()
                        .iter()
                        .find(|p| p.peer_id == attacker_id.to_string())
                        .and_then(|p| p.score)
                        .is_some_and(|s| s < 0.0)
                }
            },
        )
        .await;
        assert!(rejects(&victim) > rejected, "{what}: rejected");
        attacker.shutdown().await;
    }
    let metrics = victim.metrics().encode();
    for kind in ["rejected_bad_disclosure", "rejected_bad_signature"] {
        assert!(
            metrics.contains(&format!("slope_compact_total{{kind=\"{kind}\"}}")),
            "{kind}: {metrics}"
        );
    }
    let after = (
        victim.store().device(&id).unwrap(),
        victim.store().compact_device(&id).unwrap(),
        victim.store().compact_frames(&id).unwrap(),
        victim.store().lineage_head().unwrap(),
    );
    assert_eq!(before, after, "forged gossip changed nothing in the store");
    // The device's real frame still goes through afterwards.
    speak(&victim, &id, next).await;
    assert_eq!(compact_state(&victim, &id), (Some(3), 3, false));
    victim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_compact_state_and_the_frames_waiting_for_keys() {
    let clock = Manual::at(START);
    let dir = tempfile::tempdir().unwrap();
    let mut s = speaker(9);
    let id = s.id;
    let g = gateway_on(dir.path(), 41, &[], &clock, &[41]).await;
    establish(&g, &s).await;
    for k in 1..=5 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&g, &id, f).await;
    }
    eventually(20, "intervals 1..=3 authenticated", || async {
        compact_state(&g, &id) == (Some(3), 3, false)
    })
    .await;
    let before = (
        g.store().compact_device(&id).unwrap(),
        g.store().compact_frames(&id).unwrap(),
        g.store().lineage_head().unwrap(),
    );
    g.shutdown().await;

    let g = gateway_on_with_api(dir.path(), 41, &clock, &[41]).await;
    let after = (
        g.store().compact_device(&id).unwrap(),
        g.store().compact_frames(&id).unwrap(),
        g.store().lineage_head().unwrap(),
    );
    assert_eq!(before, after, "the store is as it was");
    // Frames 4 and 5 waited for their keys across the restart: the next two frames
    // disclose them, so the rebuilt verifier must hold them and the chain's last key.
    for k in 6..=7 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&g, &id, f).await;
    }
    eventually(
        20,
        "intervals 4 and 5 authenticated after the restart",
        || async { compact_state(&g, &id) == (Some(5), 5, false) },
    )
    .await;
    // Nothing was decided twice: one lineage record per authenticated interval.
    let records = g.store().lineage_of(&id, 1000).unwrap();
    let mut intervals: Vec<u32> = records
        .iter()
        .filter_map(|r| match r.entry {
            Entry::Compact { interval, .. } => Some(interval),
            _ => None,
        })
        .collect();
    intervals.sort_unstable();
    assert_eq!(intervals, vec![1, 2, 3, 4, 5]);
    // The operator API shows both suites and the compact position.
    let view = api_get(&g, &format!("/v1/devices/{}", hex::encode(id.0))).await;
    assert_eq!(view["suites"], serde_json::json!([1, 2]), "{view}");
    assert_eq!(view["compact"]["head_interval"], 5, "{view}");
    assert_eq!(view["compact"]["chain_position"], 5, "{view}");
    assert_eq!(view["compact"]["authenticated"], 5, "{view}");
    lineages_verify(&g, 41);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_joins_late_learns_the_anchor_by_sync() {
    let clock = Manual::at(START);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = gateway_on(da.path(), 51, &[], &clock, &[51, 52]).await;
    let mut s = speaker(13);
    let id = s.id;
    establish(&a, &s).await;
    for k in 1..=2 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&a, &id, f).await;
    }
    // B joins after the anchor was gossiped: it learns the key history and the anchor
    // through sync, then takes the device's next frames from gossip.
    let boot = address(&a).await;
    let b = gateway_on(db.path(), 52, &[boot], &clock, &[51, 52]).await;
    eventually(30, "B learns the anchor by sync", || async {
        b.store().compact_device(&id).unwrap().is_some()
    })
    .await;
    assert_eq!(
        b.store().compact_anchors(&id).unwrap(),
        vec![s.anchor.clone()]
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for k in 3..=5 {
        let f = frame(&mut s.chain, &clock, k, 0);
        speak(&a, &id, f).await;
    }
    // Frames 3..=5 reached B: frame 5 discloses the key of interval 3.
    eventually(30, "B authenticates interval 3", || async {
        compact_state(&b, &id).0 == Some(3)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
