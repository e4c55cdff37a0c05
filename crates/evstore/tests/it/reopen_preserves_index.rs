//! Closing and reopening a store yields the same index: streams, versions, types, head.

use crate::common::*;
use evstore::{Durability, ExpectedVersion, NewEvent, Store};

#[test]
fn index_after_reopen_equals_index_before_close() {
    for durability in [Durability::Sync, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.evs");
        let store = Store::open_with(&path, small_options(durability)).unwrap();
        for i in 0..300u64 {
            let n = (i % 5 + 1) as usize;
            let batch: Vec<NewEvent> = (0..n)
                .map(|j| {
                    NewEvent::new(
                        format!("Type{}", (i + j as u64) % 4),
                        vec![i as u8; (i * 37 % 900) as usize],
                    )
                })
                .collect();
            store
                .append(&format!("stream-{}", i % 17), ExpectedVersion::Any, &batch)
                .unwrap();
        }
        let before = evstore::testing::index_fingerprint(&store);
        let events_before = all_events(&store);
        let head = store.head_position();
        let types = store.event_types();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(evstore::testing::index_fingerprint(&store), before);
        assert_eq!(all_events(&store), events_before);
        assert_eq!(store.head_position(), head);
        assert_eq!(store.event_types(), types);
        assert!(store.recovery_report().trimmed.is_none());
        for s in 0..17 {
            let name = format!("stream-{s}");
            let v = store.stream_version(&name).unwrap();
            assert_eq!(store.read_stream(&name, 0).unwrap().len() as u64, v + 1);
        }
        // Appends continue densely after reopen.
        let r = store
            .append("stream-0", ExpectedVersion::Any, &[event("T", "x")])
            .unwrap();
        assert_eq!(r.first_position, head.unwrap() + 1);
        drop(store);
        // Reopening an unchanged store again changes nothing.
        let fp = evstore::testing::index_fingerprint(&Store::open(&path).unwrap());
        assert_eq!(
            evstore::testing::index_fingerprint(&Store::open(&path).unwrap()),
            fp
        );
    }
}

#[test]
fn reopening_without_appends_adds_no_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[event("T", "x")])
        .unwrap();
    drop(store); // writes one seal frame: the last event frame gets a durable watermark
    let frames = Store::open(&path).unwrap().recovery_report().frames;
    assert_eq!(frames, 2, "one event frame and one seal");
    for _ in 0..3 {
        let s = Store::open(&path).unwrap();
        assert_eq!(s.recovery_report().frames, frames);
    }
}
