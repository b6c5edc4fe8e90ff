//! The store on bad disks: garbage, truncation. Clear errors, never a panic.

use slope_mesh::store::{DB_FILE, Store, StoreError};

#[test]
fn garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    std::fs::write(&path, vec![0x5a; 10_000]).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("slope db check"));
    let report = Store::check(&path);
    assert!(!report.ok());
}

#[test]
fn missing_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_existing(&dir.path().join(DB_FILE)).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }));
}

#[test]
fn truncated_database_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let store = Store::open(&path).unwrap();
        let mut txn = store.begin().unwrap();
        let mut b = txn.batch().unwrap();
        for i in 0..200u64 {
            b.append(
                i,
                slope_mesh::lineage::Entry::Released {
                    device: [i as u8; 32],
                    note: "x".repeat(100),
                },
            )
            .unwrap();
        }
        drop(b);
        txn.commit().unwrap();
        assert!(
            Store::check(&path)
                .problems
                .iter()
                .any(|p| p.what.contains("another process"))
        );
    }
    assert!(
        Store::check(&path).ok(),
        "{:?}",
        Store::check(&path).problems
    );
    let len = std::fs::metadata(&path).unwrap().len();
    for cut in [len / 2, len / 4, 100] {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        // Either a clear error or a database that checks; never a panic.
        match Store::open(&path) {
            Ok(s) => {
                drop(s);
                let _ = Store::check(&path);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

mod engine_chunks {
    //! The engine lineage is stored in chunks of records: what goes in comes out, in
    //! order, from any index, across transactions, with records of any size (one
    //! larger than a chunk included).

    use std::sync::Arc;

    use proptest::prelude::*;
    use slope_mesh::store::{DB_FILE, RedbLineage, Store};
    use slope_node::lineage::Storage;
    use slope_proto::Digest;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn records_round_trip(
            txns in proptest::collection::vec(
                proptest::collection::vec((0usize..70_000, any::<u8>()), 1..12),
                1..4,
            ),
            from in 0u64..40,
            limit in 1usize..50,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(&dir.path().join(DB_FILE)).unwrap());
            let mut all: Vec<Vec<u8>> = Vec::new();
            for records in &txns {
                let (mut lineage, pending) = RedbLineage::open(store.clone()).unwrap();
                for (len, byte) in records {
                    let record = vec![*byte; *len];
                    let index = all.len() as u64;
                    lineage.append(index, &Digest([*byte; 32]), &record).unwrap();
                    all.push(record);
                }
                let mut txn = store.begin().unwrap();
                txn.put_engine_lineage(&pending).unwrap();
                txn.commit().unwrap();
            }
            prop_assert_eq!(store.engine_lineage_head().unwrap().0, all.len() as u64);
            let want: Vec<Vec<u8>> = all.iter().skip(from as usize).take(limit).cloned().collect();
            prop_assert_eq!(store.engine_records(from, limit).unwrap(), want);
            prop_assert_eq!(store.engine_records(0, usize::MAX).unwrap(), all.clone());
            let (lineage, _) = RedbLineage::open(store.clone()).unwrap();
            let mut out = Vec::new();
            for (i, r) in all.iter().enumerate() {
                prop_assert!(lineage.read(i as u64, &mut out).unwrap());
                prop_assert_eq!(&out, r);
            }
            prop_assert!(!lineage.read(all.len() as u64, &mut out).unwrap());
        }
    }
}

/// The per-device lineage index (one run of indices per device per transaction) gives
/// the newest records about a device, oldest first, across transactions.
#[test]
fn lineage_of_a_device_across_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join(DB_FILE)).unwrap();
    let mut expected: Vec<Vec<u64>> = vec![Vec::new(); 3];
    for txn_no in 0..4u64 {
        let mut txn = store.begin().unwrap();
        let mut b = txn.batch().unwrap();
        for i in 0..(5 + txn_no) {
            let device = ((i + txn_no) % 3) as usize;
            let index = b
                .append(
                    txn_no * 100 + i,
                    slope_mesh::lineage::Entry::Released {
                        device: [device as u8; 32],
                        note: format!("{txn_no}/{i}"),
                    },
                )
                .unwrap();
            expected[device].push(index);
        }
        drop(b);
        txn.commit().unwrap();
    }
    for (device, want) in expected.iter().enumerate() {
        let id = slope_proto::DeviceId([device as u8; 32]);
        for limit in [1, 3, want.len(), want.len() + 5] {
            let got: Vec<u64> = store
                .lineage_of(&id, limit)
                .unwrap()
                .iter()
                .map(|r| r.index)
                .collect();
            let from = want.len().saturating_sub(limit);
            assert_eq!(got, want[from..].to_vec(), "device {device}, limit {limit}");
        }
    }
    assert!(
        store
            .lineage_of(&slope_proto::DeviceId([9; 32]), 10)
            .unwrap()
            .is_empty()
    );
}

