//! Read-only stores beside a live writer (docs/FORMAT.md §10): opening one (`open_reader`),
//! bringing it up to the writer's published durable head (`Store::refresh`), and waiting for
//! new events (`Store::poll_until`: an inotify watch of the head file, or polling with back-off).
//!
//! A read-only store takes no lock the writer conflicts with: it registers with the reader
//! lock (`log::head::ofd_lock`), probes the writer's `flock` without keeping it, and reads
//! frames only up to a head the writer published after an `fdatasync` (or, when no writer is
//! running, up to the end of the log, which it then makes durable itself). It never writes,
//! trims or seals, and never reads a frame that may be being written.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::open::RecoveryReport;
use super::Store;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::log::file;
use crate::log::head::{self, HeadRecord, HeadWatch, ReaderLock};
use crate::log::recovery::{self, Cursor, FileHints, ReadEverything, Verdict};
use crate::log::segment::{FileHeader, SegmentTable, HEADER_SIZE};
use crate::types::Options;

/// Frames a refresh adds to the index per hold of its write lock, so readers in this process
/// wait at most that long for a catching-up refresh.
const FRAMES_PER_ROUND: u64 = 4096;
/// First pause of a wait for new events on a read-only store; doubles while nothing new
/// arrives, up to [`MAX_POLL_PAUSE`].
const FIRST_POLL_PAUSE: Duration = Duration::from_micros(100);
/// Longest pause between two polls of the head file while idle: the latency bound of a
/// reader that has waited a while (docs/PERFORMANCE.md, "Readers in other processes").
const MAX_POLL_PAUSE: Duration = Duration::from_millis(2);
/// Longest sleep on the inotify watch of the head file before a re-check (a safety net).
const WATCHED_MAX_PAUSE: Duration = Duration::from_millis(50);
/// Longest wait of a thread that is not the poller for the poller's refresh to index events,
/// before it re-checks (and may take over polling).
const FOLLOWER_SLICE: Duration = Duration::from_millis(5);

/// What a read-only store keeps to follow its log: the cursor state, and the file
/// notification the thread that polls for everyone sleeps on.
pub(super) struct FollowerLink {
    state: Mutex<Follower>,
    /// The inotify watch on the head file, made on first use and kept (closing one costs the
    /// kernel a grace period, milliseconds); held by the one waiting thread that polls
    /// (`Store::poll_until`).
    watch: Mutex<Option<HeadWatch>>,
}

impl FollowerLink {
    /// The link of a store just opened read-only.
    pub(super) fn new(follower: Follower) -> FollowerLink {
        FollowerLink {
            state: Mutex::new(follower),
            watch: Mutex::new(None),
        }
    }
}

/// A read-only store's cursor in the log it follows.
pub(super) struct Follower {
    /// The log, opened read-only, holding the reader lock for as long as the store is open.
    file: Arc<File>,
    /// The head file, once it exists.
    head_file: Option<File>,
    /// Where the next frame to index goes.
    cursor: Cursor,
}

/// What `open_reader` hands to `Store::assemble`.
pub(super) struct OpenedReader {
    pub header: FileHeader,
    pub segments: Arc<SegmentTable>,
    pub index: Index,
    pub follower: Follower,
    pub recovery: RecoveryReport,
}

/// Open the log at `path` read-only, beside a writer or not (module docs).
///
/// # Errors
/// [`Error::Locked`] while `repair` holds the file, or while a writer holds it but has not
/// published a head within `options.lock_timeout` (a writer of an older evstore that does not
/// publish one, or one still recovering a large log); [`Error::NotALog`],
/// [`Error::UnsupportedFormat`], [`Error::Corruption`] as `Store::open`; [`Error::Io`].
pub(super) fn open_reader(path: &Path, options: &Options) -> Result<OpenedReader> {
    let file = File::open(path)?;
    if !head::ofd_lock(&file, ReaderLock::Reader)? {
        return Err(Error::Locked {
            path: path.to_path_buf(),
        });
    }
    let file_len = file.metadata()?.len();
    if file_len == 0 {
        return Err(Error::NotALog {
            path: path.to_path_buf(),
            what: "the file is empty".into(),
        });
    }
    let header = file::read_header(&file, path, file_len)?;
    let mut head_file = head::open_head_for_reading(path)?;
    // A writer that starts while the offline scan runs can make the scan see its new frames
    // after bytes it is zeroing: the verdict then is not to be trusted, and the open follows
    // that writer instead. Bounded: one retry.
    for attempt in 0..2 {
        if file::writer_is_live(&file)? {
            let head = wait_for_head(&file, &header, path, &mut head_file, options)?;
            return open_following(file, header, head_file, &head);
        }
        match open_offline(&file, &header, head_file.as_ref())? {
            Offline::Opened(parts) => {
                let (segments, index, cursor, recovery) = *parts;
                return Ok(OpenedReader {
                    header,
                    segments,
                    index,
                    follower: Follower {
                        file: Arc::new(file),
                        head_file,
                        cursor,
                    },
                    recovery,
                });
            }
            Offline::Damaged(e) if attempt == 0 && file::writer_is_live(&file)? => drop(e),
            Offline::Damaged(e) => return Err(e),
        }
    }
    Err(Error::Internal(
        "a read-only open retried past its bound".into(),
    ))
}

