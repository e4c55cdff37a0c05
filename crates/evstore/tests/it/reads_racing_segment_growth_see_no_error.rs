//! Every read path takes one consistent view of the index and the segment table: readers
//! racing an appender that keeps opening new segments (64 KiB segments, 1 KB events) never
//! see an error, in Sync and in Buffered mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use evstore::projection::{Projection, ProjectionRunner};
use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{Durability, ExpectedVersion, NewEvent, Store};
use serde::{Deserialize, Serialize};

/// How long the appender runs per durability mode.
const RUN_FOR: Duration = Duration::from_millis(2500);
const STREAMS: u64 = 8;

#[derive(Default, Serialize, Deserialize)]
struct Count {
    events: u64,
}

impl Projection for Count {
    const NAME: &'static str = "count";
    const VERSION: u32 = 1;
    fn apply(&mut self, _event: &evstore::RecordedEvent) {
        self.events += 1;
    }
}

/// One pass over every read path; any error fails the test.
fn read_everything(store: &Store, round: u64) {
    let stream = format!("s-{}", round % STREAMS);
    let events = store.read_stream(&stream, 0).unwrap();
    for (v, e) in events.iter().enumerate() {
        assert_eq!(e.version, v as u64);
    }
    let mut n = 0u64;
    store
        .read_stream_with(&stream, 0, u64::MAX, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    assert!(n >= events.len() as u64);
    let mut next = 0;
    for e in store.read_all(0) {
        assert_eq!(e.unwrap().position, next);
        next += 1;
    }
    let by_type = store.read_by_type("T", None).unwrap();
    assert!(by_type.len() as u64 >= next);
    let since = Utc::now() - chrono::Duration::milliseconds(5);
    for e in store.read_by_type("T", Some(since)).unwrap() {
        assert!(e.recorded_at >= since);
    }
    if let Some(head) = store.head_position() {
        let e = store.read_all(head).next().unwrap().unwrap();
        let id = store.event_id_at(&e.stream_id, e.version).unwrap();
        assert_eq!(id, Some(e.event_id));
    }
    // Snapshot validation reads the event id at the snapshot's version.
    let _ = store.load_snapshot(&stream).unwrap();
}

fn run(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            dir.path().join("race.evs"),
            crate::common::small_options(durability),
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..3u64 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.push(thread::spawn(move || {
            let mut round = r;
            while !stop.load(Ordering::Relaxed) {
                read_everything(&store, round);
                round += 1;
            }
            round
        }));
    }
    // A live subscription and a projection follow the appender.
    let follower = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut sub = Subscription::new(store.clone(), 0, SubscriptionFilter::all());
            let mut proj = ProjectionRunner::<Count, _>::open_beside(store).unwrap();
            let mut seen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(e) = sub.next_timeout(Duration::from_millis(20)).unwrap() {
                    assert_eq!(e.position, seen);
                    seen += 1;
                }
                proj.step(64, Duration::ZERO).unwrap();
            }
            seen
        })
    };
    let payload = vec![1u8; 1000];
    let started = Instant::now();
    let mut appended = 0u64;
    while started.elapsed() < RUN_FOR {
        let stream = format!("s-{}", appended % STREAMS);
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                &[NewEvent::new("T", payload.clone())],
            )
            .unwrap();
        appended += 1;
        if appended.is_multiple_of(50) {
            store
                .save_snapshot(
                    &stream,
                    0,
                    store.event_id_at(&stream, 0).unwrap().unwrap(),
                    b"s",
                )
                .unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    let seen = follower.join().unwrap();
    let segments = store.stats().segments;
    assert!(
        segments >= 4,
        "the appender crossed segment boundaries ({segments} segments)"
    );
    assert!(rounds > 0 && seen > 0);
    assert_eq!(store.read_all(0).count() as u64, appended);
}

#[test]
fn reads_racing_segment_growth_see_no_error_sync() {
    run(Durability::Sync);
}

#[test]
fn reads_racing_segment_growth_see_no_error_buffered() {
    run(Durability::Buffered);
}
