//! The store's error type.

use std::path::PathBuf;

use crate::types::ExpectedVersion;

/// Result type of every fallible [`Store`](crate::Store) operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong with a [`Store`](crate::Store).
///
/// Match on the variants you handle and keep a catch-all arm: more may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The optimistic concurrency check failed; nothing was written. The name and meaning are
    /// KurrentDB's (`WrongExpectedVersion`).
    ///
    /// Errors: returned by `append` (and the domain layer's retries) when `expected` does not
    /// match; retry after reading the stream again.
    #[error("wrong expected version for stream {stream:?}: expected {expected}, actual {}", fmt_version(.actual.as_ref()))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// The check the append asked for.
        expected: ExpectedVersion,
        /// The stream's last version when the check ran (`None`: the stream does not exist).
        /// It may count appends still being written, which reads see once they are durable.
        actual: Option<u64>,
    },

    /// The append condition of a Dynamic Consistency Boundary append failed (as the DCB
    /// specification's append condition): events matching its query were appended after the
    /// position the decision saw. Nothing was written.
    ///
    /// Errors: returned by `append_if` once the conflicting events are visible to reads: read
    /// the query again and decide again.
    #[error("append condition failed: {} event(s) matching the query were appended after {} (positions {})", fmt_count(.positions), fmt_after(*.after), fmt_positions(.positions))]
    AppendConditionFailed {
        /// The positions of the conflicting events, ascending: the first
        /// [`MAX_CONFLICTS_LISTED`](crate::query::MAX_CONFLICTS_LISTED) of them.
        positions: Vec<u64>,
        /// The condition's `after` (`None`: the condition looked at the whole log).
        after: Option<u64>,
    },

    /// Damage in the log file itself: the file header fails its checks or is cut short; a
    /// frame is damaged or missing although a later frame proves it was durable (so it cannot
    /// be a torn write); a frame whose checksums hold holds invalid content; or bytes that were
    /// checked when the store indexed them no longer decode. `site` says where, `what` how.
    ///
    /// Errors: returned by `Store::open` (which then refuses the file; see `evstore repair`),
    /// by reads that decode damaged bytes, and by `maintenance::verify` / `repair` for a damaged
    /// file header. Never used for a broken in-memory invariant ([`Error::Internal`]).
    #[error("corruption in {site}: {what}")]
    Corruption {
        /// Where the damage is.
        site: Site,
        /// What is wrong there, for people (not a stable format).
        what: String,
    },

    /// Another process (or another `Store` in this process) has the file open.
    ///
    /// Errors: returned by `Store::open` after `Options::lock_timeout`, and by
    /// `maintenance::verify` / `repair` while a store has the file open.
    #[error("{} is in use by another process (locked)", .path.display())]
    Locked {
        /// The log file's path, as the caller named it.
        path: PathBuf,
    },

    /// The file exists but is not an evstore log (wrong magic, shorter than the 64 bytes a
    /// header uses, empty where it may not be created).
    ///
    /// Errors: returned by `Store::open` and the `maintenance` functions; nothing was changed.
    #[error("{} is not an evstore log file: {what}", .path.display())]
    NotALog {
        /// The file's path, as the caller named it.
        path: PathBuf,
        /// Why it is not a log, for people (not a stable format).
        what: String,
    },

    /// The file is an evstore log of a format version this build cannot read.
    ///
    /// Errors: returned by `Store::open` and the `maintenance` functions; nothing was changed.
    #[error("{} uses log format version {found}; this build reads versions 1 to {supported}", .path.display())]
    UnsupportedFormat {
        /// The file's path, as the caller named it.
        path: PathBuf,
        /// The format version in the file's header (docs/FORMAT.md §2).
        found: u32,
        /// The newest format version this build reads (it reads every version from 1 up to
        /// it, and writes it in new files).
        supported: u32,
    },

    /// Bad arguments: stream id or event type empty or longer than 255 bytes, empty batch,
    /// an append too large for one segment, invalid options. Nothing was written.
    ///
    /// Errors: returned by `Store::open` (options) and `append` (the batch); the caller's to fix.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A retried append only partly matches events already in the stream (same ids at some
    /// versions, different ones at others). Nothing was written.
    ///
    /// Errors: returned by `append`; `detail` names the first event that differs.
    #[error("append to {stream:?} partly repeats an earlier append: {detail}")]
    IdempotencyConflict {
        /// The stream appended to.
        stream: String,
        /// The first event that differs, for people (not a stable format).
        detail: String,
    },

    /// An earlier write or fsync failed: the page cache may have dropped data, so every later
    /// write is refused. Reads keep working. Reopen the store to continue.
    ///
    /// Errors: returned by `append`, `flush` and `close` of a poisoned store.
    #[error("the store is poisoned by an earlier I/O error; reopen it to continue")]
    Poisoned,

    /// The store was opened with `Options::read_only`.
    ///
    /// Errors: returned by `append` and snapshot saves of such a store.
    #[error("the store is open read-only")]
    ReadOnly,

    /// An internal invariant broke: a bug in evstore, or an [`EventSource`] implementation
    /// that breaks its contract (e.g. a gap in positions). This is not damage in the file;
    /// nothing was written by the failed call. Retrying may succeed; please report it.
    ///
    /// Errors: returned where evstore catches itself in an inconsistent state, e.g. the index
    /// pointing past the mapped segments, or a subscription seeing a gap in positions.
    ///
    /// [`EventSource`]: crate::subscription::EventSource
    #[error("internal error (not damage in the file): {0}")]
    Internal(String),

    /// A domain value (event payload, metadata, snapshot or projection state) could not be
    /// encoded or decoded by the codec ([`crate::codec`]). Nothing was written.
    #[error("encoding failed: {0}")]
    Encoding(#[from] crate::codec::CodecError),

    /// An operating-system I/O error.
    ///
    /// Errors: returned by any operation that touches the file system; a failed write or sync
    /// also poisons the store ([`Error::Poisoned`]).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// How many conflicts: "at least N" when the list is cut at its limit.
fn fmt_count(positions: &[u64]) -> String {
    if positions.len() >= crate::query::MAX_CONFLICTS_LISTED {
        format!("at least {}", positions.len())
    } else {
        positions.len().to_string()
    }
}

fn fmt_after(after: Option<u64>) -> String {
    match after {
        Some(p) => format!("position {p}"),
        None => "the start of the log".to_string(),
    }
}

/// Up to 8 positions, then how many more.
fn fmt_positions(positions: &[u64]) -> String {
    let shown: Vec<String> = positions.iter().take(8).map(u64::to_string).collect();
    let mut s = shown.join(", ");
    if positions.len() > 8 {
        use std::fmt::Write as _;
        let _ = write!(s, " and {} more", positions.len() - 8);
    }
    s
}

fn fmt_version(v: Option<&u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "no stream".to_string(),
    }
}

