//! Scanning the log on open, the torn-tail vs corruption verdict (docs/FORMAT.md §4–§5), and
//! decoding events at index locations.

use std::sync::Arc;

use chrono::DateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::log::frame::{self, FrameError, Location, FRAME_ALIGN, FRAME_HEADER_SIZE};
use crate::log::segment::{FileHeader, Segment};
use crate::types::{EventView, RecordedEvent};

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Segment where the next frame goes.
    pub end_segment: u64,
    /// Offset inside `end_segment` where the next frame goes.
    pub end_offset: u64,
    /// Seq of the next frame.
    pub next_seq: u64,
    /// Largest `durable_seq` claimed by a valid frame (0 if none).
    pub proven_durable_seq: u64,
    /// Seq of the last frame that holds events (not a seal), if any.
    pub last_data_seq: Option<u64>,
    /// Valid frames found.
    pub frames: u64,
    /// Bytes of valid frames (padding included).
    pub frame_bytes: u64,
    /// The first non-zero byte after the end of the log, if any: a torn tail to trim.
    pub torn_at: Option<(u64, u64)>,
    /// Why the frame at the end position was rejected (when there were bytes there).
    pub torn_reason: Option<String>,
    /// Events in the valid frames (those before the end, or before the damage).
    pub events: u64,
    /// Streams in the valid frames.
    pub streams: u64,
    /// Damage the scan proved (docs/FORMAT.md §5) or a checked frame with invalid content:
    /// `end_segment`/`end_offset` and the counts then describe the valid frames before it, and
    /// `torn_at` is `None`. A store refuses to open such a log.
    pub damage: Option<Damage>,
}

/// Where a log is damaged and how (the fields of [`Error::Corruption`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub segment: u64,
    pub offset: u64,
    pub what: String,
}

impl Damage {
    /// As the error `Store::open` returns.
    pub fn into_error(self) -> Error {
        Error::corruption(self.segment, self.offset, self.what)
    }
}

/// What the scan may ask of the file it reads: which ranges after the end of the log are
/// known to be zeros without reading them (holes and unwritten, preallocated extents), and
/// read-ahead of the segments it is about to scan.
///
/// Skipping known zeros keeps the recovery verdict from faulting in the preallocated,
/// never-written rest of the active segment: reading it costs tens of milliseconds per open
/// and fills the page cache over the space later appends write into (docs/PERFORMANCE.md,
/// "The unwritten tail"). The defaults ("maybe data everywhere", no read-ahead) are always
/// correct; they only mean "read to find out".
pub(crate) trait ScanHints {
    /// An offset `>=` `offset` in segment `segment` before which every byte from `offset` on
    /// is zero; `u64::MAX` when the rest of the file is.
    fn next_data(&self, _segment: u64, offset: u64) -> u64 {
        offset
    }
    /// An offset `>` `offset` (for `offset` inside a data run) where the run of possible data
    /// starting at `offset` ends; `u64::MAX` when unknown.
    fn next_hole(&self, _segment: u64, _offset: u64) -> u64 {
        u64::MAX
    }
    /// The scan is about to read segment `segment` (called one segment ahead).
    fn will_scan(&self, _segment: u64) {}
}

/// No hints: every byte is read, nothing is prefetched.
#[cfg(test)]
pub(crate) struct ReadEverything;

#[cfg(test)]
impl ScanHints for ReadEverything {}

/// Hints from the file system (`lseek` `SEEK_DATA` / `SEEK_HOLE`) and read-ahead of the log
/// data of the next segment through its map ([`segment::prefetch_for_scan`]).
///
/// [`segment::prefetch_for_scan`]: crate::log::segment::prefetch_for_scan
pub(crate) struct FileHints<'a> {
    pub file: &'a std::fs::File,
    pub header: &'a FileHeader,
    pub maps: &'a [Arc<Segment>],
}

impl ScanHints for FileHints<'_> {
    fn next_data(&self, segment: u64, offset: u64) -> u64 {
        let at = self.header.segment_start(segment).saturating_add(offset);
        crate::log::segment::next_data(self.file, at)
            .map_or(u64::MAX, |d| offset.saturating_add(d - at))
    }
    fn next_hole(&self, segment: u64, offset: u64) -> u64 {
        let at = self.header.segment_start(segment).saturating_add(offset);
        let hole = crate::log::segment::next_hole(self.file, at);
        offset.saturating_add(hole.saturating_sub(at))
    }
    fn will_scan(&self, segment: u64) {
        if let Some(seg) = self.maps.get(segment as usize) {
            crate::log::segment::prefetch_for_scan(self.file, self.header, segment, seg);
        }
    }
}

