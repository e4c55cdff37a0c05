//! Opening a store: the file, recovery, the index, the writer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::state::WriterState;
use super::Store;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::log::file;
use crate::log::recovery::{self, ScanOutcome, Verdict};
use crate::log::segment::{self, FileHeader, SegmentTable};
use crate::log::writer::{LogIo, LogWriter};
use crate::types::Options;

/// What `open` found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Valid frames in the log.
    pub frames: u64,
    /// Events in the log.
    pub events: u64,
    /// Set when a torn tail was found: trimmed from the file (read-write), or skipped and left
    /// in place (read-only).
    pub trimmed: Option<TrimReport>,
}

/// A torn tail removed during open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimReport {
    /// Segment and offset where the log now ends.
    pub segment: u64,
    pub offset: u64,
    /// Why the bytes there were not a valid frame.
    pub reason: String,
}

impl Store {
    /// Open the store at `path` with default [`Options`], creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, Options::default())
    }

    /// Open the store at `path`. An existing file keeps the segment size in its header.
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
        segment::validate_segment_size(options.segment_size).map_err(Error::InvalidInput)?;
        let path = path.as_ref().to_path_buf();
        let (file, header) = file::open_log(&path, &options)?;
        let mut index = Index::default();
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
        if !options.read_only {
            recovery::prepare_for_appends(&file, &header, &mut recovered)?;
        }
        let outcome = recovered.outcome;
        let segments = Arc::new(SegmentTable::new(recovered.maps));
        let writer = if options.read_only {
            None
        } else {
            Some(new_writer(file, header, &segments, &outcome, wrap_io)?)
        };
        let recovery = RecoveryReport {
            frames: outcome.frames,
            events: index.len(),
            trimmed,
        };
        Ok(Store::assemble(
            path, options, header, segments, index, writer, recovery,
        ))
    }

    /// The store around what `open` recovered (`segment_size` taken from the header).
    fn assemble(
        path: PathBuf,
        options: Options,
        header: FileHeader,
        segments: Arc<SegmentTable>,
        index: Index,
        writer: Option<LogWriter>,
        recovery: RecoveryReport,
    ) -> Store {
        let events = index.len();
        let last_stamp_us = index.last_recorded_at_us().unwrap_or(i64::MIN);
        Store {
            path,
            options: Options {
                segment_size: header.segment_size,
                ..options
            },
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
