//! The same append issued at the same moment by several callers (a client's retry while the
//! first attempt still waits for its fsync) is written once, and every caller gets the same
//! `AppendResult`, for every `ExpectedVersion`, whether the first copy is published, queued or
//! being written. A batch that only partly repeats the stream's tail is an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use crate::common::*;
use evstore::{AppendResult, Durability, Error, ExpectedVersion, NewEvent, Store};

const ROUNDS: usize = 60;
const TWINS: usize = 4;

fn open(dir: &tempfile::TempDir, durability: Durability) -> Arc<Store> {
    Arc::new(Store::open_with(dir.path().join("twins.evs"), small_options(durability)).unwrap())
}

/// `TWINS` threads append the same batch to a fresh stream at once, while a background
/// appender keeps the group-commit queue busy. Returns every round's results.
fn race(store: &Arc<Store>, expected: ExpectedVersion, prepare: bool, batch_len: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let noise = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                store
                    .append("noise", ExpectedVersion::Any, &[event("N", "n")])
                    .unwrap();
            }
        })
    };
    for round in 0..ROUNDS {
        let stream = format!("order-{expected:?}-{batch_len}-{round}");
        if prepare {
            store
                .append(&stream, ExpectedVersion::NoStream, &[event("Created", "c")])
                .unwrap();
        }
        let batch: Vec<NewEvent> = (0..batch_len)
            .map(|i| event("Placed", &i.to_string()))
            .collect();
        let barrier = Arc::new(Barrier::new(TWINS));
        let results: Vec<AppendResult> = (0..TWINS)
            .map(|_| {
                let (store, barrier, batch, stream) = (
                    store.clone(),
                    barrier.clone(),
                    batch.clone(),
                    stream.clone(),
                );
                thread::spawn(move || {
                    barrier.wait();
                    store.append(&stream, expected, &batch)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{stream}: {e}"))
            })
            .collect();
        assert!(
            results.iter().all(|r| *r == results[0]),
            "{stream}: every caller gets the same result: {results:?}"
        );
        let stored = store.read_stream(&stream, 0).unwrap();
        let offset = usize::from(prepare);
        assert_eq!(stored.len(), offset + batch_len, "{stream}: written once");
        for (e, n) in stored[offset..].iter().zip(&batch) {
            assert_eq!(e.event_id, n.event_id);
        }
        assert_eq!(results[0].first_version, offset as u64);
    }
    stop.store(true, Ordering::Relaxed);
    noise.join().unwrap();
}

fn every_expected_version(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, durability);
    race(&store, ExpectedVersion::Any, false, 1);
    race(&store, ExpectedVersion::NoStream, false, 1);
    race(&store, ExpectedVersion::Exact(0), true, 1);
    race(&store, ExpectedVersion::StreamExists, true, 1);
    race(&store, ExpectedVersion::Any, true, 3);
    race(&store, ExpectedVersion::Exact(0), true, 3);
}

#[test]
fn identical_appends_racing_are_written_once_sync() {
    every_expected_version(Durability::Sync);
}

#[test]
fn identical_appends_racing_are_written_once_buffered() {
    every_expected_version(Durability::Buffered);
}

#[test]
fn a_batch_extending_the_streams_tail_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Durability::Sync);
    let a = event("A", "a");
    let b = event("B", "b");
    let c = event("C", "c");
    store
        .append("s", ExpectedVersion::Any, std::slice::from_ref(&a))
        .unwrap();
    // [A] stored, then [A, B]: A would be written twice.
    let err = store
        .append("s", ExpectedVersion::Any, &[a.clone(), b.clone()])
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err}");
    store
        .append("s", ExpectedVersion::Any, std::slice::from_ref(&b))
        .unwrap();
    // [A, B] stored, then [B, C] repeats the tail's B and adds C.
    let err = store
        .append("s", ExpectedVersion::StreamExists, &[b.clone(), c.clone()])
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err}");
    // After a reopen (no cached tail) the same holds.
    drop(store);
    let store = open(&dir, Durability::Sync);
    let err = store
        .append("s", ExpectedVersion::Any, &[b.clone(), c.clone()])
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err}");
    // An exact repeat of the tail is still the idempotent answer, and nothing was written.
    let r = store
        .append("s", ExpectedVersion::Any, std::slice::from_ref(&b))
        .unwrap();
    assert_eq!((r.first_version, r.last_version), (1, 1));
    assert_eq!(store.read_stream("s", 0).unwrap().len(), 2);
}
