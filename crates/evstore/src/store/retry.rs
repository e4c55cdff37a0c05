//! Recognising an idempotent retry: a batch still in flight (`WriterState::inflight_match`) or
//! already published (`Store::check_retry`, `Store::check_tail_retry`, read through
//! `StreamIds`).

use uuid::Uuid;

use super::state::{RecentAppend, WriterState};
use super::{missing_location, Store};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::log::reader::EventReader;
use crate::types::{AppendResult, ExpectedVersion, NewEvent};

/// What the in-flight batches say about an append (see `WriterState::inflight_match`).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum InflightMatch {
    /// No in-flight batch of the stream starts with the append's first event id.
    None,
    /// An identical batch is in flight, where `expected` puts it: its result.
    Duplicate(AppendResult),
}

impl WriterState {
    /// Whether an append of `events` to `stream` with `expected` repeats a batch still in
    /// flight: the same event ids, in the same order, at the versions `expected` implies
    /// (any for `Any` and `StreamExists`). A batch whose first id matches an in-flight batch
    /// but whose other ids differ is an [`Error::IdempotencyConflict`].
    pub(super) fn inflight_match(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<InflightMatch> {
        let first_id = events[0].event_id;
        let found = self
            .inflight_batches()
            .find(|(s, _, ids, _)| *s == stream && ids.first() == Some(&first_id));
        let Some((_, result, ids, _)) = found else {
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
}

impl Store {
    /// The idempotent-retry check of an `Exact` or `NoStream` append whose expected version
    /// no longer holds: `Ok(Some)` when `events` are already in the stream where `expected`
    /// puts them; `Ok(None)` when they are not; `Err(IdempotencyConflict)` when they only
    /// partly are.
    pub(super) fn check_retry(
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
        ids.repeat_from(start, visible, events)
    }

    /// The idempotent-retry check of an `Any` or `StreamExists` append while the stream has
    /// nothing in flight and its last version is `current`: whether `events` repeat the
    /// stream's tail. The first event id is looked for among the last `events.len()` events;
    /// found at version `s`, the batch must match versions `s..=current` and end there
    /// (`Ok(Some)`, the original result), else it only partly repeats them
    /// (`Err(IdempotencyConflict)`). `cached` is the most recent append if it is the stream's
    /// last and was cached with its ids: a first id that is not among them needs no log read.
    pub(super) fn check_tail_retry(
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
        ids.repeat_from(start, current, events)
    }
}

/// The event ids of one stream's published events, read through the index.
pub(super) struct StreamIds<'a> {
    index: &'a Index,
    reader: EventReader,
    stream: &'a str,
}

impl<'a> StreamIds<'a> {
    pub(super) fn new(index: &'a Index, reader: EventReader, stream: &'a str) -> StreamIds<'a> {
        StreamIds {
            index,
            reader,
            stream,
        }
    }

    /// The id of the event at `version`, `None` if the stream has no such version.
    pub(super) fn at(&mut self, version: u64) -> Result<Option<Uuid>> {
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
    /// The verdict on `events` whose first event sits at version `start` of a stream whose
    /// last published version is `last` (`start <= last`): the original result if they are
    /// exactly the stream's events from `start` on; an `IdempotencyConflict` if the stream's
    /// events there differ, or if the batch repeats them and adds more.
    fn repeat_from(
        &mut self,
        start: u64,
        last: u64,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>> {
        debug_assert!(
            start <= last,
            "the first event was found at or below the tail"
        );
        let n = events.len() as u64;
        let overlap = (last - start + 1).min(n) as usize;
        self.compare(start, &events[..overlap])?;
        if overlap < events.len() {
            return Err(partial_repeat(self.stream, overlap, events.len()));
        }
        Ok(repeat_result(self.index, self.stream, start, n))
    }

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
