//! Atomic multi-stream appends and Dynamic Consistency Boundaries (issue #15), each figure
//! beside its baseline measured in the same run:
//!
//! 1. `append_multi` of 2 streams (1 event each) against two plain `append`s and against one
//!    `append` of 2 events; `append_if` (a condition on a tag no other event carries, `after`
//!    = the head) and a whole decision (`read_query` + `append_if`) against a plain `append`
//!    of the same tagged event. `Sync` and `Buffered`, 1 and 8 threads, every thread on its
//!    own streams. The variants run 150 ms each, back to back, in rounds (15 for `Sync`, 9
//!    for `Buffered`) whose order rotates; a figure is the median over the rounds, a ratio
//!    the median of the ratios taken within each round (the disk's fsync time drifts with
//!    other work on the machine; within a round it hits both sides alike).
//! 2. The cost of one condition check with 1M tagged events in the log (100k distinct tags,
//!    10 events each): `append_if` minus a plain `append` (`Buffered`, 1 thread) for a tag with
//!    10 occurrences and for a type-only query (a type with 1M events), and the time of
//!    `read_query` for that tag beside `read_stream` of a 10-event stream; medians over 7
//!    rounds of differences and ratios taken within each round.
//! 3. Open time per event of a 1M-event log with tags (one per event; 100k distinct, and 1M
//!    distinct) beside the same log without tags.
//! 4. Tag index bytes (`StoreStats::tag_index_bytes`) per occurrence and per distinct tag,
//!    beside the log bytes the tags take.
//!
//! ```sh
//! cargo bench -p evstore-bench --bench dcb            # ~1.5 min
//! cargo bench -p evstore-bench --bench dcb -- --test  # CI smoke: tiny, untimed
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::{
    AppendCondition, Durability, ExpectedVersion, NewEvent, Options, Query, QueryItem, Store,
    StreamAppend,
};

/// A 64-byte payload (every variant writes the same bytes per event).
const PAYLOAD: [u8; 64] = [b'x'; 64];

/// The variants of section 1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// `append` of 1 untagged event.
    Append1,
    /// Two `append`s of 1 event, to two streams.
    TwoAppends,
    /// One `append` of 2 events.
    Append2,
    /// `append_multi` of 2 streams, 1 event each.
    Multi,
    /// `append` of 1 event carrying a fresh tag.
    AppendTagged,
    /// `append_if` of the same event, the condition on its (fresh) tag, `after` = the head.
    AppendIf,
    /// `read_query` of that tag, then `append_if` with the head it returned.
    Decide,
}

const OPS: [Op; 7] = [
    Op::Append1,
    Op::TwoAppends,
    Op::Append2,
    Op::Multi,
    Op::AppendTagged,
    Op::AppendIf,
    Op::Decide,
];

fn event() -> NewEvent {
    NewEvent::new("Claimed", PAYLOAD.to_vec())
}

/// One operation of `op` on the streams `a` (and `b`), `tag` giving a fresh tag.
fn run_op(store: &Store, op: Op, a: &str, b: &str, tag: &dyn Fn() -> String) {
    match op {
        Op::Append1 => {
            store
                .append(a, ExpectedVersion::Any, &[event()])
                .expect("append");
        }
        Op::TwoAppends => {
            store
                .append(a, ExpectedVersion::Any, &[event()])
                .expect("append");
            store
                .append(b, ExpectedVersion::Any, &[event()])
                .expect("append");
        }
        Op::Append2 => {
            store
                .append(a, ExpectedVersion::Any, &[event(), event()])
                .expect("append");
        }
        Op::Multi => {
            store
                .append_multi(&[
                    StreamAppend::new(a, ExpectedVersion::Any, vec![event()]),
                    StreamAppend::new(b, ExpectedVersion::Any, vec![event()]),
                ])
                .expect("append_multi");
        }
        Op::AppendTagged => {
            let tag = tag();
            store
                .append(a, ExpectedVersion::Any, &[event().with_tags([tag])])
                .expect("append");
        }
        Op::AppendIf => {
            let tag = tag();
            let query = Query::new(vec![QueryItem::new(&["Claimed"], &[&tag])]);
            let condition = AppendCondition::new(query, store.head_position());
            store
                .append_if(
                    a,
                    ExpectedVersion::Any,
                    &[event().with_tags([tag])],
                    &condition,
                )
                .expect("append_if");
        }
        Op::Decide => {
            let tag = tag();
            let query = Query::new(vec![QueryItem::new(&["Claimed"], &[&tag])]);
            let (seen, head) = store.read_query(&query, None).expect("read_query");
            assert!(seen.is_empty());
            let condition = AppendCondition::new(query, head);
            store
                .append_if(
                    a,
                    ExpectedVersion::Any,
                    &[event().with_tags([tag])],
                    &condition,
                )
                .expect("append_if");
        }
    }
}

