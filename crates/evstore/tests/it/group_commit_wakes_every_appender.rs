//! Group commit never strands an appender: with many more threads than cores, every append
//! returns (its group was published and it was woken, or it was woken to lead the next
//! group), in both durability modes, and every acknowledged event is in the log exactly once.
//!
//! A lost wake-up shows up as a hang; the watchdog turns it into a failure after a generous
//! limit (this is a liveness check, not a timing: a healthy run takes about a second).

use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use crate::common::*;
use evstore::{Durability, ExpectedVersion, Store};

fn stampede(durability: Durability) {
    const THREADS: usize = 64;
    const APPENDS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path().join("g.evs"), small_options(durability)).unwrap());
    let (done_tx, done_rx) = mpsc::channel();
    // Rounds: all threads append at once, then wait for each other. Nobody arrives late to
    // rescue a queued appender, so every wake-up has to come from the group commit itself.
    let round = Arc::new(Barrier::new(THREADS));
    for t in 0..THREADS {
        let store = store.clone();
        let done_tx = done_tx.clone();
        let round = round.clone();
        std::thread::spawn(move || {
            for a in 0..APPENDS {
                round.wait();
                // A few hot streams and one private stream per thread.
                let stream = if a % 2 == 0 {
                    format!("hot-{}", a % 3)
                } else {
                    format!("own-{t}")
                };
                store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        &[event("T", &format!("{t}-{a}"))],
                    )
                    .unwrap();
            }
            done_tx.send(t).unwrap();
        });
    }
    drop(done_tx);
    for _ in 0..THREADS {
        done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("an appender never returned: a lost wake-up in group commit");
    }
    let all = all_events(&store);
    assert_eq!(all.len(), THREADS * APPENDS);
    let mut payloads: Vec<_> = all.iter().map(|e| e.data.clone()).collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(
        payloads.len(),
        THREADS * APPENDS,
        "every event exactly once"
    );
    if durability == Durability::Sync {
        let stats = store.stats();
        assert!(
            stats.groups < stats.appends,
            "with {THREADS} threads waiting on fsyncs, groups hold several appends ({stats:?})"
        );
    }
}

#[test]
fn every_sync_appender_returns() {
    stampede(Durability::Sync);
}

#[test]
fn every_buffered_appender_returns() {
    stampede(Durability::Buffered);
}
