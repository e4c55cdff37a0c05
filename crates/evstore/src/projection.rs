//! Checkpointed projections: read models folded from the global log.
//!
//! A [`Projection`] is a serde-serialisable state with an `apply` for one recorded event. A
//! [`ProjectionRunner`] keeps one up to date:
//!
//! * On open it loads `(state, position, version)` from the projection's **checkpoint file**
//!   (`<log path>.proj-<NAME>`, see [`checkpoint_path`]). A missing or damaged checkpoint, a
//!   different [`Projection::VERSION`], or a checkpoint the log no longer confirms (the event
//!   before the checkpoint position has another id, or is gone) means **rebuild from zero**; the
//!   reason is counted in [`ProjectionStats`].
//! * It catches up from the checkpoint ([`ProjectionRunner::catch_up`]) and then follows the
//!   log live through a [`Subscription`] ([`ProjectionRunner::step`],
//!   [`ProjectionRunner::run_until`]).
//! * State and position are saved **together in one file**, atomically (temp file, fsync,
//!   rename, directory fsync), every `checkpoint_every` events and on demand. After a crash the
//!   runner restarts from the last checkpoint with the state of that checkpoint, so every event
//!   has been applied exactly once to the state it resumes with (exactly-once effect).
//!
//! Readers on other threads use a [`ProjectionHandle`] (cheap to clone). It can also wait for
//! the projection to reach a position, e.g. the position of an append just made, for
//! read-your-writes on top of an asynchronous runner. [`InlineProjection`] instead applies the
//! events of every append through it before the append returns.
//!
//! # Checkpoint file format (little-endian)
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `EVSTCKP\0` |
//! | 4 | checkpoint format version (1) |
//! | 4 | projection version ([`Projection::VERSION`]) |
//! | 8 | position: the next global position to apply |
//! | 1 | 1 if the id of the event at `position - 1` follows, else 0 |
//! | 16 | that event id (zeros when absent) |
//! | 8 | state length `n` |
//! | n | state, through [`crate::codec`] |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! ```
//! use evstore::projection::{checkpoint_path, Projection, ProjectionRunner};
//! use evstore::{ExpectedVersion, NewEvent, RecordedEvent, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct EventCount { n: u64 }
//! impl Projection for EventCount {
//!     const NAME: &'static str = "event-count";
//!     const VERSION: u32 = 1;
//!     fn apply(&mut self, _event: &RecordedEvent) { self.n += 1; }
//! }
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = std::sync::Arc::new(Store::open(dir.path().join("p.evs"))?);
//! store.append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![]), NewEvent::new("E", vec![])])?;
//! let path = checkpoint_path(store.path(), EventCount::NAME);
//! let mut runner = ProjectionRunner::<EventCount, _>::open(store.clone(), &path)?;
//! runner.catch_up()?;
//! assert_eq!(runner.handle().read(|p| p.n), 2);
//! runner.checkpoint()?;
//! drop(runner);
//!
//! // Restart: resumes from the checkpoint, nothing is replayed.
//! let mut runner = ProjectionRunner::<EventCount, _>::open(store.clone(), &path)?;
//! assert_eq!(runner.catch_up()?, 0);
//! assert_eq!(runner.handle().read(|p| p.n), 2);
//! # Ok::<(), evstore::Error>(())
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::codec;
use crate::error::{Error, Result};
use crate::log::segment::sync_parent_dir;
use crate::storage::EventStorage;
use crate::subscription::{EventSource, StopHandle, Subscription, SubscriptionFilter};
use crate::types::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};

/// Default number of applied events between automatic checkpoints.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1_000;
/// Default shortest time between automatic checkpoints (a checkpoint rewrites the whole state
/// and fsyncs, so a catch-up over many events must not write one per batch).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Events applied per lock of the shared state.
const APPLY_BATCH: usize = 512;
/// Magic bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"EVSTCKP\0";
/// Checkpoint file format version.
pub const CHECKPOINT_FORMAT: u32 = 1;
const CHECKPOINT_HEADER: usize = 8 + 4 + 4 + 8 + 1 + 16 + 8;
/// Longest projection / saga name (it becomes part of a file name).
pub const MAX_NAME_LEN: usize = 64;

