//! An append condition is checked inside the group-commit transaction, after the requests
//! before it in the group were inserted: claims of one tag that share a transaction still have
//! exactly one winner, and the losers' errors name the winner's (not yet committed) position.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use evstore::{AppendCondition, Error, ExpectedVersion, NewEvent, Query, QueryItem};
use evstore_postgres::testing::TestStore;

const CLAIMANTS: usize = 8;

#[test]
fn claims_sharing_one_transaction_have_one_winner() {
    let Some(t) = TestStore::fresh("claims_sharing_one_transaction_have_one_winner") else {
        return;
    };
    // Another session blocks inserts, so the first append (the plug) leads a group of its own
    // and waits inside it while the claims queue up behind it; they then share one group.
    let blocker = t.connect_again();
    let mut lock = blocker.connection().unwrap();
    lock.batch_execute("BEGIN; LOCK TABLE evstore_events IN EXCLUSIVE MODE")
        .unwrap();
    let query = Query::new(vec![QueryItem::new(&["Claimed"], &["username:alice"])]);
    let barrier = Barrier::new(CLAIMANTS + 1);
    let results = std::thread::scope(|sc| {
        let plug = sc.spawn(|| {
            t.store
                .append(
                    "plug",
                    ExpectedVersion::Any,
                    &[NewEvent::new("Plug", vec![])],
                )
                .unwrap()
        });
        // Wait until the plug waits for the table lock (it holds the append lock then).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut watch = t.store.connection().unwrap();
        loop {
            let waiting: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_locks \
                     WHERE NOT granted AND relation = 'evstore_events'::regclass",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the plug never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(watch);
        let claims: Vec<_> = (0..CLAIMANTS)
            .map(|i| {
                let (s, query, barrier) = (t.store.clone(), query.clone(), &barrier);
                sc.spawn(move || {
                    let (seen, head) = s.read_query(&query, None).unwrap();
                    assert!(seen.is_empty() && head.is_none());
                    barrier.wait();
                    let claim = NewEvent::new("Claimed", vec![]).with_tags(["username:alice"]);
                    s.append_if(
                        &format!("user-{i}"),
                        ExpectedVersion::NoStream,
                        &[claim],
                        &AppendCondition::new(query, head),
                    )
                })
            })
            .collect();
        barrier.wait();
        // Every claim is queued microseconds after the barrier; give them ample time.
        std::thread::sleep(Duration::from_millis(500));
        lock.batch_execute("COMMIT").unwrap();
        assert_eq!(plug.join().unwrap().first_position, 0);
        claims
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(winners[0].first_position, 1);
    for r in &results {
        match r {
            Ok(_) => {}
            Err(Error::AppendConditionFailed { positions, after }) => {
                assert_eq!((positions.as_slice(), *after), (&[1][..], None));
            }
            Err(e) => panic!("{e}"),
        }
    }
    // The plug's transaction and one for all the claims.
    assert_eq!(
        t.store.commit_stats().0,
        2,
        "the claims shared one transaction"
    );
    let (read, head) = t.store.read_query(&query, None).unwrap();
    assert_eq!((read.len(), head), (1, Some(1)));
}
