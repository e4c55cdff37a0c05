//! Input limits: the file store's own rules ([`evstore::limits`], same
//! [`Error::InvalidInput`] wording), plus one that PostgreSQL imposes: `text` cannot hold
//! U+0000, so a stream id, event type or tag containing it is refused here with a clear error
//! rather than by the server.

use evstore::limits::{self, MAX_EVENTS_PER_APPEND as MAX_EVENTS_PER_BATCH};
use evstore::{Error, NewEvent, Query, Result, StreamAppend};
/// Most bytes of data, metadata and names in one append: the file store's default segment size
/// ([`evstore::DEFAULT_SEGMENT_SIZE`], 64 MiB), the most a default file store accepts in one
/// batch, so a batch one backend takes the other takes too.
pub const MAX_BATCH_BYTES: u64 = evstore::DEFAULT_SEGMENT_SIZE;

/// `Err(InvalidInput)` unless `name` (a stream id or event type, `what` says which) is 1 to
/// 255 bytes long.
pub(crate) fn name(name: &str, what: &str) -> Result<()> {
    limits::check_name(name, what)?;
    no_nul(name, what)
}

/// `Err(InvalidInput)` if `s` holds U+0000, which PostgreSQL `text` cannot store.
fn no_nul(s: &str, what: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "{what} {s:?} contains U+0000, which PostgreSQL text cannot hold"
        )));
    }
    Ok(())
}

/// `Err(InvalidInput)` unless `tags` pass [`limits::check_tags`] and hold no U+0000.
pub(crate) fn tags(tags: &[String]) -> Result<()> {
    limits::check_tags(tags)?;
    tags.iter().try_for_each(|t| no_nul(t, "tag"))
}

/// The checks of a query ([`Query::validate`], the file store's limits) plus U+0000 in its
/// names.
pub(crate) fn query(query: &Query) -> Result<()> {
    query.validate()?;
    for item in query.items() {
        for t in item.types() {
            no_nul(t, "a query's event type")?;
        }
        for t in item.tags() {
            no_nul(t, "a query's tag")?;
        }
    }
    Ok(())
}

/// The checks of a multi-stream append (the file store's `encode_multi`): at least one part,
/// distinct streams, each part a valid append, and all parts together within
/// [`MAX_BATCH_BYTES`].
pub(crate) fn multi(appends: &[StreamAppend]) -> Result<()> {
    limits::check_multi(appends)?;
    let mut size = 0u64;
    let mut events = 0usize;
    for a in appends {
        size = size.saturating_add(append(&a.stream, &a.events)?);
        events += a.events.len();
        if size > MAX_BATCH_BYTES {
            return Err(Error::InvalidInput(format!(
                "append of {events} events needs {size} bytes, more than a batch holds ({MAX_BATCH_BYTES} bytes)"
            )));
        }
    }
    Ok(())
}

/// The checks of an append before anything is sent: the stream id, a batch of 1 to
/// [`MAX_EVENTS_PER_BATCH`] events, each type and its tags, and the total size. Returns the
/// size (names, data, metadata, tags and 16 bytes per event).
pub(crate) fn append(stream: &str, events: &[NewEvent]) -> Result<u64> {
    name(stream, "stream id")?;
    if events.is_empty() {
        return Err(Error::InvalidInput(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(Error::InvalidInput(format!(
            "an append holds at most {MAX_EVENTS_PER_BATCH} events, got {}",
            events.len()
        )));
    }
    let mut size = stream.len() as u64;
    for e in events {
        name(&e.event_type, "event type")?;
        tags(&e.tags)?;
        let tag_bytes: u64 = e.tags.iter().map(|t| 1 + t.len() as u64).sum();
        size = size
            .saturating_add(16 + e.event_type.len() as u64)
            .saturating_add(tag_bytes)
            .saturating_add(e.data.len() as u64)
            .saturating_add(e.metadata.len() as u64);
    }
    if size > MAX_BATCH_BYTES {
        return Err(Error::InvalidInput(format!(
            "append of {} events needs {size} bytes, more than a batch holds ({MAX_BATCH_BYTES} bytes)",
            events.len()
        )));
    }
    Ok(size)
}
