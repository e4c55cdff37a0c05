//! Tags are written by every append path and survive the schema upgrade: `import` (`evstore
//! copy`) stores and indexes them, and a schema at version 2 (before tags) upgrades with its
//! events reading back untagged.

use evstore::{ExpectedVersion, NewEvent, Query, QueryItem, RecordedEvent};
use evstore_postgres::testing::TestStore;

#[test]
fn imported_tags_are_stored_and_indexed() {
    let Some(t) = TestStore::fresh("imported_tags_are_stored_and_indexed") else {
        return;
    };
    // Microseconds: what `timestamptz` stores.
    let now =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let event = |position: u64, tags: &[&str]| RecordedEvent {
        event_id: uuid::Uuid::new_v4(),
        stream_id: "s".into(),
        event_type: "E".into(),
        version: position,
        position,
        recorded_at: now,
        data: vec![],
        metadata: vec![],
        tags: tags.iter().map(|t| (*t).to_string()).collect(),
    };
    let events = vec![event(0, &["b", "a"]), event(1, &[]), event(2, &["a", "c"])];
    // A repeated tag is refused, writing nothing.
    let mut bad = events.clone();
    bad[1].tags = vec!["x".into(), "x".into()];
    assert!(matches!(
        t.store.import(&bad),
        Err(evstore::Error::InvalidInput(_))
    ));
    t.store.import(&events).unwrap();
    assert_eq!(t.store.read_stream("s", 0).unwrap(), events);
    let q = Query::new(vec![QueryItem::new(&[], &["a"])]);
    let (read, head) = t.store.read_query(&q, None).unwrap();
    assert_eq!(read.iter().map(|e| e.position).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(head, Some(2));
    let q = Query::new(vec![QueryItem::new(&[], &["a", "b"])]);
    assert_eq!(t.store.read_query(&q, None).unwrap().0, [events[0].clone()]);
}

#[test]
fn a_version_2_schema_upgrades_with_untagged_events() {
    let Some(t) = TestStore::fresh("a_version_2_schema_upgrades_with_untagged_events") else {
        return;
    };
    t.store
        .append(
            "old",
            ExpectedVersion::NoStream,
            &[NewEvent::new("E", vec![1])],
        )
        .unwrap();
    // Take the schema back to version 2, as an older build left it.
    t.store
        .connection()
        .unwrap()
        .batch_execute(
            "DROP TABLE evstore_event_tags; ALTER TABLE evstore_events DROP COLUMN tags; \
             DELETE FROM evstore_schema_migrations WHERE version = 3",
        )
        .unwrap();
    let s = t.connect_again();
    let old = s.read_stream("old", 0).unwrap();
    assert_eq!((old.len(), old[0].tags.len()), (1, 0));
    s.append(
        "new",
        ExpectedVersion::NoStream,
        &[NewEvent::new("E", vec![2]).with_tags(["t"])],
    )
    .unwrap();
    let (read, head) = s
        .read_query(&Query::new(vec![QueryItem::new(&[], &["t"])]), None)
        .unwrap();
    assert_eq!(
        (read.len(), read[0].tags.as_slice(), head),
        (1, &["t".to_string()][..], Some(1))
    );
}
