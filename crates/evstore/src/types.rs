//! Value types of the public API.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
/// Smallest segment size accepted (for tests and tiny stores).
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// Largest segment size accepted.
pub const MAX_SEGMENT_SIZE: u64 = 1024 * 1024 * 1024;

/// When `append` returns, relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `append` returns after the events are durable (fdatasync). Concurrent appenders share
    /// fsyncs (group commit). Readers see events only once durable.
    #[default]
    Sync,
    /// `append` returns once the write reached the operating system; [`Store::flush`] makes it
    /// durable. A power loss may take back events that were not flushed (a process crash does
    /// not). Reads in this process see an append at once; read-only stores in other processes
    /// see it once it is flushed (or the store closed), as only durable events are published
    /// to them.
    ///
    /// [`Store::flush`]: crate::Store::flush
    Buffered,
}

/// How to open a store.
///
/// ```
/// use evstore::{Durability, Options};
/// let options = Options { durability: Durability::Buffered, ..Options::default() };
/// assert_eq!(options.segment_size, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Durability of `append`; default [`Durability::Sync`].
    pub durability: Durability,
    /// Segment size for a **new** file (an existing file keeps the size in its header):
    /// a multiple of 4096 between 64 KiB and 1 GiB; default 64 MiB.
    pub segment_size: u64,
    /// Create the file when it does not exist (default `true`).
    pub create_if_missing: bool,
    /// Open for reading only (default `false`): beside a writer in another process (or this
    /// one), following what it made durable ([`Store::refresh`](crate::Store::refresh)), or
    /// alone; any number of read-only opens and one writer share the file and never wait for
    /// each other (docs/FORMAT.md §10). Nothing is ever written — a torn tail is skipped, not
    /// trimmed — and appends fail with [`Error::ReadOnly`](crate::Error::ReadOnly). For
    /// inspection tools, and for projections and subscriptions in worker processes.
    pub read_only: bool,
    /// How long `open` keeps retrying when the file is locked before it returns
    /// [`Error::Locked`](crate::Error::Locked) (default 200 ms). A short wait rides out a
    /// lock that lingers for a moment after its store closed — e.g. while a child process
    /// forked by another thread still shares the file descriptor until it execs.
    pub lock_timeout: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            segment_size: DEFAULT_SEGMENT_SIZE,
            create_if_missing: true,
            read_only: false,
            lock_timeout: std::time::Duration::from_millis(200),
        }
    }
}