/// Scan `segments` (segment `k` is `segments[k]`; the last may be shorter than the segment
/// size), feeding every valid frame body to `index`. Returns the outcome, or
/// [`Error::Corruption`] when damage is proven durable or a checked frame is malformed (see
/// [`scan_report`] for the counts before the damage).
pub(crate) fn scan(
    header: &FileHeader,
    segments: &[&[u8]],
    index: &mut Index,
    hints: &dyn ScanHints,
) -> Result<ScanOutcome> {
    let mut outcome = scan_report(header, segments, index, hints);
    match outcome.damage.take() {
        Some(d) => Err(d.into_error()),
        None => Ok(outcome),
    }
}

/// The scan of [`scan`], which always reports what it found: on damage, `damage` is set and
/// the rest of the outcome describes the valid frames before it (the verdict of `verify`
/// comes from this one pass). `index` may then also hold part of the damaged frame; use the
/// outcome's counts, not the index's.
///
/// `hints` lets the verdict skip ranges after the end that are known to be zero, and reads
/// ahead one segment in front of the scan.
pub(crate) fn scan_report(
    header: &FileHeader,
    segments: &[&[u8]],
    index: &mut Index,
    hints: &dyn ScanHints,
) -> ScanOutcome {
    let seg_size = header.segment_size;
    let mut k: usize = 0;
    let mut off: u64 = 0;
    let mut seq: u64 = 0;
    let mut proven: u64 = 0;
    let mut last_data_seq = None;
    let mut frames: u64 = 0;
    let mut frame_bytes: u64 = 0;
    let mut torn_reason = None;
    let mut damage = None;
    // The counts of the valid frames so far (the index may take part of a frame it refuses).
    let mut events = index.len();
    let mut streams = index.stream_count() as u64;
    hints.will_scan(0);
    hints.will_scan(1);
    // Every iteration consumes one valid frame (off grows by >= 24 bytes) or moves to the next
    // segment, so the loop is bounded by the file size.
    while k < segments.len() {
        let seg = segments[k];
        let rest = seg.get(off as usize..).unwrap_or(&[]);
        match frame::check_frame(rest, &header.file_id, seq) {
            Ok((h, body)) => {
                let body_file_offset =
                    header.segment_start(k as u64) + off + FRAME_HEADER_SIZE as u64;
                if let Err(e) = index.add_frame(body, body_file_offset) {
                    damage = Some(Damage {
                        segment: k as u64,
                        offset: off,
                        what: format!(
                            "frame {seq}: batch at body offset {}: {}",
                            e.body_offset, e.what
                        ),
                    });
                    break;
                }
                events = index.len();
                streams = index.stream_count() as u64;
                proven = proven.max(h.durable_seq());
                if h.body_len > 0 {
                    last_data_seq = Some(seq);
                }
                off += h.size();
                frame_bytes += h.size();
                seq += 1;
                frames += 1;
            }
            Err(first_err) => {
                // Did the writer move on to the next segment because the frame did not fit?
                if let Some(next) = segments.get(k + 1) {
                    if let Ok((h, _)) = frame::check_frame(next, &header.file_id, seq) {
                        if h.size() > seg_size - off {
                            if let Some(nz) = first_nonzero(rest) {
                                damage = Some(Damage {
                                    segment: k as u64,
                                    offset: off + nz,
                                    what: format!(
                                        "unexpected bytes before the segment switch to frame {seq}"
                                    ),
                                });
                                break;
                            }
                            k += 1;
                            off = 0;
                            hints.will_scan(k as u64 + 1);
                            continue;
                        }
                    }
                }
                if first_nonzero(rest.get(..FRAME_HEADER_SIZE.min(rest.len())).unwrap_or(&[]))
                    .is_some()
                {
                    torn_reason = Some(first_err.to_string());
                }
                break;
            }
        }
    }
    let (end_segment, end_offset) = if k >= segments.len() {
        // Ran off the last segment while skipping: cannot happen (skip needs a next segment),
        // but stay in range: the end is the end of the last segment.
        (segments.len().saturating_sub(1) as u64, seg_size)
    } else {
        (k as u64, off)
    };
    let mut torn_at = None;
    if damage.is_none() {
        match verdict(header, segments, end_segment, end_offset, seq, hints) {
            Ok(t) => torn_at = t,
            Err(d) => damage = Some(d),
        }
    }
    if torn_at.is_none() {
        torn_reason = None;
    }
    ScanOutcome {
        end_segment,
        end_offset,
        next_seq: seq,
        proven_durable_seq: proven,
        last_data_seq,
        frames,
        frame_bytes,
        torn_at,
        torn_reason,
        events,
        streams,
        damage,
    }
}

