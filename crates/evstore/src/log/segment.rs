//! The file header, fixed-size segments, growth and the per-segment memory maps
//! (docs/FORMAT.md §1–§2).
//!
//! # Memory maps and SIGBUS
//!
//! Each segment is mapped read-only, once, and never remapped while the store is open. Reading
//! a mapped page that no longer exists in the file (because the file was truncated under the map)
//! raises SIGBUS and kills the process. The design avoids that:
//!
//! * a segment is mapped only after it has been fully allocated (`posix_fallocate`) and the
//!   allocation made durable, so every mapped byte exists in the file;
//! * the store never shrinks the file while maps exist: the only truncation (trimming a torn
//!   tail, docs/FORMAT.md §5) happens during `open`, before the maps used by readers are made,
//!   and the maps made for the recovery scan are dropped first;
//! * the file is protected by an exclusive `flock`, so a cooperating process never truncates it.
//!
//! A process that ignores the lock and truncates the file can still crash a reader: that is the
//! same contract as SQLite's or LMDB's memory-mapped I/O.
//!
//! # Read-ahead and the unwritten tail
//!
//! Every map is advised `MADV_RANDOM`: a page fault reads just that page, never the kernel's
//! read-around window (8 MiB on the machine in docs/PERFORMANCE.md). Read-around from a fault
//! near the end of the log would pull the preallocated, never-written rest of the segment into
//! the page cache as large zero folios, and every later small `pwrite` into such a folio walks
//! all of its blocks: appends measured 2–4× slower for as long as they wrote into them. Readers
//! that know they will scan ask for read-ahead explicitly, and only over bytes that hold log
//! data: [`Segment::will_need`] (the recovery scan, up to the first hole of each segment;
//! `read_all`, over the span of its next batch of locations).
//!
//! Writes never go through the maps: they use `pwrite` on the file descriptor, and reach the
//! maps through the shared page cache. Readers only touch bytes that were published (written,
//! and made durable in `Sync` mode) before the index pointed at them, and published bytes are
//! never written again.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Advice, Mmap, MmapOptions};
use parking_lot::RwLock;

use crate::types::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};

/// Bytes reserved for the file header; segment 0 starts here.
pub const HEADER_SIZE: u64 = 4096;
/// Magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"EVSTLOG\0";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_USED: usize = 64;

/// The decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub segment_size: u64,
    pub file_id: [u8; 16],
    pub created_at_us: i64,
}

/// Why the first bytes of a file are not a usable header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Not an evstore log at all.
    NotALog(String),
    /// An evstore log of another format version.
    Unsupported(u32),
    /// The magic matches but the header is damaged.
    Corrupt(String),
}

impl FileHeader {
    /// A header for a new file.
    pub fn new(segment_size: u64) -> FileHeader {
        FileHeader {
            segment_size,
            file_id: *uuid::Uuid::new_v4().as_bytes(),
            created_at_us: chrono::Utc::now().timestamp_micros(),
        }
    }