/// The optimistic concurrency check of an append, as KurrentDB's expected revision (`Any`,
/// `NoStream`, `StreamExists`, an exact revision). Versions count from 0, so `Exact(0)`
/// expects a stream holding one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist (have at least one event).
    StreamExists,
    /// The stream's last version (0 for its first event) must be exactly this.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `current` (`None`: no such stream) passes.
    ///
    /// ```
    /// use evstore::ExpectedVersion;
    /// assert!(ExpectedVersion::NoStream.matches(None));
    /// assert!(ExpectedVersion::Exact(3).matches(Some(3)));
    /// assert!(!ExpectedVersion::StreamExists.matches(None));
    /// ```
    pub fn matches(self, current: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(v) => current == Some(v),
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any"),
            ExpectedVersion::NoStream => write!(f, "no stream"),
            ExpectedVersion::StreamExists => write!(f, "stream exists"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// An event to append.
///
/// ```
/// let e = evstore::NewEvent::new("OrderCreated", b"{}".to_vec());
/// assert_eq!(e.event_type, "OrderCreated");
/// assert!(e.metadata.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id; repeating an append with the same ids is an idempotent retry.
    pub event_id: Uuid,
    /// 1..=255 bytes of UTF-8.
    pub event_type: String,
    /// The payload, opaque to the store.
    pub data: Vec<u8>,
    /// Free-form metadata, opaque to the store.
    pub metadata: Vec<u8>,
    /// Tags for Dynamic Consistency Boundary queries ([`Query`](crate::Query)): up to
    /// [`MAX_TAGS_PER_EVENT`] distinct strings of 1..=255 bytes of UTF-8, opaque to the store
    /// (e.g. `username:alice`). Indexed, so [`Store::read_query`](crate::Store::read_query)
    /// finds an event by any of them. Empty for most events.
    pub tags: Vec<String>,
}

impl NewEvent {
    /// An event with a fresh random-format (v4) id (see [`new_event_id`]) and empty metadata.
    pub fn new(event_type: impl Into<String>, data: impl Into<Vec<u8>>) -> NewEvent {
        NewEvent {
            event_id: new_event_id(),
            event_type: event_type.into(),
            data: data.into(),
            metadata: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// The same event with `tags` (replacing any it had); see [`NewEvent::tags`]. Checked by
    /// the append: each 1..=255 bytes, distinct, at most [`MAX_TAGS_PER_EVENT`].
    ///
    /// ```
    /// let e = evstore::NewEvent::new("SeatBooked", b"{}".to_vec()).with_tags(["seat:12A", "show:7"]);
    /// assert_eq!(e.tags, ["seat:12A", "show:7"]);
    /// ```
    #[must_use]
    pub fn with_tags<I, T>(mut self, tags: I) -> NewEvent
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The same event with `metadata` set.
    #[must_use]
    pub fn with_metadata(mut self, metadata: impl Into<Vec<u8>>) -> NewEvent {
        self.metadata = metadata.into();
        self
    }

    /// The same event with `event_id` set (e.g. a UUID v5 derived from a cause).
    #[must_use]
    pub fn with_id(mut self, event_id: Uuid) -> NewEvent {
        self.event_id = event_id;
        self
    }
}

/// A fresh event id: a version-4 (random-format) UUID, unique without a system call per id.
///
/// `Uuid::new_v4` asks the kernel for 16 random bytes every time (`getrandom`, about 0.3 µs
/// here: a quarter of a one-event buffered append). This draws 16 random bytes once per
/// thread and derives each id from them and a per-thread counter:
///
/// * the high 64 bits are the thread's random prefix (60 random bits after the version
///   nibble);
/// * the low 64 bits are the variant bits and a bijection of (random seed + counter) over 62
///   bits, so one thread never repeats an id within 2^62 ids, and ids of different threads or
///   processes collide only if both 60-bit prefixes and the sequences meet.
///
/// The ids are identifiers, not secrets: whoever sees a few ids of a thread can predict the
/// next ones. Use `Uuid::new_v4()` for ids that must be unguessable.
///
/// ```
/// let a = evstore::new_event_id();
/// let b = evstore::new_event_id();
/// assert_ne!(a, b);
/// assert_eq!(a.get_version_num(), 4);
/// ```
pub fn new_event_id() -> Uuid {
    use std::cell::Cell;
    const LOW_BITS: u32 = 62;
    const LOW_MASK: u64 = (1 << LOW_BITS) - 1;
    thread_local! {
        /// (random prefix, random seed, counter); the prefix is 0 until first use.
        static STATE: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
    }
    STATE.with(|state| {
        let (mut prefix, mut seed, counter) = state.get();
        if prefix == 0 {
            let random = Uuid::new_v4().as_u128();
            // Never 0 again (0 marks "not drawn yet").
            prefix = ((random >> 64) as u64) | 1;
            seed = random as u64;
        }
        state.set((prefix, seed, counter.wrapping_add(1)));
        // A bijection on [0, 2^62): odd multipliers and xor-shifts, all mod 2^62.
        let mut x = seed.wrapping_add(counter) & LOW_MASK;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & LOW_MASK;
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & LOW_MASK;
        x ^= x >> 32;
        let high = (prefix & !0xF000) | 0x4000; // version 4
        let low = x | (0b10 << LOW_BITS); // RFC 9562 variant
        Uuid::from_u64_pair(high, low)
    })
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The id it was appended with ([`NewEvent::event_id`]).
    pub event_id: Uuid,
    /// The stream it belongs to: 1..=255 bytes of UTF-8.
    pub stream_id: String,
    /// Its type ([`NewEvent::event_type`]): 1..=255 bytes of UTF-8.
    pub event_type: String,
    /// 0 for the first event of a stream; dense.
    pub version: u64,
    /// 0 for the first event in the file; dense; the global order.
    pub position: u64,
    /// Stamped by the store (microsecond precision); non-decreasing in position order.
    pub recorded_at: DateTime<Utc>,
    /// The payload, as appended.
    pub data: Vec<u8>,
    /// The metadata, as appended.
    pub metadata: Vec<u8>,
    /// The tags, as appended ([`NewEvent::tags`]); empty in logs of format version 1.
    pub tags: Vec<String>,
}

impl RecordedEvent {
    /// Its tags ([`RecordedEvent::tags`]).
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// A borrowed view of this event (what [`Store::read_stream_with`] hands out).
    ///
    /// [`Store::read_stream_with`]: crate::Store::read_stream_with
    pub fn as_view(&self) -> EventView<'_> {
        EventView {
            event_id: self.event_id,
            stream_id: &self.stream_id,
            event_type: &self.event_type,
            version: self.version,
            position: self.position,
            recorded_at: self.recorded_at,
            data: &self.data,
            metadata: &self.metadata,
            tags: Tags::owned(&self.tags),
        }
    }
}

/// A stored event borrowed from the log: the same fields as [`RecordedEvent`], with the names
/// and bytes pointing into the store's memory map (no copies, no allocations). Valid for the
/// duration of the callback it is passed to; [`EventView::to_recorded`] makes an owned copy.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use evstore::{ExpectedVersion, NewEvent, Store};
/// let store = Store::open(dir.path().join("v.evs"))?;
/// store.append("s", ExpectedVersion::Any, &[NewEvent::new("Added", b"7".to_vec())])?;
/// let mut total = 0;
/// store.read_stream_with("s", 0, u64::MAX, |e| {
///     total += e.data.len();
///     Ok(())
/// })?;
/// assert_eq!(total, 1);
/// # Ok::<(), evstore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    /// As [`RecordedEvent::event_id`].
    pub event_id: Uuid,
    /// As [`RecordedEvent::stream_id`].
    pub stream_id: &'a str,
    /// As [`RecordedEvent::event_type`].
    pub event_type: &'a str,
    /// As [`RecordedEvent::version`]: 0 for the first event of the stream.
    pub version: u64,
    /// As [`RecordedEvent::position`]: 0 for the first event in the file.
    pub position: u64,
    /// As [`RecordedEvent::recorded_at`].
    pub recorded_at: DateTime<Utc>,
    /// As [`RecordedEvent::data`].
    pub data: &'a [u8],
    /// As [`RecordedEvent::metadata`].
    pub metadata: &'a [u8],
    /// As [`RecordedEvent::tags`].
    pub tags: Tags<'a>,
}

impl EventView<'_> {
    /// An owned copy.
    pub fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent {
            event_id: self.event_id,
            stream_id: self.stream_id.to_string(),
            event_type: self.event_type.to_string(),
            version: self.version,
            position: self.position,
            recorded_at: self.recorded_at,
            data: self.data.to_vec(),
            metadata: self.metadata.to_vec(),
            tags: self.tags.to_vec(),
        }
    }
}

