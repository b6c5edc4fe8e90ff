//! Table definitions and key layouts.

use redb::TableDefinition;
use slope_proto::DeviceId;

/// Schema version and the lineage head.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// device id → postcard `DeviceRecord`.
pub const DEVICES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("devices");
/// device id ‖ lowest seq of the run (big endian) → a run of the device's frames stored
/// by one transaction (see `frames`).
pub const FRAMES: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("frame_runs");
/// device id ‖ epoch (big endian) → establishment frame.
pub const ESTABLISHMENTS: TableDefinition<&[u8; 36], &[u8]> =
    TableDefinition::new("establishments");
/// device id → encoded divergence proof.
pub const DIVERGENCES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("divergences");
/// index of its first record → a chunk of consecutive postcard lineage `Record`s (the
/// gateway lineage; see `chunks`).
pub const LINEAGE: TableDefinition<u64, &[u8]> = TableDefinition::new("lineage_chunks");
/// device id ‖ index of its first entry (big endian) → the indices (u64 big endian,
/// ascending) of the lineage records about the device that one transaction appended:
/// one entry per device per transaction, not one per record.
pub const LINEAGE_BY_DEVICE: TableDefinition<&[u8; 40], &[u8]> =
    TableDefinition::new("lineage_by_device_runs");

/// index of its first record → a chunk of consecutive postcard
/// `slope_node::lineage::Record`s, the trust engine's lineage (see
/// `engine_lineage`'s module docs).
pub const ENGINE_LINEAGE: TableDefinition<u64, &[u8]> =
    TableDefinition::new("engine_lineage_chunks");

/// number of the write transaction that committed them → postcard `Vec<Undecided>`:
/// attestations committed (and receipted) whose trust decision waits for the receipt
/// window (`ingest.receipt_wait_ms`); rewritten as they are decided, removed when none
/// is left (see `pipeline::window`).
pub const UNDECIDED: TableDefinition<u64, &[u8]> = TableDefinition::new("undecided");

pub const K_SCHEMA: &str = "schema";
pub const K_ENGINE_HEAD: &str = "engine_lineage_head";
pub const K_LINEAGE_HEAD: &str = "lineage_head";
/// postcard `Vec<([u8; 32], u16)>`: the witnesses registered with the trust engine from
/// the config (key, zone).
pub const K_WITNESSES: &str = "registered_witnesses";

pub fn frame_key(id: &DeviceId, n: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&id.0);
    k[32..].copy_from_slice(&n.to_be_bytes());
    k
}

pub fn lineage_key(id: &DeviceId, index: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&id.0);
    k[32..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn prefix_range(prefix: &[u8]) -> ([u8; 32], [u8; 32]) {
    let n = prefix.len().min(32);
    let mut lo = [0u8; 32];
    let mut hi = [0xffu8; 32];
    lo[..n].copy_from_slice(&prefix[..n]);
    hi[..n].copy_from_slice(&prefix[..n]);
    (lo, hi)
}
