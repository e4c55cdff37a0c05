//! The snapshot sidecar: `<log path>.snap` beside the log (docs/FORMAT.md §8).
//!
//! Snapshots are a **cache**. The sidecar holds CRC-checked records of
//! (stream, version, event id at that version, payload); the latest record per stream is
//! indexed in memory when the sidecar is opened (only offsets, never payloads, so memory is
//! bounded by the number of streams). Losing or damaging the sidecar never loses data: a bad
//! header resets it, a bad record ends the scan there (the rest is cut off), and every problem is
//! counted in [`SnapshotStats`]. The repository uses a snapshot only after checking that the log
//! still holds that version with that event id.
//!
//! Saves append a record without fsync (a lost snapshot only costs a replay). When dead records
//! (superseded by newer snapshots of the same stream) outweigh live ones, the sidecar is
//! compacted: live records are copied to a temporary file, which is fsynced, renamed over the
//! sidecar, and the directory fsynced.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::log::segment::sync_parent_dir;

/// Magic bytes of a sidecar.
pub const SNAP_MAGIC: [u8; 8] = *b"EVSTSNP\0";
/// Sidecar format version.
pub const SNAP_VERSION: u32 = 1;
/// Bytes of the sidecar header.
pub const SNAP_HEADER_SIZE: u64 = 40;
/// Largest snapshot payload accepted (and the most a hostile length can make us read).
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;
/// Record header: crc u32, len u32.
const RECORD_HEADER: usize = 8;
/// Fixed part of a record body: `stream_len` u8, version u64, event id 16.
const RECORD_FIXED: usize = 1 + 8 + 16;
/// Compaction is considered only past this many dead bytes.
const COMPACT_MIN_DEAD_BYTES: u64 = 64 * 1024;

/// A snapshot as stored: one record of the sidecar (docs/FORMAT.md §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream (aggregate) it is a snapshot of: 1..=255 bytes of UTF-8.
    pub stream: String,
    /// The stream version the state includes (all events up to and including it).
    pub version: u64,
    /// Id of the event at `version`, to check the log still holds the same history.
    pub event_id: Uuid,
    /// The state, opaque to the sidecar: at most [`MAX_SNAPSHOT_BYTES`]. The repository writes
    /// an envelope and the aggregate state (docs/FORMAT.md §9.3).
    pub payload: Vec<u8>,
}

/// Counters of the sidecar's health and use. "ignored" counters say why a snapshot was not
/// used; each such case fell back to replaying the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Streams with a live snapshot.
    pub live: u64,
    /// Snapshots saved since open.
    pub saved: u64,
    /// Snapshots loaded and confirmed by the log (the caller may still skip one that is newer
    /// than the version it asked for, e.g. `load_at_version`).
    pub used: u64,
    /// The sidecar header was missing, damaged or belonged to another log: started afresh.
    pub sidecar_resets: u64,
    /// Records found damaged (CRC or structure); the sidecar was cut before them.
    pub corrupt_records: u64,
    /// Bytes cut off the end of the sidecar on open (damaged or torn records).
    pub bytes_discarded: u64,
    /// Snapshots at a version the log does not have (the log tail was lost).
    pub ignored_ahead_of_log: u64,
    /// Snapshots whose event id differs from the log's at that version.
    pub ignored_stale: u64,
    /// Snapshots whose payload could not be decoded or upcast.
    pub ignored_undecodable: u64,
    /// Snapshots built under another event upcaster chain than the loading repository's
    /// (docs/FORMAT.md §9.3): the state may differ from a replay, so it is not used.
    pub ignored_other_upcasters: u64,
    /// Compactions done since open.
    pub compactions: u64,
}

/// Why a snapshot was not used (see [`SnapshotStore::note_ignored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredReason {
    /// The log does not hold the snapshot's version (its tail was lost): counted in
    /// [`SnapshotStats::ignored_ahead_of_log`].
    AheadOfLog,
    /// The log's event id at that version differs: counted in [`SnapshotStats::ignored_stale`].
    Stale,
    /// The payload could not be decoded or upcast: counted in
    /// [`SnapshotStats::ignored_undecodable`].
    Undecodable,
    /// The snapshot was built under another event upcaster chain (its fingerprint differs
    /// from the repository's): counted in [`SnapshotStats::ignored_other_upcasters`].
    OtherUpcasters,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u64,
    /// Whole record size, header included.
    size: u64,
    version: u64,
}