/// A read model folded from the global log.
///
/// `apply` must be deterministic and must not fail: events are facts (an event the projection
/// cannot interpret should be counted in its state and skipped). Changing what `apply` does or
/// the shape of the state means bumping [`Projection::VERSION`], which makes the runner rebuild
/// from position 0.
pub trait Projection: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable name: ASCII letters, digits, `-` and `_`, 1..=64 bytes (used in the checkpoint
    /// file name).
    const NAME: &'static str;
    /// Version of `apply` and of the state's shape; a change triggers a rebuild from zero.
    const VERSION: u32;

    /// The events `apply` needs (others are skipped without being decoded). Default: all.
    fn filter() -> SubscriptionFilter {
        SubscriptionFilter::all()
    }

    /// Fold one event into the state.
    fn apply(&mut self, event: &RecordedEvent);
}

/// The checkpoint file of projection `name` for the log at `log_path`:
/// `<log path>.proj-<name>`.
///
/// ```
/// let p = evstore::projection::checkpoint_path(std::path::Path::new("/data/shop.evs"), "orders");
/// assert_eq!(p, std::path::PathBuf::from("/data/shop.evs.proj-orders"));
/// ```
pub fn checkpoint_path(log_path: &Path, name: &str) -> PathBuf {
    sibling_path(log_path, &format!(".proj-{name}"))
}

/// `<path><suffix>`.
pub(crate) fn sibling_path(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Check a projection or saga name: 1..=64 bytes of ASCII letters, digits, `-`, `_`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "name {name:?} must be 1..={MAX_NAME_LEN} bytes of ASCII letters, digits, '-' or '_'"
        )))
    }
}

/// The content of a checkpoint file: a position in the log and the state (encoded) that
/// includes every event before it. Shared by projections and sagas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Version of the code that wrote the state.
    pub version: u32,
    /// The next global position to process.
    pub position: u64,
    /// Id of the event at `position - 1` (`None` when `position` is 0), to check that the log
    /// still holds the history the state was built from.
    pub last_event_id: Option<Uuid>,
    /// The encoded state.
    pub state: Vec<u8>,
}

/// Why a checkpoint file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// No file.
    Missing,
    /// The file is damaged (bad magic, length, CRC...).
    Damaged(String),
    /// The file could not be read.
    Io(String),
}

impl Checkpoint {
    /// Encode as a checkpoint file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_HEADER + self.state.len() + 4);
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        out.extend_from_slice(&CHECKPOINT_FORMAT.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        match self.last_event_id {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(id.as_bytes());
            }
            None => {
                out.push(0);
                out.extend_from_slice(&[0u8; 16]);
            }
        }
        out.extend_from_slice(&(self.state.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.state);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decode a checkpoint file's bytes, treating them as hostile.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, CheckpointError> {
        let damaged = |what: &str| CheckpointError::Damaged(what.to_string());
        if bytes.len() < CHECKPOINT_HEADER + 4 {
            return Err(damaged("shorter than a checkpoint header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != crc {
            return Err(damaged("CRC mismatch"));
        }
        if body[0..8] != CHECKPOINT_MAGIC {
            return Err(damaged("bad magic"));
        }
        let u32_at = |at: usize| -> u32 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&body[at..at + 4]);
            u32::from_le_bytes(b)
        };
        let u64_at = |at: usize| -> u64 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let format = u32_at(8);
        if format != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Damaged(format!(
                "checkpoint format {format}, expected {CHECKPOINT_FORMAT}"
            )));
        }
        let version = u32_at(12);
        let position = u64_at(16);
        let last_event_id = match body[24] {
            0 => None,
            1 => {
                let mut id = [0u8; 16];
                id.copy_from_slice(&body[25..41]);
                Some(Uuid::from_bytes(id))
            }
            _ => return Err(damaged("bad event-id flag")),
        };
        let len = u64_at(41);
        if len != (body.len() - CHECKPOINT_HEADER) as u64 {
            return Err(damaged("state length does not match the file length"));
        }
        if (position == 0) != last_event_id.is_none() {
            return Err(damaged("event id present iff position > 0 does not hold"));
        }
        Ok(Checkpoint {
            version,
            position,
            last_event_id,
            state: body[CHECKPOINT_HEADER..].to_vec(),
        })
    }

    /// Read the checkpoint at `path`. Files larger than the codec's decode limit are damaged.
    pub fn read(path: &Path) -> std::result::Result<Checkpoint, CheckpointError> {
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CheckpointError::Missing),
            Err(e) => return Err(CheckpointError::Io(e.to_string())),
        };
        if len > (codec::MAX_DECODE_BYTES + CHECKPOINT_HEADER + 4) as u64 {
            return Err(CheckpointError::Damaged(format!(
                "{len} bytes, more than a checkpoint can hold"
            )));
        }
        match fs::read(path) {
            Ok(bytes) => Checkpoint::decode(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CheckpointError::Missing),
            Err(e) => Err(CheckpointError::Io(e.to_string())),
        }
    }

    /// Replace the file at `path` with this checkpoint atomically: write `<path>.tmp`, fsync
    /// it, rename it over `path`, fsync the directory. A crash leaves the old or the new file.
    pub fn write(&self, path: &Path) -> Result<()> {
        if self.state.len() > codec::MAX_DECODE_BYTES {
            return Err(Error::InvalidInput(format!(
                "state of {} bytes exceeds the {} bytes a checkpoint can hold",
                self.state.len(),
                codec::MAX_DECODE_BYTES
            )));
        }
        let tmp = sibling_path(path, ".tmp");
        let mut f: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_parent_dir(path)?;
        Ok(())
    }
}

