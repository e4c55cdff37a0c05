//! Core engine benchmarks: append throughput (Buffered and Sync, 1 and 8 threads), raw file
//! baselines measured in the same run, and `Store::open` (recovery scan + index rebuild).
//!
//! Run: `CARGO_TARGET_DIR=/work/main/target-bench cargo bench --bench core`
//! Smoke: `CARGO_TARGET_DIR=/work/main/target-bench cargo bench --bench core -- --test`
//!
//! Every event is a 100-byte payload, a 10-byte type and a 20-byte stream id, so a batch of
//! one takes 200 bytes on disk (docs/FORMAT.md §3). Results and their reading are in
//! docs/PERFORMANCE.md. Lines starting with `STATS` report `Store::stats()` deltas.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{bench_dir, stream_id};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store, StoreStats};
use tempfile::TempDir;
use uuid::Uuid;

const PAYLOAD: usize = 100;
const EVENT_TYPE: &str = "BenchEvent"; // 10 bytes
/// On-disk bytes of a one-event append (20-byte stream, 10-byte type, 100-byte payload).
const FRAME_BYTES_BATCH1: usize = 200;
/// On-disk bytes of a ten-event append: align8(24 + 41 + 10 * 135).
const FRAME_BYTES_BATCH10: usize = 1416;
const THREADS: usize = 8;

fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn open_store(dir: &TempDir, durability: Durability) -> Store {
    Store::open_with(
        dir.path().join("bench.evs"),
        Options {
            durability,
            ..Options::default()
        },
    )
    .expect("open store")
}

/// `n` reusable events; ids are rewritten before every append (a repeated id would make the
/// append an idempotent retry that writes nothing).
fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|_| NewEvent::new(EVENT_TYPE, vec![0xA5u8; PAYLOAD]))
        .collect()
}

/// Appends batches to one stream with fresh ids from a counter (no RNG in the loop).
///
/// By default with `ExpectedVersion::Any`; with `exact`, with `Exact(last version)` (or
/// `NoStream` first), which skips the store's idempotent-retry check of the stream's tail.
struct Appender<'a> {
    store: &'a Store,
    stream: String,
    batch: Vec<NewEvent>,
    next_id: u128,
    exact: bool,
    version: Option<u64>,
}

impl<'a> Appender<'a> {
    fn new(store: &'a Store, stream: String, batch_size: usize, id_base: u128) -> Self {
        Appender {
            store,
            stream,
            batch: events(batch_size),
            next_id: id_base,
            exact: false,
            version: None,
        }
    }

    fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    fn append(&mut self) {
        for e in &mut self.batch {
            self.next_id += 1;
            e.event_id = Uuid::from_u128(self.next_id);
        }
        let expected = match (self.exact, self.version) {
            (false, _) => ExpectedVersion::Any,
            (true, None) => ExpectedVersion::NoStream,
            (true, Some(v)) => ExpectedVersion::Exact(v),
        };
        let r = self
            .store
            .append(&self.stream, expected, &self.batch)
            .expect("append");
        self.version = Some(black_box(r).last_version);
    }
}

fn stats_delta(before: StoreStats, after: StoreStats) -> (u64, u64, u64, u64) {
    (
        after.appends - before.appends,
        after.groups - before.groups,
        after.data_syncs - before.data_syncs,
        after.bytes_written - before.bytes_written,
    )
}

fn report(name: &str, store: &Store, before: StoreStats) {
    let (appends, groups, syncs, bytes) = stats_delta(before, store.stats());
    if appends == 0 {
        return; // filtered out
    }
    let per = |x: u64| x as f64 / appends.max(1) as f64;
    println!(
        "STATS {name}: appends={appends} groups={groups} data_syncs={syncs} \
         bytes_written={bytes} syncs/append={:.4} appends/group={:.2} bytes/append={:.1}",
        per(syncs),
        appends as f64 / groups.max(1) as f64,
        per(bytes),
    );
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn bench_append_buffered(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_buffered");
    for (batch, exact) in [(1usize, false), (10, false), (1, true), (10, true)] {
        let dir = bench_dir();
        let store = open_store(&dir, Durability::Buffered);
        let before = store.stats();
        let mut app = Appender::new(&store, stream_id(0), batch, 0);
        if exact {
            app = app.exact();
        }
        let name = format!("batch{batch}{}", if exact { "_exact" } else { "" });
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(&name, |b| b.iter(|| app.append()));
        report(&format!("append_buffered/{name}"), &store, before);
    }
    g.finish();
}

/// A file opened for appending (plain `write_all`, no user-space buffer).
fn raw_file(dir: &TempDir, name: &str) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join(name))
        .expect("raw file")
}

