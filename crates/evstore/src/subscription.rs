//! Catch-up subscriptions: read the global log from a position, then follow it live.
//!
//! A [`Subscription`] yields every event from its start position on, in position order, and
//! then blocks (with a timeout) until new events become visible. It never misses or repeats a
//! position: the store makes positions dense and visible in order, and the subscription checks
//! that every event it reads is exactly the position it expected (a violation is reported as
//! [`Error::Internal`], a broken source contract rather than damage in the file, never
//! skipped).
//!
//! Subscribers pull: each one reads the log through [`EventSource::read_all_from`] at its own
//! pace and waits with [`EventSource::wait_for_position`]. Nothing is pushed into per-subscriber
//! queues, so a slow (or stalled) subscriber never slows appenders down, and any number of
//! subscribers can follow the same store.
//!
//! The read side is written against the [`EventSource`] trait, not the concrete [`Store`], so a
//! second storage backend can slot in under projections and sagas.
//!
//! ```
//! use std::time::Duration;
//! use evstore::subscription::{Subscription, SubscriptionFilter};
//! use evstore::{ExpectedVersion, NewEvent, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("sub.evs"))?;
//! store.append("Order-1", ExpectedVersion::Any, &[NewEvent::new("OrderCreated", vec![])])?;
//! store.append("User-1", ExpectedVersion::Any, &[NewEvent::new("UserRenamed", vec![])])?;
//!
//! // Only order events; the filtered-out user event still advances the position.
//! let mut sub = Subscription::new(&store, 0, SubscriptionFilter::all().with_stream_prefix("Order-"));
//! let first = sub.next_timeout(Duration::from_millis(10))?.unwrap();
//! assert_eq!((first.position, first.event_type.as_str()), (0, "OrderCreated"));
//! assert!(sub.next_timeout(Duration::from_millis(10))?.is_none()); // caught up
//! assert_eq!(sub.next_position(), 2);
//! # Ok::<(), evstore::Error>(())
//! ```

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::types::RecordedEvent;
use crate::Store;

/// Events fetched from the source per read.
pub const DEFAULT_BATCH_SIZE: usize = 512;

/// How long a blocking [`Iterator::next`] waits at a time before it re-checks its
/// [`StopHandle`].
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// What the read side (subscriptions, projections, sagas) needs from a storage backend: the
/// global log in position order, a way to wait for new events, and the head.
///
/// Implemented for [`Store`], and for `&S` and `Arc<S>` of any source, so a runner can own an
/// `Arc<Store>` or borrow a `&Store`.
///
/// Contract: positions are dense (0, 1, 2, …) and become visible in order; an event is only
/// visible once it is durable (as the store defines it).
pub trait EventSource: Send + Sync {
    /// Up to `max` events from `from_position` on, in position order. Fewer (or none) when the
    /// head is reached.
    ///
    /// # Errors
    /// The source's read errors (for the [`Store`]: bytes damaged since they were indexed).
    fn read_all_from(&self, from_position: u64, max: usize) -> Result<Vec<RecordedEvent>>;

    /// Block until an event at `position` or later is visible, or `timeout` passes. Returns
    /// whether it is visible.
    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool;

    /// The position of the newest visible event (`None`: the log is empty).
    fn head_position(&self) -> Option<u64>;
}

impl EventSource for Store {
    fn read_all_from(&self, from_position: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        self.read_all(from_position).take(max).collect()
    }

    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        Store::wait_for_position(self, position, timeout)
    }

    fn head_position(&self) -> Option<u64> {
        Store::head_position(self)
    }
}

impl<S: EventSource + ?Sized> EventSource for Arc<S> {
    fn read_all_from(&self, from_position: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        (**self).read_all_from(from_position, max)
    }
    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        (**self).wait_for_position(position, timeout)
    }
    fn head_position(&self) -> Option<u64> {
        (**self).head_position()
    }
}

impl<S: EventSource + ?Sized> EventSource for &S {
    fn read_all_from(&self, from_position: u64, max: usize) -> Result<Vec<RecordedEvent>> {
        (**self).read_all_from(from_position, max)
    }
    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        (**self).wait_for_position(position, timeout)
    }
    fn head_position(&self) -> Option<u64> {
        (**self).head_position()
    }
}

