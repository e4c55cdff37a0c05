//! [`Store::backup_to`]: a consistent copy of the live log (and of its snapshot sidecar) while
//! the store keeps appending.
//!
//! A raw copy of a log being written (`cp`, `rsync`) can read one region before an append and
//! the next after it, so later frames may prove an earlier one durable that the copy holds
//! torn: `verify` calls that corruption. A backup instead copies the **published prefix**:
//! under the `writer` mutex (which orders frame writes against publishing) it takes the write
//! head, the end of the last frame written, and the segment maps, and lets go; appends pause
//! only for that. Frames below the head are never written again, so their bytes are then read
//! from the maps without any lock. The copy is the file header, every whole segment before the
//! head's segment, and the head's segment up to the head, the rest zero (preallocated): a log
//! that ends cleanly where the source's writer was. It is written under a temporary name
//! beside the destination, fsynced, checked with [`maintenance::verify`], and only then renamed
//! into place (then the directory is fsynced).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Store;
use crate::error::{Error, Result};
use crate::log::segment::{sync_parent_dir, Segment, HEADER_SIZE};
use crate::log::space;
use crate::maintenance::{self, Verdict};
use crate::snapshot;

/// Bytes copied per write (and between two progress calls).
const CHUNK: u64 = 1 << 20;

/// What [`Store::backup_to`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup's path (the destination given).
    pub path: PathBuf,
    /// Events in the copy: every event published before the backup began, and possibly some
    /// published while it ran.
    pub events: u64,
    /// Frames in the copy.
    pub frames: u64,
    /// Bytes read from the log: its header and every frame of the copied prefix.
    pub copied_bytes: u64,
    /// Bytes of the copy: the header and whole segments (the last one's tail is zeros).
    pub file_bytes: u64,
    /// Bytes of the copied snapshot sidecar (`<path>.snap`); `None` when the store has none.
    pub sidecar_bytes: Option<u64>,
    /// How long appends were held back: the time the backup held the writer's mutex to read
    /// the write head.
    pub append_pause: Duration,
    /// Wall time of the whole backup, verification included.
    pub duration: Duration,
}

/// The published prefix of the log, as the writer's mutex saw it.
struct Prefix {
    /// The segment maps (segment `k` is `segments[k]`), covering `end_segment`.
    segments: Arc<Vec<Arc<Segment>>>,
    /// The write head: segment and offset in it.
    end_segment: u64,
    end_offset: u64,
    /// Frames before the head.
    frames: u64,
    /// How long the mutex was held.
    pause: Duration,
}

/// The temporary files of a backup in progress: the log beside the destination and its
/// sidecar beside it. Removed on drop unless [`Temp::commit`] renamed them into place.
struct Temp {
    log: PathBuf,
    sidecar: PathBuf,
    committed: bool,
}

impl Temp {
    /// Names for a backup to `dst`: `.<file name>.backup-<32 hex digits>` in its directory.
    fn beside(dst: &Path) -> Result<Temp> {
        let name = dst.file_name().ok_or_else(|| {
            Error::InvalidInput(format!(
                "the backup destination {} has no file name",
                dst.display()
            ))
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".backup-{}", uuid::Uuid::new_v4().simple()));
        let log = dst.with_file_name(temp_name);
        let sidecar = snapshot::sidecar_path(&log);
        Ok(Temp {
            log,
            sidecar,
            committed: false,
        })
    }

    /// Rename the copy into place at `dst`, then its sidecar beside it (or remove a stale
    /// `dst.snap` when there is none), then fsync the directory. The log goes first: a failure
    /// in between leaves the new log with an old sidecar, which belongs to another file id and
    /// is reset when opened (a cache), never a new sidecar beside an old log.
    fn commit(mut self, dst: &Path, has_sidecar: bool) -> io::Result<()> {
        std::fs::rename(&self.log, dst)?;
        self.committed = true;
        let dst_sidecar = snapshot::sidecar_path(dst);
        if has_sidecar {
            if let Err(e) = std::fs::rename(&self.sidecar, &dst_sidecar) {
                let _ = std::fs::remove_file(&self.sidecar);
                return Err(e);
            }
        } else {
            match std::fs::remove_file(&dst_sidecar) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        sync_parent_dir(dst)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a failing backup leaves nothing behind it can remove.
            let _ = std::fs::remove_file(&self.log);
            let _ = std::fs::remove_file(&self.sidecar);
        }
    }
}

