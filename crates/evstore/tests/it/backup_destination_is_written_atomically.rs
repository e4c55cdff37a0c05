//! A backup appears at its destination whole or not at all: a failing backup (missing
//! directory, a destination that cannot be replaced, the store's own file) says why and
//! leaves no partial file or temporary file behind.

use std::path::Path;

use evstore::{Error, ExpectedVersion, Store};

use crate::common::event;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn store_in(dir: &Path) -> Store {
    let store = Store::open(dir.join("live.evs")).unwrap();
    store
        .append("a", ExpectedVersion::Any, &[event("T", "{}")])
        .unwrap();
    store.save_snapshot("a", 0, uuid_of(&store), b"s").unwrap();
    store
}

fn uuid_of(store: &Store) -> evstore::uuid::Uuid {
    store.read_all(0).next().unwrap().unwrap().event_id
}

#[test]
fn a_destination_in_a_missing_directory_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let before = names(dir.path());
    let dst = dir.path().join("missing").join("copy.evs");
    let err = store.backup_to(&dst).unwrap_err();
    let Error::Io(io) = &err else {
        panic!("expected an I/O error, got {err:?}")
    };
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("copy.evs"), "{err}");
    assert!(!dst.exists());
    assert_eq!(names(dir.path()), before);
}

#[test]
fn a_destination_that_cannot_be_replaced_keeps_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    // A non-empty directory: the copy is written and verified, the final rename fails.
    let dst = dir.path().join("copy.evs");
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(dst.join("keep"), b"x").unwrap();
    let before = names(dir.path());
    let err = store.backup_to(&dst).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(names(dir.path()), before);
    assert!(dst.join("keep").exists());
}

#[test]
fn backing_up_onto_the_store_itself_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let before = names(dir.path());
    for own in ["live.evs", "live.evs.snap"] {
        let err = store.backup_to(dir.path().join(own)).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{own}: {err:?}");
    }
    assert_eq!(names(dir.path()), before);
    store
        .append("a", ExpectedVersion::Exact(0), &[event("T", "{}")])
        .unwrap();
}

#[test]
fn an_existing_destination_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let dst = dir.path().join("copy.evs");
    std::fs::write(&dst, b"an older file").unwrap();
    let report = store.backup_to(&dst).unwrap();
    assert_eq!(report.events, 1);
    assert_eq!(Store::open(&dst).unwrap().head_position(), Some(0));
}
