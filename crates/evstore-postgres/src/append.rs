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
//!    For `append_if`, then the append condition: one index-driven query for events matching
//!    its query after its position (`crate::query`).
//! 4. One `INSERT … SELECT FROM unnest(…)` writes the batch at positions `head + 1 …` (with its
//!    tags, into the event's `tags` and the tag index `evstore_event_tags`) and queues a
//!    NOTIFY (delivered at commit); `COMMIT` releases the lock. A multi-stream append checks
//!    every part (step 2–3) before one statement inserts them all.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use evstore::{
    AppendCondition, AppendResult, Error, ExpectedVersion, NewEvent, Result, StreamAppend,
};
use postgres::types::Type;
use uuid::Uuid;

use crate::store::{col, pg, to_i64, to_u64, typed, Conn, PgStore};
use crate::validate;

/// One append request, borrowed: what [`PgStore::append`], [`PgStore::append_if`] and
/// [`PgStore::append_multi`] ask for (the group-commit queue keeps an owned copy).
#[derive(Clone, Copy)]
pub(crate) enum Op<'a> {
    /// One stream; `condition` is `append_if`'s (`None` for a plain append).
    One {
        stream: &'a str,
        expected: ExpectedVersion,
        events: &'a [NewEvent],
        condition: Option<&'a AppendCondition>,
    },
    /// Several streams, all or nothing.
    Multi(&'a [StreamAppend]),
}

impl Op<'_> {
    /// The events it writes.
    pub(crate) fn events(&self) -> usize {
        match self {
            Op::One { events, .. } => events.len(),
            Op::Multi(parts) => parts.iter().map(|p| p.events.len()).sum(),
        }
    }
}

/// What a request found under the lock: one [`AppendResult`] per stream, in order.
pub(crate) enum Outcome {
    /// The events were inserted (not yet committed).
    Written(Vec<AppendResult>),
    /// The request repeats one already written: its original results; nothing to commit.
    Repeat(Vec<AppendResult>),
}

/// What the checks of one stream's part decided.
enum Checked {
    /// An idempotent retry: the original result.
    Repeat(AppendResult),
    /// Go ahead; the stream's last version.
    Proceed(Option<u64>),
}

