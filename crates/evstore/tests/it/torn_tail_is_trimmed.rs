//! Recovery of torn tails (docs/FORMAT.md §4–§5): a last frame that was never proven durable and
//! is cut short or partly zeroed is trimmed on open, every earlier event survives unchanged, and
//! the store continues densely after it. A file whose last segment is incomplete opens with all
//! its data.
//!
//! The "crash image" of a store is a copy of its file taken while the store is still open (after
//! the appends returned, before `drop` writes the close seal), which is what a process crash
//! leaves behind.

use std::path::{Path, PathBuf};

use evstore::{Durability, ExpectedVersion, NewEvent, RecordedEvent, Store};

use crate::common::layout::*;
use crate::common::{all_events as read_all, small_options as options};

/// A store's file as a crash leaves it, with the events it held.
struct CrashImage {
    bytes: Vec<u8>,
    events: Vec<RecordedEvent>,
    /// Events in the last frame.
    last_frame_events: usize,
}

/// Three appends (three frames), copied while the store is open: no close seal.
fn crash_image(dir: &Path, durability: Durability) -> CrashImage {
    let path = dir.join("live.evs");
    let store = Store::open_with(&path, options(durability)).unwrap();
    store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            &[
                NewEvent::new("Created", b"{\"u\":1}".to_vec()),
                NewEvent::new("ItemAdded", b"{\"sku\":\"A\"}".to_vec())
                    .with_metadata(b"m1".to_vec()),
            ],
        )
        .unwrap();
    store
        .append(
            "order-2",
            ExpectedVersion::NoStream,
            &[NewEvent::new("Created", b"{\"u\":2}".to_vec())],
        )
        .unwrap();
    let last = [
        NewEvent::new("ItemAdded", b"{\"sku\":\"B\"}".to_vec()),
        NewEvent::new("ItemRemoved", b"{\"sku\":\"A\"}".to_vec()),
        NewEvent::new("Paid", b"{\"eur\":\"12.30\"}".to_vec()).with_metadata(b"m2".to_vec()),
    ];
    store
        .append("order-1", ExpectedVersion::Exact(1), &last)
        .unwrap();
    let events = read_all(&store);
    assert_eq!(events.len(), 6);
    let bytes = std::fs::read(&path).unwrap();
    drop(store);
    let frames = walk_frames(&bytes);
    assert_eq!(
        frames.len(),
        3,
        "one frame per sequential append: {frames:?}"
    );
    CrashImage {
        bytes,
        events,
        last_frame_events: last.len(),
    }
}

/// The last version of `stream` among `events`.
fn last_version(events: &[RecordedEvent], stream: &str) -> Option<u64> {
    events
        .iter()
        .filter(|e| e.stream_id == stream)
        .map(|e| e.version)
        .max()
}

/// Open `path` and check it holds exactly `kept`, that the trim report is `expect_trim_at`
/// (segment 0 offset), that a new append continues densely, and that it all survives a reopen.
fn check_recovered(path: &Path, kept: &[RecordedEvent], expect_trim_at: Option<u64>, case: &str) {
    let len_before = std::fs::metadata(path).unwrap().len();
    let store = Store::open_with(path, options(Durability::Sync))
        .unwrap_or_else(|e| panic!("{case}: open: {e}"));
    assert_eq!(read_all(&store), kept, "{case}: events after recovery");
    let report = store.recovery_report().clone();
    assert_eq!(
        report.events,
        kept.len() as u64,
        "{case}: report {report:?}"
    );
    match expect_trim_at {
        Some(off) => {
            let t = report
                .trimmed
                .as_ref()
                .unwrap_or_else(|| panic!("{case}: damaged bytes but no trim report: {report:?}"));
            assert_eq!((t.segment, t.offset), (0, off), "{case}: trim at {t:?}");
        }
        None => assert!(
            report.trimmed.is_none(),
            "{case}: nothing damaged remained, yet: {report:?}"
        ),
    }
    // FORMAT §5, §10: the torn bytes are zeroed in place, the file never shrinks (a reader in
    // another process may have it mapped), and the segment the log ends in is whole.
    let len = std::fs::metadata(path).unwrap().len();
    assert!(
        len >= len_before,
        "{case}: the file shrank from {len_before} to {len}"
    );
    assert!(
        len >= HEADER + SEG,
        "{case}: the end segment is whole, len {len}"
    );
    assert_eq!(
        store.head_position(),
        (kept.len() as u64).checked_sub(1),
        "{case}"
    );
    let v = last_version(kept, "order-1");
    assert_eq!(store.stream_version("order-1"), v, "{case}");
    let expected = match v {
        Some(v) => ExpectedVersion::Exact(v),
        None => ExpectedVersion::NoStream,
    };
    let new = NewEvent::new("AfterRecovery", b"{\"n\":1}".to_vec());
    let r = store
        .append("order-1", expected, std::slice::from_ref(&new))
        .unwrap_or_else(|e| panic!("{case}: append after recovery: {e}"));
    assert_eq!(
        r.first_position,
        kept.len() as u64,
        "{case}: dense position"
    );
    assert_eq!(
        r.first_version,
        v.map_or(0, |v| v + 1),
        "{case}: dense version"
    );
    let mut all = read_all(&store);
    assert_eq!(&all[..kept.len()], kept, "{case}");
    let added = all.pop().unwrap();
    assert_eq!(
        (added.event_id, added.position, added.version),
        (new.event_id, r.first_position, r.first_version),
        "{case}"
    );
    drop(store);

    let store = Store::open_with(path, options(Durability::Sync))
        .unwrap_or_else(|e| panic!("{case}: reopen: {e}"));
    assert!(
        store.recovery_report().trimmed.is_none(),
        "{case}: a clean close left bytes to trim: {:?}",
        store.recovery_report()
    );
    let mut expected_all = kept.to_vec();
    expected_all.push(added);
    assert_eq!(read_all(&store), expected_all, "{case}: after reopen");
}

