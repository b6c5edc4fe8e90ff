//! Lineage: the append-only, hash-chained log of everything the trust engine saw and
//! did — observations (with the attestation frame and the witness receipts, single
//! frames or references to batched receipts recorded once), weightings,
//! decisions, grants, revocations, divergence proofs and signed operator actions.
//!
//! Every [`Record`] commits to its predecessor's digest (blake3, context
//! `slope v1 lineage record`; a receipt-batch record commits to its frame through the
//! batch digest, context `slope v1 lineage batch record`: [`record::digest`]), records
//! are canonical postcard, and an export ends with
//! a checkpoint signed by the gateway's key. [`verify()`] re-checks an export from nothing
//! but the author's public key: the chain, every embedded signature (attestations
//! against the key history the log itself carries, receipts against the witness keys
//! registered in it, divergence proofs, operator signatures) and the checkpoint. The
//! format is documented in `docs/protocol.md` ("Lineage export format").
//!
//! - [`record`]: the record and entry types, the record digests.
//! - [`storage`]: the [`Storage`] trait and the bounded in-memory store.
//! - [`log`]: [`Lineage`], appending and exporting.
//! - [`encode`]: the fast path of record encoding (the same bytes as postcard).
//! - [`export`]: the export container and the signed checkpoint.
//! - [`mod@verify`]: independent re-verification of an export.
//! - [`keys`]: the device key history replay used by [`verify()`].

pub mod encode;
pub mod export;
pub mod keys;
pub mod log;
pub mod record;
pub mod storage;
pub mod verify;

pub use export::Checkpoint;
pub use log::{AppendError, Lineage};
pub use record::{CompactObservation, Entry, Genesis, Local, Observation, ReceiptRef, Record};
pub use storage::{Memory, Storage, StorageError};
pub use verify::{Report, VerifyError, verify, verify_replay};