fn bench_raw_buffered(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_buffered");
    for (events, bytes) in [(1u64, FRAME_BYTES_BATCH1), (10, FRAME_BYTES_BATCH10)] {
        let dir = bench_dir();
        let mut f = raw_file(&dir, "raw.bin");
        let buf = vec![0x5Au8; bytes];
        g.throughput(Throughput::Elements(events));
        g.bench_function(format!("write_{bytes}B"), |b| {
            b.iter(|| f.write_all(black_box(&buf)).expect("write"))
        });
    }
    g.finish();
    paired_buffered();
}

/// Buffered appends vs raw writes under a noisy neighbour: alternate blocks of 1,000 evstore
/// appends and 1,000 raw `write_all`s of the same on-disk size, and report the median block
/// time of each. Not a criterion benchmark: prints `STATS` lines.
fn paired_buffered() {
    const BLOCK: usize = 1000;
    let blocks = if test_mode() { 3 } else { 100 };
    for (batch, bytes) in [(1usize, FRAME_BYTES_BATCH1), (10, FRAME_BYTES_BATCH10)] {
        let dir = bench_dir();
        let store = open_store(&dir, Durability::Buffered);
        let mut app = Appender::new(&store, stream_id(0), batch, 0);
        let mut f = raw_file(&dir, "raw.bin");
        let buf = vec![0x5Au8; bytes];
        let (mut ev, mut rw) = (Vec::new(), Vec::new());
        for _ in 0..blocks {
            let t = Instant::now();
            for _ in 0..BLOCK {
                app.append();
            }
            ev.push(t.elapsed());
            let t = Instant::now();
            for _ in 0..BLOCK {
                f.write_all(black_box(&buf)).expect("write");
            }
            rw.push(t.elapsed());
        }
        ev.sort();
        rw.sort();
        let (e, r) = (ev[blocks / 2], rw[blocks / 2]);
        let rate = |d: Duration| (BLOCK * batch) as f64 / d.as_secs_f64();
        println!(
            "STATS paired_buffered batch{batch} ({blocks} x {BLOCK} appends): evstore {:.0} \
             events/s, raw write_all {bytes} B {:.0} events/s, evstore/raw {:.2}",
            rate(e),
            rate(r),
            r.as_secs_f64() / e.as_secs_f64()
        );
    }
}

