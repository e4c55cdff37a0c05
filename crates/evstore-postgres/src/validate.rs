//! Input limits: the file store's, replicated (its validation is private to
//! `evstore::store`). Same rules, same [`Error::InvalidInput`] wording. One addition that
//! PostgreSQL imposes: `text` cannot hold U+0000, so a stream id, event type or tag containing
//! it is refused here with a clear error rather than by the server.

use evstore::{Error, NewEvent, Query, Result, StreamAppend, MAX_TAGS_PER_EVENT};

/// Longest stream id or event type in bytes (the file store's `MAX_NAME_LEN`).
pub const MAX_NAME_LEN: usize = 255;
/// Most events in one append (the file store's `MAX_EVENTS_PER_BATCH`).
pub const MAX_EVENTS_PER_BATCH: usize = (1 << 20) - 1;
/// Most bytes of data, metadata and names in one append: the file store's default segment size
/// ([`evstore::DEFAULT_SEGMENT_SIZE`], 64 MiB), the most a default file store accepts in one
/// batch, so a batch one backend takes the other takes too.
pub const MAX_BATCH_BYTES: u64 = evstore::DEFAULT_SEGMENT_SIZE;

/// `Err(InvalidInput)` unless `name` (a stream id or event type, `what` says which) is 1 to
/// 255 bytes long.
pub(crate) fn name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "{what} must be 1..={MAX_NAME_LEN} bytes of UTF-8, got {} bytes",
            name.len()
        )));
    }
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

/// `Err(InvalidInput)` unless `tag` is 1 to 255 bytes (the file store's `validate_tag`).
pub(crate) fn tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "a tag must be 1..={MAX_NAME_LEN} bytes of UTF-8, got {} bytes",
            tag.len()
        )));
    }
    no_nul(tag, "tag")
}

/// `Err(InvalidInput)` unless `tags` are valid tags, distinct, and at most
/// [`MAX_TAGS_PER_EVENT`] (the file store's `validate_tags`).
pub(crate) fn tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS_PER_EVENT {
        return Err(Error::InvalidInput(format!(
            "an event carries at most {MAX_TAGS_PER_EVENT} tags, got {}",
            tags.len()
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        tag(t)?;
        if tags[..i].contains(t) {
            return Err(Error::InvalidInput(format!(
                "tag {t:?} appears twice on one event"
            )));
        }
    }
    Ok(())
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
    if appends.is_empty() {
        return Err(Error::InvalidInput(
            "a multi-stream append needs at least one stream".into(),
        ));
    }
    for (i, a) in appends.iter().enumerate() {
        if appends[..i].iter().any(|b| b.stream == a.stream) {
            return Err(Error::InvalidInput(format!(
                "stream {:?} appears twice in one multi-stream append",
                a.stream
            )));
        }
    }
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
