//! Appends and group commit: the checks under `state` (expected version, retries through
//! `retry`), the solo path, waiting for a group (`wait_published`, on the condition variable
//! `WriterState::wait_step` names), leading one (`lead`, `run_group`: write, sync, index,
//! publish, wake), keeping on leading and handing off; flush and close. The bookkeeping is
//! `state::WriterState`'s; this module adds the locks, the condition variables and the I/O.

use std::io;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::retry::InflightMatch;
use super::state::{QueuedPart, WaitStep, WriterState};
use super::{validate_name, Store};
use crate::error::{Error, Result};
use crate::log::frame::{self, Layout, MAX_EVENTS_PER_BATCH};
use crate::log::writer::EncodedBatch;
use crate::query::{AppendCondition, MAX_CONFLICTS_LISTED};
use crate::types::{AppendResult, Durability, ExpectedVersion, NewEvent, StreamAppend};

/// How many queued groups a leader commits after its own before it returns (see
/// `Store::keep_leading`).
const EXTRA_LEADER_ROUNDS: usize = 2;

impl Store {
    /// Append `events` to `stream`, atomically, if the stream's version matches `expected`
    /// (as `KurrentDB`'s expected revision: `Any`, `NoStream`, `StreamExists`, `Exact(v)`).
    /// `stream` and each event type are 1 to 255 bytes of UTF-8; a batch holds 1 to
    /// 1,048,575 events and must fit in one segment.
    ///
    /// Returns where the events landed: versions `first_version..=last_version` in the stream
    /// (its first event is version 0) and positions `first_position..=last_position` in the
    /// log (dense, global). Returns after the events are durable ([`Durability::Sync`]) or
    /// written to the OS ([`Durability::Buffered`]); concurrent appends share one write and
    /// one `fdatasync` (group commit).
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
        self.append_at(stream, expected, events, None)
    }

    /// [`Store::append`], or with `import` an append that must land at `import.position` with
    /// the stamp `import.stamp_us` (`Store::import`): a repeat is then an error, not a retry.
    pub(super) fn append_at(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        import: Option<ImportAt>,
    ) -> Result<AppendResult> {
        let bytes = self.encode_one(stream, events)?;
        let mut st = self.lock_writable()?;
        let current = match self.check_append(&mut st, stream, expected, events)? {
            Checked::Repeat(_) if import.is_some() => {
                return Err(Error::InvalidInput(format!(
                    "import: the events of stream {stream:?} are already in the store"
                )));
            }
            Checked::Repeat(result) => return Ok(result),
            Checked::Proceed(current) => current,
        };
        let now = match import {
            Some(at) => {
                st.check_import(at.position, at.stamp_us)
                    .map_err(Error::InvalidInput)?;
                at.stamp_us
            }
            None => now_us(),
        };
        self.submit_one(&mut st, stream, events, bytes, current, now)
    }

    /// Append `events` to `stream` if its version matches `expected` and no event matching
    /// `condition.fail_if_events_match` has a position after `condition.after`: the append
    /// of a Dynamic Consistency Boundary, as in the DCB specification (see [`crate::query`]).
    /// The condition is checked atomically against every event that precedes this append in
    /// the log: published ones (through the index) and those still being written or queued
    /// for the same group commit (their encoded bytes), so two racing decisions over the same
    /// query never both succeed. Otherwise as [`Store::append`], idempotent retry included: a
    /// repeat of an append that succeeded returns its result and is not checked again (its
    /// own events would match).
    ///
    /// Costs one lookup per query item in the tag or type index, plus a walk over the
    /// matching events after `after` (bounded: at most [`MAX_CONFLICTS_LISTED`] are
    /// collected), plus a decode of the events in flight.
    ///
    /// # Errors
    /// [`Error::AppendConditionFailed`] listing the conflicting positions, returned once those
    /// events are visible to reads (so a [`Store::read_query`] right after sees them); the
    /// errors of [`Store::append`]; [`Error::InvalidInput`] for a query over the limits
    /// ([`Query::validate`](crate::Query::validate)) or tags on a version 1 log.
    pub fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &AppendCondition,
    ) -> Result<AppendResult> {
        condition.fail_if_events_match.validate()?;
        let bytes = self.encode_one(stream, events)?;
        let mut st = self.lock_writable()?;
        let current = match self.check_append(&mut st, stream, expected, events)? {
            Checked::Repeat(result) => return Ok(result),
            Checked::Proceed(current) => current,
        };
        if let Err(e) = self.check_condition(&st, condition) {
            // Return only once reads see the conflicting events (they may still be in
            // flight), so that reading the query again and deciding again sees them instead
            // of failing on them again.
            if let Error::AppendConditionFailed { positions, .. } = &e {
                if let Some(&last) = positions.last() {
                    self.wait_published(&mut st, last + 1)?;
                }
            }
            return Err(e);
        }
        self.submit_one(&mut st, stream, events, bytes, current, now_us())
    }

    /// Append to several streams atomically, as KurrentDB's multi-stream append: every
    /// part's expected version holds and every event is written, in one frame (so one unit
    /// that survives any crash whole or not at all, docs/FORMAT.md §3), or nothing is written.
    /// Returns one [`AppendResult`] per part, in order; the parts' positions follow one another
    /// in the order given, and they share one `recorded_at`. Streams must be distinct.
    /// Joins group commit like any append.
    ///
    /// **Idempotent retry.** Repeating a multi-stream append (the same parts with the same
    /// event ids) returns the original results and writes nothing, part by part under the
    /// rules of [`Store::append`]. If some parts repeat and others do not, that is an
    /// [`Error::IdempotencyConflict`] and nothing is written.
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`] naming the first part's stream whose check fails, with
    /// its actual version; [`Error::InvalidInput`] for no parts, a repeated stream, a part
    /// [`Store::append`] would refuse, or parts that together do not fit one segment;
    /// [`Error::IdempotencyConflict`]; [`Error::ReadOnly`]; [`Error::Poisoned`];
    /// [`Error::Io`].
    pub fn append_multi(&self, appends: &[StreamAppend]) -> Result<Vec<AppendResult>> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        let (bytes, ranges) = self.encode_multi(appends)?;
        let mut st = self.lock_writable()?;
        let mut currents = Vec::with_capacity(appends.len());
        let mut repeats = Vec::with_capacity(appends.len());
        for a in appends {
            match self.check_append(&mut st, &a.stream, a.expected, &a.events)? {
                Checked::Repeat(result) => repeats.push((a, result)),
                Checked::Proceed(current) => currents.push(current),
            }
        }
        if let Some((first, _)) = repeats.first() {
            if repeats.len() == appends.len() {
                return Ok(repeats.into_iter().map(|(_, r)| r).collect());
            }
            return Err(Error::IdempotencyConflict {
                stream: first.stream.clone(),
                detail: format!(
                    "this part of a multi-stream append repeats an earlier append, but {} of \
                     its {} parts do not",
                    appends.len() - repeats.len(),
                    appends.len()
                ),
            });
        }
        let now = now_us();
        let mut parts = Vec::with_capacity(appends.len());
        let mut bytes = bytes;
        for ((a, current), range) in appends.iter().zip(currents).zip(ranges) {
            let (result, stamp) = st.assign(current, a.events.len() as u64, now);
            frame::patch_batch_header(&mut bytes[range.start..], result.first_version, stamp);
            parts.push(QueuedPart {
                stream: &a.stream,
                result,
                events: &a.events,
                range,
            });
        }
        let results: Vec<AppendResult> = parts.iter().map(|p| p.result).collect();
        let end = results.last().map_or(0, |r| r.last_position + 1);
        let batch = EncodedBatch {
            events: appends.iter().map(|a| a.events.len() as u64).sum(),
            batches: appends.len() as u64,
            bytes: Arc::new(bytes),
        };
        st.enqueue(batch, &parts);
        drop(parts);
        self.wait_published(&mut st, end)?;
        Ok(results)
    }

    /// Validate and encode one append's batch (before any lock): `Err(ReadOnly)` on a
    /// read-only store, the input errors of [`Store::append`].
    fn encode_one(&self, stream: &str, events: &[NewEvent]) -> Result<Vec<u8>> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        let mut bytes = Vec::new();
        encode_batch(&mut bytes, stream, events, self.header.layout())?;
        check_fits(bytes.len(), events.len(), self.header.segment_size)?;
        Ok(bytes)
    }

    /// The appenders' state, locked, unless an earlier I/O error poisoned the store.
    fn lock_writable(&self) -> Result<MutexGuard<'_, WriterState>> {
        let st = self.state.lock();
        if st.is_poisoned() {
            return Err(Error::Poisoned);
        }
        Ok(st)
    }

    /// Validate and encode the parts of a multi-stream append, back to back: the bytes and
    /// each part's range in them.
    fn encode_multi(
        &self,
        appends: &[StreamAppend],
    ) -> Result<(Vec<u8>, Vec<std::ops::Range<usize>>)> {
        crate::limits::check_multi(appends)?;
        let mut bytes = Vec::new();
        let mut ranges = Vec::with_capacity(appends.len());
        let mut events = 0usize;
        for a in appends {
            let start = bytes.len();
            encode_batch(&mut bytes, &a.stream, &a.events, self.header.layout())?;
            ranges.push(start..bytes.len());
            events += a.events.len();
            check_fits(bytes.len(), events, self.header.segment_size)?;
        }
        Ok((bytes, ranges))
    }

    /// Assign an append that passed its checks (`current`: its stream's version) versions,
    /// positions and the stamp `now_us`, and write it: on the solo path, or queued for a group.
    fn submit_one(
        &self,
        st: &mut MutexGuard<'_, WriterState>,
        stream: &str,
        events: &[NewEvent],
        mut bytes: Vec<u8>,
        current: Option<u64>,
        now_us: i64,
    ) -> Result<AppendResult> {
        let (result, stamp) = st.assign(current, events.len() as u64, now_us);
        frame::patch_batch_header(&mut bytes, result.first_version, stamp);
        let len = bytes.len();
        let batch = EncodedBatch {
            bytes: Arc::new(bytes),
            events: events.len() as u64,
            batches: 1,
        };
        if st.solo_slot_free() {
            self.append_solo(st, stream, events, &batch, result)?;
            return Ok(result);
        }
        let part = QueuedPart {
            stream,
            result,
            events,
            range: 0..len,
        };
        st.enqueue(batch, std::slice::from_ref(&part));
        self.wait_published(st, result.last_position + 1)?;
        Ok(result)
    }

    /// `Err(AppendConditionFailed)` if an event matching the condition's query has a
    /// position after its `after`: among the indexed events, or among the batches in flight
    /// (queued, being written, or the solo leader's). Called under `state`, so no append can
    /// slip in between the check and the assignment that follows it.
    fn check_condition(&self, st: &WriterState, condition: &AppendCondition) -> Result<()> {
        let query = &condition.fail_if_events_match;
        if query.items().is_empty() {
            return Ok(());
        }
        let mut conflicts =
            self.index
                .read()
                .matching_positions(query, condition.after, MAX_CONFLICTS_LISTED);
        let layout = self.header.layout();
        for (_, result, _, batch) in st.inflight_batches() {
            if !condition.looks_at(result.last_position) {
                continue;
            }
            inflight_matches(
                batch,
                layout,
                result.first_position,
                &mut |position, ty, tags| {
                    if condition.looks_at(position)
                        && query.matches_with(ty, &|t| {
                            frame::tag_bytes(tags).any(|b| b == t.as_bytes())
                        })
                    {
                        conflicts.push(position);
                    }
                },
            );
        }
        if conflicts.is_empty() {
            return Ok(());
        }
        conflicts.sort_unstable();
        conflicts.dedup();
        conflicts.truncate(MAX_CONFLICTS_LISTED);
        Err(Error::AppendConditionFailed {
            positions: conflicts,
            after: condition.after,
        })
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
        if !expected.matches(current) {
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
            let cached = recent.map(|r| (r, st.recent_ids()));
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
        batch: &EncodedBatch,
        result: AppendResult,
    ) -> Result<()> {
        st.begin_solo(stream, events, result, batch.bytes.clone());
        let end = result.last_position + 1;
        let outcome = self.run_group(st, std::slice::from_ref(batch), end);
        // Remembered if written: the next append to this stream needs no index lookup.
        st.end_solo(outcome.is_ok());
        outcome?;
        self.keep_leading(st);
        Ok(())
    }

    /// Wait until every position below `end` is published, leading a group commit when
    /// nobody else does. `Err(Poisoned)` if the store is poisoned first.
    fn wait_published(&self, st: &mut MutexGuard<'_, WriterState>, end: u64) -> Result<()> {
        // Bounded: each round either returns or waits for a leader that publishes or poisons.
        loop {
            match st.wait_step(end) {
                WaitStep::Published => return Ok(()),
                WaitStep::Poisoned => return Err(Error::Poisoned),
                // In the group being written, or queued for the next one.
                WaitStep::WaitOn(parity) => self.group_done[parity].wait(st),
                WaitStep::Lead => {
                    // Not published and nobody leads: the batch is queued; this group takes it.
                    self.lead(st)?;
                    debug_assert_eq!(
                        st.wait_step(end),
                        WaitStep::Published,
                        "a leader's group holds every queued batch"
                    );
                    self.keep_leading(st);
                }
            }
        }
    }

    /// Called by a leader about to return: if batches are queued and nobody leads, wake their
    /// appenders so one of them leads.
    fn hand_off(&self, st: &mut MutexGuard<'_, WriterState>) {
        if st.queue_needs_leader() {
            self.group_done[st.next_group_parity()].notify_all();
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
            if !st.queue_needs_leader() {
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
        let (batches, group_end) = st.take_group();
        let outcome = self.run_group(st, &batches, group_end);
        st.finish_group(batches, outcome.is_ok());
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
        st.begin_write(group_end);
        let outcome = MutexGuard::unlocked(st, || {
            // A panic here (an internal invariant broke) must not leave `leader` set, or every
            // other appender would wait forever: catch it, poison the store, then re-raise.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write_group(batches)))
        });
        let outcome = match outcome {
            Ok(result) => result,
            Err(panic) => {
                st.fail_write();
                self.wake_everyone();
                std::panic::resume_unwind(panic);
            }
        };
        match outcome {
            Ok(()) => {
                let parity = st.publish(group_end);
                self.group_done[parity].notify_all();
                *self.visible.lock() = group_end;
                self.visible_changed.notify_all();
                Ok(())
            }
            Err(e) => {
                st.fail_write();
                self.wake_everyone();
                Err(Error::Io(e))
            }
        }
    }

    /// The leader's I/O, under `writer` and without `state`: write `batches` as frames, sync
    /// once (in `Sync` mode), and add the frames to the index. Panics if a frame the writer
    /// just built does not index (an internal invariant; `run_group` poisons the store).
    fn write_group(&self, batches: &[EncodedBatch]) -> io::Result<()> {
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
    }

    /// Wake every waiting appender (the store was poisoned: they all return an error).
    fn wake_everyone(&self) {
        for cv in &self.group_done {
            cv.notify_all();
        }
    }

    /// Make every appended event durable (one `fdatasync`): what [`Durability::Buffered`]
    /// stores call at their own pace. A no-op cost-wise in `Sync` mode; nothing to do for a
    /// read-only store.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier I/O error; [`Error::Io`] if the sync fails, which
    /// poisons the store (the page cache may have dropped the data).
    pub fn flush(&self) -> Result<()> {
        if self.state.lock().is_poisoned() {
            return Err(Error::Poisoned);
        }
        let result = match self.writer.lock().as_mut() {
            Some(w) => w.sync(),
            None => return Ok(()),
        };
        result.map_err(|e| {
            self.state.lock().poison();
            Error::Io(e)
        })
    }

    /// Flush, seal and close, reporting any error (dropping the store does the same, silently).
    /// The seal is a 24-byte frame, written when the last frame with events is not yet
    /// covered by a durability watermark, so that the next open proves the whole log durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier I/O error (nothing more is written);
    /// [`Error::Io`] if the sync or the seal fails.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// `close` and `Drop`: sync the snapshot sidecar (errors ignored: a cache), then the log,
    /// and seal it if needed. A failure poisons the store.
    pub(super) fn shutdown(&self) -> Result<()> {
        if let Some(s) = self.snapshots.lock().as_ref() {
            // A cache: a failed sync only costs a replay later.
            let _ = s.sync();
        }
        if self.state.lock().is_poisoned() {
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
            self.state.lock().poison();
            Error::Io(e)
        })
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

/// Validate an append and encode it as a batch at the end of `out`, laid out as `layout`
/// says (version and timestamp patched in later).
fn encode_batch(
    out: &mut Vec<u8>,
    stream: &str,
    events: &[NewEvent],
    layout: Layout,
) -> Result<()> {
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
        if !e.tags.is_empty() {
            if !layout.has_tags() {
                return Err(Error::InvalidInput(
                    "this log file is format version 1, which has no tags; `evstore copy` it \
                     into a new file (format version 2) to append tagged events"
                        .into(),
                ));
            }
            crate::limits::check_tags(&e.tags)?;
        }
        let tags_len = frame::tag_section_size(&e.tags);
        size = size
            .saturating_add(frame::event_size(layout, e.event_type.len(), tags_len, 0, 0) as u64)
            .saturating_add(e.data.len() as u64)
            .saturating_add(e.metadata.len() as u64);
    }
    // Refuse before allocating: a batch larger than the largest segment can never be written.
    check_fits(
        usize::try_from(size).unwrap_or(usize::MAX),
        events.len(),
        crate::types::MAX_SEGMENT_SIZE,
    )?;
    let start = out.len();
    out.reserve(size as usize);
    frame::encode_batch_header(out, events.len() as u32, stream);
    for e in events {
        frame::encode_event(
            out,
            layout,
            &frame::EventParts {
                event_id: e.event_id.as_bytes(),
                event_type: &e.event_type,
                tags: &e.tags,
                data: &e.data,
                metadata: &e.metadata,
            },
        );
    }
    debug_assert_eq!(
        (out.len() - start) as u64,
        size,
        "encoded size matches the estimate"
    );
    Ok(())
}

/// `Err(InvalidInput)` unless `body_len` bytes of batches (`events` events) fit in one frame
/// in one segment of `segment_size` bytes.
fn check_fits(body_len: usize, events: usize, segment_size: u64) -> Result<()> {
    let frame_size = frame::frame_size(body_len as u64);
    if frame_size > segment_size {
        return Err(Error::InvalidInput(format!(
            "append of {events} events needs {frame_size} bytes, more than a segment holds ({segment_size} bytes)"
        )));
    }
    Ok(())
}

/// Call `f(position, event type, tag section)` for each event of the encoded batch `batch`
/// (the writer's own bytes, whose first event is at `first_position`).
fn inflight_matches(
    batch: &[u8],
    layout: Layout,
    first_position: u64,
    f: &mut dyn FnMut(u64, &str, &[u8]),
) {
    let Ok(h) = frame::decode_batch_header_raw(batch) else {
        debug_assert!(false, "an in-flight batch decodes");
        return;
    };
    let mut off = h.events_offset;
    for i in 0..u64::from(h.event_count) {
        let Some(Ok(ev)) = batch.get(off..).map(|b| frame::decode_event_raw(b, layout)) else {
            debug_assert!(false, "an in-flight event decodes");
            return;
        };
        off += ev.size;
        // The writer's own encoding of a validated `String`: UTF-8.
        let ty = std::str::from_utf8(ev.event_type).unwrap_or_default();
        f(first_position + i, ty, ev.tags);
    }
}

/// Where an imported batch must land (`Store::import`): its first position and its stamp.
#[derive(Debug, Clone, Copy)]
pub(super) struct ImportAt {
    /// The position of its first event.
    pub position: u64,
    /// Its `recorded_at`, µs since the epoch.
    pub stamp_us: i64,
}

/// The result of the checks an append makes before it is assigned versions.
enum Checked {
    /// An identical batch is already written (or in flight): its result.
    Repeat(AppendResult),
    /// Go ahead; the stream's current version (in-flight batches included).
    Proceed(Option<u64>),
}
