//! A raw copy of a log taken while it was being written can hold a frame as it was before its
//! append (zeros) and later frames as they were after theirs: a hole that later frames prove
//! durable. `verify` calls it corrupt, and says that such a copy looks exactly like this and to
//! use `evstore backup`; a backup of the same store verifies clean.

use evstore::maintenance::{self, Verdict};
use evstore::{Durability, ExpectedVersion, Store};

use crate::common::layout::walk_frames;
use crate::common::{event, small_options};

#[test]
fn a_hole_proven_by_later_frames_mentions_live_copies_and_evstore_backup() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.evs");
    let store = Store::open_with(&live, small_options(Durability::Sync)).unwrap();
    for i in 0..5 {
        store
            .append(
                "s",
                ExpectedVersion::Any,
                &[event("T", &format!("{{\"i\":{i}}}"))],
            )
            .unwrap();
    }
    // What `cp` can produce: frame 1 read before its append, the frames after it read after.
    let mut bytes = std::fs::read(&live).unwrap();
    let frames = walk_frames(&bytes);
    assert!(frames.len() >= 5);
    let f1 = frames[1];
    bytes[f1.file_offset as usize..f1.padded_end() as usize].fill(0);
    let raw = dir.path().join("raw-copy.evs");
    std::fs::write(&raw, &bytes).unwrap();
    let report = maintenance::verify(&raw).unwrap();
    let Verdict::Corrupt { what, .. } = &report.verdict else {
        panic!("expected corruption, got {:?}", report.verdict)
    };
    assert!(what.contains("frame 1 is damaged or missing"), "{what}");
    assert!(
        what.contains("taken while a store was writing it"),
        "{what}"
    );
    assert!(what.contains("evstore backup"), "{what}");

    let backup = dir.path().join("backup.evs");
    store.backup_to(&backup).unwrap();
    assert_eq!(
        maintenance::verify(&backup).unwrap().verdict,
        Verdict::Clean
    );
}
