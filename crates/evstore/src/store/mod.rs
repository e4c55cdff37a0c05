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

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::index::Index;
#[cfg(feature = "test-support")]
use crate::index::IndexFingerprint;
use crate::log::file;
use crate::log::frame::{self, Location, MAX_EVENTS_PER_BATCH, MAX_NAME_LEN};
use crate::log::reader::EventReader;
use crate::log::recovery::{self, ScanOutcome, Verdict};
use crate::log::segment::{self, FileHeader, SegmentTable};
use crate::log::writer::{EncodedBatch, LogIo, LogWriter, WriterStats};
use crate::snapshot::{self, IgnoredReason, Snapshot, SnapshotStats, SnapshotStore};
use crate::types::{
    AppendResult, Durability, EventView, ExpectedVersion, NewEvent, Options, RecordedEvent,
};

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
}

/// Appender-side state, behind the `state` mutex.
struct WriterState {
    /// Next position to assign.
    next_position: u64,
    /// Last `recorded_at` assigned, µs.
    last_stamp_us: i64,
    /// Batches assigned but not yet taken by a leader, in position order.
    queue: Vec<EncodedBatch>,
    /// What each queued batch is (stream, result, event ids), in the same order as `queue`.
    queue_batches: Vec<InflightBatch>,
    /// The batches of the group a leader is writing now (taken from `queue_batches`), kept
    /// here so that an identical append arriving meanwhile finds them (idempotent retry).
    writing: Vec<InflightBatch>,
    /// Last assigned version of streams with batches not yet published (queued batches).
    inflight: HashMap<Arc<str>, u64>,
    /// The batch a solo leader is writing (see `Store::append`): its stream (a reused buffer)
    /// and last version; `None` when there is none.
    solo_stream: String,
    solo_last: Option<u64>,
    /// The solo batch's result and event ids (a reused buffer); valid while `solo_last` is set.
    solo_result: AppendResult,
    solo_ids: Vec<Uuid>,
    /// The most recent append if it was a solo one and nothing was published since: its
    /// stream (a reused buffer) and versions. Lets the next append to the same stream skip the
    /// index lookup and the idempotent-retry read. Cleared by every group commit.
    recent_stream: String,
    recent: Option<RecentAppend>,
    /// The event ids of the cached most recent append (a reused buffer); valid while `recent`
    /// is set.
    recent_ids: Vec<Uuid>,
    /// Events published (visible): positions below this are in the index.
    published: u64,
    /// End position of the batches the running (or last) group took: a waiting appender whose
    /// batch ends at or below it is in group `groups`, otherwise queued for `groups + 1`.
    taken_end: u64,
    leader: bool,
    poisoned: bool,
    appends: u64,
    groups: u64,
}

/// See `WriterState::recent`.
#[derive(Debug, Clone, Copy)]
struct RecentAppend {
    first_version: u64,
    last_version: u64,
}

/// A batch assigned versions and positions but not yet published: queued, or in the group a
/// leader is writing. Its event ids let an identical append (a client's retry while the first
/// attempt still waits for its fsync) find it and share its result instead of writing twice.
#[derive(Debug)]
struct InflightBatch {
    stream: Arc<str>,
    result: AppendResult,
    ids: Vec<Uuid>,
}

/// What the in-flight batches say about an append (see `WriterState::inflight_match`).
enum InflightMatch {
    /// No in-flight batch of the stream starts with the append's first event id.
    None,
    /// An identical batch is in flight, where `expected` puts it: its result.
    Duplicate(AppendResult),
}

impl WriterState {
    /// The cached most recent append, if it went to `stream`.
    fn recent_append(&self, stream: &str) -> Option<RecentAppend> {
        self.recent.filter(|_| self.recent_stream == stream)
    }

    /// Every batch not yet published, the solo leader's included.
    fn inflight_batches(&self) -> impl Iterator<Item = (&str, &AppendResult, &[Uuid])> {
        let solo = self.solo_last.map(|_| {
            (
                self.solo_stream.as_str(),
                &self.solo_result,
                &self.solo_ids[..],
            )
        });
        let others = self
            .writing
            .iter()
            .chain(&self.queue_batches)
            .map(|b| (&*b.stream, &b.result, &b.ids[..]));
        solo.into_iter().chain(others)
    }

    /// Whether an append of `events` to `stream` with `expected` repeats a batch still in
    /// flight: the same event ids, in the same order, at the versions `expected` implies
    /// (any for `Any` and `StreamExists`). A batch whose first id matches an in-flight batch
    /// but whose other ids differ is an [`Error::IdempotencyConflict`].
    fn inflight_match(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<InflightMatch> {
        let first_id = events[0].event_id;
        let found = self
            .inflight_batches()
            .find(|(s, _, ids)| *s == stream && ids.first() == Some(&first_id));
        let Some((_, result, ids)) = found else {
            return Ok(InflightMatch::None);
        };
        let same_ids =
            ids.len() == events.len() && ids.iter().zip(events).all(|(id, e)| *id == e.event_id);
        if !same_ids {
            return Err(partial_repeat(stream, ids.len(), events.len()));
        }
        let placed = match expected {
            ExpectedVersion::Any | ExpectedVersion::StreamExists => true,
            ExpectedVersion::NoStream => result.first_version == 0,
            ExpectedVersion::Exact(v) => v.checked_add(1) == Some(result.first_version),
        };
        Ok(if placed {
            InflightMatch::Duplicate(*result)
        } else {
            InflightMatch::None
        })
    }

    /// The last version assigned to `stream` by a batch not yet published, if any: a queued
    /// batch (the latest, as the map always holds the last one queued) or the solo leader's.
    fn inflight_version(&self, stream: &str) -> Option<u64> {
        if let Some(v) = self.inflight.get(stream) {
            return Some(*v);
        }
        match self.solo_last {
            Some(v) if self.solo_stream == stream => Some(v),
            _ => None,
        }
    }
}

/// How many queued groups a leader commits after its own before it returns (see
/// `Store::keep_leading`).
const EXTRA_LEADER_ROUNDS: usize = 2;

/// What `open` found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Valid frames in the log.
    pub frames: u64,
    /// Events in the log.
    pub events: u64,
    /// Set when a torn tail was found: trimmed from the file (read-write), or skipped and left
    /// in place (read-only).
    pub trimmed: Option<TrimReport>,
}

