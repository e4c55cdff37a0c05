//! `Repository::execute` succeeds under any contention that leaves it a turn: 8 threads
//! hammering 3 aggregates see no command fail for conflicts, and every command is applied
//! exactly once. A conflict's retry waits until the winning append is visible before it
//! reloads, instead of reloading the same stale version until its attempts run out.

use std::sync::{Arc, Barrier};

use crate::common::counter::{Counter, CounterCommand};
use crate::common::small_options;
use evstore::aggregate::CommandContext;
use evstore::repository::Repository;
use evstore::{Durability, Store};

const THREADS: usize = 8;
const AGGREGATES: usize = 3;
const COMMANDS_PER_THREAD: usize = 60;
/// Enough for a thread that loses every race to the 7 others for a while; with stale reloads
/// (the fault this guards against) every attempt of a loser burns within one fsync.
const MAX_ATTEMPTS: u32 = 100;

fn hammer(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path().join("c.evs"), small_options(durability)).unwrap());
    let repo = Repository::<Counter, _>::new(store.clone()).with_snapshot_every(5);
    let barrier = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (repo, barrier) = (repo.clone(), barrier.clone());
            s.spawn(move || {
                barrier.wait();
                for i in 0..COMMANDS_PER_THREAD {
                    let id = format!("acct-{}", (t + i) % AGGREGATES);
                    let ctx = CommandContext::new_request();
                    repo.execute(&id, &CounterCommand::Add(1), &ctx, MAX_ATTEMPTS)
                        .unwrap_or_else(|e| panic!("thread {t} command {i} on {id}: {e}"));
                }
            });
        }
    });
    let total: u64 = (0..AGGREGATES)
        .map(|a| {
            repo.load(&format!("acct-{a}"))
                .unwrap()
                .unwrap()
                .state()
                .total
        })
        .sum();
    assert_eq!(
        total,
        (THREADS * COMMANDS_PER_THREAD) as u64,
        "every command applied once"
    );
}

#[test]
fn execute_holds_under_contention_sync() {
    hammer(Durability::Sync);
}

#[test]
fn execute_holds_under_contention_buffered() {
    hammer(Durability::Buffered);
}
