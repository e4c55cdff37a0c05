//! Reads: each takes one consistent view (the index read guard, and a segment-table snapshot
//! taken under it: `Store::reader`), copies locations out, and decodes through the maps
//! without locks; `ReadAll` does the same per 512 locations. Also waiting for new events
//! (`wait_for_position`, `wait_for_stream_version`) and the counters.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::retry::StreamIds;
use super::{missing_location, validate_name, Store};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::index::Index;
use crate::log::frame::Location;
use crate::log::reader::EventReader;
use crate::log::writer::WriterStats;
use crate::types::{EventView, RecordedEvent};

/// Counters, for monitoring and benchmarks: [`Store::stats`]. `appends / groups` is the
/// average group-commit size; `data_syncs` per append shows what group commit saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Events in the store (visible).
    pub events: u64,
    /// Streams in the store.
    pub streams: u64,
    /// Mapped segments (each `Options::segment_size` bytes).
    pub segments: u64,
    /// Appends (batches) written since open; repeats recognised as retries are not counted.
    pub appends: u64,
    /// Group commits (leader rounds, a solo append's included) since open.
    pub groups: u64,
    /// Frames written since open (a group writes one or more; seals count).
    pub frames_written: u64,
    /// `fdatasync` calls since open.
    pub data_syncs: u64,
    /// Bytes written to the log since open.
    pub bytes_written: u64,
    /// Distinct tags in the store ([`NewEvent::tags`](crate::NewEvent::tags)).
    pub tags: u64,
    /// Tags on events, counted once per event and tag.
    pub tag_occurrences: u64,
    /// Heap bytes of the tag index (tag → positions): names, entries, hash slots and the
    /// position vectors (4 bytes per occurrence while positions fit in 32 bits).
    pub tag_index_bytes: u64,
}

impl Store {
    /// An event reader over every segment the index can point into. Take it while holding
    /// the index guard: the writer maps a segment before it indexes a frame in it, so a table
    /// snapshot taken after the guard covers every location the guard's index holds (taken
    /// before, it may miss the newest segment).
    #[inline]
    pub(super) fn reader(&self, _index: &Index) -> EventReader {
        EventReader::new(self.header, self.segments.snapshot())
    }

