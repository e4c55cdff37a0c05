//! Appends per second (1 and 16 threads, batches of 1 and 100 events) and append-to-subscriber
//! latency (p50, p99) on PostgreSQL beside the file store, measured in the same run.
//!
//! `EVSTORE_PG_URL=postgres://… cargo bench -p evstore-postgres --bench pg_vs_file`
//! (`-- --test`: a short smoke run; `EVSTORE_BENCH_SECONDS` sets each throughput run's length,
//! default 3). Without `EVSTORE_PG_URL` only the file store is measured.
#![allow(
    missing_docs,
    clippy::pedantic,
    reason = "a benchmark program: its output is the documentation"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::subscription::{EventSource, Subscription, SubscriptionFilter};
use evstore::{EventStorage, ExpectedVersion, NewEvent, Store};
use evstore_postgres::{PgOptions, PgStore};
use parking_lot::Mutex;

/// 100 bytes of payload, as the file store's core benches use.
fn event() -> NewEvent {
    NewEvent::new("Bench", vec![7u8; 100])
}

/// Events appended per second by `threads` threads appending batches of `batch` events for
/// `secs`.
fn throughput<S: EventStorage + 'static>(
    store: Arc<S>,
    threads: usize,
    batch: usize,
    secs: f64,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let (store, stop, count) = (store.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let events: Vec<NewEvent> = (0..batch).map(|_| event()).collect();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let fresh: Vec<NewEvent> = events
                        .iter()
                        .map(|e| NewEvent::new(e.event_type.clone(), e.data.clone()))
                        .collect();
                    store
                        .append(
                            &format!("bench-{t}-{}", i % 64),
                            ExpectedVersion::Any,
                            &fresh,
                        )
                        .expect("append");
                    count.fetch_add(batch as u64, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.join().expect("writer");
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Latency from the start of an append to its delivery by a subscription on `reader`:
/// (p50, p99) over `n` single-event appends paced 2 ms apart.
fn latency<W: EventStorage + EventSource + 'static, R: EventSource + 'static>(
    writer: Arc<W>,
    reader: R,
    n: usize,
) -> (Duration, Duration) {
    let from = writer.head_position().map_or(0, |h| h + 1);
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let sub_sent = sent.clone();
    let sub = std::thread::spawn(move || {
        let mut sub = Subscription::new(reader, from, SubscriptionFilter::all());
        let mut lat = Vec::with_capacity(n);
        let deadline = Instant::now() + Duration::from_secs(120);
        while lat.len() < n && Instant::now() < deadline {
            if let Some(e) = sub
                .next_timeout(Duration::from_millis(500))
                .expect("subscription")
            {
                let now = Instant::now();
                // The writer records the start before it appends; wait for the entry.
                loop {
                    if let Some(t) = sub_sent.lock().get(&e.position) {
                        lat.push(now.duration_since(*t));
                        break;
                    }
                    std::thread::yield_now();
                }
            }
        }
        lat
    });
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..n {
        let start = Instant::now();
        // The position is the head + 1: one writer.
        let pos = from + i as u64;
        sent.lock().insert(pos, start);
        let r = writer
            .append("latency", ExpectedVersion::Any, &[event()])
            .expect("append");
        assert_eq!(r.first_position, pos, "one writer");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut lat = sub.join().expect("subscriber");
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    (pick(0.50), pick(0.99))
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let secs: f64 = if smoke {
        0.2
    } else {
        std::env::var("EVSTORE_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0)
    };
    let lat_n = if smoke { 20 } else { 1000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let pg_url = std::env::var("EVSTORE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if pg_url.is_none() {
        eprintln!("pg_vs_file: EVSTORE_PG_URL is not set: measuring the file store only");
    }
    println!("| backend | threads | batch | events/s | |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for (threads, batch) in [(1, 1), (16, 1), (1, 100), (16, 100)] {
        let file = Arc::new(
            Store::open(dir.path().join(format!("t{threads}-b{batch}.evs"))).expect("open"),
        );
        let f = throughput(file, threads, batch, secs);
        println!("| file (Sync) | {threads} | {batch} | {f:.0} | |");
        if let Some(url) = &pg_url {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let pg = Arc::new(
                PgStore::connect_with(
                    url,
                    PgOptions {
                        schema: Some(schema),
                        pool_size: 20,
                        ..PgOptions::default()
                    },
                )
                .expect("connect"),
            );
            let p = throughput(pg.clone(), threads, batch, secs);
            let (commits, appends) = pg.commit_stats();
            println!(
                "| postgres | {threads} | {batch} | {p:.0} | {:.1} appends per commit |",
                appends as f64 / commits.max(1) as f64
            );
            pg.drop_schema().expect("drop schema");
            if threads > 1 {
                let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                let solo = Arc::new(
                    PgStore::connect_with(
                        url,
                        PgOptions {
                            schema: Some(schema),
                            pool_size: 20,
                            group_commit: false,
                            ..PgOptions::default()
                        },
                    )
                    .expect("connect"),
                );
                let q = throughput(solo.clone(), threads, batch, secs);
                println!("| postgres, no group commit | {threads} | {batch} | {q:.0} | 1 |");
                solo.drop_schema().expect("drop schema");
            }
        }
    }
    println!();
    println!("| backend | subscriber | p50 | p99 |");
    println!("| --- | --- | ---: | ---: |");
    let file = Arc::new(Store::open(dir.path().join("latency.evs")).expect("open"));
    let (p50, p99) = latency(file.clone(), file, lat_n);
    println!("| file (Sync) | same store, condition variable | {p50:.2?} | {p99:.2?} |");
    if let Some(url) = &pg_url {
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let opts = PgOptions {
            schema: Some(schema),
            ..PgOptions::default()
        };
        let writer = Arc::new(PgStore::connect_with(url, opts.clone()).expect("connect"));
        // Another store object (its own pool and LISTEN connection), as another process has:
        // woken by NOTIFY, not by the writer's in-process signal.
        let reader = PgStore::connect_with(url, opts).expect("connect");
        let (p50, p99) = latency(writer.clone(), reader, lat_n);
        println!("| postgres | another connection, LISTEN/NOTIFY | {p50:.2?} | {p99:.2?} |");
        writer.drop_schema().expect("drop schema");
    }
}
