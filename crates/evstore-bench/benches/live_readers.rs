//! Readers in other processes (docs/FORMAT.md §10), each figure beside its in-process baseline
//! measured in the same run:
//!
//! 1. append-to-reader latency, p50 and p99: one `Sync` writer appends events stamped with the
//!    wall clock; a subscription in a reader process and one in the writer's process both
//!    measure when each event reaches them. Two paces: back to back, and one append every
//!    10 ms (the reader's poll has backed off between events).
//! 2. `read_all` throughput of a read-only store in another process, beside the writer's own.
//! 3. the writer's append throughput (4 threads, `Sync`, batch 1) with 0 and with 4 reader
//!    processes following it (caught up before the timed run), alternated in rounds.
//!
//! ```sh
//! cargo bench -p evstore-bench --bench live_readers            # ~1 min
//! cargo bench -p evstore-bench --bench live_readers -- --test  # CI smoke: tiny, untimed
//! ```
//! The test binary re-executes itself as the reader processes (`EVSTORE_LIVE_BENCH_ROLE`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store};

const ROLE: &str = "EVSTORE_LIVE_BENCH_ROLE";
const PATH: &str = "EVSTORE_LIVE_BENCH_PATH";
const COUNT: &str = "EVSTORE_LIVE_BENCH_COUNT";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn reader_options() -> Options {
    Options {
        read_only: true,
        lock_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

fn writer_options() -> Options {
    Options {
        durability: Durability::Sync,
        ..Options::default()
    }
}

/// Latencies (µs) of `count` stamped events, as a subscription from position `from` sees them.
fn measure_latencies(store: &Store, from: u64, count: u64) -> Vec<u64> {
    let mut sub = Subscription::new(store, from, SubscriptionFilter::all());
    let mut out = Vec::with_capacity(count as usize);
    let deadline = Instant::now() + Duration::from_secs(300);
    while (out.len() as u64) < count && Instant::now() < deadline {
        if let Ok(Some(e)) = sub.next_timeout(Duration::from_millis(100)) {
            let seen = now_ns();
            let sent = e
                .data
                .first_chunk::<8>()
                .map_or(seen, |b| u64::from_le_bytes(*b));
            out.push(seen.saturating_sub(sent) / 1000);
        }
    }
    out
}

/// The reader processes' work, chosen by `ROLE`.
fn child(role: &str) {
    let path = std::env::var(PATH).unwrap_or_default();
    let count: u64 = std::env::var(COUNT)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let store = Store::open_with(&path, reader_options()).expect("reader opens");
    if role != "follow" {
        println!("READY");
        let _ = std::io::stdout().flush();
    }
    match role {
        "latency" => {
            let from = store.head_position().map_or(0, |h| h + 1);
            let lat = measure_latencies(&store, from, count);
            let joined: Vec<String> = lat.iter().map(u64::to_string).collect();
            println!("LAT {}", joined.join(","));
        }
        "read_all" => {
            let t = Instant::now();
            let n = store.read_all(0).filter(Result::is_ok).count();
            println!("READ {n} {}", t.elapsed().as_nanos());
        }
        "follow" => {
            // Follow until told to stop (stdin closes).
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                s2.store(true, Ordering::Relaxed);
            });
            let mut sub = Subscription::new(&store, 0, SubscriptionFilter::all());
            let mut n = 0u64;
            // Catch up first: the measurement is of following, not of reading the backlog.
            let end = store.head_position().map_or(0, |h| h + 1);
            while sub.next_position() < end {
                if let Ok(Some(_)) = sub.next_timeout(Duration::from_millis(50)) {
                    n += 1;
                }
            }
            println!("READY");
            let _ = std::io::stdout().flush();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(_)) = sub.next_timeout(Duration::from_millis(50)) {
                    n += 1;
                }
            }
            println!("FOLLOWED {n}");
        }
        _ => {}
    }
}

fn spawn(
    role: &str,
    path: &Path,
    count: u64,
) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut c = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, role)
        .env(PATH, path)
        .env(COUNT, count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn reader");
    let mut lines = BufReader::new(c.stdout.take().expect("piped")).lines();
    wait_for(&mut lines, "READY");
    (c, lines)
}

