//! Real gateways over libp2p on loopback TCP, in one process: convergence, clone
//! detection everywhere, forged gossip, restart, late join by sync.

mod common;

use common::*;
use slope_mesh::net::topics;
use slope_node::verifier::verify_divergence_proof;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_gateways_converge_and_all_quarantine_a_clone() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = gateway(dirs[0].path(), 1, &[]).await;
    let boot = address(&first).await;
    let mut gws = vec![first];
    for (i, d) in dirs.iter().enumerate().skip(1) {
        gws.push(gateway(d.path(), 1 + i as u8, std::slice::from_ref(&boot)).await);
    }
    for g in &gws {
        eventually(20, "every gateway has a peer", || async {
            !g.peers().await.unwrap().is_empty()
        })
        .await;
    }
    // `/v1/peers` names where each peer is: the first gateway knows the others' loopback
    // addresses (their connections to it, then what identify announced).
    eventually(20, "peer addresses are listed", || async {
        let peers = gws[0].peers().await.unwrap();
        peers.len() >= 4
            && peers
                .iter()
                .all(|p| p.addresses.iter().any(|a| a.starts_with("/ip4/127.0.0.1/")))
    })
    .await;

    let (mut dev, mut rng, inception) = incepted(7);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 6, 1000, 0));
    hear(&gws[0], &frames);
    let reference = || state(&gws[0], &id);
    eventually(20, "gateway 0 committed the slope", || async {
        reference().is_some_and(|s| s.2 as usize == frames.len())
    })
    .await;
    let want = reference().unwrap();
    for (i, g) in gws.iter().enumerate() {
        eventually(30, &format!("gateway {i} converges"), || async {
            state(g, &id) == Some(want)
        })
        .await;
    }

    // A clone continues the same chain with other content; the original speaks at
    // gateway 0, the clone at gateway 1.
    let mut twin = clone_of(&dev);
    let mut twin_rng = Rng(999);
    let original = attest(&mut dev, &mut rng, 1, 10_000_000, 1);
    let cloned = attest(&mut twin, &mut twin_rng, 1, 10_000_000, 2);
    assert_ne!(original, cloned);
    hear(&gws[0], &original);
    hear(&gws[1], &cloned);
    for (i, g) in gws.iter().enumerate() {
        eventually(
            30,
            &format!("gateway {i} quarantines the clone"),
            || async { state(g, &id).is_some_and(|s| s.3) },
        )
        .await;
        let proof = g.store().divergence(&id).unwrap().expect("proof stored");
        let d = verify_divergence_proof(&proof).expect("stored proof verifies");
        assert_eq!(d.device, id);
        let rec = g.store().device(&id).unwrap().unwrap();
        assert!(rec.grant.is_none(), "grant revoked at gateway {i}");
        assert_eq!(
            g.store().verify_lineage().unwrap(),
            Ok(g.store().lineage_head().unwrap().0)
        );
    }
    for g in gws {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_gossip_is_rejected_penalised_and_changes_nothing() {
    let (dv, da) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let victim = gateway(dv.path(), 11, &[]).await;
    let (mut dev, mut rng, inception) = incepted(3);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 3, 1000, 0));
    hear(&victim, &frames);
    eventually(20, "victim committed", || async {
        state(&victim, &id).is_some_and(|s| s.2 as usize == frames.len())
    })
    .await;
    let before_device = victim.store().device(&id).unwrap();
    let before_head = victim.store().lineage_head().unwrap();

    let boot = address(&victim).await;
    let attacker = gateway(da.path(), 12, &[boot]).await;
    let attacker_id = attacker.peer_id();
    eventually(20, "connected", || async {
        !victim.peers().await.unwrap().is_empty()
    })
    .await;
    // A real next frame of the device with its signature broken, garbage, a forged
    // proof and a forged receipt: each message differs so none is a duplicate.
    let next = attest(&mut dev, &mut rng, 1, 5_000_000, 9).pop().unwrap();
    let mut round = 0u8;
    eventually(30, "attacker's score drops below zero", || {
        round = round.wrapping_add(1);
        let mut forged = next.clone();
        let last = forged.len() - 1;
        forged[last] ^= round | 1;
        let attacker = &attacker;
        let victim = &victim;
        async move {
            attacker
                .publish_raw(topics::ATTESTATIONS, forged)
                .await
                .unwrap();
            attacker
                .publish_raw(topics::ATTESTATIONS, vec![0xff, round, 0, 1, 2])
                .await
                .unwrap();
            attacker
                .publish_raw(topics::DIVERGENCES, vec![1, 1, 4, round, 7])
                .await
                .unwrap();
            attacker
                .publish_raw(topics::RECEIPTS, vec![round; 40])
                .await
                .unwrap();
            let peers = victim.peers().await.unwrap();
            peers
                .iter()
                .find(|p| p.peer_id == attacker_id.to_string())
                .and_then(|p| p.score)
                .is_some_and(|s| s < 0.0)
        }
    })
    .await;
    let text = victim.metrics().encode();
    assert!(
        text.contains("slope_gossip_validation_total{kind=\"reject\"}"),
        "{text}"
    );
    assert_eq!(victim.store().device(&id).unwrap(), before_device);
    assert_eq!(victim.store().lineage_head().unwrap(), before_head);
    assert!(victim.store().divergence(&id).unwrap().is_none());
    attacker.shutdown().await;
    victim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_gateway_keeps_its_state_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dev, mut rng, inception) = incepted(5);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 10, 1000, 0));
    let g = gateway(dir.path(), 21, &[]).await;
    hear(&g, &frames);
    // Committed, and decided (after the receipt window).
    eventually(20, "committed", || async {
        state(&g, &id).is_some_and(|s| s.2 as usize == frames.len())
            && g.store().undecided().unwrap().is_empty()
    })
    .await;
    let before = g.store().device(&id).unwrap().unwrap();
    let head = g.store().lineage_head().unwrap();
    let engine_head = g.store().engine_lineage_head().unwrap();
    assert!(
        engine_head.0 > frames.len() as u64,
        "engine decisions are durable"
    );
    g.shutdown().await;

    let g = gateway(dir.path(), 21, &[]).await;
    assert_eq!(g.store().device(&id).unwrap().unwrap(), before);
    assert_eq!(g.store().lineage_head().unwrap(), head);
    assert_eq!(g.store().verify_lineage().unwrap(), Ok(head.0));
    // The rebuilt verifier recognises an old frame as a duplicate and extends on new ones.
    hear(&g, &frames[frames.len() - 1..]);
    let next = attest(&mut dev, &mut rng, 2, 9_000_000, 1);
    hear(&g, &next);
    let want = frames.len() + next.len();
    eventually(20, "extended after restart", || async {
        state(&g, &id).is_some_and(|s| s.2 as usize == want)
            && g.store().undecided().unwrap().is_empty()
    })
    .await;
    // The engine was restored from its lineage, not started empty: its decision on the
    // first attestations after the restart counts the whole slope (an empty engine would
    // count from 1), and the device keeps a grant.
    let after = g.store().device(&id).unwrap().unwrap();
    assert!(
        before.grant.is_some(),
        "granted before the restart: {before:?}"
    );
    assert!(
        after.grant.is_some(),
        "granted after the restart: {after:?}"
    );
    assert_ne!(after.admission, slope_mesh::trust::Admission::Deferred);
    let depth = engine_depth(&after.reasons);
    assert!(
        depth.is_none_or(|d| d as usize >= want),
        "engine depth continues across the restart: {:?}",
        after.reasons
    );
    assert_eq!(engine_depth(&before.reasons).is_some(), depth.is_some());
    // The engine's lineage resumed on its committed head and still verifies as a whole,
    // and replaying it re-derives every decision, across the restart.
    assert!(g.store().engine_lineage_head().unwrap().0 > engine_head.0);
    let key = identity(21);
    let export = g.store().engine_export(key.signing_key()).unwrap().unwrap();
    let author = key.signing_key().verifying_key().to_bytes();
    slope_node::lineage::verify(&export, &author).expect("engine lineage verifies");
    slope_node::lineage::verify_replay(&export, &author).expect("engine lineage replays");
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_catches_up_by_sync() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = gateway(da.path(), 31, &[]).await;
    let mut ids = Vec::new();
    for seed in 0..3 {
        let (mut dev, mut rng, inception) = incepted(100 + seed);
        let mut frames = vec![inception];
        frames.extend(attest(&mut dev, &mut rng, 9, 1000, 0));
        ids.push((device_id(&dev), frames.len() as u32));
        hear(&a, &frames);
    }
    eventually(20, "a committed", || async {
        ids.iter()
            .all(|(id, n)| state(&a, id).is_some_and(|s| s.2 == *n))
    })
    .await;
    let boot = address(&a).await;
    let b = gateway(db.path(), 32, &[boot]).await;
    for (id, _) in &ids {
        let want = state(&a, id);
        eventually(30, "b caught up", || async { state(&b, id) == want }).await;
    }
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_comparison_finds_a_fork_between_gateways_that_never_gossiped_it() {
    // Two gateways apart: each hears a different branch of one cloned device. When they
    // connect, nothing is gossiped about the past; the sync summaries disagree at the
    // same position, the fetch brings the other branch, and both end quarantined.
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut dev, mut rng, inception) = incepted(77);
    let id = device_id(&dev);
    let mut common = vec![inception];
    common.extend(attest(&mut dev, &mut rng, 2, 1000, 0));
    let mut twin = clone_of(&dev);
    let mut twin_rng = Rng(4242);
    let original = attest(&mut dev, &mut rng, 1, 5_000_000, 1);
    let cloned = attest(&mut twin, &mut twin_rng, 1, 5_000_000, 2);
    assert_ne!(original, cloned);

    let a = gateway(da.path(), 41, &[]).await;
    let b_alone = gateway(db.path(), 42, &[]).await;
    hear(&a, &common);
    hear(&a, &original);
    hear(&b_alone, &common);
    hear(&b_alone, &cloned);
    let n = (common.len() + original.len()) as u32;
    eventually(20, "both committed their branch", || async {
        state(&a, &id).is_some_and(|s| s.2 == n) && state(&b_alone, &id).is_some_and(|s| s.2 == n)
    })
    .await;
    assert_ne!(state(&a, &id).unwrap().1, state(&b_alone, &id).unwrap().1);
    // Restart b pointed at a: only sync can bring the branches together.
    b_alone.shutdown().await;
    let boot = address(&a).await;
    let b = gateway(db.path(), 42, &[boot]).await;
    for (name, g) in [("a", &a), ("b", &b)] {
        eventually(30, &format!("{name} quarantines"), || async {
            state(g, &id).is_some_and(|s| s.3)
        })
        .await;
        let proof = g.store().divergence(&id).unwrap().unwrap();
        assert_eq!(verify_divergence_proof(&proof).unwrap().device, id);
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// The depth the trust engine reported in a decision's reasons (`Depth { depth, .. }`),
/// if it reported one (it does while the depth is below what full scope needs).
fn engine_depth(reasons: &slope_mesh::trust::Reasons) -> Option<u32> {
    match reasons {
        slope_mesh::trust::Reasons::Engine { reasons, .. } => {
            reasons.iter().find_map(|r| match r {
                slope_node::trust::Reason::Depth { depth, .. } => Some(*depth),
                _ => None,
            })
        }
        slope_mesh::trust::Reasons::Text(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_release_is_replayed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dev, mut rng, inception) = incepted(77);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 3, 1000, 0));
    let g = gateway(dir.path(), 41, &[]).await;
    hear(&g, &frames);
    eventually(20, "committed", || async {
        state(&g, &id).is_some_and(|s| s.2 as usize == frames.len())
    })
    .await;
    let mut twin = clone_of(&dev);
    let mut twin_rng = Rng(4242);
    hear(&g, &attest(&mut dev, &mut rng, 1, 10_000_000, 1));
    hear(&g, &attest(&mut twin, &mut twin_rng, 1, 10_000_000, 2));
    eventually(20, "quarantined", || async {
        state(&g, &id).is_some_and(|s| s.3)
    })
    .await;
    assert!(g.release(id, "investigated".into()).await.unwrap());
    assert!(!g.release(id, "again".into()).await.unwrap());
    let depth = state(&g, &id).unwrap().2;
    hear(&g, &attest(&mut dev, &mut rng, 1, 20_000_000, 3));
    eventually(20, "extended after the release", || async {
        state(&g, &id).is_some_and(|s| s.2 > depth)
    })
    .await;
    let released = g.store().device(&id).unwrap().unwrap();
    assert!(released.quarantine.is_none());
    assert_ne!(
        released.admission,
        slope_mesh::trust::Admission::Quarantined,
        "{released:?}"
    );
    g.shutdown().await;

    // The engine's lineage holds the release as a signed operator action: the restored
    // engine does not quarantine the device again, and the lineage replays.
    let g = gateway(dir.path(), 41, &[]).await;
    let depth = state(&g, &id).unwrap().2;
    hear(&g, &attest(&mut dev, &mut rng, 1, 30_000_000, 4));
    eventually(20, "extended after the restart", || async {
        state(&g, &id).is_some_and(|s| s.2 > depth)
    })
    .await;
    let after = g.store().device(&id).unwrap().unwrap();
    assert_ne!(
        after.admission,
        slope_mesh::trust::Admission::Quarantined,
        "{after:?}"
    );
    let key = identity(41);
    let export = g.store().engine_export(key.signing_key()).unwrap().unwrap();
    let author = key.signing_key().verifying_key().to_bytes();
    let report = slope_node::lineage::verify_replay(&export, &author).expect("replays");
    assert!(report.operator_actions >= 1, "{report:?}");
    g.shutdown().await;
}