/// The gateway lineage in chunks: records larger than a chunk's share, several chunks
/// per transaction, several transactions: read back from any index, and the chain
/// verifies as a whole.
#[test]
fn gateway_lineage_in_chunks_reads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join(DB_FILE)).unwrap();
    let mut n = 0u64;
    for round in 0..3u64 {
        let mut txn = store.begin().unwrap();
        let mut b = txn.batch().unwrap();
        for i in 0..(10 + round) {
            b.append(
                i,
                slope_mesh::lineage::Entry::Released {
                    device: [i as u8; 32],
                    // 1 kB to 40 kB: some chunks hold one record, some many.
                    note: "x".repeat(1000 * (1 + (i as usize * 7) % 40)),
                },
            )
            .unwrap();
            n += 1;
        }
        drop(b);
        txn.commit().unwrap();
    }
    assert_eq!(store.verify_lineage().unwrap(), Ok(n));
    for from in [0, 1, 9, 10, 17, n - 1, n, n + 5] {
        let got: Vec<u64> = store
            .lineage(from, 7)
            .unwrap()
            .iter()
            .map(|r| r.index)
            .collect();
        let want: Vec<u64> = (from..n.min(from + 7)).collect();
        assert_eq!(got, want, "from {from}");
    }
}

/// The engine lineage's records appended and not yet written are read back from the
/// chunks they were appended to, then from the store once a transaction wrote them; an
/// out-of-order index is refused, and the head follows both.
#[test]
fn engine_lineage_pending_then_committed() {
    use slope_node::lineage::{Storage, StorageError};
    use slope_proto::Digest;

    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(&dir.path().join(DB_FILE)).unwrap());
    let (mut lineage, pending) = slope_mesh::store::RedbLineage::open(store.clone()).unwrap();
    // Records of varied sizes, some beyond one 64 KiB chunk together.
    let records: Vec<Vec<u8>> = (0..40u8)
        .map(|i| vec![i; 100 + 3000 * usize::from(i % 7)])
        .collect();
    let digest = |i: usize| Digest([i as u8 + 1; 32]);
    let mut out = Vec::new();
    for (i, r) in records.iter().take(30).enumerate() {
        lineage.append(i as u64, &digest(i), r).unwrap();
    }
    assert!(matches!(
        lineage.append(31, &digest(31), &records[31]),
        Err(StorageError::OutOfOrder)
    ));
    assert_eq!(lineage.len(), 30);
    assert_eq!(lineage.head(), Some(digest(29)));
    for (i, r) in records.iter().take(30).enumerate() {
        assert!(lineage.read(i as u64, &mut out).unwrap());
        assert_eq!(&out, r, "pending record {i}");
    }
    let mut txn = store.begin().unwrap();
    txn.put_engine_lineage(&pending).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.engine_lineage_head().unwrap(), (30, Some(digest(29))));
    // Ten more pending on top of the committed ones.
    for (i, r) in records.iter().enumerate().skip(30) {
        lineage.append(i as u64, &digest(i), r).unwrap();
    }
    assert_eq!(lineage.len(), 40);
    assert_eq!(lineage.head(), Some(digest(39)));
    for (i, r) in records.iter().enumerate() {
        assert!(lineage.read(i as u64, &mut out).unwrap());
        assert_eq!(&out, r, "record {i}");
    }
    assert!(!lineage.read(40, &mut out).unwrap());
    let mut txn = store.begin().unwrap();
    txn.put_engine_lineage(&pending).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.engine_records(0, usize::MAX).unwrap(), records);
}
