//! The errors of the testnet library (the binary wraps them with `anyhow`).

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The parameters do not describe a runnable experiment.
    #[error("invalid parameters: need {0}")]
    Params(&'static str),
    /// A duration that is not `<n>[s|m|h|d]`.
    #[error("invalid duration {0:?}: expected e.g. 24h, 90m, 2d")]
    Duration(String),
    /// No scenario has this name.
    #[error("unknown scenario {0:?} (see `slope-testnet list`)")]
    UnknownScenario(String),
    /// No suite has this name.
    #[error("unknown suite {0:?} (ed25519 or compact)")]
    UnknownSuite(String),
    /// A simulated device failed in a way the scenario did not script.
    #[error("device {device} failed: {what}")]
    Device { device: usize, what: String },
    /// Writing the report failed.
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Encoding `results.json` failed.
    #[error("encoding results: {0}")]
    Json(#[from] serde_json::Error),
    /// Signatures the devices made did not verify: the audit of the signatures filed in
    /// the signature memo as valid as made (`world::preverify`) failed, so the run's
    /// results cannot be trusted.
    #[error(
        "{failures} of {audited} audited device signatures did not verify: the signer is broken"
    )]
    Audit { failures: u64, audited: u64 },
    /// The live layer cannot run (see the message).
    #[error("live layer: {0}")]
    Live(String),
}