/// The block list cuts a link for good (the blocked side's re-dials and Kademlia's are
/// refused) and, once lifted and re-dialled, the sync on connection brings the cut-off
/// gateway what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_peer_stays_cut_until_unblocked_and_sync_then_catches_up() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = gateway(da.path(), 71, &[]).await;
    let a_addr = address(&a).await;
    let b = gateway(db.path(), 72, std::slice::from_ref(&a_addr)).await;
    let b_addr = address(&b).await;
    eventually(20, "a and b connect", || async {
        !a.peers().await.unwrap().is_empty()
    })
    .await;
    a.block(b.peer_id()).await.unwrap();
    eventually(20, "the block closes the link", || async {
        a.peers().await.unwrap().is_empty() && b.peers().await.unwrap().is_empty()
    })
    .await;
    // b dials a again, a dials b: both refused while the block holds.
    b.dial(a_addr.clone()).await.unwrap();
    a.dial(b_addr.clone()).await.unwrap();
    // What a hears now, b does not get by gossip.
    let (mut dev, mut rng, inception) = incepted(17);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 3, 1000, 0));
    hear(&a, &frames);
    eventually(20, "a commits the slope", || async {
        state(&a, &id).is_some_and(|s| s.2 as usize == frames.len())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(a.peers().await.unwrap().is_empty(), "a re-dial got through");
    assert!(b.peers().await.unwrap().is_empty(), "a re-dial got through");
    assert_eq!(state(&b, &id), None, "gossip crossed the cut");
    a.unblock(b.peer_id()).await.unwrap();
    b.dial(a_addr).await.unwrap();
    let want = state(&a, &id);
    eventually(30, "b catches up by sync after the heal", || async {
        state(&b, &id) == want
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

/// A proof learnt by sync is gossiped on. C is never connected to A (both block each
/// other) and all sync rounds are an hour apart, so C can learn A's proof only from B's
/// gossip after B synced it from A: without the forward C stays unaware.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_learnt_by_sync_is_gossiped_on() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |i: usize, boot: Vec<libp2p::Multiaddr>| {
        let mut c = config(dirs[i].path(), &boot);
        c.network.sync_interval_ms = 3_600_000;
        slope_mesh::Node::start(c, identity(91 + i as u8), false)
    };
    let a = start(0, vec![]).await.unwrap();
    let b = start(1, vec![]).await.unwrap();
    let b_addr = address(&b).await;
    let a_addr = address(&a).await;
    a.block(b.peer_id()).await.unwrap();
    b.block(a.peer_id()).await.unwrap();
    let c = start(2, vec![b_addr]).await.unwrap();
    a.block(c.peer_id()).await.unwrap();
    c.block(a.peer_id()).await.unwrap();
    eventually(20, "b and c connect", || async {
        !c.peers().await.unwrap().is_empty()
    })
    .await;

    // A hears a device and its clone: it quarantines with its own proof.
    let (mut dev, mut rng, inception) = incepted(23);
    let id = device_id(&dev);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 3, 1000, 0));
    let mut twin = clone_of(&dev);
    let mut twin_rng = Rng(4242);
    frames.extend(attest(&mut dev, &mut rng, 1, 10_000_000, 1));
    frames.extend(attest(&mut twin, &mut twin_rng, 1, 10_000_000, 2));
    hear(&a, &frames);
    eventually(20, "a quarantines the clone", || async {
        state(&a, &id).is_some_and(|s| s.3)
    })
    .await;
    assert_eq!(state(&b, &id), None, "gossip crossed the block");
    assert_eq!(state(&c, &id), None, "gossip crossed the block");

    // The link a-b opens: b syncs on connection and quarantines from a's proof.
    a.unblock(b.peer_id()).await.unwrap();
    b.unblock(a.peer_id()).await.unwrap();
    b.dial(a_addr).await.unwrap();
    eventually(30, "b quarantines from the synced proof", || async {
        state(&b, &id).is_some_and(|s| s.3)
    })
    .await;
    // c hears of it only through b's gossip.
    eventually(20, "c quarantines from b's gossip", || async {
        c.store().divergence(&id).unwrap().is_some()
    })
    .await;
    let proof = c.store().divergence(&id).unwrap().unwrap();
    assert_eq!(verify_divergence_proof(&proof).unwrap().device, id);
    assert!(
        c.peers()
            .await
            .unwrap()
            .iter()
            .all(|p| p.peer_id != a.peer_id().to_string())
    );
    for g in [a, b, c] {
        g.shutdown().await;
    }
}

