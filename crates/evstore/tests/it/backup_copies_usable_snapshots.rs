//! A backup copies the snapshot sidecar consistently: snapshots saved before the backup load
//! (confirmed by the copied log) from the copy; a store without a sidecar gives a copy without
//! one, and a stale sidecar at the destination is removed with the file it belonged to.

use evstore::{ExpectedVersion, NewEvent, Store};

use crate::common::event;

#[test]
fn snapshots_saved_before_a_backup_load_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("live.evs")).unwrap();
    let events: Vec<NewEvent> = (0..10)
        .map(|i| event("T", &format!("{{\"i\":{i}}}")))
        .collect();
    store
        .append("a", ExpectedVersion::NoStream, &events)
        .unwrap();
    store
        .append("b", ExpectedVersion::NoStream, &events[..3])
        .unwrap();
    store
        .save_snapshot("a", 9, events[9].event_id, b"state-a-9")
        .unwrap();
    store
        .save_snapshot("b", 2, events[2].event_id, b"state-b-2")
        .unwrap();
    let dst = dir.path().join("copy.evs");
    let report = store.backup_to(&dst).unwrap();
    assert!(report.sidecar_bytes.is_some_and(|n| n > 0));
    // The source keeps working after the backup.
    store
        .append("a", ExpectedVersion::Exact(9), &[event("T", "{}")])
        .unwrap();
    let copy = Store::open(&dst).unwrap();
    let a = copy
        .load_snapshot("a")
        .unwrap()
        .expect("a's snapshot is usable in the copy");
    assert_eq!((a.version, a.payload.as_slice()), (9, &b"state-a-9"[..]));
    let b = copy
        .load_snapshot("b")
        .unwrap()
        .expect("b's snapshot is usable in the copy");
    assert_eq!((b.version, b.payload.as_slice()), (2, &b"state-b-2"[..]));
    assert_eq!(copy.snapshot_stats().unwrap().used, 2);
}

#[test]
fn a_store_without_sidecar_gives_a_copy_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("live.evs")).unwrap();
    store
        .append("a", ExpectedVersion::Any, &[event("T", "{}")])
        .unwrap();
    let dst = dir.path().join("copy.evs");
    // A stale sidecar of whatever was at the destination before.
    std::fs::write(dir.path().join("copy.evs.snap"), b"stale").unwrap();
    let report = store.backup_to(&dst).unwrap();
    assert_eq!(report.sidecar_bytes, None);
    assert!(!dir.path().join("copy.evs.snap").exists());
    assert_eq!(Store::open(&dst).unwrap().head_position(), Some(0));
}
