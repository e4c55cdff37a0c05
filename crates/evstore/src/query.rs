//! Queries over event types and tags, and append conditions: the read and write halves of a
//! Dynamic Consistency Boundary (DCB), with the names and semantics of the DCB specification
//! (<https://dcb.events/specification/>).
//!
//! A decision reads the events matching a [`Query`] ([`Store::read_query`]), decides, and
//! appends with an [`AppendCondition`] made of the same query and the head position the read
//! saw ([`Store::append_if`]). The append fails if any event matching the query was appended
//! after that position, so "a username is unique" or "stock is never oversold" hold without a
//! saga: the boundary of consistency is the query, not a stream. On
//! [`crate::Error::AppendConditionFailed`], read the query again
//! and decide again: the error is returned once the conflicting events are visible to reads.
//! [`Repository::save_if`](crate::repository::Repository::save_if) is the same append for an
//! aggregate's pending events.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use evstore::{AppendCondition, Error, ExpectedVersion, NewEvent, Query, QueryItem, Store};
//! let store = Store::open(dir.path().join("users.evs"))?;
//! let claim = |user: &str| NewEvent::new("UsernameClaimed", user.as_bytes().to_vec())
//!     .with_tags(["username:alice"]);
//! let query = Query::new(vec![QueryItem::new(&["UsernameClaimed"], &["username:alice"])]);
//!
//! // Two users decide on the same (empty) history...
//! let (seen, head) = store.read_query(&query, None)?;
//! assert!(seen.is_empty());
//! let condition = AppendCondition::new(query.clone(), head);
//! store.append_if("user-1", ExpectedVersion::NoStream, &[claim("user-1")], &condition)?;
//! // ...and only the first one's claim holds.
//! let second = store.append_if("user-2", ExpectedVersion::NoStream, &[claim("user-2")], &condition);
//! assert!(matches!(second, Err(Error::AppendConditionFailed { .. })));
//! # Ok::<(), evstore::Error>(())
//! ```
//!
//! [`Store::read_query`]: crate::Store::read_query
//! [`Store::append_if`]: crate::Store::append_if

use crate::error::{Error, Result};
use crate::limits::{check_name, check_tag};
use crate::types::EventView;

/// Most items one [`Query`] may hold (a bound on the work of one condition check).
pub const MAX_QUERY_ITEMS: usize = 64;
/// Most types, and most tags, one [`QueryItem`] may name.
pub const MAX_ITEM_TERMS: usize = 64;
/// Most conflicting positions an [`Error::AppendConditionFailed`] lists.
pub const MAX_CONFLICTS_LISTED: usize = 128;

/// One criterion of a [`Query`], as the DCB specification's query item: it matches an event
/// whose type is one of `types` (any type when `types` is empty) **and** which carries every
/// tag in `tags` (no tag needed when `tags` is empty). An item with neither matches every
/// event.
///
/// ```
/// use evstore::QueryItem;
/// let item = QueryItem::new(&["ItemAdded", "ItemRemoved"], &["product:sku-1"]);
/// assert_eq!(item.types(), ["ItemAdded", "ItemRemoved"]);
/// assert_eq!(item.tags(), ["product:sku-1"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct QueryItem {
    types: Vec<String>,
    tags: Vec<String>,
}

impl QueryItem {
    /// An item matching events of any of `types` (all types if empty) that carry all of
    /// `tags`. Duplicates are dropped; the order does not matter. Checked when the query is
    /// used: names of 1..=255 bytes, at most [`MAX_ITEM_TERMS`] of each.
    pub fn new(types: &[&str], tags: &[&str]) -> QueryItem {
        let mut types: Vec<String> = types.iter().map(|t| (*t).to_string()).collect();
        let mut tags: Vec<String> = tags.iter().map(|t| (*t).to_string()).collect();
        types.sort_unstable();
        types.dedup();
        tags.sort_unstable();
        tags.dedup();
        QueryItem { types, tags }
    }

    /// The event types this item accepts (sorted; empty: any type).
    pub fn types(&self) -> &[String] {
        &self.types
    }

