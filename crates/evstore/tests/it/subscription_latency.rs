//! Measurement (ignored by default; run in release):
//! `cargo test --release --test subscription_latency -- --ignored --nocapture`
//!
//! End-to-end latency append → subscriber under `Durability::Sync`: the time from calling
//! `append` until a subscriber blocked in `next_timeout` holds the event (includes the fsync).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{ExpectedVersion, NewEvent, Store};

const N: usize = 1_000;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn append_to_subscriber_latency_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("lat.evs")).unwrap());
    let origin = Instant::now();
    let subscriber = {
        let store = store.clone();
        thread::spawn(move || {
            let mut sub = Subscription::new(store, 0, SubscriptionFilter::all());
            let mut lat = Vec::with_capacity(N);
            while lat.len() < N {
                if let Some(e) = sub.next_timeout(Duration::from_secs(10)).unwrap() {
                    let now = origin.elapsed().as_nanos() as u64;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&e.data[..8]);
                    lat.push(Duration::from_nanos(now - u64::from_le_bytes(b)));
                } else {
                    panic!("subscriber starved");
                }
            }
            lat
        })
    };
    let mut append_lat = Vec::with_capacity(N);
    for _ in 0..N {
        let sent = origin.elapsed();
        let data = (sent.as_nanos() as u64).to_le_bytes();
        store
            .append("lat", ExpectedVersion::Any, &[NewEvent::new("Ping", data)])
            .unwrap();
        append_lat.push(origin.elapsed() - sent);
    }
    let mut lat = subscriber.join().unwrap();
    lat.sort();
    append_lat.sort();
    println!(
        "Sync, {N} sequential appends: append→subscriber p50 {:?} p99 {:?} max {:?}; \
         append call alone (fdatasync) p50 {:?} p99 {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[N - 1],
        pct(&append_lat, 0.5),
        pct(&append_lat, 0.99)
    );
}
