//! Opening a store: the file and its lock (`log::file`), recovery (`log::recovery`, each
//! valid frame fed to a new `Index`), trimming a torn tail, the writer, and the `Store` around
//! them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::state::WriterState;
use super::{follow, Store};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::index::Index;
use crate::log::file;
use crate::log::head::HeadPublisher;
use crate::log::recovery::{self, ScanOutcome, Verdict};
use crate::log::segment::{FileHeader, SegmentTable};
use crate::log::writer::{LogIo, LogWriter};
use crate::types::Options;

/// What [`Store::open`] found and did, from [`Store::recovery_report`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Valid frames in the log (each holds one or more appends, or is a seal).
    pub frames: u64,
    /// Events in the log: the index's count, so the next position is `events`.
    pub events: u64,
    /// Set when a torn tail was found: trimmed from the file (read-write), or skipped and left
    /// in place (read-only).
    pub trimmed: Option<TrimReport>,
}

/// A torn tail found by [`Store::open`]: the bytes after the log's last valid frame, which no
/// later frame proves durable, so they are a write a crash interrupted, not damage
/// (docs/FORMAT.md). A read-write open cut them off; a read-only open skipped them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimReport {
    /// The segment (numbered from 0) in which the log now ends.
    pub segment: u64,
    /// Where in `segment` the log now ends, in bytes from the segment's start: where the next
    /// frame goes.
    pub offset: u64,
    /// Why the bytes there were not a valid frame, for people (not a stable format).
    pub reason: String,
}

impl Store {
    /// Open the store at `path` with default [`Options`] (`Sync` durability, 64 MiB segments
    /// for a new file), creating it if missing.
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, Options::default())
    }

    /// Open the store at `path`: take the file's exclusive lock, recover the log (scan every
    /// segment, zero a torn tail, refuse durable damage), build the in-memory index from it,
    /// and publish the durable head for readers (`<path>.head`). A new file gets
    /// `options.segment_size`; an existing file keeps the segment size in its header, which
    /// [`Store::options`] then reports. What recovery found is in [`Store::recovery_report`].
    ///
    /// With `options.read_only` the open takes no lock a writer conflicts with: it follows a
    /// writer running in another process (up to the durable head it published; see
    /// [`Store::refresh`]), or, with no writer running, reads the whole log (a torn tail is
    /// skipped, not trimmed) after making it durable. Any number of read-only stores and one
    /// writer can have the file open at once (docs/FORMAT.md §10).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the file must be created (or initialised) and
    /// `options.segment_size` is not a multiple of 4096 between 64 KiB and 1 GiB (an existing
    /// log ignores the option); [`Error::Locked`] when another writer still holds the file
    /// after `options.lock_timeout` (read-only: while `repair` runs, or while a writer holds
    /// the file without publishing a head for `options.lock_timeout`); [`Error::NotALog`] or [`Error::UnsupportedFormat`] for a file
    /// that is not a log this build reads; [`Error::Corruption`] for damage a crash cannot
    /// explain (nothing is changed; `evstore repair` salvages the valid prefix);
    /// [`Error::Io`], e.g. `NotFound` for a missing file opened read-only or with
    /// `create_if_missing` off.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        Store::open_with_io(path, options, |f| Box::new(f))
    }

    /// Open with the writer's file operations wrapped by `wrap_io` (fault injection in tests,
    /// through `testing::open_with_io`).
    pub(crate) fn open_with_io(
        path: impl AsRef<Path>,
        options: Options,
        wrap_io: impl FnOnce(File) -> Box<dyn LogIo>,
    ) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if options.read_only {
            let r = follow::open_reader(&path, &options)?;
            let mut store = Store::assemble(
                path, options, r.header, r.segments, r.index, None, r.recovery,
            );
            store.follower = Some(follow::FollowerLink::new(r.follower));
            return Ok(store);
        }
        let (file, header) = file::open_log(&path, &options)?;
        let mut index = Index::new(header.layout());
        let mut recovered = recovery::recover(&file, &header, &mut |body, at| {
            index.add_frame(body, at).map_err(Into::into)
        })?;
        let outcome = &recovered.outcome;
        let trimmed = match &outcome.verdict {
            Verdict::Damaged(damage) => return Err(damage.clone().into_error()),
            Verdict::TornTail { reason, .. } => Some(TrimReport {
                segment: outcome.end_segment,
                offset: outcome.end_offset,
                reason: reason.clone(),
            }),
            Verdict::Clean => None,
        };
        recovery::prepare_for_appends(&file, &header, &mut recovered)?;
        let outcome = recovered.outcome;
        let segments = Arc::new(SegmentTable::new(recovered.maps));
        let mut writer = new_writer(file, header, &segments, &outcome, wrap_io)?;
        // Readers in other processes follow from here (everything recovered is durable now).
        // Without a head file (e.g. a directory this process may not create files in) the
        // store works as before, only readers elsewhere cannot follow it.
        let attached = HeadPublisher::open(&path).and_then(|p| writer.attach_head(p, index.len()));
        if let Err(e) = attached {
            tracing::warn!(
                error = %e,
                path = %path.display(),
                "evstore: no head file: readers in other processes cannot follow this store"
            );
        }
        let recovery = RecoveryReport {
            frames: outcome.frames,
            events: index.len(),
            trimmed,
        };
        Ok(Store::assemble(
            path,
            options,
            header,
            segments,
            index,
            Some(writer),
            recovery,
        ))
    }

    /// The store around what `open` recovered (`segment_size` taken from the header).
    fn assemble(
        path: PathBuf,
        mut options: Options,
        header: FileHeader,
        segments: Arc<SegmentTable>,
        index: Index,
        writer: Option<LogWriter>,
        recovery: RecoveryReport,
    ) -> Store {
        let events = index.len();
        let last_stamp_us = index.last_recorded_at_us().unwrap_or(i64::MIN);
        options.segment_size = header.segment_size;
        Store {
            path,
            options,
            header,
            segments,
            index: RwLock::new(index),
            state: Mutex::new(WriterState::new(events, last_stamp_us)),
            group_done: [Condvar::new(), Condvar::new()],
            writer: Mutex::new(writer),
            recovery,
            snapshots: Mutex::new(None),
            visible: Mutex::new(events),
            visible_changed: Condvar::new(),
            follower: None,
        }
    }
}

/// The writer of a log opened read-write, continuing where recovery found the end (`outcome`,
/// after `recovery::prepare_for_appends` made everything before it durable). Its file
/// operations go through `wrap_io(a clone of file)`; new segments are mapped from `file`.
fn new_writer(
    file: File,
    header: FileHeader,
    segments: &Arc<SegmentTable>,
    outcome: &ScanOutcome,
    wrap_io: impl FnOnce(File) -> Box<dyn LogIo>,
) -> Result<LogWriter> {
    let file = Arc::new(file);
    let io = wrap_io(file.try_clone()?);
    Ok(LogWriter::new(
        io,
        file,
        header,
        segments.clone(),
        outcome.end_segment,
        outcome.end_offset,
        outcome.next_seq,
        outcome.next_seq,
        outcome.proven_durable_seq,
        outcome.last_data_seq,
    ))
}
