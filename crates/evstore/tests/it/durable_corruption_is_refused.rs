//! Damage the log proves was durable is refused, not trimmed (docs/FORMAT.md §4–§5): a bit flip
//! in a frame that a later frame's durable watermark (or the close seal) covers makes
//! `Store::open` fail with `Error::Corruption` naming the frame's segment and offset, and the
//! file is left untouched. Frames whose CRCs hold but whose content is invalid are corruption
//! wherever they are. Files that are not logs, or whose header is damaged, are refused. Garbage
//! after the end of the log proves nothing and is trimmed.

use std::path::Path;

use evstore::{Durability, Error, ExpectedVersion, NewEvent, RecordedEvent, Site, Store};

use crate::common::layout::*;
use crate::common::{all_events as read_all, small_options as options};

/// Recompute the body CRC and the salted header CRC of the frame at `f` after its body was
/// edited in place (body length unchanged).
fn reseal_frame(file: &mut [u8], f: &FrameInfo) {
    let at = f.file_offset as usize;
    let body_crc = crc32fast::hash(&file[at + 24..at + 24 + f.body_len as usize]);
    file[at + 16..at + 20].copy_from_slice(&body_crc.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&file[24..40]);
    hasher.update(&file[at + 4..at + 24]);
    let crc = hasher.finalize();
    file[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A log with four one-batch frames (seq 0..=3), Sync durability.
/// `sealed`: closed cleanly (a seal frame follows); otherwise the bytes as a crash leaves them.
struct Log {
    bytes: Vec<u8>,
    events: Vec<RecordedEvent>,
    /// The frames holding events (not the seal).
    event_frames: Vec<FrameInfo>,
}

fn build_log(dir: &Path, durability: Durability, flush_before_last: bool, sealed: bool) -> Log {
    let path = dir.join(format!(
        "src-{durability:?}-{flush_before_last}-{sealed}.evs"
    ));
    let store = Store::open_with(&path, options(durability)).unwrap();
    let appends: [(&str, ExpectedVersion, usize); 4] = [
        ("order-1", ExpectedVersion::NoStream, 2),
        ("order-2", ExpectedVersion::NoStream, 1),
        ("order-1", ExpectedVersion::Exact(1), 3),
        ("order-2", ExpectedVersion::Exact(0), 1),
    ];
    for (i, (stream, expected, n)) in appends.iter().enumerate() {
        if i == appends.len() - 1 && flush_before_last {
            store.flush().unwrap();
        }
        let events: Vec<NewEvent> = (0..*n)
            .map(|j| NewEvent::new(format!("Type{i}"), format!("data-{i}-{j}").into_bytes()))
            .collect();
        store.append(stream, *expected, &events).unwrap();
    }
    let events = read_all(&store);
    assert_eq!(events.len(), 7);
    let bytes = std::fs::read(&path).unwrap();
    // `drop` (not `close`) so exactly one shutdown runs: see the seal test in
    // torn_tail_is_trimmed.rs for what a second shutdown does.
    drop(store);
    let bytes = if sealed {
        std::fs::read(&path).unwrap()
    } else {
        bytes
    };
    let frames = walk_frames(&bytes);
    let expected_frames = if sealed { 5 } else { 4 };
    assert_eq!(frames.len(), expected_frames, "{frames:?}");
    if sealed {
        assert_eq!(frames[4].body_len, 0, "the close seal is an empty frame");
        assert_eq!(
            frames[4].durable_seq, 4,
            "the seal proves every earlier frame"
        );
    }
    Log {
        bytes,
        events,
        event_frames: frames[..4].to_vec(),
    }
}

/// Write `bytes` to `path`, open, and return the error; the file must be left as it was.
fn open_refused(path: &Path, bytes: &[u8], case: &str) -> Error {
    std::fs::write(path, bytes).unwrap();
    let err = match Store::open_with(path, options(Durability::Sync)) {
        Ok(store) => panic!(
            "{case}: opened (report {:?}, {} events) instead of refusing",
            store.recovery_report(),
            read_all(&store).len()
        ),
        Err(e) => e,
    };
    assert!(
        std::fs::read(path).unwrap() == bytes,
        "{case}: a refused open modified the file"
    );
    err
}

fn assert_corruption_at(err: &Error, segment: u64, offset: u64, case: &str) {
    match err {
        Error::Corruption { site, .. } => assert_eq!(
            (site.segment(), site.offset()),
            (Some(segment), offset),
            "{case}: wrong location in {err}"
        ),
        other => panic!(
            "{case}: expected Corruption at segment {segment} offset {offset}, got {other:?}"
        ),
    }
}

/// Flip one bit in every byte of `range(frame)` (relative to the frame start) of each frame in
/// `frames`, one at a time, and check the open is refused at the frame's location.
fn flip_each_byte_refused(
    log: &Log,
    frames: &[FrameInfo],
    range: impl Fn(&FrameInfo) -> std::ops::Range<u64>,
    what: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.evs");
    let mut cases = 0;
    for f in frames {
        for rel in range(f) {
            let at = (f.file_offset + rel) as usize;
            let mut bytes = log.bytes.clone();
            bytes[at] ^= 1 << (rel % 8);
            let case = format!(
                "{what}: bit {} of byte {rel} of frame {} flipped",
                rel % 8,
                f.seq
            );
            let err = open_refused(&path, &bytes, &case);
            assert_corruption_at(&err, f.segment, f.seg_offset, &case);
            cases += 1;
        }
    }
    assert!(cases > 0, "no case ran");
}

#[test]
fn header_bit_flip_in_a_frame_proven_by_later_watermarks_is_corruption_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Crash image: frames 0..=2 are covered by the watermark of the frame after them.
    let log = build_log(dir.path(), Durability::Sync, false, false);
    for f in &log.event_frames[1..] {
        assert_eq!(
            f.durable_seq, f.seq,
            "Sync: each frame proves all earlier ones"
        );
    }
    flip_each_byte_refused(
        &log,
        &log.event_frames[..3],
        |_| 0..24,
        "crash image, header",
    );
}

#[test]
fn body_bit_flip_in_a_frame_proven_by_later_watermarks_is_corruption_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, false);
    flip_each_byte_refused(
        &log,
        &log.event_frames[..3],
        |f| 24..24 + f.body_len,
        "crash image, body",
    );
}

