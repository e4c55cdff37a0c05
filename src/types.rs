//! Value types of the public API.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
/// Smallest segment size accepted (for tests and tiny stores).
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// Largest segment size accepted.
pub const MAX_SEGMENT_SIZE: u64 = 1024 * 1024 * 1024;

/// When `append` returns, relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `append` returns after the events are durable (fdatasync). Concurrent appenders share
    /// fsyncs (group commit). Readers see events only once durable.
    #[default]
    Sync,
    /// `append` returns once the write reached the operating system; [`Store::flush`] makes it
    /// durable. A power loss may take back events that were not flushed (a process crash does
    /// not).
    ///
    /// [`Store::flush`]: crate::Store::flush
    Buffered,
}

/// How to open a store.
///
/// ```
/// use evstore::{Durability, Options};
/// let options = Options { durability: Durability::Buffered, ..Options::default() };
/// assert_eq!(options.segment_size, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Durability of `append`; default [`Durability::Sync`].
    pub durability: Durability,
    /// Segment size for a **new** file (an existing file keeps the size in its header):
    /// a multiple of 4096 between 64 KiB and 1 GiB; default 64 MiB.
    pub segment_size: u64,
    /// Create the file when it does not exist (default `true`).
    pub create_if_missing: bool,
    /// Open for reading only (default `false`): a shared lock (other read-only opens may share
    /// the file; a writer may not open it meanwhile), nothing is ever written — a torn tail is
    /// skipped, not trimmed — and appends fail with [`Error::ReadOnly`](crate::Error::ReadOnly).
    /// For inspection tools.
    pub read_only: bool,
    /// How long `open` keeps retrying when the file is locked before it returns
    /// [`Error::Locked`](crate::Error::Locked) (default 200 ms). A short wait rides out a
    /// lock that lingers for a moment after its store closed — e.g. while a child process
    /// forked by another thread still shares the file descriptor until it execs.
    pub lock_timeout: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            segment_size: DEFAULT_SEGMENT_SIZE,
            create_if_missing: true,
            read_only: false,
            lock_timeout: std::time::Duration::from_millis(200),
        }
    }
}

/// The optimistic concurrency check of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist (have at least one event).
    StreamExists,
    /// The stream's last version must be exactly this.
    Exact(u64),
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any"),
            ExpectedVersion::NoStream => write!(f, "no stream"),
            ExpectedVersion::StreamExists => write!(f, "stream exists"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// An event to append.
///
/// ```
/// let e = evstore::NewEvent::new("OrderCreated", b"{}".to_vec());
/// assert_eq!(e.event_type, "OrderCreated");
/// assert!(e.metadata.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id; repeating an append with the same ids is an idempotent retry.
    pub event_id: Uuid,
    /// 1..=255 bytes of UTF-8.
    pub event_type: String,
    /// The payload, opaque to the store.
    pub data: Vec<u8>,
    /// Free-form metadata, opaque to the store.
    pub metadata: Vec<u8>,
}

impl NewEvent {
    /// An event with a random (v4) id and empty metadata.
    pub fn new(event_type: impl Into<String>, data: impl Into<Vec<u8>>) -> NewEvent {
        NewEvent {
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            data: data.into(),
            metadata: Vec::new(),
        }
    }

    /// The same event with `metadata` set.
    pub fn with_metadata(mut self, metadata: impl Into<Vec<u8>>) -> NewEvent {
        self.metadata = metadata.into();
        self
    }

    /// The same event with `event_id` set (e.g. a UUID v5 derived from a cause).
    pub fn with_id(mut self, event_id: Uuid) -> NewEvent {
        self.event_id = event_id;
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    pub event_type: String,
    /// 0 for the first event of a stream; dense.
    pub version: u64,
    /// 0 for the first event in the file; dense; the global order.
    pub position: u64,
    /// Stamped by the store (microsecond precision); non-decreasing in position order.
    pub recorded_at: DateTime<Utc>,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
}

/// Where an append's events landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppendResult {
    pub first_version: u64,
    pub last_version: u64,
    pub first_position: u64,
    pub last_position: u64,
}
