//! The head file `<log path>.head` and the reader lock: how read-only stores in other processes
//! follow a live writer (docs/FORMAT.md §10).
//!
//! The writer publishes its **durable head** there after every `fdatasync` that made new
//! frames durable (and once on open, after recovery): the seq of the next frame, where it goes
//! (segment, offset) and the number of events before it. Every frame before that head is
//! durable, so a reader that never reads past a published head never acts on an event a
//! crash can take back, and never looks at a frame being written. The file is a hint, never
//! fsynced: a crash may leave an older (still true) head, a torn one (its CRC fails; readers
//! wait for the next) or none; recovery never reads it.
//!
//! Readers register with an open-file-description read lock (`F_OFD_SETLK`, `F_RDLCK`) on the
//! first byte of the log file; the only operation that shrinks a log file, `repair`, takes the
//! matching write lock first and so never runs while a reader may have the file mapped. (The
//! writer's exclusive `flock` on the log is a different lock type: readers and the writer
//! never block each other.)
//!
//! A waiting reader sleeps on an inotify watch of the head file ([`HeadWatch`]), which every
//! publication (a `pwrite`) wakes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Magic bytes of a head record.
const HEAD_MAGIC: [u8; 8] = *b"EVSTHEAD";
/// Version of the head record layout.
const HEAD_VERSION: u32 = 1;
/// Bytes of a head record: magic 8, version 4, flags 4, file id 16, next seq 8, end segment 8,
/// end offset 8, events 8, CRC 4, zero padding 4.
pub(crate) const HEAD_RECORD_SIZE: usize = 72;
/// Bytes covered by the record's CRC.
const HEAD_CRC_AT: usize = 64;
/// How often a reader re-reads a record whose CRC fails (a write in progress) before it gives
/// up for this round.
const TORN_READ_RETRIES: usize = 64;

const _: () = assert!(8 + 4 + 4 + 16 + 8 * 4 + 4 + 4 == HEAD_RECORD_SIZE);

/// The path of the head file of the log at `log_path`: `<log path>.head`.
pub(crate) fn head_path(log_path: &Path) -> PathBuf {
    let mut name = log_path.as_os_str().to_owned();
    name.push(".head");
    PathBuf::from(name)
}

/// A durable head: every frame with a seq below `next_seq` is durable, and frame `next_seq`
/// goes at (`end_segment`, `end_offset`); `events` events precede it (the next position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadRecord {
    /// The log's `file_id` (its header): a record of another log at the same path is ignored.
    pub file_id: [u8; 16],
    /// Seq of the first frame not covered.
    pub next_seq: u64,
    /// Segment where that frame goes.
    pub end_segment: u64,
    /// Offset inside `end_segment` where that frame goes.
    pub end_offset: u64,
    /// Events in the covered frames: the position of the first event not covered.
    pub events: u64,
}

impl HeadRecord {
    /// The record's bytes.
    pub(crate) fn encode(&self) -> [u8; HEAD_RECORD_SIZE] {
        let mut b = [0u8; HEAD_RECORD_SIZE];
        b[0..8].copy_from_slice(&HEAD_MAGIC);
        b[8..12].copy_from_slice(&HEAD_VERSION.to_le_bytes());
        // 12..16 flags = 0
        b[16..32].copy_from_slice(&self.file_id);
        b[32..40].copy_from_slice(&self.next_seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.end_segment.to_le_bytes());
        b[48..56].copy_from_slice(&self.end_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.events.to_le_bytes());
        let crc = crc32fast::hash(&b[..HEAD_CRC_AT]);
        b[HEAD_CRC_AT..HEAD_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode a record; `None` unless magic, version, flags and CRC check out.
    pub(crate) fn decode(b: &[u8]) -> Option<HeadRecord> {
        let b = b.get(..HEAD_RECORD_SIZE)?;
        let u32_at = |at: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(&b[at..at + 4]);
            u32::from_le_bytes(x)
        };
        let u64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(x)
        };
        if b[0..8] != HEAD_MAGIC
            || u32_at(8) != HEAD_VERSION
            || u32_at(12) != 0
            || crc32fast::hash(&b[..HEAD_CRC_AT]) != u32_at(HEAD_CRC_AT)
        {
            return None;
        }
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&b[16..32]);
        Some(HeadRecord {
            file_id,
            next_seq: u64_at(32),
            end_segment: u64_at(40),
            end_offset: u64_at(48),
            events: u64_at(56),
        })
    }
}

/// The writer's side: the head file, opened (created if missing) once per store open.
pub(crate) struct HeadPublisher {
    file: File,
    /// The last head written (seq), to skip syncs that made nothing new durable.
    published_seq: Option<u64>,
}

