//! Recovery: mapping every segment of a log file, scanning its frames, and the verdict on what
//! follows the end of the log — clean, a torn tail to trim, or corruption (docs/FORMAT.md
//! §4–§5).
//!
//! [`recover`] is the unit every reader of a whole file goes through (`Store::open`,
//! `maintenance::verify` and `maintenance::repair`): it maps the bytes present, scans them and
//! hands each valid frame's body to a consumer (the store's index) through a callback, so this
//! layer knows nothing of what the body holds beyond the frame checks. [`prepare_for_appends`]
//! then trims what a writer must not keep.

use std::fs::File;
use std::io;
use std::sync::Arc;

use crate::error::{Error, Site};
use crate::log::file;
use crate::log::frame::{self, FRAME_ALIGN, FRAME_HEADER_SIZE};
use crate::log::segment::{FileHeader, Segment, HEADER_SIZE};
use crate::log::space;

/// Why the consumer of [`recover`] / [`scan`] refused the body of a frame whose checksums
/// hold: its content breaks a rule of the format (docs/FORMAT.md §3.2, §6). The frame is
/// then corruption, always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// Offset inside the body of the batch at fault.
    pub body_offset: usize,
    /// What is wrong with it.
    pub what: String,
}

/// The consumer of the valid frames: called with each frame's body and the file offset where
/// that body starts, in log order. An `Err` stops the scan with [`Verdict::Damaged`] at that
/// frame.
pub(crate) type OnFrame<'a> = dyn FnMut(&[u8], u64) -> Result<(), Rejected> + 'a;

/// What [`recover`] found: the maps it scanned and the outcome.
pub(crate) struct Recovery {
    /// A map of every segment present, of exactly the bytes present (the last may be partial).
    pub maps: Vec<Arc<Segment>>,
    /// The file's length when it was mapped.
    pub file_len: u64,
    /// The scan's outcome and verdict.
    pub outcome: ScanOutcome,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Segment where the next frame goes (where the damage is, for [`Verdict::Damaged`]
    /// before the end of the log).
    pub end_segment: u64,
    /// Offset inside `end_segment` where the next frame goes.
    pub end_offset: u64,
    /// Seq of the next frame.
    pub next_seq: u64,
    /// Largest `durable_seq` claimed by a valid frame (0 if none).
    pub proven_durable_seq: u64,
    /// Seq of the last frame that holds events (not a seal), if any.
    pub last_data_seq: Option<u64>,
    /// Valid frames found (before the end, or before the damage), all handed to the consumer
    /// and accepted by it.
    pub frames: u64,
    /// The verdict on the log.
    pub verdict: Verdict,
}

/// The verdict of a scan (docs/FORMAT.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every frame checks out and only zeros follow the end of the log.
    Clean,
    /// Non-zero bytes follow the end of the log and no later frame proves them durable: a torn
    /// write, trimmed by a writer's open at (`end_segment`, `end_offset`).
    TornTail {
        /// Segment and offset of the first non-zero byte after the end.
        first_nonzero: (u64, u64),
        /// Why the bytes at the end are not a valid frame.
        reason: String,
    },
    /// Damage the scan proved (a later frame says the missing or damaged one was durable), or
    /// a checked frame the consumer refused. The outcome's counts describe the valid frames
    /// before it. A store refuses to open such a log.
    Damaged(Damage),
}

/// Where a log is damaged and how (becomes [`Error::Corruption`] at a [`Site::Segment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// The damaged segment.
    pub segment: u64,
    /// Byte offset inside the segment.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl Damage {
    /// Where the damage is.
    pub(crate) fn site(&self) -> Site {
        Site::Segment {
            segment: self.segment,
            offset: self.offset,
        }
    }

    /// As the error `Store::open` returns.
    pub(crate) fn into_error(self) -> Error {
        Error::corruption(self.segment, self.offset, self.what)
    }
}

