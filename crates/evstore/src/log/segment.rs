//! The file header, the geometry of fixed-size segments, and the per-segment memory maps
//! (docs/FORMAT.md §1–§2). Opening, creating and locking the file is in [`super::file`];
//! preallocation and hole probes in [`super::space`].
//!
//! # Memory maps and SIGBUS
//!
//! Each segment is mapped read-only, once, and never remapped while the store is open. Reading
//! a mapped page that no longer exists in the file (because the file was truncated under the map)
//! raises SIGBUS and kills the process. The design avoids that:
//!
//! * a segment is mapped only over bytes the file holds: [`Segment::map`] is an `unsafe fn`
//!   whose contract says so, and its one caller, [`super::file::map_segment`], checks the
//!   file's length first (a new segment is mapped after it was allocated and the allocation
//!   made durable; the recovery scan maps exactly the bytes present);
//! * the crate never shrinks the file while maps exist: the only shrinking is
//!   [`super::file::truncate`], an `unsafe fn` whose callers (trimming a torn tail during
//!   `open`, docs/FORMAT.md §5, and `maintenance::repair`'s cut) drop every map first;
//! * the file is protected by an `flock` (exclusive for writers), so a cooperating process
//!   never truncates it.
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
//! data: [`Segment::will_need`] (the recovery scan, up to the first hole of each segment, see
//! `recovery::prefetch_for_scan`; `read_all`, over the span of its next batch of locations).
//!
//! Writes never go through the maps: they use `pwrite` on the file descriptor, and reach the
//! maps through the shared page cache. Readers only touch bytes that were published (written,
//! and made durable in `Sync` mode) before the index pointed at them, and published bytes are
//! never written again.

use std::fs::File;
use std::io;
use std::sync::Arc;

use memmap2::{Advice, Mmap, MmapOptions};
use parking_lot::RwLock;

use crate::types::{DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};

/// Bytes reserved for the file header; segment 0 starts here.
pub const HEADER_SIZE: u64 = 4096;
/// Magic bytes at offset 0.
pub(crate) const MAGIC: [u8; 8] = *b"EVSTLOG\0";
/// The format version this build writes in new files (and the newest it reads).
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads and appends to (docs/FORMAT.md §2).
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
const HEADER_USED: usize = 64;

// The header and segment geometry against docs/FORMAT.md §1–§2, at compile time.
const _: () = {
    // magic, format_version, header_size, segment_size, file_id, created_at_us, flags,
    // reserved, header_crc.
    assert!(8 + 4 + 4 + 8 + 16 + 8 + 4 + 8 + 4 == HEADER_USED);
    assert!(HEADER_USED as u64 <= HEADER_SIZE);
    // Stored as a u32 at offset 12.
    assert!(HEADER_SIZE <= u32::MAX as u64);
    // Segments start at multiples of 4096 (mmap offsets are page-aligned).
    assert!(HEADER_SIZE.is_multiple_of(4096));
    assert!(MIN_SEGMENT_SIZE.is_multiple_of(4096) && MAX_SEGMENT_SIZE.is_multiple_of(4096));
    assert!(MIN_SEGMENT_SIZE <= DEFAULT_SEGMENT_SIZE && DEFAULT_SEGMENT_SIZE <= MAX_SEGMENT_SIZE);
    assert!(DEFAULT_SEGMENT_SIZE.is_multiple_of(4096));
    // A frame lies in one segment and its body length is a u32.
    assert!(MAX_SEGMENT_SIZE <= u32::MAX as u64);
};

/// The decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
    /// Bytes per segment: a multiple of 4096 in `MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE`.
    pub segment_size: u64,
    /// The random salt of every frame header CRC (a v4 UUID's bytes).
    pub file_id: [u8; 16],
    /// When the file was created, in µs since the Unix epoch.
    pub created_at_us: i64,
    /// The format version in the header: 1 (events without tags) or 2 (events with a tag
    /// section). A file keeps its version for life.
    pub format_version: u32,
}

/// Why the first bytes of a file are not a usable header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not an evstore log at all.
    NotALog(String),
    /// An evstore log of another format version.
    Unsupported(u32),
    /// The magic matches but the header is damaged.
    Corrupt(String),
}

impl FileHeader {
    /// A header for a new file.
    pub(crate) fn new(segment_size: u64) -> FileHeader {
        FileHeader {
            segment_size,
            file_id: *uuid::Uuid::new_v4().as_bytes(),
            created_at_us: chrono::Utc::now().timestamp_micros(),
            format_version: FORMAT_VERSION,
        }
    }

    /// The layout of its event records.
    pub(crate) fn layout(&self) -> crate::log::frame::Layout {
        if self.format_version >= 2 {
            crate::log::frame::Layout::V2
        } else {
            crate::log::frame::Layout::V1
        }
    }