    /// The tags an event must all carry (sorted; empty: none needed).
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether an event of type `event_type` carrying the tags `has_tag` accepts matches.
    pub fn matches_with(&self, event_type: &str, has_tag: &dyn Fn(&str) -> bool) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && self.tags.iter().all(|t| has_tag(t))
    }

    fn validate(&self) -> Result<()> {
        if self.types.len() > MAX_ITEM_TERMS || self.tags.len() > MAX_ITEM_TERMS {
            return Err(Error::InvalidInput(format!(
                "a query item names at most {MAX_ITEM_TERMS} types and {MAX_ITEM_TERMS} tags, \
                 got {} and {}",
                self.types.len(),
                self.tags.len()
            )));
        }
        for t in &self.types {
            check_name(t, "a query's event type")?;
        }
        for t in &self.tags {
            check_tag(t)?;
        }
        Ok(())
    }
}

/// A DCB query: a list of [`QueryItem`]s, OR'd. An event matches when any item matches it.
/// A query with no items matches no event (as a condition it never fails);
/// [`Query::all`] matches every event.
///
/// ```
/// use evstore::{Query, QueryItem};
/// let q = Query::new(vec![
///     QueryItem::new(&["UsernameClaimed"], &["username:alice"]),
///     QueryItem::new(&[], &["user:42"]),
/// ]);
/// assert!(q.matches("UsernameClaimed", &["username:alice", "other"]));
/// assert!(q.matches("Anything", &["user:42"]));
/// assert!(!q.matches("UsernameClaimed", &["username:bob"]));
/// assert!(!q.matches("UsernameReleased", &["username:alice"]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Query {
    items: Vec<QueryItem>,
}

impl Query {
    /// A query matching events any of `items` matches.
    pub fn new(items: Vec<QueryItem>) -> Query {
        Query { items }
    }

    /// A query matching every event (one item with no types and no tags).
    pub fn all() -> Query {
        Query {
            items: vec![QueryItem::default()],
        }
    }

    /// Its items.
    pub fn items(&self) -> &[QueryItem] {
        &self.items
    }

    /// Whether an event of type `event_type` carrying `tags` matches.
    pub fn matches(&self, event_type: &str, tags: &[&str]) -> bool {
        self.matches_with(event_type, &|t| tags.contains(&t))
    }

    /// Whether the stored event `event` matches.
    pub fn matches_event(&self, event: &EventView<'_>) -> bool {
        self.matches_with(event.event_type, &|t| event.tags.contains(t))
    }

    /// Whether an event of type `event_type` whose tags `has_tag` accepts matches.
    pub fn matches_with(&self, event_type: &str, has_tag: &dyn Fn(&str) -> bool) -> bool {
        self.items
            .iter()
            .any(|item| item.matches_with(event_type, has_tag))
    }

    /// Check the limits ([`MAX_QUERY_ITEMS`], [`MAX_ITEM_TERMS`], names of 1..=255 bytes).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first limit broken.
    pub fn validate(&self) -> Result<()> {
        if self.items.len() > MAX_QUERY_ITEMS {
            return Err(Error::InvalidInput(format!(
                "a query holds at most {MAX_QUERY_ITEMS} items, got {}",
                self.items.len()
            )));
        }
        self.items.iter().try_for_each(QueryItem::validate)
    }
}

/// The condition of a DCB append ([`Store::append_if`](crate::Store::append_if)), as the DCB
/// specification's append condition: the append fails if any event matching
/// `fail_if_events_match` has a position after `after` (`None`: any position at all), counting
/// every event that precedes the append in the log, those still being written included.
/// `after` is usually the head position a [`Store::read_query`](crate::Store::read_query) of
/// the same query returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AppendCondition {
    /// The query no new event may match.
    pub fail_if_events_match: Query,
    /// Events at or before this position are ignored (they were seen by the decision).
    pub after: Option<u64>,
}

impl AppendCondition {
    /// A condition failing if an event matching `query` was appended after position `after`.
    pub fn new(query: Query, after: Option<u64>) -> AppendCondition {
        AppendCondition {
            fail_if_events_match: query,
            after,
        }
    }

    /// Whether an event at `position` is one the condition looks at (after `after`).
    pub fn looks_at(&self, position: u64) -> bool {
        self.after.is_none_or(|a| position > a)
    }
}
