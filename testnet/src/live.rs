//! The live layer (`--live`): real `slope-mesh` gateway nodes with real libp2p gossip in
//! one process, fed by the simulated devices.
//!
//! Not built yet. The mesh has what starting nodes in-process needs
//! (`slope_mesh::Node::start_with` with an injected clock, no fsync and no HTTP API; a
//! radio sink; loopback TCP), but not what this layer would read back — a stream of
//! each node's decisions, divergences and receipts with their virtual times — nor a
//! memory transport, and each node costs a verifier thread per core, a commit thread
//! and a redb file, which 300 nodes on 2 cores must share. `run` says so instead of
//! pretending.

use crate::error::Error;
use crate::params::Params;
use crate::summary::Summary;

/// Runs the live layer over `seeds`.
pub fn run(_params: &Params, _seeds: &[u64]) -> Result<Vec<Summary>, Error> {
    Err(Error::Live(
        "not built yet: it needs a stream of each mesh node's decisions to read back \
         (docs/testnet.md, \"Live layer\"); run without --live for the simulated layer"
            .into(),
    ))
}
