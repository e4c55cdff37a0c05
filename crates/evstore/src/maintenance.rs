//! Operator tools on a closed log file: [`verify`] (read-only) and [`repair`] (trim to the last
//! valid frame before damage, after keeping a backup).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Site};
use crate::index::Index;
use crate::log::file;
use crate::log::frame::{self, FRAME_ALIGN, FRAME_HEADER_SIZE};
use crate::log::head::{self, ReaderLock};
use crate::log::recovery::{self, Recovery};
use crate::log::segment::FileHeader;
use crate::snapshot;
use crate::{Options, Store};

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Bytes of the log file.
    pub file_bytes: u64,
    /// Segment size from the header.
    pub segment_size: u64,
    /// Segments present (the last may be partial).
    pub segments: u64,
    /// Valid frames before the end (or the damage).
    pub frames: u64,
    /// Events in those frames.
    pub events: u64,
    /// Streams in those frames.
    pub streams: u64,
    /// The verdict on the log.
    pub verdict: Verdict,
    /// The snapshot sidecar, if there is one.
    pub sidecar: Option<SidecarReport>,
    /// Whether a writer had the log open: then only the durable prefix it published was
    /// checked (docs/FORMAT.md §10), every frame of it, and nothing after it (frames may be
    /// being written there), so the verdict is [`Verdict::Clean`] or [`Verdict::Corrupt`].
    pub live: bool,
}

/// The verdict of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every frame checks out and nothing follows the end of the log.
    Clean,
    /// Only a torn tail: opening the store would trim it (nothing acknowledged is lost).
    TornTail {
        /// Segment where the log ends (from 0): the cut opening would make.
        segment: u64,
        /// Byte offset inside that segment.
        offset: u64,
        /// Why the bytes there are not a valid frame, for people (not a stable format).
        reason: String,
    },
    /// Damage the log proves was durable, or invalid content: opening refuses. `site` is
    /// always a [`Site::Segment`] (a damaged file header is an error of [`verify`] instead).
    Corrupt {
        /// Where the damage is.
        site: Site,
        /// What is wrong there.
        what: String,
    },
}

/// The sidecar part of [`VerifyReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarReport {
    /// The sidecar's path: `<log path>.snap`.
    pub path: PathBuf,
    /// Bytes of the sidecar file.
    pub bytes: u64,
    /// Streams with a readable snapshot.
    pub live_snapshots: u64,
    /// Damaged records found (they would be cut on open; snapshots are a cache).
    pub corrupt_records: u64,
    /// Whether the header was unusable (another log's sidecar, or garbage).
    pub reset: bool,
}

/// The checked header (the same checks and errors as `Store::open`).
fn header_of(file: &File, path: &Path) -> Result<FileHeader> {
    let file_len = file.metadata()?.len();
    file::read_header(file, path, file_len)
}

/// One pass of recovery over a locked log file: the maps, the outcome (which carries the
/// damage, if any), and the events and streams of the valid frames (before the damage).
struct Scan {
    header: FileHeader,
    recovery: Recovery,
    events: u64,
    streams: u64,
}

/// Scan the file read-only. Errors only for a file whose header cannot be used (and I/O).
fn scan(file: &File, path: &Path) -> Result<Scan> {
    // Refuses a file shorter than its header, like `Store::open`.
    let header = header_of(file, path)?;
    let mut index = Index::new(header.layout());
    // The counts after the last frame the index took whole (it may take part of one it
    // refuses).
    let (mut events, mut streams) = (0, 0);
    let recovery = recovery::recover(file, &header, &mut |body, at| {
        index.add_frame(body, at)?;
        (events, streams) = (index.len(), index.stream_count() as u64);
        Ok(())
    })?;
    Ok(Scan {
        header,
        recovery,
        events,
        streams,
    })
}