fn wait_for(lines: &mut impl Iterator<Item = std::io::Result<String>>, tag: &str) -> String {
    for l in lines.by_ref().map_while(Result::ok) {
        if let Some(at) = l.find(tag) {
            return l[at + tag.len()..].trim().to_string();
        }
    }
    panic!("reader ended before {tag}");
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Section 1 at one pace: (cross-process p50, p99, in-process p50, p99) in µs.
fn latency(dir: &Path, count: u64, pace: Option<Duration>) -> (u64, u64, u64, u64) {
    let path = dir.join(format!("lat-{}.evs", pace.map_or(0, |p| p.as_millis())));
    let store = Arc::new(Store::open_with(&path, writer_options()).expect("writer"));
    store
        .append("warm", ExpectedVersion::Any, &[NewEvent::new("W", vec![0])])
        .expect("append");
    let (mut child, mut lines) = spawn("latency", &path, count);
    let from = store.head_position().map_or(0, |h| h + 1);
    let local = {
        let store = store.clone();
        std::thread::spawn(move || measure_latencies(&store, from, count))
    };
    for i in 0..count {
        let data = now_ns().to_le_bytes().to_vec();
        store
            .append(
                &format!("l-{}", i % 16),
                ExpectedVersion::Any,
                &[NewEvent::new("L", data)],
            )
            .expect("append");
        if let Some(p) = pace {
            std::thread::sleep(p);
        }
    }
    let mut remote: Vec<u64> = wait_for(&mut lines, "LAT ")
        .split(',')
        .filter_map(|x| x.parse().ok())
        .collect();
    let _ = child.wait();
    let mut local = local.join().expect("local subscriber");
    remote.sort_unstable();
    local.sort_unstable();
    (
        percentile(&remote, 0.5),
        percentile(&remote, 0.99),
        percentile(&local, 0.5),
        percentile(&local, 0.99),
    )
}

/// Section 2: (events, cross-process events/s, in-process events/s).
fn read_all(dir: &Path, events: u64) -> (u64, f64, f64) {
    let path = dir.join("read.evs");
    let store = Store::open_with(&path, writer_options()).expect("writer");
    for i in 0..events / 100 {
        // Fresh event ids per append: a repeated batch would be an idempotent retry.
        let batch: Vec<NewEvent> = (0..100)
            .map(|_| NewEvent::new("R", vec![7u8; 100]))
            .collect();
        store
            .append(&format!("r-{}", i % 1000), ExpectedVersion::Any, &batch)
            .expect("append");
    }
    let t = Instant::now();
    let n = store.read_all(0).filter(Result::is_ok).count();
    let local = n as f64 / t.elapsed().as_secs_f64();
    let (mut child, mut lines) = spawn("read_all", &path, 0);
    let r = wait_for(&mut lines, "READ ");
    let _ = child.wait();
    let mut it = r.split(' ');
    let rn: f64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let ns: f64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(1.0);
    (n as u64, rn / (ns / 1e9), local)
}

/// Appends/s of 4 `Sync` threads for `secs`.
fn append_rate(store: &Arc<Store>, run: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    store
                        .append(
                            &format!("a-{t}"),
                            ExpectedVersion::Any,
                            &[NewEvent::new("A", vec![1u8; 100])],
                        )
                        .expect("append");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        let _ = th.join();
    }
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

/// Section 3: median appends/s with 0 and with 4 following reader processes.
fn writer_with_readers(dir: &Path, rounds: usize, run: Duration) -> (f64, f64) {
    let path = dir.join("w.evs");
    let store = Arc::new(Store::open_with(&path, writer_options()).expect("writer"));
    let (mut alone, mut followed) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so a drift in the disk's speed hits both alike.
        if round % 2 == 0 {
            alone.push(append_rate(&store, run));
        }
        let readers: Vec<_> = (0..4).map(|_| spawn("follow", &path, 0)).collect();
        followed.push(append_rate(&store, run));
        for (mut c, mut lines) in readers {
            drop(c.stdin.take());
            let _ = wait_for(&mut lines, "FOLLOWED ");
            let _ = c.wait();
        }
        if round % 2 == 1 {
            alone.push(append_rate(&store, run));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut alone), median(&mut followed))
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let test = std::env::args().any(|a| a == "--test");
    let dir = common::bench_dir();
    let (count, paced, events, rounds, run) = if test {
        (20, 5, 1_000, 1, Duration::from_millis(100))
    } else {
        (2_000, 300, 500_000, 6, Duration::from_secs(2))
    };
    let mut report = String::from(
        "| measure | reader in another process | in-process baseline | ratio |\n| --- | --- | --- | --- |\n",
    );
    let (p50, p99, l50, l99) = latency(dir.path(), count, None);
    report += &format!(
        "| append→reader latency, back to back ({count} events): p50 / p99 | {p50} / {p99} µs | {l50} / {l99} µs | {:.1}× / {:.1}× |\n",
        p50 as f64 / l50.max(1) as f64,
        p99 as f64 / l99.max(1) as f64
    );
    let (p50, p99, l50, l99) = latency(dir.path(), paced, Some(Duration::from_millis(10)));
    report += &format!(
        "| append→reader latency, one append per 10 ms ({paced} events): p50 / p99 | {p50} / {p99} µs | {l50} / {l99} µs | {:.1}× / {:.1}× |\n",
        p50 as f64 / l50.max(1) as f64,
        p99 as f64 / l99.max(1) as f64
    );
    let (n, remote, local) = read_all(dir.path(), events);
    report += &format!(
        "| read_all of {n} events (100-byte payloads), events/s | {:.0} | {local:.0} | {:.2}× |\n",
        remote,
        remote / local
    );
    let (alone, followed) = writer_with_readers(dir.path(), rounds, run);
    report += &format!(
        "| writer appends/s (4 threads, Sync, batch 1), medians of {rounds} rounds | {followed:.0} with 4 readers following | {alone:.0} with none | {:.3}× |\n",
        followed / alone
    );
    println!("{report}");
}