/// A torn tail removed during open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimReport {
    /// Segment and offset where the log now ends.
    pub segment: u64,
    pub offset: u64,
    /// Why the bytes there were not a valid frame.
    pub reason: String,
}

/// Counters, for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Events in the store (visible).
    pub events: u64,
    /// Streams in the store.
    pub streams: u64,
    /// Mapped segments.
    pub segments: u64,
    /// Appends (batches) written since open.
    pub appends: u64,
    /// Group commits (leader rounds) since open.
    pub groups: u64,
    /// Frames written since open.
    pub frames_written: u64,
    /// fdatasync calls since open.
    pub data_syncs: u64,
    /// Bytes written since open.
    pub bytes_written: u64,
}

impl Store {
    /// Open the store at `path` with default [`Options`], creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, Options::default())
    }

    /// Open the store at `path`. An existing file keeps the segment size in its header.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        Store::open_with_io(path, options, |f| Box::new(f))
    }

    /// Open with the writer's file operations wrapped by `wrap_io` (fault injection in tests,
    /// through `testing::open_with_io`).
    pub(crate) fn open_with_io(
        path: impl AsRef<Path>,
        options: Options,
        wrap_io: impl FnOnce(File) -> Box<dyn LogIo>,
    ) -> Result<Store> {
        segment::validate_segment_size(options.segment_size).map_err(Error::InvalidInput)?;
        let path = path.as_ref().to_path_buf();
        let (file, header) = file::open_log(&path, &options)?;
        let mut index = Index::default();
        let mut recovered = recovery::recover(&file, &header, &mut |body, at| {
            index.add_frame(body, at).map_err(Into::into)
        })?;
        let outcome = &recovered.outcome;
        let trimmed = match &outcome.verdict {
            Verdict::Damaged(damage) => return Err(damage.clone().into_error()),
            Verdict::TornTail { reason, .. } => Some(TrimReport {
                segment: outcome.end_segment,
                offset: outcome.end_offset,
                reason: reason.clone(),
            }),
            Verdict::Clean => None,
        };
        if !options.read_only {
            recovery::prepare_for_appends(&file, &header, &mut recovered)?;
        }
        let outcome = recovered.outcome;
        let segments = Arc::new(SegmentTable::new(recovered.maps));
        let writer = if options.read_only {
            None
        } else {
            Some(new_writer(file, header, &segments, &outcome, wrap_io)?)
        };
        let recovery = RecoveryReport {
            frames: outcome.frames,
            events: index.len(),
            trimmed,
        };
        Ok(Store::assemble(
            path, options, header, segments, index, writer, recovery,
        ))
    }

    /// The store around what `open` recovered (`segment_size` taken from the header).
    fn assemble(
        path: PathBuf,
        options: Options,
        header: FileHeader,
        segments: Arc<SegmentTable>,
        index: Index,
        writer: Option<LogWriter>,
        recovery: RecoveryReport,
    ) -> Store {
        let events = index.len();
        let last_stamp_us = index.last_recorded_at_us().unwrap_or(i64::MIN);
        Store {
            path,
            options: Options {
                segment_size: header.segment_size,
                ..options
            },
            header,
            segments,
            index: RwLock::new(index),
            state: Mutex::new(WriterState {
                next_position: events,
                last_stamp_us,
                queue: Vec::new(),
                queue_batches: Vec::new(),
                writing: Vec::new(),
                inflight: HashMap::new(),
                solo_stream: String::new(),
                solo_last: None,
                solo_result: AppendResult::default(),
                solo_ids: Vec::new(),
                recent_stream: String::new(),
                recent: None,
                recent_ids: Vec::new(),
                published: events,
                taken_end: events,
                leader: false,
                poisoned: false,
                appends: 0,
                groups: 0,
            }),
            group_done: [Condvar::new(), Condvar::new()],
            writer: Mutex::new(writer),
            recovery,
            snapshots: Mutex::new(None),
            visible: Mutex::new(events),
            visible_changed: Condvar::new(),
        }
    }

    /// Append `events` to `stream`, atomically, if the stream's version matches `expected`
    /// (as KurrentDB's expected revision: `Any`, `NoStream`, `StreamExists`, `Exact(v)`).
    ///
    /// Returns after the events are durable ([`Durability::Sync`]) or written to the OS
    /// ([`Durability::Buffered`]).
    ///
    /// **Idempotent retry.** Repeating an append (the same event ids in the same order) returns
    /// the original [`AppendResult`] and writes nothing, whether the first call has returned
    /// or is still waiting for its write or fsync (the repeat then waits for it too):
    /// * `Exact(v)` / `NoStream`: when the events sit at the versions `expected` puts them;
    /// * `Any` / `StreamExists`: when the events are the stream's most recent ones, or a batch
    ///   of the stream still in flight (an `Any` repeat after later appends to the same stream
    ///   is not recognised; use `Exact` when retries matter).
    ///
    /// A batch that only partly repeats one (its first event id matches but the rest does not,
    /// or it repeats the stream's last events and adds more) is an
    /// [`Error::IdempotencyConflict`], and nothing is written.
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`] with the actual version; [`Error::InvalidInput`] for
    /// bad names, an empty or oversized batch; [`Error::IdempotencyConflict`];
    /// [`Error::ReadOnly`]; [`Error::Poisoned`] after an earlier I/O error; [`Error::Io`].
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        let mut bytes = encode_batch(stream, events, self.header.segment_size)?;
        let mut st = self.state.lock();
        if st.poisoned {
            return Err(Error::Poisoned);
        }
        let current = match self.check_append(&mut st, stream, expected, events)? {
            Checked::Repeat(result) => return Ok(result),
            Checked::Proceed(current) => current,
        };
        let n = events.len() as u64;
        let first_version = current.map_or(0, |v| v + 1);
        let last_version = first_version + n - 1;
        let first_position = st.next_position;
        let stamp = now_us().max(st.last_stamp_us);
        frame::patch_batch_header(&mut bytes, first_version, stamp);
        st.last_stamp_us = stamp;
        st.next_position += n;
        let end = st.next_position;
        let result = AppendResult {
            first_version,
            last_version,
            first_position,
            last_position: end - 1,
        };
        st.appends += 1;
        if !st.leader && st.queue.is_empty() {
            self.append_solo(&mut st, stream, events, bytes, result)?;
            return Ok(result);
        }
        // One shared copy of the name for both records.
        let name: Arc<str> = Arc::from(stream);
        st.inflight.insert(name.clone(), last_version);
        st.queue.push(EncodedBatch { bytes });
        st.queue_batches.push(InflightBatch {
            stream: name,
            result,
            ids: events.iter().map(|e| e.event_id).collect(),
        });
        self.wait_published(&mut st, end)?;
        Ok(result)
    }

    /// The checks an append makes under `state` before it is assigned versions: an identical
    /// batch in flight or already in the stream (idempotent retry: its result), then the
    /// expected version against the stream's version including batches in flight. Waits for
    /// an identical in-flight batch to be published before returning its result.
    fn check_append(
        &self,
        st: &mut MutexGuard<'_, WriterState>,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Checked> {
        let inflight = st.inflight_version(stream);
        if inflight.is_some() {
            if let InflightMatch::Duplicate(result) = st.inflight_match(stream, expected, events)? {
                self.wait_published(st, result.last_position + 1)?;
                return Ok(Checked::Repeat(result));
            }
        }
        let recent = st.recent_append(stream);
        let current = match (inflight, recent) {
            (Some(v), _) => Some(v),
            // The most recent solo append is still the stream's last published batch.
            (None, Some(r)) => Some(r.last_version),
            (None, None) => self.index.read().stream_version(stream),
        };
        let matches = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(v) => current == Some(v),
        };
        if !matches {
            if let Some(r) = self.check_retry(stream, expected, current, events)? {
                return Ok(Checked::Repeat(r));
            }
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected,
                actual: current,
            });
        }
        if let (ExpectedVersion::Any | ExpectedVersion::StreamExists, None, Some(c)) =
            (expected, inflight, current)
        {
            // With nothing in flight, `current` is the stream's published tail: an identical
            // append there is a retry; one that repeats only part of it is an error.
            let cached = recent.map(|r| (r, &st.recent_ids[..]));
            if let Some(r) = self.check_tail_retry(stream, c, events, cached)? {
                return Ok(Checked::Repeat(r));
            }
        }
        Ok(Checked::Proceed(current))
    }

    /// The solo path: nobody is writing and nothing is queued, so this append leads a group
    /// of one, its own batch, without the queue: no shared copy of the stream name, no
    /// in-flight map entry, no hand-off. Appenders arriving meanwhile see the batch in the
    /// solo slot (its version, result and ids) and queue behind it, or wait for it if they
    /// repeat it.
    fn append_solo(
        &self,
        st: &mut MutexGuard<'_, WriterState>,
        stream: &str,
        events: &[NewEvent],
        bytes: Vec<u8>,
        result: AppendResult,
    ) -> Result<()> {
        st.solo_stream.clear();
        st.solo_stream.push_str(stream);
        st.solo_last = Some(result.last_version);
        st.solo_result = result;
        st.solo_ids.clear();
        st.solo_ids.extend(events.iter().map(|e| e.event_id));
        let end = result.last_position + 1;
        let outcome = self.run_group(st, std::slice::from_ref(&EncodedBatch { bytes }), end);
        st.solo_last = None;
        outcome?;
        // Remember it: the next append to this stream needs no index lookup.
        {
            let st = &mut **st;
            std::mem::swap(&mut st.solo_stream, &mut st.recent_stream);
            std::mem::swap(&mut st.solo_ids, &mut st.recent_ids);
            st.recent = Some(RecentAppend {
                first_version: result.first_version,
                last_version: result.last_version,
            });
        }
        self.keep_leading(st);
        Ok(())
    }

    /// Wait until every position below `end` is published, leading a group commit when
    /// nobody else does. `Err(Poisoned)` if the store is poisoned first.
    fn wait_published(&self, st: &mut MutexGuard<'_, WriterState>, end: u64) -> Result<()> {
        // Bounded: each round either returns or waits for a leader that publishes or poisons.
        loop {
            if st.published >= end {
                return Ok(());
            }
            if st.poisoned {
                return Err(Error::Poisoned);
            }
            if st.leader {
                // In the group being written, or queued for the next one.
                let group = if end <= st.taken_end {
                    st.groups
                } else {
                    st.groups + 1
                };
                self.group_done[(group % 2) as usize].wait(st);
                continue;
            }
            // Not published and nobody leads: the batch is queued; this group takes it.
            self.lead(st)?;
            debug_assert!(
                st.published >= end,
                "a leader's group holds every queued batch"
            );
            self.keep_leading(st);
        }
    }

    /// Called by a leader about to return: if batches are queued and nobody leads, wake their
    /// appenders so one of them leads.
    fn hand_off(&self, st: &mut MutexGuard<'_, WriterState>) {
        if !st.leader && !st.poisoned && !st.queue.is_empty() {
            self.group_done[((st.groups + 1) % 2) as usize].notify_all();
        }
    }

    /// After a leader published its own batch: if appenders queued meanwhile and nobody leads,
    /// lead their group too, up to `EXTRA_LEADER_ROUNDS` times, before returning. The next
    /// write and fsync then start at once, while the previous group's appenders are still
    /// being woken (on a busy machine, waking dozens of threads takes longer than an fsync);
    /// otherwise the next group would wait until a queued appender got the CPU and the lock.
    /// The cost is latency for this one caller, bounded by the rounds. Errors of those groups
    /// poison the store and reach their own appenders; this caller's append already succeeded.
    fn keep_leading(&self, st: &mut MutexGuard<'_, WriterState>) {
        for _ in 0..EXTRA_LEADER_ROUNDS {
            if st.leader || st.poisoned || st.queue.is_empty() {
                break;
            }
            if self.lead(st).is_err() {
                break;
            }
        }
        self.hand_off(st);
    }

    /// Run one group commit as leader: every queued batch. Called with `state` locked;
    /// returns with it locked.
    fn lead(&self, st: &mut MutexGuard<'_, WriterState>) -> Result<()> {
        let mut batches = std::mem::take(&mut st.queue);
        debug_assert!(st.writing.is_empty(), "one group is written at a time");
        st.writing = std::mem::take(&mut st.queue_batches);
        debug_assert_eq!(
            st.writing.len(),
            batches.len(),
            "one record per queued batch"
        );
        let group_end = st.next_position;
        let outcome = self.run_group(st, &batches, group_end);
        // The group may have appended to the cached stream.
        st.recent = None;
        let mut written = std::mem::take(&mut st.writing);
        if outcome.is_ok() {
            for b in written.drain(..) {
                if st.inflight.get(&b.stream) == Some(&b.result.last_version) {
                    st.inflight.remove(&b.stream);
                }
            }
            // Hand the emptied vectors back for the next group unless appenders queued
            // meanwhile: keeps their capacity for the next group.
            batches.clear();
            if st.queue.capacity() == 0 {
                st.queue = batches;
            }
            if st.queue_batches.capacity() == 0 {
                st.queue_batches = written;
            }
        }
        outcome
    }

    /// Write `batches` (positions up to `group_end`) as the group-commit leader: release
    /// `state`, write the frames and sync once (in `Sync` mode) under `writer`, index them,
    /// then retake `state`, publish, and wake every waiter. On an I/O error the store is
    /// poisoned. Called with `state` locked and no leader; returns with it locked.
    fn run_group(
        &self,
        st: &mut MutexGuard<'_, WriterState>,
        batches: &[EncodedBatch],
        group_end: u64,
    ) -> Result<()> {
        debug_assert!(!st.leader, "one leader at a time");
        st.leader = true;
        st.groups += 1;
        st.taken_end = group_end;
        let outcome = MutexGuard::unlocked(st, || {
            // A panic here (an internal invariant broke) must not leave `leader` set, or every
            // other appender would wait forever: catch it, poison the store, then re-raise.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> io::Result<()> {
                let mut guard = self.writer.lock();
                let Some(w) = guard.as_mut() else {
                    unreachable!("read-only stores reject appends before queueing");
                };
                let frames = w.write_batches(batches)?;
                if self.options.durability == Durability::Sync {
                    w.sync()?;
                }
                let mut index = self.index.write();
                for f in &frames {
                    let body = &w.buffer()[f.body.clone()];
                    if let Err(e) = index.add_frame(body, f.body_file_offset) {
                        panic!("a frame the writer just built does not index: {e:?}");
                    }
                }
                Ok(())
            }))
        });
        let outcome = match outcome {
            Ok(result) => result,
            Err(panic) => {
                st.leader = false;
                st.poisoned = true;
                self.wake_everyone();
                std::panic::resume_unwind(panic);
            }
        };
        st.leader = false;
        match outcome {
            Ok(()) => {
                st.published = group_end;
                self.group_done[(st.groups % 2) as usize].notify_all();
                *self.visible.lock() = group_end;
                self.visible_changed.notify_all();
                Ok(())
            }
            Err(e) => {
                st.poisoned = true;
                self.wake_everyone();
                Err(Error::Io(e))
            }
        }
    }

    /// Wake every waiting appender (the store was poisoned: they all return an error).
    fn wake_everyone(&self) {
        for cv in &self.group_done {
            cv.notify_all();
        }
    }

    /// The idempotent-retry check of an `Exact` or `NoStream` append whose expected version
    /// no longer holds: `Ok(Some)` when `events` are already in the stream where `expected`
    /// puts them; `Ok(None)` when they are not; `Err(IdempotencyConflict)` when they only
    /// partly are.
    fn check_retry(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        current: Option<u64>,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>> {
        let start = match (expected, current) {
            (ExpectedVersion::Exact(v), Some(c)) if v < c => v + 1,
            (ExpectedVersion::NoStream, Some(_)) => 0,
            _ => return Ok(None),
        };
        let index = self.index.read();
        // Only published events can be compared (in-flight ones were checked before).
        let Some(visible) = index.stream_version(stream) else {
            return Ok(None);
        };
        let mut ids = StreamIds::new(&index, self.reader(&index), stream);
        if start > visible || ids.at(start)? != Some(events[0].event_id) {
            return Ok(None);
        }
        let overlap = (visible - start + 1).min(events.len() as u64);
        ids.compare(start, &events[..overlap as usize])?;
        if overlap < events.len() as u64 {
            return Err(partial_repeat(stream, overlap as usize, events.len()));
        }
        Ok(repeat_result(&index, stream, start, events.len() as u64))
    }

    /// The idempotent-retry check of an `Any` or `StreamExists` append while the stream has
    /// nothing in flight and its last version is `current`: whether `events` repeat the
    /// stream's tail. The first event id is looked for among the last `events.len()` events;
    /// found at version `s`, the batch must match versions `s..=current` and end there
    /// (`Ok(Some)`, the original result), else it only partly repeats them
    /// (`Err(IdempotencyConflict)`). `cached` is the most recent append if it is the stream's
    /// last and was cached with its ids: a first id that is not among them needs no log read.
    fn check_tail_retry(
        &self,
        stream: &str,
        current: u64,
        events: &[NewEvent],
        cached: Option<(RecentAppend, &[Uuid])>,
    ) -> Result<Option<AppendResult>> {
        let n = events.len() as u64;
        let window_start = (current + 1).saturating_sub(n);
        let first_id = events[0].event_id;
        if let Some((r, ids)) = cached {
            debug_assert_eq!(r.last_version, current, "the cache holds the stream's tail");
            if r.first_version <= window_start {
                let skip = (window_start - r.first_version) as usize;
                if !ids.get(skip..).unwrap_or(&[]).contains(&first_id) {
                    return Ok(None);
                }
            }
        }
        let index = self.index.read();
        if index.stream_version(stream) != Some(current) {
            return Ok(None);
        }
        let mut ids = StreamIds::new(&index, self.reader(&index), stream);
        let mut found = None;
        for v in window_start..=current {
            if ids.at(v)? == Some(first_id) {
                found = Some(v);
                break;
            }
        }
        let Some(start) = found else {
            return Ok(None);
        };
        let overlap = (current - start + 1) as usize;
        ids.compare(start, &events[..overlap])?;
        if overlap < events.len() {
            return Err(partial_repeat(stream, overlap, events.len()));
        }
        Ok(repeat_result(&index, stream, start, n))
    }

    /// An event reader over every segment the index can point into. Take it while holding
    /// the index guard: the writer maps a segment before it indexes a frame in it, so a table
    /// snapshot taken after the guard covers every location the guard's index holds (taken
    /// before, it may miss the newest segment).
    fn reader(&self, _index: &Index) -> EventReader {
        EventReader::new(self.header, self.segments.snapshot())
    }

    /// Events of `stream` from `from_version` on, in version order (empty if none).
    pub fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        self.read_stream_range(stream, from_version, u64::MAX)
    }

    /// Events of `stream` with versions in `[from_version, to_version)`, in version order.
    pub fn read_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let (positions, locations, mut reader) =
            self.stream_locations(stream, from_version, to_version)?;
        let mut out = Vec::with_capacity(positions.len());
        for (&p, loc) in positions.iter().zip(locations) {
            let loc = loc.ok_or_else(|| missing_location(p))?;
            out.push(reader.view(loc, p)?.to_recorded());
        }
        Ok(out)
    }

    /// Positions and locations of `stream`'s versions `[from_version, to_version)`, copied out
    /// under the index read lock, with a reader that maps all of them.
    fn stream_locations(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<(Vec<u64>, Vec<Option<Location>>, EventReader)> {
        validate_name(stream, "stream id")?;
        let index = self.index.read();
        let positions = index.stream_positions(stream, from_version, to_version);
        let locations = positions.iter().map(|&p| index.location(p)).collect();
        Ok((positions, locations, self.reader(&index)))
    }

    /// Call `f` with each event of `stream` with versions in `[from_version, to_version)`, in
    /// version order, borrowed from the log ([`EventView`]: no copies, no allocations per
    /// event). Stops at the first error, from the log or from `f`. Aggregate loading uses this
    /// to decode events straight out of the memory map.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use evstore::{ExpectedVersion, NewEvent, Store};
    /// let store = Store::open(dir.path().join("s.evs"))?;
    /// store.append("cart-1", ExpectedVersion::NoStream, &[
    ///     NewEvent::new("Added", b"3".to_vec()),
    ///     NewEvent::new("Added", b"4".to_vec()),
    /// ])?;
    /// let mut sum = 0u32;
    /// store.read_stream_with("cart-1", 0, u64::MAX, |e| {
    ///     sum += std::str::from_utf8(e.data).unwrap_or("0").parse::<u32>().unwrap_or(0);
    ///     Ok(())
    /// })?;
    /// assert_eq!(sum, 7);
    /// # Ok::<(), evstore::Error>(())
    /// ```
    pub fn read_stream_with(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
        mut f: impl FnMut(EventView<'_>) -> Result<()>,
    ) -> Result<()> {
        let (positions, locations, mut reader) =
            self.stream_locations(stream, from_version, to_version)?;
        for (&p, loc) in positions.iter().zip(locations) {
            let loc = loc.ok_or_else(|| missing_location(p))?;
            f(reader.view(loc, p)?)?;
        }
        Ok(())
    }

    /// Every event from global position `from_position` on, in position order, streamed (a few
    /// hundred locations are buffered at a time). Events appended while iterating are included
    /// once published.
    pub fn read_all(&self, from_position: u64) -> ReadAll<'_> {
        ReadAll {
            store: self,
            next: from_position,
            locations: VecDeque::new(),
            reader: None,
            done: false,
        }
    }

    /// Events of type `event_type`, in position order; with `since`, only those recorded at or
    /// after it (found by binary search on the type's index).
    pub fn read_by_type(
        &self,
        event_type: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>> {
        validate_name(event_type, "event type")?;
        let mut reader;
        let items: Vec<(u64, Option<Location>)> = {
            let index = self.index.read();
            reader = self.reader(&index);
            let Some(positions) = index.type_positions(event_type) else {
                return Ok(Vec::new());
            };
            let start = match since {
                None => 0,
                Some(since) => {
                    let mut threshold = since.timestamp_micros();
                    if since.timestamp_subsec_nanos() % 1000 != 0 {
                        threshold += 1;
                    }
                    let mut failure = None;
                    let start = positions.partition_point(|pos| {
                        let ts = index
                            .location(pos)
                            .ok_or_else(|| missing_location(pos))
                            .and_then(|loc| reader.recorded_at_us(loc));
                        match ts {
                            Ok(ts) => ts < threshold,
                            Err(e) => {
                                failure.get_or_insert(e);
                                false
                            }
                        }
                    });
                    if let Some(e) = failure {
                        return Err(e);
                    }
                    start
                }
            };
            let mut ps = Vec::new();
            positions.extend_into(start, positions.len(), &mut ps);
            ps.into_iter().map(|p| (p, index.location(p))).collect()
        };
        items
            .into_iter()
            .map(|(p, loc)| {
                let loc = loc.ok_or_else(|| missing_location(p))?;
                reader.read(loc, p)
            })
            .collect()
    }

    /// Block until an event at `position` or later is visible, or `timeout` passes. Returns
    /// whether it is visible. Subscriptions use this to wait for new events without polling.
    ///
    /// ```
    /// # use evstore::{ExpectedVersion, NewEvent, Store};
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path().join("w.evs"))?;
    /// assert!(!store.wait_for_position(0, Duration::from_millis(1)));
    /// store.append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![])])?;
    /// assert!(store.wait_for_position(0, Duration::from_millis(1)));
    /// # Ok::<(), evstore::Error>(())
    /// ```
    pub fn wait_for_position(&self, position: u64, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut visible = self.visible.lock();
        // Bounded by the deadline: every wake-up either returns or waits less.
        while *visible <= position {
            if self
                .visible_changed
                .wait_until(&mut visible, deadline)
                .timed_out()
            {
                return *visible > position;
            }
        }
        true
    }

    /// Block until `stream`'s last visible version is at least `version`, or `timeout`
    /// passes; returns whether it is. An append conflict's `actual` version may belong to an
    /// append still being written (the concurrency check counts those); this waits until reads
    /// see it. Wakes on every publish, like [`Store::wait_for_position`].
    pub fn wait_for_stream_version(
        &self,
        stream: &str,
        version: u64,
        timeout: std::time::Duration,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut visible = self.visible.lock();
        // Bounded by the deadline: every wake-up either returns or waits less.
        loop {
            if self.stream_version(stream).is_some_and(|v| v >= version) {
                return true;
            }
            if self
                .visible_changed
                .wait_until(&mut visible, deadline)
                .timed_out()
            {
                return self.stream_version(stream).is_some_and(|v| v >= version);
            }
        }
    }

    /// The last version of `stream`, or `None` if it has no events.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.index.read().stream_version(stream)
    }

    /// The position of the newest event, or `None` if the store is empty.
    pub fn head_position(&self) -> Option<u64> {
        self.index.read().head()
    }

    /// Make every appended event durable (fdatasync). A no-op cost-wise in `Sync` mode.
    pub fn flush(&self) -> Result<()> {
        if self.state.lock().poisoned {
            return Err(Error::Poisoned);
        }
        let result = match self.writer.lock().as_mut() {
            Some(w) => w.sync(),
            None => return Ok(()),
        };
        result.map_err(|e| {
            self.state.lock().poisoned = true;
            Error::Io(e)
        })
    }

    /// Flush, seal and close, reporting any error (dropping the store does the same, silently).
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        if let Some(s) = self.snapshots.lock().as_ref() {
            // A cache: a failed sync only costs a replay later.
            let _ = s.sync();
        }
        if self.state.lock().poisoned {
            return Err(Error::Poisoned);
        }
        let mut guard = self.writer.lock();
        let Some(w) = guard.as_mut() else {
            return Ok(());
        };
        let result = (|| {
            w.sync()?;
            if !w.fully_proven() {
                w.write_seal()?;
                w.sync()?;
            }
            Ok::<(), io::Error>(())
        })();
        drop(guard);
        result.map_err(|e| {
            self.state.lock().poisoned = true;
            Error::Io(e)
        })
    }

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
        self.state.lock().poisoned
    }

    /// Counters since open.
    pub fn stats(&self) -> StoreStats {
        let (appends, groups) = {
            let st = self.state.lock();
            (st.appends, st.groups)
        };
        let w: WriterStats = self
            .writer
            .lock()
            .as_ref()
            .map(|w| w.stats)
            .unwrap_or_default();
        let (events, streams) = {
            let index = self.index.read();
            (index.len(), index.stream_count() as u64)
        };
        StoreStats {
            events,
            streams,
            segments: self.segments.len() as u64,
            appends,
            groups,
            frames_written: w.frames_written,
            data_syncs: w.data_syncs,
            bytes_written: w.bytes_written,
        }
    }

    /// Event types with their counts, sorted by name.
    pub fn event_types(&self) -> Vec<(String, u64)> {
        self.index.read().type_counts()
    }

    /// The event id at `version` of `stream`, if the stream has that version.
    pub fn event_id_at(&self, stream: &str, version: u64) -> Result<Option<Uuid>> {
        let index = self.index.read();
        StreamIds::new(&index, self.reader(&index), stream).at(version)
    }

    fn with_snapshots<T>(&self, f: impl FnOnce(&mut SnapshotStore) -> Result<T>) -> Result<T> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        let mut guard = self.snapshots.lock();
        if guard.is_none() {
            let path = snapshot::sidecar_path(&self.path);
            *guard = Some(SnapshotStore::open(&path, self.header.file_id)?);
        }
        match guard.as_mut() {
            Some(s) => f(s),
            None => unreachable!("sidecar opened above"),
        }
    }

    /// Save a snapshot of `stream` at `version`, whose event id is `event_id`, in the sidecar
    /// (`<log path>.snap`). Snapshots are a cache: not fsynced, checked against the log on load.
    pub fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()> {
        validate_name(stream, "stream id")?;
        self.with_snapshots(|s| Ok(s.save(stream, version, event_id, payload)?))
    }

    /// The latest snapshot of `stream` that the log confirms: the log still holds its version
    /// with the same event id. Anything else (no snapshot, ahead of the log, stale, damaged) is
    /// `None`, counted in [`Store::snapshot_stats`].
    pub fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        validate_name(stream, "stream id")?;
        if self.options.read_only {
            // Opening the sidecar may repair it; a read-only store replays instead.
            return Ok(None);
        }
        let Some(snap) = self.with_snapshots(|s| Ok(s.load_latest(stream)))? else {
            return Ok(None);
        };
        let verdict = match self.event_id_at(stream, snap.version)? {
            None => Some(IgnoredReason::AheadOfLog),
            Some(id) if id != snap.event_id => Some(IgnoredReason::Stale),
            Some(_) => None,
        };
        self.with_snapshots(|s| {
            match verdict {
                Some(reason) => {
                    s.note_ignored(reason);
                    s.forget(stream);
                }
                None => s.note_used(),
            }
            Ok(())
        })?;
        Ok(if verdict.is_none() { Some(snap) } else { None })
    }

    /// Record that a snapshot returned by [`Store::load_snapshot`] could not be decoded (and
    /// drop it), so it shows in the statistics.
    pub fn note_snapshot_undecodable(&self, stream: &str) -> Result<()> {
        self.with_snapshots(|s| {
            s.note_ignored(IgnoredReason::Undecodable);
            s.forget(stream);
            Ok(())
        })
    }

    /// Snapshot sidecar counters (all zero when there is no sidecar; a read-only store never
    /// opens it).
    pub fn snapshot_stats(&self) -> Result<SnapshotStats> {
        if self.options.read_only {
            return Ok(SnapshotStats::default());
        }
        if self.snapshots.lock().is_none() && !snapshot::sidecar_path(&self.path).exists() {
            return Ok(SnapshotStats::default());
        }
        self.with_snapshots(|s| Ok(s.stats()))
    }

    /// A comparable copy of the whole index (tests compare it across reopen).
    #[cfg(feature = "test-support")]
    pub(crate) fn index_fingerprint(&self) -> IndexFingerprint {
        self.index.read().fingerprint()
    }
}

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

