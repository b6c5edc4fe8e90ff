//! Helpers shared by the pipeline tests that drive the stages directly (group commit,
//! injected faults): a pipeline with the trust engine on a fresh store, radio inputs.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use slope_mesh::identity::Identity;
use slope_mesh::lineage::Source;
use slope_mesh::metrics::Metrics;
use slope_mesh::pipeline::{Input, Pipeline};
use slope_mesh::store::{DB_FILE, Store};
use slope_mesh::trust::Policy;

/// The gateway key's seed in these tests.
pub const SEED: [u8; 32] = [9; 32];

/// A pipeline with the trust engine over the store in `dir` (opened or created).
pub fn pipeline(dir: &Path, metrics: &Metrics) -> (Arc<Store>, Pipeline) {
    let store = Arc::new(Store::open(&dir.join(DB_FILE)).unwrap());
    let p = Pipeline::new(
        store.clone(),
        slope_node::verifier::Config::default(),
        Box::new(Policy {
            config: slope_mesh::config::Trust::default(),
        }),
        Identity::from_seed(SEED),
        metrics.clone(),
        256,
        Some(slope_node::trust::Policy::default()),
    )
    .unwrap();
    (store, p)
}

/// Frames heard on the radio, tagged by their index.
pub fn inputs(frames: &[Vec<u8>]) -> Vec<Input<usize>> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| Input {
            frame: f.clone(),
            rx: super::common::rx(-80),
            source: Source::Radio,
            tag: i,
        })
        .collect()
}