/// Operations per second of `threads` threads doing `op` for `run`.
fn rate(store: &Arc<Store>, op: Op, threads: usize, run: Duration, round: usize) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let (a, b) = (format!("a-{t}"), format!("b-{t}"));
                let counter = std::cell::Cell::new(0u64);
                let tag = || {
                    counter.set(counter.get() + 1);
                    format!("claim:{op:?}-{round}-{t}-{}", counter.get())
                };
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    run_op(&store, op, &a, &b, &tag);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Section 1 for one durability and thread count: every variant's ops/s in every round
/// (`[variant][round]`). A round runs each variant for `run`, back to back, in an order that
/// rotates from round to round, so a drift in the disk's speed (other work on the machine)
/// hits every variant alike and a ratio taken within a round cancels it.
fn throughput(
    dir: &Path,
    durability: Durability,
    threads: usize,
    rounds: usize,
    run: Duration,
) -> Vec<Vec<f64>> {
    let sub = dir.join(format!("tp-{durability:?}-{threads}"));
    std::fs::create_dir_all(&sub).expect("mkdir");
    let store = Arc::new(
        Store::open_with(
            sub.join("tp.evs"),
            Options {
                durability,
                ..Options::default()
            },
        )
        .expect("open"),
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); OPS.len()];
    for round in 0..rounds {
        for k in 0..OPS.len() {
            let i = (k + round) % OPS.len();
            // One push per variant per round: `rates[i][round]`.
            rates[i].push(rate(&store, OPS[i], threads, run, round));
        }
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&sub);
    rates
}

/// The median of `a` and the median of `b` (ops/s), and the median of their ratio taken
/// round by round.
fn compare(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (
        median(&mut a.to_vec()),
        median(&mut b.to_vec()),
        median(&mut ratios),
    )
}

/// How the 1M-event logs of sections 2-4 are tagged.
#[derive(Clone, Copy)]
enum Tagging {
    None,
    /// Event `i` carries `tag:{i % distinct}`.
    Distinct(u64),
}

/// Build a log of `events` events of type `Tagged` (64-byte payloads), 10 per stream
/// (stream `s-{i / 10}`), appended 10 at a time. Returns the log bytes written and the
/// store's stats.
fn build(path: &Path, events: u64, tagging: Tagging) -> (u64, evstore::StoreStats) {
    let store = Store::open_with(
        path,
        Options {
            durability: Durability::Buffered,
            ..Options::default()
        },
    )
    .expect("open");
    for s in 0..events / 10 {
        let batch: Vec<NewEvent> = (s * 10..s * 10 + 10)
            .map(|i| {
                let e = NewEvent::new("Tagged", PAYLOAD.to_vec());
                match tagging {
                    Tagging::None => e,
                    Tagging::Distinct(d) => e.with_tags([format!("tag:{}", i % d)]),
                }
            })
            .collect();
        store
            .append(&format!("s-{s}"), ExpectedVersion::NoStream, &batch)
            .expect("append");
    }
    let stats = store.stats();
    store.close().expect("close");
    (stats.bytes_written, stats)
}

/// Median time of `Store::open` (ns) over `reps` opens, after one untimed open.
fn open_time(path: &Path, reps: usize) -> f64 {
    Store::open(path).expect("open").close().expect("close");
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let store = Store::open(path).expect("open");
            let ns = t.elapsed().as_nanos() as f64;
            store.close().expect("close");
            ns
        })
        .collect();
    median(&mut times)
}

