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
//! The checkpoint file format, loading and checking against the log live in
//! [`crate::checkpoint`] (shared with sagas); its items are re-exported here.
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

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::aggregate::PayloadFormat;
pub use crate::checkpoint::{
    checkpoint_path, validate_name, Checkpoint, CheckpointError, RebuildReason, CHECKPOINT_FORMAT,
    CHECKPOINT_MAGIC, MAX_NAME_LEN,
};
use crate::checkpoint::{id_before_position, load_checkpoint_from};
use crate::checkpoint_store::{CheckpointStore, FileCheckpoint};
use crate::codec;
use crate::error::Result;
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
    /// How the state is encoded in the checkpoint: the store's binary codec (MessagePack,
    /// default) or JSON (readable with any tool). The checkpoint records it, so changing it
    /// later keeps the checkpoint usable.
    const STATE_FORMAT: PayloadFormat = PayloadFormat::Binary;

    /// The events `apply` needs (others are skipped without being decoded). Default: all.
    fn filter() -> SubscriptionFilter {
        SubscriptionFilter::all()
    }

    /// Fold one event into the state.
    fn apply(&mut self, event: &RecordedEvent);
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
            .field("position", &self.next_position())
            .finish_non_exhaustive()
    }
}

impl<P> ProjectionHandle<P> {
    /// Run `f` on the current state (under a read lock: keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        f(&self.shared.state.read())
    }

    /// The next position the projection will apply: it includes every event below it.
    pub fn next_position(&self) -> u64 {
        *self.shared.position.lock()
    }

    /// The old name of [`Self::next_position`] (the position of the next event, not the last:
    /// compare `Store::head_position`, the last event's).
    #[deprecated(
        since = "0.2.0",
        note = "renamed next_position: the position of the next event"
    )]
    pub fn position(&self) -> u64 {
        self.next_position()
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
    checkpoints: Box<dyn CheckpointStore>,
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
            .field("checkpoints", &self.checkpoints)
            .field("position", &self.subscription.next_position())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<P: Projection, S: EventSource> ProjectionRunner<P, S> {
    /// Open the runner with its checkpoint at `checkpoint_path` (usually
    /// [`checkpoint_path`]`(store.path(), P::NAME)`), loading the checkpoint or starting a
    /// rebuild from zero (see [`ProjectionStats::last_rebuild`]). Nothing is applied yet: call
    /// [`ProjectionRunner::catch_up`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) when [`Projection::NAME`] is not a
    /// valid name ([`validate_name`]). A checkpoint that cannot be used is no error: the runner
    /// rebuilds.
    pub fn open(source: S, checkpoint_path: impl AsRef<Path>) -> Result<ProjectionRunner<P, S>> {
        ProjectionRunner::open_with(source, FileCheckpoint::new(checkpoint_path.as_ref()))
    }

    /// [`ProjectionRunner::open`] with the checkpoint kept in `checkpoints` (a file, a database
    /// table: see [`crate::checkpoint_store`]). The same checks and rebuilds apply.
    ///
    /// # Errors
    /// As [`ProjectionRunner::open`].
    pub fn open_with(
        source: S,
        checkpoints: impl CheckpointStore + 'static,
    ) -> Result<ProjectionRunner<P, S>> {
        validate_name(P::NAME)?;
        let mut counters = ProjectionStats::default();
        let loaded = load_projection::<P, S>(&source, &checkpoints);
        let (state, position, last_event_id) = match loaded {
            Ok((state, cp)) => {
                counters.resumed_from = Some(cp.position);
                (state, cp.position, cp.last_event_id)
            }
            Err(reason) => {
                counters.rebuilds += 1;
                counters.last_rebuild = Some(reason);
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
            checkpoints: Box::new(checkpoints),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            last_checkpoint: Instant::now(),
            since_checkpoint: 0,
            last_event_id,
            stats: counters,
        })
    }

    /// Write a checkpoint automatically once `n` events were applied since the last one (and
    /// at least the checkpoint interval passed). 0: only on demand and at the end of
    /// [`ProjectionRunner::catch_up`] / [`ProjectionRunner::run_until`]. Default
    /// [`DEFAULT_CHECKPOINT_EVERY`].
    #[must_use]
    pub fn with_checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n;
        self
    }

    /// The shortest time between automatic checkpoints (default
    /// [`DEFAULT_CHECKPOINT_INTERVAL`]; `Duration::ZERO`: count only). A crash replays at most
    /// the events applied since the last checkpoint, so this bounds the replay in time.
    #[must_use]
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
    pub fn next_position(&self) -> u64 {
        self.subscription.next_position()
    }

    /// The old name of [`Self::next_position`] (the position of the next event, not the last:
    /// compare `Store::head_position`, the last event's).
    #[deprecated(
        since = "0.2.0",
        note = "renamed next_position: the position of the next event"
    )]
    pub fn position(&self) -> u64 {
        self.next_position()
    }

    /// Counters since open.
    pub fn stats(&self) -> &ProjectionStats {
        &self.stats
    }

    /// The checkpoint file (an empty path when the checkpoint is kept elsewhere: see
    /// [`ProjectionRunner::checkpoint_store`]).
    pub fn checkpoint_file(&self) -> &Path {
        self.checkpoints.file().unwrap_or(Path::new(""))
    }

    /// Where the checkpoint is kept.
    pub fn checkpoint_store(&self) -> &dyn CheckpointStore {
        &*self.checkpoints
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
        let position = self.subscription.next_position();
        let published = *self.shared.position.lock();
        if position == published {
            return Ok(());
        }
        self.last_event_id = id_before_position(&self.subscription)?;
        *self.shared.position.lock() = position;
        self.shared.advanced.notify_all();
        Ok(())
    }

    /// Process up to `max` events: wait up to `timeout` for the first, then take what is
    /// visible. Returns how many were applied (0: nothing arrived in time). Filtered-out events
    /// advance the position without counting.
    ///
    /// # Errors
    /// The source's read errors and [`Error::Internal`](crate::Error::Internal) for a source
    /// that breaks its contract (see [`Subscription::next_timeout`]); the errors of
    /// [`ProjectionRunner::checkpoint`] when one is due.
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
    ///
    /// # Errors
    /// The source's read errors and [`Error::Internal`](crate::Error::Internal) for a source
    /// that breaks its contract (see [`Subscription::next_timeout`]); the errors of
    /// [`ProjectionRunner::checkpoint`] when one is due.
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
    ///
    /// # Errors
    /// The source's read errors and [`Error::Internal`](crate::Error::Internal) for a source
    /// that breaks its contract (see [`Subscription::next_timeout`]); the errors of
    /// [`ProjectionRunner::checkpoint`] when one is due.
    pub fn catch_up_to(&mut self, end: u64) -> Result<u64> {
        let mut applied = 0u64;
        // Bounded: every round moves the position forward or stops.
        while self.subscription.next_position() < end {
            let before = self.subscription.next_position();
            let want = usize::try_from(end - before).map_or(APPLY_BATCH, |n| n.min(APPLY_BATCH));
            let batch = self.subscription.next_batch(want, Duration::ZERO)?;
            applied += batch.len() as u64;
            if !batch.is_empty() {
                self.apply_batch(&batch)?;
            }
            if self.subscription.next_position() == before {
                break;
            }
        }
        self.publish_position()?;
        Ok(applied)
    }

    /// Loop on [`ProjectionRunner::step`] until `stop` is stopped, checkpointing as
    /// configured and once more at the end.
    ///
    /// # Errors
    /// The source's read errors and [`Error::Internal`](crate::Error::Internal) for a source
    /// that breaks its contract (see [`Subscription::next_timeout`]); the errors of
    /// [`ProjectionRunner::checkpoint`] when one is due.
    pub fn run_until(&mut self, stop: &StopHandle) -> Result<()> {
        // Bounded by the stop handle, checked at least every 100 ms.
        while !stop.is_stopped() {
            self.step(APPLY_BATCH, Duration::from_millis(100))?;
        }
        self.checkpoint()
    }

    /// Save state and position together, atomically, in the checkpoint file
    /// ([`Checkpoint::write`]) or the runner's [`CheckpointStore`].
    ///
    /// # Errors
    /// [`Error::Encoding`](crate::Error::Encoding) when the state cannot be encoded;
    /// [`Error::Io`](crate::Error::Io) or [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// from [`Checkpoint::write`] (the old checkpoint is kept); the source's read errors when
    /// the id of the event before the position must be read back.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.publish_position()?;
        let state = {
            let guard = self.shared.state.read();
            codec::encode_as(P::STATE_FORMAT.codec(), &*guard)?
        };
        let cp = Checkpoint {
            version: P::VERSION,
            position: self.subscription.next_position(),
            last_event_id: self.last_event_id,
            state,
            state_codec: P::STATE_FORMAT.codec(),
        };
        self.checkpoints.write(&cp)?;
        self.last_checkpoint = Instant::now();
        self.since_checkpoint = 0;
        self.stats.checkpoints_written += 1;
        Ok(())
    }

    /// Throw the state away and rebuild it from position 0 (up to the current head), then
    /// checkpoint. Readers see the state reset and grow back. Returns the number of events
    /// applied.
    ///
    /// # Errors
    /// The source's read errors and [`Error::Internal`](crate::Error::Internal) for a source
    /// that breaks its contract (see [`Subscription::next_timeout`]); the errors of
    /// [`ProjectionRunner::checkpoint`] when one is due.
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

