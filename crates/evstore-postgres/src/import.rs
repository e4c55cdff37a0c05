//! Importing events with their recorded positions, versions, timestamps and tags
//! (`evstore copy`).

use std::collections::HashMap;

use evstore::{Error, RecordedEvent, Result};
use postgres::types::Type;
use uuid::Uuid;

use crate::store::{col, pg, to_i64, to_u64, typed, PgStore};
use crate::validate;

impl PgStore {
    /// Append `events` exactly as recorded elsewhere — ids, streams, versions, positions,
    /// `recorded_at`, data, metadata and tags — in one transaction under the append lock. They must
    /// continue this store: the first position is the head + 1 (0 when empty), positions are
    /// consecutive, each stream's versions continue it densely, and `recorded_at` does not go
    /// back (from the store's last event on). A refused import writes nothing. Sends the
    /// NOTIFY an append sends, so live subscribers follow an import too.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the events do not continue the store as described, or break
    /// the append limits (names, sizes); [`Error::Io`] from the server.
    pub fn import(&self, events: &[RecordedEvent]) -> Result<()> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        for (i, e) in events.iter().enumerate() {
            validate::name(&e.stream_id, "stream id")?;
            validate::name(&e.event_type, "event type")?;
            validate::tags(&e.tags)?;
            if e.position != first.position + i as u64 {
                return Err(Error::InvalidInput(format!(
                    "import positions must be consecutive: {} follows {}",
                    e.position,
                    first.position + i as u64 - 1
                )));
            }
        }
        if events
            .windows(2)
            .any(|w| w[1].recorded_at < w[0].recorded_at)
        {
            return Err(Error::InvalidInput(
                "import recorded_at must not decrease with the position".into(),
            ));
        }
        let mut conn = self.conn()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::ReadCommitted)
            .start()
            .map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.lock_key])
            .map_err(pg)?;
        let last = tx
            .query_opt(
                "SELECT position, recorded_at FROM evstore_events ORDER BY position DESC LIMIT 1",
                &[],
            )
            .map_err(pg)?;
        let (next, last_at) = match &last {
            Some(r) => (
                to_u64(col(r, 0)?)? + 1,
                Some(col::<chrono::DateTime<chrono::Utc>>(r, 1)?),
            ),
            None => (0, None),
        };
        if first.position != next {
            return Err(Error::InvalidInput(format!(
                "import starts at position {} but the store continues at {next}",
                first.position
            )));
        }
        if last_at.is_some_and(|t| first.recorded_at < t) {
            return Err(Error::InvalidInput(
                "import recorded_at is before the store's last event".into(),
            ));
        }
        check_versions(&mut tx, events)?;
        let cols = Columns::of(events);
        tx.query_typed(
            "WITH ins AS ( \
                 INSERT INTO evstore_events \
                     (position, stream_id, version, event_id, event_type, recorded_at, data, \
                      metadata, tags) \
                 SELECT u.*, coalesce(g.tags, '{}') \
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
                             $5::text[], $6::timestamptz[], $7::bytea[], $8::bytea[]) \
                      AS u(p, s, v, id, t, r, d, m) \
                 LEFT JOIN (SELECT x.p, array_agg(x.tag ORDER BY x.k) AS tags \
                            FROM unnest($10::int8[], $11::text[]) WITH ORDINALITY AS x(p, tag, k) \
                            GROUP BY x.p) g ON g.p = u.p \
                 RETURNING position), \
             tagged AS ( \
                 INSERT INTO evstore_event_tags (tag, position) \
                 SELECT x.tag, x.p FROM unnest($10::int8[], $11::text[]) AS x(p, tag)) \
             SELECT pg_notify($9, max(position)::text) FROM ins",
            &[
                typed(&cols.positions, Type::INT8_ARRAY),
                typed(&cols.streams, Type::TEXT_ARRAY),
                typed(&cols.versions, Type::INT8_ARRAY),
                typed(&cols.ids, Type::UUID_ARRAY),
                typed(&cols.types, Type::TEXT_ARRAY),
                typed(&cols.times, Type::TIMESTAMPTZ_ARRAY),
                typed(&cols.data, Type::BYTEA_ARRAY),
                typed(&cols.meta, Type::BYTEA_ARRAY),
                typed(&self.channel, Type::TEXT),
                typed(&cols.tag_positions, Type::INT8_ARRAY),
                typed(&cols.tags, Type::TEXT_ARRAY),
            ],
        )
        .map_err(pg)?;
        tx.commit().map_err(pg)?;
        if let Some(e) = events.last() {
            self.waiter.advance(e.position);
        }
        Ok(())
    }
}

/// Each stream's first version in `events` must follow its last version in the store, and
/// its versions must be dense within `events`.
fn check_versions(tx: &mut postgres::Transaction<'_>, events: &[RecordedEvent]) -> Result<()> {
    let mut next: HashMap<&str, u64> = HashMap::new();
    let streams: Vec<&str> = {
        let mut s: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let rows = tx
        .query(
            "SELECT stream_id, max(version) FROM evstore_events WHERE stream_id = ANY($1) \
             GROUP BY stream_id",
            &[&streams],
        )
        .map_err(pg)?;
    let mut stored: HashMap<String, u64> = HashMap::new();
    for r in &rows {
        stored.insert(col(r, 0)?, to_u64(col(r, 1)?)? + 1);
    }
    for e in events {
        let want = *next
            .entry(e.stream_id.as_str())
            .or_insert_with(|| stored.get(e.stream_id.as_str()).copied().unwrap_or(0));
        if e.version != want {
            return Err(Error::InvalidInput(format!(
                "import of stream {:?} has version {} where {want} comes next",
                e.stream_id, e.version
            )));
        }
        next.insert(e.stream_id.as_str(), want + 1);
    }
    Ok(())
}

/// The events as column arrays.
struct Columns<'a> {
    positions: Vec<i64>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
    data: Vec<&'a [u8]>,
    meta: Vec<&'a [u8]>,
    /// One entry per tag: its event's position, and the tag (in the event's tag order).
    tag_positions: Vec<i64>,
    tags: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(events: &'a [RecordedEvent]) -> Columns<'a> {
        Columns {
            positions: events.iter().map(|e| to_i64(e.position)).collect(),
            streams: events.iter().map(|e| e.stream_id.as_str()).collect(),
            versions: events.iter().map(|e| to_i64(e.version)).collect(),
            ids: events.iter().map(|e| e.event_id).collect(),
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            times: events.iter().map(|e| e.recorded_at).collect(),
            data: events.iter().map(|e| e.data.as_slice()).collect(),
            meta: events.iter().map(|e| e.metadata.as_slice()).collect(),
            tag_positions: events
                .iter()
                .flat_map(|e| e.tags.iter().map(|_| to_i64(e.position)))
                .collect(),
            tags: events
                .iter()
                .flat_map(|e| e.tags.iter().map(String::as_str))
                .collect(),
        }
    }
}
