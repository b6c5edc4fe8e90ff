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
