//! File space: reserving a segment on disk (`posix_fallocate`) and asking the file system which
//! ranges hold no data (`lseek` `SEEK_DATA` / `SEEK_HOLE`), so the recovery verdict and
//! read-ahead never touch the preallocated, never-written rest of a segment
//! (docs/DESIGN.md, "Memory maps and SIGBUS"; docs/PERFORMANCE.md, "The unwritten tail").

use std::fs::File;
use std::io;

/// Reserve `[offset, offset + len)` of the file on disk (so a full disk shows up here, not as
/// a failed write later), extending the file if needed. On file systems without
/// `posix_fallocate` support the file is extended (sparse) instead.
///
/// # Errors
/// `InvalidInput` for an offset or length beyond `off_t`; the errno of `posix_fallocate`
/// (e.g. `ENOSPC`), or the error of measuring or extending the file.
pub fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let l = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
    #[expect(
        unsafe_code,
        reason = "posix_fallocate has no safe wrapper in std or libc"
    )]
    // SAFETY: plain syscall wrapper on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, l) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate support: fall back to extending the file (sparse).
        libc::EOPNOTSUPP | libc::EINVAL => {
            if file.metadata()?.len() < offset + len {
                file.set_len(offset + len)?;
            }
            Ok(())
        }
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// The first offset `>= offset` of `file` that may hold data: bytes in between are a hole or
/// an unwritten (preallocated, never written) extent and read as zeros. `None`: everything
/// from `offset` to the end of the file reads as zeros. Uses `lseek(SEEK_DATA)`; where the
/// file system does not support it, or on any error, returns `Some(offset)` ("read to find
/// out"), which is always correct.
///
/// ext4 and XFS report an unwritten extent as data when the page cache holds data for it
/// (written but not yet flushed), so a process crash right after a `pwrite` still shows it.
pub fn next_data(file: &File, offset: u64) -> Option<u64> {
    match seek(file, offset, libc::SEEK_DATA) {
        Ok(d) => Some(d.max(offset)),
        Err(Some(libc::ENXIO)) => None,
        Err(_) => Some(offset),
    }
}

/// The first offset `>= offset` of `file` that is a hole or an unwritten extent (reads as
/// zeros without holding data): `lseek(SEEK_HOLE)`. The end of the file counts as a hole. On
/// file systems without support (or any error) returns `u64::MAX`: "data everywhere", which is
/// always safe for its use (bounding read-ahead to log data).
pub(crate) fn next_hole(file: &File, offset: u64) -> u64 {
    seek(file, offset, libc::SEEK_HOLE).map_or(u64::MAX, |h| h.max(offset))
}

/// `lseek(file, offset, whence)`: the resulting offset, or the errno (`None`: not a syscall
/// error, e.g. an offset beyond `off_t`).
fn seek(file: &File, offset: u64, whence: libc::c_int) -> Result<u64, Option<i32>> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(offset).map_err(|_| None)?;
    #[expect(
        unsafe_code,
        reason = "lseek with SEEK_DATA / SEEK_HOLE has no safe wrapper in std or libc"
    )]
    // SAFETY: plain syscall wrapper on a file descriptor we own; no memory is passed. Moving
    // the file position is harmless: every read and write of the log names its offset
    // (pread/pwrite/mmap).
    let rc = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    u64::try_from(rc).map_err(|_| io::Error::last_os_error().raw_os_error())
}

/// Make `[offset, offset + len)` of the file read as zeros without changing the file's size
/// (`fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`; where the file system does not
/// support it, the range is overwritten with zeros). How a writer's open trims a torn tail:
/// the file never shrinks, so a reader in another process that maps those bytes reads zeros,
/// never SIGBUS (docs/FORMAT.md §5, §10). Does not sync.
///
/// # Errors
/// `InvalidInput` for an offset or length beyond `off_t`; the errno of `fallocate` other than
/// "not supported"; the error of the zero-filling writes.
pub(crate) fn zero_range(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 1 << 20;
    if len == 0 {
        return Ok(());
    }
    if punch_hole(file, offset, len)? {
        return Ok(());
    }
    let zeros = vec![0u8; CHUNK as usize];
    let end = offset.saturating_add(len);
    let mut at = offset;
    // Bounded: each round advances by at least one byte up to `end`.
    while at < end {
        let n = (end - at).min(CHUNK);
        file.write_all_at(&zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// `fallocate(PUNCH_HOLE | KEEP_SIZE)` over the range: `Ok(false)` where unsupported.
#[cfg(target_os = "linux")]
fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let l = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
    #[expect(unsafe_code, reason = "fallocate has no safe wrapper in std or libc")]
    // SAFETY: plain syscall wrapper on a file descriptor we own; no memory is passed. Punching
    // keeps the file's size, so no map of the file loses its pages (they read as zeros).
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            l,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => Ok(false),
        _ => Err(e),
    }
}

/// Without `fallocate`: always "unsupported" (the caller writes zeros).
#[cfg(not(target_os = "linux"))]
fn punch_hole(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}
