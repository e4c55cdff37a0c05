//! The appenders' shared state behind `Store::state`, as bookkeeping without I/O or locks:
//! the positions and stamps to assign, the queue and the group being written, which group a
//! waiting appender is in (and so which condition variable it waits on), the in-flight
//! registry, the solo slot and the recent-append cache. `commit` drives it under the mutex;
//! `store::tests` checks it without a file.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use uuid::Uuid;

use crate::log::writer::EncodedBatch;
use crate::types::{AppendResult, NewEvent};

/// Appender-side state, behind the `state` mutex.
pub(super) struct WriterState {
    /// Next position to assign.
    next_position: u64,
    /// Last `recorded_at` assigned, µs.
    last_stamp_us: i64,
    /// Appends (one batch, or a multi-stream append's batches) assigned but not yet taken by a
    /// leader, in position order.
    queue: Vec<EncodedBatch>,
    /// What each queued batch is (stream, result, event ids, bytes), in position order: one
    /// record per stream of each entry of `queue`.
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
    /// The solo batch's bytes (for append conditions); `Some` while `solo_last` is set.
    solo_bytes: Option<Arc<Vec<u8>>>,
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
    /// A leader is writing a group (solo or queued); appenders queue behind it.
    leader: bool,
    /// A write or sync failed (or a leader panicked): every later append fails.
    poisoned: bool,
    /// Appends assigned versions since open (repeats recognised as retries not counted).
    appends: u64,
    /// Groups begun since open (solo ones included); the running group is number `groups`.
    groups: u64,
}

/// See `WriterState::recent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecentAppend {
    pub(super) first_version: u64,
    pub(super) last_version: u64,
}

/// A batch assigned versions and positions but not yet published: queued, or in the group a
/// leader is writing. Its event ids let an identical append (a client's retry while the first
/// attempt still waits for its fsync) find it and share its result instead of writing twice.
#[derive(Debug)]
struct InflightBatch {
    stream: Arc<str>,
    result: AppendResult,
    ids: Vec<Uuid>,
    /// The bytes of the append it belongs to, and its own batch's range in them.
    bytes: Arc<Vec<u8>>,
    range: Range<usize>,
}

/// One stream's batch of an append being queued (see `WriterState::enqueue`): its stream,
/// result, events, and its range in the append's bytes.
pub(super) struct QueuedPart<'a> {
    pub(super) stream: &'a str,
    pub(super) result: AppendResult,
    pub(super) events: &'a [NewEvent],
    pub(super) range: Range<usize>,
}

/// What an appender waiting for its batch (positions below `end`) does next: see
/// `WriterState::wait_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitStep {
    /// Every position below `end` is published: return.
    Published,
    /// The store was poisoned first: fail.
    Poisoned,
    /// A leader is writing: wait on `Store::group_done[parity]`, the condition variable of the
    /// group the batch is in.
    WaitOn(usize),
    /// Nobody leads and the batch is queued: lead the next group (it takes the batch).
    Lead,
}

/// The index in `Store::group_done` of group `group`'s condition variable.
#[inline]
fn parity(group: u64) -> usize {
    (group % 2) as usize
}

impl WriterState {
    /// The state of a store whose log holds `published` events, the last stamped
    /// `last_stamp_us` (µs since the epoch; `i64::MIN` for an empty log).
    pub(super) fn new(published: u64, last_stamp_us: i64) -> WriterState {
        WriterState {
            next_position: published,
            last_stamp_us,
            queue: Vec::new(),
            queue_batches: Vec::new(),
            writing: Vec::new(),
            inflight: HashMap::new(),
            solo_stream: String::new(),
            solo_last: None,
            solo_result: AppendResult::default(),
            solo_ids: Vec::new(),
            solo_bytes: None,
            recent_stream: String::new(),
            recent: None,
            recent_ids: Vec::new(),
            published,
            taken_end: published,
            leader: false,
            poisoned: false,
            appends: 0,
            groups: 0,
        }
    }

    /// Whether an earlier I/O error (or a panicking leader) poisoned the store.
    #[inline]
    pub(super) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Poison the store: a flush or close failed outside a group.
    pub(super) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Appends assigned versions, and groups begun, since open.
    pub(super) fn counters(&self) -> (u64, u64) {
        (self.appends, self.groups)
    }

