//! [`EventStorage`]: what the domain and read-side layers need from a storage backend.
//!
//! The file [`Store`] implements it. Repositories, projections and sagas are written against
//! this trait, not the concrete store, so a second backend (e.g. PostgreSQL) can slot in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::Result;
use crate::query::{AppendCondition, Query};
use crate::snapshot::{IgnoredReason, Snapshot};
use crate::types::{
    AppendResult, EventView, ExpectedVersion, NewEvent, RecordedEvent, StreamAppend,
};
use crate::Store;

/// A storage backend for event-sourced aggregates.
pub trait EventStorage: Send + Sync {
    /// Append `events` to `stream` atomically, after the optimistic check `expected` (see
    /// [`Store::append`]). Returns where they landed.
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion) when `expected`
    /// does not hold (the domain layer retries on it); the backend's other errors (the file
    /// [`Store`]'s are listed at [`Store::append`]).
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult>;

    /// Append to several streams atomically: every part's expected version holds and every
    /// event is written, or nothing is (as KurrentDB's multi-stream append; see
    /// [`Store::append_multi`]). One result per part, in order.
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion) naming the first
    /// stream whose check fails; the backend's other errors (the file [`Store`]'s are listed
    /// at [`Store::append_multi`]).
    fn append_multi(&self, appends: &[StreamAppend]) -> Result<Vec<AppendResult>>;

    /// Append `events` to `stream` if `expected` holds and no event matching
    /// `condition.fail_if_events_match` was appended after `condition.after`, checked
    /// atomically with the append (the DCB specification's conditional append; see
    /// [`Store::append_if`]).
    ///
    /// # Errors
    /// [`Error::AppendConditionFailed`](crate::Error::AppendConditionFailed) with the
    /// conflicting positions; the errors of [`EventStorage::append`].
    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &AppendCondition,
    ) -> Result<AppendResult>;

    /// The events matching `query` after position `after` (all when `None`), in position
    /// order, and the head position the read saw (the DCB specification's read; see
    /// [`Store::read_query`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a query over its limits; the
    /// backend's read errors.
    fn read_query(
        &self,
        query: &Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)>;

    /// Whether appended events keep their tags ([`NewEvent::tags`]). `false` for a file
    /// [`Store`] of log format version 1 (docs/FORMAT.md §2): through this trait it stores
    /// events **without** their tags rather than refusing them, so domain code whose events
    /// carry tags keeps working on older logs — but DCB conditions and queries over tags then
    /// match nothing, so a rule enforced with them must check this first (the Order domain
    /// refuses to set a stock limit on such a log). `Store::append` itself refuses tags there.
    /// Default: `true`.
    fn supports_tags(&self) -> bool {
        true
    }

    /// Events of `stream` with versions in `[from_version, to_version)`, in version order
    /// (empty when there are none).
    ///
    /// # Errors
    /// The backend's read errors (for the file [`Store`]: an invalid stream id, bytes damaged
    /// since they were indexed).
    fn read_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<Vec<RecordedEvent>>;

    /// Call `f` with each event of `stream` with versions in `[from_version, to_version)`,
    /// in order, stopping at the first error. Backends that can lend events without copying
    /// override this (the file [`Store`] does: [`Store::read_stream_with`]); the default
    /// reads owned events with [`EventStorage::read_stream_range`] and lends views of them.
    ///
    /// # Errors
    /// The read errors of [`EventStorage::read_stream_range`], or the first error `f` returns.
    fn visit_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
        f: &mut dyn FnMut(EventView<'_>) -> Result<()>,
    ) -> Result<()> {
        for e in self.read_stream_range(stream, from_version, to_version)? {
            f(e.as_view())?;
        }
        Ok(())
    }

    /// Last version of `stream` (`None`: no such stream). (Named differently from
    /// [`Store::stream_version`] so the two never shadow each other on an `Arc<Store>`.)
    ///
    /// # Errors
    /// The backend's read errors (the file [`Store`] has none).
    fn last_version(&self, stream: &str) -> Result<Option<u64>>;

    /// The latest snapshot the log confirms (version present with the same event id); `None`
    /// when there is none or it is not usable.
    ///
    /// # Errors
    /// The backend's errors (for the file [`Store`]: an invalid stream id, I/O opening the
    /// sidecar).
    fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>>;

    /// Save a snapshot of `stream` at `version`, whose event id is `event_id` (a cache: may be
    /// lost).
    ///
    /// # Errors
    /// The backend's errors (for the file [`Store`]: an invalid stream id, an oversized
    /// payload, a read-only store, I/O). Callers may ignore them: the repository does.
    fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()>;

    /// Report that the snapshot just loaded could not be decoded (it is dropped and counted).
    ///
    /// # Errors
    /// The backend's errors (for the file [`Store`]: a read-only store, I/O opening the
    /// sidecar).
    fn note_snapshot_undecodable(&self, stream: &str) -> Result<()>;

    /// Report that the snapshot just loaded was not used for `reason` (it is dropped and
    /// counted). The default counts it as undecodable ([`EventStorage::note_snapshot_undecodable`]).
    ///
    /// # Errors
    /// As [`EventStorage::note_snapshot_undecodable`].
    fn note_snapshot_ignored(&self, stream: &str, reason: IgnoredReason) -> Result<()> {
        let _ = reason;
        self.note_snapshot_undecodable(stream)
    }

    /// Block until `stream`'s last version is at least `version` (visible to reads), or
    /// `timeout` passes; returns whether it is. A [`Store::append`] conflict reports the
    /// stream's version including appends still being written, which reads see only once they
    /// are durable: a retry waits here before it reloads, so it never reloads the same stale
    /// version again ([`Repository::execute`](crate::repository::Repository::execute)).
    ///
    /// The default polls [`EventStorage::last_version`] with back-off (1 ms doubling to 16 ms);
    /// the file [`Store`] waits on its publish notification instead.
    ///
    /// # Errors
    /// The errors of [`EventStorage::last_version`] (the file [`Store`] has none).
    fn wait_for_version(&self, stream: &str, version: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        // Bounded by the deadline.
        loop {
            if self.last_version(stream)?.is_some_and(|v| v >= version) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(16));
        }
    }
}