/// Load and check a projection's checkpoint and decode its state; `Err` says why it must be
/// rebuilt.
fn load_projection<P: Projection, S: EventSource>(
    source: &S,
    checkpoints: &dyn CheckpointStore,
) -> std::result::Result<(P, Checkpoint), RebuildReason> {
    let cp = load_checkpoint_from(source, checkpoints, P::VERSION)?;
    let state: P = codec::decode_as(cp.state_codec, &cp.state)
        .map_err(|e| RebuildReason::Damaged(format!("state does not decode: {e}")))?;
    Ok((state, cp))
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
            .field("position", &self.handle.next_position())
            .finish_non_exhaustive()
    }
}

impl<P: Projection, S: EventSource + EventStorage + Clone> InlineProjection<P, S> {
    /// Open over `source`, with the checkpoint at `checkpoint_path`, and catch up.
    ///
    /// # Errors
    /// The errors of [`ProjectionRunner::open`] and [`ProjectionRunner::catch_up`].
    pub fn open(source: S, checkpoint_path: impl AsRef<Path>) -> Result<InlineProjection<P, S>> {
        InlineProjection::from_runner(ProjectionRunner::open(source, checkpoint_path)?)
    }

    /// [`InlineProjection::open`] with the checkpoint kept in `checkpoints` (see
    /// [`ProjectionRunner::open_with`]).
    ///
    /// # Errors
    /// As [`InlineProjection::open`].
    pub fn open_with(
        source: S,
        checkpoints: impl CheckpointStore + 'static,
    ) -> Result<InlineProjection<P, S>> {
        InlineProjection::from_runner(ProjectionRunner::open_with(source, checkpoints)?)
    }
}

