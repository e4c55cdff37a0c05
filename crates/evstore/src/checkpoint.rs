//! Checkpoint files shared by projections and sagas: the file format, its sibling paths beside
//! the log, name validation, and loading a checkpoint that the log still confirms.
//!
//! A checkpoint records a position in the global log (the next position to process), the id of
//! the event just before it, and an encoded state (empty for sagas). It is written atomically
//! ([`Checkpoint::write`]: temp file, fsync, rename, directory fsync), so a crash leaves the old
//! or the new file. [`load_checkpoint`] reads one and checks it against the log; when it cannot
//! be used it says why, as a [`RebuildReason`], and the runner starts from position 0.
//!
//! Projections keep theirs in `<log path>.proj-<NAME>` ([`checkpoint_path`]), sagas in
//! `<log path>.saga-<NAME>` ([`saga_checkpoint_path`]); the items are re-exported from
//! [`crate::projection`] and [`crate::saga`].
//!
//! # File format (little-endian)
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `EVSTCKP\0` |
//! | 4 | checkpoint format version: 2 (state in MessagePack), 3 (state in JSON), or 1 (legacy: state in bincode) |
//! | 4 | version of the code that wrote the state ([`Projection::VERSION`], 1 for sagas) |
//! | 8 | position: the next global position to apply |
//! | 1 | 1 if the id of the event at `position - 1` follows, else 0 |
//! | 16 | that event id (zeros when absent) |
//! | 8 | state length `n` |
//! | n | state, through [`crate::codec`] |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The id is present exactly when `position > 0`; `n` is at most
//! [`codec::MAX_DECODE_BYTES`].
//!
//! [`Projection::VERSION`]: crate::projection::Projection::VERSION
//!
//! ```
//! use evstore::checkpoint::{Checkpoint, CheckpointError};
//! use evstore::codec::Codec;
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("x.evs.proj-count");
//! assert!(matches!(Checkpoint::read(&path), Err(CheckpointError::Missing)));
//! let cp = Checkpoint {
//!     version: 1, position: 0, last_event_id: None, state: vec![7], state_codec: Codec::CURRENT,
//! };
//! cp.write(&path)?;
//! assert_eq!(Checkpoint::read(&path)?, cp);
//! # Ok::<(), CheckpointError>(())
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::codec::{self, Codec};
use crate::error::{Error, Result};
use crate::log::segment::sync_parent_dir;
use crate::subscription::{EventSource, Subscription};

/// Magic bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"EVSTCKP\0";
/// Checkpoint file format version written by this build: the state is MessagePack.
pub const CHECKPOINT_FORMAT: u32 = 2;
/// Format version of checkpoints written before the MessagePack codec: the state is bincode.
/// Still read.
pub const CHECKPOINT_FORMAT_LEGACY: u32 = 1;
/// Format version of checkpoints whose state is JSON ([`Projection::STATE_FORMAT`]).
///
/// [`Projection::STATE_FORMAT`]: crate::projection::Projection::STATE_FORMAT
pub const CHECKPOINT_FORMAT_JSON: u32 = 3;
/// Bytes before the state: magic, format, version, position, id flag, id, state length.
const CHECKPOINT_HEADER: usize = 8 + 4 + 4 + 8 + 1 + 16 + 8;
/// Bytes of the trailing CRC.
const CRC_LEN: usize = 4;
/// Longest projection / saga name in bytes (it becomes part of a file name).
pub const MAX_NAME_LEN: usize = 64;

/// The checkpoint file of projection `name` for the log at `log_path`:
/// `<log path>.proj-<name>`.
///
/// ```
/// let p = evstore::projection::checkpoint_path(std::path::Path::new("/data/shop.evs"), "orders");
/// assert_eq!(p, std::path::PathBuf::from("/data/shop.evs.proj-orders"));
/// ```
pub fn checkpoint_path(log_path: &Path, name: &str) -> PathBuf {
    sibling_path(log_path, &format!(".proj-{name}"))
}