/// Map every segment of `file` (whose checked header is `header`), of exactly the bytes
/// present, and scan them: each valid frame's body goes to `on_frame`, and the outcome carries
/// the verdict (damage included: it is not an error here). Reads ahead one segment in front of
/// the scan and skips the known-zero ranges after the end of the log ([`FileHints`]).
///
/// The file must stay locked, and not be shrunk while the returned maps live (see
/// [`file::truncate`]).
///
/// # Errors
/// Only I/O: measuring the file, or mapping a segment.
pub(crate) fn recover(
    file: &File,
    header: &FileHeader,
    on_frame: &mut OnFrame<'_>,
) -> io::Result<Recovery> {
    let file_len = file.metadata()?.len();
    let seg_size = header.segment_size;
    let seg_count = file_len.saturating_sub(HEADER_SIZE).div_ceil(seg_size);
    let mut maps = Vec::with_capacity(usize::try_from(seg_count).unwrap_or(0));
    for k in 0..seg_count {
        let len = (file_len - header.segment_start(k)).min(seg_size);
        maps.push(Arc::new(file::map_segment(file, header, k, len)?));
    }
    let outcome = {
        let slices: Vec<&[u8]> = maps.iter().map(|m| m.bytes()).collect();
        let hints = FileHints {
            file,
            header,
            maps: &maps,
        };
        scan(header, &slices, on_frame, &hints)
    };
    Ok(Recovery {
        maps,
        file_len,
        outcome,
    })
}

/// Make a recovered file (verdict not [`Verdict::Damaged`]) ready for appends, without ever
/// shrinking it (a reader in another process may have any part of it mapped: docs/FORMAT.md
/// §10):
/// * a torn tail is zeroed from the end of the log to the end of the file
///   ([`space::zero_range`]: holes punched, the size kept), so no stale frame can reappear
///   after the new ones;
/// * the last segment is reserved whole again if it was zeroed or is partial (growth
///   interrupted), and mapped whole (`recovery.maps` then covers segments `0..=end_segment`,
///   each whole; maps of zeroed segments past it are dropped);
///
/// then the file is fsynced, so everything that survived the scan is durable and the next
/// frame can say so.
///
/// # Errors
/// I/O errors of the zeroing, the allocation, the map or the fsync.
pub(crate) fn prepare_for_appends(
    file: &File,
    header: &FileHeader,
    recovery: &mut Recovery,
) -> io::Result<()> {
    let seg_size = header.segment_size;
    let outcome = &recovery.outcome;
    let end = outcome.end_segment;
    let end_start = header.segment_start(end);
    let torn = matches!(outcome.verdict, Verdict::TornTail { .. });
    if torn {
        let cut = end_start + outcome.end_offset;
        space::zero_range(file, cut, recovery.file_len.saturating_sub(cut))?;
    }
    recovery
        .maps
        .truncate(usize::try_from(end).unwrap_or(usize::MAX).saturating_add(1));
    let end_is_whole = recovery
        .maps
        .last()
        .is_some_and(|m| m.bytes().len() as u64 == seg_size);
    if torn || !end_is_whole {
        space::allocate(file, end_start, seg_size)?;
        if !end_is_whole {
            let whole = Arc::new(file::map_segment(file, header, end, seg_size)?);
            let have_end = recovery.maps.len() as u64 == end + 1;
            match recovery.maps.last_mut() {
                Some(last) if have_end => *last = whole,
                _ => recovery.maps.push(whole),
            }
        }
    }
    debug_assert_eq!(
        recovery.maps.len() as u64,
        end + 1,
        "segments 0..=end mapped"
    );
    file.sync_all()
}

/// Where a walk of the frames stands: frame `seq` goes at (`segment`, `offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Segment of the next frame.
    pub segment: u64,
    /// Offset inside `segment` of the next frame.
    pub offset: u64,
    /// Seq of the next frame.
    pub seq: u64,
}

impl Cursor {
    /// The start of every log: frame 0 at (0, 0).
    pub(crate) const START: Cursor = Cursor {
        segment: 0,
        offset: 0,
        seq: 0,
    };
}

