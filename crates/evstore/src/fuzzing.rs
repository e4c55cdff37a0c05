//! Entry points for the fuzz targets in `fuzz/`, kept in the library so the corpus can be
//! replayed by a plain `cargo test` (`tests/it/fuzz_corpus_replays.rs`) without nightly.
//!
//! Each function takes arbitrary bytes and must never panic, never allocate more than a bounded
//! amount and never read out of bounds; an `Err` from the store is a fine outcome. The `ops`
//! target additionally checks the store against an in-memory model and panics on a mismatch
//! (that is a bug the fuzzer should report).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::log::frame;
use crate::snapshot::SnapshotStore;
use crate::{Durability, ExpectedVersion, NewEvent, Options, Store};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A scratch directory for one fuzz input, removed on drop. Prefers /dev/shm (fast).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Option<Scratch> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "evstore-fuzz-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).ok()?;
        Some(Scratch(dir))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Read every event of an open store through every read API.
fn read_everything(store: &Store) {
    let mut streams = Vec::new();
    for e in store.read_all(0) {
        match e {
            Ok(e) => {
                if streams.len() < 16 && !streams.contains(&e.stream_id) {
                    streams.push(e.stream_id);
                }
            }
            Err(_) => break,
        }
    }
    for s in &streams {
        let _ = store.read_stream(s, 0);
        let _ = store.stream_version(s);
    }
    for (ty, _) in store.event_types().into_iter().take(8) {
        let _ = store.read_by_type(&ty, None);
        let _ = store.read_by_type(&ty, Some(chrono::DateTime::UNIX_EPOCH));
        let by_type = crate::Query::new(vec![crate::QueryItem::new(&[ty.as_str()], &[])]);
        let _ = store.read_query(&by_type, None);
    }
    // Queries over the tags of the first events (tag index lookups).
    let tags: Vec<String> = store
        .read_all(0)
        .take(64)
        .filter_map(std::result::Result::ok)
        .flat_map(|e| e.tags)
        .take(8)
        .collect();
    for t in &tags {
        let q = crate::Query::new(vec![crate::QueryItem::new(&[], &[t.as_str()])]);
        let _ = store.read_query(&q, None);
    }
}

/// Fuzz target `open_log`: the bytes are a log file; open it, read it all, append, reopen.
///
/// # Panics
/// When a file that opened once fails to reopen after an append, or the reopened store holds
/// other events than the first open saw plus the append: a bug for the fuzzer to report.
pub fn open_log(data: &[u8]) {
    // Keep inputs small: the file is extended to whole segments on open.
    if data.len() > 1 << 20 {
        return;
    }
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let path = scratch.path("f.evs");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let options = Options {
        create_if_missing: false,
        durability: Durability::Buffered,
        ..Options::default()
    };
    let Ok(store) = Store::open_with(&path, options.clone()) else {
        return;
    };
    read_everything(&store);
    let _ = store.append(
        "fuzz-after",
        ExpectedVersion::Any,
        &[NewEvent::new("Fuzz", b"x".to_vec())],
    );
    let head = store.head_position();
    drop(store);
    let reopened = match Store::open_with(&path, options) {
        Ok(s) => s,
        Err(e) => panic!("a store that opened once must reopen after an append: {e}"),
    };
    assert_eq!(
        reopened.head_position(),
        head,
        "reopen keeps every event the first open saw plus the append"
    );
    read_everything(&reopened);
}

/// Fuzz target `frame_decode`: the bytes are the rest of a segment from a frame's offset.
pub fn frame_decode(data: &[u8]) {
    let file_id = [0x5Au8; 16];
    let _ = frame::decode_frame_header(data, &file_id);
    // Try the bytes both as a checked frame (rarely passes the CRCs) and as a raw body.
    let body: &[u8] = match frame::check_frame(data, &file_id, 0) {
        Ok((_, body)) => body,
        Err(_) => data,
    };
    // Both record layouts: version 1 (no tags) and version 2 (tag sections).
    for layout in [frame::Layout::V1, frame::Layout::V2] {
        frame_decode_as(body, layout);
    }
}