/// Why a runner started from position 0 instead of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildReason {
    /// There was no checkpoint file.
    Missing,
    /// The checkpoint file was damaged or its state did not decode.
    Damaged(String),
    /// The checkpoint was written by another [`Projection::VERSION`].
    VersionChanged {
        /// The version in the file.
        stored: u32,
        /// This build's version.
        current: u32,
    },
    /// The log does not confirm the checkpoint (the event before its position is missing or
    /// has another id): the checkpoint belongs to another history.
    LogMismatch,
    /// [`ProjectionRunner::rebuild`] was called.
    Requested,
}

/// Counters of a runner since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectionStats {
    /// Events passed to `apply`.
    pub applied: u64,
    /// Checkpoint files written.
    pub checkpoints_written: u64,
    /// Rebuilds from position 0 (including the one at open when no checkpoint was usable).
    pub rebuilds: u64,
    /// Why the latest rebuild happened.
    pub last_rebuild: Option<RebuildReason>,
    /// The checkpoint position the runner resumed from at open (`None`: rebuilt).
    pub resumed_from: Option<u64>,
}

struct Shared<P> {
    state: RwLock<P>,
    /// Position of the next event to apply (everything below is in `state`).
    position: Mutex<u64>,
    advanced: Condvar,
}

/// A cheap, cloneable read handle on a projection's state, for query threads.
///
/// ```no_run
/// # fn demo<P: evstore::projection::Projection>(h: evstore::projection::ProjectionHandle<P>) {
/// use std::time::Duration;
/// // Read-your-writes over an asynchronous runner: wait until the projection has applied
/// // the append at position 41, then query.
/// if h.wait_for_position(41, Duration::from_secs(1)) {
///     h.read(|_state| { /* query */ });
/// }
/// # }
/// ```
pub struct ProjectionHandle<P> {
    shared: Arc<Shared<P>>,
}

impl<P> Clone for ProjectionHandle<P> {
    fn clone(&self) -> Self {
        ProjectionHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<P> std::fmt::Debug for ProjectionHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

impl<P> ProjectionHandle<P> {
    /// Run `f` on the current state (under a read lock: keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.shared.state.read())
    }

    /// The next position the projection will apply: it includes every event below it.
    pub fn position(&self) -> u64 {
        *self.shared.position.lock()
    }

    /// Block until the projection includes the event at `position`, or `timeout` passes.
    /// Returns whether it does.
    pub fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut pos = self.shared.position.lock();
        // Bounded by the deadline.
        while *pos <= position {
            if self
                .shared
                .advanced
                .wait_until(&mut pos, deadline)
                .timed_out()
            {
                return *pos > position;
            }
        }
        true
    }
}