/// Most tags one event may carry.
pub const MAX_TAGS_PER_EVENT: usize = 255;

/// The tags of an [`EventView`]: borrowed from the log's bytes or from a [`RecordedEvent`].
/// Iterate with [`Tags::iter`]; test with [`Tags::contains`].
#[derive(Clone, Copy)]
pub struct Tags<'a> {
    repr: TagsRepr<'a>,
}

#[derive(Clone, Copy)]
enum TagsRepr<'a> {
    /// The tag section of an event record (docs/FORMAT.md §3.2): `len: u8` then `len` bytes,
    /// repeated; its structure and UTF-8 checked when it was decoded.
    Encoded(&'a [u8]),
    Owned(&'a [String]),
}

impl<'a> Tags<'a> {
    /// No tags.
    pub const EMPTY: Tags<'static> = Tags {
        repr: TagsRepr::Owned(&[]),
    };

    /// Tags borrowed from owned strings.
    pub fn owned(tags: &'a [String]) -> Tags<'a> {
        Tags {
            repr: TagsRepr::Owned(tags),
        }
    }

    /// Tags over a checked tag section (see [`TagsRepr::Encoded`]).
    pub(crate) fn encoded(section: &'a [u8]) -> Tags<'a> {
        Tags {
            repr: TagsRepr::Encoded(section),
        }
    }

    /// The tags, in the order they were appended.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (encoded, owned): (&'a [u8], &'a [String]) = match self.repr {
            TagsRepr::Encoded(b) => (b, &[]),
            TagsRepr::Owned(o) => (&[], o),
        };
        EncodedTags { rest: encoded }.chain(owned.iter().map(String::as_str))
    }

    /// Whether it holds `tag`.
    pub fn contains(&self, tag: &str) -> bool {
        self.iter().any(|t| t == tag)
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        match self.repr {
            TagsRepr::Encoded(b) => EncodedTags { rest: b }.count(),
            TagsRepr::Owned(o) => o.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        match self.repr {
            TagsRepr::Encoded(b) => b.is_empty(),
            TagsRepr::Owned(o) => o.is_empty(),
        }
    }

    /// Owned copies.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl std::fmt::Debug for Tags<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Tags<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Tags<'_> {}

/// Walks a checked tag section. Stops at the end or at anything malformed (which a checked
/// section never holds).
struct EncodedTags<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EncodedTags<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let (&len, rest) = self.rest.split_first()?;
        let Some(tag) = rest.get(..len as usize) else {
            self.rest = &[];
            return None;
        };
        self.rest = &rest[len as usize..];
        // Checked when decoded; a failure cannot happen and ends the walk.
        std::str::from_utf8(tag).ok()
    }
}

