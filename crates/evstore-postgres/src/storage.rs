//! Snapshots, and the backend traits: [`EventStorage`] and [`EventSource`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use evstore::snapshot::{IgnoredReason, Snapshot, MAX_SNAPSHOT_BYTES};
use evstore::subscription::EventSource;
use evstore::{
    AppendResult, Error, EventStorage, ExpectedVersion, NewEvent, RecordedEvent, Result,
};
use uuid::Uuid;

use crate::store::{col, pg, to_i64, to_u64, PgStore};
use crate::validate;

impl PgStore {
    /// The latest snapshot of `stream` that the log confirms (its version is in the log with
    /// the same event id); `None` when there is none or it is not usable.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad stream id; [`Error::Io`] from the server.
    pub fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        validate::name(stream, "stream id")?;
        let row = self
            .conn()?
            .query_opt(
                "SELECT s.version, s.event_id, s.payload FROM evstore_snapshots s \
                 JOIN evstore_events e ON e.stream_id = s.stream_id AND e.version = s.version \
                      AND e.event_id = s.event_id \
                 WHERE s.stream_id = $1",
                &[&stream],
            )
            .map_err(pg)?;
        row.map(|r| {
            Ok(Snapshot {
                stream: stream.to_string(),
                version: to_u64(col(&r, 0)?)?,
                event_id: col(&r, 1)?,
                payload: col(&r, 2)?,
            })
        })
        .transpose()
    }

    /// Save a snapshot of `stream` at `version` (whose event id is `event_id`), replacing the
    /// stream's previous one. A cache: may be lost.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad stream id or a payload over
    /// [`MAX_SNAPSHOT_BYTES`]; [`Error::Io`] from the server.
    pub fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()> {
        validate::name(stream, "stream id")?;
        if payload.len() > MAX_SNAPSHOT_BYTES {
            return Err(Error::InvalidInput(format!(
                "a snapshot holds at most {MAX_SNAPSHOT_BYTES} bytes, got {}",
                payload.len()
            )));
        }
        self.conn()?
            .execute(
                "INSERT INTO evstore_snapshots (stream_id, version, event_id, payload) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
                     event_id = excluded.event_id, payload = excluded.payload, saved_at = now()",
                &[&stream, &to_i64(version), &event_id, &payload],
            )
            .map_err(pg)?;
        Ok(())
    }

    /// Drop `stream`'s snapshot (it could not be used) and count it
    /// ([`PgStore::snapshots_dropped`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad stream id; [`Error::Io`] from the server.
    pub fn drop_snapshot(&self, stream: &str) -> Result<()> {
        validate::name(stream, "stream id")?;
        self.snapshots_dropped.fetch_add(1, Ordering::Relaxed);
        self.conn()?
            .execute(
                "DELETE FROM evstore_snapshots WHERE stream_id = $1",
                &[&stream],
            )
            .map_err(pg)?;
        Ok(())
    }

    /// Block until an event at `position` or later is committed, or `timeout` passes:
    /// LISTEN/NOTIFY with a polling fallback (see [`crate::PgOptions::poll_interval`]).
    pub fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        self.waiter
            .wait_for(position, timeout, &|| self.head_position())
    }
}

impl EventStorage for PgStore {
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult> {
        PgStore::append(self, stream, expected, events)
    }

    fn append_multi(&self, appends: &[evstore::StreamAppend]) -> Result<Vec<AppendResult>> {
        PgStore::append_multi(self, appends)
    }

    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &evstore::AppendCondition,
    ) -> Result<AppendResult> {
        PgStore::append_if(self, stream, expected, events, condition)
    }

    fn read_query(
        &self,
        query: &evstore::Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        PgStore::read_query(self, query, after)
    }

    fn read_stream_range(
        &self,
        stream: &str,
        from_version: u64,
        to_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        PgStore::read_stream_range(self, stream, from_version, to_version)
    }

    fn last_version(&self, stream: &str) -> Result<Option<u64>> {
        PgStore::stream_version(self, stream)
    }

    fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        PgStore::load_snapshot(self, stream)
    }

    fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()> {
        PgStore::save_snapshot(self, stream, version, event_id, payload)
    }

    fn note_snapshot_undecodable(&self, stream: &str) -> Result<()> {
        self.drop_snapshot(stream)
    }

    fn note_snapshot_ignored(&self, stream: &str, reason: IgnoredReason) -> Result<()> {
        tracing::debug!("evstore-postgres: snapshot of {stream} ignored: {reason:?}");
        self.drop_snapshot(stream)
    }
}

impl EventSource for PgStore {
    fn read_all_from(&self, from_position: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        PgStore::read_all_from(self, from_position, max)
    }

    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        PgStore::wait_for_position(self, position, timeout)
    }

    /// The committed head; when the query fails, the last head this store knew (logged).
    fn head_position(&self) -> Option<u64> {
        match PgStore::head_position(self) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("evstore-postgres: reading the head failed: {e}");
                self.waiter.known()
            }
        }
    }
}
