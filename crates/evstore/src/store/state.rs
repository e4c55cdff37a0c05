//! The appenders' shared state behind `Store::state`: positions and stamps to assign, the
//! queue, the group being written, the in-flight registry, the solo slot and the
//! recent-append cache.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::log::writer::EncodedBatch;
use crate::types::AppendResult;

/// Appender-side state, behind the `state` mutex.
pub(super) struct WriterState {
    /// Next position to assign.
    pub(super) next_position: u64,
    /// Last `recorded_at` assigned, µs.
    pub(super) last_stamp_us: i64,
    /// Batches assigned but not yet taken by a leader, in position order.
    pub(super) queue: Vec<EncodedBatch>,
    /// What each queued batch is (stream, result, event ids), in the same order as `queue`.
    pub(super) queue_batches: Vec<InflightBatch>,
    /// The batches of the group a leader is writing now (taken from `queue_batches`), kept
    /// here so that an identical append arriving meanwhile finds them (idempotent retry).
    pub(super) writing: Vec<InflightBatch>,
    /// Last assigned version of streams with batches not yet published (queued batches).
    pub(super) inflight: HashMap<Arc<str>, u64>,
    /// The batch a solo leader is writing (see `Store::append`): its stream (a reused buffer)
    /// and last version; `None` when there is none.
    pub(super) solo_stream: String,
    pub(super) solo_last: Option<u64>,
    /// The solo batch's result and event ids (a reused buffer); valid while `solo_last` is set.
    pub(super) solo_result: AppendResult,
    pub(super) solo_ids: Vec<Uuid>,
    /// The most recent append if it was a solo one and nothing was published since: its
    /// stream (a reused buffer) and versions. Lets the next append to the same stream skip the
    /// index lookup and the idempotent-retry read. Cleared by every group commit.
    pub(super) recent_stream: String,
    pub(super) recent: Option<RecentAppend>,
    /// The event ids of the cached most recent append (a reused buffer); valid while `recent`
    /// is set.
    pub(super) recent_ids: Vec<Uuid>,
    /// Events published (visible): positions below this are in the index.
    pub(super) published: u64,
    /// End position of the batches the running (or last) group took: a waiting appender whose
    /// batch ends at or below it is in group `groups`, otherwise queued for `groups + 1`.
    pub(super) taken_end: u64,
    pub(super) leader: bool,
    pub(super) poisoned: bool,
    pub(super) appends: u64,
    pub(super) groups: u64,
}

/// See `WriterState::recent`.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecentAppend {
    pub(super) first_version: u64,
    pub(super) last_version: u64,
}

/// A batch assigned versions and positions but not yet published: queued, or in the group a
/// leader is writing. Its event ids let an identical append (a client's retry while the first
/// attempt still waits for its fsync) find it and share its result instead of writing twice.
#[derive(Debug)]
pub(super) struct InflightBatch {
    pub(super) stream: Arc<str>,
    pub(super) result: AppendResult,
    pub(super) ids: Vec<Uuid>,
}

impl WriterState {
    /// The cached most recent append, if it went to `stream`.
    pub(super) fn recent_append(&self, stream: &str) -> Option<RecentAppend> {
        self.recent.filter(|_| self.recent_stream == stream)
    }

    /// Every batch not yet published, the solo leader's included.
    pub(super) fn inflight_batches(&self) -> impl Iterator<Item = (&str, &AppendResult, &[Uuid])> {
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

    /// The last version assigned to `stream` by a batch not yet published, if any: a queued
    /// batch (the latest, as the map always holds the last one queued) or the solo leader's.
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
