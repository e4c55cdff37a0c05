//! Appending frames: laying batches out into frames and segments, growing the file, writing
//! with `pwrite`, and syncing (docs/FORMAT.md §3, §5).
//!
//! The writer is driven by the store's group-commit leader: one call to
//! [`LogWriter::write_batches`] writes every batch queued since the last call (from any number
//! of appending threads) as one or more frames, then the leader syncs once for all of them.
//! The writer never retries a failed write or sync; the store poisons itself instead.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::log::file;
use crate::log::frame::{self, FRAME_HEADER_SIZE};
use crate::log::head::{HeadPublisher, HeadRecord};
use crate::log::segment::{FileHeader, SegmentTable};
use crate::log::space;

/// The file operations the writer performs. A narrow seam so tests can inject faults (EIO,
/// ENOSPC, short writes) or record I/O to simulate power loss.
pub trait LogIo: Send + Sync {
    /// Write all of `buf` at `offset` (`pwrite`).
    ///
    /// # Errors
    /// The write's error; the writer never retries, the store poisons itself.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// fdatasync.
    ///
    /// # Errors
    /// The sync's error; the store poisons itself.
    fn sync_data(&self) -> io::Result<()>;
    /// fsync (data and metadata, e.g. the file size after growth).
    ///
    /// # Errors
    /// The sync's error; the store poisons itself.
    fn sync_all(&self) -> io::Result<()>;
    /// Reserve `[offset, offset + len)` on disk, extending the file.
    ///
    /// # Errors
    /// The allocation's error (e.g. `ENOSPC`); the store poisons itself.
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()>;
}

impl LogIo for File {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        space::allocate(self, offset, len)
    }
}

/// The batches of one `append` call (one batch) or one `append_multi` call (one per stream),
/// encoded with their versions and timestamp. Always written inside one frame, so they
/// survive a crash together or not at all.
pub(crate) struct EncodedBatch {
    /// The batches' bytes, back to back (docs/FORMAT.md §3.2). Shared with the in-flight
    /// records, which append conditions check.
    pub bytes: Arc<Vec<u8>>,
    /// Events in them.
    pub events: u64,
    /// Batches in them (streams appended to).
    pub batches: u64,
}

/// A frame that was written: where its body is in the file and in the writer's buffer.
#[derive(Debug, Clone)]
pub(crate) struct WrittenFrame {
    /// File offset of the frame's body.
    pub body_file_offset: u64,
    /// The body's bytes in [`LogWriter::buffer`].
    pub body: Range<usize>,
}

/// The append side of the log. Owned by the store behind a mutex that only the group-commit
/// leader takes.
pub(crate) struct LogWriter {
    io: Box<dyn LogIo>,
    /// The real file, for mapping new segments.
    map_file: Arc<File>,
    header: FileHeader,
    segments: Arc<SegmentTable>,
    /// Segment the next frame goes to.
    seg_index: u64,
    /// Offset in `seg_index` where the next frame goes.
    seg_offset: u64,
    next_seq: u64,
    /// Every frame with a smaller seq is durable.
    durable_seq: u64,
    /// Largest `durable_seq` recorded in a frame on disk.
    proven_durable_seq: u64,
    /// Seq of the last frame holding events.
    last_data_seq: Option<u64>,
    /// Frames written since the last sync.
    unsynced: bool,
    /// Bytes of the current write (frames of one group), reused across calls.
    buf: Vec<u8>,
    /// Events in the frames written so far: the next position.
    events: u64,
    /// Where durable heads are published for readers in other processes (`None` in tests
    /// that build a writer without a store).
    head: Option<HeadPublisher>,
    /// Growth events, for statistics.
    pub stats: WriterStats,
}

/// Counters kept by the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WriterStats {
    pub frames_written: u64,
    pub batches_written: u64,
    pub bytes_written: u64,
    pub data_syncs: u64,
    pub segments_grown: u64,
}

