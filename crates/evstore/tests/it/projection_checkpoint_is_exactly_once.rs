//! Projection checkpoints: a restart resumes from the checkpoint (not from zero) and ends equal
//! to a rebuild; a process killed between applying and checkpointing leaves the state
//! exactly-once; a VERSION bump, a damaged checkpoint, or a checkpoint of another log trigger
//! a rebuild from zero.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::projection::{checkpoint_path, Projection, ProjectionRunner, RebuildReason};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, RecordedEvent, Store};
use serde::{Deserialize, Serialize};

/// Sensitive to any event applied twice or missed: a count, a sum and an order-dependent hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Ledger {
    count: u64,
    sum: u64,
    hash: u64,
}

fn fold(l: &mut Ledger, e: &RecordedEvent) {
    let mut b = [0u8; 8];
    let n = e.data.len().min(8);
    b[..n].copy_from_slice(&e.data[..n]);
    l.count += 1;
    l.sum = l.sum.wrapping_add(u64::from_le_bytes(b));
    l.hash = l
        .hash
        .wrapping_mul(1_000_003)
        .wrapping_add(e.position ^ 0x9E37_79B9);
}

impl Projection for Ledger {
    const NAME: &'static str = "ledger";
    const VERSION: u32 = 1;
    fn apply(&mut self, e: &RecordedEvent) {
        fold(self, e);
    }
}

/// Same name, next version (e.g. `apply` changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LedgerV2(Ledger);
impl Projection for LedgerV2 {
    const NAME: &'static str = "ledger";
    const VERSION: u32 = 2;
    fn apply(&mut self, e: &RecordedEvent) {
        fold(&mut self.0, e);
    }
}

fn options() -> Options {
    Options {
        durability: Durability::Buffered,
        segment_size: 1024 * 1024,
        ..Options::default()
    }
}

fn open(path: &Path) -> Arc<Store> {
    Arc::new(Store::open_with(path, options()).unwrap())
}

fn append_n(store: &Store, n: u64) {
    let start = store.head_position().map_or(0, |h| h + 1);
    for chunk in (start..start + n).collect::<Vec<_>>().chunks(25) {
        let events: Vec<NewEvent> = chunk
            .iter()
            .map(|i| NewEvent::new("Paid", i.to_le_bytes()))
            .collect();
        store
            .append(
                &format!("acct-{}", chunk[0] % 7),
                ExpectedVersion::Any,
                &events,
            )
            .unwrap();
    }
}

fn scratch(store: &Store) -> Ledger {
    let mut l = Ledger::default();
    for e in store.read_all(0) {
        fold(&mut l, &e.unwrap());
    }
    l
}

#[test]
fn restart_resumes_from_checkpoint_and_equals_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("p.evs"));
    append_n(&store, 1_000);
    let cp = checkpoint_path(store.path(), Ledger::NAME);

    let mut runner = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp).unwrap();
    assert_eq!(runner.stats().last_rebuild, Some(RebuildReason::Missing));
    assert_eq!(runner.catch_up().unwrap(), 1_000);
    drop(runner);

    append_n(&store, 234);
    let mut runner = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp).unwrap();
    assert_eq!(runner.stats().resumed_from, Some(1_000));
    assert_eq!(runner.stats().rebuilds, 0);
    assert_eq!(
        runner.catch_up().unwrap(),
        234,
        "only the new events are applied"
    );
    assert_eq!(runner.stats().applied, 234);
    assert_eq!(runner.handle().read(Ledger::clone), scratch(&store));

    // An on-demand rebuild gives the same state.
    assert_eq!(runner.rebuild().unwrap(), 1_234);
    assert_eq!(runner.handle().read(Ledger::clone), scratch(&store));
}

#[test]
fn version_bump_rebuilds_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v.evs"));
    append_n(&store, 300);
    let cp = checkpoint_path(store.path(), Ledger::NAME);
    ProjectionRunner::<Ledger, _>::open(store.clone(), &cp)
        .unwrap()
        .catch_up()
        .unwrap();

    let mut v2 = ProjectionRunner::<LedgerV2, _>::open(store.clone(), &cp).unwrap();
    assert_eq!(
        v2.stats().last_rebuild,
        Some(RebuildReason::VersionChanged {
            stored: 1,
            current: 2
        })
    );
    assert_eq!(v2.stats().rebuilds, 1);
    assert_eq!(v2.catch_up().unwrap(), 300);
    assert_eq!(v2.handle().read(|l| l.0.clone()), scratch(&store));
    drop(v2);
    // The v2 checkpoint is now the one in force.
    let v2 = ProjectionRunner::<LedgerV2, _>::open(store.clone(), &cp).unwrap();
    assert_eq!(v2.stats().resumed_from, Some(300));
}

