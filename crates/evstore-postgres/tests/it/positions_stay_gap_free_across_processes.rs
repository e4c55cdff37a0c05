//! Gap-free global order: 16 writer threads spread over three processes and two stores per
//! process append concurrently while three subscribers (each on its own store) follow the log;
//! every subscriber sees every position exactly once, in order, whatever order the
//! transactions commit in.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{ExpectedVersion, NewEvent};
use evstore_postgres::testing::TestStore;
use evstore_postgres::PgStore;

/// Set in a child process: the schema to write to and the child's number.
const CHILD_ENV: &str = "EVSTORE_PG_GAP_FREE_CHILD";
const APPENDS_PER_THREAD: usize = 50;
const THREADS_PER_PROCESS: usize = 4;

/// Events one writer thread appends: batches of 3 every fifth append, else single events.
fn events_per_thread() -> u64 {
    (0..APPENDS_PER_THREAD)
        .map(|i| if i % 5 == 0 { 3 } else { 1 })
        .sum()
}

/// `THREADS_PER_PROCESS` writer threads on `store`, streams named after `tag`.
fn write(store: &Arc<PgStore>, tag: &str) {
    std::thread::scope(|sc| {
        for th in 0..THREADS_PER_PROCESS {
            let store = store.clone();
            sc.spawn(move || {
                for i in 0..APPENDS_PER_THREAD {
                    let n = if i % 5 == 0 { 3 } else { 1 };
                    let batch: Vec<NewEvent> = (0..n).map(|_| NewEvent::new("W", vec![])).collect();
                    // Streams shared by threads: expected-version checks race too.
                    let stream = format!("{tag}-{}", (th + i) % 3);
                    store.append(&stream, ExpectedVersion::Any, &batch).unwrap();
                }
            });
        }
    });
}

/// The child processes' body: runs only when started by the test below with `CHILD_ENV` set
/// (in a normal run it has nothing to do and returns at once).
#[test]
fn child_process_entry_point() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (schema, child) = spec.split_once(':').expect("schema:child");
    let url = std::env::var("EVSTORE_PG_URL").expect("the parent passes the URL");
    let store = Arc::new(PgStore::connect_with(&url, TestStore::options(schema)).unwrap());
    write(&store, &format!("child{child}"));
}

#[test]
fn sixteen_writers_in_three_processes_and_three_subscribers() {
    let Some(t) = TestStore::fresh("sixteen_writers_in_three_processes_and_three_subscribers")
    else {
        return;
    };
    let total = 4 * THREADS_PER_PROCESS as u64 * events_per_thread();
    let subscribers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::new(t.connect_again());
            std::thread::spawn(move || {
                let mut sub = Subscription::new(store, 0, SubscriptionFilter::all());
                let deadline = Instant::now() + Duration::from_secs(180);
                let mut positions = Vec::new();
                while (positions.len() as u64) < total && Instant::now() < deadline {
                    if let Some(e) = sub.next_timeout(Duration::from_millis(200)).unwrap() {
                        positions.push(e.position);
                    }
                }
                positions
            })
        })
        .collect();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|c| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "positions_stay_gap_free_across_processes::child_process_entry_point",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}:{c}", t.store.schema()))
                .env("EVSTORE_PG_URL", &t.url)
                .spawn()
                .unwrap()
        })
        .collect();
    let second = Arc::new(t.connect_again());
    std::thread::scope(|sc| {
        sc.spawn(|| write(&t.store, "a"));
        sc.spawn(|| write(&second, "b"));
    });
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child writer failed");
    }
    for s in subscribers {
        let positions = s.join().unwrap();
        assert_eq!(positions.len() as u64, total, "every event seen");
        assert!(
            positions.iter().enumerate().all(|(i, p)| *p == i as u64),
            "in order, no gap, no repeat"
        );
    }
    let all: Vec<_> = t.store.read_all(0).collect::<evstore::Result<_>>().unwrap();
    assert_eq!(all.len() as u64, total);
    assert!(all.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
}