#[test]
fn bit_flip_in_the_last_frame_before_the_close_seal_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    let last = &log.event_frames[3..];
    flip_each_byte_refused(&log, last, |_| 0..24, "sealed, last frame header");
    flip_each_byte_refused(
        &log,
        last,
        |f| 24..24 + f.body_len,
        "sealed, last frame body",
    );
}

#[test]
fn bit_flip_in_a_buffered_frame_covered_by_a_flush_watermark_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    // Buffered: frames 0..=2, then flush, then frame 3 records that 0..=2 are durable.
    let log = build_log(dir.path(), Durability::Buffered, true, false);
    assert_eq!(log.event_frames[3].durable_seq, 3);
    flip_each_byte_refused(&log, &log.event_frames[..3], |_| 0..24, "buffered, header");
    flip_each_byte_refused(
        &log,
        &log.event_frames[..3],
        |f| 24..24 + f.body_len,
        "buffered, body",
    );
}

#[test]
fn unflushed_buffered_frames_prove_nothing_so_their_damage_is_a_torn_tail() {
    // The documented limit of the proof (FORMAT §5): without a flush no frame claims another is
    // durable, so damage in frame 1 is trimmed with everything after it.
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Buffered, false, false);
    assert!(log.event_frames.iter().all(|f| f.durable_seq == 0));
    let f = log.event_frames[1];
    let mut bytes = log.bytes.clone();
    bytes[f.file_offset as usize + 30] ^= 0x10;
    let path = dir.path().join("case.evs");
    std::fs::write(&path, &bytes).unwrap();
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    assert_eq!(read_all(&store), log.events[..2].to_vec());
    let t = store.recovery_report().trimmed.clone().unwrap();
    assert_eq!((t.segment, t.offset), (0, f.seg_offset));
}

#[test]
fn a_whole_missing_frame_proven_by_a_later_frame_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    let path = dir.path().join("case.evs");
    for f in &log.event_frames {
        let mut bytes = log.bytes.clone();
        bytes[f.file_offset as usize..f.padded_end() as usize].fill(0);
        let case = format!("frame {} zeroed", f.seq);
        let err = open_refused(&path, &bytes, &case);
        assert_corruption_at(&err, 0, f.seg_offset, &case);
    }
}

