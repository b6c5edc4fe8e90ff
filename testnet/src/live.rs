//! The live layer (`--live`): real `slope-mesh` gateway nodes with real libp2p gossip in
//! one process, fed by the simulated devices.
//!
//! Not available yet: it needs the `slope-mesh` crate's public API (a node that can be
//! started in-process on a memory or loopback transport with a radio sink), which is
//! not committed. `run` reports exactly that instead of pretending.

use crate::error::Error;
use crate::params::Params;
use crate::summary::Summary;

/// Runs the live layer over `seeds`.
pub fn run(_params: &Params, _seeds: &[u64]) -> Result<Vec<Summary>, Error> {
    Err(Error::Live(
        "needs the slope-mesh crate (issue 5) to be committed with an in-process node API; \
         run without --live for the simulated layer"
            .into(),
    ))
}
