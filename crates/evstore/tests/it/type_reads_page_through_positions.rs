//! `Store::read_by_type_from` pages through one event type's positions: pages in position
//! order, only that type, starting at `from_position`, at most `max` per page, and the pages
//! together equal `read_by_type`.

use evstore::{ExpectedVersion, NewEvent, Store};

#[test]
fn pages_of_a_type_cover_it_exactly_once_in_position_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("p.evs")).unwrap();
    for i in 0..50u64 {
        let ty = if i % 3 == 0 { "A" } else { "B" };
        store
            .append(
                &format!("s{}", i % 4),
                ExpectedVersion::Any,
                &[NewEvent::new(ty, i.to_le_bytes().to_vec())],
            )
            .unwrap();
    }
    let whole: Vec<u64> = store
        .read_by_type("A", None)
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(whole.len(), 17);

    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page = store.read_by_type_from("A", from, 4).unwrap();
        assert!(page.len() <= 4);
        assert!(page.iter().all(|e| e.event_type == "A"));
        paged.extend(page.iter().map(|e| e.position));
        match page.last() {
            Some(last) if page.len() == 4 => from = last.position + 1,
            _ => break,
        }
    }
    assert_eq!(paged, whole);

    // A start between two positions of the type begins at the next one.
    let mid = store.read_by_type_from("A", 4, 2).unwrap();
    assert_eq!(mid.iter().map(|e| e.position).collect::<Vec<_>>(), [6, 9]);
    assert!(store.read_by_type_from("A", 49, 10).unwrap().is_empty());
    assert!(store.read_by_type_from("A", 0, 0).unwrap().is_empty());
    assert!(store.read_by_type_from("Nope", 0, 10).unwrap().is_empty());
    assert!(store.read_by_type_from("", 0, 10).is_err());
}
