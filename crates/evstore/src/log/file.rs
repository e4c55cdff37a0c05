//! The log file itself: opening (and creating) it, its lock, reading and checking its header,
//! stale temporary files of interrupted creations, directory fsyncs, and mapping and cutting
//! it segment by segment (docs/FORMAT.md §1–§2, §5). What its bytes mean is elsewhere: the
//! header layout in [`super::segment`], frames in [`super::frame`], the scan in
//! [`super::recovery`].

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Site};
use crate::log::segment::{
    validate_segment_size, FileHeader, HeaderError, Segment, FORMAT_VERSION, HEADER_SIZE,
};
use crate::log::space;
use crate::types::Options;

/// Open the log at `path` for a store opened with `options`, ready to be scanned: open it
/// (creating it if missing and allowed, see [`open_or_create`]; read-only opens never create),
/// take the lock (shared for read-only), initialise a zero-length file in place, read and check
/// the header, and allocate segment 0 if initialisation was interrupted before it. Returns the
/// locked file and its header; the file is at least header plus segment 0 long, except for a
/// read-only open, which changes nothing.
///
/// # Errors
/// [`Error::NotALog`] for an empty file that may not be initialised (read-only, or
/// `create_if_missing` off); [`Error::InvalidInput`] for an invalid `options.segment_size`
/// when the file is to be created or initialised (an existing log keeps its own size and
/// ignores the option); [`Error::Locked`]; the errors of [`read_header`]; [`Error::Io`].
pub(crate) fn open_log(path: &Path, options: &Options) -> Result<(File, FileHeader)> {
    let read_only = options.read_only;
    let file = if read_only {
        File::open(path)?
    } else {
        open_or_create(path, options)?
    };
    lock_file(&file, path, read_only, options.lock_timeout)?;
    let mut file_len = file.metadata()?.len();
    if file_len == 0 {
        if read_only || !options.create_if_missing {
            return Err(Error::NotALog {
                path: path.to_path_buf(),
                what: "the file is empty".into(),
            });
        }
        // In place (the file may be a path the caller prepared, with its owner and mode),
        // then fsynced, and the directory fsynced again whatever `open_or_create` did: the
        // name may be as new as the file, and a power cut must not take the log once an
        // append is acknowledged. A crash before that leaves an empty file (initialised
        // again on the next open) or a header whose segment 0 is missing or partial
        // (allocated on the next open, below); docs/RELIABILITY.md lists the states.
        validate_segment_size(options.segment_size).map_err(Error::InvalidInput)?;
        initialize(&file, options.segment_size)?;
        sync_parent_dir(path)?;
        file_len = file.metadata()?.len();
    }
    let header = read_header(&file, path, file_len)?;
    if file_len < HEADER_SIZE + header.segment_size && !read_only {
        // Header only (initialisation interrupted): segment 0 was never used.
        space::allocate(&file, HEADER_SIZE, header.segment_size)?;
        file.sync_all()?;
    }
    Ok((file, header))
}

/// Open the log for writing, creating it if missing (and allowed). First removes temporary
/// files that interrupted creations of this log left behind
/// ([`remove_stale_creating_files`]). On return the file's directory entry is durable:
/// a new file is linked into place and the directory fsynced by [`create_file`]; for an
/// existing file the directory is fsynced here, because nothing proves its name durable — it
/// may be an empty file made just before (initialised in place by the caller), a file whose
/// initialisation was interrupted, or a log whose creator died between linking it and fsyncing
/// the directory — and a power cut must not take the log, acknowledged events included.
fn open_or_create(path: &Path, options: &Options) -> Result<File> {
    // Best effort: garbage costs space, never correctness (see the function's docs).
    let _ = remove_stale_creating_files(path);
    let open = || OpenOptions::new().read(true).write(true).open(path);
    match open() {
        Ok(f) => {
            sync_parent_dir(path)?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && options.create_if_missing => {
            // The option only shapes new files: checked here, not for an existing log.
            validate_segment_size(options.segment_size).map_err(Error::InvalidInput)?;
            create_file(path, options.segment_size)?;
            Ok(open()?)
        }
        Err(e) => Err(Error::Io(e)),
    }
}

/// Read and check the file header of `file` (`file_len` bytes long, measured by the caller).
///
/// # Errors
/// [`Error::NotALog`] for a file shorter than the 64 bytes a header uses or with the wrong
/// magic; [`Error::UnsupportedFormat`] for another format version; [`Error::Corruption`] at
/// [`Site::Header`] for a header that fails its other checks (offset 0) or a file cut inside
/// its 4096-byte header (offset: the file's length); [`Error::Io`].
pub(crate) fn read_header(file: &File, path: &Path, file_len: u64) -> Result<FileHeader> {
    let mut buf = vec![0u8; file_len.min(HEADER_SIZE) as usize];
    file.read_exact_at(&mut buf, 0)?;
    let header = FileHeader::decode(&buf).map_err(|e| match e {
        HeaderError::NotALog(what) => Error::NotALog {
            path: path.to_path_buf(),
            what,
        },
        HeaderError::Unsupported(found) => Error::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        },
        HeaderError::Corrupt(what) => Error::Corruption {
            site: Site::Header { offset: 0 },
            what,
        },
    })?;
    if file_len < HEADER_SIZE {
        return Err(Error::Corruption {
            site: Site::Header { offset: file_len },
            what: format!("file is {file_len} bytes, shorter than its {HEADER_SIZE}-byte header"),
        });
    }
    Ok(header)
}