/// The head a live writer published, waiting up to `options.lock_timeout` for the first one
/// (a writer publishes right after its recovery).
fn wait_for_head(
    file: &File,
    header: &FileHeader,
    path: &Path,
    head_file: &mut Option<File>,
    options: &Options,
) -> Result<HeadRecord> {
    let deadline = Instant::now() + options.lock_timeout;
    let mut pause = Duration::from_millis(1);
    // Bounded by the deadline.
    loop {
        if let Some(h) = read_published_head(path, head_file, header)? {
            return Ok(h);
        }
        let now = Instant::now();
        if now >= deadline || !file::writer_is_live(file)? && head_file.is_none() {
            return Err(Error::Locked {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The head in the head file (opened now if it was missing), if it is whole and of this log.
fn read_published_head(
    path: &Path,
    head_file: &mut Option<File>,
    header: &FileHeader,
) -> Result<Option<HeadRecord>> {
    if head_file.is_none() {
        *head_file = head::open_head_for_reading(path)?;
    }
    match head_file {
        Some(f) => Ok(head::read_head(f, &header.file_id)?),
        None => Ok(None),
    }
}

/// Map segments `from_segment..=end_segment` of `file` whole, reusing the maps `table`
/// already holds (a partial last map, from an offline scan of a file whose growth was
/// interrupted, is replaced: readers holding the old one keep it alive). Segments before
/// `from_segment` must be mapped whole already.
fn map_whole_segments(
    file: &File,
    header: &FileHeader,
    table: &SegmentTable,
    from_segment: u64,
    end_segment: u64,
) -> Result<()> {
    let current = table.snapshot();
    for k in from_segment..=end_segment {
        let whole = current
            .get(usize::try_from(k).unwrap_or(usize::MAX))
            .is_some_and(|s| s.bytes().len() as u64 == header.segment_size);
        if whole {
            continue;
        }
        let seg = file::map_segment(file, header, k, header.segment_size)?;
        table.set(k, seg);
    }
    Ok(())
}

/// A read-only open beside a live writer: every frame up to the published `head`.
fn open_following(
    file: File,
    header: FileHeader,
    head_file: Option<File>,
    head: &HeadRecord,
) -> Result<OpenedReader> {
    let segments = Arc::new(SegmentTable::new(Vec::new()));
    map_whole_segments(&file, &header, &segments, 0, head.end_segment)?;
    let mut index = Index::new(header.layout());
    let maps = segments.snapshot();
    let slices: Vec<&[u8]> = maps.iter().map(|m| m.bytes()).collect();
    let hints = FileHints {
        file: &file,
        header: &header,
        maps: &maps,
    };
    let (cursor, frames) = recovery::follow(
        &header,
        &slices,
        Cursor::START,
        head.next_seq,
        &mut |body, at| index.add_frame(body, at).map_err(Into::into),
        &hints,
    )
    .map_err(recovery::Damage::into_error)?;
    check_against_head(&cursor, &index, head)?;
    drop(slices);
    let recovery = RecoveryReport {
        frames,
        events: index.len(),
        trimmed: None,
    };
    Ok(OpenedReader {
        header,
        segments,
        index,
        follower: Follower {
            file: Arc::new(file),
            head_file,
            cursor,
        },
        recovery,
    })
}

/// After following up to `head`: the walk must end where the writer said and hold as many
/// events (a mismatch is a broken writer contract, not damage).
fn check_against_head(cursor: &Cursor, index: &Index, head: &HeadRecord) -> Result<()> {
    if (cursor.segment, cursor.offset) != (head.end_segment, head.end_offset)
        || index.len() != head.events
    {
        return Err(Error::Internal(format!(
            "the writer's published head (frame {} at segment {} offset {}, {} events) does not \
             match the log (segment {} offset {}, {} events)",
            head.next_seq,
            head.end_segment,
            head.end_offset,
            head.events,
            cursor.segment,
            cursor.offset,
            index.len()
        )));
    }
    Ok(())
}

/// What an offline read-only open found.
enum Offline {
    /// The maps, the index, the cursor at the end of the log, the report.
    Opened(Box<(Arc<SegmentTable>, Index, Cursor, RecoveryReport)>),
    /// The scan's verdict was damage (maybe a writer that started meanwhile).
    Damaged(Error),
}

/// A read-only open with no writer running: recovery's scan (a torn tail is skipped, not
/// trimmed), then an `fdatasync` of the log if it may hold frames no writer proved durable,
/// so nothing read can be taken back by a crash (it changes no byte).
fn open_offline(file: &File, header: &FileHeader, head_file: Option<&File>) -> Result<Offline> {
    let mut index = Index::new(header.layout());
    let recovered = recovery::recover(file, header, &mut |body, at| {
        index.add_frame(body, at).map_err(Into::into)
    })?;
    let o = &recovered.outcome;
    let trimmed = match &o.verdict {
        Verdict::Damaged(damage) => return Ok(Offline::Damaged(damage.clone().into_error())),
        Verdict::TornTail { reason, .. } => Some(super::TrimReport {
            segment: o.end_segment,
            offset: o.end_offset,
            reason: reason.clone(),
        }),
        Verdict::Clean => None,
    };
    let published = match head_file {
        Some(f) => head::read_head(f, &header.file_id)?.map(|h| h.next_seq),
        None => None,
    };
    if published.is_none_or(|seq| seq < o.next_seq) {
        make_durable(file)?;
    }
    let cursor = Cursor {
        segment: o.end_segment,
        offset: o.end_offset,
        seq: o.next_seq,
    };
    let recovery = RecoveryReport {
        frames: o.frames,
        events: index.len(),
        trimmed,
    };
    let segments = Arc::new(SegmentTable::new(recovered.maps));
    Ok(Offline::Opened(Box::new((
        segments, index, cursor, recovery,
    ))))
}

/// `fdatasync` through a read-only descriptor. On a read-only file system (nothing can
/// change the bytes) or one that cannot sync, there is nothing to make durable.
fn make_durable(file: &File) -> Result<()> {
    match file.sync_data() {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EROFS | libc::EINVAL | libc::EBADF)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::Io(e)),
    }
}

impl Store {
    /// Bring a read-only store up to the durable head its writer published (a writer in
    /// another process, or in this one) and return the new head position (`None`: the log is
    /// still empty). Cheap when nothing is new: one 72-byte read of the head file. A store
    /// opened read-write returns its head position.
    ///
    /// A reader sees exactly what the writer made durable: with [`Durability::Sync`], every
    /// acknowledged append; with [`Durability::Buffered`], what the writer's last
    /// [`Store::flush`] (or close) made durable. It never sees a frame being written, so it
    /// never mistakes one for a torn tail or for damage. When no writer is running, it also
    /// reads the frames a writer wrote but died before publishing (a `Buffered` writer killed
    /// before its flush), after making them durable itself, as a fresh read-only open would.
    /// Large catch-ups are indexed in rounds of 4096 frames, so reads in this process are held
    /// up by one round at most.
    ///
    /// [`Store::wait_for_position`], [`Subscription`](crate::subscription::Subscription),
    /// [`ProjectionRunner`](crate::projection::ProjectionRunner) and
    /// [`SagaRunner`](crate::saga::SagaRunner) on a read-only store call this themselves
    /// while they wait.
    ///
    /// # Errors
    /// [`Error::Corruption`] when a frame the writer published as durable does not check out
    /// (damage, or the file was replaced behind the reader); [`Error::Internal`] when the log
    /// does not match the published head; [`Error::Io`] (e.g. mapping a new segment). After
    /// an error the store keeps serving what it had read; reopen it to start over.
    ///
    /// [`Durability::Sync`]: crate::Durability::Sync
    /// [`Durability::Buffered`]: crate::Durability::Buffered
    pub fn refresh(&self) -> Result<Option<u64>> {
        let Some(link) = &self.follower else {
            return Ok(self.head_position());
        };
        let mut f = link.state.lock();
        if let Some(head) = read_published_head(&self.path, &mut f.head_file, &self.header)? {
            if head.next_seq > f.cursor.seq {
                self.catch_up_to(&mut f, &head)?;
            }
        }
        if !file::writer_is_live(&f.file)? {
            self.catch_up_unpublished(&mut f)?;
        }
        Ok(self.head_position())
    }

    /// Index the frames from the follower's cursor up to `head`, in rounds.
    fn catch_up_to(&self, f: &mut MutexGuard<'_, Follower>, head: &HeadRecord) -> Result<()> {
        map_whole_segments(
            &f.file,
            &self.header,
            &self.segments,
            f.cursor.segment,
            head.end_segment,
        )?;
        let maps = self.segments.snapshot();
        let slices: Vec<&[u8]> = maps.iter().map(|m| m.bytes()).collect();
        self.index_frames(f, &slices, head.next_seq)?;
        check_against_head(&f.cursor, &self.index.read(), head)
    }

    /// Index the frames from the cursor up to `end_seq` (all must check out), in rounds of
    /// [`FRAMES_PER_ROUND`] per hold of the index lock, publishing each round to waiters.
    fn index_frames(
        &self,
        f: &mut MutexGuard<'_, Follower>,
        slices: &[&[u8]],
        end_seq: u64,
    ) -> Result<()> {
        // Bounded: every round moves the cursor forward by at least one frame (or returns).
        while f.cursor.seq < end_seq {
            let to_seq = end_seq.min(f.cursor.seq.saturating_add(FRAMES_PER_ROUND));
            let mut index = self.index.write();
            let (cursor, _) = recovery::follow(
                &self.header,
                slices,
                f.cursor,
                to_seq,
                &mut |body, at| index.add_frame(body, at).map_err(Into::into),
                &ReadEverything,
            )
            .map_err(recovery::Damage::into_error)?;
            f.cursor = cursor;
            let events = index.len();
            drop(index);
            *self.visible.lock() = events;
            self.visible_changed.notify_all();
        }
        Ok(())
    }

    /// With no writer running: index the valid frames after the cursor that no writer
    /// published (a writer that died before its next `fdatasync`, e.g. a `Buffered` one that
    /// never flushed), after making them durable, as a read-only open with no writer does.
    /// Stops at the first frame that does not check out (a torn tail: the next writer zeroes
    /// it). Cheap when there is nothing: one frame header read at the cursor.
    fn catch_up_unpublished(&self, f: &mut MutexGuard<'_, Follower>) -> Result<()> {
        let seg_size = self.header.segment_size;
        let whole = f.file.metadata()?.len().saturating_sub(HEADER_SIZE) / seg_size;
        let Some(last) = whole.checked_sub(1) else {
            return Ok(());
        };
        if last < f.cursor.segment {
            return Ok(());
        }
        map_whole_segments(
            &f.file,
            &self.header,
            &self.segments,
            f.cursor.segment,
            last,
        )?;
        let maps = self.segments.snapshot();
        let slices: Vec<&[u8]> = maps.iter().map(|m| m.bytes()).collect();
        let end = recovery::valid_run_end(&self.header, &slices, f.cursor);
        if end.seq == f.cursor.seq {
            return Ok(());
        }
        make_durable(&f.file)?;
        self.index_frames(f, &slices, end.seq)
    }

    /// Wait until `done()` or `timeout`, following the writer (module docs); returns the last
    /// `done()`. For read-only stores, which no publish in this process wakes.
    ///
    /// One waiting thread at a time is the poller: it refreshes, then sleeps on an inotify
    /// watch of the head file until the writer publishes (re-checking at least every 50 ms),
    /// or, without a watch, polls with back-off (0.1 ms doubling to 2 ms). The others wait for
    /// the poller's refresh to index events (`visible_changed`) and take over when it leaves.
    /// A refresh error ends the wait (logged; [`Store::refresh`] returns it to whoever asks).
    pub(super) fn poll_until(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let Some(link) = &self.follower else {
            return done();
        };
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_POLL_PAUSE;
        // Bounded by the deadline: every round sleeps or returns.
        loop {
            let seen = self.visible_len();
            if done() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let Some(mut watch) = link.watch.try_lock() else {
                // Another thread polls: wait for its refresh (or take over after a slice).
                let mut v = self.visible.lock();
                if *v == seen {
                    self.visible_changed
                        .wait_for(&mut v, FOLLOWER_SLICE.min(deadline - now));
                }
                continue;
            };
            if watch.is_none() && head::head_path(&self.path).exists() {
                // Before the refresh below: a publication after it is never missed.
                *watch = HeadWatch::new(&self.path);
            }
            if let Err(e) = self.refresh() {
                tracing::warn!(error = %e, path = %self.path.display(), "evstore: refresh of a read-only store failed");
                return done();
            }
            if done() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(w) = watch.as_ref() {
                if !w.wait(WATCHED_MAX_PAUSE.min(left)) {
                    *watch = None; // the head file was replaced: watch the new one
                }
                continue;
            }
            pause = if self.visible_len() > seen {
                FIRST_POLL_PAUSE
            } else {
                (pause * 2).min(MAX_POLL_PAUSE)
            };
            std::thread::sleep(pause.min(left));
        }
    }

    /// Number of visible events.
    fn visible_len(&self) -> u64 {
        *self.visible.lock()
    }

    /// Where a read-only store's next frame goes (everything before it is indexed and
    /// durable); `None` for a writer.
    pub(super) fn follow_cursor(&self) -> Option<Cursor> {
        self.follower.as_ref().map(|f| f.state.lock().cursor)
    }

    /// Whether this store follows a log written elsewhere (opened read-only).
    pub(super) fn is_follower(&self) -> bool {
        self.follower.is_some()
    }
}
