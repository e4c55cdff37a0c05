//! A catch-up subscription sees every position exactly once, in order, while several threads
//! append concurrently; several subscribers each go at their own pace.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, RecordedEvent, Store};

const APPENDERS: usize = 4;

fn run(durability: Durability, batches_per_appender: usize, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            dir.path().join("sub.evs"),
            Options {
                durability,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let total = (APPENDERS * batches_per_appender * batch) as u64;

    // Subscriber 1: everything, as fast as it can, started before any append.
    let fast = {
        let store = store.clone();
        thread::spawn(move || {
            let mut sub = Subscription::new(store, 0, SubscriptionFilter::all());
            let mut seen: Vec<RecordedEvent> = Vec::with_capacity(total as usize);
            let deadline = Instant::now() + Duration::from_secs(300);
            while (seen.len() as u64) < total {
                assert!(
                    Instant::now() < deadline,
                    "subscriber timed out at {}",
                    seen.len()
                );
                if let Some(e) = sub.next_timeout(Duration::from_millis(200)).unwrap() {
                    seen.push(e);
                }
            }
            // Nothing more arrives.
            assert!(sub
                .next_timeout(Duration::from_millis(50))
                .unwrap()
                .is_none());
            assert_eq!(sub.next_position(), total);
            seen
        })
    };
    // Subscriber 2: only appender 0's stream, slowly (sleeps now and then), through the
    // blocking iterator.
    let slow = {
        let store = store.clone();
        thread::spawn(move || {
            let sub = Subscription::new(
                store,
                0,
                SubscriptionFilter::all().with_stream_prefix("writer-0"),
            );
            let want = (batches_per_appender * batch) as u64;
            let mut versions = Vec::new();
            for e in sub.take(want as usize) {
                let e = e.unwrap();
                assert_eq!(e.stream_id, "writer-0");
                versions.push(e.version);
                if versions.len() % 5_000 == 0 {
                    thread::sleep(Duration::from_millis(20));
                }
            }
            versions
        })
    };

    let started = Instant::now();
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|w| {
            let store = store.clone();
            thread::spawn(move || {
                let stream = format!("writer-{w}");
                for b in 0..batches_per_appender {
                    let events: Vec<NewEvent> = (0..batch)
                        .map(|i| NewEvent::new("Tick", ((b * batch + i) as u64).to_le_bytes()))
                        .collect();
                    store
                        .append(&stream, ExpectedVersion::Any, &events)
                        .unwrap();
                }
            })
        })
        .collect();
    for a in appenders {
        a.join().unwrap();
    }
    let append_time = started.elapsed();

    let seen = fast.join().unwrap();
    // Every position exactly once, in order.
    for (i, e) in seen.iter().enumerate() {
        assert_eq!(e.position, i as u64, "position {i}");
    }
    // And per stream, every version once, in order, carrying the payload written there.
    let mut next_version: HashMap<&str, u64> = HashMap::new();
    for e in &seen {
        let v = next_version.entry(e.stream_id.as_str()).or_insert(0);
        assert_eq!(e.version, *v, "{} version", e.stream_id);
        assert_eq!(e.data, v.to_le_bytes());
        *v += 1;
    }
    assert_eq!(next_version.len(), APPENDERS);
    assert!(next_version
        .values()
        .all(|&n| n == (batches_per_appender * batch) as u64));

    let versions = slow.join().unwrap();
    assert!(versions.iter().enumerate().all(|(i, &v)| v == i as u64));
    eprintln!(
        "{durability:?}: {total} events by {APPENDERS} appenders in {append_time:?}; subscribers saw all"
    );
}

#[test]
fn subscriber_sees_every_position_once_in_order_buffered_100k() {
    run(Durability::Buffered, 500, 50);
}

#[test]
fn subscriber_sees_every_position_once_in_order_sync() {
    run(Durability::Sync, 200, 5);
}

#[test]
fn subscription_resumes_from_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("r.evs")).unwrap();
    for i in 0..10u8 {
        store
            .append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![i])])
            .unwrap();
    }
    let mut sub = Subscription::new(&store, 0, SubscriptionFilter::all()).with_batch_size(3);
    let first = sub.next_batch(4, Duration::ZERO).unwrap();
    assert_eq!(first.len(), 4);
    let resumed = Subscription::new(&store, sub.next_position(), SubscriptionFilter::all())
        .next_batch(100, Duration::ZERO)
        .unwrap();
    let positions: Vec<u64> = first.iter().chain(&resumed).map(|e| e.position).collect();
    assert_eq!(positions, (0..10).collect::<Vec<_>>());
}
