//! `append_multi`: every stream's events or none — when an expected version fails, when a
//! retry repeats it, when it shares group commits with single appends, and when the writer
//! process is killed (`kill -9`) in the middle of a stream of multi-stream appends. (Power
//! loss of the writer is covered by `power_loss`, whose workload mixes multi-stream appends.)

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{all_events, event, small_options, Rng};
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Store, StreamAppend};

const CHILD_PATH: &str = "EVSTORE_MULTI_CHILD_PATH";
const CHILD_SEED: &str = "EVSTORE_MULTI_CHILD_SEED";

fn part(stream: &str, expected: ExpectedVersion, n: usize) -> StreamAppend {
    StreamAppend::new(
        stream,
        expected,
        (0..n)
            .map(|i| event("E", &format!("{stream}-{i}")))
            .collect(),
    )
}

#[test]
fn every_part_lands_in_order_with_one_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.evs")).unwrap();
    store
        .append("a", ExpectedVersion::NoStream, &[event("E", "a0")])
        .unwrap();
    let results = store
        .append_multi(&[
            part("a", ExpectedVersion::Exact(0), 2),
            part("b", ExpectedVersion::NoStream, 3),
            part("c", ExpectedVersion::Any, 1),
        ])
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!((results[0].first_version, results[0].last_version), (1, 2));
    assert_eq!(
        (results[0].first_position, results[0].last_position),
        (1, 2)
    );
    assert_eq!((results[1].first_version, results[1].last_version), (0, 2));
    assert_eq!(
        (results[1].first_position, results[1].last_position),
        (3, 5)
    );
    assert_eq!(
        (results[2].first_position, results[2].last_position),
        (6, 6)
    );
    let all = all_events(&store);
    assert_eq!(all.len(), 7);
    let stamp = all[1].recorded_at;
    assert!(all[1..].iter().all(|e| e.recorded_at == stamp), "one stamp");
    drop(store);
    let reopened = Store::open(dir.path().join("m.evs")).unwrap();
    assert_eq!(all_events(&reopened), all);
}

#[test]
fn one_failed_expected_version_writes_nothing_and_names_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.evs")).unwrap();
    store
        .append(
            "b",
            ExpectedVersion::NoStream,
            &[event("E", "b0"), event("E", "b1")],
        )
        .unwrap();
    let err = store
        .append_multi(&[
            part("a", ExpectedVersion::NoStream, 1),
            part("b", ExpectedVersion::Exact(0), 1),
        ])
        .unwrap_err();
    match err {
        Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(stream, "b");
            assert_eq!(expected, ExpectedVersion::Exact(0));
            assert_eq!(actual, Some(1));
        }
        other => panic!("expected WrongExpectedVersion, got {other}"),
    }
    assert_eq!(store.stream_version("a"), None, "nothing written to a");
    assert_eq!(store.head_position(), Some(1));
    // The same append with the right version goes through.
    store
        .append_multi(&[
            part("a", ExpectedVersion::NoStream, 1),
            part("b", ExpectedVersion::Exact(1), 1),
        ])
        .unwrap();
    assert_eq!(store.head_position(), Some(3));
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path().join("m.evs"), small_options(Durability::Sync)).unwrap();
    let refused = |parts: &[StreamAppend]| match store.append_multi(parts) {
        Err(Error::InvalidInput(why)) => why,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    assert!(refused(&[]).contains("at least one stream"));
    assert!(refused(&[
        part("a", ExpectedVersion::Any, 1),
        part("a", ExpectedVersion::Any, 1)
    ])
    .contains("twice"));
    assert!(refused(&[
        part("a", ExpectedVersion::Any, 1),
        part("b", ExpectedVersion::Any, 0)
    ])
    .contains("at least one event"));
    // Each part fits a segment, but together they do not fit one frame.
    let big = |s: &str| {
        StreamAppend::new(
            s,
            ExpectedVersion::Any,
            vec![NewEvent::new("Big", vec![0u8; 40 * 1024])],
        )
    };
    assert!(refused(&[big("a"), big("b")]).contains("more than a segment"));
    assert_eq!(store.head_position(), None);
}

#[test]
fn a_repeated_multi_stream_append_returns_the_original_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.evs")).unwrap();
    let request = [
        part("a", ExpectedVersion::NoStream, 2),
        part("b", ExpectedVersion::NoStream, 1),
    ];
    let first = store.append_multi(&request).unwrap();
    let again = store.append_multi(&request).unwrap();
    assert_eq!(first, again);
    assert_eq!(store.head_position(), Some(2), "nothing written twice");
    // One part repeats, the other is new: refused, nothing written.
    let mixed = [request[0].clone(), part("c", ExpectedVersion::NoStream, 1)];
    assert!(matches!(
        store.append_multi(&mixed),
        Err(Error::IdempotencyConflict { .. })
    ));
    assert_eq!(store.stream_version("c"), None);
}

