//! Every field of every `verify` verdict — clean, torn tail, corruption, and the sidecar report —
//! matches the truth of a log built with known contents: frames (found by the independent
//! walker of `tests/common/layout.rs`), events, streams, segment and offset. Checked on the
//! library's `maintenance::verify` report and on the CLI's text and `--json` output.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::common::cli::{evstore, group, json_raw, json_u64, stdout};
use crate::common::layout::{self, align8, FrameInfo, HEADER, SEG};
use crate::common::*;
use evstore::maintenance::{verify, Verdict, VerifyReport};
use evstore::{Durability, ExpectedVersion, NewEvent, Store};

const APPENDS: usize = 211;

/// The stream of append `i`: new streams keep appearing, so a prefix has fewer than the whole.
fn stream_of(i: usize) -> String {
    if i == APPENDS - 1 {
        return "the-last-stream".to_string();
    }
    format!("s{}", i % (1 + i / 20))
}

/// Events of append `i`.
fn events_of(i: usize) -> usize {
    1 + i % 3
}

/// What the first `n` appends hold: (events, streams).
fn truth(n: usize) -> (u64, u64) {
    let events = (0..n).map(events_of).sum::<usize>() as u64;
    let streams = (0..n).map(stream_of).collect::<HashSet<_>>().len() as u64;
    (events, streams)
}

/// A closed log of `APPENDS` appends (one frame each, over several 64 KiB segments) and its
/// frames as the independent walker sees them: one per append, then the close-time seal.
fn build(dir: &Path, name: &str) -> (PathBuf, Vec<FrameInfo>) {
    let path = dir.join(name);
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    for i in 0..APPENDS {
        let events: Vec<NewEvent> = (0..events_of(i))
            .map(|e| NewEvent::new("T", vec![b'x'; 400 + (i * 37 + e * 11) % 500]))
            .collect();
        store
            .append(&stream_of(i), ExpectedVersion::Any, &events)
            .unwrap();
    }
    drop(store);
    let frames = layout::walk_frames(&std::fs::read(&path).unwrap());
    assert_eq!(
        frames.len(),
        APPENDS + 1,
        "one frame per append, then a seal"
    );
    assert!(frames[..APPENDS].iter().all(|f| f.body_len > 0));
    assert_eq!(frames[APPENDS].body_len, 0, "the seal");
    assert!(frames.last().unwrap().segment >= 3, "several segments");
    (path, frames)
}

/// (segment, offset) just past frame `f`.
fn end_of(f: &FrameInfo) -> (u64, u64) {
    (f.segment, f.seg_offset + align8(24 + f.body_len))
}

/// The report's size fields against the file.
fn check_sizes(r: &VerifyReport, path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    assert_eq!(r.file_bytes, len);
    assert_eq!(r.segment_size, SEG);
    assert_eq!(r.segments, (len - HEADER).div_ceil(SEG));
}

/// `verify` through the CLI, as text and as JSON, against the library report (itself checked
/// against the truth by the caller): the same figures, the right exit code.
fn check_cli(dir: &Path, path: &Path, r: &VerifyReport) {
    let p = path.to_str().unwrap();
    let code = match r.verdict {
        Verdict::Clean => 0,
        Verdict::TornTail { .. } => 4,
        Verdict::Corrupt { .. } => 3,
    };
    let text = evstore(dir, &["verify", p]);
    assert_eq!(text.status.code(), Some(code), "{text:?}");
    let text = stdout(&text);
    let summary = format!(
        "{} events in {} frames, {} streams, {} segments of 64.0 KiB, {} bytes",
        group(r.events),
        group(r.frames),
        group(r.streams),
        r.segments,
        group(r.file_bytes)
    );
    let first = text.lines().next().unwrap();
    match &r.verdict {
        Verdict::Clean => assert_eq!(first, format!("{p}: clean: {summary}")),
        Verdict::TornTail {
            segment,
            offset,
            reason,
        } => {
            assert_eq!(
                first,
                format!("{p}: TORN TAIL at segment {segment} offset {offset}: {reason}")
            );
            assert!(
                text.contains(&format!("\n  before it: {summary}\n")),
                "{text}"
            );
        }
        Verdict::Corrupt { site, what } => {
            let (segment, offset) = (site.segment().unwrap(), site.offset());
            assert_eq!(
                first,
                format!("{p}: CORRUPT at segment {segment} offset {offset}: {what}")
            );
            assert!(
                text.contains(&format!("\n  valid before the damage: {summary}\n")),
                "{text}"
            );
        }
    }

    let json = evstore(dir, &["verify", p, "--json"]);
    assert_eq!(json.status.code(), Some(code), "{json:?}");
    let json = stdout(&json);
    assert_eq!(json.lines().count(), 1, "{json}");
    for (key, value) in [
        ("frames", r.frames),
        ("events", r.events),
        ("streams", r.streams),
        ("segments", r.segments),
        ("segment_size", r.segment_size),
        ("file_bytes", r.file_bytes),
    ] {
        assert_eq!(json_u64(&json, key), Some(value), "{key}: {json}");
    }
    let (verdict, place) = match &r.verdict {
        Verdict::Clean => ("\"clean\"", None),
        Verdict::TornTail {
            segment, offset, ..
        } => ("\"torn_tail\"", Some((*segment, *offset))),
        Verdict::Corrupt { site, .. } => (
            "\"corrupt\"",
            Some((site.segment().unwrap(), site.offset())),
        ),
    };
    assert_eq!(json_raw(&json, "verdict"), Some(verdict), "{json}");
    if let Some((segment, offset)) = place {
        assert_eq!(json_u64(&json, "segment"), Some(segment), "{json}");
        assert_eq!(json_u64(&json, "offset"), Some(offset), "{json}");
    }
}