/// Take the `flock` on `file` (shared for readers, exclusive for writers), retrying with short
/// sleeps for up to `timeout`. The lock lasts as long as the open file description: until the
/// last handle to it (or map of it) is gone.
///
/// # Errors
/// [`Error::Locked`] naming `path` when the lock is still held elsewhere after `timeout`;
/// [`Error::Io`].
pub(crate) fn lock_file(
    file: &File,
    path: &Path,
    shared: bool,
    timeout: std::time::Duration,
) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(1);
    // Bounded by the deadline.
    loop {
        let attempt = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(Error::Io(e)),
            Err(TryLockError::WouldBlock) => {
                let now = std::time::Instant::now();
                if now >= deadline {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Whether a writer holds the `flock` of the log `file` now: a probe with a shared lock,
/// released at once, so a writer starting meanwhile is never kept out (docs/FORMAT.md §10).
///
/// # Errors
/// The error of `flock` other than a conflict, or of the unlock.
pub(crate) fn writer_is_live(file: &File) -> io::Result<bool> {
    match file.try_lock_shared() {
        Ok(()) => {
            file.unlock()?;
            Ok(false)
        }
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// fsync the directory holding `path`, so a new name in it is durable.
pub(crate) fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(dir)?.sync_all()
}

/// The name prefix of the temporary files that build a new log at `path`:
/// `.<file name>.creating-`, followed by 32 hex digits (a random UUID).
fn creating_prefix(path: &Path) -> io::Result<std::ffi::OsString> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".creating-");
    Ok(prefix)
}

/// A temporary creation file of a dead creator must be at least this old to be removed when it
/// is empty (see [`remove_stale_creating_files`]).
pub(crate) const STALE_EMPTY_CREATING_FILE: std::time::Duration =
    std::time::Duration::from_secs(10);

/// Create a new log file at `path`: header and segment 0 are written and made durable under a
/// temporary name (`.<name>.creating-<uuid>`, beside it), which is then hard-linked into place
/// and the directory fsynced, so the real path never shows a half-written header and its name
/// is durable before the first append is acknowledged. Returns `Ok(false)` if another process
/// created the file first (the directory is fsynced then too: that creator may have died before
/// doing it).
///
/// The creator holds an exclusive `flock` on its temporary file from right after creating it
/// until the temporary name is gone, which tells [`remove_stale_creating_files`] the file is in
/// use. A crash can leave the temporary file behind (a whole preallocated segment); the next
/// read-write open of the log removes it.
pub(crate) fn create_file(path: &Path, segment_size: u64) -> io::Result<bool> {
    let mut tmp_name = creating_prefix(path)?;
    tmp_name.push(uuid::Uuid::new_v4().simple().to_string());
    let tmp = path.with_file_name(tmp_name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let result = (|| {
        f.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => e,
            // A name made a moment ago from a random UUID: nobody else can hold it.
            std::fs::TryLockError::WouldBlock => {
                io::Error::new(io::ErrorKind::WouldBlock, "temporary log file is locked")
            }
        })?;
        initialize(&f, segment_size)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    // Unlocks only now, with the temporary name gone. (Once linked, the temporary file is the
    // log itself: the lock is on the log's inode and is released before anyone opens it here.)
    drop(f);
    let created = result?;
    sync_parent_dir(path)?;
    Ok(created)
}

/// Remove the temporary files that creations of the log at `path` left behind when they were
/// killed (or lost power) before removing them: the names `.<file name>.creating-<32 hex>`
/// beside `path`, and no others (not those of another log). Returns how many were removed.
///
/// A file is left alone while it may belong to a creator that is still running:
/// * if it is locked: a creator holds an exclusive `flock` on its file until the file's
///   temporary name is gone ([`create_file`]), and a dead process holds no lock (once linked,
///   the file is also the log itself, whose open store holds its lock: kept until it closes);
/// * if it is empty and younger than [`STALE_EMPTY_CREATING_FILE`]: a creator takes its lock
///   right after creating the file and before writing anything, so only an empty file can be
///   unlocked while in use, for that moment. (An empty file costs no space; a later open
///   removes it.)
///
/// Removing a name that is a hard link to the log (a creator killed between linking and
/// removing it) removes only that extra name. Best effort: an entry that cannot be read,
/// opened or removed is skipped.
pub(crate) fn remove_stale_creating_files(path: &Path) -> io::Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    let prefix = creating_prefix(path)?;
    let prefix = prefix.as_bytes();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(suffix) = name.as_bytes().strip_prefix(prefix) else {
            continue;
        };
        if suffix.len() != 32 || !suffix.iter().all(u8::is_ascii_hexdigit) {
            continue;
        }
        let candidate = dir.join(&name);
        // Never follow a symlink planted under such a name; only regular files are ours.
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_file() => {}
            _ => continue,
        }
        let Ok(f) = File::open(&candidate) else {
            continue;
        };
        // Look before taking the lock: a live creator locks its file right after creating it
        // and writes only then, so a young empty file may be one whose creator has not locked
        // it yet. Probing its lock would make that creator's own lock attempt fail.
        let Ok(meta) = f.metadata() else { continue };
        let young = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < STALE_EMPTY_CREATING_FILE);
        if meta.len() == 0 && young {
            continue;
        }
        if f.try_lock().is_err() {
            continue; // a creator (or the store, once linked) is using it
        }
        if std::fs::remove_file(&candidate).is_ok() {
            removed += 1;
        }
        drop(f);
    }
    Ok(removed)
}