/// Keeps a [`Projection`] up to date from an [`EventSource`], with a checkpoint file.
///
/// Not `Sync`: one thread drives it (e.g. loops on [`ProjectionRunner::step`] or calls
/// [`ProjectionRunner::run_until`]); other threads read through [`ProjectionRunner::handle`].
pub struct ProjectionRunner<P: Projection, S: EventSource> {
    subscription: Subscription<S>,
    shared: Arc<Shared<P>>,
    path: PathBuf,
    checkpoint_every: u64,
    checkpoint_interval: Duration,
    last_checkpoint: Instant,
    since_checkpoint: u64,
    /// Id of the last event the subscription passed (applied or filtered).
    last_event_id: Option<Uuid>,
    stats: ProjectionStats,
}

impl<P: Projection, S: EventSource> std::fmt::Debug for ProjectionRunner<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("name", &P::NAME)
            .field("path", &self.path)
            .field("position", &self.subscription.position())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<P: Projection, S: EventSource> ProjectionRunner<P, S> {
    /// Open the runner with its checkpoint at `checkpoint_path` (usually
    /// [`checkpoint_path`]`(store.path(), P::NAME)`), loading the checkpoint or starting a
    /// rebuild from zero (see [`ProjectionStats::last_rebuild`]). Nothing is applied yet: call
    /// [`ProjectionRunner::catch_up`].
    pub fn open(source: S, checkpoint_path: impl AsRef<Path>) -> Result<ProjectionRunner<P, S>> {
        validate_name(P::NAME)?;
        let path = checkpoint_path.as_ref().to_path_buf();
        let mut stats = ProjectionStats::default();
        let loaded = load_checkpoint::<P, S>(&source, &path);
        let (state, position, last_event_id) = match loaded {
            Ok((state, cp)) => {
                stats.resumed_from = Some(cp.position);
                (state, cp.position, cp.last_event_id)
            }
            Err(reason) => {
                stats.rebuilds += 1;
                stats.last_rebuild = Some(reason);
                (P::default(), 0, None)
            }
        };
        Ok(ProjectionRunner {
            subscription: Subscription::new(source, position, P::filter()),
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                position: Mutex::new(position),
                advanced: Condvar::new(),
            }),
            path,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            last_checkpoint: Instant::now(),
            since_checkpoint: 0,
            last_event_id,
            stats,
        })
    }

    /// Write a checkpoint automatically once `n` events were applied since the last one (and
    /// at least the checkpoint interval passed). 0: only on demand and at the end of
    /// [`ProjectionRunner::catch_up`] / [`ProjectionRunner::run_until`]. Default
    /// [`DEFAULT_CHECKPOINT_EVERY`].
    pub fn with_checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n;
        self
    }

    /// The shortest time between automatic checkpoints (default
    /// [`DEFAULT_CHECKPOINT_INTERVAL`]; `Duration::ZERO`: count only). A crash replays at most
    /// the events applied since the last checkpoint, so this bounds the replay in time.
    pub fn with_checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// A read handle for other threads.
    pub fn handle(&self) -> ProjectionHandle<P> {
        ProjectionHandle {
            shared: self.shared.clone(),
        }
    }

    /// The next position to apply.
    pub fn position(&self) -> u64 {
        self.subscription.position()
    }

    /// Counters since open.
    pub fn stats(&self) -> &ProjectionStats {
        &self.stats
    }

    /// The checkpoint file.
    pub fn checkpoint_file(&self) -> &Path {
        &self.path
    }

    /// The event source.
    pub fn source(&self) -> &S {
        self.subscription.source()
    }

    /// Apply a batch of events (already delivered by the subscription) and publish the new
    /// position. Checkpoints when due.
    fn apply_batch(&mut self, events: &[RecordedEvent]) -> Result<()> {
        {
            let mut state = self.shared.state.write();
            for e in events {
                state.apply(e);
            }
        }
        self.stats.applied += events.len() as u64;
        self.since_checkpoint += events.len() as u64;
        self.publish_position()?;
        if self.checkpoint_every > 0
            && self.since_checkpoint >= self.checkpoint_every
            && self.last_checkpoint.elapsed() >= self.checkpoint_interval
        {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Record the subscription's position (and the id of the event just before it) as the
    /// projection's position, and wake waiters.
    fn publish_position(&mut self) -> Result<()> {
        let position = self.subscription.position();
        let published = *self.shared.position.lock();
        if position == published {
            return Ok(());
        }
        // The id of the event at position - 1 (read back only if the subscription does not
        // know it, e.g. right after a seek).
        self.last_event_id = match (position.checked_sub(1), self.subscription.last_event_id()) {
            (None, _) => None,
            (Some(_), Some(id)) => Some(id),
            (Some(p), None) => {
                Some(event_id_at(self.subscription.source(), p)?.ok_or_else(|| {
                    Error::Internal(format!(
                        "position {p} was delivered but cannot be read back"
                    ))
                })?)
            }
        };
        *self.shared.position.lock() = position;
        self.shared.advanced.notify_all();
        Ok(())
    }

    /// Process up to `max` events: wait up to `timeout` for the first, then take what is
    /// visible. Returns how many were applied (0: nothing arrived in time). Filtered-out events
    /// advance the position without counting.
    pub fn step(&mut self, max: usize, timeout: Duration) -> Result<usize> {
        let mut applied = 0;
        let deadline = Instant::now() + timeout;
        // Bounded by `max` and the deadline.
        while applied < max {
            let wait = deadline.saturating_duration_since(Instant::now());
            let batch = self
                .subscription
                .next_batch((max - applied).min(APPLY_BATCH), wait)?;
            if batch.is_empty() {
                break;
            }
            applied += batch.len();
            self.apply_batch(&batch)?;
            if !self.subscription.has_pending() {
                break;
            }
        }
        // Filtered-out events at the head also move the published position.
        self.publish_position()?;
        Ok(applied)
    }

    /// Apply everything visible up to the current head, then write a checkpoint if anything
    /// was applied since the last one. Returns the number of events applied.
    pub fn catch_up(&mut self) -> Result<u64> {
        let target = match self.subscription.source().head_position() {
            Some(head) => head + 1,
            None => return Ok(0),
        };
        let applied = self.catch_up_to(target)?;
        if self.since_checkpoint > 0 {
            self.checkpoint()?;
        }
        Ok(applied)
    }

    /// Apply events until the projection includes every position below `end` (which must be
    /// visible already); with a filter it may pass a few positions beyond `end`. Returns the
    /// number applied. Does not force a checkpoint.
    pub fn catch_up_to(&mut self, end: u64) -> Result<u64> {
        let mut applied = 0u64;
        // Bounded: every round moves the position forward or stops.
        while self.subscription.position() < end {
            let before = self.subscription.position();
            let want = usize::try_from(end - before).map_or(APPLY_BATCH, |n| n.min(APPLY_BATCH));
            let batch = self.subscription.next_batch(want, Duration::ZERO)?;
            applied += batch.len() as u64;
            if !batch.is_empty() {
                self.apply_batch(&batch)?;
            }
            if self.subscription.position() == before {
                break;
            }
        }
        self.publish_position()?;
        Ok(applied)
    }

    /// Loop on [`ProjectionRunner::step`] until `stop` is stopped, checkpointing as
    /// configured and once more at the end.
    pub fn run_until(&mut self, stop: &StopHandle) -> Result<()> {
        // Bounded by the stop handle, checked at least every 100 ms.
        while !stop.is_stopped() {
            self.step(APPLY_BATCH, Duration::from_millis(100))?;
        }
        self.checkpoint()
    }

    /// Save state and position together, atomically, in the checkpoint file.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.publish_position()?;
        let state = {
            let guard = self.shared.state.read();
            codec::encode(&*guard).map_err(|e| Error::InvalidInput(e.to_string()))?
        };
        let cp = Checkpoint {
            version: P::VERSION,
            position: self.subscription.position(),
            last_event_id: self.last_event_id,
            state,
        };
        cp.write(&self.path)?;
        self.last_checkpoint = Instant::now();
        self.since_checkpoint = 0;
        self.stats.checkpoints_written += 1;
        Ok(())
    }

    /// Throw the state away and rebuild it from position 0 (up to the current head), then
    /// checkpoint. Readers see the state reset and grow back.
    pub fn rebuild(&mut self) -> Result<u64> {
        *self.shared.state.write() = P::default();
        self.subscription.seek(0);
        *self.shared.position.lock() = 0;
        self.last_event_id = None;
        self.since_checkpoint = 0;
        self.stats.rebuilds += 1;
        self.stats.last_rebuild = Some(RebuildReason::Requested);
        let applied = self.catch_up()?;
        if applied == 0 {
            self.checkpoint()?;
        }
        Ok(applied)
    }
}