#[test]
fn a_damaged_close_seal_is_trimmed_and_every_event_kept() {
    // The seal is the last frame: nothing proves it, so its damage is a torn tail.
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    let seal = walk_frames(&log.bytes)[4];
    let path = dir.path().join("case.evs");
    for rel in 0..24u64 {
        let mut bytes = log.bytes.clone();
        bytes[(seal.file_offset + rel) as usize] ^= 0x80;
        std::fs::write(&path, &bytes).unwrap();
        let store = Store::open_with(&path, options(Durability::Sync))
            .unwrap_or_else(|e| panic!("seal byte {rel}: {e}"));
        assert_eq!(read_all(&store), log.events, "seal byte {rel}");
        let t = store.recovery_report().trimmed.clone().unwrap();
        assert_eq!((t.segment, t.offset), (0, seal.seg_offset));
        // Still writable, and the next close seals the log again.
        store
            .append(
                "order-3",
                ExpectedVersion::NoStream,
                &[NewEvent::new("X", b"1".to_vec())],
            )
            .unwrap();
        drop(store);
        let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
        assert_eq!(read_all(&store).len(), log.events.len() + 1);
        assert!(store.recovery_report().trimmed.is_none());
    }
}

/// Byte offsets of the first batch (and its first event) in a one-batch frame body.
mod body {
    pub const EVENT_COUNT: usize = 0;
    pub const STREAM_LEN: usize = 4;
    pub const FIRST_VERSION: usize = 5;
    pub const RECORDED_AT: usize = 13;
    pub const STREAM: usize = 21;
}

type Mutation = (&'static str, fn(&mut [u8]));

/// Content edits that keep the body length. `b` is the body; the stream id is 7 bytes
/// ("order-N"), so the first event starts at 28.
fn content_mutations() -> Vec<Mutation> {
    const EV: usize = body::STREAM + 7;
    vec![
        ("event_count 0", |b| {
            b[body::EVENT_COUNT..body::EVENT_COUNT + 4].copy_from_slice(&0u32.to_le_bytes())
        }),
        ("event_count one too many", |b| {
            let n = u32::from_le_bytes(b[0..4].try_into().unwrap()) + 1;
            b[body::EVENT_COUNT..body::EVENT_COUNT + 4].copy_from_slice(&n.to_le_bytes())
        }),
        ("stream_len 0", |b| b[body::STREAM_LEN] = 0),
        ("stream id not UTF-8", |b| b[body::STREAM] = 0xff),
        ("version gap", |b| {
            let v = u64::from_le_bytes(b[5..13].try_into().unwrap()) + 1;
            b[body::FIRST_VERSION..body::FIRST_VERSION + 8].copy_from_slice(&v.to_le_bytes())
        }),
        ("recorded_at goes backwards", |b| {
            b[body::RECORDED_AT..body::RECORDED_AT + 8].copy_from_slice(&1i64.to_le_bytes())
        }),
        ("recorded_at out of chrono's range", |b| {
            b[body::RECORDED_AT..body::RECORDED_AT + 8].copy_from_slice(&i64::MAX.to_le_bytes())
        }),
        ("type_len 0", |b| b[EV + 16] = 0),
        ("data_len past the body", |b| {
            b[EV + 17..EV + 21].copy_from_slice(&0x7fff_0000u32.to_le_bytes())
        }),
        ("metadata_len past the body", |b| {
            b[EV + 21..EV + 25].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
        ("event type not UTF-8", |b| b[EV + 25] = 0xc0),
    ]
}

fn check_bad_content_refused(log: &Log, frame: FrameInfo, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.evs");
    for (name, mutate) in content_mutations() {
        let mut bytes = log.bytes.clone();
        let at = frame.file_offset as usize + 24;
        mutate(&mut bytes[at..at + frame.body_len as usize]);
        assert_ne!(bytes, log.bytes, "{name}: the mutation changed nothing");
        reseal_frame(&mut bytes, &frame);
        assert_eq!(
            walk_frames(&bytes).len(),
            walk_frames(&log.bytes).len(),
            "{name}: CRCs must hold after the edit"
        );
        let case = format!("{what}, frame {}: {name}", frame.seq);
        let err = open_refused(&path, &bytes, &case);
        assert_corruption_at(&err, frame.segment, frame.seg_offset, &case);
    }
}

#[test]
fn frame_with_valid_crcs_but_invalid_content_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    check_bad_content_refused(&log, log.event_frames[2], "sealed log");
}

#[test]
fn last_frame_with_valid_crcs_but_invalid_content_is_corruption_even_when_unproven() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Buffered, false, false);
    check_bad_content_refused(
        &log,
        log.event_frames[3],
        "unflushed crash image, last frame",
    );
}