#[test]
fn multi_stream_and_single_appends_share_group_commits() {
    for durability in [Durability::Sync, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open_with(dir.path().join("m.evs"), small_options(durability)).unwrap(),
        );
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut rng = Rng(t + 11);
                    let mut multis = Vec::new();
                    for i in 0..150 {
                        if rng.below(2) == 0 {
                            let parts: Vec<StreamAppend> = (0..2 + rng.below(2))
                                .map(|k| {
                                    part(&format!("t{t}-{k}"), ExpectedVersion::Any, 1 + i % 2)
                                })
                                .collect();
                            let results = store.append_multi(&parts).unwrap();
                            multis.push(results);
                        } else {
                            store
                                .append("shared", ExpectedVersion::Any, &[event("S", "x")])
                                .unwrap();
                        }
                    }
                    multis
                })
            })
            .collect();
        let multis: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let stats = store.stats();
        let all = all_events(&store);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.position, i as u64);
        }
        for results in &multis {
            for pair in results.windows(2) {
                assert_eq!(
                    pair[1].first_position,
                    pair[0].last_position + 1,
                    "a multi-stream append's parts are adjacent"
                );
            }
            let first = &all[results[0].first_position as usize];
            let last = &all[results.last().unwrap().last_position as usize];
            assert_eq!(first.recorded_at, last.recorded_at);
        }
        if durability == Durability::Sync {
            assert!(
                stats.groups < stats.appends,
                "{durability:?}: group commit shared ({} groups for {} appends)",
                stats.groups,
                stats.appends
            );
        }
    }
}

/// The child's work: runs only when started by the parent test. Threads append multi-stream
/// appends (2 or 3 streams; every event carries the append's number as its data) and single
/// appends, reporting each acknowledged multi-stream append.
#[test]
fn multi_crash_child_workload() {
    let Some((path, seed)) = crate::common::child::child_args(CHILD_PATH, CHILD_SEED) else {
        return;
    };
    let store = Arc::new(Store::open_with(&path, small_options(Durability::Sync)).unwrap());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    writeln!(out.lock().unwrap(), "READY").unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t + 1));
                for n in 0.. {
                    let id = format!("{seed}.{t}.{n}");
                    if rng.below(4) == 0 {
                        store
                            .append("single", ExpectedVersion::Any, &[event("S", &id)])
                            .unwrap();
                        continue;
                    }
                    let count = 2 + rng.below(2);
                    let parts: Vec<StreamAppend> = (0..count)
                        .map(|k| {
                            let size = if rng.below(8) == 0 { 6000 } else { 30 };
                            let mut data = id.clone().into_bytes();
                            data.push(b'|');
                            data.resize(size, b'.');
                            StreamAppend::new(
                                &format!("s{}", rng.below(5) * 3 + k),
                                ExpectedVersion::Any,
                                vec![NewEvent::new("M", data)
                                    .with_tags([format!("multi:{id}/{count}")])],
                            )
                        })
                        .collect();
                    let mut distinct: Vec<&str> = parts.iter().map(|p| p.stream.as_str()).collect();
                    distinct.sort_unstable();
                    distinct.dedup();
                    if distinct.len() != parts.len() {
                        continue;
                    }
                    store.append_multi(&parts).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ACK {id} {}", parts.len()).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// Kill the child at a random moment; every multi-stream append in the reopened log is whole,
/// and every acknowledged one is there.
fn kill_and_check(path: &std::path::Path, seed: u64) -> usize {
    let mut rng = Rng(seed | 1);
    let lines = crate::common::child::run_until_killed(
        &crate::common::test_name(module_path!(), "multi_crash_child_workload"),
        &[
            (CHILD_PATH, path.display().to_string()),
            (CHILD_SEED, seed.to_string()),
        ],
        Duration::from_millis(10 + rng.below(80)),
    );
    let acked: Vec<(String, usize)> = lines
        .iter()
        .filter_map(|l| l.split_once("ACK ").map(|(_, r)| r.to_string()))
        .filter_map(|r| {
            let (id, n) = r.split_once(' ')?;
            Some((id.to_string(), n.parse().ok()?))
        })
        .collect();

    let store = Store::open_with(path, small_options(Durability::Sync))
        .unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
    let all = all_events(&store);
    // Parts of one multi-stream append, by id: adjacent positions.
    let mut parts: HashMap<String, Vec<u64>> = HashMap::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in all.iter().filter(|e| e.event_type == "M") {
        let tag = e.tags[0].trim_start_matches("multi:");
        let (id, count) = tag.split_once('/').unwrap();
        parts.entry(id.to_string()).or_default().push(e.position);
        counts.insert(id.to_string(), count.parse().unwrap());
    }
    for (id, n) in &acked {
        let found = parts.get(id).map_or(0, Vec::len);
        assert_eq!(
            found, *n,
            "seed {seed}: acknowledged multi-append {id} has {found} of {n} parts"
        );
    }
    for (id, positions) in &parts {
        let first = positions[0];
        let contiguous = positions
            .iter()
            .enumerate()
            .all(|(i, &p)| p == first + i as u64);
        assert!(
            contiguous,
            "seed {seed}: multi-append {id} is split: {positions:?}"
        );
        assert_eq!(
            positions.len(),
            counts[id],
            "seed {seed}: multi-append {id} is torn: {positions:?}"
        );
    }
    // The store takes appends again.
    store
        .append_multi(&[
            part("after-a", ExpectedVersion::Any, 1),
            part("after-b", ExpectedVersion::Any, 1),
        ])
        .unwrap();
    acked.len()
}

#[test]
fn multi_stream_appends_survive_kill_9_whole_or_not_at_all() {
    let iterations: u64 = std::env::var("EVSTORE_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.evs");
    let mut acked = 0;
    for i in 0..iterations {
        acked += kill_and_check(&path, 0xC0FF_EE00 + i);
    }
    assert!(acked > 0, "the children acknowledged multi-stream appends");
}
