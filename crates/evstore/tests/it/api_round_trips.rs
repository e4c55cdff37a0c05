//! Every read API returns exactly what was appended; versions and positions are dense from 0;
//! `recorded_at` never decreases in position order.

use crate::common::*;
use chrono::Utc;
use evstore::{Durability, ExpectedVersion, NewEvent, Store};

#[test]
fn appended_events_read_back_through_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("s.evs"), small_options(Durability::Sync)).unwrap();
    assert_eq!(store.head_position(), None);
    assert_eq!(store.stream_version("a"), None);
    assert!(store.read_stream("a", 0).unwrap().is_empty());
    assert!(store.read_by_type("Created", None).unwrap().is_empty());
    assert_eq!(store.read_all(0).count(), 0);

    let a1 = vec![
        event("Created", "a0").with_metadata(b"m0".to_vec()),
        event("Changed", "a1"),
    ];
    let r = store.append("a", ExpectedVersion::NoStream, &a1).unwrap();
    assert_eq!(
        (
            r.first_version,
            r.last_version,
            r.first_position,
            r.last_position
        ),
        (0, 1, 0, 1)
    );
    let r = store
        .append("b", ExpectedVersion::Any, &[event("Created", "b0")])
        .unwrap();
    assert_eq!((r.first_version, r.first_position), (0, 2));
    let r = store
        .append("a", ExpectedVersion::Exact(1), &[event("Changed", "a2")])
        .unwrap();
    assert_eq!(
        (r.first_version, r.last_version, r.first_position),
        (2, 2, 3)
    );

    assert_eq!(store.stream_version("a"), Some(2));
    assert_eq!(store.stream_version("b"), Some(0));
    assert_eq!(store.head_position(), Some(3));

    let a = store.read_stream("a", 0).unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].event_id, a1[0].event_id);
    assert_eq!(a[0].metadata, b"m0");
    assert_eq!(a[1].data, b"a1");
    assert_eq!(
        a.iter()
            .map(|e| (e.version, e.position))
            .collect::<Vec<_>>(),
        vec![(0, 0), (1, 1), (2, 3)]
    );
    assert!(a.iter().all(|e| e.stream_id == "a"));
    let from2 = store.read_stream("a", 2).unwrap();
    assert_eq!(from2.len(), 1);
    assert_eq!(from2[0].data, b"a2");
    assert!(store.read_stream("a", 3).unwrap().is_empty());

    let all = all_events(&store);
    assert_eq!(all.len(), 4);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64);
    }
    assert_eq!(all[2].stream_id, "b");
    let tail: Vec<u64> = store.read_all(2).map(|e| e.unwrap().position).collect();
    assert_eq!(tail, vec![2, 3]);
    assert_eq!(store.read_all(99).count(), 0);

    let created = store.read_by_type("Created", None).unwrap();
    assert_eq!(
        created.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![0, 2]
    );
    let changed = store.read_by_type("Changed", None).unwrap();
    assert_eq!(
        changed.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(
        store.event_types(),
        vec![("Changed".to_string(), 2), ("Created".to_string(), 2)]
    );
}

#[test]
fn recorded_at_is_non_decreasing_and_since_filters_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path().join("s.evs"),
        small_options(Durability::Buffered),
    )
    .unwrap();
    let before = Utc::now();
    for i in 0..50 {
        store
            .append(
                &format!("s{}", i % 7),
                ExpectedVersion::Any,
                &[event("Tick", &i.to_string())],
            )
            .unwrap();
        if i == 24 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let all = all_events(&store);
    assert!(all.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert!(all[0].recorded_at >= before - chrono::Duration::milliseconds(1));
    // since = the timestamp of event 25 returns exactly the events recorded at or after it.
    let cut = all[25].recorded_at;
    let since = store.read_by_type("Tick", Some(cut)).unwrap();
    let expected: Vec<u64> = all
        .iter()
        .filter(|e| e.recorded_at >= cut)
        .map(|e| e.position)
        .collect();
    assert_eq!(
        since.iter().map(|e| e.position).collect::<Vec<_>>(),
        expected
    );
    assert!(expected.len() <= 25 && !expected.is_empty());
    // A cut-off after everything returns nothing; before everything returns all.
    assert!(store
        .read_by_type("Tick", Some(Utc::now() + chrono::Duration::seconds(60)))
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .read_by_type("Tick", Some(before - chrono::Duration::seconds(60)))
            .unwrap()
            .len(),
        50
    );
}

#[test]
fn versions_and_positions_are_dense_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path().join("s.evs"),
        small_options(Durability::Buffered),
    )
    .unwrap();
    let payload = "x".repeat(3000);
    for i in 0..100u64 {
        let batch: Vec<NewEvent> = (0..(i % 4 + 1)).map(|_| event("Big", &payload)).collect();
        store
            .append(&format!("s{}", i % 3), ExpectedVersion::Any, &batch)
            .unwrap();
    }
    assert!(
        store.stats().segments > 3,
        "the test crosses segment boundaries"
    );
    let all = all_events(&store);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64);
        assert_eq!(e.data.len(), 3000);
    }
    for s in 0..3 {
        let events = store.read_stream(&format!("s{s}"), 0).unwrap();
        for (v, e) in events.iter().enumerate() {
            assert_eq!(e.version, v as u64);
        }
    }
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}