/// `events` as a log of format version 1 can store them: without tags (see
/// [`EventStorage::supports_tags`]). Borrowed unchanged when none carries a tag.
fn storable<'a>(store: &Store, events: &'a [NewEvent]) -> std::borrow::Cow<'a, [NewEvent]> {
    if store.format_version() >= 2 || events.iter().all(|e| e.tags.is_empty()) {
        return std::borrow::Cow::Borrowed(events);
    }
    let untagged = events
        .iter()
        .map(|e| NewEvent {
            tags: Vec::new(),
            ..e.clone()
        })
        .collect();
    std::borrow::Cow::Owned(untagged)
}

impl EventStorage for Store {
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        Store::append(self, stream, expected, &storable(self, events))
    }

    fn append_multi(&self, appends: &[StreamAppend]) -> Result<Vec<AppendResult>> {
        if self.format_version() >= 2 {
            return Store::append_multi(self, appends);
        }
        let untagged: Vec<StreamAppend> = appends
            .iter()
            .map(|a| StreamAppend {
                events: storable(self, &a.events).into_owned(),
                ..a.clone()
            })
            .collect();
        Store::append_multi(self, &untagged)
    }

    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &AppendCondition,
    ) -> Result<AppendResult> {
        Store::append_if(self, stream, expected, &storable(self, events), condition)
    }

    fn supports_tags(&self) -> bool {
        self.format_version() >= 2
    }

    fn read_query(
        &self,
        query: &Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        Store::read_query(self, query, after)
    }

    fn read_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        Store::read_stream_range(self, stream, from_version, to_version)
    }

    fn visit_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
        f: &mut dyn FnMut(EventView<'_>) -> Result<()>,
    ) -> Result<()> {
        Store::read_stream_with(self, stream, from_version, to_version, f)
    }

    fn last_version(&self, stream: &str) -> Result<Option<u64>> {
        Ok(Store::stream_version(self, stream))
    }

    fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        Store::load_snapshot(self, stream)
    }

    fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()> {
        Store::save_snapshot(self, stream, version, event_id, payload)
    }

    fn note_snapshot_undecodable(&self, stream: &str) -> Result<()> {
        Store::note_snapshot_undecodable(self, stream)
    }

    fn note_snapshot_ignored(&self, stream: &str, reason: IgnoredReason) -> Result<()> {
        Store::note_snapshot_ignored(self, stream, reason)
    }

    fn wait_for_version(&self, stream: &str, version: u64, timeout: Duration) -> Result<bool> {
        Ok(Store::wait_for_stream_version(
            self, stream, version, timeout,
        ))
    }
}

/// Forwarding impls for smart pointers and references to a storage.
macro_rules! forward_event_storage {
    ($($ty:ty),*) => {$(
        impl<S: EventStorage + ?Sized> EventStorage for $ty {
            fn append(
                &self,
                stream: &str,
                expected: ExpectedVersion,
                events: &[NewEvent],
            ) -> Result<AppendResult> {
                (**self).append(stream, expected, events)
            }
            fn append_multi(&self, appends: &[StreamAppend]) -> Result<Vec<AppendResult>> {
                (**self).append_multi(appends)
            }
            fn supports_tags(&self) -> bool {
                (**self).supports_tags()
            }
            fn append_if(
                &self,
                stream: &str,
                expected: ExpectedVersion,
                events: &[NewEvent],
                condition: &AppendCondition,
            ) -> Result<AppendResult> {
                (**self).append_if(stream, expected, events, condition)
            }
            fn read_query(
                &self,
                query: &Query,
                after: Option<u64>,
            ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
                (**self).read_query(query, after)
            }
            fn read_stream_range(
                &self,
                stream: &str,
                from_version: u64,
                to_version: u64,
            ) -> Result<Vec<RecordedEvent>> {
                (**self).read_stream_range(stream, from_version, to_version)
            }
            fn visit_stream_range(
                &self,
                stream: &str,
                from_version: u64,
                to_version: u64,
                f: &mut dyn FnMut(EventView<'_>) -> Result<()>,
            ) -> Result<()> {
                (**self).visit_stream_range(stream, from_version, to_version, f)
            }
            fn last_version(&self, stream: &str) -> Result<Option<u64>> {
                (**self).last_version(stream)
            }
            fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
                (**self).load_snapshot(stream)
            }
            fn save_snapshot(
                &self,
                stream: &str,
                version: u64,
                event_id: Uuid,
                payload: &[u8],
            ) -> Result<()> {
                (**self).save_snapshot(stream, version, event_id, payload)
            }
            fn note_snapshot_undecodable(&self, stream: &str) -> Result<()> {
                (**self).note_snapshot_undecodable(stream)
            }
            fn note_snapshot_ignored(&self, stream: &str, reason: IgnoredReason) -> Result<()> {
                (**self).note_snapshot_ignored(stream, reason)
            }
            fn wait_for_version(
                &self,
                stream: &str,
                version: u64,
                timeout: Duration,
            ) -> Result<bool> {
                (**self).wait_for_version(stream, version, timeout)
            }
        }
    )*};
}

forward_event_storage!(Arc<S>, &S);