impl Store {
    /// Copy the store to `dst` while it keeps serving appends and reads: every frame published
    /// when the backup begins (and none half-written), plus a consistent copy of the snapshot
    /// sidecar if there is one. The copy is checked with [`maintenance::verify`] before it is
    /// renamed into place, so `dst` is either the old file (or absent) or a complete copy that
    /// verifies clean; it opens anywhere with the same events. Appends pause only while the
    /// write head is read (see [`BackupReport::append_pause`]). Shows no progress; see
    /// [`Store::backup_to_with`].
    ///
    /// An existing `dst` is replaced. From another process, back up through a read-only
    /// store: it is first brought up to the writer's durable head ([`Store::refresh`]) and
    /// copies that; the writer never pauses. (The sidecar is copied as it is then; a snapshot
    /// record being appended at that moment is cut when the copy opens: snapshots are a
    /// cache.)
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an I/O error (reopen first);
    /// [`Error::InvalidInput`] when `dst` has no file name or is the store's own log or
    /// sidecar; [`Error::Io`] when writing the copy fails (e.g. `dst`'s directory is missing),
    /// in which case nothing is left at `dst`; [`Error::Internal`] if the copy does not verify
    /// clean (a bug).
    ///
    /// ```
    /// # use evstore::{ExpectedVersion, NewEvent, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path().join("live.evs"))?;
    /// store.append("s", ExpectedVersion::Any, &[NewEvent::new("E", b"{}".to_vec())])?;
    /// let report = store.backup_to(dir.path().join("copy.evs"))?;
    /// assert_eq!(report.events, 1);
    /// assert_eq!(Store::open(dir.path().join("copy.evs"))?.head_position(), Some(0));
    /// # Ok::<(), evstore::Error>(())
    /// ```
    pub fn backup_to(&self, dst: impl AsRef<Path>) -> Result<BackupReport> {
        self.backup_to_with(dst, |_, _| {})
    }