/// Write a fresh header and allocate segment 0 in an empty file, then fsync it.
pub(crate) fn initialize(file: &File, segment_size: u64) -> io::Result<()> {
    let header = FileHeader::new(segment_size);
    file.write_all_at(&header.encode(), 0)?;
    space::allocate(file, HEADER_SIZE, segment_size)?;
    file.sync_all()
}

/// Map segment `k` of `file`: `len` bytes from the segment's start (the segment size, or what
/// a partial last segment holds). The one caller of [`Segment::map`]: it checks that the file
/// holds every byte of the range, so no map ever covers bytes past the end of the file.
///
/// # Errors
/// `UnexpectedEof` when the file is shorter than the range; the errors of [`Segment::map`].
#[expect(
    unsafe_code,
    reason = "the one caller of the unsafe Segment::map: checks the first half of its contract"
)]
pub(crate) fn map_segment(
    file: &File,
    header: &FileHeader,
    k: u64,
    len: u64,
) -> io::Result<Segment> {
    let end = header.segment_start(k).saturating_add(len);
    let file_len = file.metadata()?.len();
    if file_len < end {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("segment {k} would end at byte {end}, past the end of the file ({file_len})"),
        ));
    }
    // SAFETY: the file holds every byte of the range (checked just above). It is not shrunk
    // while the map is alive: this crate shrinks a log file only through `truncate`, whose
    // contract forbids live maps of the bytes it cuts, and other processes are kept out by the
    // lock every open takes first (one that ignores the lock can still crash a reader: the
    // contract of SQLite's or LMDB's memory-mapped I/O, see the docs of `log::segment`).
    unsafe { Segment::map(file, header, k, len) }
}

/// Cut `file` to `len` bytes: the only way this crate shrinks a log file (trimming a torn tail
/// on open, `maintenance::repair`'s cut). Growing goes through [`space::allocate`].
///
/// # Safety
///
/// No [`Segment`] of `file` that maps bytes at or past `len` may be alive (nor a slice borrowed
/// from one): reading such a byte after the cut would raise SIGBUS. Drop the maps first.
#[expect(
    unsafe_code,
    reason = "cutting a file under a live map raises SIGBUS: an unsafe fn, so every cut states \
              why no map of the cut bytes is alive"
)]
pub(crate) unsafe fn truncate(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}