/// [`frame_decode`]'s walk of a body laid out as `layout` says.
fn frame_decode_as(body: &[u8], layout: frame::Layout) {
    let mut index = crate::index::Index::new(layout);
    let _ = index.add_frame(body, crate::log::segment::HEADER_SIZE);
    // Walk batches and events directly too.
    let mut at = 0usize;
    for _ in 0..1024 {
        let Some(rest) = body.get(at..) else { break };
        let Ok(h) = frame::decode_batch_header(rest) else {
            break;
        };
        let mut off = h.events_offset;
        for _ in 0..h.event_count.min(4096) {
            match rest.get(off..).map(|b| frame::decode_event(b, layout)) {
                Some(Ok(ev)) => off += ev.size,
                _ => break,
            }
        }
        if off == 0 {
            break;
        }
        at += off;
    }
}

/// Fuzz target `snapshot_sidecar`: the bytes are a sidecar file.
pub fn snapshot_sidecar(data: &[u8]) {
    if data.len() > 1 << 20 {
        return;
    }
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let path = scratch.path("f.evs.snap");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    // Use the file id the sidecar claims (bytes 16..32) so records get scanned.
    let mut file_id = [0u8; 16];
    if let Some(id) = data.get(16..32) {
        file_id.copy_from_slice(id);
    }
    let Ok(mut snaps) = SnapshotStore::open(&path, file_id) else {
        return;
    };
    for s in ["a", "b", "Order-1", "stream"] {
        let _ = snaps.load_latest(s);
    }
    let _ = snaps.save("a", 1, uuid::Uuid::nil(), b"payload");
    let _ = snaps.compact();
    let _ = snaps.load_latest("a");
}

/// Fuzz target `ops`: the bytes script appends, reads, reopens and cuts (truncating the
/// closed file), checked against an in-memory model.
///
/// # Panics
/// When the store disagrees with the model (an append succeeds or fails against it, a read
/// returns other events, a reopen or a cut loses or keeps the wrong events), or a reopen fails:
/// a bug for the fuzzer to report.
pub fn ops(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let path = scratch.path("ops.evs");
    let options = Options {
        durability: Durability::Buffered,
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let Ok(mut store) = Store::open_with(&path, options.clone()) else {
        return;
    };
    let mut model = Model {
        events: Vec::new(),
        append_ends: vec![0],
    };
    let mut bytes = data.iter().copied();
    // Bounded by the input length: every op consumes at least one byte.
    while let Some(op) = bytes.next() {
        match op % 8 {
            0..=2 => ops_append(&store, &mut model, op, &mut bytes),
            3 => ops_append_multi(&store, &mut model, op, &mut bytes),
            4 => ops_append_if(&store, &mut model, op, &mut bytes),
            5 => ops_read_all(&store, &model),
            6 => store = ops_reopen(store, &path, &options, &model),
            _ => {
                let frac = bytes.next().unwrap_or(0);
                store = ops_cut(store, &path, &options, &mut model, frac);
            }
        }
    }
    let versions: HashMap<&str, u64> = model.events.iter().map(|e| (e.0.as_str(), e.1)).collect();
    for (s, v) in versions {
        assert_eq!(store.stream_version(s), Some(v));
    }
}

/// What the `ops` target expects of the store.
struct Model {
    /// Every event (stream, version, id, data length, tags), in position order.
    events: Vec<(String, u64, uuid::Uuid, usize, Vec<String>)>,
    /// The event count after each append (0 first): the prefixes a cut may leave.
    append_ends: Vec<usize>,
}

/// `ops` op 0..=4: append 1..=3 events to one of four streams with one of the four kinds of
/// expected version, and check the outcome against the model. Reads its arguments from
/// `bytes`.
fn ops_append(store: &Store, model: &mut Model, op: u8, bytes: &mut impl Iterator<Item = u8>) {
    let stream = format!("s{}", bytes.next().unwrap_or(0) % 4);
    let count = 1 + (bytes.next().unwrap_or(0) % 3) as usize;
    // At most 3 x 20,400 bytes: a batch always fits one 64 KiB segment.
    let size = (bytes.next().unwrap_or(0) as usize) * 80;
    let mode = bytes.next().unwrap_or(0) % 4;
    let current = model
        .events
        .iter()
        .rev()
        .find(|e| e.0 == stream)
        .map(|e| e.1);
    let expected = match mode {
        0 => ExpectedVersion::Any,
        1 => ExpectedVersion::NoStream,
        2 => ExpectedVersion::StreamExists,
        _ => current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact),
    };
    let tag_bits = bytes.next().unwrap_or(0);
    let events: Vec<NewEvent> = (0..count)
        .map(|i| NewEvent::new(format!("T{i}"), vec![op; size]).with_tags(fuzz_tags(tag_bits >> i)))
        .collect();
    let ok = model_accepts(current, expected);
    match store.append(&stream, expected, &events) {
        Ok(r) => {
            assert!(ok, "append succeeded against the model");
            assert_eq!(r.first_position, model.events.len() as u64);
            model_push(model, &stream, current, &events);
            model.append_ends.push(model.events.len());
        }
        Err(crate::Error::WrongExpectedVersion { .. }) => {
            assert!(!ok, "append failed against the model");
        }
        Err(e) => panic!("unexpected append error: {e}"),
    }
}