#[test]
fn a_clean_log_reports_every_frame_event_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = build(dir.path(), "clean.evs");
    let r = verify(&path).unwrap();
    assert_eq!(r.verdict, Verdict::Clean);
    let (events, streams) = truth(APPENDS);
    assert_eq!(
        (r.frames, r.events, r.streams),
        (frames.len() as u64, events, streams)
    );
    check_sizes(&r, &path);
    assert_eq!(r.sidecar, None);
    check_cli(dir.path(), &path, &r);
}

#[test]
fn a_torn_tail_reports_the_frames_before_it_and_where_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = build(dir.path(), "torn.evs");
    let pristine = std::fs::read(&path).unwrap();
    let (all_events, all_streams) = truth(APPENDS);

    // Garbage after the seal: every frame is valid, the log ends after the seal.
    let seal = frames[APPENDS];
    let mut bytes = pristine.clone();
    bytes[(seal.padded_end() + 100) as usize] = 0xAB;
    std::fs::write(&path, &bytes).unwrap();
    let r = verify(&path).unwrap();
    let Verdict::TornTail {
        segment,
        offset,
        reason,
    } = &r.verdict
    else {
        panic!("expected a torn tail, got {:?}", r.verdict);
    };
    assert_eq!((*segment, *offset), end_of(&seal));
    assert!(!reason.is_empty());
    assert_eq!(
        (r.frames, r.events, r.streams),
        (frames.len() as u64, all_events, all_streams)
    );
    check_sizes(&r, &path);
    check_cli(dir.path(), &path, &r);

    // The last append torn (its seal never written): the log ends before it, and the stream
    // only it wrote is gone from the counts.
    let last = frames[APPENDS - 1];
    let mut bytes = pristine.clone();
    bytes[seal.file_offset as usize..seal.padded_end() as usize].fill(0);
    bytes[(last.file_offset + 24 + last.body_len / 2) as usize] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let r = verify(&path).unwrap();
    let Verdict::TornTail {
        segment, offset, ..
    } = &r.verdict
    else {
        panic!("expected a torn tail, got {:?}", r.verdict);
    };
    assert_eq!((*segment, *offset), (last.segment, last.seg_offset));
    let (events, streams) = truth(APPENDS - 1);
    assert_eq!(streams, all_streams - 1);
    assert_eq!(
        (r.frames, r.events, r.streams),
        ((APPENDS - 1) as u64, events, streams)
    );
    check_sizes(&r, &path);
    check_cli(dir.path(), &path, &r);
}

#[test]
fn corruption_reports_the_valid_frames_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (path, frames) = build(dir.path(), "corrupt.evs");
    let pristine = std::fs::read(&path).unwrap();
    let check = |bytes: &[u8], at: (u64, u64), valid_frames: usize| {
        std::fs::write(&path, bytes).unwrap();
        let r = verify(&path).unwrap();
        let Verdict::Corrupt { site, .. } = &r.verdict else {
            panic!("expected corruption, got {:?}", r.verdict);
        };
        assert_eq!((site.segment().unwrap(), site.offset()), at);
        let (events, streams) = truth(valid_frames);
        assert_eq!(
            (r.frames, r.events, r.streams),
            (valid_frames as u64, events, streams),
            "{:?}",
            r.verdict
        );
        check_sizes(&r, &path);
        check_cli(dir.path(), &path, &r);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "verify changes nothing"
        );
    };

    // A flipped bit in a frame that later frames prove durable.
    let k = 150;
    let f = frames[k];
    assert!(f.segment > 0);
    let mut bytes = pristine.clone();
    bytes[(f.file_offset + 24 + 10) as usize] ^= 1;
    check(&bytes, (f.segment, f.seg_offset), k);

    // A frame whose checksums hold but whose second batch breaks a rule, after a first batch
    // that is valid and starts a new stream: nothing of that frame counts.
    let k = 120;
    let f = frames[k];
    let batch = layout::encode_batch("fresh", 0, i64::MAX / 4, &[([7; 16], "T", b"x")]);
    let body = [batch.clone(), batch].concat();
    let frame = layout::encode_frame(&pristine, k as u64, 1, &body);
    assert!(
        frame.len() as u64 <= align8(24 + f.body_len),
        "fits in place"
    );
    let mut bytes = pristine.clone();
    bytes[f.file_offset as usize..][..frame.len()].copy_from_slice(&frame);
    check(&bytes, (f.segment, f.seg_offset), k);

    // Bytes in the unused end of a segment, before the frame the writer put in the next one.
    let (k, before) = (1..frames.len())
        .map(|i| (i, frames[i - 1]))
        .find(|(i, p)| frames[*i].segment == p.segment + 1 && end_of(p).1 < SEG - 8)
        .expect("a segment switch with room left in the segment");
    let mut bytes = pristine.clone();
    let at = HEADER + before.segment * SEG + SEG - 3;
    bytes[at as usize] = 0x5A;
    check(&bytes, (before.segment, SEG - 3), k);
}

