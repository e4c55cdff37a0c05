//! Repeating an append whose events are already written returns the same result and writes
//! nothing; a partial repeat is an error.

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Store};

#[test]
fn retry_with_same_expected_version_returns_the_original_result() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("s.evs"), small_options(Durability::Sync)).unwrap();
    let first = vec![event("A", "1"), event("B", "2")];
    let r1 = store
        .append("s", ExpectedVersion::NoStream, &first)
        .unwrap();
    // Another stream moves the global position on.
    store
        .append("other", ExpectedVersion::Any, &[event("X", "x")])
        .unwrap();
    let second = vec![event("C", "3")];
    let r2 = store
        .append("s", ExpectedVersion::Exact(1), &second)
        .unwrap();
    let head = store.head_position();
    let appends = store.stats().appends;

    assert_eq!(
        store
            .append("s", ExpectedVersion::NoStream, &first)
            .unwrap(),
        r1
    );
    assert_eq!(
        store
            .append("s", ExpectedVersion::Exact(1), &second)
            .unwrap(),
        r2
    );
    assert_eq!(
        store.append("s", ExpectedVersion::Any, &second).unwrap(),
        r2
    );
    assert_eq!(
        store
            .append("s", ExpectedVersion::StreamExists, &second)
            .unwrap(),
        r2
    );
    assert_eq!(store.head_position(), head, "nothing was written");
    assert_eq!(store.stats().appends, appends);

    // Survives reopen too.
    drop(store);
    let store = Store::open(dir.path().join("s.evs")).unwrap();
    assert_eq!(
        store
            .append("s", ExpectedVersion::Exact(1), &second)
            .unwrap(),
        r2
    );
    assert_eq!(store.head_position(), head);
}

#[test]
fn partial_repeat_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("s.evs"), small_options(Durability::Sync)).unwrap();
    let first = vec![event("A", "1"), event("B", "2")];
    store
        .append("s", ExpectedVersion::NoStream, &first)
        .unwrap();
    let head = store.head_position();
    let mixed = vec![first[0].clone(), event("Z", "new")];
    assert!(matches!(
        store.append("s", ExpectedVersion::NoStream, &mixed),
        Err(Error::IdempotencyConflict { .. })
    ));
    let longer = vec![first[0].clone(), first[1].clone(), event("Z", "new")];
    assert!(matches!(
        store.append("s", ExpectedVersion::NoStream, &longer),
        Err(Error::IdempotencyConflict { .. })
    ));
    assert_eq!(store.head_position(), head);
}

#[test]
fn new_ids_with_a_stale_version_are_a_conflict_not_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("s.evs"), small_options(Durability::Sync)).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &[event("A", "1")])
        .unwrap();
    let r = store.append("s", ExpectedVersion::NoStream, &[event("A", "1")]);
    assert!(matches!(
        r,
        Err(Error::WrongExpectedVersion {
            actual: Some(0),
            ..
        })
    ));
    // Same id as an event of another stream is not a retry of this one.
    let e = NewEvent::new("A", b"x".to_vec());
    store
        .append("t", ExpectedVersion::Any, std::slice::from_ref(&e))
        .unwrap();
    let r = store.append("u", ExpectedVersion::Any, &[e]).unwrap();
    assert_eq!(r.first_version, 0);
}