fn bench_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_sync");
    g.throughput(Throughput::Elements(1));
    {
        let dir = bench_dir();
        let store = open_store(&dir, Durability::Sync);
        let before = store.stats();
        let mut app = Appender::new(&store, stream_id(0), 1, 0);
        g.bench_function("1thread_batch1", |b| b.iter(|| app.append()));
        report("append_sync/1thread_batch1", &store, before);
    }
    {
        let dir = bench_dir();
        let store = open_store(&dir, Durability::Sync);
        let before = store.stats();
        let mut apps: Vec<Appender<'_>> = (0..THREADS)
            .map(|t| Appender::new(&store, stream_id(t), 1, (t as u128) << 64))
            .collect();
        g.bench_function(format!("{THREADS}threads_batch1"), |b| {
            // One iteration = one append; `iters` appends are split across the threads.
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for (t, app) in apps.iter_mut().enumerate() {
                        let n =
                            iters / THREADS as u64 + u64::from((t as u64) < iters % THREADS as u64);
                        s.spawn(move || {
                            for _ in 0..n {
                                app.append();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
        report(
            &format!("append_sync/{THREADS}threads_batch1"),
            &store,
            before,
        );
    }
    g.finish();

    let mut g = c.benchmark_group("raw_sync");
    g.throughput(Throughput::Elements(1));
    {
        // Appending to a growing file: every fdatasync also commits the new file size.
        let dir = bench_dir();
        let mut f = raw_file(&dir, "raw.bin");
        let buf = vec![0x5Au8; FRAME_BYTES_BATCH1];
        g.bench_function("write_fdatasync_200B", |b| {
            b.iter(|| {
                f.write_all(&buf).expect("write");
                f.sync_data().expect("fdatasync");
            })
        });
    }
    {
        let dir = bench_dir();
        let mut raw = PreallocRaw::new(&dir);
        g.bench_function("prealloc_pwrite_fdatasync_200B", |b| {
            b.iter(|| raw.append())
        });
    }
    g.finish();
    paired_sync();
}

/// Like evstore's log: pwrite of 200 bytes into space reserved with `posix_fallocate` (64 MiB
/// at a time, made durable with fsync), then fdatasync.
struct PreallocRaw {
    f: File,
    allocated: u64,
    off: u64,
    buf: Vec<u8>,
}

impl PreallocRaw {
    const SEGMENT: u64 = 64 << 20;

    fn new(dir: &TempDir) -> Self {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(dir.path().join("raw-prealloc.bin"))
            .expect("raw file");
        PreallocRaw {
            f,
            allocated: 0,
            off: 0,
            buf: vec![0x5Au8; FRAME_BYTES_BATCH1],
        }
    }

    fn append(&mut self) {
        use std::os::fd::AsRawFd;
        if self.off + self.buf.len() as u64 > self.allocated {
            // SAFETY: plain syscall on an open file descriptor.
            let rc = unsafe {
                libc::posix_fallocate(
                    self.f.as_raw_fd(),
                    self.allocated as i64,
                    Self::SEGMENT as i64,
                )
            };
            assert_eq!(rc, 0, "posix_fallocate");
            self.f.sync_all().expect("fsync");
            self.allocated += Self::SEGMENT;
        }
        self.f.write_all_at(&self.buf, self.off).expect("pwrite");
        self.f.sync_data().expect("fdatasync");
        self.off += self.buf.len() as u64;
    }
}

/// Sync latencies under a noisy neighbour: alternate one evstore Sync append and one raw
/// prealloc pwrite + fdatasync, and report the median of each, so both see the same
/// background load. Not a criterion benchmark: prints a `STATS` line.
fn paired_sync() {
    let rounds = if test_mode() { 5 } else { 2000 };
    let dir = bench_dir();
    let store = open_store(&dir, Durability::Sync);
    let mut app = Appender::new(&store, stream_id(0), 1, 0);
    let mut raw = PreallocRaw::new(&dir);
    let (mut ev, mut rw) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let t = Instant::now();
        app.append();
        ev.push(t.elapsed());
        let t = Instant::now();
        raw.append();
        rw.push(t.elapsed());
    }
    ev.sort();
    rw.sort();
    let (e, r) = (ev[rounds / 2], rw[rounds / 2]);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "STATS paired_sync ({rounds} rounds): evstore median {:.1} us (p90 {:.1}), raw prealloc \
         pwrite+fdatasync median {:.1} us (p90 {:.1}), evstore/raw throughput {:.2}",
        us(e),
        us(ev[rounds * 9 / 10]),
        us(r),
        us(rw[rounds * 9 / 10]),
        r.as_secs_f64() / e.as_secs_f64()
    );
}

/// Build a log of `n` events: appends of `batch` events, to `streams` streams round-robin.
/// Returns the bytes of log written.
fn build_log(dir: &TempDir, n: usize, batch: usize, streams: usize) -> u64 {
    let store = open_store(dir, Durability::Buffered);
    let mut events = events(batch);
    let ids: Vec<String> = (0..streams).map(stream_id).collect();
    let mut next_id = 0u128;
    for i in 0..n / batch {
        for e in &mut events {
            next_id += 1;
            e.event_id = Uuid::from_u128(next_id);
        }
        store
            .append(&ids[i % streams], ExpectedVersion::Any, &events)
            .expect("append");
    }
    let bytes = store.stats().bytes_written;
    store.close().expect("close");
    bytes
}

fn bench_open(c: &mut Criterion) {
    let n: usize = if test_mode() { 10_000 } else { 1_000_000 };
    let mut g = c.benchmark_group("open");
    g.throughput(Throughput::Elements(n as u64));
    // (name, events per append, streams): 100-event appends to 10,000 streams (100 events
    // each), and one-event appends to n/10 streams of 10 events (the index_memory layout).
    for (name, batch, streams) in [("batch100", 100usize, 10_000usize), ("batch1", 1, n / 10)] {
        let streams = streams.min(n / batch);
        // Built on first use, so a filtered run that skips this benchmark skips the setup.
        let mut log: Option<(TempDir, PathBuf)> = None;
        g.bench_function(format!("{}k_events_{name}", n / 1000), |b| {
            let (_, path) = log.get_or_insert_with(|| {
                let dir = bench_dir();
                let path = dir.path().join("bench.evs");
                let t = Instant::now();
                let bytes = build_log(&dir, n, batch, streams);
                println!(
                    "STATS open/{name} setup: events={n} streams={streams} log_bytes={bytes} \
                     ({:.1} bytes/event), built in {:.1} s",
                    bytes as f64 / n as f64,
                    t.elapsed().as_secs_f64()
                );
                (dir, path)
            });
            // Each opened store must be dropped (it holds the file lock) before the next
            // open; the drop is not timed.
            b.iter_batched(
                || (),
                |()| {
                    let s = Store::open_with(&*path, Options::default()).expect("open");
                    assert_eq!(s.recovery_report().events, n as u64);
                    s
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = core;
    config = config();
    targets = bench_append_buffered, bench_raw_buffered, bench_sync, bench_open
}
criterion_main!(core);