/// Offset of the first non-zero byte.
fn first_nonzero(b: &[u8]) -> Option<u64> {
    let mut chunks = b.chunks_exact(8);
    let mut at = 0u64;
    for c in &mut chunks {
        if u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) != 0 {
            let i = c.iter().position(|&x| x != 0).unwrap_or(0);
            return Some(at + i as u64);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x != 0)
        .map(|i| at + i as u64)
}

/// The recovery verdict for the bytes after the end of the log at (`k`, `off`), where frame
/// `next_seq` would go: `Ok(None)` when they are all zero, `Ok(Some(first non-zero))` for a
/// torn tail to trim, `Err(damage at (k, off))` when a later frame proves frame `next_seq`
/// durable.
fn verdict(
    header: &FileHeader,
    segments: &[&[u8]],
    k: u64,
    off: u64,
    next_seq: u64,
    hints: &dyn ScanHints,
) -> std::result::Result<Option<(u64, u64)>, Damage> {
    let mut first_garbage: Option<(u64, u64)> = None;
    // The number of frames that could possibly follow bounds a plausible seq.
    let remaining_bytes: u64 = segments
        .iter()
        .enumerate()
        .skip(k as usize)
        .map(|(j, s)| {
            let start = if j as u64 == k { off } else { 0 };
            (s.len() as u64).saturating_sub(start)
        })
        .sum();
    let max_plausible_seq = next_seq.saturating_add(remaining_bytes / FRAME_HEADER_SIZE as u64 + 1);
    for (j, seg) in segments.iter().enumerate().skip(k as usize) {
        let start = if j as u64 == k { off as usize } else { 0 };
        let mut p = start;
        // Every iteration moves `p` forward (past a run of zeros, or past a hit), so the loop
        // is bounded by the segment length.
        while p < seg.len() {
            let data = usize::try_from(hints.next_data(j as u64, p as u64)).unwrap_or(usize::MAX);
            p = data.clamp(p, seg.len());
            if p >= seg.len() {
                break;
            }
            // Look for non-zero bytes only up to the end of this run of possible data.
            let run_end = usize::try_from(hints.next_hole(j as u64, p as u64))
                .unwrap_or(usize::MAX)
                .clamp(p + 1, seg.len());
            let Some(nz) = first_nonzero(&seg[p..run_end]) else {
                p = run_end;
                continue;
            };
            let hit = p + nz as usize;
            if first_garbage.is_none() {
                first_garbage = Some((j as u64, hit as u64));
            }
            // Check every aligned offset from the first that could hold a header covering the
            // non-zero byte (a header's first 16 bytes may be zero) until the next zero word.
            let mut q = (hit - hit % FRAME_ALIGN).saturating_sub(16).max(p);
            while q < seg.len() {
                let rest = &seg[q..];
                if rest.len() >= FRAME_HEADER_SIZE {
                    if let Ok(h) = frame::decode_frame_header(rest, &header.file_id) {
                        if h.seq > next_seq
                            && h.seq <= max_plausible_seq
                            && h.durable_seq() > next_seq
                        {
                            return Err(Damage {
                                segment: k,
                                offset: off,
                                what: format!(
                                    "frame {next_seq} is damaged or missing, but frame {} (segment {j}, offset {q}) proves frames before {} were durable",
                                    h.seq,
                                    h.durable_seq()
                                ),
                            });
                        }
                    }
                }
                q += FRAME_ALIGN;
                // Stop at the next aligned all-zero word past the hit: the outer loop skips zero
                // runs fast. `q > hit` guarantees progress.
                if q > hit && seg.get(q..q + 8).is_some_and(|w| w.iter().all(|&x| x == 0)) {
                    break;
                }
            }
            p = q;
        }
    }
    Ok(first_garbage)
}

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
pub struct EventReader {
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
    pub fn new(header: FileHeader, segments: Arc<Vec<Arc<Segment>>>) -> EventReader {
        EventReader {
            header,
            segments,
            cache: None,
        }
    }