    /// [`Store::backup_to`], calling `progress(copied_bytes, total_bytes)` after each MiB of
    /// the log is copied (and once at the end): bytes of the log's published prefix, header
    /// included.
    ///
    /// # Errors
    /// As [`Store::backup_to`].
    pub fn backup_to_with(
        &self,
        dst: impl AsRef<Path>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BackupReport> {
        let started = Instant::now();
        let dst = dst.as_ref();
        self.check_backup_target(dst)?;
        let temp = Temp::beside(dst)?;
        let prefix = self.published_prefix()?;
        let (copied_bytes, file_bytes) = self
            .copy_log(&prefix, &temp.log, &mut progress)
            .map_err(|e| named(&e, "cannot write the backup", dst))?;
        let sidecar_bytes = self
            .copy_sidecar(&temp.sidecar)
            .map_err(|e| named(&e, "cannot copy the snapshot sidecar beside", dst))?;
        let check = maintenance::verify(&temp.log)?;
        if check.verdict != Verdict::Clean || check.frames != prefix.frames {
            return Err(Error::Internal(format!(
                "the backup copy does not verify clean: {:?}, {} frames (expected {})",
                check.verdict, check.frames, prefix.frames
            )));
        }
        temp.commit(dst, sidecar_bytes.is_some())
            .map_err(|e| named(&e, "cannot move the backup into place at", dst))?;
        Ok(BackupReport {
            path: dst.to_path_buf(),
            events: check.events,
            frames: check.frames,
            copied_bytes,
            file_bytes,
            sidecar_bytes,
            append_pause: prefix.pause,
            duration: started.elapsed(),
        })
    }

    /// `Err(InvalidInput)` when `dst` is this store's log or sidecar (the same file, by
    /// device and inode).
    fn check_backup_target(&self, dst: &Path) -> Result<()> {
        let Ok(target) = std::fs::metadata(dst) else {
            return Ok(()); // absent (or unreadable: creating beside it reports that)
        };
        for own in [self.path.clone(), snapshot::sidecar_path(&self.path)] {
            if let Ok(m) = std::fs::metadata(&own) {
                if (m.dev(), m.ino()) == (target.dev(), target.ino()) {
                    return Err(Error::InvalidInput(format!(
                        "the backup destination {} is the store's own file {}",
                        dst.display(),
                        own.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// A read-only store's prefix: what it follows, brought up to the writer's durable head.
    fn followed_prefix(&self) -> Result<Prefix> {
        self.refresh()?;
        let cursor = self.follow_cursor().ok_or(Error::ReadOnly)?;
        let segments = self.segments.snapshot();
        if usize::try_from(cursor.segment).map_or(true, |k| k >= segments.len()) {
            return Err(Error::Internal(format!(
                "the reader's segment {} is not mapped",
                cursor.segment
            )));
        }
        Ok(Prefix {
            segments,
            end_segment: cursor.segment,
            end_offset: cursor.offset,
            frames: cursor.seq,
            pause: Duration::ZERO,
        })
    }

    /// The write head and the segment maps, read under the `writer` mutex: every frame
    /// before the head is complete (indexed, and durable in `Sync` mode) and never written
    /// again.
    fn published_prefix(&self) -> Result<Prefix> {
        if self.state.lock().is_poisoned() {
            return Err(Error::Poisoned);
        }
        let guard = self.writer.lock();
        let held = Instant::now();
        let Some(w) = guard.as_ref() else {
            drop(guard);
            return self.followed_prefix();
        };
        let (end_segment, end_offset, frames) = w.head();
        let segments = self.segments.snapshot();
        drop(guard);
        let pause = held.elapsed();
        if usize::try_from(end_segment).map_or(true, |k| k >= segments.len()) {
            return Err(Error::Internal(format!(
                "the write head's segment {end_segment} is not mapped"
            )));
        }
        Ok(Prefix {
            segments,
            end_segment,
            end_offset,
            frames,
            pause,
        })
    }

    /// Write the copy of the log to `to` (created new): header, the prefix's frames, whole
    /// preallocated segments; fsync. Returns (bytes copied, bytes of the file).
    fn copy_log(
        &self,
        prefix: &Prefix,
        to: &Path,
        progress: &mut impl FnMut(u64, u64),
    ) -> io::Result<(u64, u64)> {
        let seg_size = self.header.segment_size;
        let file_bytes = HEADER_SIZE + (prefix.end_segment + 1) * seg_size;
        let total = HEADER_SIZE + prefix.end_segment * seg_size + prefix.end_offset;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(to)?;
        space::allocate(&file, 0, file_bytes)?;
        file.write_all_at(&self.header.encode(), 0)?;
        let mut copied = HEADER_SIZE;
        progress(copied, total);
        for k in 0..=prefix.end_segment {
            let len = if k == prefix.end_segment {
                prefix.end_offset
            } else {
                seg_size
            };
            let bytes = usize::try_from(k)
                .ok()
                .and_then(|k| prefix.segments.get(k))
                .and_then(|s| s.bytes().get(..usize::try_from(len).ok()?))
                .ok_or_else(|| io::Error::other(format!("segment {k} is not mapped whole")))?;
            copy_segment(&file, self.header.segment_start(k), bytes, |n| {
                copied += n;
                progress(copied, total);
            })?;
        }
        file.sync_all()?;
        Ok((copied, file_bytes))
    }

    /// Copy the snapshot sidecar to `to`, under the sidecar's mutex so that no save or
    /// compaction runs meanwhile (every write of the sidecar takes it: the log's lock keeps
    /// other processes out). `None` when there is no sidecar.
    fn copy_sidecar(&self, to: &Path) -> io::Result<Option<u64>> {
        let guard = self.snapshots.lock();
        let from = snapshot::sidecar_path(&self.path);
        let copied = match std::fs::copy(&from, to) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        drop(guard);
        File::open(to)?.sync_all()?;
        Ok(Some(copied))
    }
}

/// Write `bytes` at `at` in chunks of [`CHUNK`], calling `done(n)` after each.
fn copy_segment(file: &File, at: u64, bytes: &[u8], mut done: impl FnMut(u64)) -> io::Result<()> {
    let mut offset = at;
    // Bounded: one round per chunk.
    for chunk in bytes.chunks(CHUNK as usize) {
        file.write_all_at(chunk, offset)?;
        offset += chunk.len() as u64;
        done(chunk.len() as u64);
    }
    Ok(())
}

/// `e` with `what` and the path prepended, keeping its kind.
fn named(e: &io::Error, what: &str, path: &Path) -> Error {
    Error::Io(io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}