    /// The 4096-byte header block.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.format_version.to_le_bytes());
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
    pub(crate) fn decode(b: &[u8]) -> Result<FileHeader, HeaderError> {
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
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
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
            created_at_us: u64_at(40).cast_signed(),
            format_version: version,
        })
    }

    /// File offset where segment `k` starts.
    pub(crate) fn segment_start(&self, k: u64) -> u64 {
        HEADER_SIZE + k * self.segment_size
    }

    /// Which segment a file offset falls in, and the offset inside it.
    pub(crate) fn split(&self, file_offset: u64) -> (u64, u64) {
        debug_assert!(file_offset >= HEADER_SIZE, "offset inside the header");
        let rel = file_offset - HEADER_SIZE;
        (rel / self.segment_size, rel % self.segment_size)
    }
}

/// Check a requested segment size.
pub(crate) fn validate_segment_size(size: u64) -> Result<(), String> {
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) || !size.is_multiple_of(4096) {
        return Err(format!(
            "segment size {size} must be a multiple of 4096 between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}"
        ));
    }
    Ok(())
}

/// One mapped segment.
pub(crate) struct Segment {
    /// `None` for an empty (zero-length) partial segment, which cannot be mapped.
    map: Option<Mmap>,
}

impl Segment {
    /// Map `len` bytes of segment `index` read-only, advised `MADV_RANDOM` (module docs). `len`
    /// is the segment size, or less for a partial last segment; 0 maps nothing (an empty
    /// segment). Fails with `InvalidInput` for a `len` beyond the address space, or with the
    /// error of `mmap`.
    ///
    /// # Safety
    ///
    /// Every byte of `[header.segment_start(index), header.segment_start(index) + len)` must
    /// exist in `file` when this is called, and `file` must not be shrunk below the end of that
    /// range while the returned `Segment` (or a slice borrowed from it) is alive: reading a
    /// mapped page that is no longer in the file raises SIGBUS. Call it through
    /// [`super::file::map_segment`], which checks the first half; the second is the contract
    /// of [`super::file::truncate`] (module docs).
    #[expect(
        unsafe_code,
        reason = "mmap: a map of a file that shrinks under it raises SIGBUS, so mapping is an \
                  unsafe fn whose contract the callers keep (module docs)"
    )]
    pub(crate) unsafe fn map(
        file: &File,
        header: &FileHeader,
        index: u64,
        len: u64,
    ) -> io::Result<Segment> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        if len == 0 {
            return Ok(Segment { map: None });
        }
        // SAFETY: the mapping is read-only and covers bytes that exist in the file, which is not
        // shrunk while this map is alive (this function's contract); the bytes a reader
        // dereferences are published (never written again). See the module docs on SIGBUS.
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
    pub(crate) fn will_need(&self, offset: u64, len: u64) {
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
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }
}

/// The list of mapped segments, shared by the writer (which appends to it when the file grows)
/// and readers (which take a cheap snapshot).
pub(crate) struct SegmentTable {
    inner: RwLock<Arc<Vec<Arc<Segment>>>>,
}

impl SegmentTable {
    /// A table of `segments` (segment `k` is `segments[k]`).
    pub(crate) fn new(segments: Vec<Arc<Segment>>) -> SegmentTable {
        SegmentTable {
            inner: RwLock::new(Arc::new(segments)),
        }
    }

    /// A consistent snapshot of the current segments.
    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<Segment>>> {
        self.inner.read().clone()
    }

    /// Number of mapped segments.
    pub(crate) fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Put `segment` at `k`: replace the map there (a read-only store replacing a partial
    /// map with a whole one; readers holding a snapshot keep the old map alive) or, for
    /// `k == len`, add it. Segments are never mapped out of order, so `k > len` is refused
    /// (asserted).
    pub(crate) fn set(&self, k: u64, segment: Segment) {
        let mut guard = self.inner.write();
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        assert!(
            k <= guard.len(),
            "segment {k} mapped before segment {}",
            guard.len()
        );
        let mut next: Vec<Arc<Segment>> = Vec::with_capacity(guard.len() + 1);
        next.extend(guard.iter().cloned());
        if k == next.len() {
            next.push(Arc::new(segment));
        } else {
            next[k] = Arc::new(segment);
        }
        *guard = Arc::new(next);
    }

    /// Add a newly allocated segment.
    pub(crate) fn push(&self, segment: Segment) {
        let mut guard = self.inner.write();
        let mut next: Vec<Arc<Segment>> = Vec::with_capacity(guard.len() + 1);
        next.extend(guard.iter().cloned());
        next.push(Arc::new(segment));
        *guard = Arc::new(next);
    }
}

// Moved to `log::file`; re-exported here for `projection` and `snapshot`, which import it from
// this path (switch them to `crate::log::file::sync_parent_dir` and drop this line).
pub(crate) use super::file::sync_parent_dir;
