//! Concurrent appends through one `PgStore` share transactions (group commit), and each still
//! gets exactly the outcome it would get alone: optimistic writers racing on one stream with
//! `Exact` all land once, at dense versions, and conflicts report the actual version.

use evstore::{Error, ExpectedVersion, NewEvent};
use evstore_postgres::testing::TestStore;

const PER_WRITER: usize = 20;

#[test]
fn sixteen_optimistic_writers_on_one_stream() {
    let Some(t) = TestStore::fresh("sixteen_optimistic_writers_on_one_stream") else {
        return;
    };
    let conflicts: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..16u8)
            .map(|w| {
                let s = t.store.clone();
                sc.spawn(move || {
                    let mut conflicts = 0;
                    for i in 0..PER_WRITER {
                        let e = NewEvent::new("E", vec![w, i as u8]);
                        let mut expected = s
                            .stream_version("one")
                            .unwrap()
                            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                        // Bounded: every conflict means another writer's append landed.
                        loop {
                            match s.append("one", expected, std::slice::from_ref(&e)) {
                                Ok(_) => break,
                                Err(Error::WrongExpectedVersion { actual, .. }) => {
                                    let actual = actual.expect("the stream exists");
                                    if let ExpectedVersion::Exact(v) = expected {
                                        assert!(actual > v, "actual {actual} after Exact({v})");
                                    }
                                    expected = ExpectedVersion::Exact(actual);
                                    conflicts += 1;
                                }
                                Err(other) => panic!("{other}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let events = t.store.read_stream("one", 0).unwrap();
    assert_eq!(events.len(), 16 * PER_WRITER);
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, e)| e.version == i as u64 && e.position == i as u64));
    let mut payloads: Vec<Vec<u8>> = events.iter().map(|e| e.data.clone()).collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len(), 16 * PER_WRITER, "each append landed once");
    assert!(conflicts > 0, "the writers did race");
}

#[test]
fn concurrent_appends_share_commits() {
    let Some(t) = TestStore::fresh("concurrent_appends_share_commits") else {
        return;
    };
    std::thread::scope(|sc| {
        for w in 0..16 {
            let s = t.store.clone();
            sc.spawn(move || {
                for _ in 0..30 {
                    s.append(
                        &format!("w-{w}"),
                        ExpectedVersion::Any,
                        &[NewEvent::new("E", vec![])],
                    )
                    .unwrap();
                }
            });
        }
    });
    let (commits, appends) = t.store.commit_stats();
    assert_eq!(appends, 16 * 30);
    assert!(commits < appends, "{commits} commits for {appends} appends");
    let all: Vec<_> = t.store.read_all(0).map(Result::unwrap).collect();
    assert!(all.iter().enumerate().all(|(i, e)| e.position == i as u64));
}
