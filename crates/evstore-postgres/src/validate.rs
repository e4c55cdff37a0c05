//! Input limits: the file store's, replicated (its validation is private to
//! `evstore::store`). Same rules, same [`Error::InvalidInput`] wording.

use evstore::{Error, NewEvent, Result};

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
    Ok(())
}

/// The checks of an append before anything is sent: the stream id, a batch of 1 to
/// [`MAX_EVENTS_PER_BATCH`] events, each type, and the total size.
pub(crate) fn append(stream: &str, events: &[NewEvent]) -> Result<()> {
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
        size = size
            .saturating_add(16 + e.event_type.len() as u64)
            .saturating_add(e.data.len() as u64)
            .saturating_add(e.metadata.len() as u64);
    }
    if size > MAX_BATCH_BYTES {
        return Err(Error::InvalidInput(format!(
            "append of {} events needs {size} bytes, more than a batch holds ({MAX_BATCH_BYTES} bytes)",
            events.len()
        )));
    }
    Ok(())
}