/// Check a log file (and its sidecar) without changing anything, and without keeping a
/// writer from starting. With no writer running it checks everything, torn tail included; while a writer has the file open it checks the
/// durable prefix that writer published, as a read-only store opens it, and says so
/// ([`VerifyReport::live`]). Every count and position of the report comes from one pass over
/// the file (for damage: the valid frames before it). Damage in the frames is a [`Verdict`],
/// not an error.
///
/// # Errors
/// As `Store::open` for the file header: [`Error::NotALog`],
/// [`Error::UnsupportedFormat`], or
/// [`Error::Corruption`] at [`Site::Header`];
/// [`Error::Locked`] while `repair` runs, or while a writer holds the
/// file without publishing a durable head (an older evstore);
/// [`Error::Io`] (reading the log or the sidecar).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("v.evs");
/// # drop(evstore::Store::open(&path)?);
/// let report = evstore::maintenance::verify(&path)?;
/// assert_eq!(report.verdict, evstore::maintenance::Verdict::Clean);
/// # Ok::<(), evstore::Error>(())
/// ```
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
    let path = path.as_ref();
    let file = File::open(path)?;
    if file::writer_is_live(&file)? {
        return verify_live(&file, path);
    }
    // No lock is held during the scan, so a writer is never kept from starting. One that
    // starts meanwhile may zero a torn tail under the scan, or make the verdict see its new
    // frames after bytes it is zeroing: damage found then is checked again as a live log.
    let Scan {
        header,
        recovery,
        events,
        streams,
    } = scan(&file, path)?;
    let Recovery {
        maps,
        file_len,
        outcome: o,
    } = recovery;
    let segments = maps.len() as u64;
    drop(maps);
    let verdict = match o.verdict {
        recovery::Verdict::Damaged(_) if file::writer_is_live(&file)? => {
            return verify_live(&file, path);
        }
        recovery::Verdict::Damaged(d) => Verdict::Corrupt {
            site: d.site(),
            what: explain_damage(d.what),
        },
        recovery::Verdict::TornTail { reason, .. } => Verdict::TornTail {
            segment: o.end_segment,
            offset: o.end_offset,
            reason,
        },
        recovery::Verdict::Clean => Verdict::Clean,
    };
    let sidecar = verify_sidecar(path, &header)?;
    Ok(VerifyReport {
        file_bytes: file_len,
        segment_size: header.segment_size,
        segments,
        frames: o.frames,
        events,
        streams,
        verdict,
        sidecar,
        live: false,
    })
}

/// [`verify`] of a log a writer has open: a read-only open checks every frame up to the
/// durable head the writer published.
fn verify_live(file: &File, path: &Path) -> Result<VerifyReport> {
    let header = header_of(file, path)?;
    let options = Options {
        read_only: true,
        create_if_missing: false,
        ..Options::default()
    };
    let file_bytes = file.metadata()?.len();
    let (frames, events, streams, segments, verdict) = match Store::open_with(path, options) {
        Ok(store) => {
            let stats = store.stats();
            let frames = store.recovery_report().frames;
            (
                frames,
                stats.events,
                stats.streams,
                stats.segments,
                Verdict::Clean,
            )
        }
        Err(Error::Corruption {
            site: site @ Site::Segment { .. },
            what,
        }) => (0, 0, 0, 0, Verdict::Corrupt { site, what }),
        Err(e) => return Err(e),
    };
    Ok(VerifyReport {
        file_bytes,
        segment_size: header.segment_size,
        segments,
        frames,
        events,
        streams,
        verdict,
        sidecar: verify_sidecar(path, &header)?,
        live: true,
    })
}

/// The head file beside the log at `log_path`: `<log path>.head`, where a writer publishes
/// its durable head for readers in other processes (docs/FORMAT.md §10). Remove it together
/// with the log when deleting a store; any writer recreates it.
pub fn head_file_path(log_path: impl AsRef<Path>) -> PathBuf {
    head::head_path(log_path.as_ref())
}