impl<P: Projection, S: EventSource + EventStorage + Clone> InlineProjection<P, S> {
    /// Wrap a configured runner (checkpoint policy...) and catch it up.
    ///
    /// # Errors
    /// The errors of [`ProjectionRunner::catch_up`].
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
    ///
    /// # Errors
    /// The source's append errors (nothing was written, e.g.
    /// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion)); after a
    /// successful append, the errors of [`ProjectionRunner::catch_up_to`].
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

    /// Apply whatever others appended. Returns the number of events applied.
    ///
    /// # Errors
    /// As [`ProjectionRunner::catch_up`].
    pub fn catch_up(&self) -> Result<u64> {
        self.runner.lock().catch_up()
    }

    /// Save state and position now.
    ///
    /// # Errors
    /// As [`ProjectionRunner::checkpoint`].
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
    /// Open with the checkpoint beside the store's log ([`checkpoint_path`]), and catch up.
    ///
    /// # Errors
    /// As [`InlineProjection::open`].
    pub fn open_beside(store: Arc<crate::Store>) -> Result<InlineProjection<P, Arc<crate::Store>>> {
        let path = checkpoint_path(store.path(), P::NAME);
        InlineProjection::open(store, path)
    }
}

impl<P: Projection> ProjectionRunner<P, Arc<crate::Store>> {
    /// Open with the checkpoint beside the store's log ([`checkpoint_path`]).
    ///
    /// # Errors
    /// As [`ProjectionRunner::open`].
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

    fn append_multi(&self, appends: &[crate::StreamAppend]) -> Result<Vec<AppendResult>> {
        // As `append`: write without the runner's lock, then apply up to the last event.
        let results = self.source.append_multi(appends)?;
        if let Some(end) = results.iter().map(|r| r.last_position + 1).max() {
            self.runner.lock().catch_up_to(end)?;
        }
        Ok(results)
    }

    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &crate::AppendCondition,
    ) -> Result<AppendResult> {
        let result = self.source.append_if(stream, expected, events, condition)?;
        self.runner.lock().catch_up_to(result.last_position + 1)?;
        Ok(result)
    }

    fn read_query(
        &self,
        query: &crate::Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        self.source.read_query(query, after)
    }

    fn supports_tags(&self) -> bool {
        self.source.supports_tags()
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
    fn note_snapshot_ignored(
        &self,
        stream: &str,
        reason: crate::snapshot::IgnoredReason,
    ) -> Result<()> {
        self.source.note_snapshot_ignored(stream, reason)
    }

    fn wait_for_version(&self, stream: &str, version: u64, timeout: Duration) -> Result<bool> {
        self.source.wait_for_version(stream, version, timeout)
    }
}
