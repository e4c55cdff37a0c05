//! Reads: by stream, the global log, by type; versions and the head. Every read returns the
//! events' tags (the `tags` column). Queries over tags are in `query`.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use evstore::{RecordedEvent, Result};
use postgres::types::Type;

use crate::store::{col, pg, to_i64, to_u64, typed, PgStore};
use crate::validate;

/// Events fetched per round trip by [`PgReadAll`].
const PAGE: usize = 512;

/// The columns of an event, in the order [`event_at`] reads them.
pub(crate) const COLUMNS: &str =
    "position, stream_id, version, event_id, event_type, recorded_at, data, metadata, tags";

/// A row of `COLUMNS` as an event.
pub(crate) fn event(row: &postgres::Row) -> Result<RecordedEvent> {
    event_at(row, 0)
}

/// The columns `COLUMNS` of `row`, from column `base` on, as an event.
pub(crate) fn event_at(row: &postgres::Row, base: usize) -> Result<RecordedEvent> {
    Ok(RecordedEvent {
        position: to_u64(col(row, base)?)?,
        stream_id: col(row, base + 1)?,
        version: to_u64(col(row, base + 2)?)?,
        event_id: col(row, base + 3)?,
        event_type: col(row, base + 4)?,
        recorded_at: col(row, base + 5)?,
        data: col(row, base + 6)?,
        metadata: col(row, base + 7)?,
        tags: col(row, base + 8)?,
    })
}

impl PgStore {
    /// Every event of `stream` from `from_version` on, in version order (empty if none): as
    /// [`evstore::Store::read_stream`]. Only committed events are visible.
    ///
    /// # Errors
    /// [`evstore::Error::InvalidInput`] for a stream id that is empty or longer than 255
    /// bytes; [`evstore::Error::Io`] from the server.
    pub fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        self.read_stream_range(stream, from_version, u64::MAX)
    }

    /// Events of `stream` with versions in `[from_version, to_version)`, in version order.
    ///
    /// # Errors
    /// As [`PgStore::read_stream`].
    pub fn read_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        validate::name(stream, "stream id")?;
        if from_version >= to_version {
            return Ok(Vec::new());
        }
        let (from, to) = (to_i64(from_version), to_i64(to_version));
        let rows = self
            .conn()?
            .query_typed(
                &format!(
                    "SELECT {COLUMNS} FROM evstore_events \
                     WHERE stream_id = $1 AND version >= $2 AND version < $3 ORDER BY version"
                ),
                &[
                    typed(&stream, Type::TEXT),
                    typed(&from, Type::INT8),
                    typed(&to, Type::INT8),
                ],
            )
            .map_err(pg)?;
        rows.iter().map(event).collect()
    }

    /// Up to `max` events from global position `from_position` on, in position order.
    ///
    /// # Errors
    /// [`evstore::Error::Io`] from the server.
    pub fn read_all_from(&self, from_position: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        let from = to_i64(from_position);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .conn()?
            .query_typed(
                &format!(
                    "SELECT {COLUMNS} FROM evstore_events \
                     WHERE position >= $1 ORDER BY position LIMIT $2"
                ),
                &[typed(&from, Type::INT8), typed(&limit, Type::INT8)],
            )
            .map_err(pg)?;
        rows.iter().map(event).collect()
    }

    /// Every event from global position `from_position` on, in position order, fetched
    /// 512 at a time: as [`evstore::Store::read_all`]. Events committed while
    /// iterating are included. Errors are items of the iterator.
    pub fn read_all(&self, from_position: u64) -> PgReadAll<'_> {
        PgReadAll {
            store: self,
            next: from_position,
            page: VecDeque::new(),
            done: false,
        }
    }

    /// Events of type `event_type`, in position order; with `since`, only those recorded at or
    /// after it (stamps are whole microseconds: a `since` between two counts from the later
    /// one): as [`evstore::Store::read_by_type`].
    ///
    /// # Errors
    /// [`evstore::Error::InvalidInput`] for an event type that is empty or longer than 255
    /// bytes; [`evstore::Error::Io`] from the server.
    pub fn read_by_type(
        &self,
        event_type: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>> {
        validate::name(event_type, "event type")?;
        let mut conn = self.conn()?;
        let rows = match since {
            None => conn.query_typed(
                &format!(
                    "SELECT {COLUMNS} FROM evstore_events WHERE event_type = $1 ORDER BY position"
                ),
                &[typed(&event_type, Type::TEXT)],
            ),
            Some(since) => {
                let mut threshold = since.timestamp_micros();
                if since.timestamp_subsec_nanos() % 1000 != 0 {
                    threshold += 1;
                }
                let threshold = DateTime::<Utc>::from_timestamp_micros(threshold).unwrap_or(since);
                conn.query_typed(
                    &format!(
                        "SELECT {COLUMNS} FROM evstore_events \
                         WHERE event_type = $1 AND recorded_at >= $2 ORDER BY position"
                    ),
                    &[
                        typed(&event_type, Type::TEXT),
                        typed(&threshold, Type::TIMESTAMPTZ),
                    ],
                )
            }
        }
        .map_err(pg)?;
        rows.iter().map(event).collect()
    }

    /// The last version of `stream` (`None`: no such stream). Unlike
    /// [`evstore::Store::stream_version`] it returns a `Result`: a query can fail.
    ///
    /// # Errors
    /// [`evstore::Error::InvalidInput`] for a bad stream id; [`evstore::Error::Io`] from the
    /// server.
    pub fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        validate::name(stream, "stream id")?;
        let row = self
            .conn()?
            .query_typed_one(
                "SELECT max(version) FROM evstore_events WHERE stream_id = $1",
                &[typed(&stream, Type::TEXT)],
            )
            .map_err(pg)?;
        col::<Option<i64>>(&row, 0)?.map(to_u64).transpose()
    }

    /// The position of the newest committed event (`None`: the log is empty). Unlike
    /// [`evstore::Store::head_position`] it returns a `Result`: a query can fail (the
    /// [`evstore::subscription::EventSource`] implementation reports the last head it knew).
    ///
    /// # Errors
    /// [`evstore::Error::Io`] from the server.
    pub fn head_position(&self) -> Result<Option<u64>> {
        let head = self
            .conn()?
            .query_typed_opt(
                "SELECT position FROM evstore_events ORDER BY position DESC LIMIT 1",
                &[],
            )
            .map_err(pg)?
            .map(|r| to_u64(col(&r, 0)?))
            .transpose()?;
        if let Some(h) = head {
            self.waiter.advance(h);
        }
        Ok(head)
    }

    /// What the store holds (full counts: for tools such as `evstore stats`, not hot paths).
    ///
    /// # Errors
    /// [`evstore::Error::Io`] from the server.
    pub fn stats(&self) -> Result<PgStats> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "SELECT count(*), count(DISTINCT stream_id), min(recorded_at), max(recorded_at),                      (SELECT count(*) FROM evstore_snapshots),                      (SELECT max(version) FROM evstore_schema_migrations),                      pg_total_relation_size('evstore_events'),                      (SELECT count(DISTINCT tag) FROM evstore_event_tags),                      (SELECT count(*) FROM evstore_event_tags),                      pg_total_relation_size('evstore_event_tags')                  FROM evstore_events",
                &[],
            )
            .map_err(pg)?;
        let types = conn
            .query(
                "SELECT event_type, count(*) FROM evstore_events GROUP BY event_type                  ORDER BY event_type",
                &[],
            )
            .map_err(pg)?
            .iter()
            .map(|r| Ok((col(r, 0)?, to_u64(col(r, 1)?)?)))
            .collect::<Result<Vec<(String, u64)>>>()?;
        Ok(PgStats {
            schema: self.schema.clone(),
            schema_version: col::<Option<i32>>(&row, 5)?.unwrap_or(0),
            events: to_u64(col(&row, 0)?)?,
            streams: to_u64(col(&row, 1)?)?,
            first_recorded_at: col(&row, 2)?,
            last_recorded_at: col(&row, 3)?,
            snapshots: to_u64(col(&row, 4)?)?,
            table_bytes: to_u64(col(&row, 6)?)?,
            tags: to_u64(col(&row, 7)?)?,
            tag_occurrences: to_u64(col(&row, 8)?)?,
            tag_table_bytes: to_u64(col(&row, 9)?)?,
            event_types: types,
        })
    }
}

