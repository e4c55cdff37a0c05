//! Appends: one transaction under the schema's append lock.
//!
//! 1. `BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(key)`: one appender
//!    at a time per schema, from lock to commit. READ COMMITTED (set explicitly, whatever the
//!    server's default) gives every later statement a snapshot taken after the lock was granted,
//!    that is after the previous holder's commit became visible, so it sees that holder's
//!    events.
//! 2. One query reads the stream's version, the head position and the stamp
//!    (`greatest(clock_timestamp(), last recorded_at)`: never decreasing).
//! 3. The expected-version check and the idempotent-retry rules of the file store
//!    (`evstore::store::retry`, replicated here): a repeat returns the original
//!    [`AppendResult`], a partial repeat is [`Error::IdempotencyConflict`].
//! 4. One `INSERT … SELECT FROM unnest(…)` writes the batch at positions `head + 1 …` and
//!    queues a NOTIFY (delivered at commit); `COMMIT` releases the lock.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use evstore::{AppendResult, Error, ExpectedVersion, NewEvent, Result};
use postgres::types::Type;
use uuid::Uuid;

use crate::store::{col, pg, to_i64, to_u64, typed, Conn, PgStore};
use crate::validate;

/// What an append found under the lock.
pub(crate) enum Outcome {
    /// The batch was inserted (not yet committed).
    Written(AppendResult),
    /// The batch repeats one already written: its original result; nothing to commit.
    Repeat(AppendResult),
}

/// The events of one stream, `(version, event id, position)`, in version order.
type IdRows = Vec<(u64, Uuid, u64)>;

/// The stream's last version, the head, the stamp, and (one row each) the stream's last `$2`
/// events' versions, ids and positions — the window an `Any` / `StreamExists` retry is looked
/// for in, fetched in the same round trip.
const HEAD_SQL: &str = "WITH h AS (SELECT \
         (SELECT max(version) FROM evstore_events WHERE stream_id = $1) AS cur, \
         (SELECT position FROM evstore_events ORDER BY position DESC LIMIT 1) AS head, \
         greatest(clock_timestamp(), \
                  (SELECT recorded_at FROM evstore_events ORDER BY position DESC LIMIT 1)) AS stamp) \
     SELECT h.cur, h.head, h.stamp, t.version, t.event_id, t.position FROM h \
     LEFT JOIN LATERAL (SELECT version, event_id, position FROM evstore_events \
                        WHERE stream_id = $1 ORDER BY version DESC LIMIT $2) t ON true";

const INSERT_SQL: &str = "WITH ins AS ( \
     INSERT INTO evstore_events \
         (position, stream_id, version, event_id, event_type, recorded_at, data, metadata) \
     SELECT $1 + u.i - 1, $2, $3 + u.i - 1, u.id, u.t, $4, u.d, u.m \
     FROM unnest($5::uuid[], $6::text[], $7::bytea[], $8::bytea[]) \
          WITH ORDINALITY AS u(id, t, d, m, i) \
     RETURNING position) \
     SELECT pg_notify($9, max(position)::text) FROM ins";