/// The id of the event at `position`, if the source has it.
fn event_id_at<S: EventSource + ?Sized>(source: &S, position: u64) -> Result<Option<Uuid>> {
    let events = source.read_all_from(position, 1)?;
    Ok(events
        .first()
        .filter(|e| e.position == position)
        .map(|e| e.event_id))
}

/// Load and check a projection's checkpoint; `Err` says why it must be rebuilt.
fn load_checkpoint<P: Projection, S: EventSource>(
    source: &S,
    path: &Path,
) -> std::result::Result<(P, Checkpoint), RebuildReason> {
    let cp = match Checkpoint::read(path) {
        Ok(cp) => cp,
        Err(CheckpointError::Missing) => return Err(RebuildReason::Missing),
        Err(CheckpointError::Damaged(what)) | Err(CheckpointError::Io(what)) => {
            return Err(RebuildReason::Damaged(what))
        }
    };
    if cp.version != P::VERSION {
        return Err(RebuildReason::VersionChanged {
            stored: cp.version,
            current: P::VERSION,
        });
    }
    verify_against_log(source, &cp)?;
    let state: P = codec::decode(&cp.state)
        .map_err(|e| RebuildReason::Damaged(format!("state does not decode: {e}")))?;
    Ok((state, cp))
}

/// The log must still hold the event the checkpoint was taken after.
pub(crate) fn verify_against_log<S: EventSource + ?Sized>(
    source: &S,
    cp: &Checkpoint,
) -> std::result::Result<(), RebuildReason> {
    if let Some(p) = cp.position.checked_sub(1) {
        match event_id_at(source, p) {
            Ok(Some(id)) if Some(id) == cp.last_event_id => {}
            Ok(_) => return Err(RebuildReason::LogMismatch),
            Err(e) => return Err(RebuildReason::Damaged(format!("cannot check the log: {e}"))),
        }
    }
    Ok(())
}