impl HeadPublisher {
    /// Open (or create, mode 0644 less the umask) the head file of the log at `log_path`.
    /// Never truncates it: readers may be reading it.
    ///
    /// # Errors
    /// The error of opening or creating the file.
    pub(crate) fn open(log_path: &Path) -> io::Result<HeadPublisher> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(head_path(log_path))?;
        Ok(HeadPublisher {
            file,
            published_seq: None,
        })
    }

    /// Publish `head` (one `pwrite` of the whole record at offset 0, never fsynced) unless a
    /// head with the same seq was published last. Call only once every frame before
    /// `head.next_seq` is durable.
    ///
    /// # Errors
    /// The error of the write (the caller carries on: readers then see an older head).
    pub(crate) fn publish(&mut self, head: &HeadRecord) -> io::Result<()> {
        if self.published_seq == Some(head.next_seq) {
            return Ok(());
        }
        self.file.write_all_at(&head.encode(), 0)?;
        self.published_seq = Some(head.next_seq);
        Ok(())
    }
}

/// Read the head file of the log at `log_path` for the log whose id is `file_id`. `Ok(None)`
/// when there is none, it belongs to another log, or it stays torn over
/// [`TORN_READ_RETRIES`] reads (a write in progress, or a crash's leftover: the writer writes
/// a whole record on its next publish).
///
/// # Errors
/// I/O errors other than `NotFound` opening or reading the file.
pub(crate) fn read_head(file: &File, file_id: &[u8; 16]) -> io::Result<Option<HeadRecord>> {
    let mut buf = [0u8; HEAD_RECORD_SIZE];
    for _ in 0..TORN_READ_RETRIES {
        let n = read_up_to(file, &mut buf)?;
        if n < HEAD_RECORD_SIZE {
            return Ok(None);
        }
        if let Some(r) = HeadRecord::decode(&buf) {
            return Ok((r.file_id == *file_id).then_some(r));
        }
        std::thread::yield_now();
    }
    Ok(None)
}

/// Open the head file of the log at `log_path` for reading; `Ok(None)` when it does not exist.
///
/// # Errors
/// I/O errors other than `NotFound`.
pub(crate) fn open_head_for_reading(log_path: &Path) -> io::Result<Option<File>> {
    match File::open(head_path(log_path)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `pread` into `buf` from offset 0 until it is full or the file ends; returns the bytes read.
fn read_up_to(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    // Bounded: each round reads at least one byte or stops.
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Remove the head file of the log at `log_path` (after `repair` cut the log: the heads it
/// recorded may lie past the new end). A missing file is fine.
///
/// # Errors
/// I/O errors other than `NotFound`.
pub(crate) fn remove_head(log_path: &Path) -> io::Result<()> {
    match std::fs::remove_file(head_path(log_path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Which lock [`ofd_lock`] takes on the first byte of the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReaderLock {
    /// A reader's registration (shared with other readers).
    Reader,
    /// What `repair` takes before it may cut the file: no reader may hold [`ReaderLock::Reader`].
    Exclusive,
}

/// Take `kind` on byte 0 of `file` with an open-file-description lock (`F_OFD_SETLK`): held
/// until every handle of this open file description is closed. `Ok(false)` if a conflicting
/// lock is held (a reader, for [`ReaderLock::Exclusive`]; a repair, for
/// [`ReaderLock::Reader`]). On targets without OFD locks this takes nothing and returns
/// `Ok(true)`.
///
/// # Errors
/// The error of `fcntl` other than a conflict.
#[cfg(target_os = "linux")]
pub(crate) fn ofd_lock(file: &File, kind: ReaderLock) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let l_type = match kind {
        ReaderLock::Reader => libc::F_RDLCK,
        ReaderLock::Exclusive => libc::F_WRLCK,
    };
    #[expect(unsafe_code, reason = "zeroed plain C struct for fcntl")]
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 1;
    lock.l_pid = 0; // required to be 0 for OFD locks
    #[expect(
        unsafe_code,
        reason = "fcntl(F_OFD_SETLK) has no safe wrapper in std or libc"
    )]
    // SAFETY: a syscall on a descriptor we own, with a pointer to a live, initialised `flock`
    // that the kernel only reads for F_OFD_SETLK.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &raw const lock) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// See the Linux version: without OFD locks, readers are not registered.
#[cfg(not(target_os = "linux"))]
pub(crate) fn ofd_lock(_file: &File, _kind: ReaderLock) -> io::Result<bool> {
    Ok(true)
}

/// A notification on the head file (Linux inotify): lets a waiting reader sleep until the
/// writer publishes instead of polling. Best effort: `None` where unavailable (no head file
/// yet, no inotify), and callers keep polling as a safety net.
#[cfg(target_os = "linux")]
pub(crate) struct HeadWatch {
    fd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
impl HeadWatch {
    /// Watch the head file of the log at `log_path` for writes (and its removal).
    pub(crate) fn new(log_path: &Path) -> Option<HeadWatch> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(head_path(log_path).as_os_str().as_bytes()).ok()?;
        #[expect(
            unsafe_code,
            reason = "inotify_init1 has no safe wrapper in std or libc"
        )]
        // SAFETY: a syscall with flags only; it returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        #[expect(
            unsafe_code,
            reason = "taking ownership of the descriptor just created"
        )]
        // SAFETY: `raw` is a valid descriptor that nothing else owns (just returned above).
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mask = libc::IN_MODIFY | libc::IN_ATTRIB | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
        #[expect(
            unsafe_code,
            reason = "inotify_add_watch has no safe wrapper in std or libc"
        )]
        // SAFETY: `fd` is a live inotify descriptor and `path` a NUL-terminated string that
        // outlives the call, which only reads it.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
        (wd >= 0).then_some(HeadWatch { fd })
    }

    /// Sleep until the watched file changes (or changed since the last call) or `timeout`
    /// passes, then drain the pending notifications. Returns whether the watch still holds:
    /// `false` once the file was removed or replaced (make a new watch).
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> bool {
        use std::os::fd::AsRawFd;
        let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        #[expect(unsafe_code, reason = "poll has no safe wrapper in std or libc")]
        // SAFETY: one live `pollfd` for one descriptor we own; the kernel writes `revents` only.
        let _ = unsafe { libc::poll(&raw mut pfd, 1, ms) };
        let mut buf = [0u8; 1024];
        let mut valid = true;
        // Bounded: a few reads empty the queue (non-blocking; stops at EAGAIN or 0).
        for _ in 0..16 {
            #[expect(
                unsafe_code,
                reason = "read(2) into a local buffer on a raw descriptor"
            )]
            // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else { break };
            if n == 0 {
                break;
            }
            valid &= !watch_ended(buf.get(..n).unwrap_or(&[]));
        }
        valid
    }
}