    /// The 4096-byte header block.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.segment_size.to_le_bytes());
        b[24..40].copy_from_slice(&self.file_id);
        b[40..48].copy_from_slice(&self.created_at_us.to_le_bytes());
        // 48..52 flags = 0, 52..60 reserved = 0
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and check a header from the first bytes of a file.
    pub fn decode(b: &[u8]) -> Result<FileHeader, HeaderError> {
        if b.len() < HEADER_USED {
            return Err(HeaderError::NotALog(format!(
                "file is {} bytes, shorter than a header",
                b.len()
            )));
        }
        if b[0..8] != MAGIC {
            return Err(HeaderError::NotALog("wrong magic bytes".into()));
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(x)
        };
        if crc32fast::hash(&b[0..60]) != u32_at(60) {
            return Err(HeaderError::Corrupt("file header checksum mismatch".into()));
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::Unsupported(version));
        }
        if u64::from(u32_at(12)) != HEADER_SIZE {
            return Err(HeaderError::Corrupt(format!(
                "header size {} is not {HEADER_SIZE}",
                u32_at(12)
            )));
        }
        if u32_at(48) != 0 {
            return Err(HeaderError::Corrupt(format!(
                "unknown header flags {:#x}",
                u32_at(48)
            )));
        }
        let segment_size = u64_at(16);
        validate_segment_size(segment_size)
            .map_err(|e| HeaderError::Corrupt(format!("bad segment size in header: {e}")))?;
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&b[24..40]);
        Ok(FileHeader {
            segment_size,
            file_id,
            created_at_us: u64_at(40) as i64,
        })
    }

    /// File offset where segment `k` starts.
    pub fn segment_start(&self, k: u64) -> u64 {
        HEADER_SIZE + k * self.segment_size
    }

    /// Which segment a file offset falls in, and the offset inside it.
    pub fn split(&self, file_offset: u64) -> (u64, u64) {
        debug_assert!(file_offset >= HEADER_SIZE, "offset inside the header");
        let rel = file_offset - HEADER_SIZE;
        (rel / self.segment_size, rel % self.segment_size)
    }
}

/// Check a requested segment size.
pub fn validate_segment_size(size: u64) -> Result<(), String> {
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) || !size.is_multiple_of(4096) {
        return Err(format!(
            "segment size {size} must be a multiple of 4096 between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}"
        ));
    }
    Ok(())
}

/// Reserve `[offset, offset + len)` of the file on disk (so a full disk shows up here, not as
/// a failed write later), extending the file if needed.
pub fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let l = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
    // SAFETY: plain syscall wrapper on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, l) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate support: fall back to extending the file (sparse).
        libc::EOPNOTSUPP | libc::EINVAL => {
            if file.metadata()?.len() < offset + len {
                file.set_len(offset + len)?;
            }
            Ok(())
        }
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// The first offset `>= offset` of `file` that may hold data: bytes in between are a hole or
/// an unwritten (preallocated, never written) extent and read as zeros. `None`: everything
/// from `offset` to the end of the file reads as zeros. Uses `lseek(SEEK_DATA)`; where the
/// file system does not support it, or on any error, returns `Some(offset)` ("read to find
/// out"), which is always correct.
///
/// ext4 and XFS report an unwritten extent as data when the page cache holds data for it
/// (written but not yet flushed), so a process crash right after a `pwrite` still shows it.
pub fn next_data(file: &File, offset: u64) -> Option<u64> {
    match seek(file, offset, libc::SEEK_DATA) {
        Ok(d) => Some(d.max(offset)),
        Err(Some(libc::ENXIO)) => None,
        Err(_) => Some(offset),
    }
}

/// The first offset `>= offset` of `file` that is a hole or an unwritten extent (reads as
/// zeros without holding data): `lseek(SEEK_HOLE)`. The end of the file counts as a hole. On
/// file systems without support (or any error) returns `u64::MAX`: "data everywhere", which is
/// always safe for its use (bounding read-ahead to log data).
pub fn next_hole(file: &File, offset: u64) -> u64 {
    seek(file, offset, libc::SEEK_HOLE).map_or(u64::MAX, |h| h.max(offset))
}

/// `lseek(file, offset, whence)`: the resulting offset, or the errno (`None`: not a syscall
/// error, e.g. an offset beyond `off_t`).
fn seek(file: &File, offset: u64, whence: libc::c_int) -> Result<u64, Option<i32>> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(offset).map_err(|_| None)?;
    // SAFETY: plain syscall wrapper on a file descriptor we own; no memory is passed. Moving
    // the file position is harmless: every read and write of the log names its offset
    // (pread/pwrite/mmap).
    let rc = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    u64::try_from(rc).map_err(|_| io::Error::last_os_error().raw_os_error())
}