/// Walk the frames from `from` up to (not including) frame `to_seq`, which a writer published
/// as durable (docs/FORMAT.md §10), handing each body to `on_frame`: a reader following a
/// live log. It never looks at frame `to_seq` or beyond (they may be being written), so it
/// has no torn-tail verdict: every frame before `to_seq` must check out. Returns the cursor at
/// frame `to_seq` and the number of frames walked.
///
/// `segments` must map every segment up to the one frame `to_seq` goes in, each whole.
///
/// # Errors
/// The [`Damage`] at the first frame before `to_seq` that does not check out or that
/// `on_frame` refuses.
pub(crate) fn follow(
    header: &FileHeader,
    segments: &[&[u8]],
    from: Cursor,
    to_seq: u64,
    on_frame: &mut OnFrame<'_>,
    hints: &dyn ScanHints,
) -> Result<(Cursor, u64), Damage> {
    let walk = walk_frames(header, segments, on_frame, hints, from, to_seq);
    if let Some(d) = walk.damage {
        return Err(d);
    }
    if walk.seq < to_seq {
        let (segment, offset) = if walk.k < segments.len() {
            (walk.k as u64, walk.off)
        } else {
            (segments.len().saturating_sub(1) as u64, header.segment_size)
        };
        return Err(Damage {
            segment,
            offset,
            what: format!(
                "frame {} is missing or damaged, though the writer published the frames before \
                 {to_seq} as durable",
                walk.seq
            ),
        });
    }
    Ok((
        Cursor {
            segment: walk.k as u64,
            offset: walk.off,
            seq: walk.seq,
        },
        walk.frames,
    ))
}

/// Where the run of valid frames from `from` ends: the cursor at the first frame that does
/// not check out (or past the last segment), without a verdict on what follows and without
/// handing bodies to anyone. A reader with no writer running uses it to find frames a writer
/// wrote but never published (docs/FORMAT.md §10).
pub(crate) fn valid_run_end(header: &FileHeader, segments: &[&[u8]], from: Cursor) -> Cursor {
    let walk = walk_frames(
        header,
        segments,
        &mut |_, _| Ok(()),
        &ReadEverything,
        from,
        u64::MAX,
    );
    if walk.k >= segments.len() {
        // Ran off the mapped segments while following a segment switch: stop before it.
        return from;
    }
    Cursor {
        segment: walk.k as u64,
        offset: walk.off,
        seq: walk.seq,
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
pub(crate) struct ReadEverything;

impl ScanHints for ReadEverything {}

/// Hints from the file system (`lseek` `SEEK_DATA` / `SEEK_HOLE`) and read-ahead of the log
/// data of the next segment through its map ([`prefetch_for_scan`]).
pub(crate) struct FileHints<'a> {
    /// The file scanned.
    pub file: &'a File,
    /// Its header.
    pub header: &'a FileHeader,
    /// Its maps (segment `k` is `maps[k]`).
    pub maps: &'a [Arc<Segment>],
}

impl ScanHints for FileHints<'_> {
    fn next_data(&self, segment: u64, offset: u64) -> u64 {
        let at = self.header.segment_start(segment).saturating_add(offset);
        space::next_data(self.file, at).map_or(u64::MAX, |d| offset.saturating_add(d - at))
    }
    fn next_hole(&self, segment: u64, offset: u64) -> u64 {
        let at = self.header.segment_start(segment).saturating_add(offset);
        let hole = space::next_hole(self.file, at);
        offset.saturating_add(hole.saturating_sub(at))
    }
    fn will_scan(&self, segment: u64) {
        if let Some(seg) = self.maps.get(segment as usize) {
            prefetch_for_scan(self.file, self.header, segment, seg);
        }
    }
}

/// Read-ahead for a scan of segment `k` (mapped as `seg`): [`Segment::will_need`] from the
/// segment start up to its first hole, i.e. the bytes that may hold frames.
pub(crate) fn prefetch_for_scan(file: &File, header: &FileHeader, k: u64, seg: &Segment) {
    let start = header.segment_start(k);
    let data_len = space::next_hole(file, start).saturating_sub(start);
    seg.will_need(0, data_len);
}

/// The reason given for a torn tail whose first bytes, where the next frame would go, are zero
/// (the non-zero bytes are further on).
const TORN_DEFAULT_REASON: &str = "non-zero bytes after the last valid frame";

