//! Read-only stores in other processes follow a live writer (docs/FORMAT.md §10): they open
//! beside it, see every durable event once, in order, identical to what the writer wrote;
//! they survive segment growth, `kill -9` of the writer, and a writer that restarts and zeroes
//! a torn tail; a projection worker process catches up and then follows live.
//!
//! The test binary re-executes itself for the other side (`role_child`, driven by
//! environment variables): as the writer, as a reader, or as a projection worker.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{layout, Rng};
use evstore::projection::{checkpoint_path, Projection, ProjectionRunner};
use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Options, RecordedEvent, Store};
use serde::{Deserialize, Serialize};

const ROLE: &str = "EVSTORE_LIVE_ROLE";
const PATH: &str = "EVSTORE_LIVE_PATH";
const COUNT: &str = "EVSTORE_LIVE_COUNT";
const MODE: &str = "EVSTORE_LIVE_MODE";
const SEED: &str = "EVSTORE_LIVE_SEED";
/// Longest any follower waits for the events it expects.
const PATIENCE: Duration = Duration::from_secs(120);

fn writer_options(durability: Durability) -> Options {
    Options {
        durability,
        segment_size: 64 * 1024,
        ..Options::default()
    }
}

fn reader_options() -> Options {
    Options {
        read_only: true,
        lock_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The other side of every test here; does nothing unless started by one of them.
#[test]
fn role_child() {
    match env(ROLE).as_str() {
        "writer" => child_writer(),
        "reader" => child_reader(),
        "worker" => child_worker(),
        _ => {}
    }
}

fn spawn(role: &str, path: &std::path::Path, vars: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        &crate::common::test_name(module_path!(), "role_child"),
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(PATH, path)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Skip the child's output up to the first line holding `until`; returns that line from
/// `until` on (libtest may print "test ... " in front of the first line a test prints).
fn read_until(lines: &mut impl Iterator<Item = std::io::Result<String>>, until: &str) -> String {
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find(until) {
            return line[at..].to_string();
        }
    }
    panic!("child ended before printing {until}");
}

/// Appends `COUNT` events (1 to 4 per append, over 20 streams, some of them 3 KiB so 64 KiB
/// segments fill quickly) with `MODE` durability; Buffered flushes every 7 appends and at the
/// end. With `COUNT` 0 it appends until killed. Prints `READY` once the store is open and
/// `DONE` at the end.
fn child_writer() {
    let path = env(PATH);
    let count: u64 = env(COUNT).parse().unwrap_or(0);
    let never_flush = env(MODE) == "buffered-unflushed";
    let durability = if env(MODE).starts_with("buffered") {
        Durability::Buffered
    } else {
        Durability::Sync
    };
    let mut rng = Rng(env(SEED).parse().unwrap_or(7) | 1);
    let store = Store::open_with(&path, writer_options(durability)).unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut written = 0u64;
    let mut appends = 0u64;
    while count == 0 || written < count {
        let n = (1 + rng.below(4)).min(if count == 0 { 4 } else { count - written });
        let events: Vec<NewEvent> = (0..n)
            .map(|i| {
                let size = if rng.below(8) == 0 { 3000 } else { 40 };
                NewEvent::new(
                    format!("T{}", i % 3),
                    vec![(written % 251) as u8; size as usize],
                )
            })
            .collect();
        store
            .append(
                &format!("s-{}", rng.below(20)),
                ExpectedVersion::Any,
                &events,
            )
            .unwrap();
        written += n;
        appends += 1;
        if durability == Durability::Buffered && !never_flush && appends.is_multiple_of(7) {
            store.flush().unwrap();
        }
    }
    if never_flush {
        // Wait to be killed: nothing after open was ever published.
        println!("DONE {written}");
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(600));
    }
    store.close().unwrap();
    println!("DONE {written}");
}

/// Follows the log read-only until it has seen `COUNT` events, then prints a digest of them
/// (`SEEN <count> <digest>`).
fn child_reader() {
    let path = env(PATH);
    let count: u64 = env(COUNT).parse().unwrap_or(0);
    let store = Store::open_with(&path, reader_options()).unwrap();
    let seen = follow(&store, 0, count);
    println!("SEEN {} {:016x}", seen.len(), digest(&seen));
}

/// Every event from `from` on, through a subscription on the read-only `store`, until `count`
/// events in all are visible; checks that positions come once each, in order.
fn follow(store: &Store, from: u64, count: u64) -> Vec<RecordedEvent> {
    let mut sub = Subscription::new(store, from, SubscriptionFilter::all());
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    let mut expect = from;
    while expect < count {
        assert!(
            Instant::now() < deadline,
            "stuck at position {expect} of {count}"
        );
        if let Some(e) = sub.next_timeout(Duration::from_millis(200)).unwrap() {
            assert_eq!(e.position, expect, "every position once, in order");
            expect += 1;
            out.push(e);
        }
    }
    out
}

/// A digest of events (ids, streams, versions, positions, types, data, stamps).
fn digest(events: &[RecordedEvent]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in events {
        (
            e.event_id,
            &e.stream_id,
            e.version,
            e.position,
            &e.event_type,
            &e.data,
            &e.metadata,
            e.recorded_at,
        )
            .hash(&mut h);
    }
    h.finish()
}

fn events_of(path: &std::path::Path) -> Vec<RecordedEvent> {
    let s = Store::open_with(path, reader_options()).unwrap();
    crate::common::all_events(&s)
}

fn reader_follows_a_writer_process(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.evs");
    let count = 12_000u64;
    let mut child = spawn(
        "writer",
        &path,
        &[(COUNT, count.to_string()), (MODE, mode.to_string())],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "READY");
    let reader = Store::open_with(&path, reader_options()).unwrap();
    let seen = follow(&reader, 0, count);
    read_until(&mut lines, "DONE");
    assert!(child.wait().unwrap().success());
    let written = events_of(&path);
    assert_eq!(written.len() as u64, count);
    assert!(
        seen == written,
        "the reader saw exactly what the writer wrote"
    );
    assert!(
        reader.stats().segments > 10,
        "the writer grew segments while followed"
    );
}

#[test]
fn reader_follows_a_sync_writer_through_every_position() {
    reader_follows_a_writer_process("sync");
}

#[test]
fn reader_follows_a_buffered_writer_through_every_flushed_position() {
    reader_follows_a_writer_process("buffered");
}

/// Plant a torn write after the end of the log at `path` (a frame header for the next seq
/// with a wrong CRC, and garbage), as a crash in the middle of a write leaves it.
fn plant_torn_tail(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    let frames = layout::walk_frames(&bytes);
    let end = frames.last().map_or(layout::HEADER, |f| f.padded_end());
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    use std::os::unix::fs::FileExt;
    let garbage = [0xA5u8; 200];
    if end + 200 <= bytes.len() as u64 {
        f.write_all_at(&garbage, end).unwrap();
    }
}

#[test]
fn readers_survive_kill9_and_a_writer_restarting_after_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.evs");
    // Created first, so the reader can open before the first writer process starts.
    drop(Store::open_with(&path, writer_options(Durability::Sync)).unwrap());
    let reader = Store::open_with(&path, reader_options()).unwrap();
    let mut seen: Vec<RecordedEvent> = Vec::new();
    let mut rng = Rng(0x5eed_1234);
    for round in 0..6u64 {
        let mut child = spawn("writer", &path, &[(SEED, (round + 1).to_string())]);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        read_until(&mut lines, "READY");
        // Follow while it writes, then kill it at a random moment.
        let kill_at = Instant::now() + Duration::from_millis(20 + rng.below(150));
        let mut sub = Subscription::new(&reader, seen.len() as u64, SubscriptionFilter::all());
        while Instant::now() < kill_at {
            if let Some(e) = sub.next_timeout(Duration::from_millis(5)).unwrap() {
                assert_eq!(e.position, seen.len() as u64, "round {round}");
                seen.push(e);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if round % 2 == 1 {
            plant_torn_tail(&path);
        }
        // The reader refreshes across the dead writer without error.
        reader.refresh().unwrap();
        // A writer restarts (zeroing any torn tail in place) beside the open reader.
        let writer = Store::open_with(&path, writer_options(Durability::Sync)).unwrap();
        let all = crate::common::all_events(&writer);
        assert!(
            all.len() >= seen.len() && all[..seen.len()] == seen[..],
            "round {round}: everything the reader saw survived the crash"
        );
        writer
            .append(
                "after-restart",
                ExpectedVersion::Any,
                &[NewEvent::new("R", vec![1])],
            )
            .unwrap();
        let total = all.len() as u64 + 1;
        seen.extend(follow(&reader, seen.len() as u64, total));
        assert_eq!(
            digest(&seen),
            digest(&crate::common::all_events(&writer)),
            "round {round}: the reader matches the restarted writer"
        );
        drop(writer);
    }
    assert!(
        seen.len() > 100,
        "the writers wrote while followed: {}",
        seen.len()
    );
}

#[test]
fn a_reader_takes_what_a_killed_buffered_writer_left_unpublished() {
    // The writer never flushed, so it published nothing after its open; once it is dead, the
    // reader reads (and makes durable) what a fresh open would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unflushed.evs");
    let count = 500u64;
    let mut child = spawn(
        "writer",
        &path,
        &[
            (COUNT, count.to_string()),
            (MODE, "buffered-unflushed".into()),
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "READY");
    let reader = Store::open_with(&path, reader_options()).unwrap();
    read_until(&mut lines, "DONE");
    assert_eq!(
        reader.refresh().unwrap(),
        None,
        "a live writer published nothing"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reader.refresh().unwrap(), Some(count - 1));
    let seen = crate::common::all_events(&reader);
    assert!(seen == events_of(&path), "the same events as a fresh open");
    // A writer that opens next keeps them all and the reader follows it on.
    let w = Store::open_with(&path, writer_options(Durability::Sync)).unwrap();
    w.append(
        "next",
        ExpectedVersion::NoStream,
        &[NewEvent::new("N", vec![])],
    )
    .unwrap();
    assert_eq!(reader.refresh().unwrap(), Some(count));
}

#[test]
fn eight_reader_processes_follow_a_writer_growing_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.evs");
    let writer = Store::open_with(&path, writer_options(Durability::Sync)).unwrap();
    let count = 3_000u64;
    let readers: Vec<Child> = (0..8)
        .map(|_| spawn("reader", &path, &[(COUNT, count.to_string())]))
        .collect();
    let mut rng = Rng(99);
    let mut written = 0;
    while written < count {
        let n = (1 + rng.below(3)).min(count - written);
        let events: Vec<NewEvent> = (0..n)
            .map(|_| NewEvent::new("G", vec![7u8; if rng.below(5) == 0 { 2000 } else { 30 }]))
            .collect();
        writer
            .append(
                &format!("g-{}", rng.below(9)),
                ExpectedVersion::Any,
                &events,
            )
            .unwrap();
        written += n;
    }
    assert!(writer.stats().segments > 10, "segments grew while followed");
    let want = format!(
        "SEEN {count} {:016x}",
        digest(&crate::common::all_events(&writer))
    );
    for mut r in readers {
        let mut lines = BufReader::new(r.stdout.take().unwrap()).lines();
        let got = read_until(&mut lines, "SEEN");
        assert_eq!(got, want);
        assert!(r.wait().unwrap().success());
    }
}

/// Counts events per stream: the projection the worker process runs.
#[derive(Default, Serialize, Deserialize)]
struct PerStream {
    counts: BTreeMap<String, u64>,
    events: u64,
}

impl Projection for PerStream {
    const NAME: &'static str = "per-stream";
    const VERSION: u32 = 1;
    fn apply(&mut self, event: &RecordedEvent) {
        *self.counts.entry(event.stream_id.clone()).or_default() += 1;
        self.events += 1;
    }
}

/// Runs `PerStream` on a read-only store until it has applied `COUNT` events, printing
/// `CAUGHT_UP <n>` after its first catch-up and `COUNTS <json>` at the end.
fn child_worker() {
    let path = env(PATH);
    let count: u64 = env(COUNT).parse().unwrap_or(0);
    let store = Arc::new(Store::open_with(&path, reader_options()).unwrap());
    let cp = checkpoint_path(store.path(), PerStream::NAME);
    let mut runner = ProjectionRunner::<PerStream, _>::open(store, &cp).unwrap();
    let n = runner.catch_up().unwrap();
    println!("CAUGHT_UP {n}");
    std::io::stdout().flush().unwrap();
    let handle = runner.handle();
    let deadline = Instant::now() + PATIENCE;
    while handle.read(|p| p.events) < count {
        assert!(
            Instant::now() < deadline,
            "the worker did not follow the writer"
        );
        runner.step(512, Duration::from_millis(100)).unwrap();
    }
    runner.checkpoint().unwrap();
    let counts = handle.read(|p| serde_json::to_string(&p.counts).unwrap());
    println!("COUNTS {counts}");
}

#[test]
fn projection_worker_process_catches_up_then_follows_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("worker.evs");
    let writer = Store::open_with(&path, writer_options(Durability::Sync)).unwrap();
    let append = |i: u64| {
        writer
            .append(
                &format!("w-{}", i % 13),
                ExpectedVersion::Any,
                &[NewEvent::new("W", vec![1])],
            )
            .unwrap();
    };
    (0..2_000).for_each(append);
    let total = 4_000u64;
    let mut child = spawn("worker", &path, &[(COUNT, total.to_string())]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let caught = read_until(&mut lines, "CAUGHT_UP");
    assert_eq!(
        caught, "CAUGHT_UP 2000",
        "the first catch-up read what was there"
    );
    (2_000..total).for_each(append);
    let got = read_until(&mut lines, "COUNTS ");
    assert!(child.wait().unwrap().success());
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for e in crate::common::all_events(&writer) {
        *want.entry(e.stream_id).or_default() += 1;
    }
    assert_eq!(
        got,
        format!("COUNTS {}", serde_json::to_string(&want).unwrap())
    );
}

#[test]
fn readers_never_block_the_writer_and_a_second_writer_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("both.evs");
    drop(Store::open_with(&path, writer_options(Durability::Sync)).unwrap());
    let reader = Store::open_with(&path, reader_options()).unwrap();
    let writer = Store::open_with(&path, writer_options(Durability::Sync)).unwrap();
    assert!(matches!(
        Store::open_with(&path, writer_options(Durability::Sync)),
        Err(Error::Locked { .. })
    ));
    writer
        .append(
            "x",
            ExpectedVersion::NoStream,
            &[NewEvent::new("X", vec![])],
        )
        .unwrap();
    assert_eq!(reader.head_position(), None, "nothing before a refresh");
    assert_eq!(reader.refresh().unwrap(), Some(0));
    assert!(matches!(
        reader.append("x", ExpectedVersion::Any, &[NewEvent::new("X", vec![])]),
        Err(Error::ReadOnly)
    ));
    // Repair cuts files: it refuses while a reader may have the file mapped.
    drop(writer);
    assert!(matches!(
        evstore::maintenance::repair(&path),
        Err(Error::Locked { .. })
    ));
    drop(reader);
    evstore::maintenance::repair(&path).unwrap();
}
