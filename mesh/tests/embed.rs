//! A node embedded with a clock the caller drives and commits without fsync: the time it
//! stamps on what it decides is the caller's, not the system's.

mod common;

use common::*;
use slope_mesh::Node;
use slope_mesh::clock::Manual;
use slope_mesh::node::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_node_runs_on_the_callers_clock() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_234_567_890_000;
    let clock = Manual::at(t0);
    let options = Options {
        clock: std::sync::Arc::new(clock.clone()),
        fsync: false,
        ..Options::default()
    };
    let g = Node::start_with(config(dir.path(), &[]), identity(61), options)
        .await
        .unwrap();
    let (mut dev, mut rng, inception) = incepted(9);
    let id = device_id(&dev);
    hear(&g, &[inception]);
    eventually(20, "the inception is committed", || async {
        state(&g, &id).is_some()
    })
    .await;
    let rec = g.store().device(&id).unwrap().unwrap();
    assert_eq!((rec.first_seen_ms, rec.last_seen_ms), (t0, t0));
    clock.advance(60_000);
    hear(&g, &attest(&mut dev, &mut rng, 1, 1000, 0));
    eventually(20, "the next attestation is committed", || async {
        state(&g, &id).is_some_and(|(_, _, depth, _)| depth >= 2)
    })
    .await;
    let rec = g.store().device(&id).unwrap().unwrap();
    assert_eq!((rec.first_seen_ms, rec.last_seen_ms), (t0, t0 + 60_000));
    g.shutdown().await;
}

/// `Handle::tracked` reads the node's live state, and a flood of fresh identities meets
/// the verifier's device bound: what it tracks, and what the store holds, stay under
/// `verifier.max_devices` while the rest are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_state_stays_within_the_configured_device_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &[]);
    c.verifier.max_devices = 4;
    let g = Node::start_with(c, identity(62), Options::default())
        .await
        .unwrap();
    let before = g.tracked().await.unwrap();
    assert_eq!(before.verifier_devices, 0);
    // The bound is split over the verifier shards (one per core, rounded up each), so
    // on a machine with many cores the node may hold up to one device per shard: the
    // flood is larger than that on any machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 64));
    let cap = 4usize.div_ceil(cores) * cores;
    let flood = 12.max(cap + 8);
    let frames: Vec<Vec<u8>> = (0..flood as u64).map(|k| incepted(100 + k).2).collect();
    hear(&g, &frames);
    let m = g.metrics().clone();
    eventually(20, "every inception entered the pipeline", || async {
        m.ingest
            .get_or_create(&slope_mesh::metrics::kind("radio"))
            .get()
            >= flood as u64
    })
    .await;
    eventually(20, "the verifier filled up", || async {
        g.tracked().await.unwrap().verifier_devices >= 4.min(cap)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let t = g.tracked().await.unwrap();
    assert!(
        (4..=cap).contains(&t.verifier_devices) && cap < flood,
        "tracked {} devices, bound 4 over {cores} shards",
        t.verifier_devices
    );
    assert_eq!(g.store().device_count().unwrap(), t.verifier_devices as u64);
    assert_eq!((t.radio_queue, t.gossip_queue, t.sync_queue), (0, 0, 0));
    g.shutdown().await;
}
