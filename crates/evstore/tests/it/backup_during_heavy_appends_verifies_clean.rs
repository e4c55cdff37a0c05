//! `Store::backup_to` while several threads append 1 KB events to a store of 64 KiB segments
//! (so the file keeps growing): every backup verifies clean, opens, and holds every event
//! acknowledged before it began, identical to the source's (ids, streams, versions,
//! positions, timestamps, data, metadata). In Sync and in Buffered mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use evstore::maintenance::{self, Verdict};
use evstore::{Durability, ExpectedVersion, NewEvent, Store};

use crate::common::{all_events, small_options};

const APPENDERS: usize = 4;
const BACKUPS: usize = 4;

fn run(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path().join("live.evs"), small_options(durability)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // Last position of every acknowledged append.
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let threads: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
            thread::spawn(move || {
                let mut i = 0u64;
                // Bounded by the stop flag, set after the last backup (and by a cap).
                while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                    let data = vec![b'a' + (i % 26) as u8; 1000];
                    let e =
                        NewEvent::new("T", data).with_metadata(format!("t{t} i{i}").into_bytes());
                    let r = store
                        .append(&format!("s-{t}"), ExpectedVersion::Any, &[e])
                        .unwrap();
                    acked.lock().unwrap().push(r.last_position);
                    i += 1;
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    let mut max_pause = Duration::ZERO;
    for b in 0..BACKUPS {
        let acked_before: Vec<u64> = acked.lock().unwrap().clone();
        let dst = dir.path().join(format!("backup-{b}.evs"));
        let report = store.backup_to(&dst).unwrap();
        max_pause = max_pause.max(report.append_pause);
        assert!(report.events > 0);
        let check = maintenance::verify(&dst).unwrap();
        assert_eq!(check.verdict, Verdict::Clean, "backup {b}");
        assert_eq!((check.events, check.frames), (report.events, report.frames));
        let copy = Store::open(&dst).unwrap();
        assert!(copy.recovery_report().trimmed.is_none());
        let copied = all_events(&copy);
        assert_eq!(copied.len() as u64, report.events);
        for p in &acked_before {
            assert!(
                *p < report.events,
                "backup {b} lacks acknowledged position {p}"
            );
        }
        // Events are immutable once published: the source's first events are the copy's.
        let source: Vec<_> = store
            .read_all(0)
            .take(copied.len())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(copied, source, "backup {b} differs from the source");
        copy.close().unwrap();
        // Bound the disk used: Buffered appenders write ~100 MB a second.
        std::fs::remove_file(&dst).unwrap();
        thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let total = store.head_position().unwrap() + 1;
    assert!(
        total * 1000 > 4 * 64 * 1024,
        "the appenders grew the file by several segments"
    );
    eprintln!("{durability:?}: {total} events, longest append pause {max_pause:?}");
}

#[test]
fn backups_during_sync_appends_verify_clean_and_hold_every_acknowledged_event() {
    run(Durability::Sync);
}

#[test]
fn backups_during_buffered_appends_verify_clean_and_hold_every_acknowledged_event() {
    run(Durability::Buffered);
}