/// Which events a subscription delivers. Events that do not match are skipped but still
/// advance the subscription's position. The default delivers everything.
///
/// ```
/// use evstore::subscription::SubscriptionFilter;
/// let f = SubscriptionFilter::all()
///     .with_event_types(["OrderCreated", "OrderConfirmed"])
///     .with_stream_prefix("Order-");
/// assert!(f.matches_parts("Order-7", "OrderCreated"));
/// assert!(!f.matches_parts("Order-7", "ItemAddedToOrder"));
/// assert!(!f.matches_parts("User-7", "OrderCreated"));
///
/// // By tags (all of them), or by a DCB query (crate::query):
/// let by_tag = SubscriptionFilter::all().with_tags(["product:sku-1"]);
/// assert!(by_tag.matches_event("Order-7", "ItemAdded", &["order:7", "product:sku-1"]));
/// assert!(!by_tag.matches_event("Order-7", "ItemAdded", &["order:7"]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    event_types: Option<BTreeSet<String>>,
    stream_prefix: Option<String>,
    /// Tags an event must all carry (empty: none needed).
    tags: BTreeSet<String>,
    /// A DCB query the event must match.
    query: Option<crate::query::Query>,
}

impl SubscriptionFilter {
    /// Deliver every event.
    pub fn all() -> SubscriptionFilter {
        SubscriptionFilter::default()
    }

    /// Deliver only events whose type is one of `types` (replaces an earlier type set).
    #[must_use]
    pub fn with_event_types<I, T>(mut self, types: I) -> SubscriptionFilter
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Deliver only events whose stream id starts with `prefix` (replaces an earlier prefix).
    #[must_use]
    pub fn with_stream_prefix(mut self, prefix: impl Into<String>) -> SubscriptionFilter {
        self.stream_prefix = Some(prefix.into());
        self
    }

    /// Deliver only events that carry every tag in `tags` ([`NewEvent::tags`]); replaces an
    /// earlier tag set, as [`SubscriptionFilter::with_event_types`] and
    /// [`NewEvent::with_tags`](crate::NewEvent::with_tags) do.
    ///
    /// [`NewEvent::tags`]: crate::NewEvent::tags
    #[must_use]
    pub fn with_tags<I, T>(mut self, tags: I) -> SubscriptionFilter
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Deliver only events matching `query` (a DCB query: items OR'd, each a set of types and
    /// tags; see [`crate::query`]); replaces an earlier query. Combines with the other
    /// criteria (all must hold).
    #[must_use]
    pub fn with_query(mut self, query: crate::query::Query) -> SubscriptionFilter {
        self.query = Some(query);
        self
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let tags: Vec<&str> = event.tags.iter().map(String::as_str).collect();
        self.matches_event(&event.stream_id, &event.event_type, &tags)
    }

    /// Whether an event of `event_type` in `stream_id` carrying `tags` passes the filter.
    pub fn matches_event(&self, stream_id: &str, event_type: &str, tags: &[&str]) -> bool {
        self.matches_parts(stream_id, event_type)
            && self.tags.iter().all(|t| tags.contains(&t.as_str()))
            && self
                .query
                .as_ref()
                .is_none_or(|q| q.matches(event_type, tags))
    }

    /// Whether an event of `event_type` in `stream_id` passes the stream-prefix and type
    /// criteria (the tag and query criteria need the event's tags: [`Self::matches_event`]).
    pub fn matches_parts(&self, stream_id: &str, event_type: &str) -> bool {
        if let Some(prefix) = &self.stream_prefix {
            if !stream_id.starts_with(prefix.as_str()) {
                return false;
            }
        }
        match &self.event_types {
            Some(types) => types.contains(event_type),
            None => true,
        }
    }
}

/// Stops a blocking [`Subscription`] iterator (or a runner loop) from another thread.
/// Cloning shares the flag.
///
/// ```
/// let stop = evstore::subscription::StopHandle::new();
/// let for_thread = stop.clone();
/// for_thread.stop();
/// assert!(stop.is_stopped());
/// ```
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A handle that is not stopped.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// Ask everything watching this handle to stop (within about 100 ms for blocked waits).
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A catch-up subscription to the global log of an [`EventSource`] (as KurrentDB's catch-up
/// subscriptions to `$all`: read from a position, then follow live).
///
/// [`Subscription::next_timeout`] is the primitive: the next matching event, or `None` when
/// none arrived within the timeout. The [`Iterator`] implementation blocks until an event
/// arrives and ends only when the subscription's [`StopHandle`] is stopped (or after an
/// error, which it yields once).
///
/// ```
/// use std::time::Duration;
/// use evstore::subscription::{Subscription, SubscriptionFilter};
/// use evstore::{ExpectedVersion, NewEvent, Store};
/// # let dir = tempfile::tempdir().unwrap();
/// let store = std::sync::Arc::new(Store::open(dir.path().join("live.evs"))?);
/// let mut sub = Subscription::new(store.clone(), 0, SubscriptionFilter::all());
/// let stop = sub.stop_handle();
/// let writer = {
///     let store = store.clone();
///     std::thread::spawn(move || {
///         for i in 0..3 {
///             store.append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![i])]).unwrap();
///         }
///     })
/// };
/// let seen: Vec<u64> = sub.by_ref().take(3).map(|e| e.unwrap().position).collect();
/// assert_eq!(seen, [0, 1, 2]);
/// writer.join().unwrap();
/// stop.stop();
/// assert!(sub.next().is_none());
/// # Ok::<(), evstore::Error>(())
/// ```
pub struct Subscription<S: EventSource> {
    source: S,
    filter: SubscriptionFilter,
    /// Position of the next event to look at (deliver or skip).
    position: u64,
    /// Events read ahead, starting at `position`, not yet looked at.
    buffer: VecDeque<RecordedEvent>,
    batch_size: usize,
    stop: StopHandle,
    failed: bool,
    /// Id of the event at `position - 1`, once the subscription has passed it.
    last_event_id: Option<uuid::Uuid>,
}

impl<S: EventSource> std::fmt::Debug for Subscription<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("position", &self.position)
            .field("filter", &self.filter)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl<S: EventSource> Subscription<S> {
    /// A subscription that starts at global position `from_position` (0: the whole log).
    pub fn new(source: S, from_position: u64, filter: SubscriptionFilter) -> Subscription<S> {
        Subscription {
            source,
            filter,
            position: from_position,
            buffer: VecDeque::new(),
            batch_size: DEFAULT_BATCH_SIZE,
            stop: StopHandle::new(),
            failed: false,
            last_event_id: None,
        }
    }

    /// Read ahead `n` events at a time (at least 1; default [`DEFAULT_BATCH_SIZE`]).
    #[must_use]
    pub fn with_batch_size(mut self, n: usize) -> Subscription<S> {
        self.batch_size = n.max(1);
        self
    }

    /// Use `stop` (shared with other threads) to end the blocking iterator.
    #[must_use]
    pub fn with_stop_handle(mut self, stop: StopHandle) -> Subscription<S> {
        self.stop = stop;
        self
    }

    /// The handle that ends the blocking iterator.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The position of the next event the subscription will look at: every position below it
    /// has been delivered or filtered out. Save it as a checkpoint and pass it to
    /// [`Subscription::new`] to resume.
    pub fn next_position(&self) -> u64 {
        self.position
    }

    /// The old name of [`Self::next_position`] (the position of the next event, not the last:
    /// compare `Store::head_position`, the last event's).
    #[deprecated(
        since = "0.2.0",
        note = "renamed next_position: the position of the next event"
    )]
    pub fn position(&self) -> u64 {
        self.next_position()
    }