/// The sidecar file. Not internally synchronised: the store keeps it behind a mutex.
pub struct SnapshotStore {
    path: PathBuf,
    file: File,
    log_file_id: [u8; 16],
    entries: HashMap<String, Entry>,
    end: u64,
    live_bytes: u64,
    dead_bytes: u64,
    stats: SnapshotStats,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("path", &self.path)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The sidecar path for a log path: `<log path>.snap`.
pub fn sidecar_path(log_path: &Path) -> PathBuf {
    let mut s = log_path.as_os_str().to_owned();
    s.push(".snap");
    PathBuf::from(s)
}

fn header_bytes(log_file_id: &[u8; 16]) -> [u8; SNAP_HEADER_SIZE as usize] {
    let mut h = [0u8; SNAP_HEADER_SIZE as usize];
    h[0..8].copy_from_slice(&SNAP_MAGIC);
    h[8..12].copy_from_slice(&SNAP_VERSION.to_le_bytes());
    h[16..32].copy_from_slice(log_file_id);
    let crc = crc32fast::hash(&h[0..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encode one record (header + body).
fn encode_record(stream: &str, version: u64, event_id: &Uuid, payload: &[u8]) -> Vec<u8> {
    let body_len = RECORD_FIXED + stream.len() + payload.len();
    let mut r = Vec::with_capacity(RECORD_HEADER + body_len);
    r.extend_from_slice(&[0u8; 4]);
    r.extend_from_slice(&(body_len as u32).to_le_bytes());
    r.push(stream.len() as u8);
    r.extend_from_slice(stream.as_bytes());
    r.extend_from_slice(&version.to_le_bytes());
    r.extend_from_slice(event_id.as_bytes());
    r.extend_from_slice(payload);
    let crc = crc32fast::hash(&r[4..]);
    r[0..4].copy_from_slice(&crc.to_le_bytes());
    r
}

/// Decode a record body (after the 8-byte header, CRC already checked).
fn decode_body(body: &[u8]) -> Option<Snapshot> {
    let stream_len = *body.first()? as usize;
    let stream_bytes = body.get(1..1 + stream_len)?;
    let stream = std::str::from_utf8(stream_bytes).ok()?;
    if stream.is_empty() {
        return None;
    }
    let at = 1 + stream_len;
    let version = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
    let id: [u8; 16] = body.get(at + 8..at + 24)?.try_into().ok()?;
    Some(Snapshot {
        stream: stream.to_string(),
        version,
        event_id: Uuid::from_bytes(id),
        payload: body.get(at + 24..)?.to_vec(),
    })
}

/// Check a record header's length against what can exist. Returns the body length.
fn check_len(len: u32, remaining: u64) -> Option<usize> {
    let len = len as usize;
    if !(RECORD_FIXED + 1..=RECORD_FIXED + 255 + MAX_SNAPSHOT_BYTES).contains(&len)
        || len as u64 > remaining
    {
        return None;
    }
    Some(len)
}

/// Read the records of a sidecar of `len` bytes whose header checked out, calling `found`
/// with (stream, offset, size, version) of each intact record in file order. Returns the
/// offset where the intact records end: `len`, or the first damaged or torn record.
fn scan_records(
    file: &File,
    len: u64,
    mut found: impl FnMut(String, u64, u64, u64),
) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    std::io::Seek::rewind(&mut reader)?;
    let mut skip = [0u8; SNAP_HEADER_SIZE as usize];
    reader.read_exact(&mut skip)?;
    let mut at = SNAP_HEADER_SIZE;
    let mut body = Vec::new();
    // Bounded by the file length: every iteration consumes at least one record header.
    while at < len {
        let mut h = [0u8; RECORD_HEADER];
        if at + RECORD_HEADER as u64 > len || reader.read_exact(&mut h).is_err() {
            break;
        }
        let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let raw_len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let Some(body_len) = check_len(raw_len, len - at - RECORD_HEADER as u64) else {
            break;
        };
        body.resize(body_len, 0);
        if reader.read_exact(&mut body).is_err() {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[4..8]);
        hasher.update(&body);
        if hasher.finalize() != crc {
            break;
        }
        let Some(snap) = decode_body(&body) else {
            break;
        };
        let size = (RECORD_HEADER + body_len) as u64;
        found(snap.stream, at, size, snap.version);
        at += size;
    }
    Ok(at)
}

/// What [`inspect`] found in a sidecar: what opening it would keep, cut or reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SidecarCheck {
    /// Bytes of the file as read.
    pub bytes: u64,
    /// Streams with an intact snapshot record.
    pub live: u64,
    /// Damaged or torn records found (opening cuts the sidecar before the first; 0 or 1).
    pub corrupt_records: u64,
    /// Bytes opening would discard (cut off, or the whole file on a reset).
    pub bytes_discarded: u64,
    /// The header is damaged or names another log: opening starts the sidecar afresh.
    pub reset: bool,
}

/// Check the sidecar at `path` for the log whose file id is `log_file_id` without changing
/// it: the checks of [`SnapshotStore::open`], read-only, on one file handle (so every field
/// describes the same bytes).
///
/// # Errors
/// `io::ErrorKind::NotFound` for a missing sidecar; the I/O errors of opening and reading it.
pub fn inspect(path: &Path, log_file_id: [u8; 16]) -> io::Result<SidecarCheck> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut check = SidecarCheck {
        bytes: len,
        ..SidecarCheck::default()
    };
    let mut header = [0u8; SNAP_HEADER_SIZE as usize];
    let header_ok = len >= SNAP_HEADER_SIZE
        && file.read_exact_at(&mut header, 0).is_ok()
        && header == header_bytes(&log_file_id);
    if !header_ok {
        // As `open`: an empty file is simply new; anything else is reset.
        check.reset = len > 0;
        check.bytes_discarded = len;
        return Ok(check);
    }
    let mut streams = std::collections::HashSet::new();
    let at = scan_records(&file, len, |stream, _, _, _| {
        streams.insert(stream);
    })?;
    check.live = streams.len() as u64;
    if at < len {
        check.corrupt_records = 1;
        check.bytes_discarded = len - at;
    }
    Ok(check)
}

impl SnapshotStore {
    /// Open (or create) the sidecar at `path` for the log whose file id is `log_file_id`.
    /// Damage is repaired by cutting or resetting the sidecar and counted, never an error.
    ///
    /// # Errors
    /// Only I/O errors (e.g. permissions) of opening, reading, cutting or resetting the file.
    pub fn open(path: &Path, log_file_id: [u8; 16]) -> io::Result<SnapshotStore> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut store = SnapshotStore {
            path: path.to_path_buf(),
            file,
            log_file_id,
            entries: HashMap::new(),
            end: SNAP_HEADER_SIZE,
            live_bytes: 0,
            dead_bytes: 0,
            stats: SnapshotStats::default(),
        };
        let len = store.file.metadata()?.len();
        let mut header = [0u8; SNAP_HEADER_SIZE as usize];
        let header_ok = len >= SNAP_HEADER_SIZE
            && store.file.read_exact_at(&mut header, 0).is_ok()
            && header == header_bytes(&log_file_id);
        if !header_ok {
            if len > 0 {
                store.stats.sidecar_resets += 1;
                store.stats.bytes_discarded += len;
            }
            store.file.set_len(0)?;
            store.file.write_all_at(&header_bytes(&log_file_id), 0)?;
            return Ok(store);
        }
        store.scan(len)?;
        Ok(store)
    }

