//! Importing events with the positions, versions and times another store recorded for them
//! (`evstore copy` into a log file): appends whose place and stamp are given, not assigned.

use super::commit::ImportAt;
use super::Store;
use crate::error::{Error, Result};
use crate::types::{ExpectedVersion, NewEvent, RecordedEvent};

impl Store {
    /// Append `events`, read from another store (a log file or another backend), so that each
    /// keeps its event id, stream, version, position, `recorded_at`, type, data and metadata:
    /// what `evstore copy` does into a log file. `events` must continue this store exactly:
    /// positions consecutive from the store's next one, each stream's versions from its next
    /// one, `recorded_at` never earlier than the store's last (kept to the microsecond, the
    /// log's precision). Consecutive events of one stream with one `recorded_at` and
    /// consecutive versions become one batch, appended atomically; each batch is durable as an
    /// [`Store::append`] is (call [`Store::flush`] after importing into a `Buffered` store).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when an event does not continue the store as above, or is
    /// already in it (that batch is not written; the batches before it are); the errors of
    /// [`Store::append`], e.g. [`Error::WrongExpectedVersion`] when a stream's version does
    /// not continue.
    pub fn import(&self, events: &[RecordedEvent]) -> Result<()> {
        let mut rest = events;
        // Bounded: every round takes at least one event.
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .enumerate()
                .take_while(|(i, e)| {
                    e.stream_id == first.stream_id
                        && e.recorded_at == first.recorded_at
                        && e.version == first.version.saturating_add(*i as u64)
                        && e.position == first.position.saturating_add(*i as u64)
                })
                .count()
                .min(crate::log::frame::MAX_EVENTS_PER_BATCH);
            let (batch, tail) = rest.split_at(n.max(1));
            self.import_batch(batch)?;
            rest = tail;
        }
        Ok(())
    }

    /// One batch of [`Store::import`]: one stream, consecutive versions and positions, one
    /// stamp.
    fn import_batch(&self, batch: &[RecordedEvent]) -> Result<()> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let expected = match first.version.checked_sub(1) {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        let events: Vec<NewEvent> = batch
            .iter()
            .map(|e| NewEvent {
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                data: e.data.clone(),
                metadata: e.metadata.clone(),
                tags: e.tags.clone(),
            })
            .collect();
        let at = ImportAt {
            position: first.position,
            stamp_us: first.recorded_at.timestamp_micros(),
        };
        let r = self.append_at(&first.stream_id, expected, &events, Some(at))?;
        if r.first_position != first.position || r.first_version != first.version {
            return Err(Error::Internal(format!(
                "import: stream {:?} landed at version {} position {}, not {} {}",
                first.stream_id, r.first_version, r.first_position, first.version, first.position
            )));
        }
        Ok(())
    }
}