/// Calls per second of `f` for `run`.
fn calls_per_second(run: Duration, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < run {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Section 2 on the 100k-tag log, in ns per call, `[variant][round]`: plain append,
/// `append_if` on a 10-occurrence tag, `append_if` on a type-only query, `read_query` of that
/// tag, `read_stream` of a 10-event stream.
fn condition_cost(path: &Path, rounds: usize, run: Duration) -> Vec<Vec<f64>> {
    let store = Store::open_with(
        path,
        Options {
            durability: Durability::Buffered,
            ..Options::default()
        },
    )
    .expect("open");
    let tag_query = Query::new(vec![QueryItem::new(&[], &["tag:42"])]);
    let type_query = Query::new(vec![QueryItem::new(&["Tagged"], &[])]);
    let (seen, _) = store.read_query(&tag_query, None).expect("read_query");
    assert_eq!(seen.len(), 10, "the tag has 10 occurrences");
    let probe = || NewEvent::new("Probe", PAYLOAD.to_vec());
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for round in 0..rounds {
        for k in 0..5 {
            let i = (k + round) % 5;
            let per_s = match i {
                0 => calls_per_second(run, || {
                    store
                        .append("probe", ExpectedVersion::Any, &[probe()])
                        .expect("append");
                }),
                1 | 2 => {
                    let query = if i == 1 { &tag_query } else { &type_query };
                    calls_per_second(run, || {
                        let condition = AppendCondition::new(query.clone(), store.head_position());
                        store
                            .append_if("probe", ExpectedVersion::Any, &[probe()], &condition)
                            .expect("append_if");
                    })
                }
                3 => calls_per_second(run, || {
                    let (seen, _) = store.read_query(&tag_query, None).expect("read_query");
                    assert_eq!(seen.len(), 10);
                }),
                _ => calls_per_second(run, || {
                    let seen = store.read_stream("s-42", 0).expect("read_stream");
                    assert_eq!(seen.len(), 10);
                }),
            };
            samples[i].push(1e9 / per_s);
        }
    }
    store.close().expect("close");
    samples
}

struct Sizes {
    events: u64,
    distinct: u64,
    rounds: usize,
    sync_rounds: usize,
    run: Duration,
    cond_rounds: usize,
    cond_run: Duration,
    opens: usize,
}

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let dir = common::bench_dir();
    let z = if test {
        Sizes {
            events: 20_000,
            distinct: 2_000,
            rounds: 1,
            sync_rounds: 1,
            run: Duration::from_millis(20),
            cond_rounds: 1,
            cond_run: Duration::from_millis(20),
            opens: 1,
        }
    } else {
        Sizes {
            events: 1_000_000,
            distinct: 100_000,
            rounds: 9,
            sync_rounds: 15,
            run: Duration::from_millis(150),
            cond_rounds: 7,
            cond_run: Duration::from_millis(300),
            opens: 3,
        }
    };
    let mut report =
        String::from("| measure | figure | baseline | ratio |\n| --- | --- | --- | --- |\n");
    let row = |report: &mut String, measure: String, figure: String, base: String, ratio: f64| {
        *report += &format!("| {measure} | {figure} | {base} | {ratio:.2}× |\n");
    };

    // 1. Throughput.
    for durability in [Durability::Sync, Durability::Buffered] {
        for threads in [1, 8] {
            let rounds = if durability == Durability::Sync {
                z.sync_rounds
            } else {
                z.rounds
            };
            let r = throughput(dir.path(), durability, threads, rounds, z.run);
            let at = |op: Op| &r[OPS.iter().position(|o| *o == op).unwrap_or(0)];
            let cfg = format!(
                "{durability:?}, {threads} thread{}",
                if threads == 1 { "" } else { "s" }
            );
            for (measure, a, b, unit) in [
                (
                    "`append_multi` 2 streams × 1 event: vs two `append`s of 1 event",
                    Op::Multi,
                    Op::TwoAppends,
                    "pairs/s",
                ),
                (
                    "`append_multi` 2 streams × 1 event: vs one `append` of 2 events",
                    Op::Multi,
                    Op::Append2,
                    "/s",
                ),
                (
                    "`append` of 1 event with a tag: vs without",
                    Op::AppendTagged,
                    Op::Append1,
                    "/s",
                ),
                (
                    "`append_if` (fresh tag, `after` = head): vs `append` of the same event",
                    Op::AppendIf,
                    Op::AppendTagged,
                    "/s",
                ),
                (
                    "`read_query` + `append_if` (a decision): vs `append` of the same event",
                    Op::Decide,
                    Op::AppendTagged,
                    "/s",
                ),
            ] {
                let (fa, fb, ratio) = compare(at(a), at(b));
                row(
                    &mut report,
                    format!("{measure}, {cfg}"),
                    format!("{fa:.0} /s"),
                    format!("{fb:.0} {unit}"),
                    ratio,
                );
            }
        }
    }

    // 2-4. The 1M-event logs.
    let n = z.events;
    let plain: PathBuf = dir.path().join("plain.evs");
    let tagged = dir.path().join("tagged.evs");
    let unique = dir.path().join("unique.evs");
    let (plain_bytes, _) = build(&plain, n, Tagging::None);
    let (tagged_bytes, tagged_stats) = build(&tagged, n, Tagging::Distinct(z.distinct));
    let (unique_bytes, unique_stats) = build(&unique, n, Tagging::Distinct(n));
    let (mut open_plain, mut open_tagged, mut open_unique) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..z.opens {
        open_plain.push(open_time(&plain, 1) / n as f64);
        open_tagged.push(open_time(&tagged, 1) / n as f64);
        open_unique.push(open_time(&unique, 1) / n as f64);
    }
    let (op, ot, ou) = (
        median(&mut open_plain),
        median(&mut open_tagged),
        median(&mut open_unique),
    );
    let ns = condition_cost(&tagged, z.cond_rounds, z.cond_run);
    let d = z.distinct;
    let per = n / d;
    // The check's cost: `append_if` − `append`, the median of the rounds' differences.
    let check = |i: usize| {
        let mut diff: Vec<f64> = ns[i].iter().zip(&ns[0]).map(|(x, y)| x - y).collect();
        median(&mut diff)
    };
    let (tag_if_ns, append_ns, tag_ratio) = compare(&ns[1], &ns[0]);
    row(
        &mut report,
        format!("condition check, a tag with {per} occurrences among {n} tagged events ({d} tags): `append_if` − `append`, Buffered, 1 thread"),
        format!("{:.0} ns ({tag_if_ns:.0} ns per `append_if`)", check(1)),
        format!("{append_ns:.0} ns per `append`"),
        tag_ratio,
    );
    let (type_if_ns, append_ns, type_ratio) = compare(&ns[2], &ns[0]);
    row(
        &mut report,
        format!("condition check, a type-only query (a type with {n} events): `append_if` − `append`, Buffered, 1 thread"),
        format!("{:.0} ns ({type_if_ns:.0} ns per `append_if`)", check(2)),
        format!("{append_ns:.0} ns per `append`"),
        type_ratio,
    );
    let (query_ns, stream_ns, query_ratio) = compare(&ns[3], &ns[4]);
    row(
        &mut report,
        format!("`read_query` of a tag with {per} occurrences ({per} events back) vs `read_stream` of a {per}-event stream"),
        format!("{:.2} µs", query_ns / 1e3),
        format!("{:.2} µs", stream_ns / 1e3),
        query_ratio,
    );
    row(
        &mut report,
        format!("open, {n} events, 1 tag each ({d} distinct): per event"),
        format!("{ot:.0} ns"),
        format!("{op:.0} ns without tags"),
        ot / op,
    );
    row(
        &mut report,
        format!("open, {n} events, 1 tag each ({n} distinct): per event"),
        format!("{ou:.0} ns"),
        format!("{op:.0} ns without tags"),
        ou / op,
    );
    for (stats, bytes, label) in [
        (&tagged_stats, tagged_bytes, format!("{d} tags × {per}")),
        (&unique_stats, unique_bytes, format!("{n} tags × 1")),
    ] {
        let occ = stats.tag_occurrences.max(1) as f64;
        let idx = stats.tag_index_bytes as f64;
        let log_per_occ = (bytes as f64 - plain_bytes as f64) / occ;
        row(
            &mut report,
            format!(
                "tag index bytes per occurrence ({label}) vs the log bytes a tag adds per event"
            ),
            format!("{:.1} B", idx / occ),
            format!("{log_per_occ:.1} B"),
            (idx / occ) / log_per_occ,
        );
        row(
            &mut report,
            format!(
                "tag index bytes per distinct tag ({label}; {} bytes in all)",
                stats.tag_index_bytes
            ),
            format!("{:.1} B", idx / stats.tags.max(1) as f64),
            format!(
                "{:.1} B of log per tag",
                (bytes as f64 - plain_bytes as f64) / stats.tags.max(1) as f64
            ),
            (idx / stats.tags.max(1) as f64)
                / ((bytes as f64 - plain_bytes as f64) / stats.tags.max(1) as f64),
        );
    }
    println!("{report}");
}