    /// The id of the event just before [`Subscription::position`] (delivered or filtered
    /// out), if this subscription has passed it since it was created or last moved.
    pub fn last_event_id(&self) -> Option<uuid::Uuid> {
        self.last_event_id
    }

    /// The filter.
    pub fn filter(&self) -> &SubscriptionFilter {
        &self.filter
    }

    /// The event source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Move to `position` (e.g. 0 for a rebuild), dropping anything read ahead.
    pub fn seek(&mut self, position: u64) {
        self.position = position;
        self.buffer.clear();
        self.failed = false;
        self.last_event_id = None;
    }

    /// Whether events at or after the position are visible now (nothing to wait for).
    pub fn has_pending(&self) -> bool {
        !self.buffer.is_empty()
            || self
                .source
                .head_position()
                .is_some_and(|head| head >= self.position)
    }

    /// Read the next batch into the buffer. Returns whether anything was read.
    fn fill(&mut self) -> Result<bool> {
        let next = self.position + self.buffer.len() as u64;
        let events = self.source.read_all_from(next, self.batch_size)?;
        if events.len() > self.batch_size {
            return Err(order_violation(format!(
                "the source returned {} events for a read of at most {}",
                events.len(),
                self.batch_size
            )));
        }
        for (i, e) in events.iter().enumerate() {
            let expected = next + i as u64;
            if e.position != expected {
                return Err(order_violation(format!(
                    "subscription expected position {expected}, the source returned {}",
                    e.position
                )));
            }
        }
        let any = !events.is_empty();
        self.buffer.extend(events);
        Ok(any)
    }

    /// The next matching event already read ahead (skipping non-matching ones).
    fn pop_buffered(&mut self) -> Option<RecordedEvent> {
        while let Some(e) = self.buffer.pop_front() {
            self.position += 1;
            self.last_event_id = Some(e.event_id);
            if self.filter.matches(&e) {
                return Some(e);
            }
        }
        None
    }

    /// The next matching event, waiting up to `timeout` for one to become visible.
    /// `Ok(None)`: nothing (matching) arrived in time.
    ///
    /// # Errors
    /// The source's read errors, and [`Error::Internal`] when the source breaks its contract
    /// (an event at another position than the next one expected). Events already delivered or
    /// skipped stay behind; the failed read is retried by the next call.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RecordedEvent>> {
        let deadline = Instant::now() + timeout;
        // Bounded by the deadline: each round either delivers, reads at least one event (the
        // log is finite at any instant), or waits until the deadline.
        loop {
            if let Some(e) = self.pop_buffered() {
                return Ok(Some(e));
            }
            if self.fill()? {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if !self.source.wait_for_position(self.position, deadline - now) {
                return Ok(None);
            }
        }
    }

