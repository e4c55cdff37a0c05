//! Dynamic Consistency Boundary appends under contention: threads that decide on the same
//! history and race to claim one tag with `append_if` — exactly one wins, the others get
//! `AppendConditionFailed` naming the winner's position, whether the winner is already
//! published or still in flight in the same group commit (Sync), or written but not yet
//! flushed (Buffered). Also: a retry of a successful conditional append is recognised before
//! its condition (which its own event would fail) is checked, and the condition holds across
//! a reopen (the tag index is rebuilt from the log). A loser's next `read_query` sees the
//! events it lost to (the error is returned once they are visible).

use std::sync::{Arc, Barrier};

use crate::common::small_options;
use evstore::{
    AppendCondition, Durability, Error, ExpectedVersion, NewEvent, Query, QueryItem, Store,
};

const THREADS: usize = 16;
const ROUNDS: usize = 25;

fn claim(user: usize, name: &str) -> NewEvent {
    NewEvent::new("UsernameClaimed", format!("{user}").into_bytes())
        .with_tags([format!("username:{name}"), format!("user:{user}")])
}

fn username_query(name: &str) -> Query {
    Query::new(vec![QueryItem::new(
        &["UsernameClaimed", "UsernameReleased"],
        &[&format!("username:{name}")],
    )])
}

fn race(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.evs");
    let store = Arc::new(Store::open_with(&path, small_options(durability)).unwrap());
    for round in 0..ROUNDS {
        let name = format!("name-{round}");
        // Unrelated traffic, so `after` is not simply the start of the log.
        store
            .append(
                "noise",
                ExpectedVersion::Any,
                &[NewEvent::new("Noise", b"n".to_vec())],
            )
            .unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let outcomes: Vec<_> = (0..THREADS)
            .map(|user| {
                let store = store.clone();
                let barrier = barrier.clone();
                let name = name.clone();
                std::thread::spawn(move || {
                    let query = username_query(&name);
                    let (seen, head) = store.read_query(&query, None).unwrap();
                    assert!(seen.is_empty(), "nobody holds {name} yet");
                    let condition = AppendCondition::new(query, head);
                    barrier.wait();
                    let outcome = store.append_if(
                        &format!("user-{round}-{user}"),
                        ExpectedVersion::NoStream,
                        &[claim(user, &name)],
                        &condition,
                    );
                    if let Err(Error::AppendConditionFailed { positions, .. }) = &outcome {
                        // The loser's next read sees what it lost to: deciding again makes
                        // progress instead of failing on the same events.
                        let (now, head) = store
                            .read_query(&condition.fail_if_events_match, None)
                            .unwrap();
                        assert_eq!(
                            now.iter().map(|e| e.position).collect::<Vec<_>>(),
                            *positions
                        );
                        assert!(head >= positions.last().copied());
                    }
                    outcome
                })
            })
            .collect();
        let outcomes: Vec<_> = outcomes.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "{durability:?} round {round}: exactly one claim wins"
        );
        let won_at = winners[0].first_position;
        for o in &outcomes {
            match o {
                Ok(_) => {}
                Err(Error::AppendConditionFailed { positions, .. }) => {
                    assert_eq!(positions, &[won_at], "the conflict names the winner");
                }
                Err(e) => panic!("{durability:?} round {round}: unexpected error {e}"),
            }
        }
        let (claims, _) = store.read_query(&username_query(&name), None).unwrap();
        assert_eq!(claims.len(), 1, "one claim in the log");
        assert_eq!(claims[0].position, won_at);
    }
    store.flush().unwrap();
    drop(store);
    // After a reopen, the index rebuilt from the log keeps refusing a second claim.
    let store = Store::open_with(&path, small_options(durability)).unwrap();
    let query = username_query("name-0");
    let late = store.append_if(
        "late",
        ExpectedVersion::NoStream,
        &[claim(99, "name-0")],
        &AppendCondition::new(query, None),
    );
    assert!(matches!(late, Err(Error::AppendConditionFailed { .. })));
}

#[test]
fn sync_claims_race_and_exactly_one_wins() {
    race(Durability::Sync);
}

#[test]
fn buffered_claims_race_and_exactly_one_wins() {
    race(Durability::Buffered);
}

#[test]
fn a_retried_conditional_append_returns_its_first_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("r.evs")).unwrap();
    let query = username_query("alice");
    let (_, head) = store.read_query(&query, None).unwrap();
    let condition = AppendCondition::new(query, head);
    let events = [claim(1, "alice")];
    let first = store
        .append_if("user-1", ExpectedVersion::NoStream, &events, &condition)
        .unwrap();
    let again = store
        .append_if("user-1", ExpectedVersion::NoStream, &events, &condition)
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(store.head_position(), Some(0), "written once");
    // A different event under the same condition conflicts with the first.
    match store.append_if(
        "user-2",
        ExpectedVersion::NoStream,
        &[claim(2, "alice")],
        &condition,
    ) {
        Err(Error::AppendConditionFailed { positions, after }) => {
            assert_eq!(positions, [0]);
            assert_eq!(after, None);
        }
        other => panic!("expected a failed condition, got {other:?}"),
    }
}

#[test]
fn conditions_see_only_events_after_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.evs")).unwrap();
    let query = username_query("bob");
    store
        .append("user-1", ExpectedVersion::NoStream, &[claim(1, "bob")])
        .unwrap();
    store
        .append(
            "user-1",
            ExpectedVersion::Exact(0),
            &[NewEvent::new("UsernameReleased", b"1".to_vec()).with_tags(["username:bob"])],
        )
        .unwrap();
    // The decision saw both events (the name is free again): its condition holds.
    let (seen, head) = store.read_query(&query, None).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(head, Some(1));
    let condition = AppendCondition::new(query.clone(), head);
    store
        .append_if(
            "user-2",
            ExpectedVersion::NoStream,
            &[claim(2, "bob")],
            &condition,
        )
        .unwrap();
    // A decision that saw only the first event is stale.
    let stale = AppendCondition::new(query, Some(0));
    match store.append_if(
        "user-3",
        ExpectedVersion::NoStream,
        &[claim(3, "bob")],
        &stale,
    ) {
        Err(Error::AppendConditionFailed { positions, after }) => {
            assert_eq!(positions, [1, 2]);
            assert_eq!(after, Some(0));
        }
        other => panic!("expected a failed condition, got {other:?}"),
    }
    // An empty query never fails; a query over its limits is refused.
    store
        .append_if(
            "user-4",
            ExpectedVersion::NoStream,
            &[NewEvent::new("X", b"".to_vec())],
            &AppendCondition::new(Query::new(vec![]), None),
        )
        .unwrap();
    let too_many = Query::new(vec![QueryItem::new(&[], &["t"]); 65]);
    assert!(matches!(
        store.read_query(&too_many, None),
        Err(Error::InvalidInput(_))
    ));
}