/// What `verify` adds to a hole that later frames prove durable (recovery's "frame N is
/// damaged or missing, but frame M ... proves ..."): the usual cause besides disk damage.
const LIVE_COPY_HINT: &str = "; a copy of the log taken while a store was writing it (cp, \
    rsync) looks exactly like this: back up a live store with `evstore backup` \
    (`Store::backup_to`), or copy it closed";

/// `what` of a damaged frame, with [`LIVE_COPY_HINT`] for a hole proven by later frames.
fn explain_damage(what: String) -> String {
    if what.contains("is damaged or missing, but frame") {
        what + LIVE_COPY_HINT
    } else {
        what
    }
}

/// Inspect the snapshot sidecar of the log at `log_path` without changing either file (the
/// sidecar is read, never opened for writing). `None` when there is no sidecar. Takes no
/// lock: usable while a store has the log open.
///
/// # Errors
/// The errors of [`verify`] for the log's header (except `Locked`); [`Error::Io`].
pub fn inspect_sidecar(log_path: impl AsRef<Path>) -> Result<Option<SidecarReport>> {
    let log_path = log_path.as_ref();
    let file = File::open(log_path)?;
    let header = header_of(&file, log_path)?;
    verify_sidecar(log_path, &header)
}

/// Check the sidecar read-only, with the checks opening it applies (it is not opened for
/// writing: opening repairs a sidecar, and verify changes nothing). Every field comes from one
/// read of one file handle.
fn verify_sidecar(log_path: &Path, header: &FileHeader) -> Result<Option<SidecarReport>> {
    let path = snapshot::sidecar_path(log_path);
    let check = match snapshot::inspect(&path, header.file_id) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(SidecarReport {
        path,
        bytes: check.bytes,
        live_snapshots: check.live,
        corrupt_records: check.corrupt_records,
        reset: check.reset,
    }))
}

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The copy of the file taken before any change; empty when nothing was changed (a
    /// clean or torn-tail-only log).
    pub backup: PathBuf,
    /// Segment where the log now ends (from 0).
    pub cut_segment: u64,
    /// Byte offset inside `cut_segment` where the log now ends.
    pub cut_offset: u64,
    /// Events kept (positions `0..events_kept`).
    pub events_kept: u64,
    /// Frames after the cut whose contents could still be read (and are now gone).
    pub lost_frames: Vec<LostFrame>,
    /// Whether the damaged frame itself was unreadable (its events are unknown).
    pub damaged_frame_unreadable: bool,
}

/// A frame removed by [`repair`]: what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostFrame {
    /// The frame's sequence number (docs/FORMAT.md §3.1).
    pub seq: u64,
    /// The segment it was in (from 0).
    pub segment: u64,
    /// Its byte offset inside that segment.
    pub offset: u64,
    /// (stream, first version, event count) of each append in the frame.
    pub appends: Vec<(String, u64, u32)>,
}