/// Read-ahead for a recovery scan of segment `k` (mapped as `seg`): [`Segment::will_need`]
/// from the segment start up to its first hole, i.e. the bytes that may hold frames.
pub fn prefetch_for_scan(file: &File, header: &FileHeader, k: u64, seg: &Segment) {
    let start = header.segment_start(k);
    let data_len = next_hole(file, start).saturating_sub(start);
    seg.will_need(0, data_len);
}

/// fsync the directory holding `path`, so a new name in it is durable.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(dir)?.sync_all()
}

/// The name prefix of the temporary files that build a new log at `path`:
/// `.<file name>.creating-`, followed by 32 hex digits (a random UUID).
fn creating_prefix(path: &Path) -> io::Result<std::ffi::OsString> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".creating-");
    Ok(prefix)
}

/// A temporary creation file of a dead creator must be at least this old to be removed when it
/// is empty (see [`remove_stale_creating_files`]).
pub const STALE_EMPTY_CREATING_FILE: std::time::Duration = std::time::Duration::from_secs(10);

/// Create a new log file at `path`: header and segment 0 are written and made durable under a
/// temporary name (`.<name>.creating-<uuid>`, beside it), which is then hard-linked into place
/// and the directory fsynced, so the real path never shows a half-written header and its name
/// is durable before the first append is acknowledged. Returns `Ok(false)` if another process
/// created the file first (the directory is fsynced then too: that creator may have died before
/// doing it).
///
/// The creator holds an exclusive `flock` on its temporary file from right after creating it
/// until the temporary name is gone, which tells [`remove_stale_creating_files`] the file is in
/// use. A crash can leave the temporary file behind (a whole preallocated segment); the next
/// read-write open of the log removes it.
pub fn create_file(path: &Path, segment_size: u64) -> io::Result<bool> {
    let mut tmp_name = creating_prefix(path)?;
    tmp_name.push(uuid::Uuid::new_v4().simple().to_string());
    let tmp = path.with_file_name(tmp_name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let result = (|| {
        f.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => e,
            // A name made a moment ago from a random UUID: nobody else can hold it.
            std::fs::TryLockError::WouldBlock => {
                io::Error::new(io::ErrorKind::WouldBlock, "temporary log file is locked")
            }
        })?;
        initialize(&f, segment_size)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    // Unlocks only now, with the temporary name gone. (Once linked, the temporary file is the
    // log itself: the lock is on the log's inode and is released before anyone opens it here.)
    drop(f);
    let created = result?;
    sync_parent_dir(path)?;
    Ok(created)
}

/// Remove the temporary files that creations of the log at `path` left behind when they were
/// killed (or lost power) before removing them: the names `.<file name>.creating-<32 hex>`
/// beside `path`, and no others (not those of another log). Returns how many were removed.
///
/// A file is left alone while it may belong to a creator that is still running:
/// * if it is locked: a creator holds an exclusive `flock` on its file until the file's
///   temporary name is gone ([`create_file`]), and a dead process holds no lock (once linked,
///   the file is also the log itself, whose open store holds its lock: kept until it closes);
/// * if it is empty and younger than [`STALE_EMPTY_CREATING_FILE`]: a creator takes its lock
///   right after creating the file and before writing anything, so only an empty file can be
///   unlocked while in use, for that moment. (An empty file costs no space; a later open
///   removes it.)
///
/// Removing a name that is a hard link to the log (a creator killed between linking and
/// removing it) removes only that extra name. Best effort: an entry that cannot be read,
/// opened or removed is skipped.
pub fn remove_stale_creating_files(path: &Path) -> io::Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    let prefix = creating_prefix(path)?;
    let prefix = prefix.as_bytes();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(suffix) = name.as_bytes().strip_prefix(prefix) else {
            continue;
        };
        if suffix.len() != 32 || !suffix.iter().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let candidate = dir.join(&name);
        // Never follow a symlink planted under such a name; only regular files are ours.
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_file() => {}
            _ => continue,
        }
        let Ok(f) = File::open(&candidate) else {
            continue;
        };
        // Look before taking the lock: a live creator locks its file right after creating it
        // and writes only then, so a young empty file may be one whose creator has not locked
        // it yet. Probing its lock would make that creator's own lock attempt fail.
        let Ok(meta) = f.metadata() else { continue };
        let young = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < STALE_EMPTY_CREATING_FILE);
        if meta.len() == 0 && young {
            continue;
        }
        if f.try_lock().is_err() {
            continue; // a creator (or the store, once linked) is using it
        }
        if std::fs::remove_file(&candidate).is_ok() {
            removed += 1;
        }
        drop(f);
    }
    Ok(removed)
}