/// Scan `segments` (segment `k` is `segments[k]`; the last may be shorter than the segment
/// size), feeding every valid frame body to `on_frame`, and give the verdict on what follows
/// the end of the log. Always reports what it found: on damage the verdict is
/// [`Verdict::Damaged`] and the rest of the outcome describes the valid frames before it (the
/// consumer may then also hold part of the damaged frame, if it refused it half way).
///
/// `hints` lets the verdict skip ranges after the end that are known to be zero, and reads
/// ahead one segment in front of the scan.
pub(crate) fn scan(
    header: &FileHeader,
    segments: &[&[u8]],
    on_frame: &mut OnFrame<'_>,
    hints: &dyn ScanHints,
) -> ScanOutcome {
    let walk = walk_frames(header, segments, on_frame, hints, Cursor::START, u64::MAX);
    let (end_segment, end_offset) = if walk.k >= segments.len() {
        // Ran off the last segment while skipping: cannot happen (skip needs a next segment),
        // but stay in range: the end is the end of the last segment.
        (segments.len().saturating_sub(1) as u64, header.segment_size)
    } else {
        (walk.k as u64, walk.off)
    };
    let verdict = if let Some(d) = walk.damage {
        Verdict::Damaged(d)
    } else {
        let tail = verdict(header, segments, end_segment, end_offset, walk.seq, hints);
        tail_verdict(tail, walk.torn_reason)
    };
    ScanOutcome {
        end_segment,
        end_offset,
        next_seq: walk.seq,
        proven_durable_seq: walk.proven,
        last_data_seq: walk.last_data_seq,
        frames: walk.frames,
        verdict,
    }
}

/// Where [`walk_frames`] stopped and what it saw on the way.
struct Walk {
    /// Segment of the end of the log (or of the damage); `segments.len()` if it ran off the
    /// last one.
    k: usize,
    /// Offset in segment `k` of the end of the log (or of the frame the consumer refused).
    off: u64,
    /// Seq of the next frame.
    seq: u64,
    /// Largest `durable_seq` claimed by a valid frame.
    proven: u64,
    /// Seq of the last valid frame that holds events.
    last_data_seq: Option<u64>,
    /// Valid frames handed to the consumer and accepted.
    frames: u64,
    /// Why the bytes at the end are not a frame, when its header bytes are not all zero.
    torn_reason: Option<String>,
    /// Damage found before the end of the log.
    damage: Option<Damage>,
}