fn case_path(dir: &Path) -> PathBuf {
    dir.join("case.evs")
}

enum Damage {
    Truncate,
    ZeroSuffix,
}

/// Damage a copy of `img` at each offset of `offsets` inside its last frame `last` and check
/// recovery: the frame's events are lost unless the damage changed nothing, a trim is reported
/// at segment 0 offset `trim_at` when non-zero bytes of the broken frame remained, and the
/// store continues. Returns (cases that kept the frame, cases that reported a trim).
fn sweep_frame(
    dir: &Path,
    img: &CrashImage,
    last: FrameInfo,
    trim_at: u64,
    damage: &Damage,
    offsets: impl Iterator<Item = usize>,
    label: &str,
) -> (usize, usize) {
    let earlier = &img.events[..img.events.len() - img.last_frame_events];
    let path = case_path(dir);
    let (start, end, padded_end) = (
        last.file_offset as usize,
        last.end() as usize,
        last.padded_end() as usize,
    );
    assert!(
        img.bytes[end..].iter().all(|&b| b == 0),
        "nothing follows the last frame in a crash image"
    );
    let (mut intact_cases, mut trimmed_cases) = (0usize, 0usize);
    for o in offsets {
        assert!((start..padded_end).contains(&o));
        let (bytes, frame_intact, remaining) = match damage {
            Damage::Truncate => (img.bytes[..o].to_vec(), o >= end, &img.bytes[start..o]),
            Damage::ZeroSuffix => {
                let mut b = img.bytes.clone();
                b[o..padded_end].fill(0);
                let changed = img.bytes[o..padded_end].iter().any(|&x| x != 0);
                (b, !changed, &img.bytes[start..o])
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        let case = format!(
            "{label}, {} at file offset {o} (last frame {start}..{end}, padded {padded_end})",
            match damage {
                Damage::Truncate => "truncated",
                Damage::ZeroSuffix => "zeroed from",
            }
        );
        if frame_intact {
            intact_cases += 1;
            check_recovered(&path, &img.events, None, &case);
        } else {
            // Trimmed when non-zero bytes of the broken frame remain; a frame cut or zeroed
            // from its very start leaves nothing to trim.
            let trim = remaining.iter().any(|&x| x != 0).then_some(trim_at);
            trimmed_cases += usize::from(trim.is_some());
            check_recovered(&path, earlier, trim, &case);
        }
    }
    (intact_cases, trimmed_cases)
}

/// For every byte offset inside the last frame (padding included), damage a copy of the crash
/// image there and check recovery.
fn sweep_last_frame(durability: Durability, damage: Damage) {
    let dir = tempfile::tempdir().unwrap();
    let img = crash_image(dir.path(), durability);
    let frames = walk_frames(&img.bytes);
    let last = *frames.last().unwrap();
    assert_eq!(last.segment, 0);
    assert_eq!(last.seq, 2);
    let (start, end, padded_end) = (
        last.file_offset as usize,
        last.end() as usize,
        last.padded_end() as usize,
    );
    let (intact_cases, trimmed_cases) = sweep_frame(
        dir.path(),
        &img,
        last,
        last.seg_offset,
        &damage,
        start..padded_end,
        &format!("{durability:?}"),
    );
    // The sweep covered the frame: every offset past the frame start leaves non-zero bytes to
    // trim (unless the header CRC begins with zero bytes), and only offsets in the padding (or,
    // when zeroing, in a run of zeros at the end of the body) leave the frame whole.
    let frame_len = end - start;
    assert!(
        trimmed_cases + 4 >= frame_len,
        "only {trimmed_cases} trimmed cases for a {frame_len}-byte frame"
    );
    assert!(intact_cases >= padded_end - end);
    if let Damage::Truncate = damage {
        assert_eq!(intact_cases, padded_end - end);
    }
}

#[test]
fn sync_store_truncated_anywhere_in_last_frame_keeps_exactly_earlier_events() {
    sweep_last_frame(Durability::Sync, Damage::Truncate);
}

#[test]
fn sync_store_zeroed_from_anywhere_in_last_frame_keeps_exactly_earlier_events() {
    sweep_last_frame(Durability::Sync, Damage::ZeroSuffix);
}

#[test]
fn buffered_store_truncated_anywhere_in_last_frame_keeps_exactly_earlier_events() {
    sweep_last_frame(Durability::Buffered, Damage::Truncate);
}

#[test]
fn buffered_store_zeroed_from_anywhere_in_last_frame_keeps_exactly_earlier_events() {
    sweep_last_frame(Durability::Buffered, Damage::ZeroSuffix);
}

#[test]
fn crash_image_without_damage_opens_with_everything_and_no_trim() {
    let dir = tempfile::tempdir().unwrap();
    let img = crash_image(dir.path(), Durability::Sync);
    let path = case_path(dir.path());
    std::fs::write(&path, &img.bytes).unwrap();
    check_recovered(&path, &img.events, None, "undamaged crash image");
}

/// Appends of ~1 KiB until the store has grown to `segments` segments plus `extra` appends.
fn fill(store: &Store, segments: u64, extra: usize) {
    let mut v: Option<u64> = None;
    let mut append = |store: &Store| {
        let e = ExpectedVersion::Any;
        let r = store
            .append("bulk", e, &[NewEvent::new("Blob", vec![b'x'; 1000])])
            .unwrap();
        assert_eq!(r.first_version, v.map_or(0, |v| v + 1));
        v = Some(r.last_version);
    };
    let mut guard = 0;
    while store.stats().segments < segments {
        append(store);
        guard += 1;
        assert!(guard < 1000, "store never grew to {segments} segments");
    }
    for _ in 0..extra {
        append(store);
    }
}

/// Cut a cleanly closed file to `len` bytes, reopen, and check that every event is still there,
/// nothing is reported trimmed, the file is whole segments again, and appends continue.
fn check_cut_keeps_everything(segments: u64, cut: impl FnOnce(u64) -> u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.evs");
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    fill(&store, segments, 3);
    let events = read_all(&store);
    drop(store);
    let full = std::fs::metadata(&path).unwrap().len();
    assert_eq!(full, HEADER + segments * SEG);
    let bytes = std::fs::read(&path).unwrap();
    let frames = walk_frames(&bytes);
    let log_end = frames.last().unwrap().padded_end();
    let new_len = cut(full);
    assert!(new_len >= log_end, "the cut must not touch frames");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(new_len)
        .unwrap();

    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    assert_eq!(read_all(&store), events, "cut to {new_len} bytes");
    assert!(
        store.recovery_report().trimmed.is_none(),
        "{:?}",
        store.recovery_report()
    );
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        (len - HEADER) % SEG,
        0,
        "file re-extended to whole segments, got {len}"
    );
    assert!(len >= log_end);
    let r = store
        .append(
            "after",
            ExpectedVersion::NoStream,
            &[NewEvent::new("A", b"1".to_vec())],
        )
        .unwrap();
    assert_eq!(r.first_position, events.len() as u64);
    drop(store);
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    let all = read_all(&store);
    assert_eq!(&all[..events.len()], &events[..]);
    assert_eq!(all.len(), events.len() + 1);
    assert_eq!(all.last().unwrap().stream_id, "after");
}

#[test]
fn single_segment_cut_in_half_opens_with_all_data() {
    check_cut_keeps_everything(1, |full| full - SEG / 2);
}

#[test]
fn second_segment_cut_in_half_opens_with_all_data() {
    check_cut_keeps_everything(2, |full| full - SEG / 2);
}

#[test]
fn second_segment_cut_to_two_pages_opens_with_all_data() {
    check_cut_keeps_everything(2, |full| full - SEG + 8192);
}

#[test]
fn interrupted_growth_leaving_a_partial_zero_segment_opens_with_all_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grown.evs");
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    fill(&store, 1, 5);
    let events = read_all(&store);
    drop(store);
    // Growth of segment 1 interrupted: the file got longer by a partial, zeroed segment.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(HEADER + SEG + SEG / 3)
        .unwrap();
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    assert_eq!(read_all(&store), events);
    assert!(store.recovery_report().trimmed.is_none());
    // Kept as it was (zeros; the file never shrinks); growth continues into it later.
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        HEADER + SEG + SEG / 3
    );
    let r = store
        .append(
            "bulk",
            ExpectedVersion::Any,
            &[NewEvent::new("Blob", b"y".to_vec())],
        )
        .unwrap();
    assert_eq!(r.first_position, events.len() as u64);
    drop(store);
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    assert_eq!(read_all(&store).len(), events.len() + 1);
}