impl Error {
    /// [`Error::Corruption`] at byte `offset` of segment `segment`.
    pub(crate) fn corruption(segment: u64, offset: u64, what: impl Into<String>) -> Error {
        Error::Corruption {
            site: Site::Segment { segment, offset },
            what: what.into(),
        }
    }
}

/// Where in a log file [`Error::Corruption`] (or a `maintenance::verify` verdict) places damage.
///
/// Match with a catch-all arm: more sites may be added (e.g. the snapshot sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Site {
    /// In the file header (the file's first 4096 bytes).
    Header {
        /// Byte offset in the file: 0 for a header that fails its checks, the file's length
        /// for a file cut inside its header.
        offset: u64,
    },
    /// In a segment.
    Segment {
        /// The segment, from 0; it starts at file offset `4096 + segment * segment_size`
        /// (docs/FORMAT.md §1).
        segment: u64,
        /// Byte offset inside the segment.
        offset: u64,
    },
}

impl Site {
    /// The segment, `None` for the file header.
    pub fn segment(&self) -> Option<u64> {
        match *self {
            Site::Header { .. } => None,
            Site::Segment { segment, .. } => Some(segment),
        }
    }

    /// The byte offset: inside the segment, or inside the file for the header.
    pub fn offset(&self) -> u64 {
        match *self {
            Site::Header { offset } | Site::Segment { offset, .. } => offset,
        }
    }
}

/// "file header at offset N" or "segment K at offset N".
impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Site::Header { offset } => write!(f, "file header at offset {offset}"),
            Site::Segment { segment, offset } => write!(f, "segment {segment} at offset {offset}"),
        }
    }
}
