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
    /// The optimistic concurrency check failed; nothing was written.
    /// `actual` is the stream's last version (`None`: the stream does not exist).
    #[error("wrong expected version for stream {stream:?}: expected {expected}, actual {}", fmt_version(.actual))]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },

    /// The log holds damage that cannot be a torn write (the log proves the bytes were durable),
    /// or a frame whose checksums hold but whose content is invalid.
    /// `segment` is `None` for the file header; `offset` is the byte offset inside the segment
    /// (inside the file for the header). The store refuses to open; see `evstore repair`.
    #[error("corruption in {}: {what}", fmt_where(.segment, .offset))]
    Corruption {
        segment: Option<u64>,
        offset: u64,
        what: String,
    },

    /// Another process (or another `Store` in this process) has the file open.
    #[error("{} is in use by another process (locked)", .path.display())]
    Locked { path: PathBuf },

    /// The file exists but is not an evstore log (wrong magic, too short...).
    #[error("{} is not an evstore log file: {what}", .path.display())]
    NotALog { path: PathBuf, what: String },

    /// The file is an evstore log of a format version this build cannot read.
    #[error("{} uses log format version {found}; this build reads version {supported}", .path.display())]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// Bad arguments: stream id or event type empty or longer than 255 bytes, empty batch,
    /// an append too large for one segment, invalid options. Nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A retried append only partly matches events already in the stream (same ids at some
    /// versions, different ones at others). Nothing was written.
    #[error("append to {stream:?} partly repeats an earlier append: {detail}")]
    IdempotencyConflict { stream: String, detail: String },

    /// An earlier write or fsync failed: the page cache may have dropped data, so every later
    /// write is refused. Reads keep working. Reopen the store to continue.
    #[error("the store is poisoned by an earlier I/O error; reopen it to continue")]
    Poisoned,

    /// The store was opened with `Options::read_only`.
    #[error("the store is open read-only")]
    ReadOnly,

    /// An internal invariant broke: a bug in evstore, or an [`EventSource`] implementation
    /// that breaks its contract (e.g. a gap in positions). This is not damage in the file;
    /// nothing was written by the failed call. Retrying may succeed; please report it.
    ///
    /// [`EventSource`]: crate::subscription::EventSource
    #[error("internal error (not damage in the file): {0}")]
    Internal(String),

    /// A domain value (event payload, metadata, snapshot or projection state) could not be
    /// encoded or decoded by the codec ([`crate::codec`]). Nothing was written.
    #[error("encoding failed: {0}")]
    Encoding(#[from] crate::codec::CodecError),

    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn fmt_version(v: &Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "no stream".to_string(),
    }
}

fn fmt_where(segment: &Option<u64>, offset: &u64) -> String {
    match segment {
        Some(s) => format!("segment {s} at offset {offset}"),
        None => format!("file header at offset {offset}"),
    }
}

impl Error {
    pub(crate) fn corruption(segment: u64, offset: u64, what: impl Into<String>) -> Error {
        Error::Corruption {
            segment: Some(segment),
            offset,
            what: what.into(),
        }
    }
}