/// A crash image whose last append was the first frame of a freshly grown segment 1.
fn crash_image_ending_in_new_segment(dir: &Path) -> (CrashImage, FrameInfo, u64) {
    let path = dir.join("grow.evs");
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    fill(&store, 2, 0);
    let events = read_all(&store);
    let bytes = std::fs::read(&path).unwrap();
    drop(store);
    assert_eq!(bytes.len() as u64, HEADER + 2 * SEG);
    let frames = walk_frames(&bytes);
    let last = *frames.last().unwrap();
    assert_eq!((last.segment, last.seg_offset), (1, 0), "{last:?}");
    let seg0_end = frames[frames.len() - 2].padded_end() - HEADER;
    let img = CrashImage {
        bytes,
        events,
        last_frame_events: 1,
    };
    (img, last, seg0_end)
}

#[test]
fn torn_first_frame_of_a_new_segment_is_trimmed_with_the_segment() {
    // FORMAT §4–§5: the log ends in segment 0 where the frame did not fit; that is where the
    // trim is reported and from where the file is zeroed (segment 1 stays, all zeros).
    let dir = tempfile::tempdir().unwrap();
    let (img, last, seg0_end) = crash_image_ending_in_new_segment(dir.path());
    let (start, end) = (last.file_offset as usize, last.end() as usize);
    let offsets = (start..start + 40).chain((start + 40..end).step_by(13));
    for damage in [Damage::Truncate, Damage::ZeroSuffix] {
        let (intact, trimmed) = sweep_frame(
            dir.path(),
            &img,
            last,
            seg0_end,
            &damage,
            offsets.clone(),
            "first frame of segment 1",
        );
        assert_eq!(intact, 0);
        assert!(trimmed + 4 >= offsets.clone().count());
    }
}