/// Anyone can mint an identity and two conflicting frames of it, so proofs about
/// devices a gateway never saw are bounded by its device bound (`verifier.max_devices`):
/// at the bound such a proof is verified but neither stored nor forwarded, and counted;
/// a proof about a device it holds still quarantines it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_about_unseen_devices_stop_at_the_device_bound() {
    let (dv, da) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut c = config(dv.path(), &[]);
    c.verifier.max_devices = 2;
    let victim = slope_mesh::Node::start(c, identity(21), true)
        .await
        .unwrap();
    // A proof that `dev`'s next position was signed twice (two copies of its state).
    let proof_of = |dev: &Device, inception: &[u8]| {
        let mut rng = Rng(99);
        let a = attest(&mut clone_of(dev), &mut rng, 1, 9_000_000, 1);
        let b = attest(&mut clone_of(dev), &mut rng, 1, 9_000_000, 2);
        slope_node::verifier::build_proof(&[inception], &a[0], &b[0]).unwrap()
    };
    // Devices heard until the store holds as many as the bound.
    let mut heard = Vec::new();
    for seed in 30..36 {
        let (dev, _, inception) = incepted(seed);
        hear(&victim, std::slice::from_ref(&inception));
        heard.push((dev, inception));
    }
    eventually(20, "the store holds the bound", || async {
        victim.store().device_count().unwrap() >= 2
    })
    .await;
    let (known, proof) = heard
        .iter()
        .find(|(d, _)| victim.store().device(&device_id(d)).unwrap().is_some())
        .map(|(d, i)| (device_id(d), proof_of(d, i)))
        .expect("a device held");
    let (unseen_dev, _, unseen_inception) = incepted(40);
    let unseen = device_id(&unseen_dev);
    let unseen_proof = proof_of(&unseen_dev, &unseen_inception);
    assert!(verify_divergence_proof(&unseen_proof).is_ok());

    let boot = address(&victim).await;
    let attacker = gateway(da.path(), 22, &[boot]).await;
    eventually(20, "connected", || async {
        !victim.peers().await.unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let dropped =
        |g: &slope_mesh::Handle| metric(g, "slope_dropped_total{kind=\"proof_unseen_device\"}");
    attacker
        .publish_raw(topics::DIVERGENCES, unseen_proof)
        .await
        .unwrap();
    eventually(20, "the unseen device's proof is counted", || async {
        dropped(&victim) >= 1
    })
    .await;
    assert!(victim.store().device(&unseen).unwrap().is_none());
    assert!(victim.store().divergence(&unseen).unwrap().is_none());

    // A device the gateway holds is still quarantined by its proof.
    attacker
        .publish_raw(topics::DIVERGENCES, proof)
        .await
        .unwrap();
    eventually(20, "the held device is quarantined", || async {
        victim.store().divergence(&known).unwrap().is_some()
    })
    .await;
    // The API counts and lists the one proof held, re-verified, a page at a time.
    assert_eq!(api_get(&victim, "/v1/status").await["divergences"], 1);
    let listed = api_get(&victim, "/v1/divergences?limit=5").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["device"], hex::encode(known.0));
    assert_eq!(
        (listed[0]["suite"].clone(), listed[0]["verified"].clone()),
        (1.into(), true.into())
    );
    let after = format!("/v1/divergences?after={}", hex::encode(known.0));
    assert_eq!(api_get(&victim, &after).await, serde_json::json!([]));
    attacker.shutdown().await;
    victim.shutdown().await;
}

/// Incoming connections stop at `network.max_incoming`: a third gateway dialling a
/// gateway that already holds its one allowed incoming connection is denied (counted),
/// and the first connection stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_connections_stop_at_max_incoming() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut c = config(dirs[0].path(), &[]);
    c.network.max_incoming = 1;
    let g = slope_mesh::Node::start(c, identity(41), false)
        .await
        .unwrap();
    let boot = address(&g).await;
    let a = gateway(dirs[1].path(), 42, std::slice::from_ref(&boot)).await;
    eventually(20, "the first peer is connected", || async {
        g.peers().await.unwrap().len() == 1
    })
    .await;
    let denied =
        |g: &slope_mesh::Handle| metric(g, "slope_dropped_total{kind=\"connection_denied\"}");
    assert_eq!(denied(&g), 0);
    let b = gateway(dirs[2].path(), 43, &[boot]).await;
    eventually(20, "the second incoming connection is denied", || async {
        denied(&g) >= 1
    })
    .await;
    let peers = g.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].peer_id, a.peer_id().to_string());
    b.shutdown().await;
    a.shutdown().await;
    g.shutdown().await;
}