/// Repair a log that [`verify`] reports as corrupt: copy it to `<file>.bak-<UTC time>`, then
/// cut it at the damaged frame, keeping every frame before it. Reports what was lost. A clean
/// or torn-tail-only log is left unchanged (opening it trims a torn tail by itself) and
/// reported with nothing lost. Takes the exclusive lock.
///
/// # Errors
/// The errors of [`verify`] (the file header, [`Error::Locked`]);
/// [`Error::Io`] of the scan, the backup copy or the cut. A failure before
/// the cut changes nothing in the log.
pub fn repair(path: impl AsRef<Path>) -> Result<RepairReport> {
    let path = path.as_ref();
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    file::lock_file(&file, path, false, Options::default().lock_timeout)?;
    // Cutting the file under a reader's map would crash it (SIGBUS): no readers either.
    if !head::ofd_lock(&file, ReaderLock::Exclusive)? {
        return Err(Error::Locked {
            path: path.to_path_buf(),
        });
    }
    let backup = {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".bak-{stamp}"));
        PathBuf::from(name)
    };
    let Scan {
        header,
        recovery,
        events,
        ..
    } = scan(&file, path)?;
    let Recovery { maps, outcome, .. } = recovery;
    let recovery::Verdict::Damaged(damage) = outcome.verdict else {
        return Ok(RepairReport {
            backup: PathBuf::new(),
            cut_segment: outcome.end_segment,
            cut_offset: outcome.end_offset,
            events_kept: events,
            lost_frames: Vec::new(),
            damaged_frame_unreadable: false,
        });
    };
    let (segment, offset) = (damage.segment, damage.offset);
    // Salvage what follows, for the report, reading ahead over every segment's data.
    let (lost_frames, damaged_unreadable) = {
        for (k, seg) in maps.iter().enumerate() {
            recovery::prefetch_for_scan(&file, &header, k as u64, seg);
        }
        let slices: Vec<&[u8]> = maps.iter().map(|m| m.bytes()).collect();
        salvage(&header, &slices, segment, offset)
    };
    drop(maps);
    std::fs::copy(path, &backup)?;
    File::open(&backup)?.sync_all()?;
    file::sync_parent_dir(&backup)?;
    #[expect(unsafe_code, reason = "repair's cut: the unsafe log::file::truncate")]
    // SAFETY: the only maps of this file in this process, the scan's, were dropped just above;
    // other processes are kept out by the writer's flock and the readers' lock, both held.
    unsafe { file::truncate(&file, header.segment_start(segment) + offset) }?;
    file.sync_all()?;
    // The heads writers published may lie past the cut: the next writer publishes anew.
    head::remove_head(path)?;
    Ok(RepairReport {
        backup,
        cut_segment: segment,
        cut_offset: offset,
        events_kept: events,
        lost_frames,
        damaged_frame_unreadable: damaged_unreadable,
    })
}

/// Frames after the damage at (`segment`, `offset`) whose header and body both check out.
fn salvage(
    header: &FileHeader,
    slices: &[&[u8]],
    segment: u64,
    offset: u64,
) -> (Vec<LostFrame>, bool) {
    let mut lost = Vec::new();
    let mut damaged_unreadable = true;
    for (k, seg) in slices.iter().enumerate().skip(segment as usize) {
        let mut p = if k as u64 == segment {
            offset as usize
        } else {
            0
        };
        // Bounded by the segment length: p grows by at least FRAME_ALIGN per iteration.
        while p + FRAME_HEADER_SIZE <= seg.len() {
            if seg[p..p + FRAME_HEADER_SIZE].iter().all(|&b| b == 0) {
                p += FRAME_ALIGN;
                continue;
            }
            let Ok(h) = frame::decode_frame_header(&seg[p..], &header.file_id) else {
                p += FRAME_ALIGN;
                continue;
            };
            let Ok((h2, body)) = frame::check_frame(&seg[p..], &header.file_id, h.seq) else {
                p += FRAME_ALIGN;
                continue;
            };
            if k as u64 == segment && p as u64 == offset {
                damaged_unreadable = false;
            }
            let mut appends = Vec::new();
            let mut at = 0usize;
            while at < body.len() {
                let Ok(b) = frame::decode_batch_header(&body[at..]) else {
                    break;
                };
                appends.push((b.stream.to_string(), b.first_version, b.event_count));
                let mut off = b.events_offset;
                for _ in 0..b.event_count {
                    match frame::decode_event(&body[at + off..], header.layout()) {
                        Ok(ev) => off += ev.size,
                        Err(_) => break,
                    }
                }
                at += off;
            }
            if !appends.is_empty() {
                lost.push(LostFrame {
                    seq: h2.seq,
                    segment: k as u64,
                    offset: p as u64,
                    appends,
                });
            }
            p += h2.size() as usize;
        }
    }
    (lost, damaged_unreadable)
}