/// What [`PgStore::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStats {
    /// The schema the store lives in.
    pub schema: String,
    /// The schema's migration version ([`crate::SCHEMA_VERSION`] after connect).
    pub schema_version: i32,
    /// Events in the log.
    pub events: u64,
    /// Streams with at least one event.
    pub streams: u64,
    /// The oldest event's `recorded_at`.
    pub first_recorded_at: Option<DateTime<Utc>>,
    /// The newest event's `recorded_at`.
    pub last_recorded_at: Option<DateTime<Utc>>,
    /// Stored snapshots.
    pub snapshots: u64,
    /// Bytes of `evstore_events` with its indexes and TOAST data.
    pub table_bytes: u64,
    /// Distinct tags ([`evstore::NewEvent::tags`]).
    pub tags: u64,
    /// Tags on events, counted once per event and tag (rows of `evstore_event_tags`).
    pub tag_occurrences: u64,
    /// Bytes of `evstore_event_tags` with its index (the tag index).
    pub tag_table_bytes: u64,
    /// Each event type and its number of events, by name.
    pub event_types: Vec<(String, u64)>,
}

/// The iterator of [`PgStore::read_all`]: pages through the log by position. After an error
/// (yielded once) it ends.
#[derive(Debug)]
pub struct PgReadAll<'a> {
    store: &'a PgStore,
    next: u64,
    page: VecDeque<RecordedEvent>,
    done: bool,
}

impl Iterator for PgReadAll<'_> {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.page.is_empty() {
            match self.store.read_all_from(self.next, PAGE) {
                Ok(events) if events.is_empty() => {
                    self.done = true;
                    return None;
                }
                Ok(events) => self.page.extend(events),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let e = self.page.pop_front()?;
        self.next = e.position + 1;
        Some(Ok(e))
    }
}
