//! [`Store`]: the public API of the log — opening and recovery, appends with optimistic
//! concurrency and group commit, and reads.
//!
//! # Concurrency design
//!
//! * **Appends** encode their batch without any lock, then take the `state` mutex to check the
//!   expected version, assign versions, positions and `recorded_at`, and queue the batch.
//!   Whoever finds no leader becomes the **group-commit leader**: it takes every queued batch,
//!   releases `state`, writes them as frames and syncs once (under the `writer` mutex), adds the
//!   frames to the index, and wakes everyone. Appenders whose batch was in the group return.
//!   While a leader does I/O, new appenders queue behind it, so one fsync serves many appends.
//! * **Visibility**: the index only ever holds published frames (durable in `Sync` mode), so
//!   readers, which only consult the index, never see an event a crash could take back. Versions
//!   of batches in flight are tracked in `state.inflight` for the concurrency check.
//! * **Reads** take the index read lock only to copy locations, then decode through the segment
//!   maps without locks.
//! * Lock order: `writer` → `index`, `writer` → `state`, `state` → `index`. No path takes
//!   `writer` while holding `state` or `index`.
//!
//! # Where is
//!
//! | what | module |
//! | --- | --- |
//! | the `Store` struct, its locks and condition variables, `Debug`, `Drop`, accessors | `store` (this file) |
//! | open: the file, recovery, the index, the writer ([`RecoveryReport`], [`TrimReport`]) | `open` |
//! | append: checks, versions, the solo path, waiting for a group, leading, hand-off; flush, close | `commit` |
//! | the bookkeeping those use: queue, group being written, which condvar a waiter is on, in-flight registry, solo slot, recent-append cache (no I/O) | `state` |
//! | an idempotent retry recognised: in flight (`inflight_match`) or published (`check_retry`, `check_tail_retry`) | `retry` |
//! | read-only stores beside a live writer: the reader open, `refresh`, polling waits | `follow` |
//! | reads and their one consistent view (`Store::reader`), [`ReadAll`], waits for new events, [`StoreStats`] | `read` |
//! | events imported with their recorded positions, versions and times (`Store::import`) | `import` |
//! | the snapshot sidecar, opened on first use and checked against the log | `snapshots` |
//! | a consistent, verified copy of the live log and its sidecar ([`BackupReport`]) | `backup` |

mod backup;
mod commit;
mod follow;
mod import;
mod open;
mod read;
mod retry;
mod snapshots;
mod state;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::index::Index;
#[cfg(feature = "test-support")]
use crate::index::IndexFingerprint;
use crate::log::segment::{FileHeader, SegmentTable};
use crate::log::writer::LogWriter;
use crate::snapshot::SnapshotStore;
use crate::types::Options;

pub use backup::BackupReport;
pub use open::{RecoveryReport, TrimReport};
pub use read::{ReadAll, StoreStats};
use state::WriterState;

/// An open event store: one log file. `Send + Sync`; share it across threads with `Arc`.
///
/// ```
/// use evstore::{ExpectedVersion, NewEvent, Store};
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("orders.evs");
/// let store = Store::open(&path)?;
/// let r = store.append("order-1", ExpectedVersion::NoStream, &[
///     NewEvent::new("OrderCreated", br#"{"user":"u1"}"#.to_vec()),
///     NewEvent::new("ItemAdded", br#"{"sku":"A","qty":2}"#.to_vec()),
/// ])?;
/// assert_eq!((r.first_version, r.last_version), (0, 1));
/// let events = store.read_stream("order-1", 0)?;
/// assert_eq!(events[1].event_type, "ItemAdded");
/// assert_eq!(store.stream_version("order-1"), Some(1));
/// # Ok::<(), evstore::Error>(())
/// ```
pub struct Store {
    path: PathBuf,
    options: Options,
    header: FileHeader,
    segments: Arc<SegmentTable>,
    index: RwLock<Index>,
    state: Mutex<WriterState>,
    /// Appenders wait here for their group to be published: group `g` on `group_done[g % 2]`
    /// (a batch queued while group `g` is being written goes into group `g + 1`), so a
    /// publish wakes the appenders it completed and not those queued for the next group.
    group_done: [Condvar; 2],
    /// `None` when opened read-only.
    writer: Mutex<Option<LogWriter>>,
    recovery: RecoveryReport,
    /// The snapshot sidecar, opened on first use.
    snapshots: Mutex<Option<SnapshotStore>>,
    /// Number of visible events, for readers waiting on new ones (subscriptions). Kept apart
    /// from `state` so waiting readers never contend with appenders.
    visible: Mutex<u64>,
    visible_changed: Condvar,
    /// Set when opened read-only: the link to the log it follows (`follow`).
    follower: Option<follow::FollowerLink>,
}

impl Store {
    /// The path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options in force (the segment size is the file's).
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// What `open` found: frames, events, and any torn tail it trimmed.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Whether an earlier I/O error poisoned the store for writes.
    pub fn is_poisoned(&self) -> bool {
        self.state.lock().is_poisoned()
    }

    /// A comparable copy of the whole index (tests compare it across reopen).
    #[cfg(feature = "test-support")]
    pub(crate) fn index_fingerprint(&self) -> IndexFingerprint {
        self.index.read().fingerprint()
    }
}

#[allow(
    clippy::missing_fields_in_debug,
    reason = "shows what identifies the store and its health; the locks, maps and index are \
              internals (and the output format is kept)"
)]
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("head_position", &self.head_position())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `close` reports them.
        let _ = self.shutdown();
    }
}

/// The index lists `position` but holds no location for it: an in-memory invariant, not
/// damage in the file.
fn missing_location(position: u64) -> Error {
    Error::Internal(format!("the index has no location for position {position}"))
}

/// `Err(InvalidInput)` unless `name` (a stream id or event type, `what` says which) is 1 to
/// 255 bytes long.
#[inline]
fn validate_name(name: &str, what: &str) -> Result<()> {
    crate::limits::check_name(name, what)
}