    /// Events of `stream` from `from_version` on, in version order (empty if none). Only
    /// published events: durable ones in `Sync` mode.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stream id that is empty or longer than 255 bytes;
    /// [`Error::Corruption`] if an event's bytes no longer decode (damage in the file);
    /// [`Error::Internal`] if the index and the segment maps disagree (a bug, not damage).
    pub fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        self.read_stream_range(stream, from_version, u64::MAX)
    }

    /// Events of `stream` with versions in `[from_version, to_version)`, in version order
    /// (empty if none).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stream id that is empty or longer than 255 bytes;
    /// [`Error::Corruption`] if an event's bytes no longer decode (damage in the file);
    /// [`Error::Internal`] if the index and the segment maps disagree (a bug, not damage).
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
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stream id that is empty or longer than 255 bytes;
    /// [`Error::Corruption`] if an event's bytes no longer decode (damage in the file);
    /// [`Error::Internal`] if the index and the segment maps disagree (a bug, not damage);
    /// the first error `f` returns.
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

    /// Every event from global position `from_position` on, in position order, streamed (512
    /// locations are copied out of the index at a time, and the log read ahead over their
    /// span). Events appended while iterating are included once published. Errors are items
    /// of the iterator (see [`ReadAll`]).
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
    /// after it (found by binary search on the type's index: `recorded_at` never decreases
    /// with the position). Stamps are whole microseconds: a `since` between two counts from
    /// the later one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an event type that is empty or longer than 255 bytes;
    /// [`Error::Corruption`] if an event's bytes no longer decode; [`Error::Internal`] if the
    /// index and the segment maps disagree.
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

    /// Up to `max` events of type `event_type` at global position `from_position` or later,
    /// in position order: one page of the type's index (found by binary search), read under
    /// one consistent view. Page through a type in bounded memory by calling again from the
    /// last event's position + 1; a page shorter than `max` is the last one for now. `max` of
    /// 0 reads nothing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use evstore::{ExpectedVersion, NewEvent, Store};
    /// let store = Store::open(dir.path().join("t.evs"))?;
    /// for s in ["a", "b", "c"] {
    ///     store.append(s, ExpectedVersion::Any, &[NewEvent::new("Added", vec![])])?;
    /// }
    /// let page = store.read_by_type_from("Added", 1, 1)?;
    /// assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), [1]);
    /// # Ok::<(), evstore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an event type that is empty or longer than 255 bytes;
    /// [`Error::Corruption`] if an event's bytes no longer decode; [`Error::Internal`] if the
    /// index and the segment maps disagree.
    pub fn read_by_type_from(
        &self,
        event_type: &str,
        from_position: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        validate_name(event_type, "event type")?;
        let mut reader;
        let items: Vec<(u64, Option<Location>)> = {
            let index = self.index.read();
            // Under the index guard: the reader maps every location this index holds.
            reader = self.reader(&index);
            let Some(positions) = index.type_positions(event_type) else {
                return Ok(Vec::new());
            };
            let start = positions.partition_point(|pos| pos < from_position);
            let end = start.saturating_add(max).min(positions.len());
            let mut ps = Vec::with_capacity(end - start);
            positions.extend_into(start, end, &mut ps);
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
    /// On a read-only store, which follows a writer in another process, it waits for that
    /// writer's next published head instead ([`Store::refresh`]): woken by an inotify watch of
    /// the head file on Linux, else polling it every 0.1 to 2 ms (docs/PERFORMANCE.md gives the
    /// latency).
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
        if self.is_follower() {
            return self.poll_until(timeout, || *self.visible.lock() > position);
        }
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
        if self.is_follower() {
            return self.poll_until(timeout, || {
                self.stream_version(stream).is_some_and(|v| v >= version)
            });
        }
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

    /// Counters: appends, groups, frames, syncs and bytes since open; events, streams and
    /// segments in the store now. Each part is read under its own lock, so the whole is not
    /// one instant's snapshot.
    pub fn stats(&self) -> StoreStats {
        let (appends, groups) = self.state.lock().counters();
        let w: WriterStats = self
            .writer
            .lock()
            .as_ref()
            .map(|w| w.stats)
            .unwrap_or_default();
        let (events, streams, (tags, tag_occurrences), tag_index_bytes) = {
            let index = self.index.read();
            (
                index.len(),
                index.stream_count() as u64,
                index.tag_counts(),
                index.tag_heap_bytes() as u64,
            )
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
            tags: tags as u64,
            tag_occurrences,
            tag_index_bytes,
        }
    }

    /// The events matching `query` with positions after `after` (all when `None`), in position
    /// order, and the head position the read saw (the log's last position then; `None` for an
    /// empty log): the read half of a Dynamic Consistency Boundary, as the DCB specification's
    /// `read`. Pass the head as the `after` of an [`AppendCondition`](crate::AppendCondition)
    /// with the same query to append only if nothing the decision depends on changed. Every
    /// matching event at or before the head is returned; only published events are read.
    ///
    /// Costs one index lookup per query item: tags by their position lists (the rarest tag's
    /// list is walked), types by theirs; an item with neither walks every position after
    /// `after`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use evstore::{ExpectedVersion, NewEvent, Query, QueryItem, Store};
    /// let store = Store::open(dir.path().join("q.evs"))?;
    /// store.append("seat-12A", ExpectedVersion::Any, &[
    ///     NewEvent::new("SeatBooked", b"{}".to_vec()).with_tags(["seat:12A", "show:7"]),
    /// ])?;
    /// store.append("seat-12B", ExpectedVersion::Any, &[
    ///     NewEvent::new("SeatBooked", b"{}".to_vec()).with_tags(["seat:12B", "show:7"]),
    /// ])?;
    /// let query = Query::new(vec![QueryItem::new(&["SeatBooked"], &["show:7"])]);
    /// let (events, head) = store.read_query(&query, None)?;
    /// assert_eq!(events.len(), 2);
    /// assert_eq!(events[1].tags, ["seat:12B", "show:7"]);
    /// assert_eq!(head, Some(1));
    /// # Ok::<(), evstore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a query over its limits
    /// ([`Query::validate`](crate::Query::validate)); [`Error::Corruption`] if an event's
    /// bytes no longer decode; [`Error::Internal`] if the index and the maps disagree.
    pub fn read_query(
        &self,
        query: &crate::Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        self.read_query_page(query, after, usize::MAX)
    }

    /// [`Store::read_query`], at most `max` events: the first `max` matches after `after`.
    /// When the page is full, the head returned is the **last returned event's position**, not
    /// the log's: every match up to it was returned, so it is still a correct `after` for an
    /// [`AppendCondition`](crate::AppendCondition) — and the `after` of the next page. When it
    /// is not full, the head is the log's, as `read_query`'s. Bounds the memory of reading a
    /// query that matches much of a large log.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use evstore::{ExpectedVersion, NewEvent, Query, Store};
    /// let store = Store::open(dir.path().join("p.evs"))?;
    /// for i in 0..5u8 {
    ///     store.append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![i])])?;
    /// }
    /// let (page, head) = store.read_query_page(&Query::all(), None, 2)?;
    /// assert_eq!((page.len(), head), (2, Some(1)));
    /// let (rest, head) = store.read_query_page(&Query::all(), head, 10)?;
    /// assert_eq!((rest.len(), head), (3, Some(4)));
    /// # Ok::<(), evstore::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::read_query`].
    pub fn read_query_page(
        &self,
        query: &crate::Query,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        query.validate()?;
        let (positions, locations, head, mut reader) = {
            let index = self.index.read();
            let positions = index.matching_positions(query, after, max);
            let locations: Vec<Option<Location>> =
                positions.iter().map(|&p| index.location(p)).collect();
            let head = if positions.len() >= max {
                positions.last().copied().or(after)
            } else {
                index.head()
            };
            (positions, locations, head, self.reader(&index))
        };
        let mut events = Vec::with_capacity(positions.len());
        for (&p, loc) in positions.iter().zip(locations) {
            let loc = loc.ok_or_else(|| missing_location(p))?;
            events.push(reader.view(loc, p)?.to_recorded());
        }
        Ok((events, head))
    }

    /// The log's format version (docs/FORMAT.md §2): 2 for files this build creates, 1 for
    /// older files, which keep it (they open, read and take appends, but not tags).
    pub fn format_version(&self) -> u32 {
        self.header.format_version
    }

    /// Event types with their counts, sorted by name.
    pub fn event_types(&self) -> Vec<(String, u64)> {
        self.index.read().type_counts()
    }

    /// The event id at `version` of `stream`, if the stream has that (published) version.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the event's bytes no longer decode; [`Error::Internal`] if the
    /// index and the segment maps disagree.
    pub fn event_id_at(&self, stream: &str, version: u64) -> Result<Option<Uuid>> {
        let index = self.index.read();
        StreamIds::new(&index, self.reader(&index), stream).at(version)
    }
}

/// Streaming iterator over the log, returned by [`Store::read_all`]: `Ok` events in position
/// order. Yields `Err` once (then ends) if an event cannot be decoded ([`Error::Corruption`],
/// or [`Error::Internal`] for an in-memory inconsistency).
pub struct ReadAll<'a> {
    store: &'a Store,
    next: u64,
    locations: VecDeque<u64>,
    reader: Option<EventReader>,
    done: bool,
}

/// Locations `ReadAll` copies out of the index at a time.
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
