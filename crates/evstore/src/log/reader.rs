//! Decoding events at index locations: [`EventReader`], through the segment maps, with a
//! cursor that makes walking a batch's events in order O(1) per event. (The scan on open is
//! in [`super::recovery`].)

use std::sync::Arc;

use chrono::DateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::log::frame::{self, FrameError, Location};
use crate::log::segment::{FileHeader, Segment};
use crate::types::{EventView, RecordedEvent, Tags};

/// The bytes of the batch at file offset `batch_offset` to the end of its segment.
fn batch_bytes<'a>(
    header: &FileHeader,
    segments: &'a [Arc<Segment>],
    batch_offset: u64,
) -> Result<&'a [u8]> {
    let (k, off) = header.split(batch_offset);
    // Both are in-memory inconsistencies (the index and the segment table disagree), not
    // damage in the file.
    let seg = segments.get(k as usize).ok_or_else(|| {
        Error::Internal(format!(
            "the index points at segment {k} offset {off}, past the mapped segments"
        ))
    })?;
    seg.bytes().get(off as usize..).ok_or_else(|| {
        Error::Internal(format!(
            "the index points at segment {k} offset {off}, past the segment end"
        ))
    })
}

/// Decodes events at index [`Location`]s. Remembers the last batch it decoded, so walking a
/// batch's events in order costs O(1) per event.
pub(crate) struct EventReader {
    header: FileHeader,
    segments: Arc<Vec<Arc<Segment>>>,
    cache: Option<BatchCursor>,
}

#[derive(Clone)]
struct BatchCursor {
    batch_offset: u64,
    next_index: u32,
    /// Offset of event `next_index`, relative to the batch start.
    next_byte: usize,
    event_count: u32,
    first_version: u64,
    recorded_at_us: i64,
    stream: String,
}

impl EventReader {
    /// A reader of the log with header `header` through `segments` (segment `k` is
    /// `segments[k]`), a snapshot of the store's segment table.
    pub(crate) fn new(header: FileHeader, segments: Arc<Vec<Arc<Segment>>>) -> EventReader {
        EventReader {
            header,
            segments,
            cache: None,
        }
    }

    /// Swap in a newer segment snapshot (after the file grew).
    pub(crate) fn refresh(&mut self, segments: Arc<Vec<Arc<Segment>>>) {
        self.segments = segments;
    }

    /// Read-ahead hint for a sequential pass from `first` to `last` (in log order): asks for
    /// the pages from the batch of `first` to the batch of `last`, segment by segment. Only
    /// bytes of published batches are named, never the unwritten tail.
    pub(crate) fn will_need(&self, first: Location, last: Location) {
        let (k0, off0) = self.header.split(first.batch_offset());
        let (k1, off1) = self.header.split(last.batch_offset());
        // Bounded by the number of mapped segments.
        for k in k0..=k1.min(self.segments.len().saturating_sub(1) as u64) {
            let Some(seg) = self.segments.get(k as usize) else {
                break;
            };
            let from = if k == k0 { off0 } else { 0 };
            // The last batch's header: a page past its start covers it and most of its events.
            let to = if k == k1 {
                off1 + 1
            } else {
                self.header.segment_size
            };
            seg.will_need(from, to.saturating_sub(from));
        }
    }

    fn batch_bytes(&self, batch_offset: u64) -> Result<&[u8]> {
        batch_bytes(&self.header, &self.segments, batch_offset)
    }

    /// The bytes at a location the index holds no longer decode. They were checked when they
    /// were indexed (on open, or as the writer's own bytes), so the file changed under the map
    /// since: damage in the file (bit rot read back after eviction, a process that ignored the
    /// lock), reported at the batch's segment and offset.
    fn corrupt(&self, offset: u64, e: FrameError) -> Error {
        let (k, off) = self.header.split(offset);
        Error::corruption(k, off, e.to_string())
    }