/// Up to two of the tags `t0`, `t1`, `t2`, picked by the low bits of `bits`.
fn fuzz_tags(bits: u8) -> Vec<String> {
    (0..3)
        .filter(|i| bits & (1 << i) != 0)
        .take(2)
        .map(|i| format!("t{i}"))
        .collect()
}

/// The model's last version of `stream`.
fn model_version(model: &Model, stream: &str) -> Option<u64> {
    model
        .events
        .iter()
        .rev()
        .find(|e| e.0 == stream)
        .map(|e| e.1)
}

/// Whether an append with `expected` passes against a stream at `current`.
fn model_accepts(current: Option<u64>, expected: ExpectedVersion) -> bool {
    expected.matches(current)
}

/// Record `events` appended to `stream` (last version `current`) in the model.
fn model_push(model: &mut Model, stream: &str, current: Option<u64>, events: &[NewEvent]) {
    let first = current.map_or(0, |v| v + 1);
    for (i, e) in events.iter().enumerate() {
        model.events.push((
            stream.to_string(),
            first + i as u64,
            e.event_id,
            e.data.len(),
            e.tags.clone(),
        ));
    }
}

/// `ops` op 3: a multi-stream append to two distinct streams (each `Any` or its exact
/// version, sometimes a stale one): all or nothing, as the model says.
fn ops_append_multi(
    store: &Store,
    model: &mut Model,
    op: u8,
    bytes: &mut impl Iterator<Item = u8>,
) {
    let a = bytes.next().unwrap_or(0) % 4;
    let b = (a + 1 + bytes.next().unwrap_or(0) % 3) % 4;
    let mode_bits = bytes.next().unwrap_or(0);
    let size = (bytes.next().unwrap_or(0) as usize) * 40;
    let mut parts = Vec::new();
    let mut ok = true;
    for (k, s) in [a, b].into_iter().enumerate() {
        let stream = format!("s{s}");
        let current = model_version(model, &stream);
        let expected = match (mode_bits >> (2 * k)) & 3 {
            0 => ExpectedVersion::Any,
            1 => current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact),
            2 => ExpectedVersion::Exact(current.map_or(0, |v| v + 1)),
            _ => ExpectedVersion::StreamExists,
        };
        ok &= model_accepts(current, expected);
        let events = vec![NewEvent::new("M", vec![op; size]).with_tags(fuzz_tags(mode_bits >> 4))];
        parts.push((
            stream,
            current,
            crate::StreamAppend::new(&format!("s{s}"), expected, events),
        ));
    }
    let request: Vec<crate::StreamAppend> = parts.iter().map(|p| p.2.clone()).collect();
    match store.append_multi(&request) {
        Ok(results) => {
            assert!(ok, "multi-stream append succeeded against the model");
            assert_eq!(results[0].first_position, model.events.len() as u64);
            for (stream, current, part) in &parts {
                model_push(model, stream, *current, &part.events);
            }
            model.append_ends.push(model.events.len());
        }
        Err(crate::Error::WrongExpectedVersion { .. }) => {
            assert!(!ok, "multi-stream append failed against the model");
        }
        Err(e) => panic!("unexpected multi-stream append error: {e}"),
    }
}