    /// Assign a batch of `n` (≥ 1) events versions after `current` (from 0 for a new stream)
    /// and the next `n` positions, and count it. Returns its result and its `recorded_at`
    /// stamp, µs: `now_us` held up by the previous stamp, so stamps never go backwards.
    #[inline]
    pub(super) fn assign(
        &mut self,
        current: Option<u64>,
        n: u64,
        now_us: i64,
    ) -> (AppendResult, i64) {
        let first_version = current.map_or(0, |v| v + 1);
        let first_position = self.next_position;
        let stamp = now_us.max(self.last_stamp_us);
        self.last_stamp_us = stamp;
        self.next_position += n;
        self.appends += 1;
        let result = AppendResult {
            first_version,
            last_version: first_version + n - 1,
            first_position,
            last_position: self.next_position - 1,
        };
        (result, stamp)
    }

    /// `Err` (why) unless an imported batch may land at `position` with stamp `stamp_us`:
    /// the next position to assign, and no earlier than the last stamp.
    pub(super) fn check_import(&self, position: u64, stamp_us: i64) -> Result<(), String> {
        if position != self.next_position {
            return Err(format!(
                "import: an event at position {position} does not continue the store (its next \
                 position is {})",
                self.next_position
            ));
        }
        if stamp_us < self.last_stamp_us {
            return Err(format!(
                "import: recorded_at {stamp_us} µs is earlier than the store's last ({} µs)",
                self.last_stamp_us
            ));
        }
        Ok(())
    }

    /// Whether an append may lead a group of one without queueing (the solo path): nobody
    /// leads and nothing is queued.
    #[inline]
    pub(super) fn solo_slot_free(&self) -> bool {
        !self.leader && self.queue.is_empty()
    }

