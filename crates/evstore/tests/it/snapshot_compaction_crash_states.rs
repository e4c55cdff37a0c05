//! A crash during sidecar compaction (temp file written, fsynced, renamed over the sidecar,
//! directory fsynced) can leave: a partial temp file beside the old sidecar, a complete temp
//! file not yet renamed, or the new sidecar. In every state the store opens, loads only true
//! snapshots (or replays), and a later compaction overwrites any stray temp file.

use crate::common::*;
use evstore::snapshot::{sidecar_path, SnapshotStore};
use evstore::{Durability, ExpectedVersion, Store};

fn compact_tmp(path: &std::path::Path) -> std::path::PathBuf {
    let mut s = sidecar_path(path).into_os_string();
    s.push(".compact-tmp");
    s.into()
}

#[test]
fn every_compaction_crash_state_opens_with_true_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    let mut saved = Vec::new();
    for v in 0..6u64 {
        store
            .append("agg", ExpectedVersion::Any, &[event("E", "x")])
            .unwrap();
        let id = store.event_id_at("agg", v).unwrap().unwrap();
        let payload = vec![v as u8; 20_000];
        store.save_snapshot("agg", v, id, &payload).unwrap();
        saved.push((v, id, payload));
    }
    assert!(
        store.snapshot_stats().unwrap().compactions >= 1,
        "the workload compacts"
    );
    drop(store);
    let pristine_log = std::fs::read(&path).unwrap();
    let old_sidecar = std::fs::read(sidecar_path(&path)).unwrap();

    // Build what a finished compaction would produce, to have its bytes for the crash states.
    let finished = {
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = copy_dir.path().join("x.snap");
        std::fs::write(&copy, &old_sidecar).unwrap();
        let file_id: [u8; 16] = old_sidecar[16..32].try_into().unwrap();
        let mut s = SnapshotStore::open(&copy, file_id).unwrap();
        s.compact().unwrap();
        drop(s);
        std::fs::read(&copy).unwrap()
    };

    // (what, sidecar bytes, compaction temp file bytes)
    type CrashState<'a> = (&'a str, Vec<u8>, Option<Vec<u8>>);
    let states: Vec<CrashState> = vec![
        (
            "partial temp beside the old sidecar",
            old_sidecar.clone(),
            Some(finished[..finished.len() / 2].to_vec()),
        ),
        (
            "complete temp not yet renamed",
            old_sidecar.clone(),
            Some(finished.clone()),
        ),
        ("renamed", finished.clone(), None),
        ("empty temp", old_sidecar.clone(), Some(Vec::new())),
    ];
    for (what, sidecar, tmp) in states {
        std::fs::write(&path, &pristine_log).unwrap();
        std::fs::write(sidecar_path(&path), &sidecar).unwrap();
        let _ = std::fs::remove_file(compact_tmp(&path));
        if let Some(t) = &tmp {
            std::fs::write(compact_tmp(&path), t).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let snap = store
            .load_snapshot("agg")
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the latest snapshot is still there"));
        assert!(
            saved
                .iter()
                .any(|(v, id, p)| (*v, *id, p) == (snap.version, snap.event_id, &snap.payload)),
            "{what}: a true snapshot"
        );
        assert_eq!(snap.version, 5, "{what}");
        // Later saves and compactions work and replace any stray temp file.
        for round in 0..4u64 {
            store
                .append("agg", ExpectedVersion::Any, &[event("E", "y")])
                .unwrap();
            let v = store.stream_version("agg").unwrap();
            let id = store.event_id_at("agg", v).unwrap().unwrap();
            store
                .save_snapshot("agg", v, id, &vec![round as u8; 20_000])
                .unwrap();
        }
        assert!(
            store.snapshot_stats().unwrap().compactions >= 1,
            "{what}: compacted again"
        );
        assert!(
            !compact_tmp(&path).exists(),
            "{what}: no stray temp file after a compaction"
        );
        drop(store);
    }
}