/// Write a fresh header and allocate segment 0 in an empty file, then fsync it.
pub fn initialize(file: &File, segment_size: u64) -> io::Result<()> {
    let header = FileHeader::new(segment_size);
    file.write_all_at(&header.encode(), 0)?;
    allocate(file, HEADER_SIZE, segment_size)?;
    file.sync_all()
}

/// One mapped segment.
pub struct Segment {
    /// `None` for an empty (zero-length) partial segment, which cannot be mapped.
    map: Option<Mmap>,
}

impl Segment {
    /// Map `len` bytes of segment `index` read-only. `len` is the segment size, or less for a
    /// partial last segment during a read-only scan. The caller guarantees the bytes exist in
    /// the file (see the module docs on SIGBUS).
    pub fn map(file: &File, header: &FileHeader, index: u64, len: u64) -> io::Result<Segment> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        if len == 0 {
            return Ok(Segment { map: None });
        }
        // SAFETY: the mapping is read-only and covers bytes that exist in the file (the caller
        // allocated them or measured the file length under the exclusive lock). The store never
        // truncates the file while this map is alive, and the bytes a reader dereferences are
        // published (never written again). See the module docs for the SIGBUS discussion.
        let map = unsafe {
            MmapOptions::new()
                .offset(header.segment_start(index))
                .len(len)
                .map(file)?
        };
        // A hint (see the module docs): on failure the map still works, only with read-around.
        let _ = map.advise(Advice::Random);
        Ok(Segment { map: Some(map) })
    }

    /// Ask the kernel to read `[offset, offset + len)` of the segment into the page cache
    /// ahead of use (`MADV_WILLNEED`), clamped to the map. Only for bytes that hold log data:
    /// read-ahead of the unwritten tail is what `MADV_RANDOM` keeps out (module docs). A hint:
    /// errors are ignored, the reads that follow fault the pages in anyway.
    pub fn will_need(&self, offset: u64, len: u64) {
        let Some(map) = &self.map else { return };
        let map_len = map.len() as u64;
        let start = offset.min(map_len);
        let end = offset.saturating_add(len).min(map_len);
        if end <= start {
            return;
        }
        // madvise wants a page-aligned start; the map itself is page-aligned.
        let aligned = start - start % 4096;
        let _ = map.advise_range(Advice::WillNeed, aligned as usize, (end - aligned) as usize);
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }
}

/// The list of mapped segments, shared by the writer (which appends to it when the file grows)
/// and readers (which take a cheap snapshot).
pub struct SegmentTable {
    inner: RwLock<Arc<Vec<Arc<Segment>>>>,
}

impl SegmentTable {
    pub fn new(segments: Vec<Arc<Segment>>) -> SegmentTable {
        SegmentTable {
            inner: RwLock::new(Arc::new(segments)),
        }
    }

    /// A consistent snapshot of the current segments.
    pub fn snapshot(&self) -> Arc<Vec<Arc<Segment>>> {
        self.inner.read().clone()
    }

    /// Number of mapped segments.
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Add a newly allocated segment.
    pub fn push(&self, segment: Segment) {
        let mut guard = self.inner.write();
        let mut next: Vec<Arc<Segment>> = Vec::with_capacity(guard.len() + 1);
        next.extend(guard.iter().cloned());
        next.push(Arc::new(segment));
        *guard = Arc::new(next);
    }
}