    fn position_cursor(&mut self, loc: Location) -> Result<()> {
        let index = loc.index_in_batch();
        let reuse = matches!(&self.cache, Some(c) if c.batch_offset == loc.batch_offset() && c.next_index <= index);
        if !reuse {
            let bo = loc.batch_offset();
            // Reuse the previous cursor's name buffer: no allocation per batch.
            let mut stream = self.cache.take().map(|c| c.stream).unwrap_or_default();
            let bytes = self.batch_bytes(bo)?;
            let h = frame::decode_batch_header(bytes).map_err(|e| self.corrupt(bo, e))?;
            stream.clear();
            stream.push_str(h.stream);
            self.cache = Some(BatchCursor {
                batch_offset: bo,
                next_index: 0,
                next_byte: h.events_offset,
                event_count: h.event_count,
                first_version: h.first_version,
                recorded_at_us: h.recorded_at_us,
                stream,
            });
        }
        let Some(mut c) = self.cache.take() else {
            unreachable!("cursor was just set");
        };
        if index >= c.event_count {
            return Err(self.corrupt(
                c.batch_offset,
                FrameError::Malformed("event index beyond the batch"),
            ));
        }
        // Bounded by the batch's event count.
        while c.next_index < index {
            let bytes = self.batch_bytes(c.batch_offset)?;
            let ev = frame::decode_event(
                bytes.get(c.next_byte..).unwrap_or(&[]),
                self.header.layout(),
            )
            .map_err(|e| self.corrupt(c.batch_offset, e))?;
            c.next_byte += ev.size;
            c.next_index += 1;
        }
        self.cache = Some(c);
        Ok(())
    }

    /// The batch timestamp of the event at `loc`, in µs.
    pub(crate) fn recorded_at_us(&mut self, loc: Location) -> Result<i64> {
        let bo = loc.batch_offset();
        if let Some(c) = &self.cache {
            if c.batch_offset == bo {
                return Ok(c.recorded_at_us);
            }
        }
        let bytes = self.batch_bytes(bo)?;
        let h = frame::decode_batch_header(bytes).map_err(|e| self.corrupt(bo, e))?;
        Ok(h.recorded_at_us)
    }

    /// The event id at `loc`.
    pub(crate) fn event_id(&mut self, loc: Location) -> Result<Uuid> {
        self.position_cursor(loc)?;
        let Some(c) = &self.cache else {
            unreachable!("cursor positioned");
        };
        let bytes = self.batch_bytes(c.batch_offset)?;
        let ev = frame::decode_event(
            bytes.get(c.next_byte..).unwrap_or(&[]),
            self.header.layout(),
        )
        .map_err(|e| self.corrupt(c.batch_offset, e))?;
        Ok(Uuid::from_bytes(ev.event_id))
    }

    /// Decode the event at `loc`, which has global `position`.
    pub(crate) fn read(&mut self, loc: Location, position: u64) -> Result<RecordedEvent> {
        self.view(loc, position).map(|v| v.to_recorded())
    }

    /// The event at `loc` (global `position`), borrowed from the maps: nothing is copied.
    pub(crate) fn view(&mut self, loc: Location, position: u64) -> Result<EventView<'_>> {
        self.position_cursor(loc)?;
        let Some(c) = self.cache.as_mut() else {
            unreachable!("cursor positioned");
        };
        // Field by field, not through `&self` methods: the view borrows the cursor's name and
        // the segment bytes at once.
        let bytes = batch_bytes(&self.header, &self.segments, c.batch_offset)?;
        let (k, off) = self.header.split(c.batch_offset);
        let corrupt = |e: FrameError| Error::corruption(k, off, e.to_string());
        let layout = self.header.layout();
        let ev = frame::decode_event(bytes.get(c.next_byte..).unwrap_or(&[]), layout)
            .map_err(corrupt)?;
        let recorded_at = DateTime::from_timestamp_micros(c.recorded_at_us)
            .ok_or_else(|| corrupt(FrameError::Malformed("timestamp out of range")))?;
        let version = c.first_version + u64::from(c.next_index);
        c.next_byte += ev.size;
        c.next_index += 1;
        Ok(EventView {
            event_id: Uuid::from_bytes(ev.event_id),
            stream_id: &c.stream,
            event_type: ev.event_type,
            version,
            position,
            recorded_at,
            data: ev.data,
            metadata: ev.metadata,
            tags: Tags::encoded(ev.tags),
        })
    }
}
