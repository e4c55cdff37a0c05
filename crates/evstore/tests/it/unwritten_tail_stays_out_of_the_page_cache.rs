//! Opening, scanning and reading a log never pulls the preallocated, never-written rest of the
//! active segment into the page cache. Kernel read-around from a fault near the end of the log
//! used to do exactly that (8 MiB windows on this machine class), and every later small
//! `pwrite` into those large zero folios ran 2–4× slower (docs/PERFORMANCE.md).
//!
//! The check uses the file system's own view: ext4 and XFS report an unwritten extent as a
//! hole to `lseek(SEEK_DATA)` only while the page cache holds nothing for it.

use std::fs::File;

use evstore::testing::segment_probe::{self as segment, HEADER_SIZE};
use evstore::{Durability, ExpectedVersion, Options, Store};

/// A directory on the disk the crate is built on (not a tmpfs `/tmp`, where fallocated space
/// is ordinary memory and holes do not exist).
fn disk_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir in the target dir")
}

#[test]
fn open_scan_and_reads_leave_the_unwritten_tail_uncached() {
    let dir = disk_dir();
    let path = dir.path().join("tail.evs");
    let options = Options {
        durability: Durability::Buffered,
        ..Options::default() // 64 MiB segments: room for a read-around window
    };

    // The file system must report a fresh preallocation as a hole, or this test proves nothing.
    {
        let probe_path = dir.path().join("probe.bin");
        let probe = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&probe_path)
            .expect("probe file");
        segment::allocate(&probe, 0, 16 << 20).expect("allocate");
        assert_eq!(
            segment::next_data(&probe, 0),
            None,
            "this file system does not report unwritten extents as holes (SEEK_DATA); \
             run the tests on ext4 or XFS"
        );
    }

    // Far past the last frame written below (a few KiB), well inside one read-around window.
    let tail = HEADER_SIZE + (1 << 20);
    {
        let store = Store::open_with(&path, options.clone()).expect("create");
        for i in 0..50 {
            store
                .append(
                    &format!("stream-{}", i % 5),
                    ExpectedVersion::Any,
                    &[crate::common::event("Happened", "payload of a small event")],
                )
                .expect("append");
        }
        // Readers at the frontier: random and sequential.
        assert_eq!(store.read_stream("stream-3", 0).expect("read").len(), 10);
        assert_eq!(crate::common::all_events(&store).len(), 50);
        store.close().expect("close");
    }
    let file = File::open(&path).expect("log file");
    assert_eq!(
        segment::next_data(&file, tail),
        None,
        "writing and reading the log cached pages of the unwritten tail"
    );

    // Reopen: the recovery scan and the tail verdict, then reads and one more append.
    let store = Store::open_with(&path, options).expect("reopen");
    assert_eq!(store.recovery_report().events, 50);
    assert_eq!(crate::common::all_events(&store).len(), 50);
    assert_eq!(store.read_stream("stream-1", 0).expect("read").len(), 10);
    store
        .append(
            "stream-9",
            ExpectedVersion::NoStream,
            &[crate::common::event("Happened", "x")],
        )
        .expect("append after reopen");
    assert_eq!(
        segment::next_data(&file, tail),
        None,
        "open or reads cached pages of the unwritten tail"
    );
    store.close().expect("close");
}
