//! Every `ExpectedVersion` case, and a race where exactly one appender wins each version.

use std::sync::{Arc, Barrier};

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, Store};

/// Run `body(thread, store)` on `threads` threads that start together; their results in
/// thread order.
fn together<T: Send + 'static>(
    threads: usize,
    store: &Arc<Store>,
    body: impl Fn(usize, &Store) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(threads));
    let body = Arc::new(body);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, barrier, body) = (store.clone(), barrier.clone(), body.clone());
            std::thread::spawn(move || {
                barrier.wait();
                body(t, &store)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn wrong(r: evstore::Result<evstore::AppendResult>) -> (ExpectedVersion, Option<u64>) {
    match r {
        Err(Error::WrongExpectedVersion {
            expected, actual, ..
        }) => (expected, actual),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
}

#[test]
fn each_expected_version_case_checks_and_writes_nothing_on_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("s.evs"), small_options(Durability::Sync)).unwrap();
    let e = || [event("T", "x")];

    // Stream absent.
    assert_eq!(
        wrong(store.append("s", ExpectedVersion::StreamExists, &e())),
        (ExpectedVersion::StreamExists, None)
    );
    assert_eq!(
        wrong(store.append("s", ExpectedVersion::Exact(0), &e())),
        (ExpectedVersion::Exact(0), None)
    );
    assert_eq!(store.head_position(), None);
    store.append("s", ExpectedVersion::NoStream, &e()).unwrap();

    // Stream at version 0.
    assert_eq!(
        wrong(store.append("s", ExpectedVersion::NoStream, &e())),
        (ExpectedVersion::NoStream, Some(0))
    );
    assert_eq!(
        wrong(store.append("s", ExpectedVersion::Exact(1), &e())),
        (ExpectedVersion::Exact(1), Some(0))
    );
    store
        .append("s", ExpectedVersion::StreamExists, &e())
        .unwrap();
    store.append("s", ExpectedVersion::Exact(1), &e()).unwrap();
    store.append("s", ExpectedVersion::Any, &e()).unwrap();
    assert_eq!(
        wrong(store.append("s", ExpectedVersion::Exact(2), &e())),
        (ExpectedVersion::Exact(2), Some(3))
    );
    assert_eq!(store.stream_version("s"), Some(3));
    assert_eq!(store.head_position(), Some(3));
    // Any creates a missing stream.
    let r = store.append("t", ExpectedVersion::Any, &e()).unwrap();
    assert_eq!(r.first_version, 0);
    // The error message names the stream and both versions.
    let msg = store
        .append("s", ExpectedVersion::Exact(0), &e())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"s\"") && msg.contains("expected 0") && msg.contains("actual 3"),
        "{msg}"
    );
}

fn race(durability: Durability) {
    const THREADS: usize = 8;
    const ATTEMPTS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path().join("s.evs"), small_options(durability)).unwrap());
    let results = together(THREADS, &store, |t, store| {
        let mut wins = Vec::new();
        let mut losses = 0usize;
        for a in 0..ATTEMPTS {
            let expected = match store.stream_version("hot") {
                None => ExpectedVersion::NoStream,
                Some(v) => ExpectedVersion::Exact(v),
            };
            match store.append("hot", expected, &[event("T", &format!("{t}-{a}"))]) {
                Ok(r) => {
                    assert_eq!(r.first_version, r.last_version);
                    wins.push((r.first_version, format!("{t}-{a}")));
                }
                Err(Error::WrongExpectedVersion {
                    actual, expected, ..
                }) => {
                    losses += 1;
                    // The actual version reported is newer than what we expected.
                    let actual = actual.expect("the stream exists once anyone won");
                    match expected {
                        ExpectedVersion::Exact(v) => assert!(actual > v),
                        ExpectedVersion::NoStream => {}
                        other => panic!("unexpected {other:?}"),
                    }
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        (wins, losses)
    });
    let mut wins = Vec::new();
    let mut losses = 0;
    for (w, l) in results {
        wins.extend(w);
        losses += l;
    }
    assert_eq!(wins.len() + losses, THREADS * ATTEMPTS);
    wins.sort();
    // Exactly one winner per version, versions dense from 0.
    for (i, (v, _)) in wins.iter().enumerate() {
        assert_eq!(*v, i as u64, "one winner per version");
    }
    let stream = store.read_stream("hot", 0).unwrap();
    assert_eq!(stream.len(), wins.len());
    for (e, (v, payload)) in stream.iter().zip(&wins) {
        assert_eq!(e.version, *v);
        assert_eq!(e.data, payload.as_bytes());
    }
}

#[test]
fn concurrent_exact_appends_have_one_winner_per_version_sync() {
    race(Durability::Sync);
}

#[test]
fn concurrent_exact_appends_have_one_winner_per_version_buffered() {
    race(Durability::Buffered);
}

/// `Any` appends from several threads to two shared streams, mixed with `Exact` appends that
/// use the version `Any` returned: every append gets its own versions, each stream's versions
/// are dense, and what is read back is what each append was told. Exercises the solo path
/// (one writer, no queue), group commits, and the cache of the most recent solo append.
fn any_race(durability: Durability) {
    const THREADS: usize = 6;
    const APPENDS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path().join("s.evs"), small_options(durability)).unwrap());
    let results = together(THREADS, &store, |t, store| {
        let mut got = Vec::new();
        for a in 0..APPENDS {
            let stream = if (a + t) % 3 == 0 { "left" } else { "right" };
            let n = 1 + (a % 3);
            let events: Vec<_> = (0..n)
                .map(|i| event("T", &format!("{t}-{a}-{i}")))
                .collect();
            let r = store.append(stream, ExpectedVersion::Any, &events).unwrap();
            assert_eq!(r.last_version - r.first_version + 1, n as u64);
            got.push((stream, r.first_version, format!("{t}-{a}")));
            // Exact right after: wins unless another thread appended in between.
            match store.append(
                stream,
                ExpectedVersion::Exact(r.last_version),
                &[event("T", &format!("{t}-{a}-x"))],
            ) {
                Ok(x) => got.push((stream, x.first_version, format!("{t}-{a}-x"))),
                Err(Error::WrongExpectedVersion { actual, .. }) => {
                    assert!(actual.expect("stream exists") > r.last_version)
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        got
    });
    let mut got: Vec<_> = results.into_iter().flatten().collect();
    got.sort();
    for stream in ["left", "right"] {
        let events = store.read_stream(stream, 0).unwrap();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version, i as u64, "{stream}: dense versions");
        }
        // Every append's first event sits at the version the append returned.
        for (_, v, payload) in got.iter().filter(|(s, _, _)| *s == stream) {
            let data = String::from_utf8(events[*v as usize].data.clone()).unwrap();
            assert!(
                data == format!("{payload}-0") || data == *payload,
                "{stream} v{v}: read {data}, appended {payload}"
            );
        }
    }
}

#[test]
fn concurrent_any_appends_get_their_own_dense_versions_sync() {
    any_race(Durability::Sync);
}

#[test]
fn concurrent_any_appends_get_their_own_dense_versions_buffered() {
    any_race(Durability::Buffered);
}