/// Streaming iterator over the log, returned by [`Store::read_all`]. Yields `Err` once (then
/// ends) if a frame cannot be decoded.
pub struct ReadAll<'a> {
    store: &'a Store,
    next: u64,
    locations: VecDeque<u64>,
    reader: Option<EventReader>,
    done: bool,
}

const READ_ALL_BATCH: usize = 512;

impl Iterator for ReadAll<'_> {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.locations.is_empty() {
            let mut buf = Vec::with_capacity(READ_ALL_BATCH);
            let snapshot = {
                let index = self.store.index.read();
                index.locations_from(self.next, READ_ALL_BATCH, &mut buf);
                // Taken under the index guard, so it maps every listed location.
                self.store.segments.snapshot()
            };
            if buf.is_empty() {
                return None;
            }
            let reader = match &mut self.reader {
                Some(r) => {
                    r.refresh(snapshot);
                    r
                }
                None => self
                    .reader
                    .insert(EventReader::new(self.store.header, snapshot)),
            };
            // Sequential scan: read ahead over the batch's span (the maps do no read-around).
            if let (Some(&first), Some(&last)) = (buf.first(), buf.last()) {
                reader.will_need(Location::from_raw(first), Location::from_raw(last));
            }
            self.locations.extend(buf);
        }
        let raw = self.locations.pop_front()?;
        let reader = self.reader.as_mut()?;
        let position = self.next;
        self.next += 1;
        let item = reader.read(Location::from_raw(raw), position);
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