/// Inline mode: appends go through this wrapper, which applies the newly durable events to an
/// in-process projection before returning, so a query right after a command sees its effect
/// (read-your-writes).
///
/// It implements [`EventStorage`] (appends and reads pass through), so a repository or
/// `OrderService` (crate `evstore-orders`) can write through it. Events appended by
/// others (not through this wrapper) are applied too, at the next append or
/// [`InlineProjection::catch_up`].
///
/// ```
/// use std::sync::Arc;
/// use evstore::projection::{InlineProjection, Projection};
/// use evstore::{ExpectedVersion, NewEvent, RecordedEvent, Store};
/// # #[derive(Default, serde::Serialize, serde::Deserialize)]
/// # struct Count { n: u64 }
/// # impl Projection for Count {
/// #     const NAME: &'static str = "count";
/// #     const VERSION: u32 = 1;
/// #     fn apply(&mut self, _e: &RecordedEvent) { self.n += 1; }
/// # }
/// # let dir = tempfile::tempdir().unwrap();
/// let store = Arc::new(Store::open(dir.path().join("i.evs"))?);
/// let inline = InlineProjection::<Count, _>::open_beside(store.clone())?;
/// inline.append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![])])?;
/// assert_eq!(inline.handle().read(|c| c.n), 1); // no waiting
/// # Ok::<(), evstore::Error>(())
/// ```
pub struct InlineProjection<P: Projection, S: EventSource + EventStorage> {
    source: S,
    runner: Mutex<ProjectionRunner<P, S>>,
    handle: ProjectionHandle<P>,
}

impl<P: Projection, S: EventSource + EventStorage> std::fmt::Debug for InlineProjection<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineProjection")
            .field("name", &P::NAME)
            .field("position", &self.handle.position())
            .finish_non_exhaustive()
    }
}