    /// Swap in a newer segment snapshot (after the file grew).
    pub fn refresh(&mut self, segments: Arc<Vec<Arc<Segment>>>) {
        self.segments = segments;
    }

    /// Read-ahead hint for a sequential pass from `first` to `last` (in log order): asks for
    /// the pages from the batch of `first` to the batch of `last`, segment by segment. Only
    /// bytes of published batches are named, never the unwritten tail.
    pub fn will_need(&self, first: Location, last: Location) {
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
            let ev = frame::decode_event(bytes.get(c.next_byte..).unwrap_or(&[]))
                .map_err(|e| self.corrupt(c.batch_offset, e))?;
            c.next_byte += ev.size;
            c.next_index += 1;
        }
        self.cache = Some(c);
        Ok(())
    }

    /// The batch timestamp of the event at `loc`, in µs.
    pub fn recorded_at_us(&mut self, loc: Location) -> Result<i64> {
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
    pub fn event_id(&mut self, loc: Location) -> Result<Uuid> {
        self.position_cursor(loc)?;
        let Some(c) = &self.cache else {
            unreachable!("cursor positioned");
        };
        let bytes = self.batch_bytes(c.batch_offset)?;
        let ev = frame::decode_event(bytes.get(c.next_byte..).unwrap_or(&[]))
            .map_err(|e| self.corrupt(c.batch_offset, e))?;
        Ok(Uuid::from_bytes(ev.event_id))
    }

    /// Decode the event at `loc`, which has global `position`.
    pub fn read(&mut self, loc: Location, position: u64) -> Result<RecordedEvent> {
        self.view(loc, position).map(|v| v.to_recorded())
    }

    /// The event at `loc` (global `position`), borrowed from the maps: nothing is copied.
    pub fn view(&mut self, loc: Location, position: u64) -> Result<EventView<'_>> {
        self.position_cursor(loc)?;
        let Some(c) = self.cache.as_mut() else {
            unreachable!("cursor positioned");
        };
        // Field by field, not through `&self` methods: the view borrows the cursor's name and
        // the segment bytes at once.
        let bytes = batch_bytes(&self.header, &self.segments, c.batch_offset)?;
        let (k, off) = self.header.split(c.batch_offset);
        let corrupt = |e: FrameError| Error::corruption(k, off, e.to_string());
        let ev = frame::decode_event(bytes.get(c.next_byte..).unwrap_or(&[])).map_err(corrupt)?;
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data runs `[start, end)` of segment 0; everything else is declared zero.
    struct Runs(Vec<(u64, u64)>);

    impl ScanHints for Runs {
        fn next_data(&self, _segment: u64, offset: u64) -> u64 {
            self.0
                .iter()
                .find(|&&(_, end)| offset < end)
                .map_or(u64::MAX, |&(start, _)| offset.max(start))
        }
        fn next_hole(&self, _segment: u64, offset: u64) -> u64 {
            self.0
                .iter()
                .find(|&&(start, end)| (start..end).contains(&offset))
                .map_or(offset, |&(_, end)| end)
        }
    }

    const SEG: usize = 64 * 1024;

    fn torn_at(seg: &[u8], zeros: &dyn ScanHints) -> Option<(u64, u64)> {
        let header = FileHeader::new(SEG as u64);
        let out = scan(&header, &[seg], &mut Index::default(), zeros).expect("no proof of damage");
        assert_eq!((out.end_segment, out.end_offset), (0, 0), "an empty log");
        out.torn_at
    }

    #[test]
    fn verdict_reads_data_runs_and_skips_declared_zeros() {
        let mut seg = vec![0u8; SEG];
        seg[8192] = 0xFF; // in a range the file system calls a hole
        seg[40_000] = 0xAB; // inside a data run
                            // Without knowledge, the first non-zero byte is the torn tail.
        assert_eq!(torn_at(&seg, &ReadEverything), Some((0, 8192)));
        // With it, the hole is never read and the byte in the data run is found.
        assert_eq!(
            torn_at(&seg, &Runs(vec![(32_768, 49_152)])),
            Some((0, 40_000))
        );
        // Several runs: zeros in the first, the hit in the second.
        assert_eq!(
            torn_at(&seg, &Runs(vec![(0, 4096), (36_864, 45_056)])),
            Some((0, 40_000))
        );
        // Only zeros where data may be: nothing to trim.
        assert_eq!(torn_at(&seg, &Runs(vec![(12_288, 16_384)])), None);
        assert_eq!(torn_at(&seg, &Runs(vec![])), None);
    }
}