/// The wall clock in µs since the Unix epoch (what `Utc::now().timestamp_micros()` gives,
/// without the calendar conversion in between). A clock before 1970 reads as 0; the batch
/// stamp is then held up by the previous one (stamps never go backwards).
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The index lists `position` but holds no location for it: an in-memory invariant, not
/// damage in the file.
fn missing_location(position: u64) -> Error {
    Error::Internal(format!("the index has no location for position {position}"))
}

/// The writer of a log opened read-write, continuing where recovery found the end (`outcome`,
/// after `recovery::prepare_for_appends` made everything before it durable). Its file
/// operations go through `wrap_io(a clone of file)`; new segments are mapped from `file`.
fn new_writer(
    file: File,
    header: FileHeader,
    segments: &Arc<SegmentTable>,
    outcome: &ScanOutcome,
    wrap_io: impl FnOnce(File) -> Box<dyn LogIo>,
) -> Result<LogWriter> {
    let file = Arc::new(file);
    let io = wrap_io(file.try_clone()?);
    Ok(LogWriter::new(
        io,
        file,
        header,
        segments.clone(),
        outcome.end_segment,
        outcome.end_offset,
        outcome.next_seq,
        outcome.next_seq,
        outcome.proven_durable_seq,
        outcome.last_data_seq,
    ))
}