/// Frames in a file, as the store counts them on open.
fn frames_on_open(path: &Path) -> u64 {
    let store = Store::open_with(path, options(Durability::Sync)).unwrap();
    let n = store.recovery_report().frames;
    drop(store);
    n
}

#[test]
fn open_and_close_without_writes_leaves_the_file_unchanged() {
    // A clean close seals the log; a later open that writes nothing has nothing to seal, so a
    // read-only open/close cycle must not grow the log by another seal frame each time.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.evs");
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            &[NewEvent::new("Created", b"{}".to_vec())],
        )
        .unwrap();
    drop(store);
    let sealed = std::fs::read(&path).unwrap();
    let frames = walk_frames(&sealed).len() as u64;
    assert_eq!(frames, 2, "one event frame and one seal");
    for round in 0..3 {
        assert_eq!(
            frames_on_open(&path),
            frames,
            "open #{round} after the clean close"
        );
    }
    assert!(
        std::fs::read(&path).unwrap() == sealed,
        "read-only open/close cycles changed the file: {} frames now",
        walk_frames(&std::fs::read(&path).unwrap()).len()
    );
}

#[test]
fn close_writes_at_most_one_seal_frame() {
    // `close()` shuts the store down and then drops it: the drop must not seal a second time.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("close.evs");
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            &[NewEvent::new("Created", b"{}".to_vec())],
        )
        .unwrap();
    store.close().unwrap();
    let frames = walk_frames(&std::fs::read(&path).unwrap());
    let seals = frames.iter().filter(|f| f.body_len == 0).count();
    assert_eq!(seals, 1, "seal frames after close(): {frames:?}");
}