/// The first half of [`scan`] (and all of [`follow`]): walk the valid frames from `from`,
/// feeding each body to `on_frame` and following segment switches, up to the end of the log,
/// damage, or frame `stop_seq` (not looked at).
fn walk_frames(
    header: &FileHeader,
    segments: &[&[u8]],
    on_frame: &mut OnFrame<'_>,
    hints: &dyn ScanHints,
    from: Cursor,
    stop_seq: u64,
) -> Walk {
    let mut k = usize::try_from(from.segment).unwrap_or(usize::MAX);
    let mut off: u64 = from.offset;
    let mut seq: u64 = from.seq;
    let mut proven: u64 = 0;
    let mut last_data_seq = None;
    let mut frames: u64 = 0;
    let mut torn_reason = None;
    let mut damage = None;
    hints.will_scan(from.segment);
    hints.will_scan(from.segment.saturating_add(1));
    // Every iteration consumes one valid frame (off grows by >= 24 bytes) or moves to the next
    // segment, so the loop is bounded by the file size.
    while k < segments.len() && seq < stop_seq {
        let seg = segments[k];
        let rest = seg.get(off as usize..).unwrap_or(&[]);
        match frame::check_frame(rest, &header.file_id, seq) {
            Ok((h, body)) => {
                let body_file_offset =
                    header.segment_start(k as u64) + off + FRAME_HEADER_SIZE as u64;
                if let Err(e) = on_frame(body, body_file_offset) {
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
                proven = proven.max(h.durable_seq());
                if h.body_len > 0 {
                    last_data_seq = Some(seq);
                }
                off += h.size();
                seq += 1;
                frames += 1;
            }
            Err(first_err) => {
                match after_failed_frame(header, segments, k, off, seq, rest) {
                    AfterFailedFrame::NextSegment => {
                        k += 1;
                        off = 0;
                        hints.will_scan(k as u64 + 1);
                        continue;
                    }
                    AfterFailedFrame::Damaged(d) => {
                        damage = Some(d);
                        break;
                    }
                    AfterFailedFrame::EndOfLog => {}
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
    Walk {
        k,
        off,
        seq,
        proven,
        last_data_seq,
        frames,
        torn_reason,
        damage,
    }
}

/// Where the scan goes when frame `seq` does not check out at (`k`, `off`) (docs/FORMAT.md
/// §4).
enum AfterFailedFrame {
    /// The writer moved on to segment `k + 1`: continue there at offset 0.
    NextSegment,
    /// Frame `seq` is in segment `k + 1`, but non-zero bytes precede the switch.
    Damaged(Damage),
    /// (`k`, `off`) is the end of the log.
    EndOfLog,
}

/// Frame `seq` does not check out at (`k`, `off`), whose bytes to the end of the segment are
/// `rest`: did the writer move on to segment `k + 1` because the frame did not fit there
/// (segment `k + 1` starts with frame `seq`, larger than the rest of segment `k`)?
fn after_failed_frame(
    header: &FileHeader,
    segments: &[&[u8]],
    k: usize,
    off: u64,
    seq: u64,
    rest: &[u8],
) -> AfterFailedFrame {
    let Some(next) = segments.get(k + 1) else {
        return AfterFailedFrame::EndOfLog;
    };
    let Ok((h, _)) = frame::check_frame(next, &header.file_id, seq) else {
        return AfterFailedFrame::EndOfLog;
    };
    if h.size() <= header.segment_size - off {
        return AfterFailedFrame::EndOfLog;
    }
    match first_nonzero(rest) {
        Some(nz) => AfterFailedFrame::Damaged(Damage {
            segment: k as u64,
            offset: off + nz,
            what: format!("unexpected bytes before the segment switch to frame {seq}"),
        }),
        None => AfterFailedFrame::NextSegment,
    }
}

/// The verdict of a scan that found no damage before the end of the log, from the
/// [`verdict`] on what follows the end; `torn_reason` says why the bytes at the end are not a
/// frame, when they are not zero.
fn tail_verdict(
    tail: std::result::Result<Option<(u64, u64)>, Damage>,
    torn_reason: Option<String>,
) -> Verdict {
    match tail {
        Ok(None) => Verdict::Clean,
        Ok(Some(first_nonzero)) => Verdict::TornTail {
            first_nonzero,
            reason: torn_reason.unwrap_or_else(|| TORN_DEFAULT_REASON.into()),
        },
        Err(d) => Verdict::Damaged(d),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::FrameError;

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
        let out = scan(&header, &[seg], &mut |_, _| Ok(()), zeros);
        assert_eq!((out.end_segment, out.end_offset), (0, 0), "an empty log");
        match out.verdict {
            Verdict::Clean => None,
            Verdict::TornTail { first_nonzero, .. } => Some(first_nonzero),
            Verdict::Damaged(d) => panic!("no proof of damage: {d:?}"),
        }
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

    /// A header with a fixed file id, so the frame bytes (and where the first non-zero byte
    /// of a frame is) are the same in every run.
    fn fixed_header() -> FileHeader {
        FileHeader {
            segment_size: SEG as u64,
            file_id: [0x11; 16],
            created_at_us: 0,
            format_version: crate::log::segment::FORMAT_VERSION,
        }
    }

    /// Write frame `seq` with `body` and `durable_lag` at offset `off` of `seg`; the offset
    /// after it (padding included).
    fn put_frame(
        seg: &mut [u8],
        header: &FileHeader,
        off: usize,
        seq: u64,
        body: &[u8],
        lag: u32,
    ) -> usize {
        let end = off + FRAME_HEADER_SIZE + body.len();
        seg[off + FRAME_HEADER_SIZE..end].copy_from_slice(body);
        frame::encode_frame_header(
            &mut seg[off..off + FRAME_HEADER_SIZE],
            &header.file_id,
            body.len() as u32,
            seq,
            frame::crc32(body),
            lag,
        );
        off + frame::frame_size(body.len() as u64) as usize
    }

    /// Scan `segments` (no hints), collecting what the consumer receives:
    /// (body, body file offset) of each call.
    fn scan_collecting(
        header: &FileHeader,
        segments: &[&[u8]],
        refuse_seq: Option<usize>,
    ) -> (ScanOutcome, Vec<(Vec<u8>, u64)>) {
        let mut seen = Vec::new();
        let out = scan(
            header,
            segments,
            &mut |body, at| {
                if Some(seen.len()) == refuse_seq {
                    return Err(Rejected {
                        body_offset: 3,
                        what: "refused".into(),
                    });
                }
                seen.push((body.to_vec(), at));
                Ok(())
            },
            &ReadEverything,
        );
        (out, seen)
    }

    fn body_at(header: &FileHeader, k: u64, off: usize) -> u64 {
        header.segment_start(k) + off as u64 + FRAME_HEADER_SIZE as u64
    }

    #[test]
    fn clean_log_hands_the_consumer_every_frame_in_order() {
        let header = fixed_header();
        let mut seg = vec![0u8; SEG];
        let a = put_frame(&mut seg, &header, 0, 0, b"first", 1);
        let b = put_frame(&mut seg, &header, a, 1, &[0xAB; 100], 1);
        let end = put_frame(&mut seg, &header, b, 2, b"", 0); // a seal
        let (out, seen) = scan_collecting(&header, &[&seg], None);
        assert_eq!(out.verdict, Verdict::Clean);
        assert_eq!((out.end_segment, out.end_offset), (0, end as u64));
        assert_eq!((out.frames, out.next_seq), (3, 3));
        assert_eq!(out.last_data_seq, Some(1), "the seal holds no events");
        assert_eq!(out.proven_durable_seq, 2, "the seal proves frames 0 and 1");
        assert_eq!(
            seen,
            vec![
                (b"first".to_vec(), body_at(&header, 0, 0)),
                (vec![0xAB; 100], body_at(&header, 0, a)),
                (Vec::new(), body_at(&header, 0, b)),
            ]
        );
    }

    #[test]
    fn frame_that_does_not_fit_continues_in_the_next_segment() {
        let header = fixed_header();
        let mut seg0 = vec![0u8; SEG];
        let mut seg1 = vec![0u8; SEG];
        // Frame 0 leaves less room than frame 1 needs: the writer moved on to segment 1.
        let a = put_frame(&mut seg0, &header, 0, 0, &vec![1u8; SEG - 200], 1);
        let end = put_frame(&mut seg1, &header, 0, 1, &[2u8; 300], 1);
        let (out, seen) = scan_collecting(&header, &[&seg0, &seg1], None);
        assert_eq!(out.verdict, Verdict::Clean);
        assert_eq!((out.end_segment, out.end_offset), (1, end as u64));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].1, body_at(&header, 1, 0));
        // The same with a stray byte in the skipped space: not a torn write, damage.
        seg0[a + 8] = 0x01;
        let (out, seen) = scan_collecting(&header, &[&seg0, &seg1], None);
        assert_eq!(seen.len(), 1);
        let Verdict::Damaged(d) = out.verdict else {
            panic!("expected damage, got {:?}", out.verdict);
        };
        assert_eq!((d.segment, d.offset), (0, (a + 8) as u64));
    }

    #[test]
    fn torn_tail_is_reported_with_the_reason_and_only_valid_frames_are_consumed() {
        let header = fixed_header();
        let mut seg = vec![0u8; SEG];
        let a = put_frame(&mut seg, &header, 0, 0, b"kept", 1);
        // A frame 1 that never became durable: its body CRC fails, and nothing later
        // proves it.
        let b = put_frame(&mut seg, &header, a, 1, b"torn frame", 1);
        seg[a + FRAME_HEADER_SIZE] ^= 0xFF;
        let (out, seen) = scan_collecting(&header, &[&seg], None);
        assert_eq!(seen, vec![(b"kept".to_vec(), body_at(&header, 0, 0))]);
        assert_eq!(
            (out.end_segment, out.end_offset, out.frames),
            (0, a as u64, 1)
        );
        assert_eq!(
            out.verdict,
            Verdict::TornTail {
                first_nonzero: (0, a as u64),
                reason: FrameError::BodyChecksum.to_string(),
            }
        );
        // Zeros where frame 1 would start, garbage further on: the default reason.
        seg[a..b].fill(0);
        seg[b + 16] = 0x5A;
        let (out, _) = scan_collecting(&header, &[&seg], None);
        assert_eq!(
            out.verdict,
            Verdict::TornTail {
                first_nonzero: (0, (b + 16) as u64),
                reason: TORN_DEFAULT_REASON.into(),
            }
        );
    }

    #[test]
    fn damaged_frame_proven_durable_by_a_later_frame_is_damage() {
        let header = fixed_header();
        let mut seg = vec![0u8; SEG];
        let a = put_frame(&mut seg, &header, 0, 0, b"zero", 1);
        let b = put_frame(&mut seg, &header, a, 1, b"one", 1);
        // Frame 2 says every frame before it was durable (lag 0).
        put_frame(&mut seg, &header, b, 2, b"two", 0);
        seg[a + FRAME_HEADER_SIZE + 1] ^= 0x01; // frame 1's body
        let (out, seen) = scan_collecting(&header, &[&seg], None);
        assert_eq!(seen, vec![(b"zero".to_vec(), body_at(&header, 0, 0))]);
        assert_eq!(
            (out.end_segment, out.end_offset, out.frames),
            (0, a as u64, 1)
        );
        let Verdict::Damaged(d) = out.verdict else {
            panic!("expected damage, got {:?}", out.verdict);
        };
        assert_eq!(
            d.site(),
            Site::Segment {
                segment: 0,
                offset: a as u64
            }
        );
        assert!(
            d.what.contains("frame 1 is damaged or missing"),
            "{}",
            d.what
        );
        let Error::Corruption { site, .. } = d.into_error() else {
            panic!("damage is corruption");
        };
        assert_eq!(
            site,
            Site::Segment {
                segment: 0,
                offset: a as u64
            }
        );
    }

    #[test]
    fn frame_the_consumer_refuses_is_damage_at_that_frame() {
        let header = fixed_header();
        let mut seg = vec![0u8; SEG];
        let a = put_frame(&mut seg, &header, 0, 0, b"zero", 1);
        let b = put_frame(&mut seg, &header, a, 1, b"one", 1);
        put_frame(&mut seg, &header, b, 2, b"two", 1);
        let (out, seen) = scan_collecting(&header, &[&seg], Some(1));
        assert_eq!(seen.len(), 1, "nothing after the refused frame is consumed");
        assert_eq!(
            (out.end_segment, out.end_offset, out.frames),
            (0, a as u64, 1)
        );
        assert_eq!(
            out.verdict,
            Verdict::Damaged(Damage {
                segment: 0,
                offset: a as u64,
                what: "frame 1: batch at body offset 3: refused".into(),
            })
        );
    }

    #[test]
    fn recover_maps_exactly_the_bytes_present() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r.evs");
        let header = fixed_header();
        let mut bytes = header.encode();
        let mut seg0 = vec![0u8; SEG];
        put_frame(&mut seg0, &header, 0, 0, b"zero", 1);
        bytes.extend_from_slice(&seg0);
        bytes.extend_from_slice(&vec![0u8; SEG / 2]); // a partial segment 1
        std::fs::write(&path, &bytes).expect("write");
        let f = File::open(&path).expect("open");
        let mut seen = 0;
        let r = recover(&f, &header, &mut |_, _| {
            seen += 1;
            Ok(())
        })
        .expect("recover");
        assert_eq!(seen, 1);
        assert_eq!(r.file_len, bytes.len() as u64);
        let lens: Vec<usize> = r.maps.iter().map(|m| m.bytes().len()).collect();
        assert_eq!(lens, vec![SEG, SEG / 2]);
        assert_eq!(r.outcome.verdict, Verdict::Clean);
        assert_eq!((r.outcome.end_segment, r.outcome.frames), (0, 1));
    }

    #[test]
    fn follow_walks_from_a_cursor_to_the_published_seq_and_never_past_it() {
        let header = fixed_header();
        let mut seg = vec![0u8; SEG];
        let a = put_frame(&mut seg, &header, 0, 0, b"first", 1);
        let b = put_frame(&mut seg, &header, a, 1, b"second", 1);
        // Frame 2 is being written: only its header is there so far (a torn frame).
        let c = put_frame(&mut seg, &header, b, 2, &[9u8; 64], 1);
        seg[c - 8..c].fill(0);
        let mut seen = Vec::new();
        let mut take = |body: &[u8], _at: u64| {
            seen.push(body.to_vec());
            Ok(())
        };
        let (cursor, frames) = follow(
            &header,
            &[&seg],
            Cursor::START,
            2,
            &mut take,
            &ReadEverything,
        )
        .unwrap();
        assert_eq!(
            (cursor.segment, cursor.offset, cursor.seq, frames),
            (0, b as u64, 2, 2)
        );
        // From that cursor, nothing new until the head moves; frame 2 is never looked at.
        let (again, frames) =
            follow(&header, &[&seg], cursor, 2, &mut take, &ReadEverything).unwrap();
        assert_eq!((again, frames), (cursor, 0));
        assert_eq!(seen, vec![b"first".to_vec(), b"second".to_vec()]);
        // A head past a frame that does not check out: damage, at that frame.
        let d = follow(
            &header,
            &[&seg],
            cursor,
            3,
            &mut |_, _| Ok(()),
            &ReadEverything,
        )
        .unwrap_err();
        assert_eq!((d.segment, d.offset), (0, b as u64), "{d:?}");
        assert!(d.what.contains("published"), "{}", d.what);
    }
}
