//! Every way a snapshot can be missing or wrong falls back to replaying the log, is counted,
//! and never yields a wrong state; a good snapshot is used and equals a full replay.

use std::sync::Arc;

use crate::common::counter::*;
use crate::common::*;
use evstore::aggregate::CommandContext;
use evstore::repository::Repository;
use evstore::snapshot::sidecar_path;
use evstore::{Durability, Store};

fn build(path: &std::path::Path) -> Counter {
    let store = Arc::new(Store::open_with(path, small_options(Durability::Sync)).unwrap());
    let repo: Repository<Counter, _> = Repository::new(store.clone()).with_snapshot_every(3);
    let ctx = CommandContext::new_request();
    for i in 1..=10u32 {
        let cmd = if i == 6 {
            CounterCommand::Reset
        } else {
            CounterCommand::Add(i)
        };
        repo.execute("c", &cmd, &ctx, 3).unwrap();
    }
    let state = repo.load("c").unwrap().unwrap().state().clone();
    assert!(store.snapshot_stats().unwrap().saved >= 3);
    state
}

fn replayed(path: &std::path::Path) -> (Counter, evstore::snapshot::SnapshotStats) {
    let store = Arc::new(Store::open(path).unwrap());
    let repo: Repository<Counter, _> = Repository::new(store.clone()).with_snapshot_every(3);
    let root = repo.load("c").unwrap().unwrap();
    assert_eq!(root.version(), Some(9));
    let no_snap: Repository<Counter, _> = Repository::new(store.clone()).with_snapshot_every(0);
    assert_eq!(no_snap.load("c").unwrap().unwrap().state(), root.state());
    (root.state().clone(), store.snapshot_stats().unwrap())
}

#[test]
fn valid_snapshot_is_used_and_equals_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.used, 1);
    assert_eq!(
        stats.ignored_ahead_of_log + stats.ignored_stale + stats.ignored_undecodable,
        0
    );
}

#[test]
fn missing_sidecar_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    std::fs::remove_file(sidecar_path(&path)).unwrap();
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.used, 0);
}

#[test]
fn truncated_sidecar_falls_back_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    let snap = sidecar_path(&path);
    let len = std::fs::metadata(&snap).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&snap).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.corrupt_records, 1);
}

#[test]
fn garbage_sidecar_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    std::fs::write(
        sidecar_path(&path),
        b"this is not a snapshot file at all, not even close",
    )
    .unwrap();
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.sidecar_resets, 1);
    assert_eq!(stats.used, 0);
}

#[test]
fn every_bit_flip_in_the_sidecar_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    let snap = sidecar_path(&path);
    let original = std::fs::read(&snap).unwrap();
    // Every bit of the header and of the last record (the one a load would use; an earlier,
    // intact record may legitimately be used instead when the damage cuts the later ones).
    let last_record_start = original.len().saturating_sub(64);
    let bytes: Vec<usize> = (0..40).chain(last_record_start..original.len()).collect();
    for &byte in &bytes {
        for bit in 0..8 {
            let mut damaged = original.clone();
            damaged[byte] ^= 1 << bit;
            std::fs::write(&snap, &damaged).unwrap();
            let (state, stats) = replayed(&path);
            assert_eq!(state, live, "flip of byte {byte} bit {bit}");
            if byte < 40 {
                assert_eq!(
                    stats.sidecar_resets, 1,
                    "header flip of byte {byte} bit {bit}"
                );
                assert_eq!(stats.used, 0);
            } else {
                assert!(
                    stats.corrupt_records >= 1,
                    "record flip of byte {byte} bit {bit} is detected"
                );
            }
        }
    }
}

/// A well-formed snapshot payload (schema 1) of a state the log never had.
fn wrong_state_payload() -> Vec<u8> {
    let mut payload = 1u16.to_le_bytes().to_vec();
    payload.extend(
        evstore::codec::encode(&Counter {
            total: 999,
            adds: 99,
            history_hash: 1,
        })
        .unwrap(),
    );
    payload
}

#[test]
fn snapshot_ahead_of_the_log_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    {
        let store = Store::open(&path).unwrap();
        let payload = wrong_state_payload();
        store
            .save_snapshot("Counter-c", 50, uuid::Uuid::new_v4(), &payload)
            .unwrap();
    }
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.ignored_ahead_of_log, 1);
}

#[test]
fn stale_snapshot_with_another_event_id_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    {
        let store = Store::open(&path).unwrap();
        let payload = wrong_state_payload();
        store
            .save_snapshot("Counter-c", 9, uuid::Uuid::new_v4(), &payload)
            .unwrap();
    }
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.ignored_stale, 1);
}

#[test]
fn undecodable_snapshot_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let live = build(&path);
    {
        let store = Store::open(&path).unwrap();
        let id9 = store.event_id_at("Counter-c", 9).unwrap().unwrap();
        // Right version and id, payload of an unknown snapshot schema, then plain garbage.
        store
            .save_snapshot("Counter-c", 9, id9, &[7, 0, 1, 2, 3])
            .unwrap();
    }
    let (state, stats) = replayed(&path);
    assert_eq!(state, live);
    assert_eq!(stats.ignored_undecodable, 1);
}
