//! `evstore backup SRC DST` writes a copy that `evstore verify` passes (exit 0) with the same
//! event count as the source, prints a one-line summary (or one JSON document), copies a
//! source another process has open (what that process made durable), and leaves nothing
//! behind when it fails.

use std::path::Path;

use crate::common::cli::{evstore, group, json_raw, json_u64, stderr, stdout};
use crate::common::small_options;
use evstore::{Durability, ExpectedVersion, NewEvent, Store};

const APPENDS: u64 = 300;

/// A closed store of `APPENDS` events over several 64 KiB segments, with one snapshot.
fn build(dir: &Path) {
    let store = Store::open_with(dir.join("live.evs"), small_options(Durability::Sync)).unwrap();
    for i in 0..APPENDS {
        let e = NewEvent::new("T", vec![b'x'; 500]).with_metadata(format!("m{i}").into_bytes());
        store
            .append(&format!("s{}", i % 7), ExpectedVersion::Any, &[e])
            .unwrap();
    }
    let first = store.read_all(0).next().unwrap().unwrap();
    store
        .save_snapshot(&first.stream_id, 0, first.event_id, b"state")
        .unwrap();
    store.close().unwrap();
}

#[test]
fn backup_of_a_store_file_verifies_clean_with_the_same_event_count() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let out = evstore(dir.path(), &["backup", "live.evs", "copy.evs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("{} events", group(APPENDS))),
        "{text}"
    );
    assert!(text.contains("verified clean"), "{text}");
    assert!(dir.path().join("copy.evs.snap").exists());

    let verify = evstore(dir.path(), &["verify", "copy.evs", "--json"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    assert_eq!(json_u64(&stdout(&verify), "events"), Some(APPENDS));
    assert_eq!(json_raw(&stdout(&verify), "verdict"), Some("\"clean\""));
}

#[test]
fn backup_json_reports_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let out = evstore(dir.path(), &["backup", "live.evs", "copy.evs", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = stdout(&out);
    assert_eq!(json_u64(&doc, "events"), Some(APPENDS));
    assert_eq!(json_raw(&doc, "verdict"), Some("\"clean\""));
    assert!(
        json_u64(&doc, "sidecar_bytes").is_some_and(|n| n > 0),
        "{doc}"
    );
    assert!(json_u64(&doc, "append_pause_us").is_some(), "{doc}");
}

#[test]
fn backup_of_a_store_open_elsewhere_copies_what_it_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let held = Store::open(dir.path().join("live.evs")).unwrap();
    held.append(
        "after-build",
        evstore::ExpectedVersion::NoStream,
        &[evstore::NewEvent::new("Late", vec![1])],
    )
    .unwrap();
    let out = evstore(dir.path(), &["backup", "live.evs", "copy.evs", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_u64(&stdout(&out), "events"), Some(APPENDS + 1));
    let copy = Store::open(dir.path().join("copy.evs")).unwrap();
    assert_eq!(copy.stream_version("after-build"), Some(0));
    drop(held);
}

#[test]
fn backup_into_a_missing_directory_fails_clearly_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let out = evstore(dir.path(), &["backup", "live.evs", "nowhere/copy.evs"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("nowhere/copy.evs") && err.contains("No such file"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
}
