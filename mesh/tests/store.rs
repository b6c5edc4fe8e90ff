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