/// The checkpoint file of saga `name` for the log at `log_path`: `<log path>.saga-<name>`.
///
/// ```
/// let p = evstore::saga::saga_checkpoint_path(std::path::Path::new("/data/shop.evs"), "Order");
/// assert_eq!(p, std::path::PathBuf::from("/data/shop.evs.saga-Order"));
/// ```
pub fn saga_checkpoint_path(log_path: &Path, name: &str) -> PathBuf {
    sibling_path(log_path, &format!(".saga-{name}"))
}

/// `<path><suffix>`: a file beside `path` (same directory, `suffix` appended to the name).
pub(crate) fn sibling_path(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Check a projection or saga name: 1..=[`MAX_NAME_LEN`] bytes of ASCII letters, digits, `-`,
/// `_` (it becomes part of a file name).
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the rule.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "name {name:?} must be 1..={MAX_NAME_LEN} bytes of ASCII letters, digits, '-' or '_'"
        )))
    }
}

/// The content of a checkpoint file: a position in the log and the state (encoded) that
/// includes every event before it. Shared by projections and sagas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Version of the code that wrote the state.
    pub version: u32,
    /// The next global position to process.
    pub position: u64,
    /// Id of the event at `position - 1` (`None` exactly when `position` is 0), to check that
    /// the log still holds the history the state was built from.
    pub last_event_id: Option<Uuid>,
    /// The encoded state (at most [`codec::MAX_DECODE_BYTES`] bytes).
    pub state: Vec<u8>,
    /// The codec the state is in: [`Codec::CURRENT`] for what this build writes; read from
    /// the format version ([`CHECKPOINT_FORMAT`] or [`CHECKPOINT_FORMAT_LEGACY`]).
    pub state_codec: Codec,
}

/// Why a checkpoint file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// No file.
    #[error("no checkpoint file")]
    Missing,
    /// The file is damaged (bad magic, length, CRC...): what is wrong.
    #[error("damaged checkpoint: {0}")]
    Damaged(String),
    /// The file could not be read or written.
    #[error("checkpoint I/O error: {0}")]
    Io(#[from] io::Error),
    /// The checkpoint cannot be written as given (state too large, or an event id present
    /// when the position is 0 / absent when it is not): what is wrong. Nothing was written.
    #[error("invalid checkpoint: {0}")]
    Invalid(String),
}

impl From<CheckpointError> for Error {
    /// Writing a checkpoint fails with [`Error::Io`] or [`Error::InvalidInput`]; a missing or
    /// damaged file (reading) becomes an [`Error::Io`] of kind `NotFound` / `InvalidData`.
    fn from(e: CheckpointError) -> Error {
        match e {
            CheckpointError::Io(e) => Error::Io(e),
            CheckpointError::Invalid(what) => Error::InvalidInput(what),
            CheckpointError::Missing => Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                "no checkpoint file",
            )),
            CheckpointError::Damaged(what) => Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("damaged checkpoint: {what}"),
            )),
        }
    }
}

/// Little-endian fields of a checkpoint body whose length was checked to hold the header.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> std::result::Result<[u8; N], CheckpointError> {
        self.0
            .get(at..at + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| CheckpointError::Damaged("shorter than a checkpoint header".into()))
    }

    fn u32_at(&self, at: usize) -> std::result::Result<u32, CheckpointError> {
        self.bytes::<4>(at).map(u32::from_le_bytes)
    }

    fn u64_at(&self, at: usize) -> std::result::Result<u64, CheckpointError> {
        self.bytes::<8>(at).map(u64::from_le_bytes)
    }
}

fn damaged(what: &str) -> CheckpointError {
    CheckpointError::Damaged(what.to_string())
}