    fn scan(&mut self, len: u64) -> io::Result<()> {
        let file = self.file.try_clone()?;
        let at = scan_records(&file, len, |stream, offset, size, version| {
            self.insert_entry(stream, offset, size, version);
        })?;
        if at < len {
            // Damaged or torn record: the cache loses it and everything after it.
            self.stats.corrupt_records += 1;
            self.stats.bytes_discarded += len - at;
            self.file.set_len(at)?;
        }
        self.end = at;
        Ok(())
    }

    fn insert_entry(&mut self, stream: String, offset: u64, size: u64, version: u64) {
        if let Some(old) = self.entries.insert(
            stream,
            Entry {
                offset,
                size,
                version,
            },
        ) {
            self.live_bytes -= old.size;
            self.dead_bytes += old.size;
        }
        self.live_bytes += size;
        self.stats.live = self.entries.len() as u64;
    }

    /// Save a snapshot of `stream` at `version` (whose event id is `event_id`). Older snapshots
    /// of the stream become dead; a newer existing one is kept (a save never goes backwards).
    /// Not fsynced ([`SnapshotStore::sync`]); may compact the sidecar
    /// ([`SnapshotStore::compact`]) when dead records outweigh live ones.
    ///
    /// # Errors
    /// `io::ErrorKind::InvalidInput` for a `stream` that is empty or longer than 255 bytes, or
    /// a `payload` over [`MAX_SNAPSHOT_BYTES`]; the I/O errors of the write or the compaction.
    pub fn save(
        &mut self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> io::Result<()> {
        if stream.is_empty() || stream.len() > 255 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stream id must be 1..=255 bytes",
            ));
        }
        if payload.len() > MAX_SNAPSHOT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "snapshot of {} bytes exceeds {MAX_SNAPSHOT_BYTES}",
                    payload.len()
                ),
            ));
        }
        if self
            .entries
            .get(stream)
            .is_some_and(|e| e.version > version)
        {
            return Ok(());
        }
        let record = encode_record(stream, version, &event_id, payload);
        self.file.write_all_at(&record, self.end)?;
        let offset = self.end;
        self.end += record.len() as u64;
        self.insert_entry(stream.to_string(), offset, record.len() as u64, version);
        self.stats.saved += 1;
        if self.dead_bytes > COMPACT_MIN_DEAD_BYTES && self.dead_bytes > self.live_bytes {
            self.compact()?;
        }
        Ok(())
    }

    /// The latest snapshot of `stream`, if one is stored and still reads back intact.
    /// A record damaged since open is dropped and counted.
    pub fn load_latest(&mut self, stream: &str) -> Option<Snapshot> {
        let entry = *self.entries.get(stream)?;
        let mut buf = vec![0u8; entry.size as usize];
        let ok = self.file.read_exact_at(&mut buf, entry.offset).is_ok()
            && buf.len() >= RECORD_HEADER
            && crc32fast::hash(&buf[4..]) == u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let snap = if ok {
            decode_body(&buf[RECORD_HEADER..])
        } else {
            None
        };
        match snap {
            Some(s) if s.stream == stream && s.version == entry.version => Some(s),
            _ => {
                self.stats.corrupt_records += 1;
                self.forget(stream);
                None
            }
        }
    }

    /// Drop the snapshot of `stream` (e.g. found stale); it becomes dead space.
    pub fn forget(&mut self, stream: &str) {
        if let Some(old) = self.entries.remove(stream) {
            self.live_bytes -= old.size;
            self.dead_bytes += old.size;
        }
        self.stats.live = self.entries.len() as u64;
    }

    /// Count a snapshot the caller decided not to use.
    pub fn note_ignored(&mut self, reason: IgnoredReason) {
        match reason {
            IgnoredReason::AheadOfLog => self.stats.ignored_ahead_of_log += 1,
            IgnoredReason::Stale => self.stats.ignored_stale += 1,
            IgnoredReason::Undecodable => self.stats.ignored_undecodable += 1,
            IgnoredReason::OtherUpcasters => self.stats.ignored_other_upcasters += 1,
        }
    }

    /// Count a snapshot the caller used.
    pub fn note_used(&mut self) {
        self.stats.used += 1;
    }

    /// Take back a count of [`SnapshotStore::note_used`]: the snapshot the log confirmed
    /// turned out not to decode, so it served no load (it is counted as ignored instead).
    pub fn retract_used(&mut self) {
        self.stats.used = self.stats.used.saturating_sub(1);
    }

    /// Counters.
    pub fn stats(&self) -> SnapshotStats {
        self.stats
    }

    /// Bytes of the sidecar file (header and all records, dead ones included).
    pub fn file_bytes(&self) -> u64 {
        self.end
    }

    /// Make saved snapshots durable (fdatasync).
    ///
    /// # Errors
    /// The error of the sync.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Rewrite the sidecar with live records only: temp file (`<sidecar>.compact-tmp`), fsync,
    /// rename, fsync directory. Live records that no longer check out are dropped and counted.
    ///
    /// # Errors
    /// The I/O errors of those steps; the sidecar file is replaced only by the rename.
    pub fn compact(&mut self) -> io::Result<()> {
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".compact-tmp");
        let tmp_path = PathBuf::from(tmp_name);
        let tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)?;
        tmp.write_all_at(&header_bytes(&self.log_file_id), 0)?;
        let mut live: Vec<(String, Entry)> =
            self.entries.iter().map(|(s, e)| (s.clone(), *e)).collect();
        live.sort_by_key(|(_, e)| e.offset);
        let mut at = SNAP_HEADER_SIZE;
        let mut new_entries = HashMap::with_capacity(live.len());
        let mut buf = Vec::new();
        for (stream, e) in live {
            buf.resize(e.size as usize, 0);
            self.file.read_exact_at(&mut buf, e.offset)?;
            // Only carry over records that still check out.
            if crc32fast::hash(&buf[4..]) != u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) {
                self.stats.corrupt_records += 1;
                continue;
            }
            tmp.write_all_at(&buf, at)?;
            new_entries.insert(
                stream,
                Entry {
                    offset: at,
                    size: e.size,
                    version: e.version,
                },
            );
            at += e.size;
        }
        tmp.sync_all()?;
        std::fs::rename(&tmp_path, &self.path)?;
        sync_parent_dir(&self.path)?;
        self.file = tmp;
        self.end = at;
        self.live_bytes = at - SNAP_HEADER_SIZE;
        self.dead_bytes = 0;
        self.entries = new_entries;
        self.stats.live = self.entries.len() as u64;
        self.stats.compactions += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn latest_snapshot_per_stream_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.snap");
        let fid = [9u8; 16];
        let mut s = SnapshotStore::open(&p, fid).unwrap();
        s.save("a", 3, id(3), b"three").unwrap();
        s.save("a", 7, id(7), b"seven").unwrap();
        s.save("b", 1, id(1), b"one").unwrap();
        s.save("a", 5, id(5), b"older, ignored").unwrap();
        drop(s);
        let mut s = SnapshotStore::open(&p, fid).unwrap();
        assert_eq!(s.load_latest("a").unwrap().payload, b"seven");
        assert_eq!(s.load_latest("b").unwrap().version, 1);
        assert!(s.load_latest("c").is_none());
        assert_eq!(s.stats().live, 2);
    }

    #[test]
    fn torn_record_is_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.snap");
        let fid = [9u8; 16];
        let mut s = SnapshotStore::open(&p, fid).unwrap();
        s.save("a", 1, id(1), b"one").unwrap();
        s.save("b", 2, id(2), b"two").unwrap();
        let len = s.file_bytes();
        drop(s);
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        let mut s = SnapshotStore::open(&p, fid).unwrap();
        assert!(s.load_latest("a").is_some());
        assert!(s.load_latest("b").is_none());
        assert_eq!(s.stats().corrupt_records, 1);
    }

    #[test]
    fn sidecar_of_another_log_is_reset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.snap");
        let mut s = SnapshotStore::open(&p, [1u8; 16]).unwrap();
        s.save("a", 1, id(1), b"one").unwrap();
        drop(s);
        let mut s = SnapshotStore::open(&p, [2u8; 16]).unwrap();
        assert!(s.load_latest("a").is_none());
        assert_eq!(s.stats().sidecar_resets, 1);
    }

    #[test]
    fn compaction_keeps_live_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.snap");
        let fid = [3u8; 16];
        let mut s = SnapshotStore::open(&p, fid).unwrap();
        let payload = vec![7u8; 4096];
        for v in 0..100u64 {
            s.save("hot", v, id(v as u8), &payload).unwrap();
        }
        s.save("cold", 1, id(1), b"cold").unwrap();
        assert!(s.stats().compactions >= 1);
        // Without compaction the file would hold all 100 records (~410 KB).
        assert!(s.file_bytes() < COMPACT_MIN_DEAD_BYTES + 3 * 4200);
        drop(s);
        let mut s = SnapshotStore::open(&p, fid).unwrap();
        assert_eq!(s.load_latest("hot").unwrap().version, 99);
        assert_eq!(s.load_latest("cold").unwrap().payload, b"cold");
        assert!(!dir.path().join("x.snap.compact-tmp").exists());
    }
}
