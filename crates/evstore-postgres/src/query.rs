//! Dynamic Consistency Boundary queries in SQL: the positions of the events a
//! [`Query`] matches after a position, for [`PgStore::read_query`] and the append condition
//! check of [`PgStore::append_if`].
//!
//! Each query item becomes one index-driven `SELECT position` bounded below by `$1` (the
//! `after` position, `-1` for none), and the items are `UNION`ed (items OR'd):
//!
//! | item | SQL | index |
//! | --- | --- | --- |
//! | types only | `evstore_events WHERE event_type = ANY($types) AND position > $1` | `(event_type, position)` |
//! | tags (and maybe types) | `evstore_event_tags WHERE tag = ANY($tags) AND position > $1 GROUP BY position HAVING count(*) = #tags`, joined with the events for the types | `(tag, position)` primary key |
//! | neither | `evstore_events WHERE position > $1` (the whole query then reduces to it) | primary key |
//!
//! A tag is distinct on an event (the primary key `(tag, position)` and the append's
//! validation make it so), so an event carries all `n` tags of an item exactly when `n` of
//! the tag index's rows for those tags name its position.

use evstore::query::MAX_CONFLICTS_LISTED;
use evstore::{AppendCondition, Query, RecordedEvent, Result};
use postgres::types::{ToSql, Type};

use crate::read::{event_at, COLUMNS};
use crate::store::{col, pg, to_i64, to_u64, Conn, PgStore};
use crate::validate;

/// The positions `query` matches after `$1`, as SQL, and the text arrays its `$2 …` name (in
/// order); `None` for a query with no items (it matches nothing).
fn positions_sql(query: &Query) -> Option<(String, Vec<Vec<&str>>)> {
    let items = query.items();
    if items.is_empty() {
        return None;
    }
    if items
        .iter()
        .any(|i| i.types().is_empty() && i.tags().is_empty())
    {
        return Some((
            "SELECT position FROM evstore_events WHERE position > $1".to_string(),
            Vec::new(),
        ));
    }
    let mut arrays: Vec<Vec<&str>> = Vec::new();
    let mut selects = Vec::with_capacity(items.len());
    for item in items {
        let (types, tags) = (item.types(), item.tags());
        let sql = if tags.is_empty() {
            let ty = param(types, &mut arrays);
            format!(
                "SELECT position FROM evstore_events \
                 WHERE event_type = ANY(${ty}::text[]) AND position > $1"
            )
        } else {
            let tg = param(tags, &mut arrays);
            let tagged = if tags.len() == 1 {
                format!(
                    "SELECT position FROM evstore_event_tags \
                     WHERE tag = ANY(${tg}::text[]) AND position > $1"
                )
            } else {
                format!(
                    "SELECT position FROM evstore_event_tags \
                     WHERE tag = ANY(${tg}::text[]) AND position > $1 \
                     GROUP BY position HAVING count(*) = {}",
                    tags.len()
                )
            };
            if types.is_empty() {
                tagged
            } else {
                let ty = param(types, &mut arrays);
                format!(
                    "SELECT e.position FROM ({tagged}) t \
                     JOIN evstore_events e ON e.position = t.position \
                     WHERE e.event_type = ANY(${ty}::text[])"
                )
            }
        };
        selects.push(sql);
    }
    Some((selects.join(" UNION "), arrays))
}

/// Add `names` as the next text-array parameter; returns its number (`$2` for the first).
fn param<'a>(names: &'a [String], arrays: &mut Vec<Vec<&'a str>>) -> usize {
    arrays.push(names.iter().map(String::as_str).collect());
    arrays.len() + 1
}

/// The parameters of [`positions_sql`]'s SQL: `after` (`-1` for `None`), then the arrays.
fn params<'a>(after: &'a i64, arrays: &'a [Vec<&'a str>]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    let mut p: Vec<(&(dyn ToSql + Sync), Type)> = Vec::with_capacity(arrays.len() + 1);
    p.push((after, Type::INT8));
    for a in arrays {
        p.push((a, Type::TEXT_ARRAY));
    }
    p
}

/// `after` as the bound `position > $1`: `-1` for `None` (positions are never negative).
fn bound(after: Option<u64>) -> i64 {
    after.map_or(-1, to_i64)
}

/// The positions (ascending, at most [`MAX_CONFLICTS_LISTED`]) of events matching the
/// condition's query after its `after`, in the caller's transaction.
pub(crate) fn conflicts(conn: &mut Conn, condition: &AppendCondition) -> Result<Vec<u64>> {
    let Some((sql, arrays)) = positions_sql(&condition.fail_if_events_match) else {
        return Ok(Vec::new());
    };
    let after = bound(condition.after);
    let sql =
        format!("SELECT position FROM ({sql}) m ORDER BY position LIMIT {MAX_CONFLICTS_LISTED}");
    conn.query_typed(&sql, &params(&after, &arrays))
        .map_err(pg)?
        .iter()
        .map(|r| to_u64(col(r, 0)?))
        .collect()
}

impl PgStore {
    /// The events matching `query` with positions after `after` (all when `None`), in
    /// position order, and the head position the read saw (`None`: the log is empty): the
    /// Dynamic Consistency Boundary read of [`evstore::Store::read_query`], same semantics.
    /// One statement, so the events and the head come from one snapshot — a prefix of the log
    /// (appends commit in position order): pass the head to [`PgStore::append_if`] as the
    /// condition's `after`.
    ///
    /// Index-driven: per query item one range scan from `after` on, in the tag index
    /// `(tag, position)` or the type index `(event_type, position)` (an item with neither
    /// reads every event after `after`).
    ///
    /// # Errors
    /// [`evstore::Error::InvalidInput`] for a query over its limits
    /// ([`evstore::Query::validate`]) or naming U+0000; [`evstore::Error::Io`] from the server.
    pub fn read_query(
        &self,
        query: &Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        self.read_query_page(query, after, usize::MAX)
    }

    /// [`PgStore::read_query`], at most `max` events: as [`evstore::Store::read_query_page`],
    /// a full page's head is its last event's position (every match up to it was returned).
    ///
    /// # Errors
    /// As [`PgStore::read_query`].
    pub fn read_query_page(
        &self,
        query: &Query,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        validate::query(query)?;
        if max == 0 {
            return Ok((Vec::new(), after));
        }
        let Some((positions, arrays)) = positions_sql(query) else {
            return Ok((Vec::new(), self.head_position()?));
        };
        let bound = bound(after);
        // A number, not caller text: formatting it into the statement is safe.
        let limit = if max == usize::MAX {
            String::new()
        } else {
            format!(" LIMIT {max}")
        };
        let sql = format!(
            "SELECT h.head, e.* FROM \
             (SELECT (SELECT position FROM evstore_events ORDER BY position DESC LIMIT 1) AS head) h \
             LEFT JOIN (SELECT {COLUMNS} FROM evstore_events WHERE position IN ({positions})) e \
             ON true ORDER BY e.position{limit}"
        );
        let rows = self
            .conn()?
            .query_typed(&sql, &params(&bound, &arrays))
            .map_err(pg)?;
        let mut head = None;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            head = col::<Option<i64>>(r, 0)?.map(to_u64).transpose()?;
            if col::<Option<i64>>(r, 1)?.is_some() {
                events.push(event_at(r, 1)?);
            }
        }
        if let Some(h) = head {
            self.waiter.advance(h);
        }
        if events.len() >= max {
            head = events.last().map(|e| e.position);
        }
        Ok((events, head))
    }
}