fn validate_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "{what} must be 1..={MAX_NAME_LEN} bytes of UTF-8, got {} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// Validate an append and encode it as a batch (version and timestamp patched in later).
fn encode_batch(stream: &str, events: &[NewEvent], segment_size: u64) -> Result<Vec<u8>> {
    validate_name(stream, "stream id")?;
    if events.is_empty() {
        return Err(Error::InvalidInput(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(Error::InvalidInput(format!(
            "an append holds at most {MAX_EVENTS_PER_BATCH} events, got {}",
            events.len()
        )));
    }
    let mut size = frame::batch_header_size(stream.len()) as u64;
    for e in events {
        validate_name(&e.event_type, "event type")?;
        size = size
            .saturating_add(frame::event_size(e.event_type.len(), 0, 0) as u64)
            .saturating_add(e.data.len() as u64)
            .saturating_add(e.metadata.len() as u64);
    }
    let frame_size = frame::frame_size(size);
    if frame_size > segment_size {
        return Err(Error::InvalidInput(format!(
            "append of {} events needs {frame_size} bytes, more than a segment holds ({segment_size} bytes)",
            events.len()
        )));
    }
    let mut out = Vec::with_capacity(size as usize);
    frame::encode_batch_header(&mut out, events.len() as u32, stream);
    for e in events {
        frame::encode_event(
            &mut out,
            e.event_id.as_bytes(),
            &e.event_type,
            &e.data,
            &e.metadata,
        );
    }
    debug_assert_eq!(out.len() as u64, size, "encoded size matches the estimate");
    Ok(out)
}

/// The result of the checks an append makes before it is assigned versions.
enum Checked {
    /// An identical batch is already written (or in flight): its result.
    Repeat(AppendResult),
    /// Go ahead; the stream's current version (in-flight batches included).
    Proceed(Option<u64>),
}

/// The event ids of one stream's published events, read through the index.
struct StreamIds<'a> {
    index: &'a Index,
    reader: EventReader,
    stream: &'a str,
}

impl<'a> StreamIds<'a> {
    fn new(index: &'a Index, reader: EventReader, stream: &'a str) -> StreamIds<'a> {
        StreamIds {
            index,
            reader,
            stream,
        }
    }

    /// The id of the event at `version`, `None` if the stream has no such version.
    fn at(&mut self, version: u64) -> Result<Option<Uuid>> {
        let Some(pos) = self.index.stream_position(self.stream, version) else {
            return Ok(None);
        };
        let loc = self
            .index
            .location(pos)
            .ok_or_else(|| missing_location(pos))?;
        self.reader.event_id(loc).map(Some)
    }

    /// `Ok` if `events` are at versions `start..`, else an `IdempotencyConflict` naming the
    /// first event that differs.
    fn compare(&mut self, start: u64, events: &[NewEvent]) -> Result<()> {
        for (j, e) in events.iter().enumerate() {
            let v = start + j as u64;
            if self.at(v)? != Some(e.event_id) {
                return Err(Error::IdempotencyConflict {
                    stream: self.stream.to_string(),
                    detail: format!(
                        "event {} of {} (id {}) does not match version {v}",
                        j + 1,
                        events.len(),
                        e.event_id
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The original result of an append of `n` events at versions `start..` that is repeated.
fn repeat_result(index: &Index, stream: &str, start: u64, n: u64) -> Option<AppendResult> {
    let positions = index.stream_positions(stream, start, start + n);
    let (&first_position, &last_position) = (positions.first()?, positions.last()?);
    Some(AppendResult {
        first_version: start,
        last_version: start + n - 1,
        first_position,
        last_position,
    })
}

/// The error for a batch that repeats `matched` events of an earlier append but is
/// `batch` events long or differs after them.
fn partial_repeat(stream: &str, matched: usize, batch: usize) -> Error {
    Error::IdempotencyConflict {
        stream: stream.to_string(),
        detail: format!(
            "its first event repeats an earlier append of {matched} events, but the batch of \
             {batch} events does not repeat that append exactly"
        ),
    }
}