#[test]
fn damaged_or_foreign_checkpoint_rebuilds_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("d.evs"));
    append_n(&store, 200);
    let cp = checkpoint_path(store.path(), Ledger::NAME);
    ProjectionRunner::<Ledger, _>::open(store.clone(), &cp)
        .unwrap()
        .catch_up()
        .unwrap();
    let good = std::fs::read(&cp).unwrap();

    // Flip one bit in the state.
    let mut bad = good.clone();
    let at = bad.len() - 6;
    bad[at] ^= 1;
    std::fs::write(&cp, &bad).unwrap();
    let mut r = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp).unwrap();
    assert!(matches!(
        r.stats().last_rebuild,
        Some(RebuildReason::Damaged(_))
    ));
    r.catch_up().unwrap();
    assert_eq!(r.handle().read(Ledger::clone), scratch(&store));
    drop(r);

    // Truncated.
    std::fs::write(&cp, &good[..good.len() / 2]).unwrap();
    let r = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp).unwrap();
    assert!(matches!(
        r.stats().last_rebuild,
        Some(RebuildReason::Damaged(_))
    ));
    drop(r);

    // A checkpoint taken on another log with the same length of history.
    let other = open(&dir.path().join("other.evs"));
    append_n(&other, 200);
    std::fs::write(&cp, &good).unwrap();
    let r = ProjectionRunner::<Ledger, _>::open(other.clone(), &cp).unwrap();
    assert_eq!(r.stats().last_rebuild, Some(RebuildReason::LogMismatch));
}

// ---- kill -9 between applying and checkpointing ------------------------------------------

const CHILD_ENV: &str = "EVSTORE_READ_SIDE_PROJECTION_CHILD";

/// Entry point of the child process (does nothing when run as a normal test).
#[test]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, path) = spec.split_once(':').unwrap();
    let store = open(Path::new(path));
    let cp = checkpoint_path(store.path(), Ledger::NAME);
    match mode {
        "stall" => {
            // Checkpoint at some position, apply more without checkpointing, then hang.
            let mut r = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp)
                .unwrap()
                .with_checkpoint_every(0);
            r.catch_up_to(300).unwrap();
            r.checkpoint().unwrap();
            r.catch_up_to(700).unwrap();
            println!(
                "READY applied={} position={}",
                r.stats().applied,
                r.next_position()
            );
            std::thread::sleep(Duration::from_secs(60));
        }
        "live" => {
            // Append and project continuously, checkpointing every 64 events.
            let mut r = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp)
                .unwrap()
                .with_checkpoint_every(64)
                .with_checkpoint_interval(Duration::ZERO);
            println!("READY");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                append_n(&store, 10);
                r.step(37, Duration::ZERO).unwrap();
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

fn spawn_child(mode: &str, log: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &crate::common::test_name(module_path!(), "child_process_entry"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", log.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("child printed READY").unwrap();
        if line.contains("READY") {
            break;
        }
    }
    child
}

#[test]
fn kill_between_apply_and_checkpoint_keeps_state_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("k.evs");
    {
        let store = open(&log);
        append_n(&store, 1_000);
    }
    let mut child = spawn_child("stall", &log);
    child.kill().unwrap(); // SIGKILL: 700 applied, only 300 checkpointed
    child.wait().unwrap();

    let store = open(&log);
    let cp = checkpoint_path(store.path(), Ledger::NAME);
    let mut r = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp).unwrap();
    assert_eq!(r.stats().resumed_from, Some(300));
    assert_eq!(r.catch_up().unwrap(), 700);
    assert_eq!(r.handle().read(Ledger::clone), scratch(&store));
}

#[test]
fn kill_at_random_moments_keeps_state_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("live.evs");
    let mut resumed = Vec::new();
    for round in 0..6u64 {
        let mut child = spawn_child("live", &log);
        let jitter = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            + round * 37)
            % 150;
        std::thread::sleep(Duration::from_millis(30 + jitter));
        child.kill().unwrap();
        child.wait().unwrap();

        let store = open(&log);
        let cp = checkpoint_path(store.path(), Ledger::NAME);
        let mut r = ProjectionRunner::<Ledger, _>::open(store.clone(), &cp).unwrap();
        resumed.push((r.stats().resumed_from, store.head_position()));
        r.catch_up().unwrap();
        assert_eq!(
            r.handle().read(Ledger::clone),
            scratch(&store),
            "round {round}"
        );
    }
    eprintln!("(resumed from, head) per round: {resumed:?}");
    assert!(resumed.iter().skip(1).all(|(from, _)| from.is_some()));
}