impl<P: Projection, S: EventSource + EventStorage + Clone> InlineProjection<P, S> {
    /// Open over `source`, with the checkpoint at `checkpoint_path`, and catch up.
    pub fn open(source: S, checkpoint_path: impl AsRef<Path>) -> Result<InlineProjection<P, S>> {
        InlineProjection::from_runner(ProjectionRunner::open(source, checkpoint_path)?)
    }
}

impl<P: Projection, S: EventSource + EventStorage + Clone> InlineProjection<P, S> {
    /// Wrap a configured runner (checkpoint policy...) and catch it up.
    pub fn from_runner(mut runner: ProjectionRunner<P, S>) -> Result<InlineProjection<P, S>> {
        runner.catch_up()?;
        let handle = runner.handle();
        Ok(InlineProjection {
            source: runner.source().clone(),
            runner: Mutex::new(runner),
            handle,
        })
    }
}

impl<P: Projection, S: EventSource + EventStorage> InlineProjection<P, S> {
    /// Append (see [`crate::Store::append`]), then apply every event up to the append's last
    /// position before returning. If the append succeeds but applying fails, the error is
    /// returned: the events are in the log and the projection catches up on the next call.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        // The append runs without the runner's lock, so concurrent appenders still share
        // group commits; only applying is serialised.
        let result = self.source.append(stream, expected, events)?;
        self.runner.lock().catch_up_to(result.last_position + 1)?;
        Ok(result)
    }

    /// Apply whatever others appended.
    pub fn catch_up(&self) -> Result<u64> {
        self.runner.lock().catch_up()
    }

    /// Save state and position now.
    pub fn checkpoint(&self) -> Result<()> {
        self.runner.lock().checkpoint()
    }

    /// A read handle on the state.
    pub fn handle(&self) -> ProjectionHandle<P> {
        self.handle.clone()
    }

    /// Counters of the inner runner.
    pub fn stats(&self) -> ProjectionStats {
        self.runner.lock().stats().clone()
    }
}

impl<P: Projection> InlineProjection<P, Arc<crate::Store>> {
    /// Open with the checkpoint beside the store's log ([`checkpoint_path`]).
    pub fn open_beside(store: Arc<crate::Store>) -> Result<InlineProjection<P, Arc<crate::Store>>> {
        let path = checkpoint_path(store.path(), P::NAME);
        InlineProjection::open(store, path)
    }
}

impl<P: Projection> ProjectionRunner<P, Arc<crate::Store>> {
    /// Open with the checkpoint beside the store's log ([`checkpoint_path`]).
    pub fn open_beside(store: Arc<crate::Store>) -> Result<ProjectionRunner<P, Arc<crate::Store>>> {
        let path = checkpoint_path(store.path(), P::NAME);
        ProjectionRunner::open(store, path)
    }
}

impl<P: Projection, S: EventSource + EventStorage> EventStorage for InlineProjection<P, S> {
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        InlineProjection::append(self, stream, expected, events)
    }

    fn read_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        self.source
            .read_stream_range(stream, from_version, to_version)
    }

    fn last_version(&self, stream: &str) -> Result<Option<u64>> {
        self.source.last_version(stream)
    }

    fn load_snapshot(&self, stream: &str) -> Result<Option<crate::snapshot::Snapshot>> {
        self.source.load_snapshot(stream)
    }

    fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()> {
        self.source
            .save_snapshot(stream, version, event_id, payload)
    }

    fn note_snapshot_undecodable(&self, stream: &str) -> Result<()> {
        self.source.note_snapshot_undecodable(stream)
    }

    fn wait_for_version(&self, stream: &str, version: u64, timeout: Duration) -> Result<bool> {
        self.source.wait_for_version(stream, version, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let cp = Checkpoint {
            version: 3,
            position: 9,
            last_event_id: Some(Uuid::new_v4()),
            state: vec![1, 2, 3],
        };
        let bytes = cp.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), cp);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Checkpoint::decode(&b).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(Checkpoint::decode(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("order-summaries_2").is_ok());
        for bad in ["", "a/b", "..", "x y", &"n".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
