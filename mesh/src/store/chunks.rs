//! Logs stored in chunks: consecutive records of an append-only log (the gateway
//! lineage, the trust engine's lineage) go into redb values of up to [`CHUNK_BYTES`],
//! each keyed by the index of its first record and holding its records as (u32
//! little-endian length, bytes). A group commit appends thousands of records: one redb
//! insert each was a large share of the commit thread's time in B-tree work; in chunks
//! they are a few dozen inserts of the same bytes. Records, their order and every export
//! are unchanged; only the table layout differs.

use redb::{ReadableTable, Table};

use super::{StoreError, db};

/// Bytes per chunk at most, unless one record alone is longer (it is then a chunk of its
/// own).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Where a record appended to [`Chunks`] lies.
#[derive(Debug, Clone, Copy, Default)]
pub struct At {
    chunk: usize,
    offset: usize,
    len: usize,
}

/// Records appended in a transaction, in chunks, until [`Chunks::write`].
#[derive(Debug, Default)]
pub struct Chunks {
    /// (index of the first record, the chunk's bytes).
    chunks: Vec<(u64, Vec<u8>)>,
}

impl Chunks {
    /// Appends record `index` (the caller appends consecutive indices); returns where
    /// its bytes lie, for [`Self::get`].
    pub fn push(&mut self, index: u64, record: &[u8]) -> At {
        let fits = self
            .chunks
            .last()
            .is_some_and(|(_, c)| c.len() + 4 + record.len() <= CHUNK_BYTES);
        if !fits {
            self.chunks.push((index, Vec::with_capacity(CHUNK_BYTES)));
        }
        let chunk = self.chunks.len() - 1;
        match self.chunks.last_mut() {
            Some((_, bytes)) => {
                // Records are bounded far below 4 GiB (lineage and frame bounds).
                bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
                let offset = bytes.len();
                bytes.extend_from_slice(record);
                At {
                    chunk,
                    offset,
                    len: record.len(),
                }
            }
            // A chunk was pushed just above.
            None => At::default(),
        }
    }

    /// The bytes of a record appended here ([`Self::push`]).
    pub fn get(&self, at: At) -> Option<&[u8]> {
        self.chunks
            .get(at.chunk)?
            .1
            .get(at.offset..at.offset.checked_add(at.len)?)
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Inserts the chunks into `table`.
    pub fn write(&self, table: &mut Table<'_, u64, &'static [u8]>) -> Result<(), StoreError> {
        for (first, chunk) in &self.chunks {
            table.insert(*first, chunk.as_slice()).map_err(db)?;
        }
        Ok(())
    }
}

/// Visits the records of a chunked log from index `from` in order, with their index,
/// until `visit` returns `Ok(false)` or the log ends. A chunk that does not start where
/// the previous one ended, or that is cut short, is `StoreError::Decode { table }`.
pub fn read(
    t: &impl ReadableTable<u64, &'static [u8]>,
    table: &'static str,
    from: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    // The chunk holding `from` starts at or before it.
    let start = match t.range(..=from).map_err(db)?.next_back() {
        Some(item) => item.map_err(db)?.0.value(),
        None => match t.first().map_err(db)? {
            Some((k, _)) => k.value(),
            None => return Ok(()),
        },
    };
    let mut next = start;
    for item in t.range(start..).map_err(db)? {
        let (k, v) = item.map_err(db)?;
        if k.value() != next {
            return Err(StoreError::Decode { table });
        }
        for record in records(v.value()) {
            let record = record.ok_or(StoreError::Decode { table })?;
            if next >= from && !visit(next, record)? {
                return Ok(());
            }
            next += 1;
        }
    }
    Ok(())
}

/// The records of a chunk, in order; `None` where the chunk is cut short.
fn records(mut chunk: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        if chunk.is_empty() {
            return None;
        }
        let record = chunk
            .get(..4)
            .and_then(|n| <[u8; 4]>::try_from(n).ok())
            .map(|n| u32::from_le_bytes(n) as usize)
            .and_then(|n| chunk.get(4..n.checked_add(4)?).map(|r| (n, r)));
        Some(match record {
            Some((n, r)) => {
                chunk = chunk.get(4 + n..).unwrap_or_default();
                Some(r)
            }
            None => {
                chunk = &[];
                None
            }
        })
    })
}