/// The log's head and the stamp for new events, as a check read them under the lock.
#[derive(Clone, Copy)]
struct At {
    head: Option<u64>,
    stamp: DateTime<Utc>,
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

/// One stream's untagged batch (the common case): positions and versions from `$1` and `$3`.
const INSERT_SQL: &str = "WITH ins AS ( \
     INSERT INTO evstore_events \
         (position, stream_id, version, event_id, event_type, recorded_at, data, metadata) \
     SELECT $1 + u.i - 1, $2, $3 + u.i - 1, u.id, u.t, $4, u.d, u.m \
     FROM unnest($5::uuid[], $6::text[], $7::bytea[], $8::bytea[]) \
          WITH ORDINALITY AS u(id, t, d, m, i) \
     RETURNING position) \
     SELECT pg_notify($9, max(position)::text) FROM ins";

/// Any batch, tagged or of several streams: one row per event (position, stream, version, id,
/// type, data, metadata) and one per tag (`$9` the event's position, `$10` the tag, in the
/// event's tag order). The tags go into the event's `tags` array and into the tag index
/// `evstore_event_tags`, in the same statement.
const INSERT_ROWS_SQL: &str = "WITH ins AS ( \
     INSERT INTO evstore_events \
         (position, stream_id, version, event_id, event_type, recorded_at, data, metadata, tags) \
     SELECT u.p, u.s, u.v, u.id, u.t, $1, u.d, u.m, coalesce(g.tags, '{}') \
     FROM unnest($2::int8[], $3::text[], $4::int8[], $5::uuid[], $6::text[], $7::bytea[], \
                 $8::bytea[]) AS u(p, s, v, id, t, d, m) \
     LEFT JOIN (SELECT x.p, array_agg(x.tag ORDER BY x.k) AS tags \
                FROM unnest($9::int8[], $10::text[]) WITH ORDINALITY AS x(p, tag, k) \
                GROUP BY x.p) g ON g.p = u.p \
     RETURNING position), \
     tagged AS ( \
     INSERT INTO evstore_event_tags (tag, position) \
     SELECT x.tag, x.p FROM unnest($9::int8[], $10::text[]) AS x(p, tag)) \
     SELECT pg_notify($11, max(position)::text) FROM ins";

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
    /// bad names or tags (the file store's limits; also U+0000, which PostgreSQL `text` cannot
    /// hold), or an empty or oversized batch ([`crate::MAX_BATCH_BYTES`]);
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
        let op = Op::One {
            stream,
            expected,
            events,
            condition: None,
        };
        first(self.submit(op)?)
    }

    /// Append `events` to `stream` if its version matches `expected` and no event matching
    /// `condition.fail_if_events_match` has a position after `condition.after`: the
    /// Dynamic Consistency Boundary append of [`evstore::Store::append_if`], same semantics.
    ///
    /// The condition is checked inside the append's transaction, under the append lock, after
    /// the expected-version and retry checks: it sees every committed event and every event
    /// written earlier in the same group-commit transaction, and no append can commit between
    /// the check and this append's commit (docs/POSTGRES.md, "Tags, queries and append
    /// conditions"). The check is index-driven: per query item, one range scan of the tag
    /// index `(tag, position)` or the type index `(event_type, position)` from `after` on.
    /// A repeat of an append that succeeded returns its result without checking the condition
    /// again (its own events would match).
    ///
    /// # Errors
    /// [`Error::AppendConditionFailed`] listing the conflicting positions (ascending, the first
    /// [`evstore::query::MAX_CONFLICTS_LISTED`]); [`Error::InvalidInput`] for a query over the
    /// limits ([`evstore::Query::validate`]); the errors of [`PgStore::append`].
    pub fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &AppendCondition,
    ) -> Result<AppendResult> {
        validate::query(&condition.fail_if_events_match)?;
        validate::append(stream, events)?;
        let op = Op::One {
            stream,
            expected,
            events,
            condition: Some(condition),
        };
        first(self.submit(op)?)
    }

    /// Append to several streams atomically, as [`evstore::Store::append_multi`]: every
    /// part's expected version holds and every event is written, in one transaction, or
    /// nothing is. One [`AppendResult`] per part, in order; the parts' positions follow one
    /// another in the order given and share one `recorded_at`. Streams must be distinct. Joins
    /// group commit like any append.
    ///
    /// **Idempotent retry**, part by part under the rules of [`PgStore::append`]: when every
    /// part repeats, the original results; when some do and others do not,
    /// [`Error::IdempotencyConflict`] and nothing is written.
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`] naming the first part's stream whose check fails, with
    /// its actual version; [`Error::InvalidInput`] for no parts, a repeated stream, a part
    /// [`PgStore::append`] would refuse, or parts that together exceed
    /// [`crate::MAX_BATCH_BYTES`]; [`Error::IdempotencyConflict`]; [`Error::Io`].
    pub fn append_multi(&self, appends: &[StreamAppend]) -> Result<Vec<AppendResult>> {
        validate::multi(appends)?;
        self.submit(Op::Multi(appends))
    }

    /// A validated request: through group commit, or in a transaction of its own.
    fn submit(&self, op: Op<'_>) -> Result<Vec<AppendResult>> {
        if self.options.group_commit {
            self.group.submit(self, op)
        } else {
            self.run_single(op)
        }
    }

    /// One request in a transaction of its own (also the fallback when a group's transaction
    /// fails: each request then gets its own outcome).
    pub(crate) fn run_single(&self, op: Op<'_>) -> Result<Vec<AppendResult>> {
        let mut conn = self.conn()?;
        self.begin_locked(&mut conn)?;
        match self.run_locked(&mut conn, op) {
            Ok(Outcome::Written(r)) => {
                conn.batch_execute("COMMIT").map_err(pg)?;
                if let Some(last) = r.last() {
                    self.waiter.advance(last.last_position);
                }
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

    /// Steps 2–4 of a request, inside the transaction, under the lock. A refusal
    /// (`WrongExpectedVersion`, `IdempotencyConflict`, `AppendConditionFailed`) is decided
    /// before anything is inserted, so it leaves the transaction as it was.
    pub(crate) fn run_locked(&self, conn: &mut Conn, op: Op<'_>) -> Result<Outcome> {
        match op {
            Op::One {
                stream,
                expected,
                events,
                condition,
            } => {
                let (checked, at) = check_locked(conn, stream, expected, events)?;
                let current = match checked {
                    Checked::Repeat(r) => return Ok(Outcome::Repeat(vec![r])),
                    Checked::Proceed(current) => current,
                };
                if let Some(c) = condition {
                    check_condition(conn, c)?;
                }
                insert_locked(conn, &self.channel, &[(stream, current, events)], at)
                    .map(Outcome::Written)
            }
            Op::Multi(appends) => {
                let mut parts = Vec::with_capacity(appends.len());
                let mut repeats = Vec::new();
                let mut at = None;
                // Streams are distinct, so no part's check depends on another's insert: all
                // are checked first (the first failing part's error wins), then all inserted.
                for a in appends {
                    let (checked, a_at) = check_locked(conn, &a.stream, a.expected, &a.events)?;
                    at = Some(a_at);
                    match checked {
                        Checked::Repeat(r) => repeats.push((a, r)),
                        Checked::Proceed(current) => {
                            parts.push((a.stream.as_str(), current, a.events.as_slice()));
                        }
                    }
                }
                if let Some((first, _)) = repeats.first() {
                    if repeats.len() == appends.len() {
                        return Ok(Outcome::Repeat(repeats.into_iter().map(|x| x.1).collect()));
                    }
                    return Err(Error::IdempotencyConflict {
                        stream: first.stream.clone(),
                        detail: format!(
                            "this part of a multi-stream append repeats an earlier append, but \
                             {} of its {} parts do not",
                            appends.len() - repeats.len(),
                            appends.len()
                        ),
                    });
                }
                let Some(at) = at else {
                    return Err(Error::InvalidInput(
                        "a multi-stream append needs at least one stream".into(),
                    ));
                };
                insert_locked(conn, &self.channel, &parts, at).map(Outcome::Written)
            }
        }
    }
}

/// The only result of a one-stream request.
fn first(results: Vec<AppendResult>) -> Result<AppendResult> {
    results
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal("an append returned no result".into()))
}

/// Steps 2–3 for one stream: read its version, the head and the stamp; the expected-version
/// check and the idempotent-retry rules.
fn check_locked(
    conn: &mut Conn,
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<(Checked, At)> {
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
    let at = At {
        head: col::<Option<i64>>(row, 1)?.map(to_u64).transpose()?,
        stamp: col(row, 2)?,
    };
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
    if !expected.matches(current) {
        if let Some(r) = check_retry(conn, stream, expected, current, events)? {
            return Ok((Checked::Repeat(r), at));
        }
        return Err(Error::WrongExpectedVersion {
            stream: stream.to_string(),
            expected,
            actual: current,
        });
    }
    if let (ExpectedVersion::Any | ExpectedVersion::StreamExists, Some(c)) = (expected, current) {
        if let Some(r) = check_tail_retry(stream, c, &tail, events)? {
            return Ok((Checked::Repeat(r), at));
        }
    }
    Ok((Checked::Proceed(current), at))
}

/// `Err(AppendConditionFailed)` if an event matching the condition's query has a position
/// after its `after`: one statement in the append's transaction, after the lock, so it sees
/// every event that will precede the append (committed, or inserted earlier in this group).
fn check_condition(conn: &mut Conn, condition: &AppendCondition) -> Result<()> {
    let conflicts = crate::query::conflicts(conn, condition)?;
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(Error::AppendConditionFailed {
        positions: conflicts,
        after: condition.after,
    })
}

/// Step 4: insert the parts (stream, its last version, its events) at positions `head + 1 …`,
/// one after the other, all stamped `at.stamp`, and queue a NOTIFY (delivered at commit).
fn insert_locked(
    conn: &mut Conn,
    channel: &str,
    parts: &[(&str, Option<u64>, &[NewEvent])],
    at: At,
) -> Result<Vec<AppendResult>> {
    let mut next = at.head.map_or(0, |h| h + 1);
    let mut results = Vec::with_capacity(parts.len());
    for (_, current, events) in parts {
        let n = events.len() as u64;
        let first_version = current.map_or(0, |c| c + 1);
        results.push(AppendResult {
            first_version,
            last_version: first_version + n - 1,
            first_position: next,
            last_position: next + n - 1,
        });
        next += n;
    }
    let untagged = parts
        .iter()
        .all(|(_, _, events)| events.iter().all(|e| e.tags.is_empty()));
    if let ([(stream, _, events)], [r], true) = (parts, results.as_slice(), untagged) {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let data: Vec<&[u8]> = events.iter().map(|e| e.data.as_slice()).collect();
        let meta: Vec<&[u8]> = events.iter().map(|e| e.metadata.as_slice()).collect();
        let (fp, fv) = (to_i64(r.first_position), to_i64(r.first_version));
        conn.query_typed(
            INSERT_SQL,
            &[
                typed(&fp, Type::INT8),
                typed(stream, Type::TEXT),
                typed(&fv, Type::INT8),
                typed(&at.stamp, Type::TIMESTAMPTZ),
                typed(&ids, Type::UUID_ARRAY),
                typed(&types, Type::TEXT_ARRAY),
                typed(&data, Type::BYTEA_ARRAY),
                typed(&meta, Type::BYTEA_ARRAY),
                typed(&channel, Type::TEXT),
            ],
        )
        .map_err(pg)?;
        return Ok(results);
    }
    let mut rows = Rows::default();
    for ((stream, _, events), r) in parts.iter().zip(&results) {
        for (i, e) in events.iter().enumerate() {
            let position = to_i64(r.first_position + i as u64);
            rows.positions.push(position);
            rows.streams.push(stream);
            rows.versions.push(to_i64(r.first_version + i as u64));
            rows.ids.push(e.event_id);
            rows.types.push(&e.event_type);
            rows.data.push(&e.data);
            rows.meta.push(&e.metadata);
            for t in &e.tags {
                rows.tag_positions.push(position);
                rows.tags.push(t);
            }
        }
    }
    conn.query_typed(
        INSERT_ROWS_SQL,
        &[
            typed(&at.stamp, Type::TIMESTAMPTZ),
            typed(&rows.positions, Type::INT8_ARRAY),
            typed(&rows.streams, Type::TEXT_ARRAY),
            typed(&rows.versions, Type::INT8_ARRAY),
            typed(&rows.ids, Type::UUID_ARRAY),
            typed(&rows.types, Type::TEXT_ARRAY),
            typed(&rows.data, Type::BYTEA_ARRAY),
            typed(&rows.meta, Type::BYTEA_ARRAY),
            typed(&rows.tag_positions, Type::INT8_ARRAY),
            typed(&rows.tags, Type::TEXT_ARRAY),
            typed(&channel, Type::TEXT),
        ],
    )
    .map_err(pg)?;
    Ok(results)
}

/// The column arrays of [`INSERT_ROWS_SQL`].
#[derive(Default)]
struct Rows<'a> {
    positions: Vec<i64>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    data: Vec<&'a [u8]>,
    meta: Vec<&'a [u8]>,
    tag_positions: Vec<i64>,
    tags: Vec<&'a str>,
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
