//! Paged reads by event type and the type catalog, for servers that page through a type
//! (`GET /types/{event_type}` of `evstore serve`) and list types without a full
//! [`PgStore::stats`] scan of the log.

use evstore::{RecordedEvent, Result};
use postgres::types::Type;

use crate::read::{event, COLUMNS};
use crate::store::{col, pg, to_i64, to_u64, typed, PgStore};
use crate::validate;

impl PgStore {
    /// Up to `max` events of type `event_type` from global position `from_position` on, in
    /// position order: as [`evstore::Store::read_by_type_from`] (page on with the last
    /// position + 1). Served by the `(event_type, position)` index.
    ///
    /// # Errors
    /// [`evstore::Error::InvalidInput`] for an event type that is empty or longer than 255
    /// bytes; [`evstore::Error::Io`] from the server.
    pub fn read_by_type_from(
        &self,
        event_type: &str,
        from_position: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        validate::name(event_type, "event type")?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let from = to_i64(from_position);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .conn()?
            .query_typed(
                &format!(
                    "SELECT {COLUMNS} FROM evstore_events \
                     WHERE event_type = $1 AND position >= $2 ORDER BY position LIMIT $3"
                ),
                &[
                    typed(&event_type, Type::TEXT),
                    typed(&from, Type::INT8),
                    typed(&limit, Type::INT8),
                ],
            )
            .map_err(pg)?;
        rows.iter().map(event).collect()
    }

    /// Every event type with its number of events, sorted by name (byte order, as the file store sorts): as
    /// [`evstore::Store::event_types`], but a query (a `GROUP BY` over the log), so it returns
    /// a `Result`.
    ///
    /// # Errors
    /// [`evstore::Error::Io`] from the server.
    pub fn event_types(&self) -> Result<Vec<(String, u64)>> {
        self.conn()?
            .query(
                "SELECT event_type, count(*) FROM evstore_events GROUP BY event_type \
                 ORDER BY event_type COLLATE \"C\"",
                &[],
            )
            .map_err(pg)?
            .iter()
            .map(|r| Ok((col(r, 0)?, to_u64(col(r, 1)?)?)))
            .collect()
    }
}
