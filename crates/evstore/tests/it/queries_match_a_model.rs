//! DCB query semantics against a model, with proptest: an item matches an event whose type is
//! one of its types (any type when it names none) and which carries all of its tags; a query
//! matches when any item does; only positions after `after` count. Checked through
//! `read_query` (on the live index and on the index a reopen rebuilds from the log) and through
//! `append_if` (fails exactly when the model finds a match after `after`, listing those
//! positions).

use proptest::prelude::*;

use evstore::{AppendCondition, Error, ExpectedVersion, NewEvent, Query, QueryItem, Store};

/// Event types; the last is the probe's, never generated.
const TYPES: [&str; 4] = ["A", "B", "C", "Probe"];
const GENERATED_TYPES: usize = 3;
const TAGS: [&str; 5] = ["t0", "t1", "t2", "t3", "t4"];

/// An event of the model: (stream, type, tags).
type ModelEvent = (usize, usize, Vec<usize>);
/// An item of the model: (types, tags), as indices.
type ModelItem = (Vec<usize>, Vec<usize>);

fn subset(len: usize, max: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..len, 0..=max).prop_map(|s| s.into_iter().collect())
}

fn events() -> impl Strategy<Value = Vec<ModelEvent>> {
    proptest::collection::vec(
        (0..4usize, 0..GENERATED_TYPES, subset(TAGS.len(), 3)),
        0..40,
    )
}

fn query() -> impl Strategy<Value = Vec<ModelItem>> {
    proptest::collection::vec((subset(GENERATED_TYPES, 2), subset(TAGS.len(), 2)), 0..4)
}

fn to_query(items: &[ModelItem]) -> Query {
    Query::new(
        items
            .iter()
            .map(|(types, tags)| {
                let types: Vec<&str> = types.iter().map(|&t| TYPES[t]).collect();
                let tags: Vec<&str> = tags.iter().map(|&t| TAGS[t]).collect();
                QueryItem::new(&types, &tags)
            })
            .collect(),
    )
}

fn model_matches(items: &[ModelItem], events: &[ModelEvent], after: Option<u64>) -> Vec<u64> {
    events
        .iter()
        .enumerate()
        .filter(|(p, _)| after.is_none_or(|a| *p as u64 > a))
        .filter(|(_, (_, ty, tags))| {
            items.iter().any(|(types, want)| {
                (types.is_empty() || types.contains(ty)) && want.iter().all(|t| tags.contains(t))
            })
        })
        .map(|(p, _)| p as u64)
        .collect()
}

fn check(store: &Store, items: &[ModelItem], events: &[ModelEvent], after: Option<u64>) {
    let q = to_query(items);
    let (found, head) = store.read_query(&q, after).unwrap();
    let positions: Vec<u64> = found.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        model_matches(items, events, after),
        "query {q:?} after {after:?}"
    );
    assert_eq!(head, (events.len() as u64).checked_sub(1));
    for e in &found {
        let (_, ty, tags) = &events[e.position as usize];
        assert_eq!(e.event_type, TYPES[*ty]);
        let want: Vec<&str> = tags.iter().map(|&t| TAGS[t]).collect();
        assert_eq!(e.tags, want);
        assert!(q.matches_event(&e.as_view()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn read_query_and_append_if_agree_with_the_model(
        events in events(),
        items in query(),
        after_pick in proptest::option::of(0u64..45),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.evs");
        let store = Store::open(&path).unwrap();
        for (stream, ty, tags) in &events {
            let tags: Vec<&str> = tags.iter().map(|&t| TAGS[t]).collect();
            store
                .append(
                    &format!("s{stream}"),
                    ExpectedVersion::Any,
                    &[NewEvent::new(TYPES[*ty], b"{}".to_vec()).with_tags(tags)],
                )
                .unwrap();
        }
        check(&store, &items, &events, after_pick);
        check(&store, &items, &events, None);
        // The condition fails exactly when the model finds a match after `after`.
        let conflicts = model_matches(&items, &events, after_pick);
        let outcome = store.append_if(
            "probe",
            ExpectedVersion::Any,
            &[NewEvent::new("Probe", b"".to_vec())],
            &AppendCondition::new(to_query(&items), after_pick),
        );
        let written = outcome.is_ok();
        match outcome {
            Ok(_) => prop_assert!(conflicts.is_empty(), "model conflicts {conflicts:?}"),
            Err(Error::AppendConditionFailed { positions, .. }) => prop_assert_eq!(positions, conflicts),
            Err(e) => panic!("unexpected error {e}"),
        }
        let mut all_events = events.clone();
        if written {
            all_events.push((9, GENERATED_TYPES, Vec::new()));
        }
        drop(store);
        let reopened = Store::open(&path).unwrap();
        check(&reopened, &items, &all_events, after_pick);
    }
}
