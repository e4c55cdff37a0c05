//! A read-only open shares the file with other readers, never writes (a torn tail is skipped,
//! not trimmed), refuses appends, and excludes a writer while open.

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, Options, Store};

fn ro() -> Options {
    Options {
        read_only: true,
        ..Options::default()
    }
}

#[test]
fn read_only_open_reads_everything_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.evs");
    {
        let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
        for i in 0..5 {
            store
                .append("s", ExpectedVersion::Any, &[event("T", &i.to_string())])
                .unwrap();
        }
    }
    // Garbage after the end: a writer would trim it; a reader must leave it.
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end + 64] = 0x77;
    std::fs::write(&path, &bytes).unwrap();

    let a = Store::open_with(&path, ro()).unwrap();
    let b = Store::open_with(&path, ro()).unwrap(); // readers share
    assert_eq!(all_events(&a).len(), 5);
    assert_eq!(b.stream_version("s"), Some(4));
    assert!(a.recovery_report().trimmed.is_some());
    assert!(matches!(
        a.append("s", ExpectedVersion::Any, &[event("T", "x")]),
        Err(Error::ReadOnly)
    ));
    assert!(a.load_snapshot("s").unwrap().is_none());
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was written");
    assert!(!evstore::snapshot::sidecar_path(&path).exists());
    // Readers never keep a writer out (FORMAT §10): it opens beside them and zeroes the torn
    // bytes in place; the readers keep their events and follow the writer.
    let w = Store::open(&path).unwrap();
    assert!(w.recovery_report().trimmed.is_some());
    assert!(
        matches!(Store::open(&path), Err(Error::Locked { .. })),
        "one writer"
    );
    assert_eq!(all_events(&a).len(), 5);
    w.append("s", ExpectedVersion::Exact(4), &[event("T", "x")])
        .unwrap();
    assert_eq!(a.refresh().unwrap(), Some(5));
    assert_eq!(all_events(&a).len(), 6);
    let c = Store::open_with(&path, ro()).unwrap();
    assert_eq!(all_events(&c).len(), 6, "a reader opened beside the writer");
    drop((a, b, c));
    assert_eq!(w.stream_version("s"), Some(5));
}

#[test]
fn read_only_open_refuses_empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.evs");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        Store::open_with(&path, ro()),
        Err(Error::NotALog { .. })
    ));
    let no_create = Options {
        create_if_missing: false,
        ..Options::default()
    };
    assert!(matches!(
        Store::open_with(&path, no_create),
        Err(Error::NotALog { .. })
    ));
    assert!(matches!(
        Store::open_with(dir.path().join("missing.evs"), ro()),
        Err(Error::Io(_))
    ));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn readers_see_a_buffered_writer_only_up_to_its_last_flush() {
    // docs/FORMAT.md §10: the head a reader follows is published after an fdatasync; a
    // Buffered writer's appends are visible in its own process at once, elsewhere on flush.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffered.evs");
    let w = Store::open_with(&path, small_options(Durability::Buffered)).unwrap();
    let r = Store::open_with(&path, ro()).unwrap();
    w.append("s", ExpectedVersion::NoStream, &[event("A", "1")])
        .unwrap();
    assert_eq!(w.head_position(), Some(0), "visible in the writer at once");
    assert_eq!(r.refresh().unwrap(), None, "not durable yet: not published");
    assert!(!r.wait_for_position(0, std::time::Duration::from_millis(30)));
    w.flush().unwrap();
    assert!(r.wait_for_position(0, std::time::Duration::from_secs(5)));
    assert_eq!(all_events(&r), all_events(&w));
    w.append("s", ExpectedVersion::Exact(0), &[event("B", "2")])
        .unwrap();
    drop(w); // close syncs and seals: published too
    assert_eq!(r.refresh().unwrap(), Some(1));
}