impl LogWriter {
    /// A writer whose next frame is `next_seq` at (`seg_index`, `seg_offset`), as recovery
    /// found the log; `segments` must map segment `seg_index` (asserted).
    #[expect(
        clippy::too_many_arguments,
        reason = "the write head as recovery found it, field by field: the store's open passes \
                  them straight from the scan outcome"
    )]
    pub(crate) fn new(
        io: Box<dyn LogIo>,
        map_file: Arc<File>,
        header: FileHeader,
        segments: Arc<SegmentTable>,
        seg_index: u64,
        seg_offset: u64,
        next_seq: u64,
        durable_seq: u64,
        proven_durable_seq: u64,
        last_data_seq: Option<u64>,
    ) -> LogWriter {
        assert!(
            (seg_index as usize) < segments.len(),
            "the write head's segment is mapped"
        );
        LogWriter {
            io,
            map_file,
            header,
            segments,
            seg_index,
            seg_offset,
            next_seq,
            durable_seq,
            proven_durable_seq,
            last_data_seq,
            unsynced: false,
            buf: Vec::new(),
            events: 0,
            head: None,
            stats: WriterStats::default(),
        }
    }

    /// Publish durable heads to `publisher` from now on, starting with the current one: call
    /// right after open, when everything written is durable (recovery fsynced the file).
    /// `events` is the number of events in the log (the next position).
    ///
    /// # Errors
    /// The error of the first publication.
    pub(crate) fn attach_head(
        &mut self,
        mut publisher: HeadPublisher,
        events: u64,
    ) -> io::Result<()> {
        self.events = events;
        publisher.publish(&self.durable_head())?;
        self.head = Some(publisher);
        Ok(())
    }

    /// The head as of now, for publication once everything written is durable.
    fn durable_head(&self) -> HeadRecord {
        HeadRecord {
            file_id: self.header.file_id,
            next_seq: self.next_seq,
            end_segment: self.seg_index,
            end_offset: self.seg_offset,
            events: self.events,
        }
    }

    /// Whether every frame holding events is covered by a durable watermark on disk (a later
    /// frame says it was durable), so damage to it can never pass for a torn write.
    pub(crate) fn fully_proven(&self) -> bool {
        self.last_data_seq
            .is_none_or(|seq| self.proven_durable_seq > seq)
    }

    /// Where the next frame goes: (segment, offset in it, its seq). Every byte before it is a
    /// complete frame (or a segment's zero tail) and is never written again: what a backup
    /// copies.
    pub(crate) fn head(&self) -> (u64, u64, u64) {
        (self.seg_index, self.seg_offset, self.next_seq)
    }

    /// The bytes of the last `write_batches` call; `WrittenFrame::body` ranges index into it.
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Write `batches` as frames (as few as fit), growing the file as needed. Does not sync.
    /// Returns the frames written, in order.
    pub(crate) fn write_batches(
        &mut self,
        batches: &[EncodedBatch],
    ) -> io::Result<Vec<WrittenFrame>> {
        self.buf.clear();
        let seg_size = self.header.segment_size;
        let mut frames: Vec<WrittenFrame> = Vec::new();
        // Pending pwrite: file offset of buf[chunk_start..].
        let mut chunk_start = 0usize;
        let mut chunk_file_offset = self.header.segment_start(self.seg_index) + self.seg_offset;
        // The frame being built: start in buf.
        let mut open_frame: Option<usize> = None;
        let mut i = 0;
        // Bounded: each iteration adds a batch, closes a frame, or moves to a new segment
        // (which always lets the next batch in: batch sizes are validated against the segment).
        let mut guard = 0usize;
        while i < batches.len() || open_frame.is_some() {
            guard += 1;
            assert!(
                guard <= 3 * batches.len() + 3,
                "frame layout loop does not terminate"
            );
            match open_frame {
                None => {
                    let Some(b) = batches.get(i) else { break };
                    let here = self.seg_offset_of(self.buf.len(), chunk_start);
                    let need = frame::frame_size(b.bytes.len() as u64);
                    assert!(
                        need <= seg_size,
                        "batch larger than a segment passed validation"
                    );
                    if here + need > seg_size {
                        // Write out what we have for this segment, then move to a new one.
                        self.flush_chunk(chunk_start, chunk_file_offset)?;
                        self.grow()?;
                        chunk_start = self.buf.len();
                        chunk_file_offset = self.header.segment_start(self.seg_index);
                        continue;
                    }
                    open_frame = Some(self.buf.len());
                    self.buf.extend_from_slice(&[0u8; FRAME_HEADER_SIZE]);
                    self.buf.extend_from_slice(&b.bytes);
                    self.events += b.events;
                    i += 1;
                }
                Some(start) => {
                    let fits_next = batches.get(i).is_some_and(|b| {
                        let body_now = (self.buf.len() - start - FRAME_HEADER_SIZE) as u64;
                        let size = frame::frame_size(body_now + b.bytes.len() as u64);
                        self.seg_offset_of(start, chunk_start) + size <= seg_size
                    });
                    if fits_next {
                        self.buf.extend_from_slice(&batches[i].bytes);
                        self.events += batches[i].events;
                        i += 1;
                        continue;
                    }
                    frames.push(self.close_frame(start, chunk_start)?);
                    open_frame = None;
                }
            }
        }
        self.flush_chunk(chunk_start, chunk_file_offset)?;
        self.stats.frames_written += frames.len() as u64;
        self.stats.batches_written += batches.iter().map(|b| b.batches).sum::<u64>();
        Ok(frames)
    }

    /// Offset in the current segment of `buf[buf_pos]`, where `buf[chunk_start..]` is the part
    /// of the buffer that goes to this segment, from `seg_offset` on.
    #[inline]
    fn seg_offset_of(&self, buf_pos: usize, chunk_start: usize) -> u64 {
        self.seg_offset + (buf_pos - chunk_start) as u64
    }

    /// Close the frame whose zeroed header starts at `buf[start]`, followed by its batches:
    /// fill in its header (seq, body CRC, durable lag), pad it to the frame alignment, and
    /// move the sequence and watermarks on. Returns where its body goes in the file.
    #[inline]
    fn close_frame(&mut self, start: usize, chunk_start: usize) -> io::Result<WrittenFrame> {
        let seg_start_of_frame = self.seg_offset_of(start, chunk_start);
        let body = start + FRAME_HEADER_SIZE..self.buf.len();
        let body_len = u32::try_from(body.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame body exceeds 4 GiB"))?;
        let body_crc = frame::crc32(&self.buf[body.clone()]);
        let seq = self.next_seq;
        let lag = u32::try_from(seq - self.durable_seq).unwrap_or(u32::MAX);
        let file_id = self.header.file_id;
        frame::encode_frame_header(
            &mut self.buf[start..start + FRAME_HEADER_SIZE],
            &file_id,
            body_len,
            seq,
            body_crc,
            lag,
        );
        let padded = frame::frame_size(u64::from(body_len)) as usize;
        self.buf.resize(start + padded, 0);
        self.proven_durable_seq = self.proven_durable_seq.max(seq - u64::from(lag));
        if body_len > 0 {
            self.last_data_seq = Some(seq);
        }
        self.next_seq += 1;
        Ok(WrittenFrame {
            body_file_offset: self.header.segment_start(self.seg_index)
                + seg_start_of_frame
                + FRAME_HEADER_SIZE as u64,
            body,
        })
    }

    /// A seal frame: an empty frame whose watermark covers every earlier frame. Call after a
    /// sync, so the watermark is true.
    pub(crate) fn write_seal(&mut self) -> io::Result<()> {
        self.buf.clear();
        if self.seg_offset + FRAME_HEADER_SIZE as u64 > self.header.segment_size {
            self.grow()?;
        }
        self.buf.resize(FRAME_HEADER_SIZE, 0);
        let seq = self.next_seq;
        let lag = u32::try_from(seq - self.durable_seq).unwrap_or(u32::MAX);
        let file_id = self.header.file_id;
        frame::encode_frame_header(&mut self.buf, &file_id, 0, seq, crc32fast::hash(&[]), lag);
        let at = self.header.segment_start(self.seg_index) + self.seg_offset;
        self.io.write_all_at(&self.buf, at)?;
        self.seg_offset += FRAME_HEADER_SIZE as u64;
        self.proven_durable_seq = self.proven_durable_seq.max(seq - u64::from(lag));
        self.next_seq += 1;
        self.unsynced = true;
        self.stats.frames_written += 1;
        Ok(())
    }

    fn flush_chunk(&mut self, chunk_start: usize, file_offset: u64) -> io::Result<()> {
        let chunk = &self.buf[chunk_start..];
        if chunk.is_empty() {
            return Ok(());
        }
        self.io.write_all_at(chunk, file_offset)?;
        self.seg_offset += chunk.len() as u64;
        debug_assert!(
            self.seg_offset <= self.header.segment_size,
            "wrote past the segment end"
        );
        self.unsynced = true;
        self.stats.bytes_written += chunk.len() as u64;
        Ok(())
    }

    /// Allocate the next segment, make the allocation durable, map it, and move the write head
    /// to its start.
    fn grow(&mut self) -> io::Result<()> {
        let next = self.seg_index + 1;
        // Already present (e.g. allocated by an earlier attempt)? Only map it if not mapped.
        let start = self.header.segment_start(next);
        self.io.allocate(start, self.header.segment_size)?;
        self.io.sync_all()?;
        if (next as usize) >= self.segments.len() {
            let seg =
                file::map_segment(&self.map_file, &self.header, next, self.header.segment_size)?;
            self.segments.push(seg);
        }
        self.seg_index = next;
        self.seg_offset = 0;
        self.stats.segments_grown += 1;
        Ok(())
    }

    /// fdatasync if anything was written since the last sync. After success every frame
    /// written so far is durable, and the new durable head is published to readers in other
    /// processes (a failed publication is logged and retried on the next sync: readers only
    /// lag).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.io.sync_data()?;
            self.unsynced = false;
            self.stats.data_syncs += 1;
        }
        self.durable_seq = self.next_seq;
        let head = self.durable_head();
        if let Some(publisher) = self.head.as_mut() {
            if let Err(e) = publisher.publish(&head) {
                tracing::warn!(error = %e, "evstore: could not publish the durable head for readers");
            }
        }
        Ok(())
    }
}