    /// Up to `max` matching events: waits up to `timeout` for the first one, then takes only
    /// what is already visible. Empty when nothing arrived in time.
    ///
    /// # Errors
    /// As [`Subscription::next_timeout`]; events taken before the error are not returned
    /// (the position has moved past them).
    pub fn next_batch(&mut self, max: usize, timeout: Duration) -> Result<Vec<RecordedEvent>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        match self.next_timeout(timeout)? {
            Some(e) => out.push(e),
            None => return Ok(out),
        }
        while out.len() < max {
            match self.next_timeout(Duration::ZERO)? {
                Some(e) => out.push(e),
                None => break,
            }
        }
        Ok(out)
    }
}

impl<S: EventSource> Iterator for Subscription<S> {
    type Item = Result<RecordedEvent>;

    /// Blocks until the next matching event is visible. Returns `None` once the
    /// [`StopHandle`] is stopped, and after an error has been yielded.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // Bounded by the stop handle, checked at least every WAIT_SLICE.
        while !self.stop.is_stopped() {
            match self.next_timeout(WAIT_SLICE) {
                Ok(Some(e)) => return Some(Ok(e)),
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// The source delivered positions out of order: its contract broke (not file damage).
fn order_violation(what: String) -> Error {
    Error::Internal(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExpectedVersion, NewEvent};

    /// A source that lies about positions.
    struct Gappy;
    impl EventSource for Gappy {
        fn read_all_from(&self, from: u64, _max: usize) -> Result<Vec<RecordedEvent>> {
            Ok(vec![RecordedEvent {
                event_id: uuid::Uuid::nil(),
                stream_id: "s".into(),
                event_type: "E".into(),
                version: 0,
                position: from + 1,
                recorded_at: chrono::Utc::now(),
                data: vec![],
                metadata: vec![],
                tags: vec![],
            }])
        }
        fn wait_for_position(&self, _: u64, _: Duration) -> bool {
            true
        }
        fn head_position(&self) -> Option<u64> {
            Some(10)
        }
    }

    #[test]
    fn a_gap_is_an_error_not_a_skip() {
        let mut sub = Subscription::new(Gappy, 0, SubscriptionFilter::all());
        assert!(matches!(
            sub.next_timeout(Duration::ZERO),
            Err(Error::Internal(_))
        ));
        assert_eq!(sub.next_position(), 0);
        assert!(sub.next().is_some_and(|r| r.is_err()));
        assert!(sub.next().is_none());
    }

    #[test]
    fn filtered_events_advance_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("f.evs")).unwrap();
        for (s, t) in [("A-1", "X"), ("B-1", "X"), ("A-2", "Y"), ("A-3", "X")] {
            store
                .append(s, ExpectedVersion::Any, &[NewEvent::new(t, vec![])])
                .unwrap();
        }
        let f = SubscriptionFilter::all()
            .with_stream_prefix("A-")
            .with_event_types(["X"]);
        let mut sub = Subscription::new(&store, 0, f).with_batch_size(1);
        let got: Vec<u64> = sub
            .next_batch(10, Duration::ZERO)
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(got, [0, 3]);
        assert_eq!(sub.next_position(), 4);
        assert!(!sub.has_pending());
    }

    #[test]
    fn filter_by_tags_and_query_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path().join("t.evs")).unwrap();
        let events = [
            ("A", &["p:1", "o:1"][..]),
            ("B", &["p:1"][..]),
            ("A", &["p:2"][..]),
            ("A", &[][..]),
            ("B", &["p:1", "o:2"][..]),
        ];
        for (t, tags) in events {
            store
                .append(
                    "s",
                    ExpectedVersion::Any,
                    &[NewEvent::new(t, vec![]).with_tags(tags.iter().copied())],
                )
                .unwrap();
        }
        let positions = |f: SubscriptionFilter| -> Vec<u64> {
            Subscription::new(&store, 0, f)
                .next_batch(10, Duration::ZERO)
                .unwrap()
                .iter()
                .map(|e| e.position)
                .collect()
        };
        assert_eq!(
            positions(SubscriptionFilter::all().with_tags(["p:1"])),
            [0, 1, 4]
        );
        assert_eq!(
            positions(
                SubscriptionFilter::all()
                    .with_tags(["p:1"])
                    .with_tags(["o:2"])
            ),
            [4]
        );
        let q = crate::Query::new(vec![
            crate::QueryItem::new(&["A"], &["p:2"]),
            crate::QueryItem::new(&["B"], &[]),
        ]);
        assert_eq!(
            positions(SubscriptionFilter::all().with_query(q)),
            [1, 2, 4]
        );
    }
}
