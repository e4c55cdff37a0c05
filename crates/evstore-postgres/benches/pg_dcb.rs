//! Issue #15 on PostgreSQL beside the file store, in the same run: the mean latency of one
//! `append_if` (a condition on a fresh tag; a condition on a tag every one of `N` earlier events
//! carries, checked after the head) and of one `append_multi` of 2 streams, against a plain
//! `append`, one thread, on a log preloaded with `N` tagged events; and one `read_query` of
//! `N / 1000` events.
//!
//! `EVSTORE_PG_URL=postgres://… cargo bench -p evstore-postgres --bench pg_dcb`
//! (`EVSTORE_BENCH_TAGGED` sets `N`, default 1,000,000; `-- --test`: a smoke run with 10,000).
//! Without `EVSTORE_PG_URL` only the file store is measured.
#![allow(
    missing_docs,
    clippy::pedantic,
    reason = "a benchmark program: its output is the documentation"
)]

use std::time::{Duration, Instant};

use evstore::{
    AppendCondition, EventStorage, ExpectedVersion, NewEvent, Query, QueryItem, Store, StreamAppend,
};
use evstore_postgres::{PgOptions, PgStore};

/// Preload `n` events, each tagged `hot` and `item:<i mod 1000>`, in batches of 10,000.
fn preload<S: EventStorage>(store: &S, n: usize) -> Duration {
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewEvent> = (i..n.min(i + 10_000))
            .map(|k| {
                NewEvent::new("Loaded", vec![7u8; 100])
                    .with_tags(["hot".to_string(), format!("item:{}", k % 1000)])
            })
            .collect();
        i += batch.len();
        store
            .append(&format!("load-{}", i % 64), ExpectedVersion::Any, &batch)
            .expect("preload");
    }
    start.elapsed()
}

/// Mean duration of `iters` calls of `f(i)`.
fn mean(iters: usize, mut f: impl FnMut(usize)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    start.elapsed() / iters as u32
}

fn event() -> NewEvent {
    NewEvent::new("Bench", vec![7u8; 100])
}

/// One backend's row: (append, append_if fresh tag, append_if hot tag, append_multi 2,
/// read_query of n/1000 events).
fn measure<S: EventStorage>(store: &S, head: Option<u64>, iters: usize) -> [Duration; 5] {
    let append = mean(iters, |_| {
        store
            .append("plain", ExpectedVersion::Any, &[event()])
            .expect("append");
    });
    let fresh = mean(iters, |i| {
        let tag = format!("user:{i}");
        let q = Query::new(vec![QueryItem::new(&["Claimed"], &[tag.as_str()])]);
        store
            .append_if(
                "claims",
                ExpectedVersion::Any,
                &[NewEvent::new("Claimed", vec![7u8; 100]).with_tags([tag.as_str()])],
                &AppendCondition::new(q, head),
            )
            .expect("append_if fresh");
    });
    let hot_q = Query::new(vec![QueryItem::new(&["Loaded"], &["hot"])]);
    // `after` is the head: the last append's position (one thread appends).
    let (_, mut after) = store.read_query(&Query::new(vec![]), None).expect("head");
    let hot = mean(iters, |_| {
        let r = store
            .append_if(
                "hot",
                ExpectedVersion::Any,
                &[event()],
                &AppendCondition::new(hot_q.clone(), after),
            )
            .expect("append_if hot");
        after = Some(r.last_position);
    });
    let multi = mean(iters, |_| {
        store
            .append_multi(&[
                StreamAppend::new("m-1", ExpectedVersion::Any, vec![event()]),
                StreamAppend::new("m-2", ExpectedVersion::Any, vec![event()]),
            ])
            .expect("append_multi");
    });
    let item = Query::new(vec![QueryItem::new(&[], &["item:7"])]);
    let read = mean(iters.min(20), |_| {
        store.read_query(&item, None).expect("read_query");
    });
    [append, fresh, hot, multi, read]
}

fn row(name: &str, n: usize, load: Duration, r: [Duration; 5]) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ratio = |d: Duration| us(d) / us(r[0]);
    println!(
        "| {name} | {n} | {:.1} | {:.0} | {:.0} ({:.2}×) | {:.0} ({:.2}×) | {:.0} ({:.2}×) | {:.1} |",
        load.as_secs_f64(),
        us(r[0]),
        us(r[1]),
        ratio(r[1]),
        us(r[2]),
        ratio(r[2]),
        us(r[3]),
        ratio(r[3]),
        us(r[4]) / 1000.0,
    );
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let n: usize = if smoke {
        10_000
    } else {
        std::env::var("EVSTORE_BENCH_TAGGED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000)
    };
    let iters = if smoke { 10 } else { 200 };
    println!(
        "| backend | tagged events | preload s | append µs | append_if fresh tag µs | \
         append_if hot tag µs | append_multi 2 µs | read_query {} events ms |",
        n / 1000
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = Store::open(dir.path().join("dcb.evs")).expect("open");
    let load = preload(&file, n);
    let head = file.head_position();
    row("file (Sync)", n, load, measure(&file, head, iters));
    drop(file);
    let Some(url) = std::env::var("EVSTORE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("pg_dcb: EVSTORE_PG_URL is not set: measured the file store only");
        return;
    };
    let pg = PgStore::connect_with(
        &url,
        PgOptions {
            schema: Some(format!("bench_{}", uuid::Uuid::new_v4().simple())),
            ..PgOptions::default()
        },
    )
    .expect("connect");
    let load = preload(&pg, n);
    pg.connection()
        .expect("connection")
        .batch_execute("ANALYZE evstore_events; ANALYZE evstore_event_tags")
        .expect("analyze");
    let head = pg.head_position().expect("head");
    let r = measure(&pg, head, iters);
    pg.drop_schema().expect("drop schema");
    row("postgres", n, load, r);
}