/// `ops` op 4: a conditional append whose query asks for one tag (and maybe one type) after a
/// position: refused exactly when the model holds a matching event after it, with those
/// positions.
fn ops_append_if(store: &Store, model: &mut Model, op: u8, bytes: &mut impl Iterator<Item = u8>) {
    let tag = format!("t{}", bytes.next().unwrap_or(0) % 3);
    let ty_pick = bytes.next().unwrap_or(0) % 4;
    let after_pick = u64::from(bytes.next().unwrap_or(0));
    let len = model.events.len() as u64;
    let after = (after_pick % (len + 1)).checked_sub(1);
    let types: Vec<String> = (ty_pick < 3)
        .then(|| format!("T{ty_pick}"))
        .into_iter()
        .collect();
    let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let query = crate::Query::new(vec![crate::QueryItem::new(&type_refs, &[tag.as_str()])]);
    // Event types are recorded in the model implicitly: "T{i}" by index in its append, "M"
    // for multi-stream appends; read them back from the store to stay exact.
    let conflicts: Vec<u64> = match store.read_query(&query, after) {
        Ok((found, _)) => found.iter().map(|e| e.position).collect(),
        Err(e) => panic!("read_query failed: {e}"),
    };
    let model_conflicts: Vec<u64> = model
        .events
        .iter()
        .enumerate()
        .filter(|(p, e)| after.is_none_or(|a| *p as u64 > a) && e.4.contains(&tag))
        .map(|(p, _)| p as u64)
        .collect();
    // The tag part of the model bounds the store's answer; with no type asked for they agree.
    assert!(
        conflicts.iter().all(|p| model_conflicts.contains(p)),
        "query beyond the model"
    );
    if types.is_empty() {
        assert_eq!(
            conflicts, model_conflicts,
            "query by tag agrees with the model"
        );
    }
    let events = [NewEvent::new("C", vec![op; 8]).with_tags([tag.clone()])];
    let condition = crate::AppendCondition::new(query, after);
    match store.append_if("cond", ExpectedVersion::Any, &events, &condition) {
        Ok(r) => {
            assert!(conflicts.is_empty(), "condition passed over {conflicts:?}");
            assert_eq!(r.first_position, len);
            let current = model_version(model, "cond");
            model_push(model, "cond", current, &events);
            model.append_ends.push(model.events.len());
        }
        Err(crate::Error::AppendConditionFailed { positions, .. }) => {
            assert_eq!(
                positions, conflicts,
                "the condition names the matching events"
            );
        }
        Err(e) => panic!("unexpected conditional append error: {e}"),
    }
}

/// `ops` op 5: `read_all` returns exactly the model's events.
fn ops_read_all(store: &Store, model: &Model) {
    let got: Vec<_> = store.read_all(0).collect();
    assert_eq!(got.len(), model.events.len(), "read_all length");
    for (g, m) in got.iter().zip(&model.events) {
        match g {
            Ok(e) => assert_eq!(
                (&e.stream_id, e.version, e.event_id, e.data.len(), &e.tags),
                (&m.0, m.1, m.2, m.3, &m.4)
            ),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// `ops` op 6: close and reopen; every event is still there.
fn ops_reopen(store: Store, path: &Path, options: &Options, model: &Model) -> Store {
    drop(store);
    let store = match Store::open_with(path, options.clone()) {
        Ok(s) => s,
        Err(e) => panic!("reopen failed: {e}"),
    };
    assert_eq!(
        store.head_position(),
        (model.events.len() as u64).checked_sub(1)
    );
    store
}

/// `ops` op 7: close, cut the file at `frac / 256` of the bytes after its header, reopen; what
/// survives is a prefix of whole appends, which the model keeps.
fn ops_cut(store: Store, path: &Path, options: &Options, model: &mut Model, frac: u8) -> Store {
    drop(store);
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
        if let Ok(len) = f.metadata().map(|m| m.len()) {
            let cut = crate::log::segment::HEADER_SIZE
                + (len - crate::log::segment::HEADER_SIZE) * u64::from(frac) / 256;
            let _ = f.set_len(cut);
        }
    }
    let store = match Store::open_with(path, options.clone()) {
        Ok(s) => s,
        Err(e) => panic!("open after a cut failed: {e}"),
    };
    let n = store.head_position().map_or(0, |p| p as usize + 1);
    assert!(model.append_ends.contains(&n), "a cut leaves whole appends");
    assert!(n <= model.events.len());
    model.events.truncate(n);
    model.append_ends.retain(|&e| e <= n);
    store
}