impl PgStore {
    /// Append `events` to `stream`, atomically, if the stream's version matches `expected`:
    /// the semantics of [`evstore::Store::append`]. Returns after the transaction committed.
    ///
    /// **Idempotent retry**, as the file store: repeating an append (the same event ids in the
    /// same order) returns the original [`AppendResult`] and writes nothing — for `Exact(v)` /
    /// `NoStream` when the events sit where `expected` puts them, for `Any` / `StreamExists`
    /// when they are the stream's most recent events. Two identical appends at the same moment
    /// are serialised by the append lock: the second finds the first's events. A batch that only
    /// partly repeats one is an [`Error::IdempotencyConflict`].
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`] with the actual version; [`Error::InvalidInput`] for
    /// bad names or an empty or oversized batch ([`crate::MAX_BATCH_BYTES`]);
    /// [`Error::IdempotencyConflict`]; [`Error::Io`] from the server or the network — when the
    /// connection breaks during `COMMIT` the outcome is unknown: retry the same append, the
    /// retry rules tell.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        validate::append(stream, events)?;
        if self.options.group_commit {
            self.group.append(self, stream, expected, events)
        } else {
            self.append_single(stream, expected, events)
        }
    }

    /// One append in a transaction of its own (the fallback when a group's transaction fails:
    /// each request then gets its own outcome).
    pub(crate) fn append_single(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        let mut conn = self.conn()?;
        self.begin_locked(&mut conn)?;
        match self.append_locked(&mut conn, stream, expected, events) {
            Ok(Outcome::Written(r)) => {
                conn.batch_execute("COMMIT").map_err(pg)?;
                self.waiter.advance(r.last_position);
                self.group.commits.fetch_add(1, Ordering::Relaxed);
                self.group.appends.fetch_add(1, Ordering::Relaxed);
                Ok(r)
            }
            Ok(Outcome::Repeat(r)) => {
                conn.batch_execute("ROLLBACK").map_err(pg)?;
                Ok(r)
            }
            Err(e) => {
                // A failed ROLLBACK means a broken connection, which the pool drops.
                let _ = conn.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Step 1: `BEGIN ISOLATION LEVEL READ COMMITTED` and the append lock.
    pub(crate) fn begin_locked(&self, conn: &mut Conn) -> Result<()> {
        let begin = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({})",
            self.lock_key
        );
        if let Err(e) = conn.batch_execute(&begin) {
            let _ = conn.batch_execute("ROLLBACK");
            return Err(pg(e));
        }
        Ok(())
    }

    /// Steps 2–4 of an append, inside the transaction, under the lock.
    pub(crate) fn append_locked(
        &self,
        conn: &mut Conn,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Outcome> {
        // The tail window is needed only for an `Any` / `StreamExists` retry check.
        let window: i64 = match expected {
            ExpectedVersion::Any | ExpectedVersion::StreamExists => to_i64(events.len() as u64),
            ExpectedVersion::NoStream | ExpectedVersion::Exact(_) => 0,
        };
        let rows = conn
            .query_typed(
                HEAD_SQL,
                &[typed(&stream, Type::TEXT), typed(&window, Type::INT8)],
            )
            .map_err(pg)?;
        let Some(row) = rows.first() else {
            return Err(Error::Internal("the head query returned no row".into()));
        };
        let current = col::<Option<i64>>(row, 0)?.map(to_u64).transpose()?;
        let head = col::<Option<i64>>(row, 1)?.map(to_u64).transpose()?;
        let stamp: DateTime<Utc> = col(row, 2)?;
        let mut tail: IdRows = Vec::new();
        for r in &rows {
            if let (Some(v), Some(id), Some(p)) = (
                col::<Option<i64>>(r, 3)?,
                col::<Option<Uuid>>(r, 4)?,
                col::<Option<i64>>(r, 5)?,
            ) {
                tail.push((to_u64(v)?, id, to_u64(p)?));
            }
        }
        tail.reverse();
        let matches = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(v) => current == Some(v),
        };
        if !matches {
            if let Some(r) = check_retry(conn, stream, expected, current, events)? {
                return Ok(Outcome::Repeat(r));
            }
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected,
                actual: current,
            });
        }
        if let (ExpectedVersion::Any | ExpectedVersion::StreamExists, Some(c)) = (expected, current)
        {
            if let Some(r) = check_tail_retry(stream, c, &tail, events)? {
                return Ok(Outcome::Repeat(r));
            }
        }
        let n = events.len() as u64;
        let first_version = current.map_or(0, |c| c + 1);
        let first_position = head.map_or(0, |h| h + 1);
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let data: Vec<&[u8]> = events.iter().map(|e| e.data.as_slice()).collect();
        let meta: Vec<&[u8]> = events.iter().map(|e| e.metadata.as_slice()).collect();
        let (fp, fv) = (to_i64(first_position), to_i64(first_version));
        conn.query_typed(
            INSERT_SQL,
            &[
                typed(&fp, Type::INT8),
                typed(&stream, Type::TEXT),
                typed(&fv, Type::INT8),
                typed(&stamp, Type::TIMESTAMPTZ),
                typed(&ids, Type::UUID_ARRAY),
                typed(&types, Type::TEXT_ARRAY),
                typed(&data, Type::BYTEA_ARRAY),
                typed(&meta, Type::BYTEA_ARRAY),
                typed(&self.channel, Type::TEXT),
            ],
        )
        .map_err(pg)?;
        Ok(Outcome::Written(AppendResult {
            first_version,
            last_version: first_version + n - 1,
            first_position,
            last_position: first_position + n - 1,
        }))
    }
}

/// The ids and positions of `stream`'s events with versions in `[from, to)`.
fn id_rows(conn: &mut Conn, stream: &str, from: u64, to: u64) -> Result<IdRows> {
    let (from, to) = (to_i64(from), to_i64(to));
    let rows = conn
        .query_typed(
            "SELECT version, event_id, position FROM evstore_events \
             WHERE stream_id = $1 AND version >= $2 AND version < $3 ORDER BY version",
            &[
                typed(&stream, Type::TEXT),
                typed(&from, Type::INT8),
                typed(&to, Type::INT8),
            ],
        )
        .map_err(pg)?;
    rows.iter()
        .map(|r| Ok((to_u64(col(r, 0)?)?, col(r, 1)?, to_u64(col(r, 2)?)?)))
        .collect()
}

/// The retry check of an `Exact` or `NoStream` append whose expected version does not hold
/// (the file store's `Store::check_retry`): `Ok(Some)` when `events` already sit where
/// `expected` puts them, `Ok(None)` when they do not, `Err(IdempotencyConflict)` when they only
/// partly do.
fn check_retry(
    conn: &mut Conn,
    stream: &str,
    expected: ExpectedVersion,
    current: Option<u64>,
    events: &[NewEvent],
) -> Result<Option<AppendResult>> {
    let (start, last) = match (expected, current) {
        (ExpectedVersion::Exact(v), Some(c)) if v < c => (v + 1, c),
        (ExpectedVersion::NoStream, Some(c)) => (0, c),
        _ => return Ok(None),
    };
    let n = events.len() as u64;
    let rows = id_rows(conn, stream, start, start.saturating_add(n))?;
    match rows.first() {
        Some(&(v, id, _)) if v == start && id == events[0].event_id => {
            repeat_from(stream, start, last, &rows, events)
        }
        _ => Ok(None),
    }
}

/// The retry check of an `Any` or `StreamExists` append to a stream whose last version is
/// `current` (the file store's `Store::check_tail_retry`): the first event id is looked for
/// among the last `events.len()` events; found at version `s`, the batch must be exactly
/// versions `s..=current`.
fn check_tail_retry(
    stream: &str,
    current: u64,
    rows: &[(u64, Uuid, u64)],
    events: &[NewEvent],
) -> Result<Option<AppendResult>> {
    // `rows`: the stream's last `events.len()` events, versions `current + 1 - n ..= current`.
    let Some(k) = rows.iter().position(|r| r.1 == events[0].event_id) else {
        return Ok(None);
    };
    repeat_from(stream, rows[k].0, current, &rows[k..], events)
}

/// The verdict on `events` whose first event sits at version `start` of a stream whose last
/// version is `last`; `rows` are the stream's events from `start` on (at least the overlap):
/// the original result if they are exactly the stream's events from `start` on, else an
/// [`Error::IdempotencyConflict`] (the file store's `StreamIds::repeat_from`).
fn repeat_from(
    stream: &str,
    start: u64,
    last: u64,
    rows: &[(u64, Uuid, u64)],
    events: &[NewEvent],
) -> Result<Option<AppendResult>> {
    let n = events.len() as u64;
    let overlap = (last - start + 1).min(n) as usize;
    for (j, e) in events[..overlap].iter().enumerate() {
        let v = start + j as u64;
        let found = rows.get(j).filter(|r| r.0 == v).map(|r| r.1);
        if found != Some(e.event_id) {
            return Err(Error::IdempotencyConflict {
                stream: stream.to_string(),
                detail: format!(
                    "event {} of {} (id {}) does not match version {v}",
                    j + 1,
                    events.len(),
                    e.event_id
                ),
            });
        }
    }
    if overlap < events.len() {
        return Err(Error::IdempotencyConflict {
            stream: stream.to_string(),
            detail: format!(
                "its first event repeats an earlier append of {overlap} events, but the batch of \
                 {} events does not repeat that append exactly",
                events.len()
            ),
        });
    }
    let (Some(first), Some(lastrow)) = (rows.first(), rows.get(overlap - 1)) else {
        return Ok(None);
    };
    Ok(Some(AppendResult {
        first_version: start,
        last_version: start + n - 1,
        first_position: first.2,
        last_position: lastrow.2,
    }))
}