/// One stream's part of an atomic multi-stream append
/// ([`Store::append_multi`](crate::Store::append_multi)): the stream, its expected version
/// (as KurrentDB's expected revision) and its events.
///
/// ```
/// use evstore::{ExpectedVersion, NewEvent, StreamAppend};
/// let part = StreamAppend::new("order-1", ExpectedVersion::Exact(3), vec![NewEvent::new("Paid", b"{}".to_vec())]);
/// assert_eq!(part.stream, "order-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream: 1..=255 bytes of UTF-8.
    pub stream: String,
    /// The check its version must pass.
    pub expected: ExpectedVersion,
    /// Its events (at least one).
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// A part appending `events` to `stream` if its version matches `expected`.
    pub fn new(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamAppend {
        StreamAppend {
            stream: stream.to_string(),
            expected,
            events,
        }
    }
}

/// Where an append's events landed: inclusive ranges of stream versions and of global
/// positions (an append of `n` events spans `n` of each). An idempotent retry gets the
/// original append's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AppendResult {
    /// Stream version of the first event appended.
    pub first_version: u64,
    /// Stream version of the last event appended.
    pub last_version: u64,
    /// Global position of the first event appended.
    pub first_position: u64,
    /// Global position of the last event appended.
    pub last_position: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn new_event_ids_are_unique_version_4_rfc_ids_across_threads() {
        let per_thread = 200_000;
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread).map(|_| new_event_id()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut prefixes = HashSet::new();
        for h in handles {
            let ids = h.join().expect("id thread");
            prefixes.insert(ids[0].as_u64_pair().0);
            for id in ids {
                assert_eq!(id.get_version_num(), 4, "{id}");
                assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
                assert!(seen.insert(id), "repeated id {id}");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
        assert_eq!(prefixes.len(), 4, "each thread draws its own prefix");
    }
}
