//! Logs written before tags existed (format version 1, the checked-in fixture of the Order
//! domain) open, read and take appends with this build, and stay version 1: their event
//! records have no tag section, so a tagged append is refused with a clear error (nothing is
//! written), while queries by type and conditions on types work as on a new log.

use evstore::{AppendCondition, Error, ExpectedVersion, NewEvent, Query, QueryItem, Store};

fn fixture_copy(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../evstore-orders/tests/fixtures/orders_v1.evs");
    let path = dir.path().join("v1.evs");
    std::fs::copy(&fixture, &path).unwrap();
    path
}

#[test]
fn the_v1_fixture_opens_reads_and_takes_untagged_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let before = std::fs::read(&path).unwrap();
    assert_eq!(
        &before[8..12],
        &1u32.to_le_bytes(),
        "the fixture is format version 1"
    );
    let store = Store::open(&path).unwrap();
    assert_eq!(store.format_version(), 1);
    let all: Vec<_> = store.read_all(0).collect::<Result<_, _>>().unwrap();
    assert!(!all.is_empty());
    assert!(all.iter().all(|e| e.tags.is_empty()));
    let head = store.head_position().unwrap();

    // Untagged appends work and are laid out as version 1.
    let r = store
        .append(
            "new-stream",
            ExpectedVersion::NoStream,
            &[NewEvent::new("Plain", b"1".to_vec())],
        )
        .unwrap();
    assert_eq!(r.first_position, head + 1);

    // Tagged ones are refused, and nothing is written.
    let tagged = NewEvent::new("Tagged", b"2".to_vec()).with_tags(["t:1"]);
    match store.append(
        "new-stream",
        ExpectedVersion::Any,
        std::slice::from_ref(&tagged),
    ) {
        Err(Error::InvalidInput(why)) => assert!(why.contains("format version 1"), "{why}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(store.head_position(), Some(head + 1));

    // Type-only queries and conditions work.
    let q = Query::new(vec![QueryItem::new(&["Plain"], &[])]);
    let (found, seen_head) = store.read_query(&q, None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(seen_head, Some(head + 1));
    let stale = AppendCondition::new(q.clone(), Some(head));
    assert!(matches!(
        store.append_if(
            "x",
            ExpectedVersion::Any,
            &[NewEvent::new("Plain", b"3".to_vec())],
            &stale
        ),
        Err(Error::AppendConditionFailed { .. })
    ));
    let fresh = AppendCondition::new(q, seen_head);
    store
        .append_if(
            "x",
            ExpectedVersion::Any,
            &[NewEvent::new("Plain", b"3".to_vec())],
            &fresh,
        )
        .unwrap();
    drop(store);

    let reopened = Store::open(&path).unwrap();
    assert_eq!(
        reopened.format_version(),
        1,
        "a log keeps its format version"
    );
    assert_eq!(reopened.head_position(), Some(head + 2));
    let report = evstore::maintenance::verify(&path).unwrap();
    assert_eq!(report.verdict, evstore::maintenance::Verdict::Clean);
}

#[test]
fn new_logs_are_version_2_and_keep_tags_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.evs");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.format_version(), 2);
    store
        .append(
            "s",
            ExpectedVersion::NoStream,
            &[
                NewEvent::new("T", b"a".to_vec()).with_tags(["a", "b"]),
                NewEvent::new("T", b"b".to_vec()),
                NewEvent::new("T", b"c".to_vec()).with_tags(["é:ü", "b"]),
            ],
        )
        .unwrap();
    drop(store);
    assert_eq!(&std::fs::read(&path).unwrap()[8..12], &2u32.to_le_bytes());
    let store = Store::open(&path).unwrap();
    let tags: Vec<Vec<String>> = store
        .read_stream("s", 0)
        .unwrap()
        .into_iter()
        .map(|e| e.tags)
        .collect();
    assert_eq!(tags, [vec!["a", "b"], vec![], vec!["é:ü", "b"]]);
    let stats = store.stats();
    assert_eq!((stats.tags, stats.tag_occurrences), (3, 4));
    let (found, _) = store
        .read_query(&Query::new(vec![QueryItem::new(&[], &["b"])]), None)
        .unwrap();
    assert_eq!(found.iter().map(|e| e.position).collect::<Vec<_>>(), [0, 2]);
}