#[test]
fn corruption_in_a_later_segment_names_that_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.evs");
    let store = Store::open_with(&src, options(Durability::Sync)).unwrap();
    let mut n = 0;
    while store.stats().segments < 2 || n < 70 {
        store
            .append(
                "bulk",
                ExpectedVersion::Any,
                &[NewEvent::new("Blob", vec![b'x'; 1000])],
            )
            .unwrap();
        n += 1;
        assert!(n < 1000);
    }
    drop(store);
    let bytes = std::fs::read(&src).unwrap();
    let frames = walk_frames(&bytes);
    let in_seg1: Vec<FrameInfo> = frames.iter().filter(|f| f.segment == 1).copied().collect();
    assert!(in_seg1.len() >= 3, "{in_seg1:?}");
    let path = dir.path().join("case.evs");
    // A frame in the middle of segment 1, and the last frame of segment 0 (proven by frames in
    // segment 1).
    let last_of_seg0 = *frames.iter().rev().find(|f| f.segment == 0).unwrap();
    for f in [in_seg1[1], last_of_seg0] {
        let mut b = bytes.clone();
        b[f.file_offset as usize + 40] ^= 4;
        let case = format!("frame {} (segment {})", f.seq, f.segment);
        let err = open_refused(&path, &b, &case);
        assert_corruption_at(&err, f.segment, f.seg_offset, &case);
    }
    // The first frame of segment 1: the log's valid prefix ends in segment 0, where that frame
    // would have gone had it fit, and FORMAT §5 names that end position (k, off).
    let f = in_seg1[0];
    let mut b = bytes.clone();
    b[f.file_offset as usize + 40] ^= 4;
    let err = open_refused(&path, &b, "first frame of segment 1");
    assert_corruption_at(
        &err,
        0,
        last_of_seg0.padded_end() - HEADER,
        "first frame of segment 1",
    );
}

#[test]
fn text_file_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.evs");
    let long: Vec<u8> = "This is a shopping list, not an event log.\n"
        .repeat(200)
        .into_bytes();
    for text in [b"hello\n".to_vec(), long] {
        let err = open_refused(&path, &text, "text file");
        assert!(
            matches!(err, Error::NotALog { ref path, .. } if path.ends_with("notes.evs")),
            "{err:?}"
        );
    }
}