#[test]
fn the_sidecar_report_counts_what_opening_it_would_keep() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = build(dir.path(), "snap.evs");
    let id = |n: u8| uuid::Uuid::from_bytes([n; 16]);
    {
        let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
        store.save_snapshot("a", 0, id(1), b"a0").unwrap();
        store.save_snapshot("b", 1, id(2), b"b1").unwrap();
        store.save_snapshot("a", 2, id(3), b"a2").unwrap();
        store.save_snapshot("c", 0, id(4), b"c0").unwrap();
        store.save_snapshot("d", 0, id(5), b"d0").unwrap();
    }
    let sidecar = evstore::snapshot::sidecar_path(&path);
    // The last record ("d") torn: three streams keep a snapshot, one record is damaged.
    let len = std::fs::metadata(&sidecar).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sidecar)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let before = std::fs::read(&sidecar).unwrap();
    let r = verify(&path).unwrap();
    assert_eq!(r.verdict, Verdict::Clean);
    let s = r.sidecar.clone().expect("a sidecar");
    assert_eq!(s.path, sidecar);
    assert_eq!(
        (s.bytes, s.live_snapshots, s.corrupt_records, s.reset),
        (len - 3, 3, 1, false)
    );
    assert_eq!(
        std::fs::read(&sidecar).unwrap(),
        before,
        "verify changes nothing"
    );
    check_sidecar_cli(dir.path(), &path, &r);

    // Another log's sidecar: reset on open, so nothing counts.
    let (other, _) = build(dir.path(), "other.evs");
    {
        let store = Store::open_with(&other, small_options(Durability::Sync)).unwrap();
        store.save_snapshot("x", 0, id(9), b"x0").unwrap();
    }
    let foreign = std::fs::read(evstore::snapshot::sidecar_path(&other)).unwrap();
    std::fs::write(&sidecar, &foreign).unwrap();
    let r = verify(&path).unwrap();
    let s = r.sidecar.clone().expect("a sidecar");
    assert_eq!(
        (s.bytes, s.live_snapshots, s.corrupt_records, s.reset),
        (foreign.len() as u64, 0, 0, true)
    );
    assert_eq!(
        std::fs::read(&sidecar).unwrap(),
        foreign,
        "verify changes nothing"
    );
    check_sidecar_cli(dir.path(), &path, &r);
}

/// The sidecar line of `verify` and the `sidecar` object of `verify --json` and `stats --json`.
fn check_sidecar_cli(dir: &Path, path: &Path, r: &VerifyReport) {
    let s = r.sidecar.as_ref().unwrap();
    let p = path.to_str().unwrap();
    let text = stdout(&evstore(dir, &["verify", p]));
    let line = text
        .lines()
        .find(|l| l.starts_with("snapshots: "))
        .unwrap_or_else(|| panic!("{text}"));
    let live = format!(
        "{} live snapshot{}",
        s.live_snapshots,
        if s.live_snapshots == 1 { "" } else { "s" }
    );
    assert!(
        line.starts_with(&format!("snapshots: {}: ", s.path.display())) && line.contains(&live),
        "{line}"
    );
    if s.reset {
        assert!(line.contains("unusable header"), "{line}");
    } else {
        assert!(
            line.contains(&format!("{} damaged record", s.corrupt_records)),
            "{line}"
        );
    }
    for args in [&["verify", p, "--json"][..], &["stats", p, "--json"][..]] {
        let json = stdout(&evstore(dir, args));
        let at = json
            .find("\"sidecar\":{")
            .unwrap_or_else(|| panic!("{json}"));
        let side = &json[at..];
        assert_eq!(json_u64(side, "bytes"), Some(s.bytes), "{json}");
        assert_eq!(
            json_u64(side, "live_snapshots"),
            Some(s.live_snapshots),
            "{json}"
        );
        assert_eq!(
            json_u64(side, "corrupt_records"),
            Some(s.corrupt_records),
            "{json}"
        );
        let reset = if s.reset { "true" } else { "false" };
        assert_eq!(json_raw(side, "reset"), Some(reset), "{json}");
    }
}