/// Whether a buffer of `inotify_event`s (wd i32, mask u32, cookie u32, len u32, then `len`
/// name bytes; native endian) says the watch ended: the file was removed or moved
/// (`IN_DELETE_SELF`, `IN_MOVE_SELF`) or the watch was dropped (`IN_IGNORED`).
#[cfg(target_os = "linux")]
fn watch_ended(events: &[u8]) -> bool {
    const EVENT_HEADER: usize = 16;
    let ended = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED;
    let mut at = 0usize;
    // Bounded: every round moves `at` forward by at least the header size.
    while let Some(h) = events.get(at..at + EVENT_HEADER) {
        let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        if word(4) & ended != 0 {
            return true;
        }
        at = at
            .saturating_add(EVENT_HEADER)
            .saturating_add(word(12) as usize);
    }
    false
}

/// Without inotify: never available (readers poll).
#[cfg(not(target_os = "linux"))]
pub(crate) struct HeadWatch;

#[cfg(not(target_os = "linux"))]
impl HeadWatch {
    /// Not available on this target.
    pub(crate) fn new(_log_path: &Path) -> Option<HeadWatch> {
        None
    }
    /// Never called (no watch is ever made).
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HeadRecord {
        HeadRecord {
            file_id: [7; 16],
            next_seq: 12,
            end_segment: 3,
            end_offset: 4096,
            events: 99,
        }
    }

    #[test]
    fn head_record_round_trips_and_rejects_any_flipped_byte() {
        let r = sample();
        let b = r.encode();
        assert_eq!(HeadRecord::decode(&b), Some(r));
        for i in 0..HEAD_CRC_AT + 4 {
            let mut bad = b;
            bad[i] ^= 0x40;
            assert_eq!(HeadRecord::decode(&bad), None, "byte {i}");
        }
        assert_eq!(HeadRecord::decode(&b[..HEAD_RECORD_SIZE - 1]), None);
    }

    #[test]
    fn head_of_another_log_is_ignored() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("x.evs");
        let mut p = HeadPublisher::open(&log)?;
        p.publish(&sample())?;
        let f = open_head_for_reading(&log)?.ok_or_else(|| io::Error::other("missing"))?;
        assert_eq!(read_head(&f, &[7; 16])?, Some(sample()));
        assert_eq!(read_head(&f, &[8; 16])?, None);
        Ok(())
    }

    #[test]
    fn a_head_watch_wakes_on_a_publication() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("w.evs");
        let mut p = HeadPublisher::open(&log)?;
        let Some(watch) = HeadWatch::new(&log) else {
            return Ok(()); // no inotify here: readers poll
        };
        let t = std::time::Instant::now();
        watch.wait(std::time::Duration::from_millis(20));
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(15),
            "nothing published"
        );
        p.publish(&sample())?;
        let t = std::time::Instant::now();
        watch.wait(std::time::Duration::from_secs(10));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "woken by the write"
        );
        Ok(())
    }

    #[test]
    fn readers_exclude_the_exclusive_lock_and_share_among_themselves() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("l");
        std::fs::write(&path, b"x")?;
        let a = File::open(&path)?;
        let b = File::open(&path)?;
        // A write lock needs a descriptor open for writing (repair's is).
        let c = OpenOptions::new().read(true).write(true).open(&path)?;
        assert!(ofd_lock(&a, ReaderLock::Reader)?);
        assert!(ofd_lock(&b, ReaderLock::Reader)?);
        if cfg!(target_os = "linux") {
            assert!(!ofd_lock(&c, ReaderLock::Exclusive)?);
            drop((a, b));
            assert!(ofd_lock(&c, ReaderLock::Exclusive)?);
            let d = File::open(&path)?;
            assert!(!ofd_lock(&d, ReaderLock::Reader)?);
        }
        Ok(())
    }
}