#[test]
fn damaged_file_header_is_corruption_without_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    let path = dir.path().join("case.evs");
    // Every used header byte after the magic, including the CRC itself.
    for at in 8..64usize {
        let mut bytes = log.bytes.clone();
        bytes[at] ^= 1 << (at % 8);
        let case = format!("header byte {at}");
        let err = open_refused(&path, &bytes, &case);
        assert!(
            matches!(
                err,
                Error::Corruption {
                    site: Site::Header { .. },
                    ..
                }
            ),
            "{case}: {err:?}"
        );
    }
    // A damaged magic is not a log at all.
    for at in 0..8usize {
        let mut bytes = log.bytes.clone();
        bytes[at] ^= 0x20;
        let err = open_refused(&path, &bytes, "magic");
        assert!(
            matches!(err, Error::NotALog { .. }),
            "magic byte {at}: {err:?}"
        );
    }
    // A file cut inside its header (the header is never partly written at the real path).
    let err = open_refused(&path, &log.bytes[..100], "cut header");
    assert!(
        matches!(
            err,
            Error::Corruption {
                site: Site::Header { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

/// Put `junk` at segment-0 offset `at` (after the end of the log), open, and check that the
/// junk is trimmed, every event kept, and the bytes after the log are zero again.
fn check_junk_after_end_trimmed(log: &Log, at: u64, junk: &[u8], case: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.evs");
    let frames = walk_frames(&log.bytes);
    let end = frames.last().unwrap().padded_end();
    assert!(HEADER + at >= end);
    let mut bytes = log.bytes.clone();
    let p = (HEADER + at) as usize;
    bytes[p..p + junk.len()].copy_from_slice(junk);
    std::fs::write(&path, &bytes).unwrap();
    let store = Store::open_with(&path, options(Durability::Sync))
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(read_all(&store), log.events, "{case}");
    let t = store
        .recovery_report()
        .trimmed
        .clone()
        .unwrap_or_else(|| panic!("{case}: junk not reported"));
    assert_eq!((t.segment, t.offset), (0, end - HEADER), "{case}");
    // Checked while the store is open: the trim happened in `open` (a close may add a seal).
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len() as u64, HEADER + SEG, "{case}");
    assert_eq!(&after[..end as usize], &log.bytes[..end as usize], "{case}");
    assert!(
        after[end as usize..].iter().all(|&b| b == 0),
        "{case}: junk left after the end of the log"
    );
    drop(store);
    let store = Store::open_with(&path, options(Durability::Sync)).unwrap();
    assert!(store.recovery_report().trimmed.is_none(), "{case}");
    assert_eq!(read_all(&store), log.events, "{case}");
}

#[test]
fn garbage_after_the_end_of_the_log_is_trimmed_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    let end = walk_frames(&log.bytes).last().unwrap().padded_end() - HEADER;
    let junk: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8 | 1).collect();
    check_junk_after_end_trimmed(&log, end, &junk, "junk right at the end");
    check_junk_after_end_trimmed(&log, end + 1001, &junk[..7], "junk in the middle");
    check_junk_after_end_trimmed(&log, SEG - 5, &junk[..5], "junk at the segment end");
}

#[test]
fn stale_frames_after_the_end_of_the_log_are_trimmed_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_log(dir.path(), Durability::Sync, false, true);
    let end = walk_frames(&log.bytes).last().unwrap().padded_end() - HEADER;
    // An old copy of one of this file's own frames (seq too small to prove anything).
    let f = log.event_frames[1];
    let old = log.bytes[f.file_offset as usize..f.padded_end() as usize].to_vec();
    check_junk_after_end_trimmed(&log, end, &old, "own old frame at the end");
    check_junk_after_end_trimmed(&log, end + 800, &old, "own old frame later");

    // Frames of another evstore file with larger seqs and watermarks: salted with another
    // file id, they prove nothing here.
    let other_path = dir.path().join("other.evs");
    let other = Store::open_with(&other_path, options(Durability::Sync)).unwrap();
    for i in 0..12 {
        other
            .append(
                "x",
                ExpectedVersion::Any,
                &[NewEvent::new("T", format!("{i}").into_bytes())],
            )
            .unwrap();
    }
    drop(other);
    let other_bytes = std::fs::read(&other_path).unwrap();
    let other_frames = walk_frames(&other_bytes);
    let g = other_frames[9];
    assert!(g.durable_seq > 5);
    let foreign =
        other_bytes[g.file_offset as usize..other_frames[11].padded_end() as usize].to_vec();
    check_junk_after_end_trimmed(&log, end, &foreign, "foreign frames at the end");
    check_junk_after_end_trimmed(&log, end + 4096, &foreign, "foreign frames later");
}

#[test]
fn flush_watermark_proves_exactly_the_frames_before_it() {
    // Buffered: frames 0 and 1, flush, then frames 2, 3, 4 unsynced. Frames 2..=4 all record
    // durable_seq 2: frames 0 and 1 are proven, frames 2 and 3 are not even though intact
    // frames follow them (a power loss may write pages back out of order).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.evs");
    let store = Store::open_with(&path, options(Durability::Buffered)).unwrap();
    for i in 0..5u64 {
        if i == 2 {
            store.flush().unwrap();
        }
        let expected = match i {
            0 => ExpectedVersion::NoStream,
            _ => ExpectedVersion::Exact(i - 1),
        };
        store
            .append(
                "s",
                expected,
                &[NewEvent::new("T", format!("event {i}").into_bytes())],
            )
            .unwrap();
    }
    let events = read_all(&store);
    let bytes = std::fs::read(&path).unwrap();
    drop(store);
    let frames = walk_frames(&bytes);
    assert_eq!(frames.len(), 5, "crash image: no seal");
    let durable: Vec<u64> = frames.iter().map(|f| f.durable_seq).collect();
    assert_eq!(durable, [0, 0, 2, 2, 2]);

    let case_path = dir.path().join("case.evs");
    for f in &frames[..4] {
        let mut b = bytes.clone();
        b[f.file_offset as usize + 30] ^= 0x01;
        let case = format!("frame {} damaged", f.seq);
        if f.seq < 2 {
            let err = open_refused(&case_path, &b, &case);
            assert_corruption_at(&err, 0, f.seg_offset, &case);
        } else {
            std::fs::write(&case_path, &b).unwrap();
            let store = Store::open_with(&case_path, options(Durability::Sync))
                .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
            assert_eq!(
                read_all(&store),
                events[..f.seq as usize].to_vec(),
                "{case}"
            );
            let t = store.recovery_report().trimmed.clone().unwrap();
            assert_eq!((t.segment, t.offset), (0, f.seg_offset), "{case}");
        }
    }
}
