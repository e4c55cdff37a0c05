//! `verify` reports clean, torn-tail and corrupt logs without changing them; `repair` keeps a
//! backup, cuts at the damage, reports what was lost, and the store opens afterwards.

use crate::common::*;
use evstore::maintenance::{repair, verify, Verdict};
use evstore::{Durability, Error, ExpectedVersion, Store};

fn build(path: &std::path::Path) {
    build_into(&Store::open_with(path, small_options(Durability::Sync)).unwrap());
}

/// 10 events over 3 streams.
fn build_into(store: &Store) {
    for i in 0..10u64 {
        store
            .append(
                &format!("s{}", i % 3),
                ExpectedVersion::Any,
                &[event("T", &format!("payload-{i}"))],
            )
            .unwrap();
    }
}

#[test]
fn verify_reports_a_clean_log_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.evs");
    build(&path);
    let before = std::fs::read(&path).unwrap();
    let r = verify(&path).unwrap();
    assert_eq!(r.verdict, Verdict::Clean);
    assert_eq!((r.events, r.streams), (10, 3));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn verify_checks_the_durable_prefix_of_a_live_store_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    build_into(&store);
    let r = verify(&path).unwrap();
    assert!(r.live, "{r:?}");
    assert_eq!(r.verdict, Verdict::Clean);
    assert_eq!((r.events, r.streams), (10, 3));
    drop(store);
    let r = verify(&path).unwrap();
    assert!(!r.live);
    assert_eq!((r.events, r.streams), (10, 3));
}

#[test]
fn verify_tells_a_torn_tail_from_corruption_and_repair_fixes_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.evs");
    build(&path);
    let pristine = std::fs::read(&path).unwrap();

    // Garbage after the end of the log: a torn tail.
    let end = pristine.iter().rposition(|&b| b != 0).unwrap() + 1;
    let mut torn = pristine.clone();
    torn[end + 100] = 0xAB;
    std::fs::write(&path, &torn).unwrap();
    assert!(matches!(
        verify(&path).unwrap().verdict,
        Verdict::TornTail { .. }
    ));
    assert_eq!(std::fs::read(&path).unwrap(), torn, "verify is read-only");

    // A flipped bit in the third frame, followed by frames that prove it durable.
    let mut corrupt = pristine.clone();
    // Each append here is one frame of align8(24 + (21 + 2) + (25 + 1 + 9)) = 88 bytes
    // (docs/FORMAT.md §3): the third frame starts at segment offset 176.
    let frame = (24 + 21 + 2 + 25 + 1 + 9usize).div_ceil(8) * 8;
    assert_eq!(frame, 88);
    let third_frame = 4096 + 2 * frame;
    corrupt[third_frame + 40] ^= 1;
    std::fs::write(&path, &corrupt).unwrap();
    let r = verify(&path).unwrap();
    let Verdict::Corrupt { site, .. } = r.verdict else {
        panic!("expected corruption, got {:?}", r.verdict);
    };
    assert_eq!((site.segment(), site.offset()), (Some(0), 176));
    assert!(matches!(Store::open(&path), Err(Error::Corruption { .. })));

    let rep = repair(&path).unwrap();
    assert_eq!(rep.events_kept, 2);
    assert_eq!((rep.cut_segment, rep.cut_offset), (0, 176));
    // Frames 3..9 held one append each, all readable; the damaged one is unreadable.
    assert!(rep.damaged_frame_unreadable);
    assert_eq!(rep.lost_frames.len(), 7);
    assert_eq!(rep.lost_frames[0].appends, vec![("s0".to_string(), 1, 1)]);
    assert_eq!(
        std::fs::read(&rep.backup).unwrap(),
        corrupt,
        "the backup is the damaged file"
    );
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head_position(), Some(1));
    assert_eq!(all_events(&store).len(), 2);
    drop(store);
    assert_eq!(verify(&path).unwrap().verdict, Verdict::Clean);
}