impl Checkpoint {
    /// Encode as a checkpoint file's bytes (see the [module docs](self) for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_HEADER + self.state.len() + CRC_LEN);
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        let format = match self.state_codec {
            Codec::Bincode2 => CHECKPOINT_FORMAT_LEGACY,
            Codec::Json => CHECKPOINT_FORMAT_JSON,
            _ => CHECKPOINT_FORMAT,
        };
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        if let Some(id) = self.last_event_id {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        } else {
            out.push(0);
            out.extend_from_slice(&[0u8; 16]);
        }
        out.extend_from_slice(&(self.state.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.state);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decode a checkpoint file's bytes, treating them as hostile.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Damaged`]: shorter than the header, CRC mismatch, bad magic, another
    /// format version, an id flag other than 0/1, a state length that disagrees with the byte
    /// count, or an id present when the position is 0 (absent when it is not).
    pub fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, CheckpointError> {
        let body = Checkpoint::checked_body(bytes)?;
        let fields = Fields(body);
        if fields.bytes::<8>(0)? != CHECKPOINT_MAGIC {
            return Err(damaged("bad magic"));
        }
        let state_codec = match fields.u32_at(8)? {
            CHECKPOINT_FORMAT => Codec::CURRENT,
            CHECKPOINT_FORMAT_LEGACY => Codec::Bincode2,
            CHECKPOINT_FORMAT_JSON => Codec::Json,
            format => {
                return Err(CheckpointError::Damaged(format!(
                    "checkpoint format {format}, expected {CHECKPOINT_FORMAT} or {CHECKPOINT_FORMAT_LEGACY}"
                )))
            }
        };
        let version = fields.u32_at(12)?;
        let position = fields.u64_at(16)?;
        let last_event_id = match fields.bytes::<1>(24)? {
            [0] => None,
            [1] => Some(Uuid::from_bytes(fields.bytes::<16>(25)?)),
            _ => return Err(damaged("bad event-id flag")),
        };
        let state = Checkpoint::state_of(body, fields.u64_at(41)?)?;
        if (position == 0) != last_event_id.is_none() {
            return Err(damaged("event id present iff position > 0 does not hold"));
        }
        Ok(Checkpoint {
            version,
            position,
            last_event_id,
            state: state.to_vec(),
            state_codec,
        })
    }

    /// The bytes before the CRC, once the length and the CRC are checked.
    fn checked_body(bytes: &[u8]) -> std::result::Result<&[u8], CheckpointError> {
        if bytes.len() < CHECKPOINT_HEADER + CRC_LEN {
            return Err(damaged("shorter than a checkpoint header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let crc = <[u8; CRC_LEN]>::try_from(crc)
            .map(u32::from_le_bytes)
            .map_err(|_| damaged("shorter than a checkpoint header"))?;
        if crc32fast::hash(body) != crc {
            return Err(damaged("CRC mismatch"));
        }
        Ok(body)
    }

    /// The state bytes of `body`, which must be exactly `len` long after the header.
    fn state_of(body: &[u8], len: u64) -> std::result::Result<&[u8], CheckpointError> {
        let state = body.get(CHECKPOINT_HEADER..).unwrap_or_default();
        if len != state.len() as u64 {
            return Err(damaged("state length does not match the file length"));
        }
        Ok(state)
    }

    /// Read the checkpoint at `path`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Missing`] when there is no file; [`CheckpointError::Damaged`] as in
    /// [`Checkpoint::decode`], or when the file is larger than a checkpoint can be (a state
    /// over [`codec::MAX_DECODE_BYTES`]); [`CheckpointError::Io`] when it cannot be read.
    pub fn read(path: &Path) -> std::result::Result<Checkpoint, CheckpointError> {
        let not_found_is_missing = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => CheckpointError::Missing,
            _ => CheckpointError::Io(e),
        };
        let len = fs::metadata(path).map_err(not_found_is_missing)?.len();
        if len > (codec::MAX_DECODE_BYTES + CHECKPOINT_HEADER + CRC_LEN) as u64 {
            return Err(CheckpointError::Damaged(format!(
                "{len} bytes, more than a checkpoint can hold"
            )));
        }
        let bytes = fs::read(path).map_err(not_found_is_missing)?;
        Checkpoint::decode(&bytes)
    }

    /// Replace the file at `path` with this checkpoint atomically: write `<path>.tmp`, fsync
    /// it, rename it over `path`, fsync the directory. A crash leaves the old or the new file.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Invalid`] (nothing written) when the state is larger than
    /// [`codec::MAX_DECODE_BYTES`] or `last_event_id` is present when `position` is 0 (absent
    /// when it is not): such a file would read back as damaged. [`CheckpointError::Io`] when
    /// a step fails; `path` then still holds the old checkpoint (or none).
    pub fn write(&self, path: &Path) -> std::result::Result<(), CheckpointError> {
        if self.state.len() > codec::MAX_DECODE_BYTES {
            return Err(CheckpointError::Invalid(format!(
                "state of {} bytes exceeds the {} bytes a checkpoint can hold",
                self.state.len(),
                codec::MAX_DECODE_BYTES
            )));
        }
        if (self.position == 0) != self.last_event_id.is_none() {
            return Err(CheckpointError::Invalid(format!(
                "position {} with event id {:?}: the id of the event at position - 1 is needed \
                 exactly when the position is not 0",
                self.position, self.last_event_id
            )));
        }
        let tmp = sibling_path(path, ".tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_parent_dir(path)?;
        Ok(())
    }
}

/// Why a runner started from position 0 instead of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildReason {
    /// There was no checkpoint file.
    Missing,
    /// The checkpoint file was damaged or unreadable, its state did not decode, or the log
    /// could not be read to check it: what went wrong.
    Damaged(String),
    /// The checkpoint was written by another version of the code
    /// ([`Projection::VERSION`](crate::projection::Projection::VERSION)).
    VersionChanged {
        /// The version in the file.
        stored: u32,
        /// This build's version.
        current: u32,
    },
    /// The log does not confirm the checkpoint (the event before its position is missing or
    /// has another id): the checkpoint belongs to another history.
    LogMismatch,
    /// [`ProjectionRunner::rebuild`](crate::projection::ProjectionRunner::rebuild) was called.
    Requested,
}

impl From<CheckpointError> for RebuildReason {
    fn from(e: CheckpointError) -> RebuildReason {
        match e {
            CheckpointError::Missing => RebuildReason::Missing,
            CheckpointError::Damaged(what) | CheckpointError::Invalid(what) => {
                RebuildReason::Damaged(what)
            }
            CheckpointError::Io(e) => RebuildReason::Damaged(e.to_string()),
        }
    }
}

/// Read the checkpoint at `path` and check it: written by `version`, and confirmed by the log
/// ([`verify_against_log`]). The caller decodes the state.
///
/// # Errors
///
/// Why the checkpoint cannot be used: [`RebuildReason::Missing`],
/// [`RebuildReason::Damaged`] (damaged or unreadable file, or the log could not be read),
/// [`RebuildReason::VersionChanged`], [`RebuildReason::LogMismatch`].
pub fn load_checkpoint<S: EventSource + ?Sized>(
    source: &S,
    path: &Path,
    version: u32,
) -> std::result::Result<Checkpoint, RebuildReason> {
    load_checkpoint_from(
        source,
        &crate::checkpoint_store::FileCheckpoint::new(path),
        version,
    )
}

/// [`load_checkpoint`] from any [`CheckpointStore`](crate::checkpoint_store::CheckpointStore):
/// read it, check it was written by `version` and that the log confirms it.
///
/// # Errors
///
/// As [`load_checkpoint`].
pub fn load_checkpoint_from<S: EventSource + ?Sized>(
    source: &S,
    store: &dyn crate::checkpoint_store::CheckpointStore,
    version: u32,
) -> std::result::Result<Checkpoint, RebuildReason> {
    let cp = store.read()?;
    if cp.version != version {
        return Err(RebuildReason::VersionChanged {
            stored: cp.version,
            current: version,
        });
    }
    verify_against_log(source, &cp)?;
    Ok(cp)
}

/// Check that the log still holds the event the checkpoint was taken after: the event at
/// `cp.position - 1` must exist **at that position** with id `cp.last_event_id`. Position 0
/// needs nothing.
///
/// # Errors
///
/// [`RebuildReason::LogMismatch`] when that event is missing or has another id;
/// [`RebuildReason::Damaged`] when the log cannot be read.
pub fn verify_against_log<S: EventSource + ?Sized>(
    source: &S,
    cp: &Checkpoint,
) -> std::result::Result<(), RebuildReason> {
    let Some(p) = cp.position.checked_sub(1) else {
        return Ok(());
    };
    match event_id_at(source, p) {
        Ok(Some(id)) if Some(id) == cp.last_event_id => Ok(()),
        Ok(_) => Err(RebuildReason::LogMismatch),
        Err(e) => Err(RebuildReason::Damaged(format!("cannot check the log: {e}"))),
    }
}

/// The id of the event at global `position`, if the source has an event **at that position**
/// (an event the source returns for a later position does not count).
///
/// # Errors
///
/// The source's read error.
pub fn event_id_at<S: EventSource + ?Sized>(source: &S, position: u64) -> Result<Option<Uuid>> {
    let events = source.read_all_from(position, 1)?;
    Ok(events
        .first()
        .filter(|e| e.position == position)
        .map(|e| e.event_id))
}

/// The id to record with a checkpoint at `subscription`'s position: `None` at position 0,
/// else the id of the event at `position - 1` (the subscription's own record of it, or read
/// back from the source at exactly that position, e.g. right after a seek or an open).
///
/// # Errors
///
/// The source's read error, or [`Error::Internal`] when the source has no event at
/// `position - 1` (a checkpoint naming another event would be refused by the next open).
pub(crate) fn id_before_position<S: EventSource>(
    subscription: &Subscription<S>,
) -> Result<Option<Uuid>> {
    let Some(p) = subscription.next_position().checked_sub(1) else {
        return Ok(None);
    };
    if let Some(id) = subscription.last_event_id() {
        return Ok(Some(id));
    }
    match event_id_at(subscription.source(), p)? {
        Some(id) => Ok(Some(id)),
        None => Err(Error::Internal(format!(
            "position {p} was passed but the source has no event at that position"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::SubscriptionFilter;
    use crate::types::RecordedEvent;
    use std::time::Duration;

    fn sample() -> Checkpoint {
        Checkpoint {
            version: 3,
            position: 9,
            last_event_id: Some(Uuid::new_v4()),
            state: vec![1, 2, 3],
            state_codec: Codec::CURRENT,
        }
    }

    /// Replace the CRC so a test reaches the field check behind it.
    fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
        let body = bytes.len() - CRC_LEN;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn damage_of(bytes: &[u8]) -> String {
        match Checkpoint::decode(bytes) {
            Err(CheckpointError::Damaged(what)) => what,
            other => panic!("expected Damaged, got {other:?}"),
        }
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let cp = sample();
        let bytes = cp.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), cp);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Checkpoint::decode(&b).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(Checkpoint::decode(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn round_trips_at_position_zero_and_with_an_empty_state() {
        for cp in [
            Checkpoint {
                version: 1,
                position: 0,
                last_event_id: None,
                state: vec![],
                state_codec: Codec::CURRENT,
            },
            Checkpoint {
                state: vec![],
                state_codec: Codec::CURRENT,
                ..sample()
            },
        ] {
            let bytes = cp.encode();
            assert_eq!(bytes.len(), CHECKPOINT_HEADER + CRC_LEN);
            assert_eq!(Checkpoint::decode(&bytes).unwrap(), cp);
        }
    }

    #[test]
    fn every_damaged_field_is_rejected_with_its_reason() {
        let good = sample().encode();
        let short = damage_of(&good[..CHECKPOINT_HEADER + CRC_LEN - 1]);
        assert!(short.contains("shorter"), "{short}");
        let mut crc = good.clone();
        *crc.last_mut().unwrap() ^= 1;
        assert!(damage_of(&crc).contains("CRC"));

        // Each field damaged behind a valid CRC.
        let cases: [(usize, u8, &str); 4] = [
            (0, b'X', "magic"),
            (8, 7, "format"),
            (24, 2, "flag"),
            (41, 4, "length"),
        ];
        for (at, value, reason) in cases {
            let mut b = good.clone();
            b[at] = value;
            let what = damage_of(&with_crc(b));
            assert!(what.contains(reason), "byte {at}: {what}");
        }

        // Id present at position 0, absent at position 9.
        let mut at_zero = good.clone();
        at_zero[16..24].copy_from_slice(&0u64.to_le_bytes());
        assert!(damage_of(&with_crc(at_zero)).contains("iff"));
        let no_id = Checkpoint {
            last_event_id: None,
            ..sample()
        }
        .encode();
        assert!(damage_of(&no_id).contains("iff"));

        // A state length that claims more than the file holds (or overflows).
        let mut long = good.clone();
        long[41..49].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(damage_of(&with_crc(long)).contains("length"));
    }

    #[test]
    fn read_and_write_report_missing_damaged_io_and_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.evs.proj-x");
        assert!(matches!(
            Checkpoint::read(&path),
            Err(CheckpointError::Missing)
        ));

        let cp = sample();
        cp.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), cp);
        assert!(!sibling_path(&path, ".tmp").exists());

        std::fs::write(&path, b"EVSTCKP\0").unwrap();
        assert!(matches!(
            Checkpoint::read(&path),
            Err(CheckpointError::Damaged(_))
        ));

        // A directory cannot be read as a file: the io::Error is kept, as the source.
        let as_dir = dir.path().join("dir");
        std::fs::create_dir(&as_dir).unwrap();
        let err = Checkpoint::read(&as_dir).unwrap_err();
        assert!(matches!(err, CheckpointError::Io(_)), "{err:?}");
        assert!(std::error::Error::source(&err)
            .is_some_and(|s| s.downcast_ref::<io::Error>().is_some()));
        assert!(matches!(Error::from(err), Error::Io(_)));

        cp.write(&path).unwrap();
        for bad in [
            Checkpoint {
                last_event_id: None,
                ..sample()
            },
            Checkpoint {
                position: 0,
                ..sample()
            },
            Checkpoint {
                state: vec![0; codec::MAX_DECODE_BYTES + 1],
                state_codec: Codec::CURRENT,
                ..sample()
            },
        ] {
            let err = bad.write(&path).unwrap_err();
            assert!(matches!(err, CheckpointError::Invalid(_)), "{err:?}");
            assert!(matches!(Error::from(err), Error::InvalidInput(_)));
        }
        // The refused writes left the last good file.
        assert_eq!(Checkpoint::read(&path).unwrap(), cp);
    }

    #[test]
    fn oversized_file_is_damaged_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len((codec::MAX_DECODE_BYTES + CHECKPOINT_HEADER + CRC_LEN + 1) as u64)
            .unwrap();
        let what = match Checkpoint::read(&path) {
            Err(CheckpointError::Damaged(what)) => what,
            other => panic!("expected Damaged, got {other:?}"),
        };
        assert!(what.contains("more than a checkpoint can hold"), "{what}");
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("order-summaries_2").is_ok());
        for bad in ["", "a/b", "..", "x y", &"n".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sibling_paths_append_to_the_file_name() {
        let log = Path::new("/d/shop.evs");
        assert_eq!(checkpoint_path(log, "a"), Path::new("/d/shop.evs.proj-a"));
        assert_eq!(
            saga_checkpoint_path(log, "a"),
            Path::new("/d/shop.evs.saga-a")
        );
        assert_eq!(sibling_path(log, ".tmp"), Path::new("/d/shop.evs.tmp"));
    }

    // ---- checking a checkpoint against the log ------------------------------------------

    /// An in-memory log. Positions missing from `events` model a hole (e.g. an archived
    /// prefix): a read from a missing position returns the events after it, as a backend
    /// reading "from a position on" may.
    struct Log {
        events: Vec<RecordedEvent>,
        fail: bool,
    }

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::new_v4(),
            stream_id: "s".into(),
            event_type: "E".into(),
            version: position,
            position,
            recorded_at: chrono::Utc::now(),
            data: vec![],
            metadata: vec![],
            tags: vec![],
        }
    }

    fn log(positions: impl IntoIterator<Item = u64>) -> Log {
        Log {
            events: positions.into_iter().map(event).collect(),
            fail: false,
        }
    }

    impl Log {
        fn id(&self, position: u64) -> Uuid {
            self.events
                .iter()
                .find(|e| e.position == position)
                .unwrap()
                .event_id
        }
    }

    impl EventSource for Log {
        fn read_all_from(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>> {
            if self.fail {
                return Err(Error::Io(io::Error::other("disk gone")));
            }
            Ok(self
                .events
                .iter()
                .filter(|e| e.position >= from)
                .take(max)
                .cloned()
                .collect())
        }
        fn wait_for_position(&self, _: u64, _: Duration) -> bool {
            false
        }
        fn head_position(&self) -> Option<u64> {
            self.events.last().map(|e| e.position)
        }
    }

    fn at(position: u64, last_event_id: Option<Uuid>) -> Checkpoint {
        Checkpoint {
            version: 1,
            position,
            last_event_id,
            state: vec![],
            state_codec: Codec::CURRENT,
        }
    }

    #[test]
    fn verify_accepts_the_event_before_the_position_and_position_zero() {
        let l = log(0..5);
        assert_eq!(verify_against_log(&l, &at(3, Some(l.id(2)))), Ok(()));
        assert_eq!(verify_against_log(&l, &at(5, Some(l.id(4)))), Ok(()));
        assert_eq!(verify_against_log(&log([]), &at(0, None)), Ok(()));
    }

    #[test]
    fn verify_rejects_another_id_or_a_missing_event() {
        let l = log(0..5);
        // Another id at position - 1.
        assert_eq!(
            verify_against_log(&l, &at(3, Some(Uuid::new_v4()))),
            Err(RebuildReason::LogMismatch)
        );
        // The id of a neighbour.
        assert_eq!(
            verify_against_log(&l, &at(3, Some(l.id(3)))),
            Err(RebuildReason::LogMismatch)
        );
        // Beyond the head (the log is shorter than the checkpoint).
        assert_eq!(
            verify_against_log(&l, &at(7, Some(l.id(4)))),
            Err(RebuildReason::LogMismatch)
        );
    }

    #[test]
    fn verify_rejects_a_hole_even_when_the_next_event_has_the_recorded_id() {
        // Position 2 is gone; a read from 2 returns the event at 3. A lookup that does not
        // check the position would take that event for the one at 2.
        let l = log([0, 1, 3, 4]);
        assert_eq!(event_id_at(&l, 2).unwrap(), None);
        assert_eq!(event_id_at(&l, 3).unwrap(), Some(l.id(3)));
        assert_eq!(
            verify_against_log(&l, &at(3, Some(l.id(3)))),
            Err(RebuildReason::LogMismatch)
        );
    }

    #[test]
    fn verify_reports_an_unreadable_log_as_damaged() {
        let mut l = log(0..5);
        let cp = at(3, Some(l.id(2)));
        l.fail = true;
        assert!(matches!(
            verify_against_log(&l, &cp),
            Err(RebuildReason::Damaged(what)) if what.contains("cannot check the log")
        ));
    }

    #[test]
    fn load_says_why_a_checkpoint_cannot_be_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let l = log(0..5);
        assert_eq!(load_checkpoint(&l, &path, 1), Err(RebuildReason::Missing));
        let good = at(3, Some(l.id(2)));
        good.write(&path).unwrap();
        assert_eq!(load_checkpoint(&l, &path, 1), Ok(good.clone()));
        assert_eq!(
            load_checkpoint(&l, &path, 2),
            Err(RebuildReason::VersionChanged {
                stored: 1,
                current: 2
            })
        );
        assert_eq!(
            load_checkpoint(&log(0..5), &path, 1),
            Err(RebuildReason::LogMismatch)
        );
        std::fs::write(&path, &good.encode()[..10]).unwrap();
        assert!(matches!(
            load_checkpoint(&l, &path, 1),
            Err(RebuildReason::Damaged(_))
        ));
    }

    #[test]
    fn the_id_before_a_subscription_position_is_read_at_that_position() {
        let l = log([0, 1, 3, 4]);
        let at_zero = Subscription::new(&l, 0, SubscriptionFilter::all());
        assert_eq!(id_before_position(&at_zero).unwrap(), None);
        let after_two = Subscription::new(&l, 2, SubscriptionFilter::all());
        assert_eq!(id_before_position(&after_two).unwrap(), Some(l.id(1)));
        // Nothing at position 2: an error, not the id of the event at 3.
        let after_hole = Subscription::new(&l, 3, SubscriptionFilter::all());
        assert!(matches!(
            id_before_position(&after_hole),
            Err(Error::Internal(_))
        ));
        // Once the subscription has passed an event, it knows the id itself.
        let mut sub = Subscription::new(&l, 3, SubscriptionFilter::all());
        assert_eq!(
            sub.next_timeout(Duration::ZERO).unwrap().unwrap().position,
            3
        );
        assert_eq!(id_before_position(&sub).unwrap(), Some(l.id(3)));
    }
}