    /// Queue an assigned append (`batch`: its encoded batches, one per part, assigned their
    /// versions) for the next group and record each part in flight.
    #[inline]
    pub(super) fn enqueue(&mut self, batch: EncodedBatch, parts: &[QueuedPart<'_>]) {
        debug_assert_eq!(parts.len() as u64, batch.batches, "one part per batch");
        for p in parts {
            // One shared copy of the name for both records.
            let name: Arc<str> = Arc::from(p.stream);
            self.inflight.insert(name.clone(), p.result.last_version);
            self.queue_batches.push(InflightBatch {
                stream: name,
                result: p.result,
                ids: p.events.iter().map(|e| e.event_id).collect(),
                bytes: batch.bytes.clone(),
                range: p.range.clone(),
            });
        }
        self.queue.push(batch);
    }

    /// Record the batch a solo leader is about to write in the solo slot (reused buffers).
    #[inline]
    pub(super) fn begin_solo(
        &mut self,
        stream: &str,
        events: &[NewEvent],
        result: AppendResult,
        bytes: Arc<Vec<u8>>,
    ) {
        self.solo_stream.clear();
        self.solo_stream.push_str(stream);
        self.solo_last = Some(result.last_version);
        self.solo_result = result;
        self.solo_ids.clear();
        self.solo_ids.extend(events.iter().map(|e| e.event_id));
        self.solo_bytes = Some(bytes);
    }

    /// Empty the solo slot. If the batch was `published`, it becomes the cached most recent
    /// append (the buffers are swapped, not copied), so the next append to its stream needs
    /// no index lookup.
    #[inline]
    pub(super) fn end_solo(&mut self, published: bool) {
        self.solo_last = None;
        self.solo_bytes = None;
        if !published {
            return;
        }
        std::mem::swap(&mut self.solo_stream, &mut self.recent_stream);
        std::mem::swap(&mut self.solo_ids, &mut self.recent_ids);
        self.recent = Some(RecentAppend {
            first_version: self.solo_result.first_version,
            last_version: self.solo_result.last_version,
        });
    }

    /// A leader takes every queued batch as its group: their bytes, and the end position of
    /// the group. Their in-flight records move to the group being written.
    #[inline]
    pub(super) fn take_group(&mut self) -> (Vec<EncodedBatch>, u64) {
        let batches = std::mem::take(&mut self.queue);
        debug_assert!(self.writing.is_empty(), "one group is written at a time");
        self.writing = std::mem::take(&mut self.queue_batches);
        debug_assert_eq!(
            self.writing.len() as u64,
            batches.iter().map(|b| b.batches).sum::<u64>(),
            "one record per queued batch"
        );
        (batches, self.next_position)
    }

    /// A leader begins writing a group (solo or queued) that ends at position `group_end`.
    #[inline]
    pub(super) fn begin_write(&mut self, group_end: u64) {
        debug_assert!(!self.leader, "one leader at a time");
        self.leader = true;
        self.groups += 1;
        self.taken_end = group_end;
    }

    /// The group being written is published up to `group_end`. Returns the index of the
    /// condition variable its appenders wait on.
    #[inline]
    pub(super) fn publish(&mut self, group_end: u64) -> usize {
        self.leader = false;
        self.published = group_end;
        parity(self.groups)
    }

    /// The group being written failed (or its leader panicked): the store is poisoned.
    pub(super) fn fail_write(&mut self) {
        self.leader = false;
        self.poisoned = true;
    }

    /// After a queued group was written (`published`, or failed): the cache is dropped (the
    /// group may have appended to its stream) and so are the group's in-flight records. A
    /// published group's streams leave the in-flight map unless a later batch of theirs is
    /// queued, and its emptied vectors (`batches`, the records) are handed back for the next
    /// group, keeping their capacity, unless appenders queued into new ones meanwhile.
    #[inline]
    pub(super) fn finish_group(&mut self, mut batches: Vec<EncodedBatch>, published: bool) {
        self.recent = None;
        let mut written = std::mem::take(&mut self.writing);
        if !published {
            return;
        }
        for b in written.drain(..) {
            if self.inflight.get(&b.stream) == Some(&b.result.last_version) {
                self.inflight.remove(&b.stream);
            }
        }
        batches.clear();
        if self.queue.capacity() == 0 {
            self.queue = batches;
        }
        if self.queue_batches.capacity() == 0 {
            self.queue_batches = written;
        }
    }

    /// What an appender waiting until every position below `end` is published does next:
    /// return, fail, wait on the condition variable of the group its batch is in (the group
    /// being written if the batch ends at or below `taken_end`, else the next one, as it was
    /// queued meanwhile), or lead.
    #[inline]
    pub(super) fn wait_step(&self, end: u64) -> WaitStep {
        if self.published >= end {
            return WaitStep::Published;
        }
        if self.poisoned {
            return WaitStep::Poisoned;
        }
        if !self.leader {
            return WaitStep::Lead;
        }
        let group = if end <= self.taken_end {
            self.groups
        } else {
            self.groups + 1
        };
        WaitStep::WaitOn(parity(group))
    }

    /// Whether batches are queued with nobody leading them (and the store not poisoned): a
    /// returning leader leads them itself or wakes their appenders (`next_group_parity`).
    #[inline]
    pub(super) fn queue_needs_leader(&self) -> bool {
        !self.leader && !self.poisoned && !self.queue.is_empty()
    }

    /// The index of the condition variable the queued appenders wait on (the next group's).
    #[inline]
    pub(super) fn next_group_parity(&self) -> usize {
        parity(self.groups + 1)
    }

    /// The cached most recent append, if it went to `stream`.
    #[inline]
    pub(super) fn recent_append(&self, stream: &str) -> Option<RecentAppend> {
        self.recent.filter(|_| self.recent_stream == stream)
    }

    /// The event ids of the cached most recent append (meaningful while `recent_append`
    /// returns it).
    #[inline]
    pub(super) fn recent_ids(&self) -> &[Uuid] {
        &self.recent_ids
    }

    /// Every batch not yet published, the solo leader's included: stream, result, event ids,
    /// and the batch's encoded bytes (docs/FORMAT.md §3.2).
    pub(super) fn inflight_batches(
        &self,
    ) -> impl Iterator<Item = (&str, &AppendResult, &[Uuid], &[u8])> {
        let solo = self.solo_last.map(|_| {
            (
                self.solo_stream.as_str(),
                &self.solo_result,
                &self.solo_ids[..],
                self.solo_bytes.as_deref().map_or(&[][..], Vec::as_slice),
            )
        });
        let others = self.writing.iter().chain(&self.queue_batches).map(|b| {
            (
                &*b.stream,
                &b.result,
                &b.ids[..],
                b.bytes.get(b.range.clone()).unwrap_or(&[]),
            )
        });
        solo.into_iter().chain(others)
    }

    /// The last version assigned to `stream` by a batch not yet published, if any: a queued
    /// batch (the latest, as the map always holds the last one queued) or the solo leader's.
    #[inline]
    pub(super) fn inflight_version(&self, stream: &str) -> Option<u64> {
        if let Some(v) = self.inflight.get(stream) {
            return Some(*v);
        }
        match self.solo_last {
            Some(v) if self.solo_stream == stream => Some(v),
            _ => None,
        }
    }
}
