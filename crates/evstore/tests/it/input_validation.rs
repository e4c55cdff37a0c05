//! Bad input gets `InvalidInput` and writes nothing.

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Options, Store};

fn assert_invalid<T: std::fmt::Debug>(r: evstore::Result<T>) {
    match r {
        Err(Error::InvalidInput(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn bad_appends_are_rejected_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("s.evs"), small_options(Durability::Sync)).unwrap();
    let ok = event("T", "x");
    assert_invalid(store.append("", ExpectedVersion::Any, std::slice::from_ref(&ok)));
    assert_invalid(store.append(
        &"s".repeat(256),
        ExpectedVersion::Any,
        std::slice::from_ref(&ok),
    ));
    assert_invalid(store.append("s", ExpectedVersion::Any, &[]));
    assert_invalid(store.append("s", ExpectedVersion::Any, &[event("", "x")]));
    assert_invalid(store.append("s", ExpectedVersion::Any, &[event(&"t".repeat(256), "x")]));
    // One bad event in a batch rejects the whole batch.
    assert_invalid(store.append("s", ExpectedVersion::Any, &[ok.clone(), event("", "x")]));
    // Larger than a 64 KiB segment.
    assert_invalid(store.append(
        "s",
        ExpectedVersion::Any,
        &[NewEvent::new("T", vec![0u8; 64 * 1024])],
    ));
    // A batch that only together exceeds a segment.
    let batch: Vec<NewEvent> = (0..3)
        .map(|_| NewEvent::new("T", vec![1u8; 30_000]))
        .collect();
    assert_invalid(store.append("s", ExpectedVersion::Any, &batch));
    assert_invalid(store.read_stream("", 0));
    assert_invalid(store.read_by_type("", None));

    assert_eq!(store.head_position(), None);
    assert_eq!(store.stats().appends, 0);
    // Names of exactly 255 bytes are fine, and multi-byte UTF-8 counts bytes.
    let long = "é".repeat(127); // 254 bytes
    store
        .append(
            &format!("{long}x"),
            ExpectedVersion::NoStream,
            &[event(&"t".repeat(255), "x")],
        )
        .unwrap();
    assert_eq!(store.head_position(), Some(0));
    drop(store);
    let store = Store::open(dir.path().join("s.evs")).unwrap();
    assert_eq!(store.head_position(), Some(0));
}

#[test]
fn bad_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0, 4096, 64 * 1024 + 1, 2 * 1024 * 1024 * 1024] {
        let r = Store::open_with(
            dir.path().join("s.evs"),
            Options {
                segment_size: size,
                ..Options::default()
            },
        );
        assert_invalid(r);
    }
    assert!(!dir.path().join("s.evs").exists(), "nothing was created");
}

#[test]
fn existing_file_keeps_its_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    drop(Store::open_with(&path, small_options(Durability::Sync)).unwrap());
    let store = Store::open(&path).unwrap();
    assert_eq!(store.options().segment_size, 64 * 1024);
}

#[test]
fn invalid_segment_size_opens_an_existing_log_but_refuses_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    drop(Store::open_with(&path, small_options(Durability::Sync)).unwrap());
    let bad = || Options {
        segment_size: 3,
        ..Options::default()
    };
    let store = Store::open_with(&path, bad()).expect("an existing log ignores segment_size");
    assert_eq!(store.options().segment_size, 64 * 1024);
    drop(store);
    assert_invalid(Store::open_with(dir.path().join("new.evs"), bad()));
    assert!(!dir.path().join("new.evs").exists(), "nothing was created");
    // An empty file is initialised, so the option applies to it too.
    std::fs::write(dir.path().join("empty.evs"), b"").unwrap();
    assert_invalid(Store::open_with(dir.path().join("empty.evs"), bad()));
}

#[test]
fn missing_file_is_not_created_when_asked_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let r = Store::open_with(
        dir.path().join("nope.evs"),
        Options {
            create_if_missing: false,
            ..Options::default()
        },
    );
    assert!(matches!(r, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));
}

#[test]
fn empty_file_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.evs");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[event("T", "x")])
        .unwrap();
    drop(store);
    assert_eq!(Store::open(&path).unwrap().head_position(), Some(0));
}
